"""Photos as people have them → ``H×W×3 uint8`` RGB arrays the model can read.

:func:`load_photo` accepts a path, a PIL image or an ``H×W×3 uint8`` array and returns a
:class:`Photo`. For files and PIL images it:

- applies the EXIF orientation (phones store portrait photos sideways plus a rotation tag);
- converts every mode to 8-bit RGB: grayscale and bilevel are replicated to three channels,
  palettes are expanded, transparent images (RGBA, LA, PA, palette with transparency) are
  composited over white (product photos with cut-out backgrounds are meant to be seen on
  white, and black would invent a dark silhouette around the garment), CMYK goes through its
  embedded ICC profile when there is one, 16-bit images are rescaled to 8 bits (``v / 257``)
  rather than clipped, which is what PIL's own ``convert("RGB")`` does to ``I;16``/``I``;
- refuses images with more than ``max_pixels`` pixels before decoding them (a
  decompression bomb: a tiny file that expands to gigabytes), with a message that says how to
  raise the limit;
- turns missing, truncated, corrupted and non-image files into :class:`InvalidDataError`
  naming the file, so a batch can report the file and go on (:func:`load_photos`).
"""

from __future__ import annotations

import glob
import os
import re
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

import numpy as np
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError
from PIL.Image import Image as PILImage

from fashionkit.errors import InvalidDataError, Problem

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "IMAGE_SUFFIXES",
    "Photo",
    "PhotoSource",
    "expand_sources",
    "load_photo",
    "load_photos",
]

# 100 megapixels: above any phone or consumer camera (a 50 MP photo decodes to 150 MB of RGB),
# far below what would exhaust memory; PIL's own guard (~179 MP) is the backstop.
DEFAULT_MAX_PIXELS = 100_000_000

IMAGE_SUFFIXES: tuple[str, ...] = (
    ".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".jfif", ".ppm", ".pgm",
)

PhotoSource = str | os.PathLike | np.ndarray | PILImage


@dataclass(frozen=True)
class Photo:
    """A decoded photo: ``pixels`` ``H×W×3 uint8`` RGB (EXIF orientation applied) and ``name``,
    the file path or ``"<image i>"`` for in-memory inputs (used in messages and outputs)."""

    pixels: np.ndarray
    name: str

    @property
    def size(self) -> tuple[int, int]:
        """``(H, W)``."""
        return int(self.pixels.shape[0]), int(self.pixels.shape[1])


def _problem(name: str, message: str) -> InvalidDataError:
    return InvalidDataError([Problem(name, "image", message)])


def _megapixels(pixels: int) -> str:
    return f"{pixels / 1e6:.1f} MP"


def _bomb_message(width: int | None, height: int | None, max_pixels: int,
                  pixels: int | None = None) -> str:
    if width and height:
        size = f"{width}×{height} (W×H) = {_megapixels(width * height)}"
    else:
        size = _megapixels(pixels) if pixels else "too large"
    return (f"image is {size}, over the limit of {_megapixels(max_pixels)}; refusing to "
            "decode it (a decompression bomb guard). If the photo is genuine, raise the limit "
            "(Predictor(max_pixels=...) / fashionkit detect --max-pixels N) or downscale it")


def _to_rgb_array(image, name: str) -> np.ndarray:
    """Any PIL mode → ``H×W×3 uint8`` RGB (see the module docstring for the rules)."""
    mode = image.mode
    if mode == "RGB":
        return np.array(image, dtype=np.uint8)
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        values = np.array(image)
        if mode == "F":
            # Float images (TIFF/PFM) are in [0, 1] by convention; anything else is clipped.
            top = 1.0 if float(np.nanmax(values, initial=0.0)) <= 1.0 else 255.0
            gray = np.clip(np.nan_to_num(values) / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        else:
            # PIL opens 16-bit grayscale PNG/TIFF as I;16 or I (32-bit) holding 0..65535.
            gray = (np.clip(values.astype(np.int64), 0, 65535) * 255 + 32767) // 65535
            gray = gray.astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if mode == "CMYK":
        icc = image.info.get("icc_profile")
        if icc:
            try:
                source = ImageCms.ImageCmsProfile(BytesIO(icc))
                srgb = ImageCms.createProfile("sRGB")
                return np.array(ImageCms.profileToProfile(image, source, srgb, outputMode="RGB"),
                                  dtype=np.uint8)
            except (ImageCms.PyCMSError, OSError, ValueError):
                pass  # a broken embedded profile: the naive conversion below still gives a picture
        return np.array(image.convert("RGB"), dtype=np.uint8)
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        mode == "P" and "transparency" in image.info)
    if has_alpha:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.array(Image.alpha_composite(white, rgba).convert("RGB"), dtype=np.uint8)
    try:
        return np.array(image.convert("RGB"), dtype=np.uint8)
    except (ValueError, OSError) as err:
        raise _problem(name, f"cannot convert image mode {mode!r} to RGB: {err}") from None


def _check_array(array: np.ndarray, name: str) -> np.ndarray:
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"{name}: arrays must be H×W×3 uint8 RGB, got {array.dtype} "
                         f"{tuple(array.shape)}")
    if array.shape[0] < 1 or array.shape[1] < 1:
        raise ValueError(f"{name}: empty image {tuple(array.shape)}")
    # torch.from_numpy needs a writable buffer; a read-only view (np.asarray of a PIL image)
    # is copied once here rather than warned about later.
    return np.ascontiguousarray(array) if array.flags.writeable else array.copy()


