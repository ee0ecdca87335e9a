"""Locks on files, by which one process tells a file another live process is using from one
a killed process left: the user holds an exclusive ``flock`` on it, which the kernel drops when
that process dies. Used for the service's uploads (:mod:`fashionkit.service.photos`) and the
lock files of teaching jobs (:mod:`fashionkit.personal.teaching`).

Without ``fcntl`` (Windows) no lock can be taken or seen: every file counts as unused, so
processes sharing files there must be started together.
"""

from __future__ import annotations

import os
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no other process's files to tell apart from a killed one's
    fcntl = None  # type: ignore[assignment]

__all__ = ["hold", "open_unused"]


def hold(fd: int) -> None:
    """Lock the open file ``fd`` for this process, waiting for any other holder, until it is
    closed (or the process dies)."""
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_EX)


def open_unused(path: Path, flags: int = os.O_RDONLY, mode: int = 0o644) -> int | None:
    """``path`` opened with ``flags`` and locked for this process, when no live process holds
    it: a descriptor the caller closes; ``None`` while one does. Raises
    ``FileNotFoundError`` when the file is missing (and ``flags`` do not create it)."""
    fd = os.open(path, flags, mode)
    if fcntl is None:
        return fd
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd
