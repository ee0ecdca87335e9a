"""The RoI pooler's programs against torchvision's ``roi_align`` and ``MultiScaleRoIAlign``
(the reference): the CPU gather (forward and gradients) and the exported one in ONNX Runtime
and OpenVINO."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from modeling_samples import run_onnx
from torchvision.ops import MultiScaleRoIAlign

from fashionkit.modeling.roi_align import FPNRoIAlign, roi_align_gather

NAMES = ["0", "1", "2", "3"]
SIZE = 256


def _features(seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {name: torch.randn(1, 8, SIZE // 2 ** (k + 2), SIZE // 2 ** (k + 2), generator=g)
            for k, name in enumerate(NAMES)}


def _boxes(seed: int, n: int = 60) -> torch.Tensor:
    """Boxes from 4 to 250 px wide: every FPN level gets some (canonical scale 56)."""
    g = torch.Generator().manual_seed(seed)
    size = torch.exp(torch.empty(n, 2).uniform_(np.log(4), np.log(250), generator=g))
    xy = torch.rand(n, 2, generator=g) * (SIZE - size)
    return torch.cat([xy, xy + size], dim=1)


class _Pool(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.pool = FPNRoIAlign(NAMES, output_size=7, sampling_ratio=2, canonical_scale=56)

    def forward(self, f0, f1, f2, f3, boxes):
        features = dict(zip(NAMES, (f0, f1, f2, f3), strict=True))
        return self.pool(features, [boxes], [(SIZE, SIZE)]), self.pool.pooled


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("runtime", ["onnxruntime", "openvino"])
def test_exported_pooling_equals_torchvision(tmp_path, runtime):
    reference = MultiScaleRoIAlign(NAMES, output_size=7, sampling_ratio=2, canonical_scale=56)
    path = tmp_path / "pool.onnx"
    features, boxes = _features(0), _boxes(0)
    torch.onnx.export(_Pool(), (*features.values(), boxes), str(path), dynamo=False,
                      opset_version=17, input_names=[*(f"f{k}" for k in range(4)), "boxes"],
                      output_names=["pooled", "rois"], dynamic_axes={"boxes": {0: "n"}})
    other_features, other_boxes = _features(1), _boxes(1, n=35)  # other values and count
    for f, b in ((features, boxes), (other_features, other_boxes)):
        feeds = {**{f"f{k}": v.numpy() for k, v in enumerate(f.values())}, "boxes": b.numpy()}
        pooled, rois = run_onnx(path, feeds, runtime)
        want = reference(f, [b], [(SIZE, SIZE)])
        np.testing.assert_allclose(pooled, want.numpy(), rtol=1e-5, atol=1e-5)
        levels = reference.map_levels([b])  # type: ignore[misc]
        assert set(levels.tolist()) == {0, 1, 2, 3}  # every level is exercised
        np.testing.assert_array_equal(rois[:, :4], b.numpy())
        np.testing.assert_array_equal(rois[:, 4], levels.numpy())


# --- The CPU program: a weighted gather, against torchvision's kernel ---

def _rois(seed: int, n: int, size: int, batch: int) -> torch.Tensor:
    """Boxes of 0.2–400 px, some partly or wholly off the map (torchvision zeroes samples
    beyond one pixel outside), some past the bottom-right edge, over ``batch`` images."""
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * (size + 80) - 40
    wh = torch.exp(torch.empty(n, 2).uniform_(np.log(0.2), np.log(400), generator=g))
    index = torch.randint(0, batch, (n, 1), generator=g).float()
    return torch.cat([index, xy, xy + wh], dim=1)


@pytest.mark.parametrize("sampling_ratio", [1, 2, 3])
@pytest.mark.parametrize("channels_last", [False, True])
def test_gather_roi_align_equals_torchvisions_kernel(sampling_ratio, channels_last):
    from torchvision.ops import roi_align

    g = torch.Generator().manual_seed(3)
    feature = torch.randn(2, 16, 23, 31, generator=g)  # not square: rows and columns differ
    if channels_last:
        feature = feature.contiguous(memory_format=torch.channels_last)
    rois = _rois(4, 300, 4 * 31, batch=2)
    for output_size in ((7, 7), (14, 14), (3, 5)):
        want = roi_align(feature, rois, output_size, 0.25, sampling_ratio, aligned=False)
        got = roi_align_gather(feature, rois, output_size, 0.25, sampling_ratio)
        assert got.shape == want.shape
        assert got.is_contiguous(memory_format=torch.channels_last)
        torch.testing.assert_close(got, want, rtol=0, atol=2e-6)
    assert roi_align_gather(feature, rois[:0], (7, 7), 0.25, 2).shape == (0, 16, 7, 7)
    with pytest.raises(ValueError, match="sampling_ratio"):
        roi_align_gather(feature, rois, (7, 7), 0.25, 0)


def test_cpu_pooler_equals_torchvisions_pooler_with_gradients():
    """Two images, every level, channels-last and NCHW maps: the pooled values and the
    features' gradients (training) equal torchvision's ``MultiScaleRoIAlign``."""
    reference = MultiScaleRoIAlign(NAMES, output_size=7, sampling_ratio=2, canonical_scale=56)
    pooler = FPNRoIAlign(NAMES, output_size=7, sampling_ratio=2, canonical_scale=56)
    two_images = [_boxes(0), _boxes(1, n=35)]
    shapes = [(SIZE, SIZE)] * 2
    g = torch.Generator().manual_seed(5)
    for channels_last in (False, True):
        features = {k: torch.cat([v, v.flip(-1)]) for k, v in _features(0).items()}
        if channels_last:
            features = {k: v.contiguous(memory_format=torch.channels_last)
                        for k, v in features.items()}
        ours = {k: v.clone().requires_grad_() for k, v in features.items()}
        theirs = {k: v.clone().requires_grad_() for k, v in features.items()}
        got, want = pooler(ours, two_images, shapes), reference(theirs, two_images, shapes)
        torch.testing.assert_close(got, want, rtol=0, atol=2e-6)
        upstream = torch.randn(want.shape, generator=g)
        (got * upstream).sum().backward()
        (want * upstream).sum().backward()
        for name in NAMES:
            torch.testing.assert_close(ours[name].grad, theirs[name].grad, rtol=0, atol=1e-5)
    levels = reference.map_levels(two_images)  # type: ignore[misc]
    assert set(levels.tolist()) == {0, 1, 2, 3}  # every level is exercised
    with torch.no_grad():
        empty = [two_images[0][:0], two_images[1][:0]]
        assert pooler(features, empty, shapes).shape == (0, 8, 7, 7)


def test_cpu_pooler_under_bf16_autocast_pools_in_fp32_as_torchvision():
    reference = MultiScaleRoIAlign(NAMES, output_size=14, sampling_ratio=2, canonical_scale=56)
    pooler = FPNRoIAlign(NAMES, output_size=14, sampling_ratio=2, canonical_scale=56)
    features = {k: v.bfloat16() for k, v in _features(2).items()}
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = pooler(features, [_boxes(2)], [(SIZE, SIZE)])
        want = reference(features, [_boxes(2)], [(SIZE, SIZE)])
    assert got.dtype == want.dtype == torch.bfloat16
    # both round an fp32 result to bf16: at most one bf16 step apart (≤ 2^-7 relative)
    torch.testing.assert_close(got, want, rtol=2 ** -7, atol=1e-6)


def test_gather_roi_align_samples_on_the_borders_as_torchvision():
    """Samples exactly one pixel outside (-1) or on the far edge (size) still count; just
    beyond them they are zero (one sample per bin: its position is the box centre)."""
    from torchvision.ops import roi_align

    feature = torch.arange(1.0, 1 + 10 * 12).reshape(1, 1, 10, 12)
    centres = [(-1.0, 4.0), (12.0, 4.0), (5.0, 10.0), (5.0, -1.0), (-1.25, 4.0), (12.25, 4.0)]
    rois = torch.tensor([[0, x - 2, y - 2, x + 2, y + 2] for x, y in centres])
    want = roi_align(feature, rois, (1, 1), 1.0, 1, aligned=False)
    got = roi_align_gather(feature, rois, (1, 1), 1.0, 1)
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    assert (want.flatten()[:4] > 0).all() and (want.flatten()[4:] == 0).all()
