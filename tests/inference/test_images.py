"""Photo loading: orientation, colour modes, bit depths, bombs and broken files."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fashionkit.errors import InvalidDataError
from fashionkit.inference.images import expand_sources, load_photo, load_photos


def _pattern(h: int = 12, w: int = 20) -> np.ndarray:
    """An asymmetric RGB test card: every pixel distinct, so any rotation/flip shows."""
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _write_png16_rgb(path: Path, pixels: np.ndarray) -> None:
    """A 16-bit-per-channel RGB PNG written by hand (PIL cannot write one)."""
    h, w, _ = pixels.shape
    raw = b"".join(b"\x00" + pixels[y].astype(">u2").tobytes() for y in range(h))
    ihdr = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr)
                     + _png_chunk(b"IDAT", zlib.compress(raw)) + _png_chunk(b"IEND", b""))


@pytest.mark.parametrize(("orientation", "expected"), [
    (1, lambda a: a),
    (3, lambda a: np.rot90(a, 2)),
    (6, lambda a: np.rot90(a, -1)),  # stored sideways, shown rotated 90° clockwise
    (8, lambda a: np.rot90(a, 1)),
    (2, lambda a: a[:, ::-1]),
])
def test_exif_orientation_is_applied(tmp_path, orientation, expected):
    stored = _pattern()
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / "photo.png"
    Image.fromarray(stored).save(path, exif=exif)
    photo = load_photo(path)
    np.testing.assert_array_equal(photo.pixels, expected(stored))
    assert photo.name == str(path)


def test_grayscale_and_bilevel_become_three_equal_channels(tmp_path):
    gray = _pattern()[:, :, 0]
    Image.fromarray(gray, "L").save(tmp_path / "g.png")
    Image.fromarray(gray > 127).save(tmp_path / "b.png")
    out = load_photo(tmp_path / "g.png").pixels
    assert out.shape == (12, 20, 3) and out.dtype == np.uint8
    for c in range(3):
        np.testing.assert_array_equal(out[:, :, c], gray)
    bilevel = load_photo(tmp_path / "b.png").pixels
    np.testing.assert_array_equal(bilevel[:, :, 1], np.where(gray > 127, 255, 0))


def test_transparency_is_composited_over_white(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., :3] = (200, 20, 40)
    rgba[0, :, 3] = 0      # fully transparent → white
    rgba[1, :, 3] = 255    # opaque → the colour
    rgba[2, :, 3] = 128    # half → halfway to white
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    out = load_photo(tmp_path / "a.png").pixels.astype(int)
    assert (out[0] == 255).all()
    assert (out[1] == (200, 20, 40)).all()
    expected = np.round(np.array([200, 20, 40]) * 128 / 255 + 255 * 127 / 255)
    assert np.abs(out[2] - expected).max() <= 1


def test_cmyk_jpeg_converts_to_rgb(tmp_path):
    cmyk = Image.new("CMYK", (16, 16), (255, 0, 0, 0))  # pure cyan
    cmyk.save(tmp_path / "c.jpg", quality=95)
    out = load_photo(tmp_path / "c.jpg").pixels.astype(int)
    assert np.abs(out - (0, 255, 255)).max() <= 3


def test_16_bit_png_is_rescaled_not_clipped(tmp_path):
    rng = np.random.default_rng(1)
    gray16 = rng.integers(0, 65536, (10, 14), dtype=np.uint16)
    Image.fromarray(gray16).save(tmp_path / "g16.png")
    out = load_photo(tmp_path / "g16.png").pixels
    expected = np.round(gray16 / 257.0)
    assert np.abs(out[:, :, 0].astype(int) - expected).max() <= 1
    assert out.max() > 200 and out.min() < 50  # clipping would make almost everything 255

    rgb16 = rng.integers(0, 65536, (6, 9, 3), dtype=np.uint16)
    _write_png16_rgb(tmp_path / "rgb16.png", rgb16)
    out = load_photo(tmp_path / "rgb16.png").pixels
    assert np.abs(out.astype(int) - np.round(rgb16 / 257.0)).max() <= 1


def test_decompression_bomb_is_refused_with_a_clear_message(tmp_path):
    Image.new("RGB", (1200, 1000)).save(tmp_path / "big.png")
    with pytest.raises(InvalidDataError) as err:
        load_photo(tmp_path / "big.png", max_pixels=1_000_000)
    text = str(err.value)
    assert "big.png" in text and "1200×1000" in text and "decompression bomb" in text
    assert "--max-pixels" in text
    assert load_photo(tmp_path / "big.png", max_pixels=1_200_000).size == (1000, 1200)

    # A header that claims 40000×40000 (1.6 GP) trips PIL's own guard before any decoding.
    ihdr = struct.pack(">IIBBBBB", 40_000, 40_000, 8, 2, 0, 0, 0)
    (tmp_path / "bomb.png").write_bytes(
        b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IEND", b""))
    with pytest.raises(InvalidDataError, match=r"bomb\.png: image: image is 1600.0 MP, over the limit of 179.0 MP"):
        load_photo(tmp_path / "bomb.png", max_pixels=None)


def test_broken_files_name_the_file(tmp_path):
    good = tmp_path / "good.jpg"
    Image.fromarray(_pattern(64, 64)).save(good, quality=90)
    data = good.read_bytes()
    (tmp_path / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (tmp_path / "noise.jpg").write_bytes(np.random.default_rng(2).bytes(500))
    (tmp_path / "notes.png").write_text("not a picture")
    cases = {
        "truncated.jpg": "corrupted or truncated",
        "noise.jpg": "not an image file",
        "notes.png": "not an image file",
        "missing.jpg": "file not found",
    }
    for name, message in cases.items():
        with pytest.raises(InvalidDataError) as err:
            load_photo(tmp_path / name)
        assert str(err.value).startswith(str(tmp_path / name)) and message in str(err.value)


def test_batch_continues_past_bad_files(tmp_path):
    Image.fromarray(_pattern()).save(tmp_path / "a.png")
    (tmp_path / "b.jpg").write_text("oops")
    array = _pattern(5, 7)
    loaded, problems = load_photos([tmp_path / "a.png", tmp_path / "b.jpg", array,
                                    tmp_path / "c.jpg"])
    assert [i for i, _ in loaded] == [0, 2]
    np.testing.assert_array_equal(loaded[1][1].pixels, array)
    assert loaded[1][1].name == "<image 2>"
    assert [p.source for p in problems] == [str(tmp_path / "b.jpg"), str(tmp_path / "c.jpg")]


def test_arrays_and_pil_images():
    array = _pattern()
    assert load_photo(array).pixels is not None
    np.testing.assert_array_equal(load_photo(Image.fromarray(array)).pixels, array)
    with pytest.raises(ValueError, match="H×W×3 uint8"):
        load_photo(array.astype(np.float32))
    with pytest.raises(ValueError, match="H×W×3 uint8"):
        load_photo(array[:, :, 0])
    with pytest.raises(TypeError):
        load_photo(42)


def test_expand_sources(tmp_path):
    (tmp_path / "d" / "sub").mkdir(parents=True)
    for name in ("d/x.jpg", "d/sub/y.PNG", "z.png"):
        Image.fromarray(_pattern()).save(tmp_path / name)
    (tmp_path / "d" / "readme.txt").write_text("skip me")
    paths, problems = expand_sources([tmp_path / "d", str(tmp_path / "*.png"),
                                      tmp_path / "z.png", str(tmp_path / "none*.jpg"),
                                      tmp_path / "gone.jpg"])
    assert [p.relative_to(tmp_path).as_posix() for p in paths] == ["d/sub/y.PNG", "d/x.jpg",
                                                                   "z.png"]
    assert [p.where for p in problems] == ["pattern", "image"]
