"""RoI pooling over FPN levels: torchvision's ``MultiScaleRoIAlign`` with a faster CPU program
and an export-friendly ONNX program (:class:`FPNRoIAlign`).

On CPU, torchvision's ``roi_align`` loops over RoIs, channels and bins on one thread (forward
and backward), and first copies a channels-last map to contiguous NCHW, which makes the two
poolers a large share of the RoI heads' time in CPU inference and training. Every RoIAlign output value is a weighted sum of feature vectors: each bin's
``sampling_ratio²`` sample points' four bilinear neighbours. Read as rows of an
``(N·H·W) × C`` table (a view of a channels-last map), a bin is a bag of
``4·sampling_ratio²`` rows with weights, which :func:`torch.nn.functional.embedding_bag` sums
with all threads, a contiguous run of channels per row, and differentiates. The sample
positions, neighbours and weights follow torchvision's kernel (``roi_align_kernel.cpp``,
``aligned=False``) in the same float order, so the result equals it to float rounding
(:func:`roi_align_gather`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.ops import MultiScaleRoIAlign, roi_align
from torchvision.ops.poolers import _convert_to_roi_format, _filter_input, _setup_scales

__all__ = ["FPNRoIAlign", "roi_align_gather"]


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

    ``input``: ``N×C×H×W`` float (channels-last fp32 is read in place, other layouts are
    copied once; bf16/fp16 are pooled in fp32, as torchvision's autocast does); ``rois``:
    ``K×5`` (batch index, x1, y1, x2, y2) in input-image pixels.
    Returns ``K×C×PH×PW`` in channels-last memory, in ``input``'s dtype. Differentiable in
    ``input``, not in ``rois`` (as torchvision's).
    """
    if sampling_ratio <= 0:
        raise ValueError(f"roi_align_gather needs a fixed sampling_ratio > 0, got {sampling_ratio}")
    n, c, h, w = input.shape
    ph, pw = output_size
    count = rois.shape[0]
    if count == 0:
        return input.new_zeros((0, c, ph, pw))
    # torchvision's autocast runs roi_align in fp32: so do reduced-precision inputs here
    dtype = torch.promote_types(input.dtype, torch.float32)
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
    # rows of channels: a view of channels-last memory, else one copy (for one NCHW image
    # ``reshape`` would return a view whose channels lie H·W apart, which embedding_bag reads
    # far more slowly than contiguous rows)
    table = input.to(dtype).permute(0, 2, 3, 1).reshape(n * h * w, c).contiguous()
    pooled = F.embedding_bag(index.reshape(count * ph * pw, -1), table,
                             per_sample_weights=weight.reshape(count * ph * pw, -1), mode="sum")
    return pooled.reshape(count, ph, pw, c).permute(0, 3, 1, 2).to(input.dtype)


class FPNRoIAlign(MultiScaleRoIAlign):
    """torchvision's ``MultiScaleRoIAlign`` (same arguments, levels and numbers) with two other
    programs: on CPU, each level pooled by :func:`roi_align_gather` (training and inference);
    when exported to ONNX, the program described below. Elsewhere (CUDA, or an adaptive
    ``sampling_ratio <= 0``) torchvision's own.

    torchvision's exported program gathers each FPN level's RoIs, pools them, and merges the
    levels with ``ScatterElements`` over index tensors expanded to the full output
    (RoIs × channels × 7 × 7 int64 per level), a large part of the graph's non-convolution
    time in OpenVINO. Exported, this one pools every RoI
    at every level and keeps each RoI's own level with ``where`` (the same numbers; RoIAlign
    itself is cheap).

    It also records, while exporting, the boxes it pooled and their levels (:attr:`pooled`,
    ``R×5``: x1, y1, x2, y2, level), which the export makes graph outputs, and its RoIAlign
    reads the boxes tensor itself. That keeps the RoI arithmetic in fp32 under OpenVINO's
    bf16 precision: the CPU plugin runs in bf16 every float operation that does not lead to
    an output without passing a convolution or matmul, and 8-bit-mantissa RoI coordinates
    (2–4 px steps at 512–1024 px) and level arithmetic move detection scores visibly away
    from eager fp32. The exported graph pools one image.
    """

    pooled: Tensor | None = None

    def forward(self, x: dict[str, Tensor], boxes: list[Tensor],
                image_shapes: list[tuple[int, int]]) -> Tensor:
        features = _filter_input(x, self.featmap_names)
        if self.scales is None or self.map_levels is None:  # type: ignore[has-type]
            self.scales, self.map_levels = _setup_scales(
                features, image_shapes, self.canonical_scale, self.canonical_level)
        if torch.onnx.is_in_onnx_export():
            return self._exported(features, boxes)
        if self.sampling_ratio <= 0 or any(f.device.type != "cpu" for f in features):
            return super().forward(x, boxes, image_shapes)
        return self._gathered(features, boxes)

    def _gathered(self, features: list[Tensor], boxes: list[Tensor]) -> Tensor:
        rois = _convert_to_roi_format(boxes)
        assert self.scales is not None and self.map_levels is not None
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
                result.index_put_((picked,), pooled.permute(0, 2, 3, 1))
        return result.permute(0, 3, 1, 2)

    def _exported(self, features: list[Tensor], boxes: list[Tensor]) -> Tensor:
        assert self.scales is not None and self.map_levels is not None
        if len(boxes) != 1:
            raise ValueError(f"the exported graph pools one image's RoIs, got {len(boxes)}")
        [rois] = boxes
        levels = self.map_levels(boxes) if len(features) > 1 else rois.new_zeros(
            rois.shape[0], dtype=torch.int64)
        result = None
        for level, (feature, scale) in enumerate(zip(features, self.scales, strict=True)):
            pooled = _RoIAlignOneImage.apply(feature, rois, self.output_size, scale,
                                             self.sampling_ratio)
            result = pooled if result is None else torch.where(
                (levels == level)[:, None, None, None], pooled, result)
        self.pooled = torch.cat([rois, levels[:, None].to(rois.dtype)], dim=1)
        assert result is not None
        return result


class _RoIAlignOneImage(torch.autograd.Function):
    """torchvision's ``roi_align`` of one image's ``N×4`` boxes. Exported as ONNX ``RoiAlign``
    reading the boxes tensor itself (torchvision's symbolic slices them out of ``N×5`` RoIs:
    one more float op, which OpenVINO's bf16 would round)."""

    @staticmethod
    def forward(ctx, feature, boxes, output_size, spatial_scale, sampling_ratio):  # type: ignore[override]
        return roi_align(feature, [boxes], output_size, spatial_scale, sampling_ratio)

    @staticmethod
    def symbolic(g, feature, boxes, output_size, spatial_scale, sampling_ratio):  # pragma: no cover - runs inside torch.onnx.export
        shape = g.op("Shape", boxes)
        count = g.op("Slice", shape, g.op("Constant", value_t=torch.tensor([0])),
                     g.op("Constant", value_t=torch.tensor([1])))
        batch = g.op("ConstantOfShape", count, value_t=torch.tensor([0], dtype=torch.int64))
        return g.op("RoiAlign", feature, boxes, batch,
                    coordinate_transformation_mode_s="output_half_pixel",  # aligned=False
                    output_height_i=output_size[0], output_width_i=output_size[1],
                    sampling_ratio_i=sampling_ratio, spatial_scale_f=spatial_scale)
