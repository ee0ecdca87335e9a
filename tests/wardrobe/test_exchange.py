import datetime as dt
import json

import pytest

from fashionkit.errors import ConflictError, InvalidDataError
from fashionkit.wardrobe import Wardrobe, WardrobeItem, export_wardrobe, import_wardrobe, read_items

ITEMS = [
    {"id": "navy-blazer", "category": "jacket", "colors": ["#1F2A44"], "season": ["winter", "autumn"],
     "material": "wool", "pattern": "plain", "brand": "Acme", "trend": "classic",
     "occasion": ["work"], "formality": 4, "attribute_ids": [17, 317], "favorite": True,
     "notes": "dry clean", "name": "navy blazer", "last_worn": "2026-11-01"},
    {"id": "tee", "category": 1},
    {"id": "jeans", "category": "pants", "colors": ["#3b5b92", "#fff"], "attribute_ids": [36]},
]  # fmt: skip


def test_round_trip(tmp_path):
    src = tmp_path / "in.json"
    src.write_text(json.dumps(ITEMS))
    with Wardrobe(f"sqlite:///{tmp_path / 'a.sqlite'}") as a:
        assert import_wardrobe(a, src) == 3
        blazer = a.get("navy-blazer")
        assert blazer.category_id == 4 and blazer.season == ("autumn", "winter")
        assert blazer.colors == ("#1f2a44",) and blazer.last_worn == dt.date(2026, 11, 1)
        export_wardrobe(a, tmp_path / "out.json")
        first = a.items()
    with Wardrobe(f"sqlite:///{tmp_path / 'b.sqlite'}") as b:
        import_wardrobe(b, tmp_path / "out.json")
        second = b.items()
        export_wardrobe(b, tmp_path / "out2.json")
    assert first == second
    assert [i.last_worn for i in first] == [i.last_worn for i in second]
    assert (tmp_path / "out.json").read_text() == (tmp_path / "out2.json").read_text()
    exported = json.loads((tmp_path / "out.json").read_text())
    assert exported["format"] == "fashionkit-wardrobe"
    assert exported["items"][2] == {"id": "tee", "category": 1}


def test_reimport_replaces_by_id(tmp_path):
    src = tmp_path / "in.json"
    src.write_text(json.dumps({"items": [{"id": "tee", "category": 1, "brand": "A"}]}))
    with Wardrobe(f"sqlite:///{tmp_path / 'a.sqlite'}") as w:
        import_wardrobe(w, src)
        src.write_text(json.dumps({"items": [{"id": "tee", "category": 1, "brand": "B"}]}))
        import_wardrobe(w, src)
        assert w.items() == [WardrobeItem(id="tee", category_id=1, brand="B")]
        with pytest.raises(ConflictError, match="already"):
            import_wardrobe(w, src, replace=False)


def test_invalid_file_lists_every_problem(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps(
            [
                {"id": "a", "category": "spaceship"},
                {"id": "b", "category": 3, "colors": ["blue"], "formality": 7},
                {"category": 3},
                {"id": "a", "category": 1},
                {"id": "c", "category": 1, "season": ["monsoon"], "colour": "#fff"},
            ]
        )
    )
    with pytest.raises(InvalidDataError) as err:
        read_items(bad)
    message = str(err.value)
    for expected in (
        "bad.json: item 0 (id 'a'): no Fashionpedia category is named 'spaceship'",
        "item 1 (id 'b'): colors: not a #rrggbb colour: 'blue'",
        "item 1 (id 'b'): formality must be an integer 1..5, got 7",
        "item 2: id must be a non-empty string",
        "item 4 (id 'c'): unknown field(s) colour",
        "item 4 (id 'c'): season ['monsoon']",
    ):
        assert expected in message
    bad.write_text("[{")
    with pytest.raises(InvalidDataError, match="line 1 column 3: not valid JSON"):
        read_items(bad)


