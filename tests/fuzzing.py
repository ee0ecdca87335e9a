"""Shared machinery of the property-based fuzzing of every reader (``tests/data/test_fuzz_readers.py``,
``tests/evaluation/test_fuzz_results.py``).

Inputs are of two kinds. *Structured*: a valid document drawn from a seed (so that hypothesis
shrinks the mutations, not the document), then a list of mutations at random places in its
JSON tree — odd values (huge, negative, non-finite, wrong types, unicode), deleted and
duplicated keys and records, nudged numbers (RLE counts that no longer sum to ``h × w``),
edited strings (compressed RLE counts), truncated and extended lists (polygons). *Raw*:
byte-level damage to the serialised document (truncation, flipped and inserted bytes, a BOM)
and plain random bytes.

:data:`CASES` parametrises a fuzz test with a few hundred derandomised cases for the default
suite and 10,000 random ones under the ``slow`` marker; :func:`run_fuzz` runs them and checks
that they all ran.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

DEFAULT_CASES = 200
SLOW_CASES = 10_000

CASES = [
    pytest.param(DEFAULT_CASES, id="default"),
    pytest.param(SLOW_CASES, id="slow", marks=[pytest.mark.slow, pytest.mark.timeout(3600)]),
]


def run_fuzz(check: Callable[[Any], None], strategy: st.SearchStrategy, cases: int) -> None:
    """Run ``check`` on ``cases`` values drawn from ``strategy``.

    The default-suite size is derandomised (the same cases every run: the suite stays
    deterministic); the slow size draws new cases each run. No example database is written."""
    calls = 0

    def body(value: Any) -> None:
        nonlocal calls
        calls += 1
        check(value)

    fuzz = settings(
        max_examples=cases,
        deadline=None,
        database=None,
        derandomize=cases <= DEFAULT_CASES,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        print_blob=True,
    )(given(strategy)(body))
    fuzz()
    assert calls >= cases, f"only {calls} of {cases} cases ran"


# -- odd values --------------------------------------------------------------------------


@dataclass(frozen=True)
class Token:
    """A JSON token written as it is: ``NaN``, ``Infinity``, ``1e999`` (inf once parsed)."""

    text: str


ODD_VALUES: tuple[Any, ...] = (
    None, True, False, 0, -1, 1, 2, 255, 256, 65535, 65536, 2**31 - 1, 2**31, -(2**31) - 1,
    2**32, 2**53 + 1, 2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 2**64, 10**30, -(10**30),
    0.5, -0.0, 1e-320, 1e308, -1e308, 3.4e38, "", " ", "0", "-1", "1e5", "nan", "NaN",
    "ü🙂\u0000\u202e", "a" * 300, "１２", [], [[]], [0], [0, 0], [1, 2, 3], [[1, 2, 3, 4, 5, 6]],
    [[0.0, 0.0, 1e12, 0.0, 1e12, 1e12]], [[-1e9, -1e9, 5.0, 0.0, 0.0, 5.0]], {}, {"counts": ""},
    {"size": [1, 1], "counts": [0, 1]}, {"size": [2**31, 2**31], "counts": "0"},
    Token("NaN"), Token("Infinity"), Token("-Infinity"), Token("1e999"), Token("-1e999"),
    Token("1E400"), Token("-0"), Token("1.0e-400"), Token("100000000000000000000000"),
    Token("1" + "0" * 400), Token("-" + "9" * 40),
)

# Keys added by mutations: the format's own (misplaced) and some others.
KEYS: tuple[str, ...] = (
    "id", "image_id", "category_id", "segmentation", "bbox", "area", "iscrowd",
    "attribute_ids", "size", "counts", "width", "height", "file_name", "images", "annotations",
    "categories", "score", "attribute_scores", "extra", "ü", "",
)

_json_leaf = (
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
)
JSON_VALUES = st.recursive(
    _json_leaf,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                 max_size=3),
    max_leaves=8,
)
ODD = st.sampled_from(ODD_VALUES) | JSON_VALUES


# -- mutations of a JSON tree ------------------------------------------------------------

# (operation, walk through the tree, a value, a small integer parameter)
MUTATION = st.tuples(
    st.integers(0, 8),
    st.lists(st.integers(0, 2**16), min_size=1, max_size=6),
    ODD,
    st.integers(-3, 40),
)
MUTATIONS = st.lists(MUTATION, min_size=0, max_size=4)


def focused(mutations: st.SearchStrategy, first_step: int) -> st.SearchStrategy:
    """``mutations`` of which about half start their walk at the root's key number
    ``first_step`` (e.g. a document's ``annotations``), where most of the checks are."""
    return st.lists(
        st.tuples(MUTATION, st.booleans()).map(
            lambda m: (m[0][0], ([first_step] if m[1] else []) + m[0][1], *m[0][2:])),
        max_size=4,
    )


def _walk(doc: Any, steps: list[int]) -> tuple[Any, Any]:
    """Follow ``steps`` (indices modulo the container's size) from the root; returns the
    container reached last and the key/index in it."""
    parent, key = None, None
    node = doc
    for step in steps:
        if isinstance(node, dict) and node:
            k = list(node)[step % len(node)]
        elif isinstance(node, list) and node:
            k = step % len(node)
        else:
            break
        parent, key, node = node, k, node[k]
    return parent, key


def mutate(doc: Any, mutations: list[tuple[int, list[int], Any, int]]) -> Any:
    """``doc`` (deep-copied) with each mutation applied in turn."""
    doc = copy.deepcopy(doc)
    for op, steps, value, param in mutations:
        parent, key = _walk(doc, steps)
        if parent is None:
            continue
        node = parent[key]
        if op == 0:  # replace by an odd value
            parent[key] = copy.deepcopy(value)
        elif op == 1:  # delete
            del parent[key]
        elif op == 2:  # duplicate
            if isinstance(parent, list):
                parent.insert(key, copy.deepcopy(node))
            else:
                parent[KEYS[param % len(KEYS)]] = copy.deepcopy(node)
        elif op == 3:  # insert an odd value beside
            if isinstance(parent, list):
                parent.insert(key, copy.deepcopy(value))
            else:
                parent[KEYS[param % len(KEYS)]] = copy.deepcopy(value)
        elif op == 4:  # nudge a number
            if isinstance(node, bool) or not isinstance(node, int | float):
                continue
            parent[key] = {0: node + 1, 1: node - 1, 2: -node, 3: node * 2, 4: node * 10**6,
                           5: node + 0.5}.get(param % 6, node + param)
        elif op == 5:  # edit a string at a position
            if not isinstance(node, str):
                continue
            pos = param % (len(node) + 1)
            text = value if isinstance(value, str) and value else "?"
            parent[key] = node[:pos] + text[: max(1, param % 3)] + node[pos + 1:]
        elif op == 6:  # shorten or lengthen a list
            if not isinstance(node, list):
                continue
            if param % 2 and node:
                del node[-(param % len(node)) - 1:]
            else:
                node.extend(copy.deepcopy(node[: param % 5]) or [copy.deepcopy(value)])
        elif op == 7 and isinstance(parent, list) and len(parent) > 1:  # swap siblings
            other = (key + 1 + param % (len(parent) - 1)) % len(parent)
            parent[key], parent[other] = parent[other], parent[key]
        elif op == 8 and isinstance(node, str) and node:  # drop or double the last character
            parent[key] = node[:-1] if param % 2 else node + node[-1]
    return doc


def dumps(doc: Any) -> bytes:
    """JSON bytes of ``doc``; :class:`Token` values are written as their raw text."""
    tokens: list[str] = []

    def default(obj: Any) -> str:
        if isinstance(obj, Token):
            tokens.append(obj.text)
            return f"@@TOKEN{len(tokens) - 1}@@"
        raise TypeError(type(obj).__name__)

    text = json.dumps(doc, default=default, allow_nan=True, ensure_ascii=False)
    for i, token in enumerate(tokens):
        text = text.replace(f'"@@TOKEN{i}@@"', token)
    return text.encode("utf-8", "surrogatepass")


# -- byte-level damage -------------------------------------------------------------------

BYTE_DAMAGE = st.lists(
    st.tuples(st.integers(0, 3), st.integers(0, 2**20), st.binary(min_size=1, max_size=8)),
    min_size=1, max_size=3,
)


def damage(data: bytes, edits: list[tuple[int, int, bytes]]) -> bytes:
    """``data`` truncated, overwritten, extended at positions, or given a BOM."""
    for op, pos, chunk in edits:
        pos %= len(data) + 1
        if op == 0:
            data = data[:pos]
        elif op == 1:
            data = data[:pos] + chunk + data[pos + len(chunk):]
        elif op == 2:
            data = data[:pos] + chunk + data[pos:]
        else:
            data = b"\xef\xbb\xbf" + data if pos % 2 else b"\xff\xfe" + data
    return data


# -- masks drawn from a seed -------------------------------------------------------------


def random_mask(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """An ``H×W bool`` mask of one to three rectangles (sometimes empty, sometimes full)."""
    mask = np.zeros((height, width), bool)
    for _ in range(int(rng.integers(0, 4)) if rng.random() < 0.1 else int(rng.integers(1, 4))):
        y0, x0 = int(rng.integers(0, height)), int(rng.integers(0, width))
        y1, x1 = int(rng.integers(y0, height + 1)), int(rng.integers(x0, width + 1))
        mask[y0:y1 + 1, x0:x1 + 1] = True
    return mask


def uncompressed_rle(mask: np.ndarray) -> dict:
    """COCO RLE with ``counts`` as a list (column-major runs, background first)."""
    flat = mask.ravel(order="F").astype(np.int8)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], flat, [0]])))
    counts = np.diff(np.concatenate([[0], edges, [flat.size]])).tolist()
    return {"size": [int(v) for v in mask.shape], "counts": counts}


