"""The exported program of the RoI pooler against torchvision's ``MultiScaleRoIAlign`` (the
eager reference), in ONNX Runtime and OpenVINO."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from modeling_samples import run_onnx
from torchvision.ops import MultiScaleRoIAlign

from fashionkit.modeling.roi_heads import ExportableRoIAlign

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
        self.pool = ExportableRoIAlign(NAMES, output_size=7, sampling_ratio=2, canonical_scale=56)

    def forward(self, f0, f1, f2, f3, boxes):
        features = dict(zip(NAMES, (f0, f1, f2, f3), strict=True))
        return self.pool(features, [boxes], [(SIZE, SIZE)]), self.pool.pooled


def test_eager_is_torchvisions():
    reference = MultiScaleRoIAlign(NAMES, output_size=7, sampling_ratio=2, canonical_scale=56)
    features, boxes = _features(0), _boxes(0)
    torch.testing.assert_close(_Pool().pool(features, [boxes], [(SIZE, SIZE)]),
                               reference(features, [boxes], [(SIZE, SIZE)]), rtol=0, atol=0)


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