@pytest.mark.parametrize(
    "raw, fragment",
    [
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'[{"id": "x", "category": ' + b"9" * 5000 + b"}]", "not valid JSON"),
        (b"\xff\xfe[]", "not UTF-8"),
    ],
)
def test_unreadable_files_are_invalid_data_not_crashes(tmp_path, raw, fragment):
    path = tmp_path / "in.json"
    path.write_bytes(raw)
    with pytest.raises(InvalidDataError, match=fragment) as err:
        read_items(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize(
    "record, fragment",
    [
        ({"id": "x", "category": "²"}, "no Fashionpedia category is named '²'"),  # isdigit, not int
        ({"id": "x" * 201, "category": 1}, "at most 200 characters"),
        ({"id": "a\x00b", "category": 1}, "control, invisible or bidirectional"),
        ({"id": "a\nb", "category": 1}, "control, invisible or bidirectional"),
        ({"id": "x/cutout", "category": 1}, "must not contain '/'"),
        ({"id": "a\\b", "category": 1}, "must not contain '/' or '\\'"),
        ({"id": "..", "category": 1}, "must not be '..'"),
        ({"id": "abc\u202egpj.exe", "category": 1}, "U+202E"),  # right-to-left override
        ({"id": "co\u200bat", "category": 1}, "U+200B"),  # zero-width space
        ({"id": "co\u2066at", "category": 1}, "U+2066"),  # left-to-right isolate
        ({"id": "x", "category": 1, "brand": "b" * 101}, "brand must be at most 100"),
        ({"id": "x", "category": 1, "notes": "n\x00"}, "notes must not contain NUL"),
        ({"id": "x", "category": 1, "occasion": ["w" * 101]}, "occasion"),
    ],
)
def test_values_no_database_could_store_are_refused(record, fragment):
    from fashionkit.wardrobe import item_from_dict

    item, problems = item_from_dict(record, source="f.json", where="item 0")
    assert item is None and any(fragment in p.message for p in problems), problems


def test_ids_are_stored_in_nfc_and_urls_characters_are_kept():
    from fashionkit.wardrobe import item_from_dict

    decomposed = "cafe\u0301"  # "café" typed with a combining accent
    item, problems = item_from_dict({"id": f" {decomposed} ", "category": 1}, "f.json", "item 0")
    assert problems == [] and item is not None and item.id == "caf\u00e9"
    for fine in ("x%2Fcutout", "a?b#c", "dress (red)", "...", "üñï"):
        item, problems = item_from_dict({"id": fine, "category": 1}, "f.json", "item 0")
        assert problems == [] and item is not None and item.id == fine


def test_import_and_rename_refuse_ids_with_a_slash(tmp_path):
    src = tmp_path / "in.json"
    src.write_text(json.dumps([{"id": "ok", "category": 1}, {"id": "x/cutout", "category": 1}]))
    with Wardrobe(f"sqlite:///{tmp_path / 'w.sqlite'}") as w:
        with pytest.raises(InvalidDataError, match="x/cutout"):
            import_wardrobe(w, src)
        assert w.items() == []
        w.add(WardrobeItem(id="ok", category_id=1))
        with pytest.raises(InvalidDataError, match="must not contain '/'"):
            w.update("ok", id="ok/cutout")
        assert [i.id for i in w.items()] == ["ok"]


def test_cli_refuses_an_id_with_a_slash(tmp_path):
    import subprocess
    import sys

    db = f"sqlite:///{tmp_path / 'w.sqlite'}"
    result = subprocess.run(
        [sys.executable, "-m", "fashionkit.cli", "wardrobe", "add", "--db", db, "--id", "a/b",
         "--category", "shirt"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    assert "a/b" in result.stderr + result.stdout and "'/'" in result.stderr + result.stdout


def test_longest_accepted_values_are_stored(tmp_path):
    from fashionkit.wardrobe import item_from_dict

    record = {"id": "i" * 200, "category": "1", "brand": "b" * 100, "notes": "line\nline"}
    item, problems = item_from_dict(record, source="f.json", where="item 0")
    assert problems == []
    with Wardrobe(f"sqlite:///{tmp_path / 'w.sqlite'}") as w:
        w.add(item)
        assert w.get("i" * 200).brand == "b" * 100
