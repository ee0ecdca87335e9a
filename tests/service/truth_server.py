"""The service as a real process on loopback, detecting with the synthetic world's ground truth.

For tests that kill the server (``kill -9``) and must know exactly which items each photo
yields. ``python -m tests.service.truth_server --port P --db URL --data-dir DIR --photos N
[--delay S]``: photos ``0..N-1`` of :class:`~tests.service.fakes.TruthPredictor` are known;
each detection takes at least ``S`` seconds, so that a kill finds jobs mid-way.
"""

from __future__ import annotations

import argparse
import time

from tests.service.fakes import TruthPredictor


class SlowTruthPredictor(TruthPredictor):
    def __init__(self, delay: float):
        super().__init__()
        self.delay = delay

    def __call__(self, paths, on_error="raise"):
        time.sleep(self.delay)
        return super().__call__(paths, on_error=on_error)


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    from fashionkit.service import create_app

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--db", required=True)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--photos", type=int, default=0)
    parser.add_argument("--delay", type=float, default=0.0)
    args = parser.parse_args(argv)
    predictor = SlowTruthPredictor(args.delay)
    for index in range(args.photos):
        predictor.photo(index)
    app = create_app(args.db, args.data_dir, predictor=predictor)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
