"""The FastAPI application: REST routes over the wardrobe, coordination and ingest libraries.

Every ``/api`` route but registration and login needs ``Authorization: Bearer <token>`` (from
``POST /api/token``) and sees only that person's wardrobe: another person's item, photo or
outfit answers 404, as an unknown one does. Errors are JSON ``{"detail": message}`` (422 from
request validation lists the fields); invalid item data answers 422 with ``"problems"``, one
per wrong field. Interactive documentation is at ``/docs`` (OpenAPI at ``/openapi.json``).

Routes::

    GET    /health                         {"status": "ok", "detection": bool}
    GET    /  and  /ui.js, /favicon.svg    the browser page (fashionkit.service.ui)
    GET    /api/categories                 garment and accessory categories (no login needed)
    POST   /api/users                      {"name", "password"} → 201 {"id", "name"}; 409 taken
    POST   /api/token                      OAuth2 password form → {"access_token", "token_type"}
    GET    /api/me                         {"id", "name"}
    POST   /api/items                      wardrobe item JSON → 201 item; 409 id taken
    GET    /api/items                      ?category=&season=&occasion=&favorite= → [item]
    GET    /api/items/{id}                 item (+ "category_name", "supercategory", "cutout_url")
    PATCH  /api/items/{id}                 {field: value | null, "id": new id} → item
    DELETE /api/items/{id}                 204
    GET    /api/items/{id}/cutout          RGBA PNG (items found in photos)
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
"""

import datetime as dt
import logging
import shutil
import tempfile
import threading
from collections import OrderedDict
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import quote

from fastapi import Body, Depends, FastAPI, File, HTTPException, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.security import OAuth2PasswordBearer, OAuth2PasswordRequestForm
from pydantic import BaseModel, Field
from sqlalchemy.exc import OperationalError

from fashionkit.errors import ConflictError, InvalidDataError, NotFoundError
from fashionkit.ontology import load_ontology
from fashionkit.service import ui
from fashionkit.service.auth import (
    MAX_PASSWORD_LENGTH,
    MIN_PASSWORD_LENGTH,
    USERNAME_PATTERN,
    Account,
    Accounts,
    NameTaken,
    TokenSigner,
)
from fashionkit.service.limits import BodySizeLimit
from fashionkit.service.photos import JobStore, PhotoWorker, UploadRejected, check_image
from fashionkit.wardrobe import Wardrobe, default_image_dir
from fashionkit.wardrobe.database import create_store_engine
from fashionkit.wardrobe.image_files import ImageStore
from fashionkit.wardrobe.items import (
    EDITABLE_FIELDS,
    WardrobeItem,
    item_from_dict,
    item_to_dict,
    parse_category,
    plausible_id,
)

