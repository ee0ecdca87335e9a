"""``fashionkit serve``'s request-head timeout extends uvicorn's h11 protocol, which is not
uvicorn's public API: the check that refuses to start when the installed uvicorn lacks what it
relies on (the timeout itself is tested against a running server in test_request_bodies.py)."""

from __future__ import annotations

import types

import pytest
import uvicorn
from uvicorn.protocols.http import h11_impl

from fashionkit.errors import FashionkitError
from fashionkit.service import server
from fashionkit.service.server import check_uvicorn_protocol, server_config


def test_the_installed_uvicorn_has_what_the_head_timeout_relies_on():
    check_uvicorn_protocol()
    protocol = server_config(lambda: None, "127.0.0.1", 0).http
    assert isinstance(protocol, type) and issubclass(protocol, h11_impl.H11Protocol)


def _without(method: str, attribute: str | None = None) -> types.SimpleNamespace:
    """uvicorn's h11 module as a later release might have it: ``H11Protocol.method`` gone, or
    (with ``attribute``) no longer naming ``attribute``."""

    class Changed(h11_impl.H11Protocol):
        pass

    if attribute is None:
        setattr(Changed, method, None)
    else:
        def replaced(self, *args, **kwargs):  # names none of the relied-on attributes
            return None

        setattr(Changed, method, replaced)
    return types.SimpleNamespace(
        H11Protocol=Changed, RequestResponseCycle=h11_impl.RequestResponseCycle
    )


@pytest.mark.parametrize(
    ("changed", "named"),
    [
        (_without("on_response_complete"), "H11Protocol.on_response_complete"),
        # handle_events no longer calls on_response_complete: the override would never run.
        (_without("handle_events", "on_response_complete"),
         "H11Protocol.handle_events: on_response_complete"),
        (_without("__init__", "conn"), "H11Protocol.__init__: conn"),
        (None, "uvicorn.protocols.http.h11_impl"),
    ],
)  # fmt: skip
def test_a_uvicorn_without_it_refuses_to_start_naming_its_version(monkeypatch, changed, named):
    monkeypatch.setattr(server, "h11_impl", changed)
    with pytest.raises(FashionkitError) as raised:
        server_config(lambda: None, "127.0.0.1", 0)
    message = str(raised.value)
    assert f"uvicorn {uvicorn.__version__} " in message and named in message, message


def test_serve_ends_with_the_message_not_a_traceback(monkeypatch, tmp_path, capsys):
    """``fashionkit serve`` stops before listening, saying why, with exit code 2."""
    from fashionkit.cli import main

    monkeypatch.setattr(server, "h11_impl", _without("connection_made"))
    monkeypatch.setattr(uvicorn.Server, "run", lambda self: pytest.fail("the server ran"))
    monkeypatch.setattr(
        "sys.argv",
        ["fashionkit", "serve", "--port", "0", "--db", f"sqlite:///{tmp_path / 'w.sqlite'}",
         "--data-dir", str(tmp_path / "data")],
    )  # fmt: skip
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert f"uvicorn {uvicorn.__version__}" in err and "connection_made" in err, err
    assert "Traceback" not in err
