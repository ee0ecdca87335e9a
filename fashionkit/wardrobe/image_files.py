"""Content-addressed image storage: photos and cut-outs on disk, named by their bytes' SHA-256.

A file with digest ``d`` and suffix ``.jpg`` lives at ``ROOT/d[:2]/d[2:4]/d.jpg``. Storing the
same bytes twice keeps one file; a file is written to a temporary name and renamed, so a reader
never sees half a file.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from pathlib import Path

__all__ = ["ImageStore", "file_digest"]

_TEMPORARY = ".incoming-"


def file_digest(path: str | Path) -> str:
    """SHA-256 hex digest of a file's bytes: its name in the store."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


class ImageStore:
    def __init__(self, root: str | Path):
        self.root = Path(root)

    def path(self, digest: str, suffix: str) -> Path:
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise ValueError(f"not a SHA-256 hex digest: {digest!r}")
        return self.root / digest[:2] / digest[2:4] / f"{digest}{suffix}"

    def put_bytes(self, data: bytes, suffix: str) -> str:
        """Store ``data``; returns its SHA-256 hex digest."""
        digest = hashlib.sha256(data).hexdigest()
        target = self.path(digest, suffix.lower())
        if target.exists():
            return digest
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=_TEMPORARY)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return digest

    def put_file(self, source: str | Path) -> tuple[str, str]:
        """Store a copy of ``source``; returns ``(digest, suffix)``."""
        source = Path(source)
        suffix = source.suffix.lower() or ".bin"
        return self.put_bytes(source.read_bytes(), suffix), suffix

    def has(self, digest: str, suffix: str) -> bool:
        return self.path(digest, suffix).exists()

    def remove_stale_temporary(self, min_age_s: float = 3600.0) -> int:
        """Delete temporary files a killed writer left (older than ``min_age_s``, so that a
        write in progress in another process is left alone); returns how many."""
        removed = 0
        cutoff = time.time() - min_age_s
        for path in self.root.glob(f"*/*/{_TEMPORARY}*"):
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:
                pass
        return removed
