"""Joint transforms keep image, masks and boxes aligned.

Scenes are hand-drawn: each object is painted into the image in its own pure colour, so after a
transform the image pixels under an instance's mask must still show that colour, and its box
must be the tight box of its mask (checked against pycocotools) and the original box mapped by
the transform's geometry (within 1 px).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from pycocotools import mask as mask_utils

from fashionkit.data.transforms import (
    INSTANCE_KEYS,
    Compose,
    RandomCrop,
    RandomHorizontalFlip,
    ResizeLongestAndPad,
    ResizeShortestKeepRatio,
    ScaleJitter,
    build_transforms,
    masks_to_boxes,
)

PALETTE = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (255, 0, 255), (0, 255, 255)]
NUM_ATTRIBUTES = 294


def _ellipse(h: int, w: int, cy: float, cx: float, ry: float, rx: float) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return ((yy + 0.5 - cy) / ry) ** 2 + ((xx + 0.5 - cx) / rx) ** 2 <= 1.0


def make_scene(h: int = 45, w: int = 70) -> tuple[torch.Tensor, dict, list[tuple[int, int, int]]]:
    """A non-square scene: rectangle, ellipse, L-shape on the right edge, a 2×3 object, and an
    object touching the bottom-left corner; none overlap. Returns uint8 image, target, colours."""
    masks = []
    m = np.zeros((h, w), bool)
    m[4:14, 5:25] = True
    masks.append(m)
    masks.append(_ellipse(h, w, cy=h * 0.55, cx=w * 0.45, ry=h * 0.2, rx=w * 0.12))
    m = np.zeros((h, w), bool)
    m[3:30, w - 6 : w] = True
    m[24:30, w - 16 : w] = True
    masks.append(m)
    m = np.zeros((h, w), bool)
    m[6:8, 30:33] = True  # tiny: 2×3
    masks.append(m)
    m = np.zeros((h, w), bool)
    m[h - 8 : h, 0:9] = True
    masks.append(m)
    stack = np.stack(masks)
    assert stack.sum(0).max() == 1, "scene objects must not overlap"
    image = np.zeros((h, w, 3), np.uint8)
    for i, mk in enumerate(masks):
        image[mk] = PALETTE[i]
    n = len(masks)
    mask_t = torch.from_numpy(stack.astype(np.uint8))
    target = {
        "boxes": masks_to_boxes(mask_t),
        "labels": torch.arange(1, n + 1, dtype=torch.int64),
        "masks": mask_t,
        "attributes": torch.eye(n, NUM_ATTRIBUTES, dtype=torch.float32),
        "iscrowd": torch.zeros(n, dtype=torch.int64),
        "area": mask_t.sum((1, 2), dtype=torch.float32),
        "image_id": torch.tensor(7),
        "orig_size": torch.tensor([h, w]),
        "scale": torch.tensor(1.0),
    }
    return torch.from_numpy(image).permute(2, 0, 1).contiguous(), target, PALETTE[:n]


def reference_boxes(masks: torch.Tensor) -> np.ndarray:
    """Tight XYXY boxes from pycocotools' toBbox (XYWH)."""
    if masks.shape[0] == 0:
        return np.zeros((0, 4))
    rles = mask_utils.encode(np.asfortranarray(masks.permute(1, 2, 0).numpy()))
    xywh = mask_utils.toBbox(rles)
    return np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)


def assert_consistent(image: torch.Tensor, target: dict) -> None:
    """Shapes agree, and each box is exactly its mask's tight box (pycocotools reference)."""
    n = target["masks"].shape[0]
    for key in INSTANCE_KEYS:
        assert target[key].shape[0] == n, key
    assert target["masks"].shape[1:] == image.shape[1:]
    assert target["masks"].dtype == torch.uint8 and target["boxes"].dtype == torch.float32
    assert target["attributes"].shape == (n, NUM_ATTRIBUTES)
    assert bool(target["masks"].flatten(1).any(1).bool().all()), "empty masks must be dropped"
    np.testing.assert_array_equal(target["boxes"].numpy(), reference_boxes(target["masks"]))
    assert torch.equal(target["area"], target["masks"].sum((1, 2)).float())


