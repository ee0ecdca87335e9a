"""Checks of the photo and masks a descriptor or an embedder is given, shared by
:mod:`~fashionkit.personal.embedding` and :mod:`~fashionkit.personal.surface`."""

from __future__ import annotations

import numpy as np

from fashionkit.errors import InvalidDataError, Problem


def check_photo_and_masks(photo: np.ndarray, masks: np.ndarray, boxes: np.ndarray | None
                          ) -> None:
    """Raises :class:`~fashionkit.errors.InvalidDataError` unless ``photo`` is H×W×3 uint8
    RGB, ``masks`` N×H×W with no empty mask, and ``boxes`` (unless None) N×4 finite."""
    problems = []
    if not isinstance(photo, np.ndarray) or photo.ndim != 3 or photo.shape[2] != 3 \
            or photo.dtype != np.uint8:
        shape = getattr(photo, "shape", None)
        problems.append(Problem("photo", "array", f"expected H×W×3 uint8 RGB, got "
                                f"{getattr(photo, 'dtype', type(photo).__name__)} {shape}"))
    elif not isinstance(masks, np.ndarray) or masks.ndim != 3 \
            or masks.shape[1:] != photo.shape[:2]:
        problems.append(Problem("masks", "array", f"expected N×{photo.shape[0]}×"
                                f"{photo.shape[1]} (the photo's H×W), got "
                                f"{getattr(masks, 'shape', None)}"))
    elif boxes is not None and (not isinstance(boxes, np.ndarray)
                                or boxes.shape != (masks.shape[0], 4)):
        problems.append(Problem("boxes", "array", f"expected {masks.shape[0]}×4 XYXY (one per "
                                f"mask), got {getattr(boxes, 'shape', None)}"))
    elif boxes is not None and not np.isfinite(boxes).all():
        problems.append(Problem("boxes", "array", "contains NaN or infinite coordinates"))
    else:
        empty = [i for i in range(masks.shape[0]) if not masks[i].any()]
        if empty:
            problems.append(Problem("masks", f"mask {empty[0]}",
                                    f"is empty ({len(empty)} empty mask(s)): an item needs "
                                    "at least one pixel"))
    if problems:
        raise InvalidDataError(problems)


def check_photo_and_mask(photo: np.ndarray, mask: np.ndarray) -> None:
    """:func:`check_photo_and_masks` of one item's ``mask`` (H×W bool)."""
    check_photo_and_masks(photo, mask[None] if isinstance(mask, np.ndarray) else mask, None)
