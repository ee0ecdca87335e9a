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
or of its previous answer, gets 408 and is closed. The request body's pace is the
application's (:class:`~fashionkit.service.limits.BodySizeLimit`). The total number of open
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
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = [
    "HeaderTimeoutProtocol",
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


class HeaderTimeoutProtocol(H11Protocol):
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
