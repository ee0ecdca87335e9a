"""``fashionkit wardrobe wore`` / ``reindex`` / ``list`` and ``outfits suggest
--favour-rarely-worn`` end to end through the CLI: detection is the synthetic world's ground
truth (tests/service/fakes.py), embeddings come from a real tiny random-weight checkpoint."""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import pytest
import torch
from typer.testing import CliRunner

from fashionkit.cli import app
from fashionkit.wardrobe import Wardrobe
from tests.service.fakes import TruthPredictor


def run(*args):
    # Wide enough for every column of 'wardrobe list' on one line.
    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "250"})


@pytest.fixture
def setup(tmp_path, monkeypatch):
    import fashionkit.inference
    from fashionkit.modeling import build_model, model_config_from_preset, save_checkpoint

    truth = TruthPredictor()
    monkeypatch.setattr(fashionkit.inference, "Predictor", lambda *a, **k: truth)
    torch.manual_seed(0)
    weights = save_checkpoint(
        build_model(model_config_from_preset("cpu-tiny")), tmp_path / "model.pt"
    )
    photo = tmp_path / "wardrobe.png"
    photo.write_bytes(truth.photo(0))
    (tmp_path / "more.png").write_bytes(truth.photo(2))
    outfit = tmp_path / "outfit.png"
    outfit.write_bytes(truth.outfit(0, 1))
    return {"db": f"sqlite:///{tmp_path / 'w.sqlite'}", "weights": weights, "photo": photo,
            "outfit": outfit, "truth": truth, "tmp": tmp_path}  # fmt: skip


def test_wore_logs_recognised_items_and_offers_the_rest(setup):
    db, weights = setup["db"], setup["weights"]
    truth = setup["truth"]
    before = run("wardrobe", "wore", setup["outfit"], "--weights", weights, "--db", db)
    assert before.exit_code == 2 and "reindex" in before.output  # nothing to recognise by
    more = setup["tmp"] / "more.png"
    assert run("wardrobe", "add", setup["photo"], more, "--weights", weights, "--db", db).exit_code == 0
    with Wardrobe(db) as wardrobe:
        mine = set(wardrobe.photo_items(hashlib.sha256(setup["photo"].read_bytes()).hexdigest()))
        held = len(wardrobe)
    result = run("wardrobe", "wore", setup["outfit"], "--weights", weights, "--on", "2026-11-20",
                 "--db", db)  # fmt: skip
    assert result.exit_code == 0, result.output
    worn = [line.split()[1].rstrip(":") for line in result.output.splitlines()
            if line.strip().startswith("wore ")]  # fmt: skip
    assert worn and set(worn) <= mine, result.output
    assert "similarity" in result.output and "--add-new" in result.output
    offered = [line for line in result.output.splitlines() if line.strip().startswith("new ")]
    assert len(offered) >= truth.garments(truth.photo(1))
    with Wardrobe(db) as wardrobe:
        stats = wardrobe.wear_stats()
        assert set(stats) == set(worn) and len(wardrobe) == held
    table = run("wardrobe", "list", "--db", db).output
    assert "times worn" in table and "2026-11-20" in table

    added = run("wardrobe", "wore", setup["outfit"], "--weights", weights, "--add-new",
                "--on", "2026-11-21", "--db", db)  # fmt: skip
    assert added.exit_code == 0, added.output
    with Wardrobe(db) as wardrobe:
        assert len(wardrobe) == held + len(offered)
        assert all(wardrobe.wear_stats()[k].times_worn == 2 for k in worn)

    reindexed = run("wardrobe", "reindex", "--weights", weights, "--db", db)
    assert reindexed.exit_code == 0 and f"embedded {held + len(offered)} item(s)" in (
        reindexed.output
    )


def test_wore_names_the_unreadable_photo_and_needs_a_model(setup, monkeypatch):
    import fashionkit.inference
    from fashionkit.errors import Problem
    from fashionkit.inference import Prediction
    from fashionkit.inference.images import load_photo

    db, weights, truth = setup["db"], setup["weights"], setup["truth"]
    assert run("wardrobe", "add", setup["photo"], "--weights", weights, "--db", db).exit_code == 0
    broken = setup["tmp"] / "broken.png"
    broken.write_bytes(b"not a png")

    def reading(paths, on_error="raise"):
        """The truth, after reading each photo as the predictor does (a bad one: a problem)."""
        out = []
        for path in paths:
            try:
                load_photo(path)
            except Exception as err:  # noqa: BLE001 - reported, as Predictor(on_error="skip")
                out.append(Prediction(name=str(path), image_size=(0, 0), items=[],
                                      error=Problem(str(path), "file", str(err))))  # fmt: skip
            else:
                out.extend(truth([path]))
        return out

    monkeypatch.setattr(fashionkit.inference, "Predictor", lambda *a, **k: reading)
    result = run("wardrobe", "wore", broken, setup["outfit"], "--weights", weights, "--db", db)
    assert result.exit_code == 1 and "could not read" in result.output
    assert "broken.png" in result.output and "recognised in 1 photo(s)" in result.output
    missing = run("wardrobe", "wore", setup["outfit"], "--db", db)
    assert missing.exit_code == 2 and "--weights" in missing.output
    assert run("wardrobe", "reindex", "--db", db).exit_code == 2


