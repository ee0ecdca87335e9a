"""Pausing Python's cyclic garbage collector while reading and evaluating.

Result and ground-truth files decode into millions of small lists and dicts (boxes, attribute
ids, polygons). Every few hundred new containers the collector runs, and its older generations
walk every container alive, so reading a large file spends a good part of its time in the
collector. None of these objects form reference cycles, so nothing is lost by pausing it; plain
reference counting frees them as usual.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["collector_paused"]


@contextmanager
def collector_paused() -> Iterator[None]:
    """Disable the cyclic collector inside the block (also as a decorator); restores the state
    found, so that nested uses and callers that disabled it themselves are left alone."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