def _interior(mask: torch.Tensor) -> torch.Tensor:
    """Mask pixels whose 8 neighbours are in the mask too (edges blend under bilinear)."""
    outside = (~mask).float()[None, None]
    near_outside = torch.nn.functional.max_pool2d(outside, 3, stride=1, padding=1)[0, 0] > 0
    return mask & ~near_outside


def assert_colours_follow_masks(image: torch.Tensor, target: dict, colours) -> None:
    """Inside every mask (edges excluded), ≥ 90% of pixels show that instance's colour."""
    img = image.to(torch.float32)
    if image.dtype == torch.uint8:
        img = img / 255.0
    for row, label in enumerate(target["labels"].tolist()):
        mask = _interior(target["masks"][row].bool())
        if int(mask.sum()) < 4:
            continue
        want = torch.tensor(colours[label - 1], dtype=torch.float32)[:, None] / 255.0
        pixels = img[:, mask]  # 3×K
        close = ((pixels - want).abs() < 0.35).all(dim=0).float().mean().item()
        assert close >= 0.9, f"label {label}: only {close:.2f} of its mask shows its colour"


def assert_boxes_near(actual: torch.Tensor, expected: np.ndarray, tol: float = 1.0) -> None:
    assert actual.shape == expected.shape
    err = np.abs(actual.numpy() - expected).max() if len(expected) else 0.0
    assert err <= tol, f"boxes off by {err} px\n{actual}\n{expected}"


SIZES = [(45, 70), (70, 45), (48, 48)]


def test_masks_to_boxes_matches_pycocotools_including_empty():
    rng = np.random.default_rng(0)
    masks = torch.from_numpy((rng.random((6, 13, 17)) > 0.93).astype(np.uint8))
    masks[2] = 0
    masks[3] = 0
    masks[3, 12, 16] = 1  # only the last pixel
    boxes = masks_to_boxes(masks)
    np.testing.assert_array_equal(boxes.numpy(), reference_boxes(masks))
    assert boxes[2].tolist() == [0, 0, 0, 0]
    assert boxes[3].tolist() == [16, 12, 17, 13]
    assert masks_to_boxes(torch.zeros((0, 5, 5), dtype=torch.uint8)).shape == (0, 4)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 12), st.integers(1, 12), st.integers(0, 2**31 - 1))
def test_masks_to_boxes_property(h, w, seed):
    rng = np.random.default_rng(seed)
    masks = torch.from_numpy((rng.random((3, h, w)) > rng.random()).astype(np.uint8))
    keep = masks.reshape(3, -1).any(1).bool()
    np.testing.assert_array_equal(masks_to_boxes(masks)[keep].numpy(), reference_boxes(masks[keep]))


@pytest.mark.parametrize("h,w", SIZES)
@pytest.mark.parametrize("size", [32, 160])  # down- and up-scaling
def test_resize_longest_and_pad_aligns(h, w, size):
    image, target, colours = make_scene(h, w)
    out_image, out = ResizeLongestAndPad(size)(image, target)
    assert out_image.shape == (3, size, size) and out_image.dtype == torch.uint8
    factor = size / max(h, w)
    assert out["scale"].item() == pytest.approx(factor)
    new_h, new_w = round(h * factor), round(w * factor)
    assert max(new_h, new_w) == size
    # Zero padding right and bottom only, in the image and the masks.
    assert not out_image[:, new_h:, :].any() and not out_image[:, :, new_w:].any()
    assert not out["masks"][:, new_h:, :].any() and not out["masks"][:, :, new_w:].any()
    assert_consistent(out_image, out)
    assert_colours_follow_masks(out_image, out, colours)
    kept = out["labels"] - 1
    sx, sy = new_w / w, new_h / h
    expected = target["boxes"][kept].numpy() * np.array([sx, sy, sx, sy])
    assert_boxes_near(out["boxes"], expected)
    # The input target is not modified.
    assert target["masks"].shape[1:] == (h, w)


