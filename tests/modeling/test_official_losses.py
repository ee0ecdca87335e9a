"""The official architecture's training targets and losses against the official TensorFlow code:
``golden/official_losses.npz`` was computed by ``golden/make_official_losses.py`` with the
reference (``~/tfref``); these tests feed the same inputs to :mod:`fashionkit.modeling.official`'s
pure functions. The random subsampling is compared by what it must satisfy (its counts)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from fashionkit.modeling.official import losses, targets
from fashionkit.modeling.official.rpn import anchors_for_level, decode_boxes

GOLDEN = Path(__file__).parent / "golden" / "official_losses.npz"
SCRIPT = Path(__file__).parent / "golden" / "make_official_losses.py"
TFREF = Path.home() / "tfref" / "bin" / "python"
LEVELS = range(3, 8)
RTOL = 1e-5


@pytest.fixture(scope="module")
def golden() -> dict[str, np.ndarray]:
    with np.load(GOLDEN) as data:
        return {k: data[k] for k in data.files}


def t(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x))


def _level_rows(size: int) -> list[int]:
    return [(size // 2 ** k) ** 2 * 3 for k in LEVELS]


def test_anchors_are_the_official_ones(golden):
    size = int(golden["image_size"])
    ours = torch.cat([anchors_for_level(k, 3.0 * 2 ** k, (1.0, 2.0, 0.5), size // 2 ** k,
                                        size // 2 ** k) for k in LEVELS])
    np.testing.assert_allclose(ours.numpy(), golden["anchors"], rtol=0, atol=1e-4)


def test_anchor_matches_and_box_targets(golden):
    anchors = t(golden["anchors"])
    for b in range(2):
        gt = t(golden["gt_boxes"][b])
        matches = targets.match_anchors(targets.anchor_iou(gt, anchors))
        np.testing.assert_array_equal(matches.numpy(), golden["anchor_matches"][b])
        _, box_targets = targets.label_anchors(anchors, gt)
        np.testing.assert_allclose(box_targets.numpy(), golden["rpn_box_targets"][b],
                                   rtol=RTOL, atol=1e-6)
    # the case has both kinds: matched by IoU ≥ 0.7 and forced (the tiny box's best anchor)
    assert (golden["anchor_matches"] >= 0).sum() > 6
    assert (golden["anchor_matches"] == -2).any()


def test_anchor_sampling_counts_and_constraints(golden):
    """256 per image, at most half positive: the official draw's counts, and only matched
    anchors positive and only negative anchors (IoU < 0.3) negative."""
    anchors = t(golden["anchors"])
    for b in range(2):
        scores, _ = targets.label_anchors(anchors, t(golden["gt_boxes"][b]),
                                          generator=torch.Generator().manual_seed(b))
        matches = golden["anchor_matches"][b]
        assert int((scores == 1).sum()) == golden["rpn_sampled_pos"][b]
        assert int((scores == 0).sum()) == golden["rpn_sampled_neg"][b]
        assert (matches[scores.numpy() == 1] >= 0).all()
        assert (matches[scores.numpy() == 0] == -1).all()
        official = golden["rpn_score_targets"][b]
        assert (matches[official == 1] >= 0).all() and (matches[official == 0] == -1).all()


def test_sampling_caps_positives_at_half_of_the_batch():
    matches = torch.cat([torch.zeros(300, dtype=torch.int64), torch.full((500,), -1),
                         torch.full((50,), -2)])
    scores = targets.sample_anchors(matches, 256, 0.5, torch.Generator().manual_seed(0))
    assert int((scores == 1).sum()) == 128 and int((scores == 0).sum()) == 128
    assert (scores[800:] == -1).all()


def test_roi_matching_and_box_targets(golden):
    for b in range(2):
        samples = targets.assign_and_sample_rois(
            t(golden["proposals"][b]), t(golden["gt_boxes"][b]),
            t(golden["gt_classes"][b]).long(), t(golden["gt_attributes"][b]),
            num_samples=10_000, fg_fraction=1.0)
        np.testing.assert_allclose(samples.rois.numpy(), golden["roi_rois"][b], rtol=RTOL)
        np.testing.assert_array_equal(samples.classes.numpy(), golden["roi_classes"][b])
        np.testing.assert_array_equal(samples.gt_indices.numpy(), golden["roi_gt_indices"][b])
        np.testing.assert_allclose(samples.gt_boxes.numpy(), golden["roi_gt_boxes"][b],
                                   rtol=RTOL)
        np.testing.assert_allclose(samples.attributes.numpy(), golden["roi_attributes"][b])
        np.testing.assert_allclose(samples.box_targets.numpy(), golden["roi_box_targets"][b],
                                   rtol=RTOL, atol=1e-5)
    # background RoIs overlapping a garment keep its attributes, as the official sampler does
    background = golden["roi_classes"] == 0
    assert golden["roi_attributes"][background].sum() > 0


def test_box_encoding_inverts_the_official_decoding(golden):
    rois, gt = t(golden["roi_rois"][0]), t(golden["roi_gt_boxes"][0])
    fg = t(golden["roi_classes"][0]) > 0
    encoded = targets.encode_boxes(gt[fg], rois[fg])
    decoded = decode_boxes(encoded, rois[fg], (10.0, 10.0, 5.0, 5.0))
    torch.testing.assert_close(decoded, gt[fg], rtol=0, atol=1e-3)


def test_roi_sampling_counts(golden):
    """16 per image, at most 4 foreground: the official draw's counts."""
    for b in range(2):
        boxes = torch.cat([t(golden["proposals"][b]), t(golden["gt_boxes"][b])])
        *_, iou, positive, negative = targets.match_rois(
            boxes, t(golden["gt_boxes"][b]), t(golden["gt_classes"][b]).long(),
            t(golden["gt_attributes"][b]))
        keep = targets.sample_rois(positive, negative, iou < 0, 16, 0.25,
                                   torch.Generator().manual_seed(b))
        assert keep.numel() == 16 and bool((keep[1:] > keep[:-1]).all())
        assert int(positive[keep].sum()) == int((golden["roi16_classes"][b] > 0).sum()) == 4


