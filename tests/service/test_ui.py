"""The browser page is served with its script, icon and a strict Content-Security-Policy, and
its script calls only routes the API has (the page itself is driven in headless Chromium in
test_browser.py)."""

from __future__ import annotations

import re


def test_page_and_script_are_served(service):
    page = service.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert (
        "script-src 'self'" in csp
        and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    )
    assert '<script src="/ui.js"' in page.text
    script = service.get("/ui.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    # Inline handlers would be blocked by the policy.
    assert not re.search(r"\son[a-z]+=", page.text)


def test_script_calls_only_existing_routes(service):
    script = service.get("/ui.js").text
    called = set(re.findall(r"['`](/api/[a-z/]+)", script))
    assert called >= {"/api/token", "/api/users", "/api/me", "/api/items", "/api/photos"}
    paths = service.get("/openapi.json").json()["paths"]
    for path in called:
        assert any(p == path or p.startswith(path) for p in paths), path


def test_script_never_inserts_html():
    from fashionkit.service.ui import SCRIPT

    assert "innerHTML" not in SCRIPT and "outerHTML" not in SCRIPT
    assert "insertAdjacentHTML" not in SCRIPT and "document.write" not in SCRIPT


def test_script_is_valid_javascript(tmp_path):
    import shutil
    import subprocess

    import pytest

    from fashionkit.service.ui import SCRIPT

    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    path = tmp_path / "ui.js"
    path.write_text(SCRIPT, encoding="utf-8")
    result = subprocess.run([node, "--check", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_icon_and_categories_for_the_page(service):
    icon = service.get("/favicon.svg")
    assert icon.status_code == 200 and icon.headers["content-type"] == "image/svg+xml"
    categories = service.get("/api/categories").json()  # no login needed: the ontology
    assert [c["id"] for c in categories] == list(range(27))
    assert categories[6] == {
        "id": 6, "name": "pants", "short_name": "pants", "supercategory": "lowerbody"
    }
