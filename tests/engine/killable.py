"""``python -m tests.engine.killable ARGS`` runs the real ``fashionkit ARGS`` with two hooks that
let a test kill it at a chosen moment (the hooks observe and wait; they change no result):

- ``FK_PROGRESS=FILE``: after each training step, appends ``"<epoch> <batch>"`` (0-based) to
  FILE and fsyncs it.
- ``FK_STALL_STEP="<epoch> <batch>"``: after that step is logged, the process waits for its
  kill — in the middle of an epoch, between a step's loss and its optimiser update.
- ``FK_STALL_SAVE=N``: at the N-th write of ``last.ckpt``, once the bytes are in the temporary
  file, cuts that file to half its length (a torn write) and waits for the kill, before the
  rename that would publish it. Appends ``"saving"`` to FK_PROGRESS first.
"""

from __future__ import annotations

import os
import sys
import time


def _log(line: str) -> None:
    path = os.environ.get("FK_PROGRESS")
    if path:
        with open(path, "a") as fh:
            fh.write(line + "\n")
            fh.flush()
            os.fsync(fh.fileno())


def _wait_for_kill() -> None:
    while True:
        time.sleep(60)


def _hook_steps() -> None:
    from fashionkit.engine.module import DetectionModule

    stall = os.environ.get("FK_STALL_STEP")
    step = DetectionModule.training_step

    def logged(self, batch, batch_idx):
        out = step(self, batch, batch_idx)
        where = f"{self.current_epoch} {batch_idx}"
        _log(where)
        if where == stall:
            _wait_for_kill()
        return out

    DetectionModule.training_step = logged  # type: ignore[method-assign]


def _hook_saves(stall_at: int) -> None:
    real_fsync = os.fsync
    writes = 0

    def fsync(fd: int) -> None:
        nonlocal writes
        if os.readlink(f"/proc/self/fd/{fd}").endswith("last.ckpt.tmp"):
            writes += 1
            if writes == stall_at:
                os.ftruncate(fd, os.fstat(fd).st_size // 2)
                _log("saving")
                _wait_for_kill()
        real_fsync(fd)

    os.fsync = fsync


def main() -> None:
    _hook_steps()
    if os.environ.get("FK_STALL_SAVE"):
        _hook_saves(int(os.environ["FK_STALL_SAVE"]))
    from fashionkit.cli import main as cli

    sys.argv = ["fashionkit", *sys.argv[1:]]
    cli()


if __name__ == "__main__":
    main()
