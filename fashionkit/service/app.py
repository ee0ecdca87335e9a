"""The FastAPI application: REST routes over the wardrobe, outfits and ingest libraries.

:func:`create_app` composes the routers of :mod:`fashionkit.service.routes` (one per resource)
with the parts they depend on (:mod:`fashionkit.service.deps`): one database engine for the
process, the accounts, the photo jobs and their worker. fashionkit's errors become HTTP answers
here, once: :class:`~fashionkit.errors.InvalidDataError` 422 with its problems,
:class:`~fashionkit.errors.NotFoundError` 404, :class:`~fashionkit.errors.ConflictError` 409,
:class:`~fashionkit.errors.LimitError` 422, :class:`~fashionkit.errors.BusyError` 429 with
``Retry-After``.

Every ``/api`` route but registration and login needs ``Authorization: Bearer <token>`` (from
``POST /api/token``) and sees only that person's wardrobe: another person's item, photo or
outfit answers 404, as an unknown one does. Errors are JSON ``{"detail": message}`` (422 from
request validation lists the fields); invalid item data answers 422 with ``"problems"``, one
per wrong field. The OpenAPI description is at ``/openapi.json``; the interactive
documentation (Swagger UI at ``/docs``) only with ``api_docs=True`` (``serve --api-docs``), as
its page loads its scripts from a CDN into the service's origin.

Every answer carries ``X-Content-Type-Options: nosniff``; answers to requests with credentials,
and those of login and registration, ``Cache-Control: no-store``
(:class:`~fashionkit.service.limits.SecurityHeaders`).

Routes::

    GET    /health                         {"status": "ok", "detection": bool}
    GET    /  and  /ui.js, /favicon.svg    the browser page (fashionkit.service.ui)
    GET    /api/categories                 garment and accessory categories (no login needed)
    POST   /api/users                      {"name", "password"} → 201 {"id", "name"}; 409 taken,
                                           429 past the registrations of an address an hour
    POST   /api/token                      OAuth2 password form → {"access_token", "token_type"};
                                           429 + Retry-After after repeated wrong passwords
    GET    /api/me                         {"id", "name"}
    POST   /api/me/password                {"current_password", "new_password"} → new token;
                                           every earlier token of the account ends (403 wrong)
    POST   /api/logout                     204; every token of the account ends
    POST   /api/items                      wardrobe item JSON → 201 item; 409 id taken,
                                           422 past the wardrobe's most items
    GET    /api/items                      ?category=&season=&occasion=&favorite= → [item]
                                           (lists: ?limit= ≤ 1000, default 200, &offset=;
                                           X-Total-Count, Link rel="next")
    GET    /api/items/{id}                 item (+ "category_name", "supercategory", "cutout_url")
    PATCH  /api/items/{id}                 {field: value | null, "id": new id} → item; 409 new
                                           id taken (concurrent edits all land, none is 409)
    DELETE /api/items/{id}                 204; requests racing it answer 404
    GET    /api/items/{id}/cutout          RGBA PNG (items found in photos)
    GET    /api/items/{id}/suggested-tags  {"item", "suggested_tags"}: learned from your other
                                           items (422 for an item without a picture; 429
                                           while 4 of your requests for them are computed)
    GET    /api/outfits                    ?season=&temperature=&occasion=&formality=&with=&outer=&n=
                                           → [{"items", "score", "explanation"}]
    POST   /api/outfits/feedback           {"items", "kind": like|dislike|wore, "on"?} → 201
    GET    /api/outfits/feedback           [{"items", "kind", "created_at"}]
    POST   /api/wardrobe/import            body: wardrobe file JSON, ?replace= → {"imported"}
    GET    /api/wardrobe/export            wardrobe file JSON
    POST   /api/photos                     multipart "file" → 202 job (503 without a model,
                                           429 while 20 of the person's photos wait)
    GET    /api/photos                     [job]
    GET    /api/photos/{id}                job: status, items found, picture URLs
    GET    /api/photos/{id}/overlay.png    Fig. 8;  /supercategories.png: Fig. 9
    POST   /api/outfit-photos              multipart "file" (+ "on": YYYY-MM-DD) → 202 job: your
                                           items in today's outfit get a wear, the rest are
                                           offered as new (503 without a model)
    GET    /api/outfit-photos              [outfit job]
    GET    /api/outfit-photos/{id}         job: "recognised", "logged", "new" offers
    GET    /api/outfit-photos/{id}/overlay.png                       the detections drawn
    GET    /api/outfit-photos/{id}/new/{n}/cutout                    an offer's cut-out
    POST   /api/outfit-photos/{id}/new/{n} → 201 item: the offer added (409 added already)
    POST   /api/outfit-photos/{id}/new/{n}/is/{item_id} → item: the offer is this item of
                                           yours (a wear, and its view kept); 409 settled
    GET    /api/model                      {"active": version | null, "versions": [version],
                                           "jobs": [job], "can_teach": bool, "min_photos",
                                           "photos"} (the person's own model)
    POST   /api/model/teach                202 job (fine-tuning in the background); 409 while
                                           one runs, 422 too few corrected photos, 503 no base
    GET    /api/model/jobs/{id}            job: state, progress, message, version
    DELETE /api/model/jobs/{id}            cancel → job (stops at the next training step)
    POST   /api/model/rollback             the version before the one in use → {"active"}
    POST   /api/model/use/{version}        use that version → {"active"}
"""

