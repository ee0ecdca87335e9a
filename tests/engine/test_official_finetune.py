"""Fine-tuning an official-architecture checkpoint: ``fashionkit train --recipe finetune
--weights MODEL.pt`` on a tiny synthetic world, then ``fashionkit detect`` with the result; the
BatchNorm policy; and the loss falling when the model overfits one image.

The official architecture needs a ResNet-50; everything after it is shrunk (FPN and heads
narrow, few proposals and RoIs) so that a step takes about a second on 2 CPU cores."""

from __future__ import annotations

import csv
import functools
import json
import math

import pytest
import torch
from typer.testing import CliRunner

from fashionkit.cli import app
from fashionkit.data.input_recipe import DataConfig
from fashionkit.modeling import build_model, model_config_from_preset, read_checkpoint
from fashionkit.modeling.checkpoint import save_checkpoint
from fashionkit.modeling.official.backbone import FrozenStatsBatchNorm1d, FrozenStatsBatchNorm2d

SMALL = {
    "fpn_channels": 32, "representation_size": 64, "mask_head_channels": 32,
    "box_head_convs": 1, "mask_head_convs": 1,
    "rpn_pre_nms_top_n_train": 300, "rpn_post_nms_top_n_train": 100,
    "rpn_pre_nms_top_n_test": 300, "rpn_post_nms_top_n_test": 100,
    "box_batch_size_per_image": 64, "mask_rois_per_image": 8, "box_detections_per_img": 20,
}


def small_official(**overrides):
    """The small official model, random weights, its BatchNorms' moving statistics those of
    the synthetic image below (as a trained checkpoint's are of its data: with the initial
    statistics, 0 and 1, a frozen BatchNorm does not normalise and a random ResNet diverges)."""
    model = build_model(model_config_from_preset("official-r50", **{**SMALL, **overrides}))
    model.load_state_dict(_calibrated_state())
    return model


@functools.lru_cache(maxsize=1)
def _calibrated_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    calibrate = build_model(model_config_from_preset("official-r50", **{**SMALL, "norm": "bn"}))
    norms = [m for m in calibrate.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for m in norms:
        m.momentum = None  # a plain average over the calibration passes
    image, target = _one_image()
    calibrate.train()
    with torch.no_grad():
        calibrate.losses([image, image.flip(-1)], [target, target])
    return calibrate.state_dict()


def official_checkpoint(path, image_size: int):
    """A random-weight official model saved as a converted checkpoint is (config ``norm="bn"``,
    a recipe whose input is the ``official`` transform)."""
    model = small_official()
    recipe = {"data": DataConfig(transform="official", image_size=image_size).to_dict()}
    save_checkpoint(model, path, extra={"recipe": recipe})
    return path


def _invoke(*args) -> str:
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.output


def test_finetune_a_converted_checkpoint_then_detect(tmp_path):
    world = tmp_path / "world"
    _invoke("synth", world, "--images", "4", "--size", "128", "--val-fraction", "0.5",
            "--format", "png")
    base = official_checkpoint(tmp_path / "official.pt", image_size=128)
    run = tmp_path / "run"
    _invoke("train", "--recipe", "finetune", "--weights", base, "--train", world / "train.json",
            "--val", world / "val.json", "--images", world / "images", "--out", run,
            "--epochs", "1", "--no-eval", "--no-progress", "--accelerator", "cpu",
            "--set", "data.image_size=128", "--set", "data.batch_size=2",
            "--set", "data.num_workers=0", "--set", "precision=32-true",
            "--set", "optim.warmup_steps=0")
    tuned = read_checkpoint(run / "model.pt")
    config = tuned["config"]
    assert config["architecture"] == "official" and config["norm"] == "frozen_bn"
    assert config["trainable_backbone_layers"] == 3
    assert config["fpn_channels"] == SMALL["fpn_channels"]  # the checkpoint's, not a preset's
    assert tuned["recipe"]["data"]["transform"] == "official"
    before, after = read_checkpoint(base)["model"], tuned["model"]
    assert not torch.equal(before["roi_heads.class_logits.weight"],
                           after["roi_heads.class_logits.weight"])
    assert not torch.equal(before["backbone.body.layer4.0.conv1.weight"],
                           after["backbone.body.layer4.0.conv1.weight"])
    for key in ("backbone.body.conv1.weight", "backbone.body.layer1.0.conv1.weight",
                "backbone.body.bn1.running_mean", "backbone.fpn.norm.3.running_var",
                "roi_heads.box_fc_bn.weight", "rpn.norm.5.bias"):
        assert torch.equal(before[key], after[key]), key
    with (run / "metrics.csv").open() as fh:
        row = next(csv.DictReader(fh))
    for name in ("train_rpn_class_loss", "train_loss_mask", "val_mrcnn_bbox_loss",
                 "train_mrcnn_attribute_loss"):
        assert math.isfinite(float(row[name])), name

    out = tmp_path / "detect"
    _invoke("detect", world / "images", "--weights", run / "model.pt", "--out", out,
            "--score-threshold", "0.0", "--no-visuals", "--workers", "0")
    results = json.loads((out / "results.json").read_text())
    assert results and all(set(r) >= {"image_id", "category_id", "bbox", "segmentation"}
                           for r in results)


def test_finetune_without_weights_is_refused(tmp_path):
    result = CliRunner().invoke(app, ["train", "--recipe", "finetune", "--train", "x.json",
                                      "--images", str(tmp_path), "--out", str(tmp_path / "r")])
    assert result.exit_code == 2
    assert "--weights" in result.output


def _one_image():
    g = torch.Generator().manual_seed(1)
    image = torch.rand(3, 128, 128, generator=g) * 0.2
    masks = torch.zeros(2, 128, 128, dtype=torch.uint8)
    masks[0, 16:80, 24:72] = 1
    masks[1, 72:120, 60:124] = 1
    image[:, masks[0].bool()] += torch.tensor([0.7, 0.1, 0.1])[:, None]
    image[:, masks[1].bool()] += torch.tensor([0.1, 0.1, 0.7])[:, None]
    attributes = torch.zeros(2, 294)
    attributes[0, 3] = attributes[1, 100] = 1
    target = {"boxes": torch.tensor([[24.0, 16, 72, 80], [60, 72, 124, 120]]),
              "labels": torch.tensor([1, 32]), "masks": masks, "attributes": attributes}
    return image, target


def _train(model, images, targets, steps: int, lr: float) -> list[dict[str, float]]:
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=lr, momentum=0.9)
    history = []
    for _ in range(steps):
        torch.manual_seed(len(history))
        losses = model.losses(images, targets)
        opt.zero_grad()
        torch.stack(list(losses.values())).sum().backward()
        # Clipped as the cpu-tiny recipe clips: a random network whose BatchNorms are frozen
        # does not renormalise what a large first step does to it.
        torch.nn.utils.clip_grad_norm_(params, 10.0)
        opt.step()
        history.append({k: float(v.detach()) for k, v in losses.items()})
    return history


def test_frozen_bn_keeps_statistics_and_affine_and_trains_convs():
    model = small_official(norm="frozen_bn", trainable_backbone_layers=1)
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    assert norms and all(isinstance(m, FrozenStatsBatchNorm2d | FrozenStatsBatchNorm1d)
                         for m in norms)
    assert all(not p.requires_grad for m in norms for p in m.parameters())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    image, target = _one_image()
    _train(model, [image], [target], steps=1, lr=0.01)
    after = model.state_dict()
    bn_keys = [k for k in before if k.endswith(("running_mean", "running_var", "bn1.weight",
                                                "box_fc_bn.weight", "norm.3.bias"))]
    assert bn_keys and all(torch.equal(before[k], after[k]) for k in bn_keys)
    for key in ("backbone.body.layer4.2.conv3.weight", "backbone.fpn.lateral.3.weight",
                "rpn.conv.weight", "roi_heads.box_convs.0.conv.weight"):
        assert not torch.equal(before[key], after[key]), key


