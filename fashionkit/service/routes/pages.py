"""The browser page, its script and icon, and the health check."""

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from fashionkit.service import ui
from fashionkit.service.deps import State

router = APIRouter()


@router.get("/", include_in_schema=False)
def page() -> HTMLResponse:
    return HTMLResponse(ui.PAGE, headers={"Content-Security-Policy": ui.CSP})


@router.get("/ui.js", include_in_schema=False)
def page_script() -> Response:
    # X-Content-Type-Options for every answer: service.limits.SecurityHeaders.
    return Response(ui.SCRIPT, media_type="text/javascript")


@router.get("/favicon.svg", include_in_schema=False)
def page_icon() -> Response:
    return Response(ui.ICON, media_type="image/svg+xml")


@router.get("/health")
def health(state: State) -> dict:
    return {"status": "ok", "detection": state.predictor is not None}
