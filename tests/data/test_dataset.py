"""FashionDataset: the training-sample contract, image reading, errors, reproducibility.

Every test builds its own tiny AnnotationSet by hand: masks drawn with numpy, stored as
compressed RLE (``encode_mask``), polygons or uncompressed crowd RLE, and images written with PIL
where each object is painted in its own colour so alignment can be checked on the pixels.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps
from pycocotools import mask as mask_utils
from torch.utils.data import DataLoader

from fashionkit.data import Annotation, AnnotationSet, ImageInfo, InvalidDataError
from fashionkit.data.dataset import (
    EmptyMaskWarning,
    FashionDataset,
    ImageSizeMismatchWarning,
    collate,
    sample_seed,
)
from fashionkit.data.masks import encode_mask
from fashionkit.data.samplers import AspectRatioGroupedSampler
from fashionkit.data.transforms import build_transforms
from fashionkit.ontology import load_ontology

ONTOLOGY = load_ontology()
COLOURS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)]


def _rect(h: int, w: int, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    m = np.zeros((h, w), bool)
    m[y0:y1, x0:x1] = True
    return m


def _paint(h: int, w: int, masks: list[np.ndarray]) -> np.ndarray:
    image = np.full((h, w, 3), 40, np.uint8)  # dark grey background
    for i, m in enumerate(masks):
        image[m] = COLOURS[i % len(COLOURS)]
    return image


def _rle_segmentation(mask: np.ndarray) -> dict:
    rle = encode_mask(mask)
    return {"size": rle["size"], "counts": rle["counts"].decode("ascii")}


def _uncompressed_rle(mask: np.ndarray) -> dict:
    flat = mask.astype(np.uint8).flatten(order="F")
    counts, current, run = [], 0, 0
    for v in flat:
        if v == current:
            run += 1
        else:
            counts.append(run)
            current, run = v, 1
    counts.append(run)
    return {"size": list(mask.shape), "counts": [int(c) for c in counts]}


def build_world(tmp_path, n_extra: int = 0):
    """Image 1: 40×64 landscape with an RLE coat (id 10 → label 11) carrying two attributes, a
    polygon pocket (id 32) and a crowd of uncompressed RLE; image 2: 64×40 portrait with one
    shoe (id 23); image 3: 30×30 with no annotation; then ``n_extra`` small mixed images."""
    images, anns, painted = [], [], {}
    h, w = 40, 64
    coat = _rect(h, w, 5, 30, 4, 24)
    polygon = [[40.0, 8.0, 56.0, 8.0, 56.0, 20.0, 40.0, 20.0]]
    pocket = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(polygon, h, w))).astype(bool)
    crowd = _rect(h, w, 30, 38, 34, 60)
    painted[1] = [coat, pocket, crowd]
    images.append(ImageInfo(1, "one.png", w, h))
    attrs = (ONTOLOGY.attribute_ids[3], ONTOLOGY.attribute_ids[-1])
    anns += [
        Annotation(101, 1, 10, (4, 5, 20, 25), 500.0, _rle_segmentation(coat), 0, attrs),
        Annotation(102, 1, 32, (40, 8, 16, 12), float(pocket.sum()), polygon, 0, ()),
        Annotation(103, 1, 23, (34, 30, 26, 8), 208.0, _uncompressed_rle(crowd), 1, ()),
    ]
    shoe = _rect(64, 40, 44, 60, 10, 30)
    painted[2] = [shoe]
    images.append(ImageInfo(2, "two.png", 40, 64))
    anns.append(Annotation(201, 2, 23, (10, 44, 20, 16), 320.0, _rle_segmentation(shoe), 0, ()))
    painted[3] = []
    images.append(ImageInfo(3, "three.png", 30, 30))
    rng = np.random.default_rng(0)
    for k in range(n_extra):
        image_id = 10 + k
        ih, iw = (int(v) for v in rng.integers(24, 48, size=2))
        y0, x0 = int(rng.integers(0, ih - 10)), int(rng.integers(0, iw - 10))
        m = _rect(ih, iw, y0, y0 + 8, x0, x0 + 9)
        painted[image_id] = [m]
        images.append(ImageInfo(image_id, f"extra{k}.png", iw, ih))
        anns.append(
            Annotation(1000 + k, image_id, k % 46, (x0, y0, 9, 8), 72.0, _rle_segmentation(m))
        )
    for info in images:
        pixels = _paint(info.height, info.width, painted[info.id])
        Image.fromarray(pixels).save(tmp_path / info.file_name)
    return AnnotationSet(images, anns, source="world.json"), painted


def assert_sample_contract(image, target, num_instances=None):
    assert image.dtype == torch.float32 and image.ndim == 3 and image.shape[0] == 3
    assert float(image.min()) >= 0.0 and float(image.max()) <= 1.0
    n = target["labels"].shape[0]
    if num_instances is not None:
        assert n == num_instances
    h, w = image.shape[1:]
    expected = {
        "boxes": ((n, 4), torch.float32),
        "labels": ((n,), torch.int64),
        "masks": ((n, h, w), torch.uint8),
        "attributes": ((n, ONTOLOGY.num_attributes), torch.float32),
        "iscrowd": ((n,), torch.int64),
        "area": ((n,), torch.float32),
        "image_id": ((), torch.int64),
        "orig_size": ((2,), torch.int64),
        "scale": ((), torch.float32),
    }
    assert set(target) == set(expected)
    for key, (shape, dtype) in expected.items():
        assert tuple(target[key].shape) == shape, key
        assert target[key].dtype == dtype, key
    assert torch.equal(target["area"], target["masks"].sum((1, 2)).float())
    if n:
        assert int(target["labels"].min()) >= 1 and int(target["labels"].max()) <= 46
        # Each box is its mask's tight box: pycocotools as the reference.
        rles = mask_utils.encode(np.asfortranarray(target["masks"].permute(1, 2, 0).numpy()))
        xywh = mask_utils.toBbox(rles)
        xyxy = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
        np.testing.assert_array_equal(target["boxes"].numpy(), xyxy)


def test_untransformed_sample_matches_the_annotations(tmp_path):
    annset, painted = build_world(tmp_path)
    dataset = FashionDataset(annset, tmp_path)
    image, target = dataset[0]
    assert_sample_contract(image, target, num_instances=3)
    assert image.shape == (3, 40, 64)
    pixels = np.asarray(Image.open(tmp_path / "one.png"))
    np.testing.assert_allclose(image.permute(1, 2, 0).numpy(), pixels / 255.0, atol=1e-6)
    assert target["labels"].tolist() == [11, 33, 24]  # Fashionpedia id + 1
    assert target["iscrowd"].tolist() == [0, 0, 1]
    for row, mask in enumerate(painted[1]):
        np.testing.assert_array_equal(target["masks"][row].numpy(), mask.astype(np.uint8))
    hot = target["attributes"][0].nonzero().flatten().tolist()
    assert hot == [3, ONTOLOGY.num_attributes - 1]
    assert target["attributes"][1:].sum() == 0
    assert target["image_id"].item() == 1
    assert target["orig_size"].tolist() == [40, 64]
    assert target["scale"].item() == 1.0
    assert target["boxes"][0].tolist() == [4.0, 5.0, 24.0, 30.0]


def test_image_without_annotations_has_empty_targets(tmp_path):
    annset, _ = build_world(tmp_path)
    for transforms in (None, build_transforms("paper", 48, train=True)):
        image, target = FashionDataset(annset, tmp_path, transforms)[2]
        assert_sample_contract(image, target, num_instances=0)
        assert target["masks"].shape == (0, *image.shape[1:])


@pytest.mark.parametrize("kind", ["paper", "keep-ratio", "jitter"])
@pytest.mark.parametrize("train", [True, False])
def test_every_pipeline_keeps_pixels_masks_and_boxes_aligned(tmp_path, kind, train):
    annset, _ = build_world(tmp_path)
    transforms = build_transforms(kind, size=96, train=train, min_size=(48, 64), max_size=120)
    dataset = FashionDataset(annset, tmp_path, transforms, seed=3)
    for epoch in range(3):
        dataset.set_epoch(epoch)
        for index in range(len(dataset)):
            image, target = dataset[index]
            assert_sample_contract(image, target)
            if kind != "keep-ratio":
                assert image.shape[1:] == (96, 96)
            info = dataset.image_info(index)
            assert target["orig_size"].tolist() == [info.height, info.width]
            for row in range(len(target["labels"])):
                mask = target["masks"][row].bool()
                # Interior pixels (away from blended edges) show a painted colour, not grey.
                inner = (
                    mask
                    & ~torch.nn.functional.max_pool2d(
                        (~mask).float()[None, None], 3, stride=1, padding=1
                    )[0, 0].bool()
                )
                if inner.sum() >= 4:
                    grey = ((image[:, inner] - 40 / 255).abs() < 0.1).all(0).float().mean()
                    assert grey < 0.1, f"image {info.id} instance {row}: mask over background"


def test_paper_transform_scale_maps_boxes_back_to_the_original(tmp_path):
    annset, _ = build_world(tmp_path)
    plain = FashionDataset(annset, tmp_path)
    paper = FashionDataset(annset, tmp_path, build_transforms("paper", 128, train=False))
    for index in range(2):
        _, original = plain[index]
        _, resized = paper[index]
        scale = resized["scale"].item()
        assert scale == pytest.approx(128 / max(original["orig_size"].tolist()))
        back = resized["boxes"] / scale
        assert (back - original["boxes"]).abs().max() <= 1.0 / scale + 1e-4


def test_augmentation_is_a_function_of_seed_epoch_and_index(tmp_path):
    annset, _ = build_world(tmp_path)
    transforms = build_transforms("jitter", 64, train=True)

    def boxes(dataset, index=0):
        return tuple(dataset[index][1]["boxes"].flatten().tolist())

    a = FashionDataset(annset, tmp_path, transforms, seed=1)
    b = FashionDataset(annset, tmp_path, transforms, seed=1)
    _ = b[1], b[2]  # loading other samples first must not change sample 0
    (image_a, target_a), (image_b, target_b) = a[0], b[0]
    assert torch.equal(image_a, image_b)
    assert all(torch.equal(target_a[k], target_b[k]) for k in target_a)
    first = boxes(a)
    a.set_epoch(1)
    assert a.epoch == 1 and boxes(a) != first
    a.set_epoch(0)
    assert boxes(a) == first
    assert boxes(FashionDataset(annset, tmp_path, transforms, seed=2)) != first
    triples = [(s, e, i) for s in range(3) for e in range(3) for i in range(3)]
    assert len({sample_seed(*t) for t in triples}) == len(triples)
    with pytest.raises(ValueError, match="epoch"):
        a.set_epoch(-1)


def _batches(loader, dataset, epochs):
    out = []
    for epoch in range(epochs):
        dataset.set_epoch(epoch)
        loader.batch_sampler.set_epoch(epoch)
        out.extend(loader)
    return out


def test_dataloader_workers_give_the_same_batches_as_the_main_process(tmp_path):
    annset, _ = build_world(tmp_path, n_extra=7)
    transforms = build_transforms("jitter", 48, train=True)

    def make(num_workers):
        dataset = FashionDataset(annset, tmp_path, transforms, seed=11)
        sampler = AspectRatioGroupedSampler(dataset.aspect_ratios(), 3, seed=11)
        loader = DataLoader(
            dataset,
            batch_sampler=sampler,
            num_workers=num_workers,
            collate_fn=collate,
            persistent_workers=num_workers > 0,
        )
        return loader, dataset

    serial = _batches(*make(0), epochs=2)
    parallel = _batches(*make(2), epochs=2)
    assert len(serial) == len(parallel) == 2 * len(make(0)[0].batch_sampler)
    for (images_a, targets_a), (images_b, targets_b) in zip(serial, parallel, strict=True):
        assert isinstance(images_a, list) and isinstance(targets_a, list)
        assert len(images_a) == len(images_b)
        for x, y in zip(images_a, images_b, strict=True):
            assert torch.equal(x, y)
        for s, t in zip(targets_a, targets_b, strict=True):
            assert set(s) == set(t) and all(torch.equal(s[k], t[k]) for k in s)
    # The two epochs differ (set_epoch reached the persistent workers).
    half = len(serial) // 2
    ids = [[int(t["image_id"]) for t in targets] for _, targets in serial]
    assert ids[:half] != ids[half:] or any(
        not torch.equal(a, b)
        for (xa, _), (xb, _) in zip(serial[:half], serial[half:], strict=True)
        for a, b in zip(xa, xb, strict=False)
    )


def test_collate_keeps_lists():
    sample = (torch.zeros(3, 4, 5), {"labels": torch.tensor([1])})
    images, targets = collate([sample, sample])
    assert isinstance(images, list) and len(images) == 2
    assert isinstance(targets, list) and targets[0] is sample[1]


def _save_with_orientation(path, pixels: np.ndarray, orientation: int) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(pixels).save(path, exif=exif.tobytes())


def test_exif_orientation_is_applied_when_the_annotations_match_the_rotated_image(tmp_path):
    raw = _paint(30, 50, [_rect(30, 50, 2, 12, 3, 20)])  # stored landscape
    _save_with_orientation(tmp_path / "rot.png", raw, 6)  # displayed portrait 50×30
    shown = np.asarray(ImageOps.exif_transpose(Image.open(tmp_path / "rot.png")).convert("RGB"))
    assert shown.shape == (50, 30, 3)
    mask = (shown == COLOURS[0]).all(-1)
    annset = AnnotationSet(
        [ImageInfo(5, "rot.png", 30, 50)],
        [Annotation(1, 5, 0, (0, 0, 1, 1), 1.0, _rle_segmentation(mask))],
    )
    dataset = FashionDataset(annset, tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ImageSizeMismatchWarning)
        image, target = dataset[0]
    np.testing.assert_allclose(image.permute(1, 2, 0).numpy(), shown / 255.0, atol=1e-6)
    assert dataset.size_mismatches == 0
    np.testing.assert_array_equal(target["masks"][0].numpy(), mask.astype(np.uint8))


def test_exif_orientation_is_skipped_when_the_annotations_match_the_stored_pixels(tmp_path):
    raw = _paint(30, 50, [_rect(30, 50, 2, 12, 3, 20)])
    _save_with_orientation(tmp_path / "rot.png", raw, 6)
    annset = AnnotationSet([ImageInfo(5, "rot.png", 50, 30)], [])
    dataset = FashionDataset(annset, tmp_path)
    with pytest.warns(ImageSizeMismatchWarning, match=r"rot\.png: image id 5 .*EXIF rotation"):
        image, _ = dataset[0]
    np.testing.assert_allclose(image.permute(1, 2, 0).numpy(), raw / 255.0, atol=1e-6)
    assert dataset.size_mismatches == 1


def test_image_of_another_size_is_resized_to_the_annotation_size(tmp_path):
    Image.fromarray(_paint(20, 32, [])).save(tmp_path / "small.png")
    annset = AnnotationSet([ImageInfo(9, "small.png", 64, 40)], [])
    dataset = FashionDataset(annset, tmp_path)
    with pytest.warns(ImageSizeMismatchWarning, match="32×20 .* 64×40; image resized"):
        image, target = dataset[0]
    assert image.shape == (3, 40, 64)
    assert target["masks"].shape == (0, 40, 64)
    assert dataset.size_mismatches == 1


def test_degenerate_polygon_is_left_out_with_a_warning(tmp_path):
    Image.fromarray(_paint(20, 20, [])).save(tmp_path / "a.png")
    line = [[2.0, 2.0, 2.0, 2.0, 2.0, 2.0]]  # zero-area polygon
    good = _rect(20, 20, 5, 9, 5, 9)
    annset = AnnotationSet(
        [ImageInfo(1, "a.png", 20, 20)],
        [
            Annotation(7, 1, 0, (2, 2, 0, 0), 0.0, line),
            Annotation(8, 1, 1, (5, 5, 4, 4), 16.0, _rle_segmentation(good)),
        ],
        source="deg.json",
    )
    with pytest.warns(EmptyMaskWarning, match=r"deg\.json: image id 1: annotation id\(s\) \[7\]"):
        _, target = FashionDataset(annset, tmp_path)[0]
    assert target["labels"].tolist() == [2]


@pytest.mark.parametrize(
    "annotation,message",
    [
        (
            Annotation(77, 1, 46, (0, 0, 1, 1), 1.0, [[0, 0, 4, 0, 4, 4]]),
            "annotation id 77: unknown category id 46",
        ),
        (
            Annotation(78, 1, 0, (0, 0, 1, 1), 1.0, [[0, 0, 4, 0, 4, 4]], 0, (999,)),
            "annotation id 78: unknown attribute id 999",
        ),
        (
            Annotation(79, 1, 0, (0, 0, 1, 1), 1.0, {"size": [5, 5], "counts": [25]}),
            "annotation id 79: mask size 5×5",
        ),
    ],
)
def test_invalid_annotations_name_the_file_and_annotation(tmp_path, annotation, message):
    Image.fromarray(_paint(20, 20, [])).save(tmp_path / "a.png")
    annset = AnnotationSet([ImageInfo(1, "a.png", 20, 20)], [annotation], source="bad.json")
    with pytest.raises(InvalidDataError, match=f"bad.json: {message}"):
        FashionDataset(annset, tmp_path)[0]


def test_missing_or_broken_image_names_the_file(tmp_path):
    (tmp_path / "broken.jpg").write_bytes(b"not an image")
    annset = AnnotationSet(
        [ImageInfo(1, "missing.png", 8, 8), ImageInfo(2, "broken.jpg", 8, 8)], []
    )
    dataset = FashionDataset(annset, tmp_path)
    with pytest.raises(InvalidDataError, match=r"missing\.png: image id 1: image file not found"):
        dataset[0]
    with pytest.raises(InvalidDataError, match=r"broken\.jpg: image id 2: cannot decode image"):
        dataset[1]


def test_subset_and_index_bounds(tmp_path):
    annset, _ = build_world(tmp_path)
    dataset = FashionDataset(annset, tmp_path, image_ids=[2, 1])
    assert len(dataset) == 2 and dataset.image_ids == [2, 1]
    assert dataset.aspect_ratios() == [40 / 64, 64 / 40]
    assert dataset[0][1]["image_id"].item() == 2
    assert dataset[-1][1]["image_id"].item() == 1
    with pytest.raises(IndexError):
        dataset[2]


def test_batches_train_the_attribute_mask_rcnn(tmp_path):
    """The contract end to end: a collated batch (with an empty image) gives finite losses in
    the project's model, and gradients flow."""
    from fashionkit.modeling import build_model, model_config_from_preset

    torch.manual_seed(0)
    annset, _ = build_world(tmp_path)
    dataset = FashionDataset(annset, tmp_path, build_transforms("paper", 64, train=True))
    loader = DataLoader(dataset, batch_size=3, collate_fn=collate)
    images, targets = next(iter(loader))
    assert [len(t["labels"]) for t in targets] == [3, 1, 0]
    config = model_config_from_preset(
        "cpu-tiny",
        min_size=64,
        max_size=64,
        rpn_pre_nms_top_n_train=50,
        rpn_post_nms_top_n_train=20,
        box_batch_size_per_image=16,
    )
    model = build_model(config).train()
    losses = model.losses(images, targets)
    total = sum(losses.values())
    assert all(torch.isfinite(v) for v in losses.values()), losses
    total.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_dataset_from_a_read_file_pickles_for_spawned_workers(tmp_path):
    """DataLoader workers started with ``spawn`` (macOS, Windows, CUDA users) receive the
    dataset pickled; a set read from disk must survive that and give identical samples."""
    import pickle

    from fashionkit.data import read_annotations

    annset, _ = build_world(tmp_path)
    annset.write(tmp_path / "world.json")
    from_disk, _ = read_annotations(tmp_path / "world.json", images_dir=tmp_path)
    dataset = FashionDataset(from_disk, tmp_path, build_transforms("jitter", 48), seed=4)
    dataset.set_epoch(3)
    clone = pickle.loads(pickle.dumps(dataset))
    assert clone.epoch == 3
    for index in range(len(dataset)):
        (xa, ta), (xb, tb) = dataset[index], clone[index]
        assert torch.equal(xa, xb)
        assert all(torch.equal(ta[k], tb[k]) for k in ta)