def test_trained_bn_updates_statistics_and_affine():
    model = small_official(norm="bn", trainable_backbone_layers=2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    image, target = _one_image()
    # Two images: P7 of a 128² input is 1×1, and BatchNorm needs more than one value per channel.
    _train(model, [image, image.flip(-1)], [target, target], steps=1, lr=0.01)
    after = model.state_dict()
    for key in ("backbone.body.layer4.0.bn1.running_mean", "backbone.fpn.norm.4.running_var",
                "roi_heads.box_fc_bn.running_mean", "backbone.body.layer4.0.bn1.weight",
                "backbone.fpn.norm.4.bias", "backbone.body.layer3.1.conv2.weight"):
        assert not torch.equal(before[key], after[key]), key
    # trainable_backbone_layers=2: the stem, layer1 and layer2 keep their parameters (their
    # moving statistics still update in training mode, as in torchvision)
    for key in ("backbone.body.conv1.weight", "backbone.body.layer2.0.conv1.weight",
                "backbone.body.bn1.weight"):
        assert torch.equal(before[key], after[key]), key
    assert not torch.equal(before["backbone.body.bn1.running_mean"],
                           after["backbone.body.bn1.running_mean"])


def _overfit(steps: int, trainable_layers: int) -> list[dict[str, float]]:
    model = small_official(norm="frozen_bn", trainable_backbone_layers=trainable_layers)
    image, target = _one_image()
    return _train(model, [image], [target], steps=steps, lr=0.002)


def test_overfitting_one_image_lowers_the_loss():
    """Small variant: the ResNet frozen, 5 steps."""
    history = _overfit(5, trainable_layers=0)
    first, last = sum(history[0].values()), sum(history[-1].values())
    assert last < 0.7 * first, (first, last)
    assert history[-1]["loss_classifier"] < history[0]["loss_classifier"]


@pytest.mark.slow
def test_overfitting_one_image_with_the_resnet_training_lowers_the_loss():
    """20 steps, the ResNet's top three stages trained: the total, the RPN's and the
    classifier's losses fall."""
    history = _overfit(20, trainable_layers=3)
    for name in ("rpn_class_loss", "loss_classifier"):
        start = sum(h[name] for h in history[:3]) / 3
        end = sum(h[name] for h in history[-3:]) / 3
        assert end < start, (name, start, end)
    assert sum(history[-1].values()) < 0.6 * sum(history[0].values())


def test_finetune_takes_the_checkpoints_config_and_transform(tmp_path):
    from fashionkit.engine import get_recipe
    from fashionkit.engine.train import model_config_for, recipe_for_weights
    from fashionkit.errors import InvalidDataError

    recipe = get_recipe("finetune")
    tiny = model_config_from_preset("cpu-tiny", num_attributes=294)
    path = tmp_path / "tiny.pt"
    save_checkpoint(build_model(tiny), path,
                    extra={"recipe": {"data": DataConfig(transform="keep-ratio").to_dict()}})
    resolved = recipe_for_weights(recipe, path)
    config = model_config_for(resolved)
    assert config == tiny.replace(norm="frozen_bn", trainable_backbone_layers=3)
    assert resolved.data.transform == "keep-ratio"
    assert resolved.data.image_size == recipe.data.image_size  # sizes stay the recipe's

    gn = tmp_path / "gn.pt"
    save_checkpoint(build_model(tiny.replace(norm="gn")), gn)
    with pytest.raises(InvalidDataError, match="model.norm=gn"):
        recipe_for_weights(recipe, gn)

    backbone_only = tmp_path / "resnet.pth"  # carries no config: the preset applies
    torch.save({"conv1.weight": torch.zeros(1), "layer1.0.conv1.weight": torch.zeros(1)},
               backbone_only)
    assert recipe_for_weights(recipe, backbone_only) == recipe
    with pytest.raises(ValueError, match="--weights"):
        recipe_for_weights(recipe, None)