@pytest.mark.parametrize("h,w", SIZES)
@pytest.mark.parametrize(
    "min_size,max_size",
    [(90, 1000), (30, 1000), (90, 100)],  # up, down, and capped by max_size
)
def test_resize_shortest_keep_ratio_aligns(h, w, min_size, max_size):
    image, target, colours = make_scene(h, w)
    out_image, out = ResizeShortestKeepRatio(min_size, max_size)(image, target)
    factor = min(min_size / min(h, w), max_size / max(h, w))
    assert out_image.shape == (3, round(h * factor), round(w * factor))
    assert max(out_image.shape[1:]) <= max_size
    assert out["scale"].item() == pytest.approx(factor)
    assert_consistent(out_image, out)
    assert_colours_follow_masks(out_image, out, colours)
    sy, sx = out_image.shape[1] / h, out_image.shape[2] / w
    expected = target["boxes"][out["labels"] - 1].numpy() * np.array([sx, sy, sx, sy])
    assert_boxes_near(out["boxes"], expected)


def test_keep_ratio_multiscale_draws_from_the_given_sizes():
    image, target, _ = make_scene(40, 60)
    t = ResizeShortestKeepRatio((32, 48, 64), 1000, train=True)
    seen = set()
    for seed in range(20):
        out_image, _ = t(image, target, torch.Generator().manual_seed(seed))
        seen.add(out_image.shape[1])
    assert seen == {32, 48, 64}
    # Evaluation uses the last size.
    out_image, _ = ResizeShortestKeepRatio((32, 48, 64), 1000)(image, target)
    assert out_image.shape[1] == 64


@pytest.mark.parametrize("h,w", SIZES)
def test_flip_mirrors_exactly_and_twice_is_identity(h, w):
    image, target, colours = make_scene(h, w)
    flip = RandomHorizontalFlip(p=1.0)
    once_image, once = flip(image, target)
    assert torch.equal(once_image, image.flip(-1))
    assert torch.equal(once["masks"], target["masks"].flip(-1))
    expected = target["boxes"].numpy()[:, [2, 1, 0, 3]] * np.array([-1, 1, -1, 1])
    expected += np.array([w, 0, w, 0])
    np.testing.assert_array_equal(once["boxes"].numpy(), expected)
    assert_consistent(once_image, once)
    assert_colours_follow_masks(once_image, once, colours)
    twice_image, twice = flip(once_image, once)
    assert torch.equal(twice_image, image)
    for key, value in target.items():
        assert torch.equal(twice[key], value), key


def test_flip_probability():
    image, target, _ = make_scene()
    out_image, out = RandomHorizontalFlip(p=0.0)(image, target, torch.Generator().manual_seed(0))
    assert torch.equal(out_image, image) and torch.equal(out["boxes"], target["boxes"])
    flips = 0
    for seed in range(200):
        out_image, _ = RandomHorizontalFlip(0.3)(image, target, torch.Generator().manual_seed(seed))
        flips += int(not torch.equal(out_image, image))
    assert 35 <= flips <= 85  # Binomial(200, 0.3): mean 60, sd 6.5