def test_suggest_favours_rarely_worn(tmp_path):
    db = f"sqlite:///{tmp_path / 'w.sqlite'}"
    items = [
        {"id": "a-shirt", "category": "shirt", "colors": ["#ffffff"]},
        {"id": "b-shirt", "category": "shirt", "colors": ["#ffffff"]},
        {"id": "jeans", "category": "pants", "colors": ["#1f2a44"]},
    ]
    source = tmp_path / "in.json"
    source.write_text(json.dumps(items))
    assert run("wardrobe", "import", source, "--db", db).exit_code == 0
    # Wears as 'wardrobe wore' logs them (outfit feedback would also teach a taste for them).
    with Wardrobe(db) as wardrobe:
        for day in (18, 19, 20):
            wardrobe.record_wears(["a-shirt", "jeans"], on=dt.date(2026, 11, day))

    def best(*extra):
        out = run("outfits", "suggest", "--db", db, "--json", "-n", "1", "--today",
                  "2026-11-24", *extra)  # fmt: skip
        assert out.exit_code == 0, out.output
        return json.loads(out.stdout)[0]

    assert "a-shirt" in best()["items"]
    favoured = best("--favour-rarely-worn")
    assert "b-shirt" in favoured["items"]
    assert "never worn" in favoured["explanation"]
    table = run("wardrobe", "list", "--db", db).output
    row = next(line for line in table.splitlines() if "a-shirt" in line)
    assert " 3 " in row and "2026-11-20" in row


def test_wore_without_weights_uses_your_own_model_and_your_items_embedder(setup, monkeypatch):
    """Without --weights the person's active model detects; recognition uses the embedder
    their items were embedded with (the base it was taught from), and when that base is gone
    their items are embedded again with their own model first."""
    import shutil

    import fashionkit.inference
    from fashionkit.modeling import build_model, model_config_from_preset, save_checkpoint
    from fashionkit.personal.embedding import ItemEmbedder
    from fashionkit.personal.models import PersonalModels

    db, weights, truth = setup["db"], setup["weights"], setup["truth"]
    detectors = []

    def predictor(path, **kwargs):
        detectors.append(path)
        return truth

    monkeypatch.setattr(fashionkit.inference, "Predictor", predictor)
    added = run("wardrobe", "add", setup["photo"], setup["tmp"] / "more.png", "--weights", weights,
                "--db", db)  # fmt: skip
    assert added.exit_code == 0, added.output
    torch.manual_seed(1)
    taught = save_checkpoint(build_model(model_config_from_preset("cpu-tiny")),
                             setup["tmp"] / "taught.pt")
    base_key = ItemEmbedder.from_checkpoint(weights).key
    own_key = ItemEmbedder.from_checkpoint(taught).key
    with Wardrobe(db) as wardrobe:
        models = PersonalModels(wardrobe)
        first = models.new_file()
        shutil.copyfile(taught, first)
        models.register(first, base=weights, photos=5, minutes=1.0, steps=3)
        assert set(wardrobe.embedders()) == {base_key}
        held = len(wardrobe)

    result = run("wardrobe", "wore", setup["outfit"], "--db", db)
    assert result.exit_code == 0, result.output
    assert detectors[-1] == first and "your own model" in result.output
    assert "wore " in result.output and "again" not in result.output
    with Wardrobe(db) as wardrobe:
        assert wardrobe.wear_stats() and set(wardrobe.embedders()) == {base_key}
        gone = models.new_file()
        shutil.copyfile(taught, gone)
        models.register(gone, base=setup["tmp"] / "deleted-base.pt", photos=5, minutes=1.0,
                        steps=3)

    again = run("wardrobe", "wore", setup["outfit"], "--on", "2026-11-21", "--db", db)
    assert again.exit_code == 0, again.output
    assert detectors[-1] == gone
    # (The random weights of this stand-in recognise nothing: what matters is the gallery.)
    assert f"embedded {held} item(s) again with your own model" in again.output, again.output
    assert "recognised in 1 photo(s)" in again.output
    with Wardrobe(db) as wardrobe:
        assert wardrobe.embedders()[own_key] == held


def test_wore_prints_suggested_tags_and_suggest_tags_applies_them(setup):
    db, weights = setup["db"], setup["weights"]
    more = setup["tmp"] / "more.png"
    assert run("wardrobe", "add", setup["photo"], more, "--weights", weights, "--db", db).exit_code == 0
    with Wardrobe(db) as wardrobe:
        for item in wardrobe.items():
            wardrobe.update(item.id, brand="acme", occasion=["work"])
    result = run("wardrobe", "wore", setup["outfit"], "--weights", weights, "--add-new",
                 "--on", "2026-11-20", "--db", db)  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = [line.strip() for line in result.output.splitlines()]
    added = [line.split()[1].rstrip(":") for line in lines if line.startswith("added ")]
    suggested = [line for line in lines if line.startswith("suggested tags:")]
    assert added and len(suggested) == len(added), result.output
    assert all("brand acme (100%, your usual)" in line and "occasion work" in line
               for line in suggested)  # fmt: skip
    assert "suggest-tags ITEM --apply" in result.output
    with Wardrobe(db) as wardrobe:
        assert wardrobe.get(added[0]).brand is None  # added as detected

    shown = run("wardrobe", "suggest-tags", added[0], "--db", db)
    assert shown.exit_code == 0 and "brand: acme (100%, your usual)" in shown.output, shown.output
    with Wardrobe(db) as wardrobe:
        assert wardrobe.get(added[0]).brand is None  # shown, not stored
    applied = run("wardrobe", "suggest-tags", added[0], "--apply", "--db", db)
    assert applied.exit_code == 0 and f"updated {added[0]}" in applied.output
    with Wardrobe(db) as wardrobe:
        item = wardrobe.get(added[0])
        assert item.brand == "acme" and item.occasion == ("work",)
        wardrobe.add(item.with_changes(id="by-hand"))
    by_hand = run("wardrobe", "suggest-tags", "by-hand", "--db", db)
    assert by_hand.exit_code == 2 and "by-hand" in by_hand.output
    unknown = run("wardrobe", "suggest-tags", "nobody-has-this", "--db", db)
    assert unknown.exit_code == 2 and "nobody-has-this" in unknown.output
