import pickle

import pytest
import torch
import torchvision
from modeling_samples import FAST, make_sample

from fashionkit.errors import InvalidDataError
from fashionkit.modeling import (
    build_model,
    load_checkpoint,
    load_weights,
    model_config_from_preset,
    read_checkpoint,
    save_checkpoint,
)
from fashionkit.modeling.weights import CLASS_SPECIFIC_PREFIXES

CLASS_SPECIFIC = {p + s for p in CLASS_SPECIFIC_PREFIXES for s in ("weight", "bias")}


@pytest.mark.parametrize(
    "builder, preset",
    [
        (torchvision.models.detection.maskrcnn_resnet50_fpn, "paper"),
        (torchvision.models.detection.maskrcnn_resnet50_fpn_v2, "fashionpedia-r50"),
    ],
)
def test_torchvision_coco_mask_rcnn_loads_with_class_layers_reinitialised(tmp_path, builder, preset):
    torch.manual_seed(0)
    coco = builder(weights=None, weights_backbone=None, num_classes=91)
    coco_state = coco.state_dict()
    path = tmp_path / "coco.pth"
    torch.save(coco_state, path)

    model = build_model(model_config_from_preset(preset, backbone="resnet50"))
    fresh = {k: v.clone() for k, v in model.state_dict().items()}
    report = load_weights(model, path)
    assert report.kind == "detection"
    assert set(report.reinitialized) == CLASS_SPECIFIC
    assert all(n.startswith("roi_heads.attribute_predictor.") for n in report.not_in_file
               if not n.endswith("num_batches_tracked"))
    state = model.state_dict()
    assert state["roi_heads.box_predictor.cls_score.weight"].shape == (47, 1024)
    assert state["roi_heads.mask_predictor.mask_fcn_logits.weight"].shape[0] == 47
    for name in CLASS_SPECIFIC:
        assert torch.equal(state[name], fresh[name])
    # Without pretrained weights torchvision builds plain BatchNorm, whose step counters our
    # frozen BatchNorm does not have; they are reported as ignored.
    assert all(n.endswith("num_batches_tracked") for n in report.ignored)
    for name, value in coco_state.items():
        if name not in CLASS_SPECIFIC and name not in report.ignored:
            assert torch.equal(state[name], value), name
    assert report.loaded == len(coco_state) - len(CLASS_SPECIFIC) - len(report.ignored) > 0


def test_weights_of_another_architecture_are_refused(tmp_path):
    path = tmp_path / "v1.pth"
    torch.save(torchvision.models.detection.maskrcnn_resnet50_fpn(
        weights=None, weights_backbone=None).state_dict(), path)
    model = build_model(model_config_from_preset("fashionpedia-r50"))  # v2 heads
    with pytest.raises(InvalidDataError, match="v1.pth.*do not fit"):
        load_weights(model, path)


def test_imagenet_backbone_weights_load_into_the_body(tmp_path):
    torch.manual_seed(1)
    resnet = torchvision.models.resnet18(weights=None)
    path = tmp_path / "resnet18.pth"
    torch.save(resnet.state_dict(), path)
    model = build_model(model_config_from_preset("cpu-tiny"))
    report = load_weights(model, path)
    assert report.kind == "backbone"
    assert "fc.weight" in report.ignored
    assert torch.equal(model.backbone.body.layer3[0].conv1.weight, resnet.layer3[0].conv1.weight)
    assert torch.equal(model.backbone.body.bn1.running_var, resnet.bn1.running_var)
    with pytest.raises(InvalidDataError, match="do not fit backbone resnet50"):
        load_weights(build_model(model_config_from_preset("paper", backbone="resnet50")), path)


def test_checkpoint_round_trip_gives_identical_predictions(tmp_path):
    torch.manual_seed(0)
    config = model_config_from_preset("cpu-tiny", **FAST, box_score_thresh=0.0)
    model = build_model(config)
    images, targets = zip(*[make_sample(64, seed=1)], strict=True)
    model.losses(list(images), list(targets))  # move BatchNorm statistics off their init
    model.eval()
    path = save_checkpoint(model, tmp_path / "run" / "model.pt", extra={"epochs": 3})
    data = torch.load(path, map_location="cpu", weights_only=True)
    assert data["config"] == config.to_dict() and data["epochs"] == 3
    assert read_checkpoint(path)["ontology_version"].startswith("fashionpedia-")

    loaded = load_checkpoint(path)
    assert loaded.config == config and not loaded.training
    a, b = model.predict(list(images))[0], loaded.predict(list(images))[0]
    assert len(a) > 0
    torch.testing.assert_close(a.boxes, b.boxes)
    assert torch.equal(a.masks, b.masks) and a.attribute_ids == b.attribute_ids

    fresh = build_model(config)
    assert load_weights(fresh, path).kind == "checkpoint"
    torch.testing.assert_close(fresh.state_dict(), loaded.state_dict())


def test_checkpoint_from_another_ontology_is_refused(tmp_path):
    model = build_model(model_config_from_preset("cpu-tiny"))
    path = save_checkpoint(model, tmp_path / "m.pt")
    data = torch.load(path, weights_only=True)
    data["ontology_version"] = "fashionpedia-000000000000"
    torch.save(data, path)
    with pytest.raises(InvalidDataError, match="ontology"):
        load_checkpoint(path)


class _Exploit:
    def __reduce__(self):
        return (open, ("/tmp/fashionkit-exploit-ran", "w"))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_crafted_pickle_is_refused_and_not_executed(tmp_path):
    import os

    marker = "/tmp/fashionkit-exploit-ran"
    if os.path.exists(marker):
        os.remove(marker)
    path = tmp_path / "evil.pt"
    with open(path, "wb") as f:
        pickle.dump({"format": "fashionkit-checkpoint", "model": _Exploit()}, f)
    torch.save({"model": _Exploit()}, tmp_path / "evil2.pt")  # runs nothing: only pickles
    assert not os.path.exists(marker)
    for p in (path, tmp_path / "evil2.pt"):
        with pytest.raises(InvalidDataError, match="refused"):
            load_checkpoint(p)
        with pytest.raises(InvalidDataError, match="refused"):
            load_weights(build_model(model_config_from_preset("cpu-tiny")), p)
    assert not os.path.exists(marker)


def test_missing_and_foreign_files_name_the_file(tmp_path):
    model = build_model(model_config_from_preset("cpu-tiny"))
    with pytest.raises(InvalidDataError, match="nope.pt: file: weights file not found"):
        load_weights(model, tmp_path / "nope.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a torch file at all")
    with pytest.raises(InvalidDataError, match="junk.pt"):
        load_weights(model, junk)
    other = tmp_path / "other.pt"
    torch.save({"encoder.weight": torch.zeros(2)}, other)
    with pytest.raises(InvalidDataError, match="unrecognised weights"):
        load_weights(model, other)
    with pytest.raises(InvalidDataError, match="not a fashionkit checkpoint"):
        load_checkpoint(other)