@pytest.mark.parametrize("h,w", SIZES)
def test_scale_jitter_aligns_over_many_draws(h, w):
    image, target, colours = make_scene(h, w)
    size = 64
    jitter = ScaleJitter(0.5, 2.0, size)
    factors = []
    dropped = 0
    for seed in range(25):
        out_image, out = jitter(image, target, torch.Generator().manual_seed(seed))
        assert out_image.shape == (3, size, size)
        assert_consistent(out_image, out)
        assert_colours_follow_masks(out_image, out, colours)
        factor = out["scale"].item()
        assert 0.5 * size / max(h, w) - 1e-3 <= factor * 1 <= 2.0 * size / max(h, w) + 1e-3
        factors.append(factor)
        dropped += int(len(out["labels"]) < len(target["labels"]))
    assert max(factors) / min(factors) > 2.0, "the scale should vary across draws"
    assert dropped > 0, "at 2× some object must fall outside the crop in some draw"


def _one_object(mask: torch.Tensor) -> dict[str, torch.Tensor]:
    """The target of one object of class 1 with this 1×H×W mask, at scale 1."""
    return {
        "boxes": masks_to_boxes(mask),
        "labels": torch.tensor([1]),
        "masks": mask,
        "attributes": torch.zeros((1, NUM_ATTRIBUTES)),
        "iscrowd": torch.tensor([0]),
        "area": mask.sum(dim=(1, 2)).float(),
        "scale": torch.tensor(1.0),
    }


def test_scale_jitter_crop_keeps_the_visible_part_of_a_cut_object():
    # One 40×40 object filling the image; at 2× (80×80) a 64×64 window always cuts it.
    image = torch.full((3, 40, 40), 255, dtype=torch.uint8)
    mask = torch.ones((1, 40, 40), dtype=torch.uint8)
    target = _one_object(mask)
    out_image, out = ScaleJitter(2.0, 2.0, 64)(image, target, torch.Generator().manual_seed(3))
    assert out["boxes"].tolist() == [[0.0, 0.0, 64.0, 64.0]]
    assert bool(out["masks"].all()) and bool((out_image == 255).all())


def test_scale_jitter_at_scale_one_without_crop_is_the_paper_resize():
    image, target, _ = make_scene(45, 70)
    a_image, a = ScaleJitter(1.0, 1.0, 96)(image, target, torch.Generator().manual_seed(0))
    b_image, b = ResizeLongestAndPad(96)(image, target)
    assert torch.equal(a_image, b_image)
    for key in b:
        assert torch.equal(a[key], b[key]), key


@pytest.mark.parametrize("h,w", SIZES)
def test_random_crop_is_a_window_of_the_image_and_its_masks(h, w):
    image, target, colours = make_scene(h, w)
    crop = RandomCrop(24)
    offsets = set()
    dropped = 0
    for seed in range(25):
        out_image, out = crop(image, target, torch.Generator().manual_seed(seed))
        assert out_image.shape == (3, min(h, 24), min(w, 24))
        assert_consistent(out_image, out)
        assert_colours_follow_masks(out_image, out, colours)
        assert torch.equal(out["scale"], target["scale"])  # a crop does not resample
        # The output is a window of the input, at pixel offsets (find it by exact match).
        found = [(y, x) for y in range(h - out_image.shape[1] + 1)
                 for x in range(w - out_image.shape[2] + 1)
                 if torch.equal(image[:, y:y + out_image.shape[1], x:x + out_image.shape[2]],
                                out_image)]
        assert found
        offsets.add(found[0])
        dropped += int(len(out["labels"]) < len(target["labels"]))
    if h > 24 or w > 24:
        assert len(offsets) > 1, "the window should move across draws"
        assert dropped > 0, "some object must fall outside some window"


