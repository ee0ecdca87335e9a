"""The errors fashionkit raises on purpose, one vocabulary for every layer.

Library code raises these; the two outer layers each translate them in one place:

============================  =====================  ===========================
error                         HTTP (``service``)     CLI exit code (``cli``)
============================  =====================  ===========================
:class:`InvalidDataError`     422, with problems     2 (invalid input)
:class:`NotFoundError`        404                    2 (invalid input)
:class:`ConflictError`        409                    2 (invalid input)
============================  =====================  ===========================

The CLI's exit codes are 0 (done), 1 (partial failure: the job finished, some inputs could not be
used, e.g. unreadable photos, each listed) and 2 (invalid input: nothing was done).

:class:`Problem` is one thing wrong with one record; :func:`format_problems` is the one way a
list of them is shortened for a person ("… and N more problems").
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "FashionkitError",
    "Problem",
    "InvalidDataError",
    "NotFoundError",
    "ConflictError",
    "LimitError",
    "format_problems",
    "MAX_LISTED_PROBLEMS",
    "EXIT_OK",
    "EXIT_PARTIAL_FAILURE",
    "EXIT_INVALID_INPUT",
]

EXIT_OK = 0
EXIT_PARTIAL_FAILURE = 1
EXIT_INVALID_INPUT = 2

#: How many problems a message lists before it says how many more there are.
MAX_LISTED_PROBLEMS = 20


class FashionkitError(Exception):
    """Base of the errors fashionkit raises on purpose (as opposed to bugs)."""


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


def format_problems(
    problems: Sequence[object], limit: int = MAX_LISTED_PROBLEMS, noun: str = "problem"
) -> list[str]:
    """The first ``limit`` problems as lines, then ``"… and N more problems"`` when some were
    left out. Works for anything with a ``str`` (problems, notices, failed photos)."""
    lines = [str(p) for p in problems[:limit]]
    more = len(problems) - limit
    if more > 0:
        lines.append(f"… and {more} more {noun}{'s' if more != 1 else ''}")
    return lines


class InvalidDataError(FashionkitError):
    """Input that cannot be used; carries every problem found, each naming its record."""

    def __init__(self, problems: list[Problem]):
        if not problems:
            raise ValueError("InvalidDataError needs at least one problem")
        self.problems = list(problems)
        super().__init__("\n".join(format_problems(self.problems)))

    @classmethod
    def in_file(cls, path: str | os.PathLike, message: str) -> InvalidDataError:
        """A problem with a whole file (a checkpoint, an exported model, a photo)."""
        return cls([Problem(str(path), "file", message)])


class NotFoundError(FashionkitError, LookupError):
    """A named thing (item, outfit, photo, job, user) does not exist for this caller.

    ``kind`` says what was looked for, ``key`` its name."""

    def __init__(self, kind: str, key: object):
        self.kind = kind
        self.key = key
        super().__init__(f"no {kind} {key!r}")

    def __str__(self) -> str:  # LookupError's str() would quote the whole message
        return str(self.args[0])


class ConflictError(FashionkitError):
    """The request contradicts what is stored (an id already taken, an edit that lost a race);
    the caller may change it and retry."""


class LimitError(FashionkitError):
    """A write that would take what is stored past its limit (a wardrobe's most items); nothing
    of it was written."""


class BusyError(FashionkitError):
    """The caller already has as much costly work running or waiting as they may; nothing was
    done, and the same request may succeed once that work is done (in about ``retry_after_s``
    seconds)."""

    def __init__(self, message: str, retry_after_s: int = 10):
        super().__init__(message)
        self.retry_after_s = retry_after_s
