"""How readers report problems in input data.

Every reader collects :class:`~fashionkit.errors.Problem` records (file, where in it, what is
wrong). With ``on_invalid="raise"`` (the default) a file with any problem raises
:class:`~fashionkit.errors.InvalidDataError`, whose message names the file and each annotation id
or CSV line; the CLI turns it into exit code 2 without a traceback. With ``on_invalid="skip"``
the offending records are dropped and listed in a :class:`SkipReport`, which can be written as
JSON: nothing is dropped silently.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from fashionkit.errors import InvalidDataError, Problem

__all__ = ["SkipReport", "OnInvalid", "cannot_read", "read_input"]

OnInvalid = Literal["raise", "skip"]


@dataclass
class SkipReport:
    """What a reader dropped under ``on_invalid="skip"``, record by record.

    ``notices`` are findings that drop nothing (e.g. an image file whose real size disagrees
    with the annotation file); readers return them under either ``on_invalid`` mode.
    """

    problems: list[Problem] = field(default_factory=list)
    notices: list[Problem] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.problems)

    def __bool__(self) -> bool:
        return bool(self.problems)

    def extend(self, problems: list[Problem]) -> None:
        self.problems.extend(problems)

    def to_json(self) -> dict:
        return {
            "skipped": len(self.problems),
            "problems": [asdict(p) for p in self.problems],
            "notices": [asdict(p) for p in self.notices],
        }

    def write(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), indent=2) + "\n", encoding="utf-8")


def cannot_read(path: str | Path, err: OSError) -> InvalidDataError:
    """The error for an input file that cannot be opened or read."""
    return InvalidDataError.in_file(path, f"cannot be read ({err})")


def read_input(path: str | Path) -> bytes:
    """The bytes of an input file; a file that cannot be read is invalid input, naming it."""
    try:
        return Path(path).read_bytes()
    except OSError as err:
        raise cannot_read(path, err) from None
