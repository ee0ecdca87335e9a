"""Tiny synthetic samples for the modeling tests in the training-sample contract (see fashionkit.modeling.model)."""

from __future__ import annotations

import torch

# Small RPN/RoI budgets so that every variant runs forward + backward in well under a second.
FAST = dict(
    rpn_pre_nms_top_n_train=100,
    rpn_post_nms_top_n_train=50,
    rpn_pre_nms_top_n_test=100,
    rpn_post_nms_top_n_test=50,
    rpn_batch_size_per_image=64,
    box_batch_size_per_image=32,
    box_detections_per_img=20,
)


def make_sample(size: int = 64, n: int = 2, seed: int = 0, num_attributes: int = 294):
    """A ``3×size×size`` image with ``n`` filled rectangles, and its target dict."""
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(3, size, size, generator=g) * 0.2
    boxes, masks = [], torch.zeros(n, size, size, dtype=torch.uint8)
    for i in range(n):
        x0, y0 = (int(v) for v in torch.randint(0, size // 2, (2,), generator=g))
        w, h = (int(v) for v in torch.randint(size // 6, size // 2, (2,), generator=g))
        x1, y1 = min(size, x0 + w), min(size, y0 + h)
        masks[i, y0:y1, x0:x1] = 1
        image[i % 3, y0:y1, x0:x1] = 0.9
        boxes.append([x0, y0, x1, y1])
    attributes = torch.zeros(n, num_attributes)
    for i in range(n):
        attributes[i, (7 * i + 3) % num_attributes] = 1.0
    target = {
        "boxes": torch.tensor(boxes, dtype=torch.float32).reshape(n, 4),
        "labels": torch.arange(1, n + 1, dtype=torch.int64),
        "masks": masks,
        "attributes": attributes,
        "iscrowd": torch.zeros(n, dtype=torch.int64),
        "area": masks.flatten(1).sum(1).float(),
        "image_id": torch.tensor(seed),
        "orig_size": torch.tensor([size, size]),
        "scale": torch.tensor(1.0),
    }
    return image, target




def run_onnx(path, feeds: dict, runtime: str) -> list:
    """The outputs of the ONNX file ``path`` on ``feeds`` (name → numpy array), run by
    ``runtime``: ``"onnxruntime"`` or ``"openvino"`` (fp32 inference precision, so that a
    CPU with bf16 does not round)."""
    import numpy as np

    if runtime == "onnxruntime":
        import onnxruntime as ort

        return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feeds)
    import openvino as ov

    result = ov.Core().compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})(feeds)
    return [np.asarray(result[k]) for k in range(len(result))]
