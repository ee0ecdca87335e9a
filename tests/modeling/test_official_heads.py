"""The official Attribute-Mask R-CNN's RoI heads (``fashionkit.modeling.official.heads``).

Three kinds of checks:

- the parts against references written here from the official formulas: RoIAlign (a direct
  per-sample numpy loop), the level rule, box decoding, the post-processing on hand-made
  outputs, the TF → PyTorch weight layouts;
- the whole heads against the official TensorFlow code's own outputs (golden data of
  ``golden/make_official.py``): fed TF's FPN features and proposals, the class/box/attribute
  logits, the detections, masks and attributes must be TF's;
- (slow, needs ``~/tfref``) the heads against the official TF heads run here on random
  features, proposals and weights, including the RoI features themselves.
"""

from __future__ import annotations

import math
import subprocess
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision.ops import box_iou, roi_align

from fashionkit.errors import InvalidDataError
from fashionkit.modeling.config import ModelConfig
from fashionkit.modeling.official import heads as H
from fashionkit.modeling.official.rpn import decode_boxes
from fashionkit.modeling.photo_pixels import paste_masks

GOLDEN_DIR = Path(__file__).parent / "golden" / "official"
TFREF_PYTHON = Path.home() / "tfref" / "bin" / "python"


def _reference() -> Path | None:
    """The official code: ``shared/reference/tensorflow-tpu`` beside the checkout or one level
    further up (for a checkout inside another folder)."""
    for up in (3, 4):
        path = Path(__file__).resolve().parents[up] / "shared" / "reference" / "tensorflow-tpu"
        if path.is_dir():
            return path
    return None

SMALL = ModelConfig(num_classes=4, num_attributes=3, fpn_channels=8, representation_size=16,
                    mask_head_channels=8)


# --------------------------------------------------------------------------- RoIAlign


