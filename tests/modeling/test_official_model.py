"""The official Attribute-Mask R-CNN port: its parts against formulas written out here from
the official code's definitions, and (``test_golden_*``) the whole model against the golden
outputs of the official TensorFlow code on identical weights."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from fashionkit.modeling import PRESETS, build_model
from fashionkit.modeling.official import OfficialAttributeMaskRCNN
from fashionkit.modeling.official.backbone import SameConv2d, SameMaxPool2d, same_padding
from fashionkit.modeling.official.rpn import (
    anchors_for_level,
    clip_boxes,
    decode_boxes,
    propose,
)


# -- TF 'SAME' padding ------------------------------------------------------------------------
@pytest.mark.parametrize("size,kernel,stride,expected", [
    (8, 3, 2, (0, 1)),   # even input, stride 2: the extra pixel after, none before
    (7, 3, 2, (1, 1)),
    (8, 3, 1, (1, 1)),
    (9, 1, 2, (0, 0)),
    (10, 7, 2, (2, 3)),
])
def test_same_padding(size, kernel, stride, expected):
    assert same_padding(size, kernel, stride) == expected
    before, after = expected
    assert (size + before + after - kernel) // stride + 1 == math.ceil(size / stride)


def test_same_max_pool_windows_start_at_the_first_pixel():
    x = torch.randn(2, 3, 8, 10)
    ours = SameMaxPool2d(3, 2)(x)
    # TF 'SAME' on 8 (and 10): windows [0..2], [2..4], …, the last one cut at the border.
    ref = torch.empty(2, 3, 4, 5)
    for i in range(4):
        for j in range(5):
            ref[:, :, i, j] = x[:, :, 2 * i:2 * i + 3, 2 * j:2 * j + 3].amax(dim=(-1, -2))
    assert torch.equal(ours, ref)
    assert not torch.equal(ours, F.max_pool2d(x, 3, 2, padding=1))  # PyTorch's differs


def test_same_conv_pads_after_on_even_inputs():
    conv = SameConv2d(2, 4, 3, stride=2)
    x = torch.randn(1, 2, 8, 8)
    ref = F.conv2d(F.pad(x, (0, 1, 0, 1)), conv.weight, conv.bias, stride=2)
    assert torch.allclose(conv(x), ref, atol=1e-6)
    assert conv(x).shape[-2:] == (4, 4)


# -- anchors and box coding -------------------------------------------------------------------
def test_anchors_of_a_level_by_hand():
    # Level 3 (stride 8) of a 16×16 input: 2×2 positions, centres 4 and 12; anchor side 24;
    # aspect ratios (w/h) 1, 2, 0.5 in that order; order (row, column, anchor).
    anchors = anchors_for_level(3, 24.0, (1.0, 2.0, 0.5), 2, 2)
    s2 = math.sqrt(2.0)
    expected = []
    for cy in (4.0, 12.0):
        for cx in (4.0, 12.0):
            for hh, hw in ((12.0, 12.0), (12.0 / s2, 12.0 * s2), (12.0 * s2, 12.0 / s2)):
                expected.append([cy - hh, cx - hw, cy + hh, cx + hw])
    assert torch.allclose(anchors, torch.tensor(expected, dtype=torch.float32), atol=1e-5)


def test_decode_boxes_by_the_official_formulas():
    anchors = torch.tensor([[10.0, 20.0, 33.0, 51.0], [0.0, 0.0, 7.0, 7.0]])
    deltas = torch.tensor([[0.1, -0.2, 0.3, -0.4], [0.0, 0.0, 10.0, -1.0]])
    out = decode_boxes(deltas, anchors)
    for k in range(2):
        y1, x1, y2, x2 = anchors[k].tolist()
        dy, dx, dh, dw = deltas[k].tolist()
        dh, dw = min(dh, math.log(1000 / 16)), min(dw, math.log(1000 / 16))
        h, w = y2 - y1 + 1, x2 - x1 + 1  # the legacy "+1" convention
        cy, cx = y1 + 0.5 * h, x1 + 0.5 * w
        ny, nx = dy * h + cy, dx * w + cx
        nh, nw = math.exp(dh) * h, math.exp(dw) * w
        top, left = ny - 0.5 * nh, nx - 0.5 * nw
        ref = [top, left, top + nh - 1, left + nw - 1]
        assert out[k].tolist() == pytest.approx(ref, rel=1e-5, abs=1e-4)


def test_clip_boxes_to_h_minus_one():
    boxes = torch.tensor([[-5.0, -1.0, 300.0, 100.0]])
    assert clip_boxes(boxes, 256, 128).tolist() == [[0.0, 0.0, 255.0, 100.0]]


# -- proposals --------------------------------------------------------------------------------
def _one_level(boxes_yxyx, logits):
    """Head outputs of a 1×N "level" (A = 1) with ``boxes_yxyx`` as anchors and zero deltas
    (which decode an anchor to itself under the +1 convention)."""
    boxes = torch.tensor(boxes_yxyx, dtype=torch.float32)
    n = boxes.shape[0]
    scores = torch.tensor(logits, dtype=torch.float32).reshape(1, 1, n)
    deltas = torch.zeros(4, 1, n)
    return scores, deltas, boxes


def test_proposals_nms_padding_and_order():
    # Two boxes overlapping at IoU > 0.7, one apart, one clipped away entirely (all zeros).
    boxes = [[10, 10, 50, 50], [11, 11, 51, 51], [100, 100, 140, 140], [-60, -60, -20, -20]]
    scores, deltas, anchors = _one_level(boxes, [2.0, 3.0, 1.0, 4.0])
    out_boxes, out_scores = propose({3: scores}, {3: deltas}, {3: anchors}, (256, 256),
                                    pre_nms_top_n=10, post_nms_top_n=10, nms_thresh=0.7)
    sig = torch.sigmoid(torch.tensor([3.0, 1.0]))
    # min(4 anchors, 10) = 4 slots: the two kept, then empty boxes of score -1.
    assert out_scores.tolist() == pytest.approx([sig[0].item(), sig[1].item(), -1.0, -1.0])
    assert out_boxes[0].tolist() == [11, 11, 51, 51]
    assert out_boxes[1].tolist() == [100, 100, 140, 140]
    assert out_boxes[2:].abs().sum() == 0


def test_proposals_per_level_top_k_then_overall_top_k():
    a_boxes = [[0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50]]
    b_boxes = [[60, 60, 70, 70], [80, 80, 90, 90]]
    s3, d3, a3 = _one_level(a_boxes, [1.0, 5.0, 3.0])
    s4, d4, a4 = _one_level(b_boxes, [4.0, 2.0])
    boxes, scores = propose({3: s3, 4: s4}, {3: d3, 4: d4}, {3: a3, 4: a4}, (256, 256),
                            pre_nms_top_n=2, post_nms_top_n=3, nms_thresh=0.7)
    # level 3 keeps its best 2 (5, 3), level 4 both (4, 2); overall the best 3.
    expected = torch.sigmoid(torch.tensor([5.0, 4.0, 3.0]))
    assert torch.allclose(scores, expected)
    assert boxes.tolist() == [[20, 20, 30, 30], [60, 60, 70, 70], [40, 40, 50, 50]]


# -- the model --------------------------------------------------------------------------------
def test_build_model_dispatches_and_state_dict_layout():
    with torch.device("meta"):
        model = build_model(PRESETS["official-r50"])
    assert isinstance(model, OfficialAttributeMaskRCNN)
    keys = set(model.state_dict())
    for key in ("backbone.body.conv1.weight", "backbone.body.bn1.running_var",
                "backbone.body.layer1.0.downsample.0.weight",
                "backbone.body.layer4.2.conv3.weight", "backbone.fpn.lateral.3.weight",
                "backbone.fpn.output.5.bias", "backbone.fpn.p6.weight", "backbone.fpn.p7.bias",
                "backbone.fpn.norm.7.running_mean", "rpn.conv.weight", "rpn.norm.3.weight",
                "rpn.norm.7.running_var", "rpn.cls_logits.weight", "rpn.bbox_pred.bias"):
        assert key in keys, key
    assert not any(k.startswith("backbone.body.fc") for k in keys)
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    assert bns and all(m.eps == 1e-3 for m in bns)
    assert sum(p.numel() for p in model.parameters()) == 46_365_839  # TF: 46.4M
    with torch.device("meta"):
        r101 = build_model(PRESETS["official-r101"])
    assert "backbone.body.layer3.22.conv3.weight" in r101.state_dict()


def test_preprocess_normalises_and_pads_to_128():
    with torch.device("meta"):
        model = build_model(PRESETS["official-r50"])
    model.image_mean = torch.tensor(PRESETS["official-r50"].image_mean).view(3, 1, 1)
    model.image_std = torch.tensor(PRESETS["official-r50"].image_std).view(3, 1, 1)
    image = torch.rand(3, 170, 256)
    batch = model.preprocess([image])
    assert batch.images.shape == (1, 3, 256, 256)
    assert batch.sizes == [(170, 256)] and batch.clip_sizes == [(256, 256)]
    mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
    assert torch.allclose(batch.images[0, :, :170], (image - mean) / std)
    assert batch.images[0, :, 170:].abs().sum() == 0
