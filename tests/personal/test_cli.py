"""``fashionkit wardrobe teach`` and ``wardrobe model list|use|rollback``, and ``wardrobe add``
detecting with the person's own model once they have one."""

from __future__ import annotations

import re

from typer.testing import CliRunner

from fashionkit.cli import app
from fashionkit.wardrobe import Wardrobe

from .conftest import wardrobe_with_photos


def run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_teach_list_use_rollback_and_add_with_the_own_model(tmp_path, tiny_base):
    db = f"sqlite:///{tmp_path / 'w.sqlite'}"
    with Wardrobe(db, user="alice") as wardrobe:
        wardrobe_with_photos(wardrobe, tmp_path / "photos", 3)
    photo = tmp_path / "photos" / "photo-0.png"
    other = tmp_path / "other.png"
    other.write_bytes(b"")  # never read: the command stops before detecting

    first = run("wardrobe", "teach", "--db", db, "--user", "alice", "--min-photos", 3)
    assert first.exit_code == 2 and "--weights" in first.output
    too_few = run("wardrobe", "teach", "--db", db, "--user", "alice", "--weights", tiny_base)
    assert too_few.exit_code == 2 and "at least 5 photos" in too_few.output
    assert "no model of your own" in run("wardrobe", "model", "list", "--db", db,
                                         "--user", "alice").output
    no_model = run("wardrobe", "add", other, "--db", db, "--user", "alice")
    assert no_model.exit_code == 2 and "needs a model" in no_model.output

    taught = run("wardrobe", "teach", "--db", db, "--user", "alice", "--weights", tiny_base,
                 "--minutes", 0.1, "--min-photos", 3)
    assert taught.exit_code == 0, taught.output
    assert "version 1 in use: fine-tuned on 3 photos" in taught.output
    again = run("wardrobe", "teach", "--db", db, "--user", "alice", "--minutes", 0.1,
                "--min-photos", 3)  # from the base of the latest version
    assert again.exit_code == 0 and "version 2 in use" in again.output, again.output
    listed = run("wardrobe", "model", "list", "--db", db, "--user", "alice")
    assert listed.exit_code == 0 and "2 version(s)" in listed.output
    assert re.findall(r"│\s*\*\s*│\s*(\d+)", listed.output) == ["2"]  # * marks the one in use
    assert "no model of your own" in run("wardrobe", "model", "list", "--db", db,
                                         "--user", "bob").output

    added = run("wardrobe", "add", photo, "--db", db, "--user", "alice")
    assert added.exit_code == 0 and "detecting with your own model" in added.output, added.output

    assert "version 1 in use" in run("wardrobe", "model", "rollback", "--db", db,
                                     "--user", "alice").output
    assert "the base model is in use" in run("wardrobe", "model", "rollback", "--db", db,
                                             "--user", "alice").output
    nothing = run("wardrobe", "model", "rollback", "--db", db, "--user", "alice")
    assert nothing.exit_code == 2 and "nothing to roll back" in nothing.output
    assert run("wardrobe", "add", other, "--db", db, "--user", "alice").exit_code == 2
    assert "version 2 in use" in run("wardrobe", "model", "use", 2, "--db", db,
                                     "--user", "alice").output
    unknown = run("wardrobe", "model", "use", 7, "--db", db, "--user", "alice")
    assert unknown.exit_code == 2 and "no model version 7" in unknown.output
    assert run("wardrobe", "model", "use", 1, "--db", db, "--user", "bob").exit_code == 2