def test_a_transform_that_returns_float_is_not_rescaled_twice(tmp_path):
    annset, _ = build_world(tmp_path)

    def to_float(image, target, generator=None):
        return image.to(torch.float32) / 255.0, target

    plain_image, _ = FashionDataset(annset, tmp_path)[0]
    float_image, _ = FashionDataset(annset, tmp_path, to_float)[0]
    assert torch.allclose(plain_image, float_image)
    assert float(float_image.max()) == 1.0


def _big_world(tmp_path, fmt: str = "png", orientation: int = 1):
    """A 300×200 (W×H) image with a polygon coat, an RLE bag and a crowd of uncompressed RLE,
    painted in their colours; ``orientation`` 6 stores the pixels rotated with an EXIF tag."""
    h, w = 200, 300
    polygon = [[30.0, 20.0, 140.0, 25.0, 120.0, 150.0, 40.0, 140.0]]
    coat = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(polygon, h, w))).astype(bool)
    bag = _rect(h, w, 60, 110, 180, 260)
    crowd = _rect(h, w, 160, 195, 150, 290)
    pixels = _paint(h, w, [coat, bag, crowd])
    # Background stripes of a 20 px period (4 px at the test's sizes): a decode at too low a
    # resolution (a wrong JPEG draft request) washes them out.
    background = ~(coat | bag | crowd)
    stripes = (np.arange(w) // 10 % 2 == 0)[None, :].repeat(h, 0)
    pixels[background & stripes] = 110
    anns = [
        Annotation(1, 1, 10, (30, 20, 110, 130), float(coat.sum()), polygon, 0, ()),
        Annotation(2, 1, 24, (180, 60, 80, 50), 4000.0, _rle_segmentation(bag), 0, ()),
        Annotation(3, 1, 23, (150, 160, 140, 35), 4900.0, _uncompressed_rle(crowd), 1, ()),
    ]
    name = f"big.{fmt}"
    if orientation == 6:
        stored = np.ascontiguousarray(np.rot90(pixels, k=1))  # undone by EXIF's ROTATE_270
        exif = Image.Exif()
        exif[0x0112] = 6
        Image.fromarray(stored).save(tmp_path / name, exif=exif.tobytes(), quality=95)
    else:
        Image.fromarray(pixels).save(tmp_path / name, **({"quality": 95} if fmt == "jpg" else {}))
    return AnnotationSet([ImageInfo(1, name, w, h)], anns, source="big.json")


def _iou(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.bool(), b.bool()
    return float((a & b).sum()) / float((a | b).sum())


@pytest.mark.parametrize(
    "fmt,orientation", [("png", 1), ("jpg", 1), ("jpg", 6)], ids=["png", "jpeg-draft", "jpeg-exif"]
)
@pytest.mark.parametrize("kind", ["paper", "keep-ratio", "jitter"])
def test_large_images_decoded_at_the_pipeline_size_match_full_decoding(
    tmp_path, fmt, orientation, kind
):
    annset = _big_world(tmp_path, fmt, orientation)
    transforms = build_transforms(kind, 60, train=True, min_size=50, max_size=75)
    fast = FashionDataset(annset, tmp_path, transforms, seed=5)
    full = FashionDataset(annset, tmp_path, transforms, seed=5, decode_size=None)
    assert (
        fast.decode_size
        == transforms.max_input_size
        == {"paper": 60, "keep-ratio": 75, "jitter": 120}[kind]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", ImageSizeMismatchWarning)
        (image_a, a), (image_b, b) = fast[0], full[0]
    assert_sample_contract(image_a, a)
    assert image_a.shape == image_b.shape
    assert a["scale"].item() == pytest.approx(b["scale"].item(), rel=0.02)
    assert a["orig_size"].tolist() == b["orig_size"].tolist() == [200, 300]
    assert a["labels"].tolist() == b["labels"].tolist() and len(a["labels"]) > 0
    assert (a["boxes"] - b["boxes"]).abs().max() <= 1.0
    for row in range(len(a["labels"])):
        assert _iou(a["masks"][row], b["masks"][row]) > 0.85
    # Same picture, resampled differently (a too-low JPEG draft gives mean ≥ 0.034, max ≥ 0.38).
    assert (image_a - image_b).abs().mean() < 0.02
    assert (image_a - image_b).abs().max() < 0.3
    # Pixels under each mask show its object's colour (the decoded image is aligned).
    for row, label in enumerate(a["labels"].tolist()):
        colour = COLOURS[[11, 25, 24].index(label)]
        inner = a["masks"][row].bool()
        inner &= ~torch.nn.functional.max_pool2d(
            (~inner).float()[None, None], 3, stride=1, padding=1
        )[0, 0].bool()
        if inner.sum() >= 4:
            want = torch.tensor(colour, dtype=torch.float32)[:, None] / 255
            close = ((image_a[:, inner] - want).abs() < 0.25).all(0).float().mean()
            assert close > 0.9, (label, float(close))


def test_decode_size_choices(tmp_path):
    annset = _big_world(tmp_path)
    paper = build_transforms("paper", 60, train=True)
    assert FashionDataset(annset, tmp_path, paper, decode_size=100).decode_size == 100
    assert FashionDataset(annset, tmp_path).decode_size is None  # no transforms: full size
    custom = FashionDataset(annset, tmp_path, lambda image, target, g=None: (image, target))
    assert custom.decode_size is None
    image, target = FashionDataset(annset, tmp_path, decode_size=150)[0]
    assert image.shape == (3, 100, 150) and target["scale"].item() == pytest.approx(0.5)
    with pytest.raises(ValueError, match="decode_size"):
        FashionDataset(annset, tmp_path, decode_size=0)
