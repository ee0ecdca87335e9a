"""The service as a real process on loopback, detecting with the synthetic world's ground truth.

For tests that kill the server (``kill -9``) and must know exactly which items each photo
yields. ``python -m tests.service.truth_server --port P --db URL --data-dir DIR --photos N
[--delay S] [--lease S] [--poll S] [--calls FILE]``: photos ``0..N-1`` of
:class:`~tests.service.fakes.TruthPredictor` are known; each detection takes at least ``S``
seconds, so that a kill finds jobs mid-way; ``--lease``/``--poll``: the photo jobs' lease and
polling period (short, so that a test sees a dead process's jobs taken over soon);
``--calls``: each detection appends the SHA-256 of its photo to FILE (one line, written before
detecting, so a process killed mid-way has counted it).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import time
from pathlib import Path

from tests.service.fakes import TruthPredictor


class SlowTruthPredictor(TruthPredictor):
    def __init__(self, delay: float, calls: str | None = None):
        super().__init__()
        self.delay = delay
        self.calls_file = calls

    def __call__(self, paths, on_error="raise"):
        if self.calls_file:
            lines = "".join(f"{hashlib.sha256(Path(p).read_bytes()).hexdigest()}\n" for p in paths)
            fd = os.open(self.calls_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
            try:  # one small O_APPEND write: lines of two processes never interleave
                os.write(fd, lines.encode())
            finally:
                os.close(fd)
        time.sleep(self.delay)
        return super().__call__(paths, on_error=on_error)


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    from fashionkit.service import ServiceSettings, create_app

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--db", required=True)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--photos", type=int, default=0)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--lease", type=float, default=ServiceSettings.job_lease_s)
    parser.add_argument("--poll", type=float, default=ServiceSettings.job_poll_s)
    parser.add_argument("--calls", default=None)
    args = parser.parse_args(argv)
    predictor = SlowTruthPredictor(args.delay, args.calls)
    for index in range(args.photos):
        predictor.photo(index)
    settings = ServiceSettings(job_lease_s=args.lease, job_poll_s=args.poll)
    app = create_app(args.db, args.data_dir, predictor=predictor, settings=settings)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
