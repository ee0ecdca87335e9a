VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install test test-slow test-postgres demo bench check clean

install: $(STAMP)

# Reinstall only when the project's dependencies change; otherwise this is a no-op.
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || python3.11 -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev,export,postgres]'
	touch $(STAMP)

# The README's single test command: lint, type-check and the layer contract first, then the suite.
test: check
	$(PY) -m pytest -q

# The database-facing tests again on PostgreSQL: FASHIONKIT_TEST_POSTGRES is a server URL
# (postgresql+psycopg://user@host:port); .ci/postgres starts one.
POSTGRES_TESTS := tests/service tests/wardrobe/test_migrations.py
test-postgres: install
	test -n "$(FASHIONKIT_TEST_POSTGRES)" || { echo "set FASHIONKIT_TEST_POSTGRES"; exit 2; }
	$(PY) -m pytest -q $(POSTGRES_TESTS)

test-slow: install
	$(PY) -m pytest -q -m slow

demo: install
	$(VENV)/bin/fashionkit demo

bench: install
	for b in benchmarks/*.py; do $(PY) $$b --quick || exit 1; done

check: install
	$(VENV)/bin/ruff check fashionkit tests benchmarks
	$(VENV)/bin/mypy fashionkit
	$(VENV)/bin/lint-imports

clean:
	rm -rf $(VENV) *.egg-info
