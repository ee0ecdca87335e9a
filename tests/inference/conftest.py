"""Checkpoints for inference tests: an untrained ``cpu-tiny`` model at 96 px whose box score
threshold is 0 (fast: plumbing), and one trained on drawn garments (slow: backend parity)."""

from __future__ import annotations

from pathlib import Path

import pytest

SIZE = 96


def drawn_samples(n: int = 6, size: int = SIZE, seed: int = 0):
    """``n`` pictures of a "top" rectangle with a "sleeve" rectangle inside it and a "bag"
    ellipse, on a dark noisy background: ``[(uint8 H×W×3 pixels, target dict)]`` in the
    model's training-target format (labels are contiguous: category id + 1)."""
    import numpy as np
    import torch

    from fashionkit.ontology import load_ontology

    ontology = load_ontology()
    label = {name: ontology.category_to_label(ontology.find_category(name).id)
             for name in ("top", "sleeve", "bag")}
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    out = []
    for _ in range(n):
        pixels = rng.integers(0, 40, (size, size, 3)).astype(np.uint8)
        x0, y0 = rng.integers(4, 20, 2)
        w, h = rng.integers(30, 44), rng.integers(36, 56)
        top = (xx >= x0) & (xx < x0 + w) & (yy >= y0) & (yy < y0 + h)
        sleeve = (xx >= x0) & (xx < x0 + 8) & (yy >= y0 + 4) & (yy < y0 + h // 2)
        cx, cy = rng.integers(66, 80), rng.integers(30, 70)
        bag = ((xx - cx) / 12.0) ** 2 + ((yy - cy) / 10.0) ** 2 <= 1
        pixels[top] = (200, 60, 60)
        pixels[sleeve] = (240, 200, 80)
        pixels[bag] = (60, 90, 210)
        masks, labels = [], []
        for name, mask in (("top", top), ("sleeve", sleeve), ("bag", bag)):
            masks.append(torch.from_numpy(mask.astype(np.uint8)))
            labels.append(label[name])
        masks = torch.stack(masks)
        ys = [torch.where(m.any(1))[0] for m in masks]
        xs = [torch.where(m.any(0))[0] for m in masks]
        boxes = torch.tensor([[x[0], y[0], x[-1] + 1, y[-1] + 1] for x, y in zip(xs, ys,
                                                                                 strict=True)],
                             dtype=torch.float32)
        attributes = torch.zeros((3, ontology.num_attributes))
        out.append((pixels, {"boxes": boxes, "labels": torch.tensor(labels), "masks": masks,
                             "attributes": attributes}))
    return out


@pytest.fixture(scope="session")
def trained_checkpoint(tmp_path_factory) -> Path:
    """A ``cpu-tiny`` model at 96 px that has learnt :func:`drawn_samples` (slow tests only:
    a couple of minutes of CPU): confident detections to compare backends on."""
    import torch

    from fashionkit.engine import apply_overrides, get_recipe
    from fashionkit.engine.train import model_config_for
    from fashionkit.modeling import build_model, save_checkpoint

    recipe = apply_overrides(get_recipe("cpu-tiny"), [f"data.image_size={SIZE}"])
    torch.manual_seed(0)
    model = build_model(model_config_for(recipe)).train()
    samples = drawn_samples()
    images = [torch.from_numpy(p).permute(2, 0, 1).float() / 255 for p, _ in samples]
    targets = [t for _, t in samples]
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=2e-3, weight_decay=1e-4)
    for step in range(150):
        for group in optimizer.param_groups:
            group["lr"] = 2e-3 * min(1.0, (step + 1) / 10)
        loss = sum(model.losses(images, targets).values())
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 10.0)
        optimizer.step()
    path = tmp_path_factory.mktemp("trained") / "model.pt"
    save_checkpoint(model.eval(), path, extra={"recipe": recipe.to_dict()})
    return path


@pytest.fixture(scope="session")
def untrained_checkpoint(tmp_path_factory) -> Path:
    """An untrained ``cpu-tiny`` model at 96 px (fixed seed) whose box score threshold is 0, so
    that it returns its 20 best boxes on any image: enough to check the plumbing (transform,
    mapping back, RLE, names, links) in well under a second per call."""
    import torch

    from fashionkit.engine import apply_overrides, get_recipe
    from fashionkit.engine.train import model_config_for
    from fashionkit.modeling import build_model, save_checkpoint

    recipe = apply_overrides(get_recipe("cpu-tiny"), [
        f"data.image_size={SIZE}", "model.box_score_thresh=0.0", "model.box_detections_per_img=20",
        "model.rpn_pre_nms_top_n_test=100", "model.rpn_post_nms_top_n_test=40",
    ])
    torch.manual_seed(0)
    model = build_model(model_config_for(recipe)).eval()
    path = tmp_path_factory.mktemp("untrained") / "model.pt"
    save_checkpoint(model, path, extra={"recipe": recipe.to_dict()})
    return path


def synthetic_photo(height: int, width: int, seed: int = 0):
    """An ``H×W×3 uint8`` picture with a few bright blobs on a dark background."""
    import numpy as np

    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 40, (height, width, 3), dtype=np.uint8)
    for _ in range(3):
        y0, x0 = rng.integers(0, height // 2), rng.integers(0, width // 2)
        h, w = rng.integers(height // 4, height // 2), rng.integers(width // 4, width // 2)
        pixels[y0:y0 + h, x0:x0 + w] = rng.integers(120, 255, 3, dtype=np.uint8)
    return pixels
