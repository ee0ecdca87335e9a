import math

import pytest

from fashionkit.engine import RECIPES, apply_overrides, get_recipe, load_recipe, save_recipe
from fashionkit.engine.module import effective_lr, lr_factor
from fashionkit.modeling import model_config_from_preset


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_every_recipe_round_trips_through_yaml_and_builds_its_model_config(tmp_path, name):
    recipe = get_recipe(name)
    path = tmp_path / "r.yaml"
    save_recipe(recipe, path)
    assert load_recipe(path) == recipe
    model_config_from_preset(recipe.model_preset, **recipe.model)


def test_paper_and_official_recipes_follow_their_sources():
    paper = get_recipe("paper")
    assert paper.data.transform == "paper" and paper.data.image_size == 1024 and paper.epochs == 8
    assert model_config_from_preset(paper.model_preset).backbone == "resnet101"
    official = get_recipe("fashionpedia-r101-3x")
    assert official.data.transform == "jitter"
    assert (official.data.jitter_min, official.data.jitter_max) == (0.5, 2.0)
    assert official.optim.weight_decay == 4e-5


def test_overrides_parse_yaml_scalars_and_reject_unknown_keys():
    r = apply_overrides(get_recipe("cpu-tiny"), ["optim.lr=0.5", "data.image_size=96",
                                                 "model.box_batch_size_per_image=32"])
    assert r.optim.lr == 0.5 and r.data.image_size == 96
    assert r.model == {"box_batch_size_per_image": 32}
    with pytest.raises(ValueError, match="unknown key 'lrr'"):
        apply_overrides(r, ["optim.lrr=1"])
    with pytest.raises(ValueError, match="KEY=VALUE"):
        apply_overrides(r, ["epochs"])
    with pytest.raises(ValueError, match="expected an integer"):
        apply_overrides(r, ["epochs=many"])
    with pytest.raises(ValueError, match="not one of"):
        apply_overrides(r, ["data.transform=zoom"])


def test_bad_yaml_names_the_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\nmodel_preset: paper\nepochs: [\n")
    with pytest.raises(ValueError, match="bad.yaml"):
        load_recipe(path)
    path.write_text("name: x\nmodel_preset: paper\nepoch: 3\n")
    with pytest.raises(ValueError, match=r"bad.yaml: recipe: unknown key\(s\) \['epoch'\]"):
        load_recipe(path)


def test_lr_schedule_warmup_then_step_decay():
    f = lambda s: lr_factor(s, 100, warmup_steps=10, warmup_factor=0.1, decay_at=(0.5, 0.8), gamma=0.1)  # noqa: E731
    assert f(0) == pytest.approx(0.1)
    assert f(5) == pytest.approx(0.55)
    assert f(10) == 1.0 and f(49) == 1.0
    assert f(50) == pytest.approx(0.1) and f(79) == pytest.approx(0.1)
    assert f(80) == pytest.approx(0.01)


def test_lr_schedule_cosine_reaches_its_final_factor():
    f = lambda s: lr_factor(s, 100, warmup_steps=0, warmup_factor=1.0, decay_at=(), gamma=0.1,  # noqa: E731
                            schedule="cosine", final_factor=0.05)
    assert f(0) == 1.0
    assert f(50) == pytest.approx(0.05 + 0.95 * 0.5)
    assert f(100) == pytest.approx(0.05)
    assert f(250) == pytest.approx(0.05)  # past the end it stays at the floor
    assert all(f(s) > f(s + 1) for s in range(99))
    with pytest.raises(ValueError, match="schedule"):
        lr_factor(1, 10, 0, 1.0, (), 0.1, schedule="linear")


def test_lr_schedule_follows_progress_when_given():
    # Under a time budget the module passes progress = max(steps share, time share): a run
    # whose clock is 90% spent after 10% of its steps is already past both decays.
    f = lambda s, progress: lr_factor(s, 100, warmup_steps=0, warmup_factor=1.0,  # noqa: E731
                                      decay_at=(0.5, 0.8), gamma=0.1, progress=progress)
    assert f(10, progress=0.1) == 1.0
    assert f(10, progress=0.5) == pytest.approx(0.1)
    assert f(10, progress=0.9) == pytest.approx(0.01)


def test_lr_scales_with_the_total_batch():
    r = get_recipe("fashionpedia-r50-3x")  # 0.02 at 64 images per step
    r = apply_overrides(r, ["data.batch_size=4"])
    assert effective_lr(r, world_size=16) == pytest.approx(0.02)
    assert effective_lr(r, world_size=1) == pytest.approx(0.02 / 16)
    assert not math.isnan(effective_lr(get_recipe("cpu-tiny"), 1))


def _data_module(shapes, *overrides: str):
    """The cpu-tiny data module on the shapes set, with ``overrides`` (no workers)."""
    from fashionkit.data import read_annotations
    from fashionkit.engine.data import FashionDataModule

    train_json, val_json, images = shapes
    recipe = apply_overrides(get_recipe("cpu-tiny"), [*overrides, "data.num_workers=0"])
    return FashionDataModule(recipe, read_annotations(train_json)[0],
                             read_annotations(val_json)[0], images)


def test_crop_size_trains_on_windows_and_validates_on_whole_images(shapes):
    module = _data_module(shapes, "data.image_size=64", "data.crop_size=40")
    image, target = module.train_dataset[0]
    assert image.shape == (3, 40, 40) and target["masks"].shape[-2:] == (40, 40)
    image, target = module.val_dataset[0]
    assert image.shape == (3, 64, 64)


def test_repeat_threshold_oversamples_images_of_rare_categories(shapes):
    import json

    from fashionkit.data.samplers import repeat_factors

    train_json = shapes[0]
    module = _data_module(shapes, "data.batch_size=1", "data.repeat_threshold=1.0")
    sampler = module.train_dataloader().batch_sampler
    doc = json.loads(train_json.read_text())
    ids = module.train_dataset.image_ids
    cats = [[a["category_id"] for a in doc["annotations"] if a["image_id"] == i] for i in ids]
    assert sampler.repeat_factors.tolist() == pytest.approx(repeat_factors(cats, 1.0))
    assert max(sampler.repeat_factors) > 1.0
    assert len(sampler) >= len(ids)
    # Validation never repeats.
    assert module.val_dataloader().batch_sampler.repeat_factors is None


def test_auto_precision_uses_bf16_only_where_the_hardware_runs_it(monkeypatch):
    import torch

    from fashionkit.engine.train import resolve_precision

    assert get_recipe("cpu-tiny").precision == "auto"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    assert resolve_precision("auto") == "32-true"  # emulated bf16 is slower than fp32
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True, raising=False)
    assert resolve_precision("auto", "cpu") == "bf16-mixed"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    assert resolve_precision("auto", "gpu") == "16-mixed"
    assert resolve_precision("auto", "cpu") == "bf16-mixed"  # the accelerator asked for decides
    assert resolve_precision("32-true") == "32-true" and resolve_precision("16-mixed") == "16-mixed"
