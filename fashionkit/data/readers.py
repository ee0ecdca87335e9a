"""One entry point for every annotation format: :func:`read_annotations`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fashionkit.data.annotations import AnnotationSet
from fashionkit.data.errors import OnInvalid, SkipReport

__all__ = ["read_annotations", "FORMATS"]

FORMATS: tuple[str, ...] = ("fashionpedia", "coco", "imaterialist2020", "imaterialist2019")


def _reader(fmt: str) -> Callable[..., tuple[AnnotationSet, SkipReport]]:
    # Imported on demand: each reader pulls in only what its format needs.
    if fmt == "fashionpedia":
        from fashionkit.data.fashionpedia import read_fashionpedia

        return read_fashionpedia
    if fmt == "coco":
        from fashionkit.data.coco import read_coco

        return read_coco
    if fmt == "imaterialist2020":
        from fashionkit.data.imaterialist import read_imaterialist2020

        return read_imaterialist2020
    if fmt == "imaterialist2019":
        from fashionkit.data.imaterialist import read_imaterialist2019

        return read_imaterialist2019
    raise ValueError(f"unknown annotation format {fmt!r}; expected one of {', '.join(FORMATS)}")


def read_annotations(
    path: str | Path,
    format: str = "fashionpedia",
    images_dir: str | Path | None = None,
    on_invalid: OnInvalid = "raise",
) -> tuple[AnnotationSet, SkipReport]:
    """Read, validate and index an annotation file.

    ``format``: one of :data:`FORMATS`. ``images_dir``: folder the images' ``file_name`` are
    relative to; when given (or, for the Kaggle CSVs, when ``train/`` exists beside the CSV)
    missing image files are invalid and size mismatches are noticed. ``on_invalid="raise"``
    raises :class:`~fashionkit.data.errors.InvalidDataError` naming the file and every bad
    record; ``"skip"`` drops them and lists each in the returned
    :class:`~fashionkit.data.errors.SkipReport`. Masks are not decoded.
    """
    if on_invalid not in ("raise", "skip"):
        raise ValueError(f"on_invalid must be 'raise' or 'skip', not {on_invalid!r}")
    return _reader(format)(path, images_dir=images_dir, on_invalid=on_invalid)
