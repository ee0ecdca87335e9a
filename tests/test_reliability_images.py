"""Damaged, odd and oversized photos through every path that reads photos: ``fashionkit detect``,
``fashionkit wardrobe add`` (ingest), the web service's upload and detection job, the annotation
readers' image check (``--images``) and the training dataset.

One generator (:func:`photo_zoo`) writes the same set of files for all of them: photos that
must work although they are unusual (CMYK JPEG, 16-bit PNG, EXIF-rotated JPEG) and photos that
must be refused (truncated JPEG and PNG, zero bytes, text named ``.jpg``, a PNG header claiming
10^10 pixels, a real PNG over the 100-megapixel limit). Each path must name every bad file with
a reason and carry on with the others.
"""

from __future__ import annotations

import io
import json
import struct
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from fashionkit.cli import app
from fashionkit.errors import InvalidDataError
from fashionkit.inference.images import DEFAULT_MAX_PIXELS
from tests.inference.conftest import untrained_checkpoint  # noqa: F401  (a fixture)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@dataclass(frozen=True)
class Photo:
    name: str
    shown: tuple[int, int] | None  # (W, H) as displayed, for photos that must work
    reason: str | None = None  # for photos that must be refused: what the message says


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _encoded(image: Image.Image, fmt: str, **kw) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kw)
    return buffer.getvalue()


