import json

from typer.testing import CliRunner

from fashionkit.cli import app

ITEMS = [
    {"id": "white-shirt", "category": "shirt", "colors": ["#ffffff"]},
    {"id": "navy-chinos", "category": "pants", "colors": ["#1f2a44"]},
    {"id": "orange-top", "category": "top", "colors": ["#ff8c00"], "season": ["summer"]},
    {"id": "wool-coat", "category": "coat", "colors": ["#808080"], "season": ["winter"]},
    {"id": "black-shoes", "category": "shoe", "colors": ["#111111"]},
]


def run(*args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result


def test_wardrobe_and_outfits_commands(tmp_path):
    db = f"sqlite:///{tmp_path / 'w.sqlite'}"
    src = tmp_path / "in.json"
    src.write_text(json.dumps(ITEMS))
    assert run("wardrobe", "import", src, "--db", db).exit_code == 0
    listed = run("wardrobe", "list", "--db", db, "--json")
    assert [i["id"] for i in json.loads(listed.stdout)] == sorted(i["id"] for i in ITEMS)

    result = run("outfits", "suggest", "--db", db, "--json", "--season", "summer", "-n", "5")
    assert result.exit_code == 0, result.output
    outfits = json.loads(result.stdout)
    assert outfits and all(set(o) == {"items", "score", "explanation"} for o in outfits)
    assert all("wool-coat" not in o["items"] for o in outfits)
    again = run("outfits", "suggest", "--db", db, "--json", "--season", "summer", "-n", "5")
    assert again.stdout == result.stdout  # deterministic

    locked = run("outfits", "suggest", "--db", db, "--json", "--with", "orange-top")
    assert all("orange-top" in o["items"] for o in json.loads(locked.stdout))
    cold = json.loads(run("outfits", "suggest", "--db", db, "--json", "--temperature", "0").stdout)
    assert all("wool-coat" in o["items"] for o in cold)

    # Feedback changes the order: dislike the best outfit.
    best = outfits[0]["items"]
    assert run("outfits", "feedback", "dislike", *best, "--db", db).exit_code == 0
    after = json.loads(
        run("outfits", "suggest", "--db", db, "--json", "--season", "summer", "-n", "5").stdout
    )
    assert after[0]["items"] != best
    assert run("outfits", "feedback", "wore", "white-shirt", "navy-chinos", "--on",
               "2026-11-20", "--db", db).exit_code == 0  # fmt: skip
    recent = run("outfits", "suggest", "--db", db, "--json", "--not-worn-days", "7",
                 "--today", "2026-11-24").stdout  # fmt: skip
    assert all("white-shirt" not in o["items"] for o in json.loads(recent))

    assert run("wardrobe", "edit", "wool-coat", "--set", "brand=Acme", "--set",
               "season=autumn,winter", "--db", db).exit_code == 0  # fmt: skip
    assert run("wardrobe", "add", "--id", "red-dress", "--category", "dress", "--set",
               "colors=#cc0000", "--db", db).exit_code == 0  # fmt: skip
    out = tmp_path / "out.json"
    assert run("wardrobe", "export", out, "--db", db).exit_code == 0
    exported = {i["id"]: i for i in json.loads(out.read_text())["items"]}
    assert exported["wool-coat"]["brand"] == "Acme"
    assert exported["wool-coat"]["season"] == ["autumn", "winter"]
    assert exported["red-dress"] == {"id": "red-dress", "category": 10, "colors": ["#cc0000"]}
    assert exported["white-shirt"]["last_worn"] == "2026-11-20"


def test_errors_are_reported_without_traceback(tmp_path):
    db = f"sqlite:///{tmp_path / 'w.sqlite'}"
    result = run("wardrobe", "edit", "nope", "--set", "brand=x", "--db", db)
    assert result.exit_code == 2 and "no item 'nope'" in result.output
    result = run("outfits", "suggest", "--db", db, "--with", "nope")
    assert result.exit_code == 2 and "nope" in result.output
    result = run("outfits", "feedback", "love", "a", "--db", db)
    assert result.exit_code == 2
    result = run("wardrobe", "edit", "x", "--set", "colour=red", "--db", db)
    assert result.exit_code == 2
    empty = run("outfits", "suggest", "--db", db)
    assert empty.exit_code == 0 and "no outfit" in empty.output