def test_mask_targets(golden):
    for b in range(2):
        gt = t(golden["gt_boxes"][b])
        crops = targets.crop_and_resize_masks(t(golden["gt_masks"][b]), gt)
        np.testing.assert_allclose(crops.numpy(), golden["mask_crops"][b], rtol=RTOL, atol=1e-6)
        samples = targets.RoISamples(
            rois=t(golden["roi_rois"][b]), gt_boxes=t(golden["roi_gt_boxes"][b]),
            classes=t(golden["roi_classes"][b]), attributes=t(golden["roi_attributes"][b]),
            gt_indices=t(golden["roi_gt_indices"][b]),
            box_targets=t(golden["roi_box_targets"][b]))
        rois, classes, masks = targets.mask_targets(samples, gt, t(golden["gt_masks"][b]),
                                                    max_rois=8)
        n = rois.shape[0]
        assert n == 8  # both images have ≥ 8 foreground RoIs: no background padding
        np.testing.assert_allclose(rois.numpy(), golden["mask_rois"][b][:n], rtol=RTOL)
        np.testing.assert_array_equal(classes.numpy(), golden["mask_classes"][b][:n])
        np.testing.assert_allclose(masks.numpy(), golden["mask_targets"][b][:n], rtol=RTOL,
                                   atol=1e-5)
    assert 0 < golden["mask_targets"].mean() < 1
    assert ((golden["mask_targets"] > 0.01) & (golden["mask_targets"] < 0.99)).any()  # soft


def _rel(ours: torch.Tensor, ref: np.ndarray) -> float:
    return abs(float(ours) - float(ref)) / abs(float(ref))


def test_rpn_losses(golden):
    rows = _level_rows(int(golden["image_size"]))
    logits = t(golden["rpn_logits"]).split(rows, dim=1)
    scores = t(golden["rpn_score_targets"]).split(rows, dim=1)
    deltas = t(golden["rpn_deltas"]).split(rows, dim=1)
    boxes = t(golden["rpn_box_targets"]).split(rows, dim=1)
    assert _rel(losses.rpn_score_loss(logits, scores, 256), golden["rpn_score_loss"]) < RTOL
    assert _rel(losses.rpn_box_loss(deltas, boxes), golden["rpn_box_loss"]) < RTOL


def test_fast_rcnn_and_attribute_losses(golden):
    classes = t(golden["roi_classes"]).reshape(-1)
    assert _rel(losses.fast_rcnn_class_loss(t(golden["class_logits"]).reshape(classes.numel(),
                                                                             -1), classes),
                golden["fast_rcnn_class_loss"]) < RTOL
    box = losses.fast_rcnn_box_loss(t(golden["box_outputs"]).reshape(classes.numel(), -1),
                                    classes, t(golden["roi_box_targets"]).reshape(-1, 4))
    assert _rel(box, golden["fast_rcnn_box_loss"]) < RTOL
    attributes = losses.attribute_loss(t(golden["attribute_logits"]).reshape(classes.numel(), -1),
                                       t(golden["roi_attributes"]).reshape(classes.numel(), -1))
    assert _rel(attributes, golden["attribute_loss"]) < RTOL


def test_mask_loss(golden):
    logits = t(golden["mask_logits"]).reshape(-1, 28, 28)
    loss = losses.mask_loss(logits, t(golden["mask_targets"]).reshape(-1, 28, 28),
                            t(golden["mask_classes"]).reshape(-1))
    assert _rel(loss, golden["mask_loss"]) < RTOL


def test_losses_without_foreground_are_zero_and_keep_the_graph():
    deltas = torch.randn(6, 20, requires_grad=True)
    box = losses.fast_rcnn_box_loss(deltas, torch.zeros(6, dtype=torch.int64), torch.zeros(6, 4))
    mask = losses.mask_loss(torch.zeros(0, 28, 28, requires_grad=True), torch.zeros(0, 28, 28),
                            torch.zeros(0, dtype=torch.int64))
    assert float(box) == 0.0 and float(mask) == 0.0
    box.backward()
    assert deltas.grad is not None and float(deltas.grad.abs().sum()) == 0.0


def test_no_ground_truth_gives_background_rois():
    proposals = torch.tensor([[0.0, 0, 20, 20], [5, 5, 40, 30], [10, 10, 60, 60]])
    samples = targets.assign_and_sample_rois(proposals, torch.zeros(0, 4),
                                             torch.zeros(0, dtype=torch.int64),
                                             torch.zeros(0, 6), num_samples=512)
    assert samples.rois.shape == (3, 4) and (samples.classes == 0).all()
    assert (samples.box_targets == 0).all() and (samples.attributes == 0).all()
    scores, box_targets = targets.label_anchors(proposals, torch.zeros(0, 4))
    assert (scores == 0).all() and (box_targets == 0).all()


@pytest.mark.slow
@pytest.mark.skipif(not TFREF.exists(), reason="needs the reference venv ~/tfref (TensorFlow)")
def test_golden_regenerates_identically(tmp_path, golden):
    out = tmp_path / "official_losses.npz"
    subprocess.run([str(TFREF), str(SCRIPT), "--out", str(out)], check=True, timeout=600,
                   capture_output=True)
    with np.load(out) as fresh:
        assert sorted(fresh.files) == sorted(golden)
        for key in fresh.files:
            np.testing.assert_allclose(fresh[key], golden[key], rtol=1e-6, err_msg=key)