def load_photo(source: PhotoSource, *, name: str | None = None,
               max_pixels: int | None = DEFAULT_MAX_PIXELS, exif: bool = True) -> Photo:
    """One photo as a :class:`Photo` (``H×W×3 uint8`` RGB).

    ``source``: a path, a PIL image or an ``H×W×3 uint8`` RGB array (arrays are taken as they
    are: no orientation or colour handling). ``name`` overrides the name used in messages.
    ``max_pixels``: larger images are refused before decoding (``None``: no limit of ours;
    PIL's ``Image.MAX_IMAGE_PIXELS`` guard still applies to files). ``exif=False`` keeps the
    pixels as stored (for annotation files drawn on un-rotated pixels).

    Raises :class:`InvalidDataError` (one :class:`Problem` naming the file) for a missing,
    unreadable, corrupted, truncated or oversized image; ``ValueError``/``TypeError`` for an
    input that is not an image at all (a programming error, not bad data).
    """
    if isinstance(source, np.ndarray):
        label = name or "<array>"
        pixels = _check_array(source, label)
        if max_pixels is not None and pixels.shape[0] * pixels.shape[1] > max_pixels:
            raise _problem(label, _bomb_message(pixels.shape[1], pixels.shape[0], max_pixels))
        return Photo(pixels, label)
    if isinstance(source, Image.Image):
        label = name or "<PIL image>"
        if max_pixels is not None and source.width * source.height > max_pixels:
            raise _problem(label, _bomb_message(source.width, source.height, max_pixels))
        try:
            oriented = ImageOps.exif_transpose(source) if exif else source
            return Photo(_to_rgb_array(oriented, label), label)
        except (OSError, ValueError) as err:
            raise _problem(label, f"cannot decode image: {err}") from None
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(f"expected a path, a PIL image or an H×W×3 uint8 array, got "
                        f"{type(source).__name__}")
    path = Path(source)
    label = name or str(path)
    if not path.exists():
        raise _problem(label, "file not found")
    if path.is_dir():
        raise _problem(label, "is a directory, not an image file")
    try:
        with warnings.catch_warnings():
            # Our own limit decides; PIL's warning between its two thresholds is noise here.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                if max_pixels is not None and image.width * image.height > max_pixels:
                    raise _problem(label, _bomb_message(image.width, image.height, max_pixels))
                image.load()  # decode now, so truncated/corrupted data fails inside this try
                pixels = _to_rgb_array(ImageOps.exif_transpose(image) if exif else image, label)
    except Image.DecompressionBombError as err:
        # PIL refuses above twice its MAX_IMAGE_PIXELS whatever our limit is; it raises while
        # opening, so the size is known only from its message.
        found = re.search(r"\((\d+) pixels\)", str(err))
        count = int(found.group(1)) if found else None
        limit = 2 * (Image.MAX_IMAGE_PIXELS or 0)  # set: PIL raised its own guard
        raise _problem(label, _bomb_message(None, None, limit, pixels=count)) from None
    except UnidentifiedImageError:
        raise _problem(label, "not an image file (or a format PIL cannot read)") from None
    except InvalidDataError:
        raise
    except (OSError, ValueError, SyntaxError, EOFError) as err:
        # PIL reports truncated/corrupted streams as OSError ("image file is truncated"),
        # SyntaxError (broken headers) or ValueError, depending on the plugin.
        detail = str(err).strip() or type(err).__name__
        raise _problem(label, f"cannot decode image (corrupted or truncated?): {detail}") from None
    return Photo(pixels, label)


def load_photos(sources: Iterable[PhotoSource], *, max_pixels: int | None = DEFAULT_MAX_PIXELS
                ) -> tuple[list[tuple[int, Photo]], list[Problem]]:
    """Load many photos; a bad one does not stop the others.

    Returns ``(loaded, problems)``: ``loaded`` is ``[(position in sources, Photo), ...]`` in
    input order, ``problems`` one :class:`Problem` per photo that could not be loaded."""
    loaded: list[tuple[int, Photo]] = []
    problems: list[Problem] = []
    for i, source in enumerate(sources):
        name = None if isinstance(source, (str, os.PathLike)) else f"<image {i}>"
        try:
            loaded.append((i, load_photo(source, name=name, max_pixels=max_pixels)))
        except InvalidDataError as err:
            problems.extend(err.problems)
    return loaded, problems


def expand_sources(patterns: Sequence[str | os.PathLike]) -> tuple[list[Path], list[Problem]]:
    """Paths, directories (their image files, recursively, sorted) and glob patterns → image
    files, each once, in the order given.

    Directory entries are picked by suffix (:data:`IMAGE_SUFFIXES`, any case); files named
    explicitly are kept whatever their suffix (a ``.dat`` that is a JPEG still loads). A
    pattern that matches nothing, or a missing path, is a :class:`Problem`."""
    out: list[Path] = []
    seen: set[Path] = set()
    problems: list[Problem] = []

    def add(path: Path) -> None:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            out.append(path)

    def add_dir(folder: Path) -> None:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
                add(path)

    for pattern in patterns:
        text = os.fspath(pattern)
        path = Path(text)
        if path.is_dir():
            add_dir(path)
        elif path.exists():
            add(path)
        elif glob.has_magic(text):
            matches = sorted(glob.glob(text, recursive=True))
            if not matches:
                problems.append(Problem(text, "pattern", "matches no file"))
            for match in matches:
                m = Path(match)
                if m.is_dir():
                    add_dir(m)
                elif m.suffix.lower() in IMAGE_SUFFIXES:
                    add(m)
        else:
            problems.append(Problem(text, "image", "file not found"))
    return out, problems
