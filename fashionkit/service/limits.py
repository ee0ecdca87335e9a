"""ASGI middleware of the service: requests refused before any route sees them (bodies over a
cap, paths with encoded separators) and the headers every answer carries.

Starlette spools a multipart upload to a temporary file while it parses it, before the route
can look at the size; without this cap a client could fill the disk with one request. Bodies
with a ``Content-Length`` over the cap are refused at once; chunked bodies are counted as they
arrive and refused when they pass it. Either way the answer is 413 with a JSON ``detail``.
"""

import json

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["BodySizeLimit", "EncodedSeparators", "SecurityHeaders"]


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
    for paths not listed."""

    def __init__(self, app: ASGIApp, max_bytes: int, per_path: dict[str, int] | None = None):
        self.app = app
        self.max_bytes = max_bytes
        self.per_path = dict(per_path or {})

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

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # Routes and FastAPI's body parsing let an HTTPException through unchanged.
                    raise HTTPException(413, f"request body over {limit} bytes")
            return message

        await self.app(scope, counted, send)
