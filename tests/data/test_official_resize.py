"""The official input transform: TF1's legacy bilinear resize and the official scaled size,
against formulas written out here (and, in test_official_model, against TF's preprocessed
image)."""

import math

import numpy as np
import pytest
import torch

from fashionkit.data.input_recipe import DataConfig
from fashionkit.data.transforms import OfficialResize, official_scaled_size, resize_bilinear_tf1


def _legacy_reference(image: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """TF1 resize_bilinear (align_corners=False, half_pixel_centers=False), pixel by pixel in
    float64: output (i, j) samples input (i·H/out_h, j·W/out_w), neighbours floor and
    floor+1 clamped to the last row/column."""
    c, h, w = image.shape
    out = np.zeros((c, out_h, out_w))
    for i in range(out_h):
        y = i * h / out_h
        y0 = int(math.floor(y))
        y1 = min(y0 + 1, h - 1)
        fy = y - y0
        for j in range(out_w):
            x = j * w / out_w
            x0 = int(math.floor(x))
            x1 = min(x0 + 1, w - 1)
            fx = x - x0
            top = image[:, y0, x0] * (1 - fx) + image[:, y0, x1] * fx
            bottom = image[:, y1, x0] * (1 - fx) + image[:, y1, x1] * fx
            out[:, i, j] = top * (1 - fy) + bottom * fy
    return out


@pytest.mark.parametrize("size", [(7, 11), (20, 29), (37, 53), (60, 91), (1, 1)])
def test_legacy_bilinear_matches_the_formula(size):
    rng = np.random.default_rng(0)
    image = rng.random((3, 37, 53)).astype(np.float32)
    ours = resize_bilinear_tf1(torch.from_numpy(image), *size).numpy()
    ref = _legacy_reference(image.astype(np.float64), *size)
    assert ours.shape == (3, *size)
    assert np.abs(ours - ref).max() < 1e-5


def test_legacy_bilinear_is_not_half_pixel_bilinear():
    # The first output pixel is the first input pixel exactly (no half-pixel shift), which
    # PyTorch's align_corners=False would not give when downscaling.
    image = torch.arange(16.0).reshape(1, 4, 4)
    out = resize_bilinear_tf1(image, 2, 2)
    assert out.tolist() == [[[0.0, 2.0], [8.0, 10.0]]]
    up = resize_bilinear_tf1(torch.tensor([[[0.0, 1.0]]]), 1, 4)
    assert up.tolist() == [[[0.0, 0.5, 1.0, 1.0]]]  # the last column repeats


def test_official_scaled_size():
    # TF: scale = min(S/h, S/w) in float32, sizes rounded half to even.
    assert official_scaled_size(300, 451, 256) == ((170, 256), pytest.approx(256 / 451))
    assert official_scaled_size(517, 389, 384) == ((384, 289), pytest.approx(384 / 517))
    assert official_scaled_size(1024, 1024, 1024)[0] == (1024, 1024)
    # 2.5 rounds to 2 (half to even), as tf.round does
    assert official_scaled_size(10, 4, 5)[0] == (5, 2)


def test_official_transform_resizes_without_padding_and_returns_the_scale():
    image = torch.from_numpy(np.random.default_rng(1).integers(0, 256, (3, 30, 45),
                                                               dtype=np.uint8))
    masks = torch.zeros((1, 30, 45), dtype=torch.uint8)
    masks[0, 5:20, 10:30] = 1
    target = {"masks": masks, "scale": torch.tensor(1.0), "boxes": torch.zeros((1, 4)),
              "labels": torch.ones(1, dtype=torch.int64)}
    out, t = DataConfig(transform="official", image_size=64).transforms(train=False)(
        image, target, None)
    assert out.dtype == torch.float32 and out.shape == (3, 43, 64)  # round(30 * 64/45) = 43
    ref = _legacy_reference(image.numpy().astype(np.float64) / 255.0, 43, 64)
    assert np.abs(out.numpy() - ref).max() < 1e-5
    assert float(t["scale"]) == pytest.approx(64 / 45)
    assert t["masks"].shape == (1, 43, 64) and t["boxes"].shape == (1, 4)
    assert repr(OfficialResize(64)) == "OfficialResize(size=64)"
