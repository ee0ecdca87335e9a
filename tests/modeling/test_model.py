import pytest
import torch
from modeling_samples import FAST, make_sample

from fashionkit.modeling import LOSS_NAMES, build_model, model_config_from_preset
from fashionkit.ontology import load_ontology
from fashionkit.structures import Detections


@pytest.mark.parametrize(
    "preset, overrides",
    [
        ("cpu-tiny", {}),
        ("cpu-tiny", {"heads": "v2", "norm": "gn"}),
        ("cpu-tiny", {"attribute_loss": "focal", "attribute_hidden": [64]}),
        ("paper", {"backbone": "resnet50"}),
        ("paper", {}),  # ResNet-101, v1 heads, frozen BN
        ("fashionpedia-r50", {"fpn_channels": 64, "representation_size": 128}),
        ("fashionpedia-r101", {"fpn_channels": 64, "representation_size": 128,
                               "mask_head_channels": 64}),
    ],
)
def test_forward_backward_and_predict_each_variant(preset, overrides):
    torch.manual_seed(0)
    model = build_model(model_config_from_preset(preset, **FAST, **overrides))
    samples = [make_sample(64, n=2, seed=1), make_sample(64, n=1, seed=2)]
    images, targets = zip(*samples, strict=True)
    losses = model.losses(list(images), list(targets))
    assert tuple(losses) == LOSS_NAMES
    assert all(v.ndim == 0 and torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    trained = [p for p in model.parameters() if p.requires_grad]
    assert all(p.grad is not None for p in model.roi_heads.attribute_predictor.parameters())
    assert sum(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in trained) > len(trained) // 2

    model.eval()
    dets = model.predict(list(images))
    assert len(dets) == 2 and all(isinstance(d, Detections) for d in dets)
    assert dets[0].image_size == (64, 64)


def test_images_without_objects_give_zero_box_and_mask_losses(tiny_config):
    torch.manual_seed(0)
    model = build_model(tiny_config)
    empty = [make_sample(64, n=0, seed=s) for s in (3, 4)]
    images, targets = zip(*empty, strict=True)
    losses = model.losses(list(images), list(targets))
    for name in ("rpn_bbox_loss", "loss_box_reg", "loss_mask"):
        assert losses[name].item() == 0.0, name
    # Background RoIs still teach "no attributes" and "background".
    assert losses["loss_classifier"].item() > 0
    assert losses["mrcnn_attribute_loss"].item() > 0
    sum(losses.values()).backward()


def test_losses_in_eval_mode_update_no_batchnorm_statistics(tiny_config):
    torch.manual_seed(0)
    model = build_model(tiny_config)  # cpu-tiny trains plain BatchNorm
    images, targets = zip(*[make_sample(64, n=2, seed=5)], strict=True)
    model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        losses = model.losses(list(images), list(targets))
    assert not model.training and not any(m.training for m in model.modules())
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert set(losses) == set(LOSS_NAMES)

    model.train()
    model.losses(list(images), list(targets))
    changed = [k for k in before if "running_mean" in k and not torch.equal(before[k], after[k])]
    assert changed, "training-mode losses should update BatchNorm statistics"


def test_eval_mode_losses_use_the_training_sampling(tiny_config):
    # With frozen BN the network is the same function in both modes, so with the same seed
    # the losses must be identical: eval-mode losses sample anchors and RoIs as in training.
    config = tiny_config.replace(norm="frozen_bn", trainable_backbone_layers=3)
    torch.manual_seed(0)
    model = build_model(config)
    images, targets = zip(*[make_sample(64, n=2, seed=6), make_sample(64, n=1, seed=7)],
                          strict=True)
    torch.manual_seed(123)
    train_losses = model.train().losses(list(images), list(targets))
    torch.manual_seed(123)
    eval_losses = model.eval().losses(list(images), list(targets))
    for name in LOSS_NAMES:
        torch.testing.assert_close(train_losses[name], eval_losses[name])


def test_predict_returns_the_same_types_in_both_modes(tiny_config):
    model = build_model(tiny_config.replace(norm="frozen_bn", trainable_backbone_layers=0))
    images = [make_sample(64, seed=8)[0]]
    a = model.train().predict(images)
    b = model.eval().predict(images)
    assert type(a) is type(b) is list and torch.equal(a[0].boxes, b[0].boxes)


def test_predict_maps_back_to_original_images(tiny_config):
    torch.manual_seed(0)
    model = build_model(tiny_config.replace(box_score_thresh=0.0)).eval()
    image, _ = make_sample(64, seed=9)
    direct = model.predict([image])[0]
    assert len(direct) > 0
    # The 64×64 input was a 32×48 photo scaled by 4/3 and zero-padded.
    mapped = model.predict([image], original_sizes=[(48, 32)], scales=[4 / 3])[0]
    assert mapped.image_size == (48, 32) and mapped.masks.shape[1:] == (48, 32)
    expected = direct.boxes * 0.75
    expected[:, 0::2] = expected[:, 0::2].clamp(0, 32)
    expected[:, 1::2] = expected[:, 1::2].clamp(0, 48)
    torch.testing.assert_close(mapped.boxes, expected)
    torch.testing.assert_close(mapped.scores, direct.scores)


def test_predictions_use_fashionpedia_ids_and_threshold(tiny_config):
    torch.manual_seed(0)
    model = build_model(tiny_config.replace(box_score_thresh=0.0)).eval()
    image, _ = make_sample(64, seed=10)
    # Force known attribute scores: index 0 and 5 high, everything else low.
    head = model.roi_heads.attribute_predictor.logits
    with torch.no_grad():
        head.weight.zero_()
        head.bias.fill_(-10.0)
        head.bias[0] = 3.0
        head.bias[5] = 1.0
    det = model.predict([image])[0]
    ontology = load_ontology()
    assert len(det) > 0
    assert det.attribute_ids[0] == [ontology.index_to_attribute(0), ontology.index_to_attribute(5)]
    assert model.predict([image], attribute_threshold=0.9)[0].attribute_ids[0] == [
        ontology.index_to_attribute(0)
    ]
    valid = set(ontology.category_ids)
    assert set(det.category_ids.tolist()) <= valid
    assert det.masks.dtype == torch.bool and det.masks.shape[1:] == (64, 64)
    assert bool((det.scores[:-1] >= det.scores[1:]).all())


def test_attribute_scores_follow_the_source_proposal(tiny_config):
    model = build_model(tiny_config)
    heads = model.roi_heads
    # Three proposals: proposal k is confident about class labels[k].
    proposals = [torch.tensor([[0.0, 0, 10, 10], [20, 20, 40, 40], [5, 30, 25, 60]])]
    labels = [7, 2, 30]
    class_logits = torch.full((3, 47), -10.0)
    for k, c in enumerate(labels):
        class_logits[k, c] = 10.0
    box_regression = torch.zeros(3, 47 * 4)
    kept = heads._postprocess(class_logits, box_regression, proposals, [(64, 64)])
    boxes, scores, out_labels, source = kept[0]
    assert len(source) == 3
    for lab, src in zip(out_labels.tolist(), source.tolist(), strict=True):
        assert labels[src] == lab
    torch.testing.assert_close(boxes[out_labels == 2], proposals[0][1:2])


def test_bad_targets_are_reported(tiny_config):
    model = build_model(tiny_config)
    image, target = make_sample(64, n=1)
    bad = dict(target, attributes=torch.zeros(1, 10))
    with pytest.raises(ValueError, match="attributes"):
        model.losses([image], [bad])
    bad = dict(target, labels=torch.tensor([47]))
    with pytest.raises(ValueError, match="labels"):
        model.losses([image], [bad])
    bad = dict(target, boxes=torch.tensor([[10.0, 10, 5, 20]]))
    with pytest.raises(ValueError, match="XYXY"):
        model.losses([image], [bad])


def test_model_transform_can_resize(tiny_config):
    torch.manual_seed(0)
    model = build_model(tiny_config.replace(resize=True, min_size=96, max_size=96)).eval()
    image, target = make_sample(64, seed=11)
    losses = model.losses([image], [target])
    assert all(torch.isfinite(v) for v in losses.values())
    det = model.predict([image])[0]
    assert det.image_size == (64, 64)


def test_predict_in_training_mode_warns_about_batchnorm(tiny_config):
    model = build_model(tiny_config).train()  # cpu-tiny: plain BatchNorm
    with pytest.warns(UserWarning, match="model.eval"):
        model.predict([make_sample(64, seed=12)[0]])


def test_losses_and_predict_under_cpu_bf16_autocast(tiny_config):
    torch.manual_seed(0)
    model = build_model(tiny_config.replace(box_score_thresh=0.0))
    images, targets = zip(*[make_sample(64, n=2, seed=13)], strict=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        losses = model.losses(list(images), list(targets))
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        det = model.eval().predict(list(images))[0]
    assert det.boxes.dtype == torch.float32 and det.attribute_scores.dtype == torch.float32


@pytest.mark.parametrize("canonical,levels", [(224, [0, 0, 0]), (56, [0, 1, 2])])
def test_roi_level_rule_follows_the_canonical_scale(canonical, levels):
    # RoIs of side 20, 40 and 100 px on P2–P5: with the default 224 all pool from P2; scaled
    # to small inputs (56) they spread over P2, P3 and P4 as the FPN paper intends.
    config = model_config_from_preset("cpu-tiny", fpn_levels=[2, 3, 4, 5],
                                      anchor_sizes=[8, 16, 32, 64, 128],
                                      roi_canonical_scale=canonical)
    model = build_model(config).eval()
    model.predict([torch.rand(3, 128, 128)])  # sets up the poolers' level mappers
    boxes = torch.tensor([[0.0, 0, 20, 20], [0, 0, 40, 40], [0, 0, 100, 100]])
    for pool in (model.roi_heads.box_roi_pool, model.roi_heads.mask_roi_pool):
        assert pool.map_levels([boxes]).tolist() == levels
    with pytest.raises(ValueError, match="roi_canonical_scale"):
        config.replace(roi_canonical_scale=0)


def test_mask_rois_per_image_caps_the_mask_branch_at_a_random_subset(tiny_config):
    samples = [make_sample(64, n=3, seed=s) for s in (11, 12)]
    images, targets = (list(x) for x in zip(*samples, strict=True))
    seen: list[int] = []

    def run(cap: int, seed: int) -> dict[str, torch.Tensor]:
        torch.manual_seed(0)
        model = build_model(tiny_config.replace(mask_rois_per_image=cap))
        hook = model.roi_heads.mask_predictor.register_forward_hook(
            lambda m, args, out: seen.append(len(out)))
        torch.manual_seed(seed)
        losses = model.losses(images, targets)
        hook.remove()
        return losses

    full = run(0, seed=1)
    all_positives = seen[-1]
    assert all_positives > 2 * 2  # the ground-truth boxes alone are 3 positives per image
    capped = run(2, seed=1)
    assert seen[-1] == 2 * 2  # 2 per image
    capped_other = run(2, seed=3)
    # A different draw of RoIs gives a different loss; the other heads are untouched.
    assert capped["loss_mask"] != capped_other["loss_mask"]
    assert capped["loss_classifier"] == full["loss_classifier"]
    # A cap above the number of positives changes nothing.
    assert run(10_000, seed=1)["loss_mask"] == full["loss_mask"]
    with pytest.raises(ValueError, match="mask_rois_per_image"):
        tiny_config.replace(mask_rois_per_image=-1)


def test_model_files_share_one_header_and_its_checks(tmp_path):
    from fashionkit.errors import InvalidDataError
    from fashionkit.inference.export import EXPORTED_MODEL
    from fashionkit.modeling import model_config_from_preset
    from fashionkit.modeling.checkpoint import CHECKPOINT

    config = model_config_from_preset("cpu-tiny")
    header = CHECKPOINT.header(config)
    assert set(header) == {"format", "format_version", "config", "ontology_version"}
    assert {**EXPORTED_MODEL.header(config), "format": CHECKPOINT.name} == header
    assert CHECKPOINT.check(header, tmp_path / "m.pt") == config
    with pytest.raises(InvalidDataError, match=r"m\.pt.*not a fashionkit checkpoint \(format "
                                               r"'fashionkit-export'"):
        CHECKPOINT.check(EXPORTED_MODEL.header(config), tmp_path / "m.pt")
    with pytest.raises(InvalidDataError, match="exported model format version 2 is newer"):
        EXPORTED_MODEL.check({**EXPORTED_MODEL.header(config), "format_version": 2}, "m.onnx")
    with pytest.raises(InvalidDataError, match="ontology"):
        CHECKPOINT.check({**header, "ontology_version": "other"}, "m.pt")
