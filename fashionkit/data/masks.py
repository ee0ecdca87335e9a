"""Mask ops as pure functions: segmentation (polygons / RLE) ↔ compressed RLE ↔ bool arrays.

All RLE here is COCO's: column-major runs starting with background, ``size`` = ``[h, w]``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pycocotools import mask as mask_utils

__all__ = [
    "segmentation_to_rle",
    "encode_mask",
    "decode_rle",
    "rle_to_json",
    "kaggle_runs",
    "kaggle_to_rle",
    "rle_to_kaggle",
    "kaggle_decode",
    "rle_areas",
    "rle_string_totals",
    "MAX_MASK_PIXELS",
]

#: pycocotools keeps run lengths and areas in uint32: a mask must have fewer pixels than this.
MAX_MASK_PIXELS = 2**32 - 1


def segmentation_to_rle(segmentation, height: int, width: int) -> dict:
    """Polygons, uncompressed RLE or compressed RLE → one compressed RLE (counts bytes)."""
    if isinstance(segmentation, list):
        rles = mask_utils.frPyObjects(segmentation, height, width)
        return mask_utils.merge(rles)
    if isinstance(segmentation, dict):
        counts = segmentation["counts"]
        if isinstance(counts, list):
            return mask_utils.frPyObjects(segmentation, height, width)
        if isinstance(counts, str):
            return {"size": list(segmentation["size"]), "counts": counts.encode("ascii")}
        return {"size": list(segmentation["size"]), "counts": counts}
    raise TypeError(f"segmentation must be a polygon list or an RLE dict, not {type(segmentation)}")


def rle_areas(rles: list[dict]) -> np.ndarray:
    """Foreground pixel counts of compressed RLEs, ``(N,) int64``.

    Chunked because ``pycocotools.mask.area`` on a list of more than 255 RLEs overflows a uint8
    (pycocotools 2.0.11 with numpy 2: "Python integer 256 out of bounds for uint8").
    """
    out = np.zeros(len(rles), np.int64)
    for lo in range(0, len(rles), 255):
        out[lo : lo + 255] = mask_utils.area(rles[lo : lo + 255])
    return out


def rle_string_totals(counts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Decode COCO compressed RLE strings (pycocotools' ``rleFrString``) far enough to check them.

    Returns ``(ok (N,) bool, total (N,) int64)``: ``ok`` is false for an empty string, characters
    outside the alphabet, an unterminated last run, runs of more than 6 characters or negative
    runs; ``total`` is the sum of the runs (the pixel count, which must be ``h * w``).
    """
    n = len(counts)
    ok = np.ones(n, dtype=bool)
    total = np.zeros(n, dtype=np.int64)
    chunk = 1024  # strings per pass: keeps the per-character arrays cache-sized
    for s in range(0, n, chunk):
        ok[s : s + chunk], total[s : s + chunk] = _rle_chunk(counts[s : s + chunk])
    return ok, total


_SIGN_OFFSET = np.left_shift(np.int64(1), 5 * np.arange(7, dtype=np.int64))


