"""The cpu-tiny model learns: it overfits four hand-drawn images (rectangles and ellipses)."""

import pytest
import torch

from fashionkit.engine import get_recipe
from fashionkit.engine.module import lr_factor
from fashionkit.modeling import build_model, model_config_from_preset


def _drawn_images(size: int = 96):
    """Four images with 2–3 shapes each: a rectangle of class 1 and an ellipse of class 2 (and
    a small square of class 3), each shape with its own attribute."""
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    samples = []
    g = torch.Generator().manual_seed(0)
    for k in range(4):
        image = torch.full((3, size, size), 0.15) + 0.05 * torch.rand(3, size, size, generator=g)
        masks, boxes, labels, attrs = [], [], [], []
        x0, y0 = 8 + 6 * k, 10 + 4 * k
        rect = (xx >= x0) & (xx < x0 + 30) & (yy >= y0) & (yy < y0 + 40)
        cx, cy, rx, ry = 66 - 3 * k, 60 - 2 * k, 16 + k, 12 + 2 * k
        ellipse = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1
        shapes = [(rect, 1, 0, (0.9, 0.2, 0.2)), (ellipse, 2, 1, (0.2, 0.3, 0.9))]
        if k % 2:
            sq = (xx >= 70) & (xx < 86) & (yy >= 8) & (yy < 24)
            shapes.append((sq, 3, 2, (0.9, 0.9, 0.2)))
        for mask, label, attr, colour in shapes:
            image[:, mask] = torch.tensor(colour).view(3, 1)
            ys, xs = torch.where(mask)
            boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
            masks.append(mask)
            labels.append(label)
            a = torch.zeros(294)
            a[attr] = 1.0
            attrs.append(a)
        samples.append((image, {
            "boxes": torch.tensor(boxes, dtype=torch.float32),
            "labels": torch.tensor(labels),
            "masks": torch.stack(masks).to(torch.uint8),
            "attributes": torch.stack(attrs),
        }))
    return samples


def _train(steps: int, lr: float = 2e-3) -> tuple[list[float], torch.nn.Module, list]:
    torch.manual_seed(0)
    model = build_model(model_config_from_preset("cpu-tiny", min_size=96, max_size=96)).train()
    samples = _drawn_images()
    images, targets = [s[0] for s in samples], [s[1] for s in samples]
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr,
                            weight_decay=1e-4)
    # The cpu-tiny recipe's schedule (cosine down to its final factor) after a short warmup:
    # at a constant LR the boxes keep jittering around the shapes instead of settling.
    cfg = get_recipe("cpu-tiny").optim
    history = []
    for step in range(steps):
        factor = lr_factor(step, steps, 10, 0.1, cfg.decay_at, cfg.decay_gamma,
                           schedule=cfg.schedule, final_factor=cfg.final_factor)
        for group in opt.param_groups:
            group["lr"] = lr * factor
        losses = model.losses(images, targets)
        total = sum(losses.values())
        opt.zero_grad()
        total.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        opt.step()
        history.append(total.detach().item())
    return history, model, samples


def _mean(values):
    return sum(values) / len(values)


def test_cpu_tiny_total_loss_falls_quickly():
    history, _, _ = _train(25)
    assert _mean(history[-3:]) < 0.4 * _mean(history[:3]), history


@pytest.mark.slow
def test_cpu_tiny_overfits_four_images():
    history, model, samples = _train(120)
    assert _mean(history[-5:]) < 0.4 * _mean(history[:3]), history
    det = model.eval().predict([s[0] for s in samples])
    # Every drawn shape is found with its Fashionpedia category (label - 1) and attribute.
    from torchvision.ops import box_iou

    from fashionkit.ontology import load_ontology

    ontology = load_ontology()
    for d, (_, t) in zip(det, samples, strict=True):
        for box, label, attr in zip(t["boxes"], t["labels"], t["attributes"], strict=True):
            same = d.category_ids == ontology.label_to_category(int(label))
            assert same.any(), (d.category_ids, label)
            best = int(torch.argmax(box_iou(box[None], d.boxes[same])[0]))
            assert box_iou(box[None], d.boxes[same][best:best + 1]).item() > 0.6
            attr_id = ontology.index_to_attribute(int(attr.argmax()))
            assert attr_id in d[same][best:best + 1].attribute_ids[0]
