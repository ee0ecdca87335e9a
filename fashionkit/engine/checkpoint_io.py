"""How the trainer writes and reads its checkpoints (``last.ckpt``, ``best.ckpt``).

Lightning's own writer goes through a temporary file in the system temp folder and moves it
into place: when that folder is on another file system (``/tmp`` on tmpfs, a run folder on a
network disk) the move is a copy, and a crash during it leaves a truncated checkpoint under the
real name; nothing is fsynced. Here every write is :func:`~fashionkit.modeling.checkpoint.atomic_save`
(temporary file beside the target, fsync, rename), so a ``kill -9`` or a power cut at any
moment leaves the previous checkpoint intact and ``--resume`` continues from it.

Reading goes through :func:`~fashionkit.modeling.checkpoint.safe_torch_load`
(``weights_only=True``): a crafted ``last.ckpt`` is refused with a message naming the file,
never unpickled.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from lightning.pytorch.plugins.io import TorchCheckpointIO

from fashionkit.modeling.checkpoint import atomic_save, safe_torch_load

__all__ = ["AtomicCheckpointIO"]


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning checkpoint IO: atomic, durable writes; weights-only reads (see module doc)."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any,
                        storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO takes no storage_options")
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_save(checkpoint, target)

    def load_checkpoint(self, path: Any, map_location: Callable | None = None,
                        weights_only: bool | None = None) -> dict[str, Any]:
        # Always weights-only (our checkpoints hold only tensors and builtins), on the CPU;
        # Lightning moves the states to the device afterwards.
        return safe_torch_load(path)