import logging
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError

from fashionkit.errors import (
    MAX_LISTED_PROBLEMS,
    BusyError,
    ConflictError,
    InvalidDataError,
    LimitError,
    NotFoundError,
)
from fashionkit.personal.models import PersonalPredictors, default_model_dir
from fashionkit.personal.teaching import TeachJobs
from fashionkit.service.auth import Accounts, TokenSigner
from fashionkit.service.deps import ServiceSettings, ServiceState
from fashionkit.service.limits import (
    BodySizeLimit,
    EncodedSeparators,
    LoginThrottle,
    SecurityHeaders,
    ThrottleRules,
)
from fashionkit.service.photos import JobStore, PhotoWorker
from fashionkit.service.routes import ROUTERS
from fashionkit.wardrobe.database import WardrobeDatabase

__all__ = ["create_app", "ServiceSettings"]

log = logging.getLogger(__name__)


def create_app(
    db_url: str,
    data_dir: str | Path,
    weights: str | Path | None = None,
    *,
    predictor=None,
    device: str = "cpu",
    settings: ServiceSettings | None = None,
    api_docs: bool = False,
    throttle: ThrottleRules | None = None,
    embedder=None,
    teach_base: str | Path | None = None,
) -> FastAPI:
    """The service over the wardrobe database ``db_url`` (any SQLAlchemy URL), keeping pending
    uploads and its token secret under ``data_dir``. Photos and cut-outs go where the CLI
    keeps them for the same database (:func:`~fashionkit.wardrobe.default_image_dir`), so both
    see the same wardrobe.

    Detection needs a model: ``weights`` (a fashionkit checkpoint, loaded on ``device``) or
    ``predictor`` (a :class:`~fashionkit.inference.Predictor` or a callable with its
    interface). Without either the service runs and the photo routes answer 503.
    Recognising a person's items (outfit photos) needs an ``embedder``
    (:class:`~fashionkit.personal.embedding.ItemEmbedder` of the same model), made from
    ``weights`` when those are given; without one, outfit photos answer 503 and photos' items
    are stored without embeddings.
    ``api_docs``: serve Swagger UI at ``/docs`` (its scripts come from a CDN). ``throttle``:
    how password guessing and registrations are slowed (:class:`ThrottleRules`'s defaults), with
    the counts in the database, shared by every process on it.

    Each person may teach a model of their own (``/api/model``): fine-tuned from
    ``teach_base`` (default ``weights``) on their corrected photos, kept beside the database
    (:func:`~fashionkit.personal.models.default_model_dir`), and used for their photos once
    taught. Without a base checkpoint the teaching routes answer 503.

    Nothing is opened until the application starts (its lifespan): then the database is
    migrated once and its one engine serves every person until shutdown disposes it.
    """
    settings = settings or ServiceSettings()
    data_dir = Path(data_dir)

    if predictor is None and weights is not None:
        from fashionkit.inference import Predictor

        predictor = Predictor(weights, device=device, score_threshold=settings.min_score)
    if embedder is None and weights is not None:
        from fashionkit.personal.embedding import ItemEmbedder

        embedder = ItemEmbedder.from_checkpoint(weights, device=device)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        data_dir.mkdir(parents=True, exist_ok=True)
        database = WardrobeDatabase(db_url)
        jobs = JobStore(database, data_dir)
        state = ServiceState(
            settings=settings,
            data_dir=data_dir,
            database=database,
            accounts=Accounts(database.engine),
            signer=TokenSigner.from_file(data_dir / "service-secret", settings.token_ttl_s),
            jobs=jobs,
            predictor=predictor,
            worker=None,
        )
        state.models_dir = default_model_dir(db_url)
        personal = PersonalPredictors(database, state.models_dir, predictor,
                                      score_threshold=settings.min_score, device=device)
        state.teaching = TeachJobs(
            database, state.models_dir, teach_base if teach_base is not None else weights,
            state.wardrobe_for, minutes=settings.teach_minutes,
            min_photos=settings.teach_min_photos, max_steps=settings.teach_max_steps,
        )
        if predictor is not None:
            state.worker = PhotoWorker(
                jobs,
                predictor,
                state.wardrobe_for,
                min_score=settings.min_score,
                lease_s=settings.job_lease_s,
                poll_s=settings.job_poll_s,
                embedder=embedder,
                predictor_for=personal.for_user,
                max_items=settings.max_items,
            )
        app.state.service = state
        app.state.throttle = LoginThrottle(database, throttle)
        # What a killed process left: temporary files, uploads no job owns (see photos.py),
        # teaching jobs it was running and their unregistered model files (teaching.py).
        tidied = jobs.recover()
        tidied["temporary"] += database.images.remove_stale_temporary()
        tidied["interrupted_too_often"] = jobs.fail_exhausted()
        tidied.update(state.teaching.recover())
        if any(tidied.values()):
            log.info("tidied after an unclean stop: %s", tidied)
        if state.worker is not None:
            # Takes this process's share of the jobs, those others left unfinished too.
            state.worker.start()
        try:
            yield
        finally:
            state.teaching.shutdown(wait=True)
            if state.worker is not None:
                # Unstarted jobs stay queued for any process, this one's next start too.
                state.worker.shutdown(wait=True)
            database.close()

    app = FastAPI(
        title="fashionkit",
        summary="Wardrobe from photos (Fashionpedia ontology) and outfit coordination.",
        lifespan=lifespan,
        docs_url="/docs" if api_docs else None,
        redoc_url=None,
    )
    app.add_middleware(
        BodySizeLimit,
        max_bytes=settings.max_json_bytes,
        per_path={
            # Room for the multipart envelope around the largest photo.
            "/api/photos": settings.max_upload_bytes + 64 * 1024,
            "/api/outfit-photos": settings.max_upload_bytes + 64 * 1024,
            "/api/wardrobe/import": settings.max_import_bytes,
        },
        idle_timeout_s=settings.body_idle_timeout_s,
        total_timeout_s=settings.body_timeout_s,
    )
    app.add_middleware(EncodedSeparators)
    # Outermost: the answers of the middleware above carry the headers too.
    app.add_middleware(SecurityHeaders, no_store_paths=frozenset({"/api/token", "/api/users"}))
    _add_error_handlers(app)
    for router in ROUTERS:
        # The routes themselves, not the router as one nested entry (which include_router
        # makes): app.routes stays the flat table of every path that OpenAPI and the tests read.
        app.router.routes.extend(router.routes)
    return app


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(InvalidDataError)
    async def _invalid_data(_request: Request, err: InvalidDataError) -> JSONResponse:
        return JSONResponse(
            status_code=422,
            content={
                "detail": "\n".join(_short(line) for line in str(err).splitlines()),
                # The first problems, each cut short: a large invalid file must not answer
                # with a larger error.
                "problems": [
                    {"where": _short(p.where), "message": _short(p.message)}
                    for p in err.problems[:MAX_LISTED_PROBLEMS]
                ],
                "more_problems": max(0, len(err.problems) - MAX_LISTED_PROBLEMS),
            },
        )

    @app.exception_handler(NotFoundError)
    async def _not_found(_request: Request, err: NotFoundError) -> JSONResponse:
        return JSONResponse(status_code=404, content={"detail": str(err)})

    @app.exception_handler(ConflictError)
    async def _conflict(_request: Request, err: ConflictError) -> JSONResponse:
        return JSONResponse(status_code=409, content={"detail": str(err)})

    @app.exception_handler(LimitError)
    async def _over_limit(_request: Request, err: LimitError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": str(err)})

    @app.exception_handler(BusyError)
    async def _busy(_request: Request, err: BusyError) -> JSONResponse:
        return JSONResponse(status_code=429, content={"detail": str(err)},
                            headers={"Retry-After": str(err.retry_after_s)})

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(_request: Request, err: RequestValidationError) -> JSONResponse:
        # FastAPI's own handler echoes the input, and a NaN or Infinity in it (Python's JSON
        # parser accepts them) would turn the 422 into a 500 while encoding the answer.
        return JSONResponse(
            status_code=422,
            content={
                "detail": [
                    {"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]}
                    for e in err.errors()
                ]
            },
        )

    @app.exception_handler(OperationalError)
    async def _database_unavailable(_request: Request, err: OperationalError) -> JSONResponse:
        # SQLite answers "database is locked" when a writer holds it past the busy timeout:
        # the request may be retried, so this is a 503, not a 500.
        log.warning("database unavailable: %s", err)
        return JSONResponse(
            status_code=503,
            content={"detail": "the database is busy or unavailable; try again"},
            headers={"Retry-After": "1"},
        )
