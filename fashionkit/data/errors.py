"""Problems found in input data, and how they are reported.

Every reader collects :class:`Problem` records (file, where in it, what is wrong). With
``on_invalid="raise"`` (the default) a file with any problem raises :class:`InvalidDataError`,
whose message names the file and each annotation id or CSV line; the CLI turns it into exit code
2 without a traceback. With ``on_invalid="skip"`` the offending records are dropped and listed in
a :class:`SkipReport`, which can be written as JSON: nothing is dropped silently.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

__all__ = ["Problem", "InvalidDataError", "SkipReport", "OnInvalid"]

OnInvalid = Literal["raise", "skip"]

_MAX_LISTED = 20


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one record.

    ``source`` is the file, ``where`` the record in it (``"annotation id 17"``,
    ``"line 42"``, ``"image id 3"``), ``message`` what is wrong with it.
    """

    source: str
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.source}: {self.where}: {self.message}"


class InvalidDataError(Exception):
    """Raised by readers for invalid input; carries every problem found."""

    def __init__(self, problems: list[Problem]):
        if not problems:
            raise ValueError("InvalidDataError needs at least one problem")
        self.problems = list(problems)
        lines = [str(p) for p in self.problems[:_MAX_LISTED]]
        more = len(self.problems) - _MAX_LISTED
        if more > 0:
            lines.append(f"... and {more} more problem(s)")
        super().__init__("\n".join(lines))


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
