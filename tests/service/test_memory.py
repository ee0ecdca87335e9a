"""Memory per pending photo, measured on a running server (a real process; its peak resident
memory from ``/proc``): ten uploads at once of a picture small on the wire and large decoded
(an all-zero 6300×6300 PNG: 113 KiB, 119 MB of pixels, under the 40 MP cap) raise the server's
peak by about what :data:`~fashionkit.service.photos.DECODING_AT_ONCE` decodes take, not ten.
The server used to decode every upload at once on receipt (over 1.3 GB for these ten)."""

from __future__ import annotations

import io
import sys
import threading
from pathlib import Path

import httpx
import pytest
from PIL import Image

from fashionkit.service.photos import DECODING_AT_ONCE

from .live import free_port, start, stop

SIDE = 6300
DECODED = SIDE * SIDE * 3  # RGB bytes of one decoded picture


def _peak_and_now(pid: int) -> tuple[int, int]:
    """Peak and current resident memory of ``pid``, bytes."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return (int(fields["VmHWM"].split()[0]) * 1024, int(fields["VmRSS"].split()[0]) * 1024)


@pytest.mark.slow  # about 15 s alone, a minute on a busy machine
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_ten_decompression_style_uploads_at_once_stay_within_the_stated_bound(tmp_path):
    buffer = io.BytesIO()
    Image.new("RGB", (SIDE, SIDE)).save(buffer, format="PNG")
    bomb = buffer.getvalue()
    assert len(bomb) < 200 * 1024

    port = free_port()
    command = [
        sys.executable, "-m", "tests.service.truth_server", "--port", str(port),
        "--db", f"sqlite:///{tmp_path / 'w.sqlite'}", "--data-dir", str(tmp_path / "data"),
    ]  # fmt: skip
    process = start(command, port, tmp_path / "server.log")
    try:
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=120) as http:
            body = {"name": "alice", "password": "correct horse"}
            assert http.post("/api/users", json=body).status_code == 201
            form = {"username": "alice", "password": "correct horse"}
            token = http.post("/api/token", data=form).json()["access_token"]
            headers = {"Authorization": f"Bearer {token}"}
            # One small upload first, so that what every upload loads once is in the baseline.
            small = io.BytesIO()
            Image.new("RGB", (64, 64)).save(small, format="PNG")
            warm = http.post("/api/photos", files={"file": ("s.png", small.getvalue())},
                             headers=headers)  # fmt: skip
            assert warm.status_code == 202, warm.text
        _, baseline = _peak_and_now(process.pid)

        codes: list[int] = []

        def upload() -> None:
            with httpx.Client(base_url=base, timeout=120) as http:
                files = {"file": ("zeros.png", bomb, "image/png")}
                codes.append(http.post("/api/photos", files=files, headers=headers).status_code)

        threads = [threading.Thread(target=upload) for _ in range(10)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        peak, _ = _peak_and_now(process.pid)
    finally:
        stop(process)
    assert codes == [202] * 10, codes
    growth = peak - baseline
    # The decodes that may run together, and as much again for everything else; ten decodes
    # at once would be 1.2 GB.
    bound = 2 * DECODING_AT_ONCE * DECODED
    print(f"peak growth {growth / 2**20:.0f} MiB for 10 uploads (bound {bound / 2**20:.0f} MiB)")
    assert growth < bound, f"{growth / 2**20:.0f} MiB"