def _picture(w: int, h: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 60, (h, w, 3), dtype=np.uint8)
    pixels[h // 4: 3 * h // 4, w // 4: 3 * w // 4] = rng.integers(120, 255, 3, dtype=np.uint8)
    return Image.fromarray(pixels)


def photo_zoo(folder: Path) -> list[Photo]:
    """Write the photo set into ``folder`` and say what each must give."""
    folder.mkdir(parents=True, exist_ok=True)
    photos: list[Photo] = []

    def add(name: str, data: bytes, shown=None, reason=None) -> None:
        (folder / name).write_bytes(data)
        photos.append(Photo(name, shown, reason))

    add("plain.png", _encoded(_picture(48, 36, 0), "PNG"), (48, 36))
    add("cmyk.jpg", _encoded(_picture(40, 30, 1).convert("CMYK"), "JPEG"), (40, 30))
    gray16 = (np.arange(36 * 44, dtype=np.uint16).reshape(36, 44) * 40).astype(np.uint16)
    add("gray16.png", _encoded(Image.fromarray(gray16), "PNG"), (44, 36))
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways, shown turned 90° clockwise
    add("rotated.jpg", _encoded(_picture(52, 32, 2), "JPEG", exif=exif), (32, 52))
    jpeg = _encoded(_picture(64, 48, 3), "JPEG", quality=95)
    add("truncated.jpg", jpeg[: len(jpeg) // 2], reason="truncated")
    png = _encoded(_picture(64, 48, 4), "PNG")
    add("truncated.png", png[: len(png) // 2], reason="truncated")
    add("empty.jpg", b"", reason="empty")
    add("text.jpg", b"This is a shopping list, not a photo.\n", reason="not an image")
    # A PNG whose header claims 100000 x 100000 pixels, with a tiny body: a decompression bomb.
    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    add("bomb.png", b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + _png_chunk(b"IEND", b""),
        reason="bomb")
    # A real, valid image just over the default 100-megapixel limit (1 bit per pixel: 12 KB).
    side = int(DEFAULT_MAX_PIXELS**0.5) + 1
    add("huge.png", _encoded(Image.new("1", (side, side)), "PNG"), reason="too large")
    return photos


# What each path's message says, by the kind of damage.
MESSAGES = {
    "truncated": ("truncated", "damaged", "unreadable", "cannot decode"),
    "empty": ("empty", "not an image", "cannot identify", "not a JPEG"),
    "not an image": ("not an image", "cannot identify", "not a JPEG"),
    "bomb": ("decompression bomb", "over the limit", "too large"),
    "too large": ("over the limit", "decompression bomb"),
}


def _says(message: str, reason: str) -> bool:
    return any(text in message for text in MESSAGES[reason])


@pytest.fixture(scope="module")
def zoo(tmp_path_factory) -> tuple[Path, list[Photo]]:
    folder = tmp_path_factory.mktemp("zoo") / "photos"
    return folder, photo_zoo(folder)


def _good(photos: list[Photo]) -> list[Photo]:
    return [p for p in photos if p.reason is None]


def _bad(photos: list[Photo]) -> list[Photo]:
    return [p for p in photos if p.reason is not None]


def test_detect_reports_each_bad_photo_and_detects_in_the_others(zoo, untrained_checkpoint,  # noqa: F811
                                                                 tmp_path):
    folder, photos = zoo
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["detect", str(folder), "--weights", str(untrained_checkpoint),
                                      "--out", str(out), "--workers", "0", "--no-visuals"])
    assert result.exit_code == 1, result.output  # 1: some photos could not be read
    failures = {Path(f["source"]).name: f["message"]
                for f in json.loads((out / "failures.json").read_text())["problems"]}
    assert set(failures) == {p.name for p in _bad(photos)}
    for p in _bad(photos):
        assert _says(failures[p.name], p.reason), (p, failures[p.name])
        assert p.name in result.output
    images = {Path(im["file_name"]).name: (im["width"], im["height"])
              for im in json.loads((out / "images.json").read_text())["images"]}
    assert images == {p.name: p.shown for p in _good(photos)}


def test_ingest_reports_each_bad_photo_and_adds_the_others(zoo, untrained_checkpoint,  # noqa: F811
                                                           tmp_path):
    from fashionkit.wardrobe import Wardrobe
    from fashionkit.wardrobe.image_files import file_digest

    folder, photos = zoo
    db = f"sqlite:///{tmp_path / 'w.sqlite'}"
    result = CliRunner().invoke(app, ["wardrobe", "add", str(folder), "--weights",
                                      str(untrained_checkpoint), "--min-score", "0", "--db", db])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("could not read")]
    assert len(lines) == len(_bad(photos))
    for p in _bad(photos):
        [line] = [line for line in lines if f"{folder / p.name}:" in line]
        assert _says(line, p.reason), (p, line)
    with Wardrobe(db) as wardrobe:
        for p in photos:
            assert wardrobe.has_photo(file_digest(folder / p.name)) == (p.reason is None), p


def test_service_refuses_each_bad_upload_and_detects_in_the_others(zoo, untrained_checkpoint,  # noqa: F811
                                                                   tmp_path):
    from fastapi.testclient import TestClient

    from fashionkit.service import ServiceSettings, create_app
    from tests.service.conftest import login

    folder, photos = zoo
    settings = ServiceSettings(min_score=0.0, max_pixels=DEFAULT_MAX_PIXELS)
    service = create_app(f"sqlite:///{tmp_path / 'w.sqlite'}", tmp_path / "data",
                         untrained_checkpoint, settings=settings)
    with TestClient(service) as client:
        alice = login(client, "alice")
        jobs = {}
        for p in photos:
            response = client.post("/api/photos", headers=alice, files={
                "file": (p.name, (folder / p.name).read_bytes(), "image/jpeg")})
            if p.reason is not None:
                assert 400 <= response.status_code < 500, (p, response.text)
                assert _says(response.json()["detail"], p.reason), (p, response.text)
            else:
                assert response.status_code == 202, (p, response.text)
                jobs[p.name] = response.json()["id"]
        deadline = time.monotonic() + 120
        for name, job_id in jobs.items():
            while (job := client.get(f"/api/photos/{job_id}", headers=alice).json())[
                    "status"] not in ("done", "failed"):
                assert time.monotonic() < deadline, job
                time.sleep(0.05)
            assert job["status"] == "done", (name, job)
            overlay = client.get(f"/api/photos/{job_id}/overlay.png", headers=alice)
            shown = next(p.shown for p in photos if p.name == name)
            w, h = Image.open(io.BytesIO(overlay.content)).size  # small photos may be enlarged
            assert abs(w / h - shown[0] / shown[1]) < 0.02, (name, (w, h), shown)  # upright
            assert (job["width"], job["height"]) == shown, name  # as displayed (EXIF)
        assert len(client.get("/api/photos", headers=alice).json()) == len(jobs)


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_annotation_readers_name_each_bad_image_file(zoo, tmp_path):
    """``--images``: every record whose file cannot be opened is reported and skipped, the
    rest kept. (Readers look at headers only: a truncated body is found when the image is
    decoded, by the training dataset below; a large but valid image is not refused.)"""
    from fashionkit.data import read_annotations

    folder, photos = zoo
    images = [{"id": k + 1, "file_name": p.name, "width": (p.shown or (10, 10))[0],
               "height": (p.shown or (10, 10))[1]} for k, p in enumerate(photos)]
    path = tmp_path / "ann.json"
    path.write_text(json.dumps({"images": images, "annotations": []}))
    ann_set, report = read_annotations(path, images_dir=folder, on_invalid="skip")
    flagged = {int(pr.where.removeprefix("image id ")) - 1: pr.message for pr in report.problems}
    must = {k for k, p in enumerate(photos) if p.reason in ("empty", "not an image", "bomb")}
    may = {k for k, p in enumerate(photos) if p.reason == "truncated"}
    assert must <= set(flagged) <= must | may
    for k, message in flagged.items():
        assert f"image file {folder / photos[k].name} cannot be read" in message
    assert len(ann_set.images) == len(photos) - len(flagged)
    # The unusual good ones are read at their displayed size (no notice about a mismatch).
    noticed = {pr.where for pr in report.notices}
    assert not noticed & {f"image id {k + 1}" for k, p in enumerate(photos) if p.shown}


def test_training_dataset_names_each_bad_image_file(zoo):
    from fashionkit.data import AnnotationSet, ImageInfo
    from fashionkit.data.dataset import FashionDataset

    folder, photos = zoo
    infos = [ImageInfo(k + 1, p.name, *(p.shown or (10, 10))) for k, p in enumerate(photos)]
    dataset = FashionDataset(AnnotationSet(infos, []), folder)
    for k, p in enumerate(photos):
        if p.reason == "too large":
            continue  # a valid image: training data has no pixel cap
        if p.reason is None:
            image, _ = dataset[k]
            assert tuple(image.shape) == (3, p.shown[1], p.shown[0])
            continue
        with pytest.raises(InvalidDataError) as err:
            dataset[k]
        [problem] = err.value.problems
        assert problem.source == str(folder / p.name) and problem.where == f"image id {k + 1}"
        assert "cannot decode image" in problem.message
