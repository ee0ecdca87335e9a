"""RoIAlign as one weighted gather over channels-last features, for CPU inference.

torchvision's CPU ``roi_align`` loops over RoIs, channels and bins on one thread, and first
copies a channels-last feature map to contiguous NCHW. In the ``bf16`` backend at the paper's
size (R101-FPN, 1024², 1,000 proposals, 100 masks) the two poolers took 0.57 s of the RoI
heads' 0.97 s, as long as the mask head's four convolutions and the box head together.

Every RoIAlign output value is a weighted sum of feature vectors: for each bin, the
``sampling_ratio²`` sample points' four bilinear neighbours. Read as rows of an
``(N·H·W) × C`` table (a view of a channels-last map), a bin is a bag of ``4·sampling_ratio²``
rows with weights, which :func:`torch.nn.functional.embedding_bag` sums with all threads,
each row a contiguous run of channels. The sample positions, neighbours and weights follow
torchvision's kernel (``roi_align_kernel.cpp``, ``aligned=False``) in the same float order,
so the result equals it to float rounding.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.ops import MultiScaleRoIAlign
from torchvision.ops.poolers import _convert_to_roi_format, _filter_input, _setup_scales

__all__ = ["GatherRoIAlign", "roi_align_gather"]


def _axis(start: Tensor, bin_size: Tensor, bins: int, grid: int, size: int):
    """Sample coordinates along one axis, ``R × bins × grid``, as torchvision computes them,
    and their bilinear neighbours: ``(inside, low, high, weight_low, weight_high)``."""
    dtype = start.dtype
    bin_index = torch.arange(bins, dtype=dtype, device=start.device)[None, :, None]
    sample = torch.arange(grid, dtype=dtype, device=start.device)[None, None, :] + 0.5
    # roi_start + p * bin_size + (i + .5) * bin_size / grid, left to right as in C++
    v = (start[:, None, None] + bin_index * bin_size[:, None, None]) + (
        sample * bin_size[:, None, None]) / grid
    inside = (v >= -1.0) & (v <= size)
    v = v.clamp(min=0)
    low = v.to(torch.int64)  # v >= 0: truncation is floor
    at_edge = low >= size - 1
    low = low.clamp(max=size - 1)
    high = torch.where(at_edge, low, low + 1)
    v = torch.where(at_edge, low.to(dtype), v)
    weight_high = v - low
    return inside, low, high, 1 - weight_high, weight_high


def roi_align_gather(input: Tensor, rois: Tensor, output_size: tuple[int, int],
                     spatial_scale: float, sampling_ratio: int) -> Tensor:
    """torchvision's ``roi_align(input, rois, output_size, spatial_scale, sampling_ratio,
    aligned=False)`` for a fixed ``sampling_ratio > 0``.

    ``input``: ``N×C×H×W`` float (channels-last memory is read in place, other layouts are
    copied once); ``rois``: ``K×5`` (batch index, x1, y1, x2, y2) in input-image pixels.
    Returns ``K×C×PH×PW`` in channels-last memory. Not differentiable in ``rois``.
    """
    if sampling_ratio <= 0:
        raise ValueError(f"roi_align_gather needs a fixed sampling_ratio > 0, got {sampling_ratio}")
    n, c, h, w = input.shape
    ph, pw = output_size
    count = rois.shape[0]
    if count == 0:
        return input.new_zeros((0, c, ph, pw))
    dtype = input.dtype
    coords = rois[:, 1:].to(dtype) * spatial_scale
    x1, y1, x2, y2 = coords.unbind(1)
    roi_w, roi_h = (x2 - x1).clamp(min=1.0), (y2 - y1).clamp(min=1.0)
    in_y, y_lo, y_hi, wy_lo, wy_hi = _axis(y1, roi_h / ph, ph, sampling_ratio, h)
    in_x, x_lo, x_hi, wx_lo, wx_hi = _axis(x1, roi_w / pw, pw, sampling_ratio, w)

    def by_y(t: Tensor) -> Tensor:  # R×PH×G → R×PH×1×G×1
        return t[:, :, None, :, None]

    def by_x(t: Tensor) -> Tensor:  # R×PW×G → R×1×PW×1×G
        return t[:, None, :, None, :]

    row = (rois[:, 0].to(torch.int64) * (h * w))[:, None, None, None, None]
    rows_lo, rows_hi = row + by_y(y_lo) * w, row + by_y(y_hi) * w
    index = torch.stack([rows_lo + by_x(x_lo), rows_lo + by_x(x_hi),
                         rows_hi + by_x(x_lo), rows_hi + by_x(x_hi)], dim=-1)
    inside = (by_y(in_y) & by_x(in_x)).to(dtype) / (sampling_ratio * sampling_ratio)
    weight = torch.stack([by_y(wy_lo) * by_x(wx_lo), by_y(wy_lo) * by_x(wx_hi),
                          by_y(wy_hi) * by_x(wx_lo), by_y(wy_hi) * by_x(wx_hi)], dim=-1)
    weight = weight * inside[..., None]
    table = input.permute(0, 2, 3, 1).reshape(n * h * w, c)
    pooled = F.embedding_bag(index.reshape(count * ph * pw, -1), table,
                             per_sample_weights=weight.reshape(count * ph * pw, -1), mode="sum")
    return pooled.reshape(count, ph, pw, c).permute(0, 3, 1, 2)


class GatherRoIAlign(MultiScaleRoIAlign):
    """torchvision's ``MultiScaleRoIAlign`` pooling each level with :func:`roi_align_gather`
    when it runs on CPU without gradients (else torchvision's own program). The inference
    backends swap it in for the model's poolers; eager fp32 keeps torchvision's as the
    reference."""

    def forward(self, x: dict[str, Tensor], boxes: list[Tensor],
                image_shapes: list[tuple[int, int]]) -> Tensor:
        features = _filter_input(x, self.featmap_names)
        if (self.sampling_ratio <= 0 or torch.is_grad_enabled()
                or any(f.device.type != "cpu" for f in features)):
            return super().forward(x, boxes, image_shapes)
        if self.scales is None or self.map_levels is None:  # type: ignore[has-type]
            self.scales, self.map_levels = _setup_scales(
                features, image_shapes, self.canonical_scale, self.canonical_level)
        rois = _convert_to_roi_format(boxes)
        if len(features) == 1:
            return roi_align_gather(features[0], rois, self.output_size, self.scales[0],
                                    self.sampling_ratio)
        levels = self.map_levels(boxes)
        first = features[0]
        ph, pw = self.output_size
        result = first.new_zeros((rois.shape[0], ph, pw, first.shape[1]))  # RoIs × PH × PW × C
        for level, (feature, scale) in enumerate(zip(features, self.scales, strict=True)):
            picked = torch.where(levels == level)[0]
            if picked.numel():
                pooled = roi_align_gather(feature, rois[picked], self.output_size, scale,
                                          self.sampling_ratio)
                result[picked] = pooled.permute(0, 2, 3, 1)
        return result.permute(0, 3, 1, 2)