__all__ = ["create_app", "ServiceSettings"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServiceSettings:
    """Limits of the service. ``max_upload_bytes``: a photo upload's size; ``max_pixels``: its
    width × height; ``max_import_bytes``: a wardrobe import's size; ``max_json_bytes``: any
    other request body; ``token_ttl_s``: how long a login lasts; ``min_score``: detections
    below it do not become items; ``open_wardrobes``: stores of recent users kept open;
    ``max_waiting_photos``: a person's uploads waiting for or in detection (more answer 429,
    so that nobody fills the disk or the queue)."""

    max_upload_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 40_000_000
    max_import_bytes: int = 10 * 1024 * 1024
    max_json_bytes: int = 1024 * 1024
    token_ttl_s: float = 7 * 24 * 3600
    open_wardrobes: int = 64
    min_score: float = 0.5
    max_waiting_photos: int = 20


class NewUser(BaseModel):
    name: str = Field(pattern=USERNAME_PATTERN.pattern, description="Letters, digits, _ . -")
    password: str = Field(min_length=MIN_PASSWORD_LENGTH, max_length=MAX_PASSWORD_LENGTH)


# An item id as item_from_dict accepts them (no control characters, at most 200 long).
ItemId = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")]


class FeedbackIn(BaseModel):
    items: list[ItemId] = Field(min_length=1, max_length=50, description="The outfit's item ids.")
    kind: Literal["like", "dislike", "wore"]
    on: dt.date | None = Field(None, description="Day worn (for 'wore'); default today.")


def _item_json(item: WardrobeItem, has_cutout: bool) -> dict:
    """The wardrobe item JSON plus ``category_name``, ``supercategory`` and ``cutout_url``
    (``null`` for items entered by hand)."""
    out = item_to_dict(item)
    category = load_ontology().category(item.category_id)
    out["category_name"] = category.short_name
    out["supercategory"] = category.supercategory
    out["cutout_url"] = f"/api/items/{quote(item.id, safe='')}/cutout" if has_cutout else None
    return out


def create_app(
    db_url: str,
    data_dir: str | Path,
    weights: str | Path | None = None,
    *,
    predictor=None,
    device: str = "cpu",
    settings: ServiceSettings | None = None,
) -> FastAPI:
    """The service over the wardrobe database ``db_url`` (any SQLAlchemy URL), keeping pending
    uploads, jobs and its token secret under ``data_dir``. Photos and cut-outs go where the CLI
    keeps them for the same database (:func:`~fashionkit.wardrobe.default_image_dir`), so both
    see the same wardrobe.

    Detection needs a model: ``weights`` (a fashionkit checkpoint, loaded on ``device``) or
    ``predictor`` (a :class:`~fashionkit.inference.Predictor` or a callable with its
    interface). Without either the service runs and the photo routes answer 503.
    """
    settings = settings or ServiceSettings()
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    image_dir = default_image_dir(db_url)

    # One migration run at start; per-person stores then open without repeating it.
    from fashionkit.wardrobe import migrate

    engine = create_store_engine(db_url)
    migrate.upgrade(engine)
    accounts = Accounts(engine)
    signer = TokenSigner.from_file(data_dir / "service-secret", settings.token_ttl_s)
    jobs = JobStore(data_dir)

    if predictor is None and weights is not None:
        from fashionkit.inference import Predictor

        predictor = Predictor(weights, device=device, score_threshold=settings.min_score)

    # Open stores of recent users (each holds an engine and its connection pool). Evicting
    # one is safe while a request still uses it: dispose() leaves checked-out connections be.
    wardrobes: OrderedDict[int, Wardrobe] = OrderedDict()
    wardrobes_lock = threading.Lock()

    def wardrobe_for(user_id: int) -> Wardrobe:
        with wardrobes_lock:
            wardrobe = wardrobes.get(user_id)
            if wardrobe is not None:
                wardrobes.move_to_end(user_id)
                return wardrobe
            account = accounts.get(user_id)
            if account is None:
                raise NotFoundError("user", user_id)
            wardrobe = Wardrobe(
                db_url, user=account.name, image_dir=image_dir, apply_migrations=False
            )
            wardrobes[user_id] = wardrobe
            while len(wardrobes) > settings.open_wardrobes:
                wardrobes.popitem(last=False)[1].close()
            return wardrobe

    worker = (
        PhotoWorker(jobs, predictor, wardrobe_for, min_score=settings.min_score)
        if predictor is not None
        else None
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        # What a killed server left: temporary files, uploads no job owns (see photos.py).
        tidied = jobs.recover()
        tidied["temporary"] += ImageStore(image_dir).remove_stale_temporary()
        if any(tidied.values()):
            log.info("tidied after an unclean stop: %s", tidied)
        if worker is not None:
            resumed = worker.resume()
            if resumed:
                log.info("resumed %d unfinished photo job(s)", resumed)
        yield
        if worker is not None:
            # Unstarted jobs stay queued on disk and run at the next start.
            worker.shutdown(wait=True)
        with wardrobes_lock:
            for wardrobe in wardrobes.values():
                wardrobe.close()
            wardrobes.clear()
        engine.dispose()

    app = FastAPI(
        title="fashionkit",
        summary="Wardrobe from photos (Fashionpedia ontology) and outfit coordination.",
        lifespan=lifespan,
    )
    app.add_middleware(
        BodySizeLimit,
        max_bytes=settings.max_json_bytes,
        per_path={
            # Room for the multipart envelope around the largest photo.
            "/api/photos": settings.max_upload_bytes + 64 * 1024,
            "/api/wardrobe/import": settings.max_import_bytes,
        },
    )
    app.state.settings = settings
    app.state.jobs = jobs
    app.state.worker = worker

    @app.exception_handler(InvalidDataError)
    async def _invalid_data(_request: Request, err: InvalidDataError) -> JSONResponse:
        return JSONResponse(
            status_code=422,
            content={
                "detail": str(err),
                "problems": [{"where": p.where, "message": p.message} for p in err.problems],
            },
        )

    @app.exception_handler(NotFoundError)
    async def _not_found(_request: Request, err: NotFoundError) -> JSONResponse:
        return JSONResponse(status_code=404, content={"detail": str(err)})

    @app.exception_handler(ConflictError)
    async def _conflict(_request: Request, err: ConflictError) -> JSONResponse:
        return JSONResponse(status_code=409, content={"detail": str(err)})

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

    oauth2 = OAuth2PasswordBearer(tokenUrl="/api/token")

    def current_account(token: Annotated[str, Depends(oauth2)]) -> Account:
        user_id = signer.check(token)
        account = accounts.get(user_id) if user_id is not None else None
        if account is None:
            raise HTTPException(
                401, "invalid or expired token", headers={"WWW-Authenticate": "Bearer"}
            )
        return account

    CurrentAccount = Annotated[Account, Depends(current_account)]

    def current_wardrobe(account: CurrentAccount) -> Wardrobe:
        return wardrobe_for(account.user_id)

    CurrentWardrobe = Annotated[Wardrobe, Depends(current_wardrobe)]

    # -- the browser page ------------------------------------------------------------------
    @app.get("/", include_in_schema=False)
    def page() -> HTMLResponse:
        return HTMLResponse(
            ui.PAGE,
            headers={"Content-Security-Policy": ui.CSP, "X-Content-Type-Options": "nosniff"},
        )

    @app.get("/ui.js", include_in_schema=False)
    def page_script() -> Response:
        return Response(
            ui.SCRIPT,
            media_type="text/javascript",
            headers={"X-Content-Type-Options": "nosniff"},
        )

    @app.get("/favicon.svg", include_in_schema=False)
    def page_icon() -> Response:
        return Response(ui.ICON, media_type="image/svg+xml")

    # -- health, the ontology and accounts ---------------------------------------------------
    @app.get("/health")
    def health() -> dict:
        return {"status": "ok", "detection": predictor is not None}

    @app.get("/api/categories")
    def categories() -> list[dict]:
        """The categories an item may have (Fashionpedia's garments and accessories, ids
        0..26): ``[{"id", "name", "short_name", "supercategory"}]``. Items accept any of
        these names or the id."""
        from fashionkit.ontology import PART_IDS

        return [
            {"id": c.id, "name": c.name, "short_name": c.short_name,
             "supercategory": c.supercategory}
            for c in load_ontology().categories
            if c.id not in PART_IDS
        ]  # fmt: skip

    @app.post("/api/users", status_code=201)
    def create_user(user: NewUser) -> dict:
        try:
            account = accounts.register(user.name, user.password)
        except NameTaken as taken:
            if taken.has_account:
                raise HTTPException(409, f"the name {user.name!r} is taken") from None
            raise HTTPException(
                409,
                f"the name {user.name!r} is taken by a wardrobe made with the command line; "
                f"its owner can give it a password with `fashionkit wardrobe password --user "
                f"{user.name}` and then log in here",
            ) from None
        return {"id": account.user_id, "name": account.name}

    @app.post("/api/token")
    def login(form: Annotated[OAuth2PasswordRequestForm, Depends()]) -> dict:
        account = accounts.authenticate(form.username, form.password)
        if account is None:
            raise HTTPException(
                401, "wrong name or password", headers={"WWW-Authenticate": "Bearer"}
            )
        return {"access_token": signer.issue(account.user_id), "token_type": "bearer"}

    @app.get("/api/me")
    def me(account: CurrentAccount) -> dict:
        return {"id": account.user_id, "name": account.name}

    # -- items -----------------------------------------------------------------------------
    @app.post("/api/items", status_code=201)
    def add_item(wardrobe: CurrentWardrobe, body: Annotated[dict, Body()]) -> dict:
        """Add an item in the wardrobe item JSON (see ``fashionkit.wardrobe.exchange``)."""
        item, problems = item_from_dict(body, source="request", where="item")
        if problems:
            raise InvalidDataError(problems)
        assert item is not None
        return _item_json(wardrobe.add(item), has_cutout=False)

    @app.get("/api/items")
    def list_items(
        wardrobe: CurrentWardrobe,
        category: str | None = Query(None, description="Fashionpedia name or id."),
        season: str | None = None,
        occasion: str | None = None,
        favorite: bool | None = None,
    ) -> list[dict]:
        category_id = None
        if category is not None:
            try:
                category_id = parse_category(category)
            except ValueError as err:
                raise HTTPException(422, str(err)) from None
        items = wardrobe.items(category_id=category_id)
        if season is not None:
            items = [i for i in items if season.lower() in i.season]
        if occasion is not None:
            items = [i for i in items if occasion.lower() in i.occasion]
        if favorite is not None:
            items = [i for i in items if i.favorite == favorite]
        with_cutout = wardrobe.keys_with_cutouts()
        return [_item_json(i, i.id in with_cutout) for i in items]

    def _plausible(item_id: str) -> str:
        # An id no item can have is answered without a query (PostgreSQL would refuse a NUL).
        if not plausible_id(item_id):
            raise NotFoundError("item", item_id[:60])
        return item_id

    def _get_item(wardrobe: Wardrobe, item_id: str) -> WardrobeItem:
        return wardrobe.get(_plausible(item_id))

    @app.get("/api/items/{item_id}")
    def get_item(wardrobe: CurrentWardrobe, item_id: str) -> dict:
        item = _get_item(wardrobe, item_id)
        return _item_json(item, wardrobe.cutout_path(item.id) is not None)

    @app.patch("/api/items/{item_id}")
    def edit_item(
        wardrobe: CurrentWardrobe, item_id: str, changes: Annotated[dict, Body()]
    ) -> dict:
        """Change fields (``null`` clears one); ``id`` renames the item."""
        unknown = sorted(set(changes) - {"id", *EDITABLE_FIELDS})
        if unknown:
            raise HTTPException(
                422, f"unknown or read-only field(s) {', '.join(map(repr, unknown))}"
            )
        _get_item(wardrobe, item_id)
        item = wardrobe.update(item_id, **changes)
        return _item_json(item, wardrobe.cutout_path(item.id) is not None)

    @app.delete("/api/items/{item_id}", status_code=204)
    def delete_item(wardrobe: CurrentWardrobe, item_id: str) -> Response:
        wardrobe.remove(_plausible(item_id))
        return Response(status_code=204)

    @app.get("/api/items/{item_id}/cutout", response_class=FileResponse)
    def item_cutout(wardrobe: CurrentWardrobe, item_id: str):
        """The item's cut-out (RGBA PNG; items found in photos only)."""
        _get_item(wardrobe, item_id)
        path = wardrobe.cutout_path(item_id)
        if path is None or not path.exists():
            raise NotFoundError("cut-out for item", item_id)
        return FileResponse(path, media_type="image/png")

    # -- outfits ---------------------------------------------------------------------------
    @app.get("/api/outfits")
    def outfits(
        wardrobe: CurrentWardrobe,
        season: str | None = None,
        temperature: float | None = Query(None, ge=-60, le=60, description="°C"),
        occasion: str | None = None,
        formality: int | None = Query(None, ge=1, le=5),
        with_: list[str] = Query(
            [], alias="with", description="Build around these item ids (at most 10)."
        ),
        outer: bool | None = None,
        n: int = Query(10, ge=1, le=50),
    ) -> list[dict]:
        """Suggested outfits, best first: ``[{"items", "score", "explanation"}]``."""
        from fashionkit.outfits import Conditions, suggest_for_wardrobe

        if len(with_) > 10:
            raise HTTPException(422, f"build around at most 10 items, got {len(with_)}")
        try:
            conditions = Conditions(
                season=season or None,
                temperature=temperature,
                occasion=occasion,
                formality=formality,
                lock=tuple(with_),
                outer=outer,
            )
        except ValueError as err:
            raise HTTPException(422, str(err)) from None
        for key in with_:
            _get_item(wardrobe, key)
        return [o.to_json() for o in suggest_for_wardrobe(wardrobe, conditions, k=n)]

    @app.post("/api/outfits/feedback", status_code=201)
    def outfit_feedback(wardrobe: CurrentWardrobe, feedback: FeedbackIn) -> dict:
        """Like, dislike or wore an outfit; later suggestions learn from it."""
        outfit_id = wardrobe.record_feedback(feedback.items, feedback.kind, on=feedback.on)
        return {"outfit_id": outfit_id, "kind": feedback.kind, "items": feedback.items}

    @app.get("/api/outfits/feedback")
    def list_feedback(wardrobe: CurrentWardrobe) -> list[dict]:
        return [
            {"items": list(e.items), "kind": e.kind, "created_at": e.created_at.isoformat()}
            for e in wardrobe.feedback()
        ]

    # -- import / export -------------------------------------------------------------------
    @app.post("/api/wardrobe/import")
    async def import_items(request: Request, account: CurrentAccount, replace: bool = True):
        """Import a wardrobe file (request body: the JSON of ``fashionkit wardrobe export``);
        nothing is stored when any item is invalid (422 lists them)."""
        from starlette.concurrency import run_in_threadpool

        body = bytearray()
        async for chunk in request.stream():
            body.extend(chunk)
            if len(body) > settings.max_import_bytes:
                raise HTTPException(413, f"import over {settings.max_import_bytes} bytes")
        wardrobe = wardrobe_for(account.user_id)
        count = await run_in_threadpool(_import, wardrobe, bytes(body), replace)
        return {"imported": count}

    def _import(wardrobe: Wardrobe, body: bytes, replace: bool) -> int:
        from fashionkit.errors import Problem
        from fashionkit.wardrobe.exchange import import_wardrobe

        folder = Path(tempfile.mkdtemp(dir=data_dir, prefix=".import-"))
        try:
            path = folder / "upload.json"
            path.write_bytes(body)
            try:
                return import_wardrobe(wardrobe, path, replace=replace)
            except InvalidDataError as err:
                # The temporary file's path means nothing to the client (and is the server's).
                raise InvalidDataError(
                    [Problem("upload", p.where, p.message) for p in err.problems]
                ) from None
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    @app.get("/api/wardrobe/export")
    def export_items(wardrobe: CurrentWardrobe) -> Response:
        """Every item in the import format (``{"format", "version", "items"}``)."""
        from fashionkit.wardrobe.exchange import export_wardrobe

        folder = Path(tempfile.mkdtemp(dir=data_dir, prefix=".export-"))
        try:
            path = folder / "wardrobe.json"
            export_wardrobe(wardrobe, path)
            content = path.read_bytes()
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return Response(
            content,
            media_type="application/json",
            headers={"Content-Disposition": 'attachment; filename="wardrobe.json"'},
        )

    # -- photos ----------------------------------------------------------------------------
    def _need_detection() -> PhotoWorker:
        if worker is None:
            raise HTTPException(
                503,
                "photo detection is not available: the server was started without a model "
                "(fashionkit serve --weights CHECKPOINT); items can still be added by hand",
            )
        return worker

    @app.post("/api/photos", status_code=202)
    async def upload_photo(
        request: Request, account: CurrentAccount, file: Annotated[UploadFile, File()]
    ) -> dict:
        """Upload a photo (multipart field ``file``): JPEG, PNG or WebP by content, capped in
        bytes and pixels. Detection runs in the background; poll ``GET /api/photos/{id}``."""
        from starlette.concurrency import run_in_threadpool

        worker = _need_detection()
        limit = settings.max_waiting_photos
        if not worker.reserve(account.user_id, limit):
            raise HTTPException(
                429,
                f"{limit} of your photos are waiting for detection; upload more when they "
                "are done",
                headers={"Retry-After": "10"},
            )
        try:
            data = await file.read(settings.max_upload_bytes + 1)
            if len(data) > settings.max_upload_bytes:
                raise HTTPException(413, f"photo over {settings.max_upload_bytes} bytes")
            try:
                image = await run_in_threadpool(check_image, data, max_pixels=settings.max_pixels)
            except UploadRejected as err:
                raise HTTPException(err.status, err.message) from None
            job = await run_in_threadpool(jobs.create, account.user_id, data, image)
        except BaseException:
            worker.release(account.user_id)
            raise
        worker.submit(job, reserved=True)
        return _job_json(job)

    def _job_json(job: dict) -> dict:
        out = {k: v for k, v in job.items() if k not in ("user_id", "overlay", "supercategories")}
        base = f"/api/photos/{job['id']}"
        out["url"] = base
        out["overlay_url"] = f"{base}/overlay.png" if job.get("overlay") else None
        out["supercategories_url"] = (
            f"{base}/supercategories.png" if job.get("supercategories") else None
        )
        return out

    def _get_job(account: Account, job_id: str) -> dict:
        return jobs.get(job_id, account.user_id)

    @app.get("/api/photos")
    def list_photos(account: CurrentAccount) -> list[dict]:
        return [_job_json(j) for j in jobs.of_user(account.user_id)]

    @app.get("/api/photos/{job_id}")
    def get_photo(account: CurrentAccount, job_id: str) -> dict:
        """Status (queued, running, done, failed), the items found and the pictures' URLs."""
        return _job_json(_get_job(account, job_id))

    def _picture(account: Account, job_id: str, key: str) -> FileResponse:
        job = _get_job(account, job_id)
        if not job.get(key):
            raise NotFoundError(f"{key} picture (status {job['status']}) for photo", job_id)
        path = wardrobe_for(account.user_id).images.path(job[key], ".png")
        if not path.exists():
            raise NotFoundError(f"{key} picture for photo", job_id)
        return FileResponse(path, media_type="image/png")

    @app.get("/api/photos/{job_id}/overlay.png", response_class=FileResponse)
    def photo_overlay(account: CurrentAccount, job_id: str):
        """Fig. 8: masks, boxes, names, scores and top attributes on the photo."""
        return _picture(account, job_id, "overlay")

    @app.get("/api/photos/{job_id}/supercategories.png", response_class=FileResponse)
    def photo_supercategories(account: CurrentAccount, job_id: str):
        """Fig. 9: masks coloured by super category."""
        return _picture(account, job_id, "supercategories")

    return app