def test_random_crop_keeps_the_visible_part_of_a_cut_object_and_is_train_only():
    image = torch.full((3, 40, 40), 255, dtype=torch.uint8)
    mask = torch.zeros((1, 40, 40), dtype=torch.uint8)
    mask[0, 10:30, 10:30] = 1
    target = _one_object(mask)
    for seed in range(10):
        _, out = RandomCrop(20)(image, target, torch.Generator().manual_seed(seed))
        if len(out["labels"]):
            m = out["masks"][0].bool()
            ys, xs = torch.where(m)
            assert out["boxes"][0].tolist() == [xs.min().item(), ys.min().item(),
                                                xs.max().item() + 1, ys.max().item() + 1]
            assert out["area"][0].item() == m.sum().item() < 400
    train = build_transforms("paper", 40, train=True, flip_p=0.0, crop_size=20)
    evaluation = build_transforms("paper", 40, train=False, crop_size=20)
    assert train(image, target, torch.Generator().manual_seed(0))[0].shape == (3, 20, 20)
    assert evaluation(image, target)[0].shape == (3, 40, 40)
    with pytest.raises(ValueError, match="positive"):
        RandomCrop(0)


def test_tiny_objects_survive_upscaling_and_vanish_consistently_when_downscaling():
    image, target, _ = make_scene(45, 70)
    tiny_label = 4  # the 2×3 object
    _, up = ResizeLongestAndPad(280)(image, target)
    assert tiny_label in up["labels"].tolist()
    row = up["labels"].tolist().index(tiny_label)
    assert_boxes_near(up["boxes"][row : row + 1], target["boxes"][3:4].numpy() * 4.0)
    # 70 → 7 px: a 2×3 object cannot survive a 10× shrink; all fields drop it together.
    down_image, down = ResizeLongestAndPad(7)(image, target)
    assert tiny_label not in down["labels"].tolist()
    assert_consistent(down_image, down)
    n = len(down["labels"])
    assert down["attributes"].shape == (n, NUM_ATTRIBUTES)
    # Attributes travel with their instance (row i of the scene has attribute i).
    assert (down["attributes"].argmax(1) == down["labels"] - 1).all()


@pytest.mark.parametrize(
    "transform",
    [
        ResizeLongestAndPad(32),
        ResizeShortestKeepRatio(20, 40),
        RandomHorizontalFlip(1.0),
        ScaleJitter(0.5, 2.0, 32),
        RandomCrop(16),
    ],
    ids=repr,
)
def test_empty_target_keeps_shapes(transform):
    image = torch.zeros((3, 30, 50), dtype=torch.uint8)
    target = {
        "boxes": torch.zeros((0, 4)),
        "labels": torch.zeros(0, dtype=torch.int64),
        "masks": torch.zeros((0, 30, 50), dtype=torch.uint8),
        "attributes": torch.zeros((0, NUM_ATTRIBUTES)),
        "iscrowd": torch.zeros(0, dtype=torch.int64),
        "area": torch.zeros(0),
        "scale": torch.tensor(1.0),
    }
    out_image, out = transform(image, target, torch.Generator().manual_seed(0))
    assert out["boxes"].shape == (0, 4)
    assert out["masks"].shape == (0, *out_image.shape[1:])
    assert out["attributes"].shape == (0, NUM_ATTRIBUTES)
    assert_consistent(out_image, out)


@pytest.mark.parametrize("kind", ["paper", "keep-ratio", "jitter"])
def test_build_transforms_is_deterministic_per_seed(kind):
    image, target, colours = make_scene(45, 70)
    train = build_transforms(kind, size=64, train=True, min_size=(40, 50), max_size=100)

    def run(seed):
        return train(image, target, torch.Generator().manual_seed(seed))

    a_image, a = run(1)
    b_image, b = run(1)
    assert torch.equal(a_image, b_image)
    for key in a:
        assert torch.equal(a[key], b[key])
    assert_consistent(a_image, a)
    assert_colours_follow_masks(a_image, a, colours)
    outputs = {tuple(run(seed)[1]["boxes"].flatten().tolist()) for seed in range(8)}
    assert len(outputs) > 1, "different seeds should give different augmentations"
    # Evaluation pipelines are deterministic without a generator.
    evaluate = build_transforms(kind, size=64, train=False, min_size=(40, 50), max_size=100)
    e1, t1 = evaluate(image, target)
    e2, t2 = evaluate(image, target)
    assert torch.equal(e1, e2) and torch.equal(t1["boxes"], t2["boxes"])


