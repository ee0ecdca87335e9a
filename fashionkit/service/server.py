"""How ``fashionkit serve`` runs the application: uvicorn (its h11 HTTP/1.1 implementation)
with the limits a server exposed to slow or numerous clients needs.

What uvicorn enforces itself, with the values chosen here:

- ``timeout_keep_alive``: an idle kept-alive connection is closed after 5 s;
- ``limit_concurrency``: past that many connections and requests at once, new requests answer
  503 at once instead of queueing without end;
- ``h11_max_incomplete_event_size``: a request line and headers over 16 KiB answer 400.

What it does not: a client that opens a connection and sends its request line and headers
slowly (or nothing) is never timed out by uvicorn. :func:`header_timeout_protocol` adds that:
a connection that has not sent a complete request head within ``header_timeout_s`` of opening,
or of its previous answer, gets 408 and is closed. It extends uvicorn's ``H11Protocol``, which
is not uvicorn's public API: :func:`check_uvicorn_protocol` checks, before the server starts,
that the installed uvicorn still has each method and attribute it relies on, and refuses to
start (naming uvicorn's version) rather than serve without the timeout.

The request body's pace is the application's (:class:`~fashionkit.service.limits.BodySizeLimit`). The total number of open
connections, TLS, and rates per address beyond logins are for a proxy in front.
"""

from __future__ import annotations

import asyncio

import h11
import uvicorn

from fashionkit.errors import FashionkitError

try:
    from uvicorn.protocols.http import h11_impl
except ImportError:  # reported by check_uvicorn_protocol, when a server is configured
    h11_impl = None  # type: ignore[assignment]

__all__ = ["header_timeout_protocol", "server_config", "ServerLimits", "check_uvicorn_protocol"]

#: What :func:`header_timeout_protocol` uses of uvicorn's h11 implementation, by the code object
#: that must name it: the methods it extends (``on_response_complete`` is what uvicorn calls
#: when an answer is sent, from ``handle_events``), and the attributes it reads.
_RELIED_ON = {
    "H11Protocol.__init__": ("loop", "conn", "cycle"),
    "H11Protocol.connection_made": ("transport",),
    "H11Protocol.connection_lost": (),
    "H11Protocol.handle_events": ("on_response_complete",),
    "H11Protocol.on_response_complete": (),
    "RequestResponseCycle.__init__": ("response_complete",),
}


def check_uvicorn_protocol() -> None:
    """Raise :class:`~fashionkit.errors.FashionkitError`, naming the installed uvicorn's version
    and what is missing, unless its ``uvicorn.protocols.http.h11_impl`` has each method and
    attribute in :data:`_RELIED_ON` (read from the methods' code, so no connection is needed)."""
    version = getattr(uvicorn, "__version__", "unknown")
    if h11_impl is None:
        missing = ["the module uvicorn.protocols.http.h11_impl"]
    else:
        missing = []
        for where, names in _RELIED_ON.items():
            class_name, method = where.split(".")
            code = getattr(getattr(getattr(h11_impl, class_name, None), method, None),
                           "__code__", None)  # fmt: skip
            if code is None:
                missing.append(where)
            else:
                missing.extend(f"{where}: {name}" for name in names if name not in code.co_names)
    if not hasattr(h11, "IDLE"):
        missing.append("h11.IDLE")
    if missing:
        raise FashionkitError(
            f"uvicorn {version} is not one the request-head timeout of `fashionkit serve` "
            f"works with (fashionkit.service.server extends its h11 protocol, which lacks: "
            f"{'; '.join(missing)}); install a uvicorn release that has them"
        )

_TIMEOUT_ANSWER = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: 36\r\nconnection: close\r\n\r\nthe request head arrived too slowly\n"
)


def header_timeout_protocol(header_timeout_s: float) -> type[asyncio.Protocol]:
    """uvicorn's h11 protocol, closing connections whose request head takes longer than
    ``header_timeout_s`` (answering 408 first); :func:`check_uvicorn_protocol` first."""
    check_uvicorn_protocol()

    class HeaderTimeoutProtocol(h11_impl.H11Protocol):
        _head_timer: asyncio.TimerHandle | None = None

        def _arm(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
            self._head_timer = self.loop.call_later(header_timeout_s, self._head_too_slow)

        def _head_too_slow(self) -> None:
            self._head_timer = None
            # IDLE on the client's side: no complete request head since the timer was armed
            # (when a head has come, the request is running or answered, and is not cut off).
            if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
                return
            if self.cycle is not None and not self.cycle.response_complete:
                return
            self.transport.write(_TIMEOUT_ANSWER)
            self.transport.close()

        def connection_made(self, transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None
            super().connection_lost(exc)

    return HeaderTimeoutProtocol


class ServerLimits:
    """The server's own limits (see the module docstring); defaults of ``fashionkit serve``."""

    header_timeout_s: float = 10.0
    keep_alive_s: int = 5
    max_concurrency: int = 200
    max_head_bytes: int = 16 * 1024


def server_config(
    app,
    host: str,
    port: int,
    *,
    header_timeout_s: float = ServerLimits.header_timeout_s,
    max_concurrency: int = ServerLimits.max_concurrency,
    log_level: str = "info",
) -> uvicorn.Config:
    """The uvicorn configuration ``fashionkit serve`` runs ``app`` with."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=header_timeout_protocol(header_timeout_s),
        timeout_keep_alive=ServerLimits.keep_alive_s,
        limit_concurrency=max_concurrency,
        h11_max_incomplete_event_size=ServerLimits.max_head_bytes,
        log_level=log_level,
    )
