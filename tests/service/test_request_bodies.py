"""Request bodies against a running server (uvicorn on loopback, raw sockets): nothing of an
upload is read before its login is checked, size caps hold while a body arrives, and a body
that stops or trickles is cut off. Each test is bounded by socket timeouts of a few seconds."""

from __future__ import annotations

import socket
import threading
import time

import pytest
import uvicorn

from fashionkit.service import ServiceSettings, create_app
from fashionkit.service.server import server_config

from .fakes import TruthPredictor
from .live import free_port

IDLE_S, TOTAL_S, HEAD_S = 1.0, 3.0, 1.5


@pytest.fixture
def server(db_url, tmp_path):
    settings = ServiceSettings(
        body_idle_timeout_s=IDLE_S, body_timeout_s=TOTAL_S, max_import_bytes=256 * 1024
    )
    app = create_app(db_url, tmp_path / "data", predictor=TruthPredictor(), settings=settings)
    port = free_port()
    # As `fashionkit serve` runs it, with a shorter head timeout.
    config = server_config(
        app, "127.0.0.1", port, header_timeout_s=HEAD_S, max_concurrency=20, log_level="warning"
    )
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not running.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.05)
    try:
        yield port
    finally:
        running.should_exit = True
        thread.join(timeout=20)


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.settimeout(10)
    return sock


