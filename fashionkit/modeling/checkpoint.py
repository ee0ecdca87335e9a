"""fashionkit's checkpoint format, the header it shares with exported models, and the one
safe way to read weight files.

Every file fashionkit writes for a model starts with the same header (:class:`ModelFileFormat`:
``format``, ``format_version``, ``config``, ``ontology_version``), checked the same way on
load. A checkpoint is that header plus the weights, a dict saved with ``torch.save``::

    {"format": "fashionkit-checkpoint", "format_version": 1,
     "config": ModelConfig.to_dict(), "ontology_version": str, "model": state_dict, ...extra}

Only builtins and tensors, so it loads with ``torch.load(path, map_location="cpu",
weights_only=True)``: a file that would need arbitrary unpickling is refused, never executed.
"""

from __future__ import annotations

import os
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from fashionkit.errors import InvalidDataError
from fashionkit.modeling.config import ModelConfig
from fashionkit.modeling.model import build_model
from fashionkit.ontology import load_ontology

__all__ = [
    "CHECKPOINT",
    "CHECKPOINT_FORMAT",
    "ModelFileFormat",
    "atomic_save",
    "save_checkpoint",
    "read_checkpoint",
    "load_checkpoint",
    "model_from_checkpoint",
    "checked_config",
    "safe_torch_load",
]



@dataclass(frozen=True)
class ModelFileFormat:
    """The header of one kind of model file: ``name`` (its ``format`` value), the newest
    ``version`` this fashionkit writes and reads, and ``what`` it is called in errors."""

    name: str
    version: int
    what: str

    def header(self, config: ModelConfig) -> dict[str, Any]:
        """``{"format", "format_version", "config", "ontology_version"}`` for a model with
        ``config``, in builtins only."""
        return {
            "format": self.name,
            "format_version": self.version,
            "config": config.to_dict(),
            "ontology_version": load_ontology().version,
        }

    def check(self, data: Any, path: str | Path, hint: str = "") -> ModelConfig:
        """The :class:`ModelConfig` of a file's header after checking its format, version,
        config and ontology (:func:`checked_config`); errors name ``path``, and ``hint`` ends
        the message for a file of another format."""
        if not isinstance(data, dict) or data.get("format") != self.name:
            found = data.get("format") if isinstance(data, dict) else None
            raise InvalidDataError.in_file(
                path, f"not a fashionkit {self.what} (format {found!r}, expected "
                      f"{self.name!r}){hint}")
        if data.get("format_version", 0) > self.version:
            raise InvalidDataError.in_file(
                path, f"{self.what} format version {data['format_version']} is newer than this "
                      f"fashionkit reads ({self.version})")
        return checked_config(data, path, what=self.what)


CHECKPOINT = ModelFileFormat("fashionkit-checkpoint", 1, "checkpoint")
CHECKPOINT_FORMAT = CHECKPOINT.name


def safe_torch_load(path: str | Path) -> Any:
    """``torch.load(path, map_location="cpu", weights_only=True)`` with errors that name the file.

    Raises :class:`InvalidDataError` when the file is missing, is not a torch file, or holds
    objects that weights-only loading refuses (a crafted or foreign pickle)."""
    path = Path(path)
    if not path.is_file():
        raise InvalidDataError.in_file(path, "weights file not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise InvalidDataError.in_file(
            path,
            "refused: the file holds Python objects that weights-only loading does not allow "
            f"(it may run code when unpickled; only tensors and builtins are accepted): {first}",
        ) from None
    except (RuntimeError, EOFError, ValueError, OSError, struct.error) as err:
        raise InvalidDataError.in_file(path, f"not a readable torch weights file ({type(err).__name__}: "
                           f"{str(err).strip().splitlines()[0] if str(err).strip() else ''})"
                     ) from None


def save_checkpoint(model, path: str | Path, extra: dict[str, Any] | None = None) -> Path:
    """Write ``model`` (an :class:`~fashionkit.modeling.AttributeMaskRCNN`) with its config and
    the ontology version. ``extra``: more builtin-only entries (recipe, epochs, metrics)."""
    header = CHECKPOINT.header(model.config)
    clash = (set(header) | {"model"}) & set(extra or {})
    if clash:
        raise ValueError(f"extra must not set {sorted(clash)}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    payload = {**header, "model": state, **(extra or {})}
    atomic_save(payload, path)
    return path


def atomic_save(obj: Any, path: str | Path) -> None:
    """``torch.save(obj, path)`` such that a crash or ``kill -9`` at any moment leaves either
    the previous file or the new one under ``path``, never a part of one: the bytes go to
    ``path.tmp`` beside it, are flushed to disk (fsync), and the file is renamed over ``path``
    (atomic on POSIX and Windows); then the folder is synced so that the rename itself
    survives a power cut. A crash leaves at most a stale ``.tmp``, overwritten next time."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    if os.name == "posix":  # a folder cannot be opened for syncing on Windows
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint dict, checked for format, config and ontology version."""
    data = safe_torch_load(path)
    CHECKPOINT.check(data, path, hint="; for torchvision or ImageNet weights use load_weights")
    if "model" not in data:
        raise InvalidDataError.in_file(path, "checkpoint has no 'model'")
    return data


def checked_config(data: dict[str, Any], path: str | Path, what: str = "checkpoint"):
    """The :class:`ModelConfig` of a checkpoint dict (or of an exported model's metadata, which
    carries the same ``config`` and ``ontology_version``), after checking that both are there,
    that the config is valid and that the ontology is this fashionkit's: another ontology
    version numbers classes and attributes differently."""
    for key in ("config", "ontology_version"):
        if key not in data:
            raise InvalidDataError.in_file(path, f"{what} has no {key!r}")
    try:
        config = ModelConfig.from_dict(data["config"])
    except ValueError as err:
        raise InvalidDataError.in_file(path, f"{what} config is invalid: {err}") from None
    ours = load_ontology().version
    if data["ontology_version"] != ours:
        raise InvalidDataError.in_file(path, f"{what} was trained with ontology {data['ontology_version']!r}, "
                           f"this fashionkit has {ours!r}: class and attribute indices differ")
    return config


def model_from_checkpoint(data: dict[str, Any], path: str | Path):
    """The model a :func:`read_checkpoint` dict describes, its weights loaded (eval mode).
    ``path`` names the file in errors."""
    model = build_model(checked_config(data, path))
    try:
        model.load_state_dict(data["model"], strict=True)
    except RuntimeError as err:
        raise InvalidDataError.in_file(path, f"weights do not fit the checkpoint's own config: {err}") from None
    return model.eval()


def load_checkpoint(path: str | Path):
    """Build the model from the checkpoint's config and load its weights (eval mode)."""
    return model_from_checkpoint(read_checkpoint(path), path)
