"""Helpers for tests that run the service as a real process on loopback."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_command(tmp_path: Path, port: int, *extra: str) -> list[str]:
    """``fashionkit serve`` on ``127.0.0.1:port`` with its database and data under
    ``tmp_path``."""
    return [
        sys.executable, "-m", "fashionkit.cli", "serve", "--host", "127.0.0.1",
        "--port", str(port), "--db", f"sqlite:///{tmp_path / 'w.sqlite'}",
        "--data-dir", str(tmp_path / "data"), *extra,
    ]  # fmt: skip


def start(command: list[str], port: int, log: Path, timeout: float = 60.0) -> subprocess.Popen:
    """Start ``command`` (its output appended to ``log``: a pipe nobody reads would block
    the server once full) and wait until ``/health`` answers."""
    with open(log, "ab") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the server exited ({process.returncode}):\n{log.read_text()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise AssertionError(f"the server did not start in {timeout:.0f} s:\n{log.read_text()}")


def stop(process: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    process.send_signal(sig)
    try:
        process.wait(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def all_pages(http, path: str) -> list[dict]:
    """Every entry of a list route, page after page (``Link: <…>; rel="next"``); ``http``: an
    httpx or test client with the credentials."""
    entries: list[dict] = []
    url: str | None = f"{path}{'&' if '?' in path else '?'}limit=1000"
    while url:
        response = http.get(url)
        assert response.status_code == 200, response.text
        entries.extend(response.json())
        link = response.headers.get("link")
        url = link.split(">")[0].lstrip("<") if link else None
    assert len(entries) == int(response.headers["x-total-count"])
    return entries