def _rle_chunk(counts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    n = len(counts)
    ascii_ok = np.fromiter(map(str.isascii, counts), dtype=bool, count=n)
    if not ascii_ok.all():
        counts = [s if a else "" for s, a in zip(counts, ascii_ok, strict=True)]
    lengths = np.fromiter(map(len, counts), dtype=np.int64, count=n)
    ok = ascii_ok & (lengths > 0)
    total = np.zeros(n, dtype=np.int64)
    nonempty = np.flatnonzero(lengths > 0)
    if len(nonempty) == 0:
        return ok, total
    ends_at = np.cumsum(lengths)
    c = np.frombuffer("".join(counts).encode("ascii"), dtype=np.uint8) - np.uint8(48)
    bad = c > 63  # wraps below 48 too
    if bad.any():
        ok[np.searchsorted(ends_at, np.flatnonzero(bad), side="right")] = False
        c[bad] = 0
    ends = c < 32  # the character has no continuation bit: it ends a run
    last = ends_at[nonempty] - 1
    ok[nonempty] &= ends[last]
    ends[last] = True  # a broken string must not run into the next one
    low = c & np.uint8(31)
    # A run of one character (the common case) is 5 signed bits; held at its character.
    value = ((low ^ np.uint8(16)).view(np.int8) - np.int8(16)).astype(np.int32)
    # Longer runs: the characters before the last continue it, lowest 5 bits first.
    multi = np.flatnonzero(ends[1:] & ~ends[:-1]) + 1
    if len(multi):
        v = low[multi].astype(np.int64)
        length = np.ones(len(multi), np.int64)
        idx = np.arange(len(multi))
        for k in range(1, 7):
            at = multi[idx] - k
            idx = idx[(at >= 0) & ~ends[np.maximum(at, 0)]]  # still inside the run
            if len(idx) == 0:
                break
            length[idx] += 1
            if k < 6:
                v[idx] = (v[idx] << 5) | low[multi[idx] - k]
        too_long = length > 6
        if too_long.any():
            ok[np.searchsorted(ends_at, multi[too_long], side="right")] = False
        # A set sign bit in a run's last character makes it negative: value - 2^(5 * length).
        neg = (c[multi] & np.uint8(0x10)) != 0
        np.subtract(v, _SIGN_OFFSET[np.minimum(length, 6)], out=v, where=neg)
        value[multi] = v  # |v| < 2^30: fits
    val = np.compress(ends, value).astype(np.int64)
    starts = ends_at[nonempty] - lengths[nonempty]
    ntok = np.add.reduceat(ends.view(np.int8), starts, dtype=np.int64)
    first_tok = np.cumsum(ntok) - ntok
    run0 = val[first_tok]
    val[first_tok] = 0  # run 0 is on no delta chain
    # rleFrString: from the fourth run on, each run is stored as a delta to the run two back,
    # so runs are running sums along the even and the odd positions of a string. A string's
    # even (odd) positions are one parity of the whole token stream, so two running sums over
    # the stream, each less its value before the string, give every run.
    bad_run = run0 < 0
    covered = run0.copy()
    for p in (0, 1):
        chain = np.cumsum(val[p::2])
        lo = (first_tok - p + 1) // 2
        cnt = (first_tok + ntok - 1 - p) // 2 - lo + 1
        has = np.flatnonzero(cnt > 0)
        if len(has) == 0:
            continue
        lo_h = lo[has]
        before = np.where(lo_h > 0, chain[np.maximum(lo_h - 1, 0)], 0)
        bad_run[has] |= np.minimum.reduceat(chain, lo_h) < before
        covered[has] += np.add.reduceat(chain, lo_h) - cnt[has] * before
    ok[nonempty[bad_run]] = False
    total[nonempty] = covered
    return ok, total


def encode_mask(mask: np.ndarray) -> dict:
    """``H×W`` bool/uint8 mask → compressed RLE (counts bytes)."""
    return mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))


def decode_rle(rle: dict) -> np.ndarray:
    """Compressed RLE → ``H×W bool``."""
    if isinstance(rle.get("counts"), str):
        rle = {"size": rle["size"], "counts": rle["counts"].encode("ascii")}
    return mask_utils.decode(rle).astype(bool)


def rle_to_json(rle: dict) -> dict:
    """Compressed RLE with ``counts`` as str, ready for JSON."""
    counts = rle["counts"]
    if isinstance(counts, bytes):
        counts = counts.decode("ascii")
    return {"size": [int(v) for v in rle["size"]], "counts": counts}


# -- Kaggle iMaterialist "EncodedPixels" -----------------------------------------------------
# Kaggle numbers pixels 1..H*W top-to-bottom, then left-to-right (column-major, like COCO RLE)
# and writes "start length" pairs of foreground runs. Converting run lists directly keeps masks
# pixel-exact without ever materialising an H×W array.


