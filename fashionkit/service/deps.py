"""What the routes depend on, in one place: the service's settings and parts
(:class:`ServiceState`, built once by :func:`~fashionkit.service.app.create_app`), the logged-in
account and that person's wardrobe, and the photo worker when detection is available.

Routes take these as FastAPI dependencies (``State``, ``CurrentAccount``, ``CurrentWardrobe``), so no route reaches another person's data except through its own account.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Query, Request, Response
from fastapi.security import OAuth2PasswordBearer

from fashionkit.service.auth import Account, Accounts, TokenSigner
from fashionkit.service.photos import LEASE_S, POLL_S, JobStore, PhotoWorker
from fashionkit.wardrobe.database import Wardrobe, WardrobeDatabase

__all__ = [
    "ServiceSettings",
    "ServiceState",
    "State",
    "CurrentAccount",
    "CurrentWardrobe",
    "need_detection",
    "current_account",
    "ListPage",
    "Page",
    "paged",
    "room_for_items",
    "DEFAULT_PAGE",
    "MAX_PAGE",
]


@dataclass(frozen=True)
class ServiceSettings:
    """Limits of the service. ``max_upload_bytes``: a photo upload's size; ``max_pixels``: its
    width × height; ``max_import_bytes``: a wardrobe import's size; ``max_json_bytes``: any
    other request body; ``token_ttl_s``: how long a login lasts; ``min_score``: detections
    below it do not become items; ``max_waiting_photos``: a person's uploads waiting for or in
    detection (more answer 429, so that nobody fills the disk or the queue);
    ``body_idle_timeout_s``: the longest pause in a request body; ``body_timeout_s``: the
    longest a whole request body may take (408 beyond either); ``max_items``: the items one
    person's wardrobe may hold (adding, importing or uploading past it answers 422);
    ``import_batch``: items stored per transaction by an import, so that a large one does not
    hold the writer lock for its whole length; ``job_lease_s``, ``job_poll_s``: how long a
    photo job stays with a process that stopped renewing it, and how often a process looks for
    jobs it was not told of (:class:`~fashionkit.service.photos.PhotoWorker`);
    ``teach_minutes``, ``teach_min_photos``, ``teach_max_steps``: a "teach my model" job's time
    budget, the corrected photos it needs, and at most how many training steps it takes
    (``None``: as many as the budget allows)."""

    max_upload_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 40_000_000
    max_import_bytes: int = 10 * 1024 * 1024
    max_json_bytes: int = 1024 * 1024
    token_ttl_s: float = 7 * 24 * 3600
    min_score: float = 0.5
    max_waiting_photos: int = 20
    body_idle_timeout_s: float = 30.0
    body_timeout_s: float = 300.0
    max_items: int = 10_000
    import_batch: int = 500
    job_lease_s: float = LEASE_S
    job_poll_s: float = POLL_S
    # "Teach my model" (fashionkit.personal.teaching): each job's wall-time budget, the
    # corrected photos it needs, and a cap on its training steps (None: the budget alone).
    teach_minutes: float = 5.0
    teach_min_photos: int = 5
    teach_max_steps: int | None = None


@dataclass
class ServiceState:
    """The parts of one running service. ``database``: the one engine of the process, every
    person's wardrobe a view of it; ``worker`` is ``None`` without a model."""

    settings: ServiceSettings
    data_dir: Path
    database: WardrobeDatabase
    accounts: Accounts
    signer: TokenSigner
    jobs: JobStore
    predictor: Any
    worker: PhotoWorker | None
    # Each person's own model: their versions' files and the teaching jobs (None: the service
    # has no base model to teach from).
    models_dir: Path | None = None
    teaching: Any = None

    def wardrobe_for(self, user_id: int) -> Wardrobe:
        """The wardrobe of the account ``user_id`` (:class:`NotFoundError` when it has none)."""
        from fashionkit.errors import NotFoundError

        account = self.accounts.get(user_id)
        if account is None:
            raise NotFoundError("user", user_id)
        return self.database.wardrobe(account.name, user_id=account.user_id)


def _state(request: Request) -> ServiceState:
    return request.app.state.service


State = Annotated[ServiceState, Depends(_state)]

_oauth2 = OAuth2PasswordBearer(tokenUrl="/api/token")


def current_account(state: State, token: Annotated[str, Depends(_oauth2)]) -> Account:
    claims = state.signer.claims(token)
    account = state.accounts.get(claims[0]) if claims is not None else None
    # A token from before the account's last password change or sign-out is of an older
    # generation: it no longer authenticates.
    if account is None or claims is None or account.generation != claims[1]:
        raise HTTPException(
            401, "invalid or expired token", headers={"WWW-Authenticate": "Bearer"}
        )
    return account


CurrentAccount = Annotated[Account, Depends(current_account)]


def _current_wardrobe(state: State, account: CurrentAccount) -> Wardrobe:
    # A view over the process's one engine: nothing to close per request.
    return state.database.wardrobe(account.name, user_id=account.user_id)


CurrentWardrobe = Annotated[Wardrobe, Depends(_current_wardrobe)]


#: Entries a list answers with unless ``limit`` says otherwise, and the most it may ask for.
DEFAULT_PAGE = 200
MAX_PAGE = 1000


@dataclass(frozen=True)
class Page:
    """``?limit=&offset=`` of a list route: at most ``limit`` entries from the ``offset``-th."""

    limit: int
    offset: int


def _page(
    limit: int = Query(DEFAULT_PAGE, ge=1, le=MAX_PAGE, description="Entries in this page."),
    offset: int = Query(0, ge=0, le=10**9, description="Entries skipped before this page."),
) -> Page:
    return Page(limit, offset)


ListPage = Annotated[Page, Depends(_page)]


def paged(request: Request, response: Response, page: Page, total: int) -> None:
    """Headers of a page of a list: ``X-Total-Count`` (entries in the whole list) and, when
    more follow, ``Link: <next page>; rel="next"``."""
    response.headers["X-Total-Count"] = str(total)
    if page.offset + page.limit < total:
        following = request.url.include_query_params(
            limit=page.limit, offset=page.offset + page.limit
        )
        response.headers["Link"] = f'<{following.path}?{following.query}>; rel="next"'


def room_for_items(state: ServiceState, wardrobe: Wardrobe, adding: int) -> None:
    """:class:`~fashionkit.errors.LimitError` (422) when ``adding`` more items would take the
    wardrobe past ``max_items`` (:meth:`~fashionkit.wardrobe.database.Wardrobe.check_room`)."""
    wardrobe.check_room(adding, state.settings.max_items)


def need_detection(state: ServiceState) -> PhotoWorker:
    """The photo worker; 503 when the service runs without a model. Called in the route's body,
    after the upload has been validated, as a client without a file gets 422 either way."""
    if state.worker is None:
        raise HTTPException(
            503,
            "photo detection is not available: the server was started without a model "
            "(fashionkit serve --weights CHECKPOINT); items can still be added by hand",
        )
    return state.worker
