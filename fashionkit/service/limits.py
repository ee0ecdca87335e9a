"""Limits of the service: ASGI middleware for requests refused before any route sees them
(bodies over a cap, paths with encoded separators) and the headers every answer carries, and
:class:`LoginThrottle`, which slows password guessing and account creation for every process
on the database alike.

Starlette spools a multipart upload to a temporary file while it parses it, before the route
can look at the size; without this cap a client could fill the disk with one request. Bodies
with a ``Content-Length`` over the cap are refused at once; chunked bodies are counted as they
arrive and refused when they pass it. Either way the answer is 413 with a JSON ``detail``.
A body that stops arriving (no bytes for ``idle_timeout_s``) or takes longer than
``total_timeout_s`` in all is refused with 408, so a slow client cannot hold a request, and
what it sent so far, for ever. (The request line and headers come before the application sees
anything: their timeouts are the server's, see ``docs/wardrobe-and-service.md``.)
"""

import asyncio
import hashlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import delete, select
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fashionkit.errors import ConflictError
from fashionkit.wardrobe.database import WardrobeDatabase
from fashionkit.wardrobe.models import ThrottleRow

__all__ = [
    "BodySizeLimit",
    "EncodedSeparators",
    "SecurityHeaders",
    "LoginThrottle",
    "ThrottleRules",
]