def test_build_transforms_kinds():
    assert [type(t) for t in build_transforms("paper", 512, train=True).transforms] == [
        RandomHorizontalFlip,
        ResizeLongestAndPad,
    ]
    assert [type(t) for t in build_transforms("jitter", 512, train=False).transforms] == [
        ResizeLongestAndPad
    ]
    assert isinstance(build_transforms("keep-ratio", train=False), Compose)
    with pytest.raises(ValueError, match="unknown transform kind"):
        build_transforms("mosaic")  # type: ignore[arg-type]


def test_float_images_keep_dtype_and_alignment():
    image, target, colours = make_scene(45, 70)
    as_float = image.to(torch.float32) / 255.0
    out_image, out = build_transforms("paper", 64, train=False)(as_float, target)
    assert out_image.dtype == torch.float32
    assert float(out_image.min()) >= 0.0 and float(out_image.max()) <= 1.0 + 1e-6
    assert_colours_follow_masks(out_image, out, colours)


def test_mismatched_masks_are_rejected():
    image, target, _ = make_scene(45, 70)
    with pytest.raises(ValueError, match="masks are"):
        ResizeLongestAndPad(32)(image[:, :40], target)


@settings(max_examples=60, deadline=None)
@given(
    h=st.integers(8, 80),
    w=st.integers(8, 80),
    rect=st.tuples(*[st.floats(0, 1)] * 4),
    kind=st.sampled_from(["paper", "keep-ratio", "jitter"]),
    size=st.sampled_from([24, 64, 150]),
    seed=st.integers(0, 2**31 - 1),
)
def test_mask_box_matches_the_painted_pixels_under_any_pipeline(h, w, rect, kind, size, seed):
    """An independent alignment check: the box of the image pixels that show the object
    (red channel above half, i.e. where interpolation crosses the true edge) equals the mask's
    box within 1 px, for random image sizes, rectangles and train pipelines."""
    y0, y1 = sorted(int(v * h) for v in rect[:2])
    x0, x1 = sorted(int(v * w) for v in rect[2:])
    y1, x1 = max(y1, y0 + 1), max(x1, x0 + 1)
    mask = torch.zeros((1, h, w), dtype=torch.uint8)
    mask[0, y0:y1, x0:x1] = 1
    image = torch.zeros((3, h, w), dtype=torch.uint8)
    image[0] = mask[0] * 255
    target = {
        "boxes": masks_to_boxes(mask),
        "labels": torch.tensor([1]),
        "masks": mask,
        "attributes": torch.zeros((1, NUM_ATTRIBUTES)),
        "iscrowd": torch.tensor([0]),
        "area": mask.sum((1, 2)).float(),
        "scale": torch.tensor(1.0),
    }
    pipeline = build_transforms(kind, size, train=True, min_size=size, max_size=2 * size)
    out_image, out = pipeline(image, target, torch.Generator().manual_seed(seed))
    assert_consistent(out_image, out)
    if len(out["labels"]) == 0:
        return
    box = out["boxes"][0]
    if float((box[2:] - box[:2]).min()) < 3:
        return  # too small for the image edge to reach half intensity
    painted = out_image[0] > 127
    ys, xs = painted.nonzero(as_tuple=True)
    painted_box = torch.tensor(
        [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=torch.float32
    )
    assert (painted_box - box).abs().max() <= 1.0, (painted_box, box)


def test_scale_jitter_output_does_not_hold_the_uncropped_buffer():
    image, target, _ = make_scene(45, 70)
    out_image, out = ScaleJitter(2.0, 2.0, 32)(image, target, torch.Generator().manual_seed(0))
    for tensor in (out_image, out["masks"]):
        assert tensor.untyped_storage().nbytes() == tensor.numel() * tensor.element_size()