def _pyramid(channels: int = 5, size: int = 256, batch: int = 2, seed: int = 0
             ) -> dict[int, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {lv: torch.randn(batch, channels, size >> lv, size >> lv, generator=g)
            for lv in range(3, 8)}


def _reference_roi_align(features, boxes_yxyx, batch, size):
    """The official sampling written out from its formulas, one sample at a time (float64)."""
    out = np.zeros((len(boxes_yxyx), next(iter(features.values())).shape[1], size, size))
    for k, ((y1, x1, y2, x2), b) in enumerate(zip(boxes_yxyx.tolist(), batch.tolist(),
                                                             strict=True)):
        h, w = y2 - y1, x2 - x1
        area = h * w
        level = math.floor(math.log2(math.sqrt(area) / 224.0)) + 4 if area > 0 else 3
        level = min(max(level, 3), 7)
        stride = 2.0 ** level
        f = features[level][b].numpy().astype(np.float64)  # C×H×W
        fh, fw = f.shape[1:]
        for i in range(size):
            y = y1 / stride + (i + 0.5) * (h / stride) / size
            ylo = min(max(math.floor(y), 0), fh - 1)
            yhi = min(ylo + 1, fh - 1)
            ly = y - ylo
            for j in range(size):
                x = x1 / stride + (j + 0.5) * (w / stride) / size
                xlo = min(max(math.floor(x), 0), fw - 1)
                xhi = min(xlo + 1, fw - 1)
                lx = x - xlo
                out[k, :, i, j] = ((1 - ly) * (1 - lx) * f[:, ylo, xlo] + (1 - ly) * lx * f[:, ylo, xhi]
                                   + ly * (1 - lx) * f[:, yhi, xlo] + ly * lx * f[:, yhi, xhi])
    return out


# [y1, x1, y2, x2]; the comment says what each one exercises
ROI_BOXES = torch.tensor([
    [30.0, 40.0, 41.0, 52.0],      # small: level 3
    [10.0, 20.0, 240.0, 250.0],    # level 4
    [0.0, 0.0, 255.0, 255.0],      # the whole image: level 4 (sqrt area 255 < 448)
    [-20.0, -10.0, 50.0, 60.0],    # above/left of the map: extrapolates
    [200.0, 230.0, 300.0, 320.0],  # below/right of the map: edge values
    [100.2, 100.2, 100.7, 100.9],  # smaller than a feature pixel
    [50.0, 50.0, 50.0, 90.0],      # empty: level 3, all samples on one row
    [-300.0, -300.0, 600.0, 700.0],  # huge: level 6
    [0.0, 0.0, 4000.0, 4000.0],    # huger: clamped to level 7
])


def test_roi_align_is_the_official_sampling():
    features = _pyramid()
    batch = torch.tensor([0, 1, 0, 1, 0, 1, 0, 1, 0])
    for size in (7, 14):
        ours = H.official_roi_align(features, ROI_BOXES, batch, size)
        ref = _reference_roi_align(features, ROI_BOXES, batch, size)
        assert ours.shape == (len(ROI_BOXES), 5, size, size)
        np.testing.assert_allclose(ours.numpy()[:-1], ref[:-1], rtol=1e-5, atol=1e-5)
        # beyond the map's far edge both neighbours are the edge pixel and the weights are
        # large and of opposite sign (1 − l and l, l up to ~30): float32 cancellation
        np.testing.assert_allclose(ours.numpy()[-1], ref[-1], rtol=0, atol=1e-3)
    # the image index matters
    other = H.official_roi_align(features, ROI_BOXES, 1 - batch, 7)
    assert not torch.allclose(other, H.official_roi_align(features, ROI_BOXES, batch, 7))


def test_level_rule_and_its_clamp():
    def box(side: float) -> list[float]:
        return [0.0, 0.0, side, side]
    boxes = torch.tensor([box(1), box(111.9), box(112), box(223.9), box(224), box(447.9),
                          box(448), box(896), box(1792), box(5000), [5, 5, 5, 30],
                          [10, 10, 5, 5], [0, 0, 112, 448]])
    levels = H.roi_levels(boxes, 3, 7)
    assert levels.tolist() == [3, 3, 3, 3, 4, 4, 5, 6, 7, 7, 3, 3, 4]
    assert H.roi_levels(boxes, 2, 6).tolist() == [2, 2, 3, 3, 4, 4, 5, 6, 6, 6, 2, 2, 4]


def test_torchvision_roi_align_agrees_only_inside_the_map():
    """torchvision's roi_align (aligned=False, one sample per bin) takes the same samples for
    boxes inside the map and at least one feature pixel wide; outside the map or below one
    pixel it differs, which is why the heads have their own."""
    features = _pyramid(batch=1)
    inside = torch.tensor([[30.0, 40.0, 41.0, 52.0], [10.0, 20.0, 240.0, 250.0]])
    levels = H.roi_levels(inside, 3, 7).tolist()
    assert levels == [3, 4]
    ours = H.official_roi_align(features, inside, torch.zeros(2, dtype=torch.int64), 7)
    for k, lv in enumerate(levels):
        rois = torch.cat([torch.zeros(1, 1), inside[k:k + 1, [1, 0, 3, 2]]], dim=1)
        tv = roi_align(features[lv], rois, 7, spatial_scale=2.0 ** -lv, sampling_ratio=1)
        torch.testing.assert_close(ours[k:k + 1], tv, rtol=1e-5, atol=1e-5)
    for box in ([-20.0, -10.0, 50.0, 60.0], [100.2, 100.2, 100.7, 100.9]):
        b = torch.tensor([box])
        lv = int(H.roi_levels(b, 3, 7))
        rois = torch.cat([torch.zeros(1, 1), b[:, [1, 0, 3, 2]]], dim=1)
        tv = roi_align(features[lv], rois, 7, spatial_scale=2.0 ** -lv, sampling_ratio=1)
        ours = H.official_roi_align(features, b, torch.zeros(1, dtype=torch.int64), 7)
        assert (ours - tv).abs().max() > 1e-2


def test_roi_align_rejects_levels_that_do_not_halve():
    features = _pyramid(batch=1)
    features[5] = features[5][:, :, :-1]
    with pytest.raises(ValueError, match="level 5"):
        H.official_roi_align(features, ROI_BOXES[:1], torch.zeros(1, dtype=torch.int64), 7)


# --------------------------------------------------------------------------- box coding


def test_decode_boxes_yx_order_weights_and_plus_one():
    anchors = torch.tensor([[100.0, 200.0, 140.0, 250.0]])  # h = 41, w = 51 ("+1")
    zero = decode_boxes(torch.zeros(1, 4), anchors, H.BOX_CODING_WEIGHTS)
    torch.testing.assert_close(zero, anchors)
    d = decode_boxes(torch.tensor([[10.0, -5.0, 5.0 * math.log(2.0), 0.0]]), anchors,
                     H.BOX_CODING_WEIGHTS)
    # dy = 10/10 → centre moves down by one height; dx = −5/10 → left by half a width;
    # dh = log 2 → twice as tall; dw = 0
    yc, xc = 100 + 20.5 + 41, 200 + 25.5 - 25.5
    torch.testing.assert_close(d, torch.tensor([[yc - 41, xc - 25.5, yc - 41 + 82 - 1,
                                                 xc - 25.5 + 51 - 1]]))
    big = decode_boxes(torch.tensor([[0.0, 0.0, 100.0, 100.0]]), anchors, H.BOX_CODING_WEIGHTS)
    assert big[0, 2] - big[0, 0] + 1 == pytest.approx(41 * 1000 / 16, rel=1e-5)


# --------------------------------------------------------------------------- post-processing


def _logits(probs: list[list[float]]) -> torch.Tensor:
    return torch.tensor(probs).log()


def test_postprocess_per_class_nms_threshold_clip_order_and_attributes():
    heads = H.OfficialRoIHeads(SMALL).eval()
    proposals = torch.tensor([   # XYXY
        [10.0, 10.0, 50.0, 50.0],
        [12.0, 12.0, 52.0, 52.0],     # IoU 0.82 with the first
        [100.0, 100.0, 150.0, 140.0],
        [0.0, 0.0, 0.0, 0.0],         # decodes to the all-zero box: never kept
        [180.0, 200.0, 260.0, 230.0],  # crosses the valid size (220, 240): clipped
    ])
    class_logits = _logits([[0.1, 0.9, 0.0 + 1e-9, 1e-9],
                            [0.05, 0.8, 0.15, 1e-9],
                            [0.90, 0.0 + 1e-9, 0.06, 0.04],
                            [0.01, 0.99, 1e-9, 1e-9],
                            [0.3, 1e-9, 1e-9, 0.7]])
    deltas = torch.zeros(5, 16)
    deltas[2, 2 * 4 + 0] = 10.0  # class 2 of proposal 2: dy = 1 height
    attribute_logits = torch.arange(15, dtype=torch.float32).reshape(5, 3) - 7
    boxes, labels, scores, attributes = heads.postprocess(
        class_logits, deltas, attribute_logits, proposals, (220, 240))
    assert labels.tolist() == [1, 3, 2, 2]
    torch.testing.assert_close(scores, torch.tensor([0.9, 0.7, 0.15, 0.06]))
    torch.testing.assert_close(boxes, torch.tensor([
        [10.0, 10.0, 50.0, 50.0],
        [180.0, 200.0, 239.0, 219.0],
        [12.0, 12.0, 52.0, 52.0],
        [100.0, 141.0, 150.0, 181.0],
    ]))
    torch.testing.assert_close(attributes, torch.sigmoid(attribute_logits[[0, 4, 1, 2]]))

    capped = H.OfficialRoIHeads(SMALL.replace(box_detections_per_img=2)).eval()
    assert capped.postprocess(class_logits, deltas, attribute_logits, proposals,
                              (220, 240))[1].tolist() == [1, 3]
    strict = H.OfficialRoIHeads(SMALL.replace(box_score_thresh=0.06)).eval()
    assert strict.postprocess(class_logits, deltas, attribute_logits, proposals,
                              (220, 240))[1].tolist() == [1, 3, 2]  # 0.06 is not > 0.06
    # the per-class top-k comes before the threshold and the empty-box rule: class 1's best
    # is the all-zero box, so class 1 keeps nothing
    top1 = H.OfficialRoIHeads(SMALL, pre_nms_per_class=1).eval()
    _, labels, scores, _ = top1.postprocess(class_logits, deltas, attribute_logits, proposals,
                                            (220, 240))
    assert labels.tolist() == [3, 2]
    torch.testing.assert_close(scores, torch.tensor([0.7, 0.15]))


def test_postprocess_without_proposals():
    heads = H.OfficialRoIHeads(SMALL).eval()
    boxes, labels, scores, attributes = heads.postprocess(
        torch.zeros(0, 4), torch.zeros(0, 16), torch.zeros(0, 3), torch.zeros(0, 4), (64, 64))
    assert boxes.shape == (0, 4) and labels.shape == (0,) and scores.shape == (0,)
    assert attributes.shape == (0, 3)


def test_forward_without_proposals():
    heads = H.OfficialRoIHeads(SMALL).eval()
    with torch.no_grad():
        out = heads(_pyramid(channels=8, size=128, batch=2), [torch.zeros(0, 4)] * 2,
                    [(128, 128)] * 2)
    assert [len(p.scores) for p in out] == [0, 0]
    assert out[0].mask_probs.shape == (0, 1, 28, 28) and out[1].attribute_scores.shape == (0, 3)


def test_forward_end_to_end_shapes_and_masks_of_the_detected_class():
    torch.manual_seed(0)
    heads = H.OfficialRoIHeads(SMALL).eval()
    with torch.no_grad():
        heads.class_logits.weight.mul_(30)  # spread the scores so that some pass 0.05
    features = _pyramid(channels=8, size=128, batch=2, seed=1)
    proposals = [torch.tensor([[4.0, 6.0, 60.0, 90.0], [30.0, 10.0, 120.0, 70.0],
                               [0.0, 0.0, 127.0, 100.0]]),
                 torch.tensor([[10.0, 20.0, 50.0, 40.0]])]
    with torch.no_grad():
        out = heads(features, proposals, [(128, 101), (100, 128)])
        assert len(out) == 2 and sum(len(p.scores) for p in out) > 0
        for p in out:
            n = len(p.scores)
            assert p.boxes.shape == (n, 4) and p.mask_probs.shape == (n, 1, 28, 28)
            assert p.attribute_scores.shape == (n, 3)
            assert ((p.labels >= 1) & (p.labels <= 3)).all()
        # the mask is the detected class's channel of the mask head, sigmoid
        boxes = [p.boxes for p in out]
        x = heads._pool(features, boxes, 14)
        for layer in heads.mask_convs:
            x = layer(x)
        all_classes = torch.sigmoid(heads.mask_logits(heads.mask_deconv(x)))
        labels = torch.cat([p.labels for p in out])
        expected = all_classes[torch.arange(len(labels)), labels]
        torch.testing.assert_close(torch.cat([p.mask_probs[:, 0] for p in out]), expected)


# --------------------------------------------------------------------------- TF weights


def _tf_variables(config: ModelConfig, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {name: rng.standard_normal(shape).astype(np.float32)
            for name, shape in H.tf_variable_shapes(config).items()}


def test_tf_weights_layouts():
    """Each layer of the converted heads computes what the TF layer computes on NHWC data."""
    variables = _tf_variables(SMALL)
    heads = H.OfficialRoIHeads(SMALL).eval()
    heads.load_state_dict(H.tf_to_state_dict(variables, SMALL), strict=True)
    rng = np.random.default_rng(1)
    with torch.no_grad():
        # fc6 on the flattened 7×7×C RoI features: TF flattens (y, x, c)
        x = rng.standard_normal((3, 7, 7, 8)).astype(np.float32)
        tf_out = (x.reshape(3, -1) @ variables["fast_rcnn_head/fc6/kernel"]
                  + variables["fast_rcnn_head/fc6/bias"])
        ours = heads.box_fc(torch.from_numpy(x).permute(0, 3, 1, 2).flatten(1))
        np.testing.assert_allclose(ours.numpy(), tf_out, rtol=1e-4, atol=1e-4)
        # 3×3 'same' conv, HWIO kernel
        x = rng.standard_normal((1, 5, 6, 8)).astype(np.float32)
        k = variables["fast_rcnn_head/conv_2/kernel"]
        pad = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
        tf_out = np.zeros((1, 5, 6, 8), np.float32)
        for i in range(5):
            for j in range(6):
                tf_out[0, i, j] = np.einsum("hwc,hwco->o", pad[0, i:i + 3, j:j + 3], k)
        tf_out += variables["fast_rcnn_head/conv_2/bias"]
        ours = heads.box_convs[2].conv(torch.from_numpy(x).permute(0, 3, 1, 2))
        np.testing.assert_allclose(ours.permute(0, 2, 3, 1).numpy(), tf_out, rtol=1e-4,
                                   atol=1e-4)
        # 2×2 stride-2 transposed conv, TF kernel (h, w, out, in): out[2i+a, 2j+b] = x[i, j] K[a, b]
        x = rng.standard_normal((1, 3, 4, 8)).astype(np.float32)
        k = variables["mask_head/conv5-mask/kernel"]
        tf_out = np.einsum("ijc,aboc->iajbo", x[0], k).reshape(6, 8, 8)
        tf_out += variables["mask_head/conv5-mask/bias"]
        ours = heads.mask_deconv.conv(torch.from_numpy(x).permute(0, 3, 1, 2))
        np.testing.assert_allclose(ours[0].permute(1, 2, 0).numpy(), tf_out, rtol=1e-4,
                                   atol=1e-4)
        # BatchNorm: gamma, beta, moving mean/variance and eps 1e-3
        name = "mask_head/batch_normalization_4/"
        x = rng.standard_normal((2, 8)).astype(np.float32)
        tf_out = ((x - variables[name + "moving_mean"])
                  / np.sqrt(variables[name + "moving_variance"] ** 2 + 1e-3)
                  * variables[name + "gamma"] + variables[name + "beta"])
        bn = heads.mask_deconv.bn
        bn.running_var.copy_(torch.from_numpy(variables[name + "moving_variance"] ** 2))
        ours = bn(torch.from_numpy(x)[:, :, None, None])[:, :, 0, 0]
        np.testing.assert_allclose(ours.numpy(), tf_out, rtol=1e-4, atol=1e-4)
        # dense outputs: (in, out) kernels
        for key, name in (("class_logits", "class-predict"), ("box_deltas", "box-predict"),
                          ("attribute_logits", "attribute-predict")):
            x = rng.standard_normal((2, 16)).astype(np.float32)
            tf_out = (x @ variables[f"fast_rcnn_head/{name}/kernel"]
                      + variables[f"fast_rcnn_head/{name}/bias"])
            ours = getattr(heads, key)(torch.from_numpy(x))
            np.testing.assert_allclose(ours.numpy(), tf_out, rtol=1e-4, atol=1e-4)


def test_tf_variable_names_are_the_official_graphs():
    names = H.tf_variable_names(ModelConfig())
    assert len(names) == 68  # 36 in fast_rcnn_head, 32 in mask_head (the official graph's)
    assert {"fast_rcnn_head/conv_0/kernel", "fast_rcnn_head/batch_normalization_4/moving_variance",
            "fast_rcnn_head/fc6/kernel", "fast_rcnn_head/attribute-predict/bias",
            "mask_head/mask-conv-l3/bias", "mask_head/conv5-mask/kernel",
            "mask_head/batch_normalization_4/gamma", "mask_head/mask_fcn_logits/kernel"} <= names
    assert len([n for n in names if n.startswith("fast_rcnn_head/")]) == 36


def test_tf_to_state_dict_names_missing_and_misshaped_variables():
    variables = _tf_variables(SMALL)
    del variables["mask_head/batch_normalization_2/beta"]
    variables["fast_rcnn_head/fc6/kernel"] = np.zeros((7, 7), np.float32)
    with pytest.raises(InvalidDataError) as err:
        H.tf_to_state_dict(variables, SMALL)
    text = str(err.value)
    assert "mask_head/batch_normalization_2/beta" in text and "missing" in text
    assert "fast_rcnn_head/fc6/kernel" in text and "[7, 7]" in text
    assert len(err.value.problems) == 2
    # extra variables (backbone, optimizer slots) are the caller's business
    variables = _tf_variables(SMALL)
    variables["resnet50/conv2d/kernel"] = np.zeros(3, np.float32)
    state = H.tf_to_state_dict(variables, SMALL)
    assert set(state) == set(H.OfficialRoIHeads(SMALL).state_dict())


# --------------------------------------------------------------------------- against TF's outputs

# The cases stored with full FPN features. The heads' variables have the same names, hence the
# same weights, in both checkpoints: R101 only changes the features, so it runs with the slow tests.
GOLDEN_CASES = ["r50-256", pytest.param("r101-256", marks=pytest.mark.slow)]


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return box_iou(torch.from_numpy(a), torch.from_numpy(b)).numpy()


@pytest.fixture(scope="module", params=GOLDEN_CASES)
def golden_run(request):
    """The heads with the golden checkpoint's weights, fed TF's FPN features and proposals."""
    case = GOLDEN_DIR / f"{request.param}.npz"
    if not case.exists():
        pytest.skip(f"{case} not generated yet (golden/make_official.py)")
    import official_cases

    g = dict(np.load(case))
    wanted = H.tf_variable_names(ModelConfig())
    backbone = request.param.split("-")[0]
    manifest = {v["name"]: tuple(v["shape"]) for v in official_cases.load_manifest(backbone)}
    heads = H.OfficialRoIHeads(ModelConfig()).eval()
    heads.load_state_dict(H.tf_to_state_dict(
        {n: official_cases.weight_for(n, manifest[n]) for n in wanted if n in manifest}),
        strict=True)
    features = {lv: torch.from_numpy(g[f"fpn_{lv}"]).permute(2, 0, 1)[None].contiguous()
                for lv in range(3, 8)}
    proposals = torch.from_numpy(g["proposals"])[:, [1, 0, 3, 2]]
    valid = tuple(int(v) for v in g["image_info"][1])
    n_head = len(g["class_logits"])
    with torch.no_grad():
        head = heads.box_outputs(features, [proposals[:n_head]])
        roi = heads._pool(features, [proposals[:len(g["roi_features"])]], 7)
        pred = heads(features, [proposals], [valid])[0]
    return g, manifest, head, roi, pred, valid


@pytest.mark.parametrize("backbone", ["r50", "r101"])
def test_the_checkpoints_head_variables_are_the_ones_the_heads_read(backbone):
    """Every variable of the official training checkpoint under the heads' scopes (its
    Momentum slots aside) is read, with the shape the heads expect."""
    import official_cases

    manifest = {v["name"]: tuple(v["shape"]) for v in official_cases.load_manifest(backbone)}
    in_heads = {n for n in manifest if n.split("/")[0] in ("fast_rcnn_head", "mask_head")
                and not n.endswith("/Momentum")}
    names = H.tf_variable_names(ModelConfig())
    assert names == in_heads
    # a Momentum slot for each trainable one (BatchNorm's moving statistics are not)
    assert {n for n in names if n + "/Momentum" in manifest} == {
        n for n in names if "/moving_" not in n}
    state = H.tf_to_state_dict({n: official_cases.weight_for(n, manifest[n]) for n in names})
    heads = H.OfficialRoIHeads(ModelConfig())
    heads.load_state_dict(state, strict=True)


def test_golden_box_head_outputs(golden_run):
    g, _, (class_logits, box_deltas, attribute_logits), roi, _, _ = golden_run
    np.testing.assert_allclose(roi.permute(0, 2, 3, 1).numpy(), g["roi_features"],
                               rtol=1e-4, atol=1e-4)
    for name, ours in (("class_logits", class_logits), ("box_deltas", box_deltas),
                       ("attribute_logits", attribute_logits)):
        theirs = g[name]
        scale = float(np.abs(theirs).max())
        np.testing.assert_allclose(ours.numpy(), theirs, rtol=1e-3, atol=1e-4 * scale,
                                   err_msg=name)


def test_golden_detections_attributes_and_masks(golden_run):
    g, _, _, _, pred, valid = golden_run
    n = int(g["num_detections"])
    assert n >= 20 and len(pred.scores) == n
    tf_boxes = g["detection_boxes"][:, [1, 0, 3, 2]]
    ours_boxes = pred.boxes.numpy()
    # by order, where TF's score is apart from its neighbours' (near-ties may swap places)
    gaps = np.abs(np.diff(g["detection_scores"]))
    apart = np.ones(n, bool)
    apart[1:] &= gaps > 1e-4
    apart[:-1] &= gaps > 1e-4
    assert apart.sum() >= 10
    keep = torch.from_numpy(apart)
    assert (pred.labels.numpy() == g["detection_classes"])[apart].all()
    np.testing.assert_allclose(pred.scores.numpy(), g["detection_scores"], atol=0.01)
    assert np.diag(_iou(ours_boxes, tf_boxes))[apart].min() >= 0.9
    assert sorted(pred.labels.tolist()) == sorted(g["detection_classes"].tolist())
    # by IoU: each TF detection has ours of its class over 0.9 IoU and within 0.01 in score
    iou = _iou(tf_boxes, ours_boxes)
    same = g["detection_classes"][:, None] == pred.labels.numpy()[None, :]
    close = np.abs(g["detection_scores"][:, None] - pred.scores.numpy()[None, :]) <= 0.01
    assert ((iou >= 0.9) & same & close).any(axis=1).all()
    # attributes follow their detection: the same top 5, probabilities close
    np.testing.assert_allclose(pred.attribute_scores.numpy()[apart],
                               g["detection_attributes"][apart], atol=1e-3)
    ours_top = np.argsort(-pred.attribute_scores.numpy()[apart], axis=1)[:, :5]
    tf_top = np.argsort(-g["detection_attributes"][apart], axis=1)[:, :5]
    assert np.mean([len(set(a) & set(b)) / 5 for a, b in zip(ours_top, tf_top, strict=True)]) >= 0.95
    # masks: the probabilities, then pasted in the model-input frame
    np.testing.assert_allclose(pred.mask_probs[keep, 0].numpy(), g["detection_masks"][apart],
                               atol=1e-3)
    ours = paste_masks(pred.mask_probs[keep], pred.boxes[keep], valid)
    theirs = paste_masks(torch.from_numpy(g["detection_masks"][apart])[:, None],
                         torch.from_numpy(tf_boxes[apart]), valid)
    inter = (ours & theirs).flatten(1).sum(1).double()
    union = (ours | theirs).flatten(1).sum(1).double()
    nonempty = union > 0
    assert nonempty.sum() >= apart.sum() // 2
    assert (inter[nonempty] / union[nonempty]).min() >= 0.9


# --------------------------------------------------------------------------- against TF, directly

_TF_HEADS = textwrap.dedent("""
    import os, sys
    REF, OUT = sys.argv[1], sys.argv[2]
    DET = os.path.join(REF, "models", "official", "detection")
    sys.path[:0] = [DET, os.path.join(REF, "models"),
                    os.path.join(REF, "models", "official", "efficientnet")]
    import numpy as np
    import tensorflow.compat.v1 as tf
    tf.disable_eager_execution()
    from projects.fashionpedia.configs import factory as config_factory
    from projects.fashionpedia.modeling.architecture import factory
    from projects.fashionpedia.ops import postprocess_ops
    from ops import spatial_transform_ops

    params = config_factory.config_generator("attribute_mask_rcnn")
    params.override({"architecture": {"use_bfloat16": False}}, is_strict=True)
    S = 256
    rng = np.random.RandomState(0)
    feats = {l: rng.randn(1, S >> l, S >> l, 256).astype(np.float32) for l in range(3, 8)}
    R = 300
    yc = rng.uniform(0, 240, R); xc = rng.uniform(0, 250, R)
    hh = np.exp(rng.uniform(np.log(2), np.log(300), R)); ww = hh * np.exp(rng.uniform(-1, 1, R))
    props = np.stack([yc - hh / 2, xc - ww / 2, yc + hh / 2, xc + ww / 2], 1)
    props = np.clip(props, 0, [239, 249, 239, 249]).astype(np.float32)
    props[0] = [10, 10, 10, 10]
    props[1] = [0, 0, 239, 249]
    props[2] = [100.3, 50.7, 100.9, 51.2]
    props[3] = [-30, -20, 60, 40]
    props[4] = [200, 220, 300, 330]
    with tf.Graph().as_default():
        f = {l: tf.constant(v) for l, v in feats.items()}
        rois = tf.constant(props[None])
        roi7 = spatial_transform_ops.multilevel_crop_and_resize(f, rois, output_size=7)
        cls, attr, box = factory.fast_rcnn_head_generator(params)(roi7, is_training=False)
        det = postprocess_ops.GenericDetectionGenerator(params.postprocess)(
            box, cls, attr, rois, tf.constant([[[240.0, 250.0]]]))
        mroi = spatial_transform_ops.multilevel_crop_and_resize(
            f, det["detection_boxes"], output_size=14)
        masks = tf.nn.sigmoid(factory.mask_rcnn_head_generator(params)(
            mroi, tf.cast(det["detection_classes"], tf.int32), is_training=False))
        values = {}
        for v in tf.global_variables():
            name, shp = v.op.name, v.shape.as_list()
            if name.endswith("moving_variance"):
                a = rng.uniform(0.5, 2.0, shp)
            elif name.endswith("gamma"):
                a = rng.uniform(0.5, 1.5, shp)
            elif name.endswith(("beta", "moving_mean")):
                a = rng.uniform(-0.3, 0.3, shp)
            elif name.endswith("bias"):
                a = rng.uniform(-0.1, 0.1, shp)
            else:
                fan_in = shp[0] * shp[1] * shp[3] if "conv5" in name else int(np.prod(shp[:-1]))
                a = rng.randn(*shp) * np.sqrt(2.0 / fan_in)
                a *= 6 if "class-predict" in name else 0.3 if "box-predict" in name else 1
            values[name] = a.astype(np.float32)
        with tf.Session() as sess:
            for v in tf.global_variables():
                v.load(values[v.op.name], sess)
            out = sess.run({"roi7": roi7, "roi14": mroi, "class_logits": cls,
                            "attribute_logits": attr, "box_deltas": box, "masks": masks, **det})
    np.savez(OUT, proposals=props, **{f"fpn_{l}": v for l, v in feats.items()},
             **{k: np.asarray(v)[0] for k, v in out.items()},
             **{"var:" + k: v for k, v in values.items()})
""")


@pytest.mark.slow
@pytest.mark.skipif(not TFREF_PYTHON.exists() or _reference() is None,
                    reason="needs ~/tfref (tensorflow-cpu) and shared/reference/tensorflow-tpu")
def test_against_the_official_tf_heads(tmp_path):
    """The official TF heads on random FPN features, proposals (with empty, sub-pixel and
    off-image ones) and weights: RoI features, logits, detections and masks."""
    script, out = tmp_path / "tf_heads.py", tmp_path / "tf_heads.npz"
    script.write_text(_TF_HEADS, encoding="utf-8")
    run = subprocess.run([str(TFREF_PYTHON), str(script), str(_reference()), str(out)],
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    d = dict(np.load(out))
    heads = H.OfficialRoIHeads(ModelConfig()).eval()
    heads.load_state_dict(H.tf_to_state_dict(
        {k[4:]: v for k, v in d.items() if k.startswith("var:")}), strict=True)
    features = {lv: torch.from_numpy(d[f"fpn_{lv}"]).permute(0, 3, 1, 2).contiguous()
                for lv in range(3, 8)}
    proposals = torch.from_numpy(d["proposals"])[:, [1, 0, 3, 2]]
    n = int(d["num_detections"])
    tf_boxes = torch.from_numpy(d["detection_boxes"][:n])[:, [1, 0, 3, 2]]
    with torch.no_grad():
        roi7 = heads._pool(features, [proposals], 7)
        roi14 = heads._pool(features, [tf_boxes], 14)
        class_logits, box_deltas, attribute_logits = heads.box_outputs(features, [proposals])
        pred = heads(features, [proposals], [(240, 250)])[0]
    # float32 rounding of the sample coordinates (different operation order) moves a few
    # values by ~1e-5 on O(1) features
    np.testing.assert_allclose(roi7.permute(0, 2, 3, 1).numpy(), d["roi7"], rtol=1e-5,
                               atol=1e-4)
    np.testing.assert_allclose(roi14.permute(0, 2, 3, 1).numpy(), d["roi14"][:n],
                               rtol=1e-5, atol=1e-4)
    for name, ours in (("class_logits", class_logits), ("box_deltas", box_deltas),
                       ("attribute_logits", attribute_logits)):
        np.testing.assert_allclose(ours.numpy(), d[name], rtol=1e-4,
                                   atol=1e-5 * float(np.abs(d[name]).max()), err_msg=name)
    assert n >= 20 and len(pred.scores) == n
    assert pred.labels.tolist() == d["detection_classes"][:n].tolist()
    np.testing.assert_allclose(pred.scores.numpy(), d["detection_scores"][:n], atol=1e-4)
    np.testing.assert_allclose(pred.boxes.numpy(), tf_boxes.numpy(), atol=1e-3)
    np.testing.assert_allclose(pred.attribute_scores.numpy(), d["detection_attributes"][:n],
                               atol=1e-4)
    np.testing.assert_allclose(pred.mask_probs[:, 0].numpy(), d["masks"][:n], atol=1e-4)


def test_exports_to_onnx_with_the_same_detections():
    """The heads trace to ONNX (the RoIAlign gather, the per-class NMS op) and give eager's
    detections for proposal counts other than the traced one."""
    ort = pytest.importorskip("onnxruntime")
    import io

    torch.manual_seed(0)
    heads = H.OfficialRoIHeads(SMALL).eval()
    with torch.no_grad():
        heads.class_logits.weight.mul_(30)

    class Wrapped(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.heads = heads

        def forward(self, f3, f4, f5, f6, f7, proposals):
            p = self.heads({3: f3, 4: f4, 5: f5, 6: f6, 7: f7}, [proposals], [(128, 128)])[0]
            return p.boxes, p.labels, p.scores, p.mask_probs, p.attribute_scores

    features = list(_pyramid(channels=8, size=128, batch=1, seed=1).values())
    traced = torch.tensor([[4.0, 6.0, 60.0, 90.0], [30.0, 10.0, 120.0, 70.0],
                           [0.0, 0.0, 127.0, 100.0]])
    other = torch.tensor([[14.0, 16.0, 70.0, 80.0], [3.0, 10.0, 100.0, 70.0],
                          [0.0, 0.0, 127.0, 120.0], [50.0, 50.0, 60.0, 66.0]])
    model = Wrapped().eval()
    buf = io.BytesIO()
    names = ["f3", "f4", "f5", "f6", "f7", "proposals"]
    torch.onnx.export(model, (*features, traced), buf, opset_version=17, dynamo=False,
                      input_names=names, dynamic_axes={"proposals": {0: "r"}})
    session = ort.InferenceSession(buf.getvalue())
    for proposals in (traced, other):
        got = session.run(None, dict(zip(names, [a.numpy() for a in (*features, proposals)],
                                         strict=True)))
        with torch.no_grad():
            want = model(*features, proposals)
        assert len(want[2]) > 0
        for g, w in zip(got, want, strict=True):
            np.testing.assert_allclose(g, w.numpy(), rtol=1e-5, atol=1e-5)