def compressed_rle(mask: np.ndarray) -> dict:
    from fashionkit.data.masks import encode_mask, rle_to_json

    return rle_to_json(encode_mask(mask))


def polygon_of(rng: np.random.Generator, mask: np.ndarray) -> list[list[float]]:
    """A polygon list roughly covering the mask's box (a jittered quadrilateral or two)."""
    ys, xs = np.nonzero(mask)
    h, w = mask.shape
    if len(xs) == 0:
        x0, y0, x1, y1 = 0.0, 0.0, float(w), float(h)
    else:
        x0, y0, x1, y1 = float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)
    rings = []
    for _ in range(int(rng.integers(1, 3))):
        jitter = rng.uniform(-0.5, 0.5, 8)
        rings.append([round(float(v), 2) for v in
                      np.array([x0, y0, x1, y0, x1, y1, x0, y1]) + jitter])
    return rings


def segmentation(rng: np.random.Generator, mask: np.ndarray) -> Any:
    kind = int(rng.integers(0, 3))
    if kind == 0:
        return polygon_of(rng, mask)
    if kind == 1:
        return compressed_rle(mask)
    return uncompressed_rle(mask)


def box_of(mask: np.ndarray) -> list[float]:
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return [0.0, 0.0, 0.0, 0.0]
    return [float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1),
            float(ys.max() - ys.min() + 1)]