def _status(sock: socket.socket) -> tuple[int, bytes]:
    """The status of the answer on ``sock`` and what came of its body (up to 64 KiB)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 "), data[:200]
    length = next(
        (int(line.split(b":")[1]) for line in head.lower().split(b"\r\n")
         if line.startswith(b"content-length:")),
        0,
    )  # fmt: skip
    while len(body) < min(length, 65536):
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(head.split(b" ")[1]), body


def _token(port: int) -> str:
    import httpx

    base = f"http://127.0.0.1:{port}"
    body = {"name": "alice", "password": "correct horse"}
    assert httpx.post(f"{base}/api/users", json=body).status_code == 201
    form = {"username": "alice", "password": "correct horse"}
    return httpx.post(f"{base}/api/token", data=form).json()["access_token"]


def _head(path: str, length: int | None, extra: str = "", content_type: str | None = None):
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines.append(f"Content-Type: {content_type or 'multipart/form-data; boundary=BOUNDARY'}")
    lines.append(f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked")
    return ("\r\n".join(lines) + "\r\n" + extra + "\r\n").encode()


MULTIPART_START = (
    b"--BOUNDARY\r\nContent-Disposition: form-data; name=\"file\"; filename=\"p.png\"\r\n"
    b"Content-Type: image/png\r\n\r\n"
)


@pytest.mark.parametrize("authorization", ["", "Authorization: Bearer forged.token\r\n"])
def test_an_upload_without_a_valid_login_is_refused_before_its_body(server, authorization):
    """10 MiB announced, 64 KiB sent: the 401 comes without the rest (the route used to parse
    the whole multipart body, spooling it, before the login was checked)."""
    with _connect(server) as sock:
        sock.sendall(_head("/api/photos", 10 * 1024 * 1024, authorization))
        sock.sendall(MULTIPART_START + b"\0" * 65536)
        started = time.monotonic()
        status, _ = _status(sock)
    assert status == 401
    assert time.monotonic() - started < IDLE_S  # answered at once, not after a body timeout


def test_an_import_without_a_login_is_refused_before_its_body(server):
    with _connect(server) as sock:
        sock.sendall(_head("/api/wardrobe/import", 200_000, content_type="application/json"))
        sock.sendall(b'{"items": [' + b" " * 1000)
        status, _ = _status(sock)
    assert status == 401


def test_an_announced_body_over_the_cap_is_refused_unread(server):
    token = _token(server)
    with _connect(server) as sock:
        sock.sendall(_head("/api/photos", 200 * 1024 * 1024, f"Authorization: Bearer {token}\r\n"))
        status, body = _status(sock)
    assert status == 413 and b"over" in body


def test_a_chunked_body_is_counted_while_it_arrives(server):
    """No Content-Length: the 413 comes once the cap (256 KiB here) is passed, while the
    client is still sending."""
    token = _token(server)
    with _connect(server) as sock:
        sock.sendall(
            _head(
                "/api/wardrobe/import", None, f"Authorization: Bearer {token}\r\n",
                content_type="application/json",
            )
        )  # fmt: skip
        sent = 0
        chunk = b" " * 32768
        try:
            while sent < 100 * 1024 * 1024:  # far more than the cap: the server stops it
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
                sock.setblocking(False)
                try:
                    if sock.recv(1, socket.MSG_PEEK):
                        break
                except BlockingIOError:
                    pass
                finally:
                    sock.setblocking(True)
                    sock.settimeout(10)
        except (BrokenPipeError, ConnectionResetError):
            pass
        status, body = _status(sock)
    assert status == 413, body
    assert sent < 32 * 1024 * 1024  # the cap plus what the sockets buffer, not the 100 MiB


def test_a_body_that_stops_arriving_is_cut_off(server):
    token = _token(server)
    with _connect(server) as sock:
        sock.sendall(_head("/api/photos", 100_000, f"Authorization: Bearer {token}\r\n"))
        sock.sendall(MULTIPART_START + b"\0" * 100)
        started = time.monotonic()
        status, body = _status(sock)
    waited = time.monotonic() - started
    assert status == 408 and b"too slowly" in body
    assert IDLE_S * 0.9 <= waited < IDLE_S + 2


def test_a_body_that_trickles_is_cut_off_at_the_total_timeout(server):
    """A byte every half second never pauses past the idle timeout; the whole-body limit ends
    it."""
    token = _token(server)
    with _connect(server) as sock:
        sock.sendall(_head("/api/photos", 100_000, f"Authorization: Bearer {token}\r\n"))
        sock.sendall(MULTIPART_START)
        started = time.monotonic()
        sock.setblocking(False)
        answered = b""
        while time.monotonic() - started < TOTAL_S + 3 and not answered:
            try:
                sock.sendall(b"\0")
            except (BrokenPipeError, ConnectionResetError, BlockingIOError):
                break
            time.sleep(0.5)
            try:
                answered = sock.recv(1, socket.MSG_PEEK)
            except BlockingIOError:
                pass
        sock.setblocking(True)
        sock.settimeout(10)
        status, _ = _status(sock)
    assert status == 408
    assert TOTAL_S * 0.9 <= time.monotonic() - started < TOTAL_S + 3


@pytest.mark.parametrize("sent", [b"", b"GET /api/me HTTP/1.1\r\nHost: 127.0.0.1\r\n"])
def test_a_request_head_that_never_ends_is_cut_off(server, sent):
    """Nothing, or a request line and a header and then silence: 408 and closed after the
    head timeout (uvicorn alone waits for ever)."""
    with _connect(server) as sock:
        sock.sendall(sent)
        started = time.monotonic()
        status, _ = _status(sock)
        assert sock.recv(1) == b""  # closed
    assert status == 408
    assert HEAD_S * 0.9 <= time.monotonic() - started < HEAD_S + 2


def test_a_kept_alive_connection_gets_the_head_timeout_again(server):
    """After one answer on a kept-alive connection, a second head that stalls is cut off too;
    the first request, answered in time, is not."""
    with _connect(server) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert _status(sock)[0] == 200
        sock.sendall(b"GET /health HTTP/1.1\r\n")
        started = time.monotonic()
        status, _ = _status(sock)
    assert status == 408 and time.monotonic() - started < HEAD_S + 2


def test_a_slow_route_is_not_cut_off_by_the_head_timeout(server):
    """The head timer ends with the head: a request whose answer takes longer than the head
    timeout is answered (here: a login, whose scrypt and the throttle's checks are quick, so
    the wait is made by sending the body slowly within the idle limit)."""
    with _connect(server) as sock:
        body = b"username=nobody&password=wrongwrong"
        sock.sendall(
            b"POST /api/token HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body)
        )
        for start in range(0, len(body), 8):
            sock.sendall(body[start : start + 8])
            time.sleep(HEAD_S / 3)
        status, _ = _status(sock)
    assert status == 401
