"""How ``fashionkit serve`` runs the application: uvicorn (its h11 HTTP/1.1 implementation)
with the limits a server exposed to slow or numerous clients needs.

What uvicorn enforces itself, with the values chosen here:

- ``timeout_keep_alive``: an idle kept-alive connection is closed after 5 s;
- ``limit_concurrency``: past that many connections and requests at once, new requests answer
  503 at once instead of queueing without end;
- ``h11_max_incomplete_event_size``: a request line and headers over 16 KiB answer 400.

What it does not: a client that opens a connection and sends its request line and headers
slowly (or nothing) is never timed out by uvicorn. :class:`HeaderTimeoutProtocol` adds that:
a connection that has not sent a complete request head within ``header_timeout_s`` of opening,
or of its previous answer, gets 408 and is closed. It extends uvicorn's ``H11Protocol``, which
is not uvicorn's public API: :func:`check_uvicorn_protocol` checks, before the server starts,
that the installed uvicorn still has each method and attribute it relies on, and refuses to
start (naming uvicorn's version) rather than serve without the timeout.

The request body's pace is the application's (:class:`~fashionkit.service.limits.BodySizeLimit`). The total number of open
connections, TLS, and rates per address beyond logins are for a proxy in front.

Several processes (``serve --workers N``): uvicorn's own supervisor binds the one address and
starts N processes that accept on it, restarting any that dies. Each builds its application
with :func:`app_from_environment` from the :class:`ServiceOptions` the parent put in the
environment (a started process cannot be handed an application object), and runs its own
photo worker; the processes share jobs, logins and the login throttle through the database
(:mod:`fashionkit.service.photos`). The limits above hold per process.
"""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import asdict, dataclass, field

import h11
import uvicorn

from fashionkit.errors import FashionkitError

try:
    from uvicorn.protocols.http import h11_impl
except ImportError:  # reported by check_uvicorn_protocol, when a server is configured
    h11_impl = None  # type: ignore[assignment]


#: What :class:`HeaderTimeoutProtocol` uses of uvicorn's h11 implementation, by the code object
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
__all__ = [
    "HeaderTimeoutProtocol",
    "check_uvicorn_protocol",
    "ServiceConfig",
    "ServiceOptions",
    "app_from_environment",
    "run",
    "server_config",
    "ServerLimits",
    "OPTIONS_VARIABLE",
]

_TIMEOUT_ANSWER = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: 36\r\nconnection: close\r\n\r\nthe request head arrived too slowly\n"
)
#: The environment variable holding a worker process's :class:`ServiceOptions` (JSON).
OPTIONS_VARIABLE = "FASHIONKIT_SERVICE_OPTIONS"


class ServiceConfig(uvicorn.Config):
    """uvicorn's configuration with the header timeout of :class:`HeaderTimeoutProtocol`
    (a class of its own, so that it reaches worker processes with the rest)."""

    def __init__(self, *args, header_timeout_s: float, **kwargs):
        super().__init__(*args, **kwargs)
        self.header_timeout_s = header_timeout_s


# A class of the module (worker processes import it by name); its base is what the installed
# uvicorn has, and check_uvicorn_protocol refuses to serve with it when that lacks a piece.
_H11Base: type = h11_impl.H11Protocol if h11_impl is not None else asyncio.Protocol


class HeaderTimeoutProtocol(_H11Base):  # type: ignore[valid-type,misc]
    """uvicorn's h11 protocol, closing connections whose request head takes longer than the
    configuration's ``header_timeout_s`` (answering 408 first)."""

    _head_timer: asyncio.TimerHandle | None = None

    def _arm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
        timeout = getattr(self.config, "header_timeout_s", ServerLimits.header_timeout_s)
        self._head_timer = self.loop.call_later(timeout, self._head_too_slow)

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


class ServerLimits:
    """The server's own limits (see the module docstring); defaults of ``fashionkit serve``."""

    header_timeout_s: float = 10.0
    keep_alive_s: int = 5
    max_concurrency: int = 200
    max_head_bytes: int = 16 * 1024


@dataclass(frozen=True)
class ServiceOptions:
    """What :func:`~fashionkit.service.create_app` is given, in a form that travels to worker
    processes (JSON in :data:`OPTIONS_VARIABLE`): the database URL, the data folder, the
    checkpoint (``None``: no detection), its device, the
    :class:`~fashionkit.service.ServiceSettings` fields that differ from the defaults, and
    whether Swagger UI is served."""

    db_url: str
    data_dir: str
    weights: str | None = None
    device: str = "cpu"
    settings: dict = field(default_factory=dict)
    api_docs: bool = False

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ServiceOptions:
        return cls(**json.loads(text))

    def create_app(self):
        from fashionkit.service import ServiceSettings, create_app

        return create_app(
            self.db_url,
            self.data_dir,
            self.weights,
            device=self.device,
            settings=ServiceSettings(**self.settings),
            api_docs=self.api_docs,
        )


def app_from_environment():
    """The application of a worker process, from the :class:`ServiceOptions` in
    :data:`OPTIONS_VARIABLE` (uvicorn's ``factory``)."""
    text = os.environ.get(OPTIONS_VARIABLE)
    if not text:
        raise RuntimeError(f"{OPTIONS_VARIABLE} is not set: start workers with `fashionkit serve`")
    return ServiceOptions.from_json(text).create_app()


def server_config(
    app,
    host: str,
    port: int,
    *,
    header_timeout_s: float = ServerLimits.header_timeout_s,
    max_concurrency: int = ServerLimits.max_concurrency,
    log_level: str = "info",
    workers: int = 1,
) -> ServiceConfig:
    """The uvicorn configuration ``fashionkit serve`` runs ``app`` with: an application, or,
    with ``workers`` over 1, a :class:`ServiceOptions` (set into the environment here, for the
    worker processes to build their application from)."""
    factory = False
    if isinstance(app, ServiceOptions):
        os.environ[OPTIONS_VARIABLE] = app.to_json()
        app, factory = f"{__name__}:app_from_environment", True
    elif workers > 1:
        raise ValueError("several workers build their application from ServiceOptions")
    check_uvicorn_protocol()
    return ServiceConfig(
        app,
        host=host,
        port=port,
        http=HeaderTimeoutProtocol,
        header_timeout_s=header_timeout_s,
        timeout_keep_alive=ServerLimits.keep_alive_s,
        limit_concurrency=max_concurrency,
        h11_max_incomplete_event_size=ServerLimits.max_head_bytes,
        log_level=log_level,
        workers=workers,
        factory=factory,
    )


def run(config: ServiceConfig) -> None:
    """Serve until stopped: in this process, or in ``config.workers`` processes on one
    socket under uvicorn's supervisor (which restarts a worker that dies)."""
    if config.workers > 1:
        from uvicorn.supervisors import Multiprocess

        Multiprocess(config, sockets=[config.bind_socket()]).run()
    else:
        uvicorn.Server(config).run()