async def _answer(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class SecurityHeaders:
    """ASGI middleware: ``X-Content-Type-Options: nosniff`` on every answer (a browser must not
    run an uploaded picture or a JSON answer as a script or page), and ``Cache-Control:
    no-store`` on the answers of requests that carry credentials and on those that hand them
    out (``no_store_paths``: login and registration), so that no browser or proxy cache keeps
    a person's token or wardrobe. Headers a route set itself are kept."""

    def __init__(self, app: ASGIApp, no_store_paths: frozenset[str] = frozenset()):
        self.app = app
        self.no_store_paths = no_store_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        private = scope["path"].rstrip("/") in self.no_store_paths or any(
            name == b"authorization" for name, _ in scope["headers"]
        )

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                if b"x-content-type-options" not in present:
                    headers.append((b"x-content-type-options", b"nosniff"))
                if private and b"cache-control" not in present:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


class EncodedSeparators:
    """ASGI middleware: 404 for a path with an encoded ``/`` or ``\\`` (``%2F``, ``%5C``).

    The server decodes them before routing, so ``/api/items/x%2Fcutout`` would be
    ``/api/items/x/cutout``, another route over another item. No id may hold either character
    (:func:`fashionkit.wardrobe.items.id_problem`), so such a path names nothing."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            raw = (scope.get("raw_path") or b"").lower()
            if b"%2f" in raw or b"%5c" in raw:
                await _answer(send, 404, "no such path (an encoded '/' or '\\' names nothing)")
                return
        await self.app(scope, receive, send)


class BodySizeLimit:
    """ASGI middleware: request bodies of at most ``per_path[path]`` bytes, or ``max_bytes``
    for paths not listed, arriving with no pause over ``idle_timeout_s`` and whole within
    ``total_timeout_s``."""

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        per_path: dict[str, int] | None = None,
        *,
        idle_timeout_s: float = 30.0,
        total_timeout_s: float = 300.0,
    ):
        self.app = app
        self.max_bytes = max_bytes
        self.per_path = dict(per_path or {})
        self.idle_timeout_s = idle_timeout_s
        self.total_timeout_s = total_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.per_path.get(scope["path"].rstrip("/"), self.max_bytes)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None:
            if not length.isdigit():
                await _answer(send, 400, "invalid Content-Length")
                return
            if int(length) > limit:
                await _answer(send, 413, f"request body over {limit} bytes")
                return
        received = 0
        complete = False
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.total_timeout_s

        async def counted() -> Message:
            nonlocal received, complete
            if complete:
                # After the body only a disconnect can come, and a streaming answer waits
                # for it as long as it streams: no timeout.
                return await receive()
            timeout = min(self.idle_timeout_s, deadline - loop.time())
            try:
                message = await asyncio.wait_for(receive(), timeout=max(timeout, 0.0))
            except TimeoutError:
                # Routes and FastAPI's body parsing let an HTTPException through unchanged.
                raise HTTPException(
                    408, "the request body arrived too slowly; send it again"
                ) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise HTTPException(413, f"request body over {limit} bytes")
                complete = not message.get("more_body", False)
            return message

        await self.app(scope, counted, send)


@dataclass(frozen=True)
class ThrottleRules:
    """How :class:`LoginThrottle` slows password guessing and account creation.

    Logins: after ``free_account_failures`` wrong passwords for one account (or
    ``free_client_failures`` from one client address, whichever account they name), each
    further attempt must wait twice as long as the one before, from 1 s up to
    ``max_wait_s``; earlier attempts answer 429 with ``Retry-After`` and are not checked at
    all (so they cost no scrypt hash either). A correct password clears its account's count
    (not the client's: one's own account must not reset the guessing of others'); counts are
    forgotten ``forget_after_s`` after their last failure. With the defaults an account meets
    at most about 100 guesses a day from any number of clients and service processes.

    Registrations: at most ``registrations_per_window`` accounts per client address in any
    ``window_s`` seconds (each costs a scrypt hash and a wardrobe).

    ``clock``: seconds since the epoch, read alike by every process sharing the counts."""

    free_account_failures: int = 5
    free_client_failures: int = 20
    max_wait_s: float = 15 * 60
    forget_after_s: float = 24 * 3600
    registrations_per_window: int = 60
    window_s: float = 3600
    clock: Callable[[], float] = time.time

    def wait_after(self, failures: int, last_s: float, free: int, now: float) -> float:
        """Seconds still to wait after ``failures`` wrong passwords, the last at ``last_s``."""
        if now - last_s > self.forget_after_s or failures < free:
            return 0.0
        wait = min(2.0 ** (failures - free), self.max_wait_s)
        return max(0.0, last_s + wait - now)


# Longest key the throttle's table holds; longer names and addresses are stored hashed.
_MAX_KEY = 255
# Seconds between deletions of forgotten counts, per process.
_PRUNE_EVERY_S = 60.0


def _key(kind: str, value: str) -> str:
    key = f"{kind}:{value}"
    if len(key) <= _MAX_KEY:
        return key
    return f"{kind}:sha256:{hashlib.sha256(value.encode('utf-8', 'replace')).hexdigest()}"


class LoginThrottle:
    """Slows password guessing and account creation as ``rules`` say (:class:`ThrottleRules`),
    with the counts in the wardrobe database (``service_throttle``,
    :class:`~fashionkit.wardrobe.models.ThrottleRow`), so that every service process on it
    sees the same counts and N processes allow the rate of one.

    Each change of a count is one write transaction that reads and writes its row with no
    other writer between (:meth:`~fashionkit.wardrobe.database.WardrobeDatabase.writing`), so
    failures from several processes at once are all counted. Counts past ``forget_after_s``
    (registrations past ``window_s``) are deleted, so the table holds at most a day's worth of
    names and addresses."""

    def __init__(self, database: WardrobeDatabase, rules: ThrottleRules | None = None):
        self.database = database
        self.rules = rules or ThrottleRules()
        self._next_prune = 0.0

    def _rows(self, keys: list[str]) -> dict[str, ThrottleRow]:
        with self.database.sessions() as session:
            rows = session.scalars(select(ThrottleRow).where(ThrottleRow.key.in_(keys)))
            return {row.key: row for row in rows}

    def _change(self, key: str, change: Callable[[ThrottleRow, float], int]) -> int:
        """Run ``change(row, now)`` on ``key``'s row (a new one with no failures and no
        times when there is none) in one locked write transaction; its result."""
        for attempt in range(3):
            try:
                with self.database.writing() as session:
                    now = self.rules.clock()
                    row = session.scalar(
                        select(ThrottleRow).where(ThrottleRow.key == key).with_for_update()
                    )
                    if row is None:
                        row = ThrottleRow(key=key, failures=0, last_s=now)
                        session.add(row)
                    return change(row, now)
            except ConflictError:  # another process inserted the row first: update it
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _prune(self, now: float) -> None:
        if now < self._next_prune:
            return
        self._next_prune = now + _PRUNE_EVERY_S
        horizon = now - max(self.rules.forget_after_s, self.rules.window_s)
        with self.database.engine.begin() as connection:
            connection.execute(delete(ThrottleRow).where(ThrottleRow.last_s < horizon))

    def login_wait(self, name: str, client: str) -> int:
        """Seconds until a login for account ``name`` (normalised) from ``client`` may be
        tried; 0 when it may be now."""
        rules = self.rules
        account, address = _key("account", name), _key("client", client)
        rows = self._rows([account, address])
        now = rules.clock()
        wait = 0.0
        for key, free in ((account, rules.free_account_failures),
                          (address, rules.free_client_failures)):  # fmt: skip
            if key in rows:
                wait = max(wait, rules.wait_after(rows[key].failures, rows[key].last_s, free, now))
        return math.ceil(wait)

    def login_failed(self, name: str, client: str) -> None:
        forget = self.rules.forget_after_s

        def count(row: ThrottleRow, now: float) -> int:
            row.failures = 1 if now - row.last_s > forget else row.failures + 1
            row.last_s = now
            return row.failures

        for key in (_key("account", name), _key("client", client)):
            self._change(key, count)
        self._prune(self.rules.clock())

    def login_succeeded(self, name: str) -> None:
        with self.database.engine.begin() as connection:
            connection.execute(
                delete(ThrottleRow).where(ThrottleRow.key == _key("account", name))
            )

    def registration_wait(self, client: str) -> int:
        """Seconds until ``client`` may register another account (0: now, and counted)."""
        rules = self.rules

        def register(row: ThrottleRow, now: float) -> int:
            times = [t for t in (row.times or []) if now - t < rules.window_s]
            if len(times) >= rules.registrations_per_window:
                return max(1, math.ceil(times[0] + rules.window_s - now))
            row.times, row.last_s = [*times, now], now
            return 0

        wait = self._change(_key("register", client), register)
        self._prune(rules.clock())
        return wait