def kaggle_runs(encoded: str, height: int, width: int) -> np.ndarray:
    """Parse ``"start length start length ..."`` into a sorted ``(K, 2) int64`` array of
    0-based ``[start, end)`` column-major pixel ranges, adjacent runs merged.

    Raises ``ValueError`` naming the problem for odd token counts, non-integers, starts < 1,
    lengths < 1, runs past ``height*width``, overlapping runs and images too large for COCO
    RLE (:data:`MAX_MASK_PIXELS`).
    """
    total = height * width
    if not 0 < total <= MAX_MASK_PIXELS:
        raise ValueError(f"image size {width}x{height} cannot hold a COCO RLE mask "
                         f"(1..{MAX_MASK_PIXELS} pixels)")
    try:
        # Text-mode fromstring parses in C and rejects any token that is not an integer.
        flat = np.fromstring(encoded, dtype=np.int64, sep=" ")
    except ValueError:
        raise ValueError("EncodedPixels must be integers 'start length ...'") from None
    if len(flat) % 2:
        raise ValueError(f"EncodedPixels has an odd number of values ({len(flat)})")
    values = flat.reshape(-1, 2)
    if len(values) == 0:
        return np.zeros((0, 2), np.int64)
    starts, lengths = values[:, 0] - 1, values[:, 1]
    if (starts < 0).any():
        raise ValueError("EncodedPixels start below 1 (starts are 1-based)")
    if (lengths < 1).any():
        raise ValueError("EncodedPixels run length below 1")
    # Compared without adding them up: tokens beyond int64 were saturated by the parser, and
    # start + length would wrap around.
    past = (starts >= total) | (lengths > total - np.minimum(starts, total))
    if past.any():
        k = int(np.flatnonzero(past)[0])
        raise ValueError(
            f"EncodedPixels run ends at pixel {int(starts[k]) + int(lengths[k])} beyond "
            f"{height}x{width}={total} pixels"
        )
    if (np.diff(starts) < 0).any():  # Kaggle files are sorted; sort only when needed
        order = np.argsort(starts, kind="stable")
        starts, lengths = starts[order], lengths[order]
    ends = starts + lengths
    if (starts[1:] < ends[:-1]).any():
        raise ValueError("EncodedPixels runs overlap")
    # Merge touching runs so that the COCO counts never hold a zero-length gap; sorted and
    # disjoint, a merged run ends where its last piece ends.
    new_run = np.ones(len(starts), bool)
    new_run[1:] = starts[1:] != ends[:-1]
    last_piece = np.append(new_run[1:], True)
    return np.stack([starts[new_run], ends[last_piece]], axis=1)


def kaggle_to_rle(encoded: str, height: int, width: int) -> dict:
    """Kaggle ``EncodedPixels`` → compressed COCO RLE (counts bytes) of size ``[height, width]``."""
    runs = kaggle_runs(encoded, height, width)
    counts = _runs_to_counts(runs, height * width)
    return mask_utils.frPyObjects({"size": [height, width], "counts": counts}, height, width)


def _runs_to_counts(runs: np.ndarray, total: int) -> list[int]:
    if len(runs) == 0:
        return [total]
    bounds = np.concatenate([[0], runs.ravel(), [total]])
    return np.diff(bounds).tolist()


def rle_to_kaggle(rle: dict) -> str:
    """COCO RLE (compressed or uncompressed) → Kaggle ``EncodedPixels`` (``""`` when empty)."""
    h, w = (int(v) for v in rle["size"])
    counts = rle["counts"]
    if isinstance(counts, list):
        bounds = np.cumsum(np.asarray(counts, np.int64))
    else:
        flat = decode_rle(rle).ravel(order="F").astype(np.int8)
        # Changes in the zero-padded column-major pixels alternate run start, run end.
        bounds = np.flatnonzero(np.diff(np.concatenate([[0], flat, [0]])))
    starts = bounds[0::2]
    ends = bounds[1::2]
    n = min(len(starts), len(ends))
    starts, ends = starts[:n], ends[:n]
    nonempty = ends > starts
    starts, ends = starts[nonempty], ends[nonempty]
    return " ".join(f"{s + 1} {e - s}" for s, e in zip(starts.tolist(), ends.tolist(), strict=True))


def kaggle_decode(encoded: str, height: int, width: int) -> np.ndarray:
    """Kaggle ``EncodedPixels`` → ``H×W bool`` mask (reference decoder, used by tests)."""
    flat = np.zeros(height * width, bool)
    for start, end in kaggle_runs(encoded, height, width).tolist():
        flat[start:end] = True
    return flat.reshape((height, width), order="F")
