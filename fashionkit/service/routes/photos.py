"""Photo uploads, their detection jobs and the pictures drawn from them."""

from collections.abc import Callable
from functools import partial

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import FileResponse
from starlette.datastructures import FormData
from starlette.datastructures import UploadFile as StarletteUpload

from fashionkit.errors import NotFoundError
from fashionkit.service.auth import Account
from fashionkit.service.deps import (
    CurrentAccount,
    ListPage,
    ServiceState,
    State,
    need_detection,
    paged,
    room_for_items,
)
from fashionkit.service.photos import UploadRejected, check_image

router = APIRouter(prefix="/api/photos")


def job_json(job: dict) -> dict:
    out = {k: v for k, v in job.items() if k not in ("user_id", "overlay", "supercategories")}
    base = f"/api/photos/{job['id']}"
    out["url"] = base
    out["overlay_url"] = f"{base}/overlay.png" if job.get("overlay") else None
    out["supercategories_url"] = (
        f"{base}/supercategories.png" if job.get("supercategories") else None
    )
    return out


# The request body is parsed by the route, after the login and the person's quota are checked
# (a declared File() parameter would be read whole before any dependency runs).
_MULTIPART_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary"}},
                }
            }
        },
    }
}


@router.post("", status_code=202, openapi_extra=_MULTIPART_BODY)
async def upload_photo(request: Request, state: State, account: CurrentAccount) -> dict:
    """Upload a photo (multipart field ``file``): JPEG, PNG or WebP by content, capped in
    bytes and pixels. Detection runs in the background; poll ``GET /api/photos/{id}``.

    Nothing of the body is read before the token is checked, detection is known to be
    available and the person has room for another photo; then the file is spooled to disk as
    it arrives (Starlette keeps at most 1 MiB of it in memory) within the byte cap."""
    return job_json(await receive_upload(request, state, account))


async def receive_upload(
    request: Request,
    state: ServiceState,
    account: Account,
    *,
    kind: str = "photo",
    start: Callable[[FormData], dict] | None = None,
) -> dict:
    """Check and queue an uploaded photo as a job of ``kind`` (as :func:`upload_photo` says);
    ``start``: the job's first result from the form's other fields (an ``HTTPException`` for
    a bad one). The job."""
    from starlette.concurrency import run_in_threadpool

    worker = need_detection(state)
    settings = state.settings
    limit = settings.max_waiting_photos
    busy = HTTPException(
        429,
        f"{limit} of your photos are waiting for detection; upload more when they are done",
        headers={"Retry-After": "10"},
    )
    if not worker.reserve(account.user_id, limit):
        raise busy
    try:
        # Jobs of every process on this database count, and this process's other uploads
        # of the person's still arriving.
        waiting = await run_in_threadpool(state.jobs.waiting, account.user_id)
        if waiting + worker.uploading(account.user_id) - 1 >= limit:
            raise busy
        # Room for at least one more item (a photo adds its items past the limit, once).
        wardrobe = state.database.wardrobe(account.name, user_id=account.user_id)
        await run_in_threadpool(room_for_items, state, wardrobe, 1)
        async with request.form(max_files=1, max_fields=4) as form:
            upload = form.get("file")
            if not isinstance(upload, StarletteUpload):
                raise HTTPException(
                    422,
                    [{"loc": ["body", "file"], "msg": "a multipart field 'file' with the photo "
                      "is required", "type": "missing"}],
                )  # fmt: skip
            result = start(form) if start is not None else None
            size = upload.size if upload.size is not None else 0
            if size > settings.max_upload_bytes:
                raise HTTPException(413, f"photo over {settings.max_upload_bytes} bytes")
            try:
                image = await run_in_threadpool(
                    check_image, upload.file, max_pixels=settings.max_pixels
                )
            except UploadRejected as err:
                raise HTTPException(err.status, err.message) from None
            job = await run_in_threadpool(
                partial(state.jobs.create, kind=kind, result=result),
                account.user_id,
                upload.file,
                image,
            )
    except BaseException:
        worker.release(account.user_id)
        raise
    worker.submit(job, reserved=True)
    return job


@router.get("")
def list_photos(
    request: Request, response: Response, state: State, account: CurrentAccount, page: ListPage
) -> list[dict]:
    """One page of the person's uploads, oldest first (``?limit=&offset=`` as for items)."""
    paged(request, response, page, state.jobs.count_of_user(account.user_id))
    jobs = state.jobs.of_user(account.user_id, offset=page.offset, limit=page.limit)
    return [job_json(j) for j in jobs]


@router.get("/{job_id}")
def get_photo(state: State, account: CurrentAccount, job_id: str) -> dict:
    """Status (queued, running, done, failed), the items found and the pictures' URLs."""
    return job_json(state.jobs.get(job_id, account.user_id, kind="photo"))


def _picture(state: ServiceState, account: Account, job_id: str, key: str) -> FileResponse:
    job = state.jobs.get(job_id, account.user_id, kind="photo")
    if not job.get(key):
        raise NotFoundError(f"{key} picture (status {job['status']}) for photo", job_id)
    path = state.database.images.path(job[key], ".png")
    if not path.exists():
        raise NotFoundError(f"{key} picture for photo", job_id)
    return FileResponse(path, media_type="image/png")


@router.get("/{job_id}/overlay.png", response_class=FileResponse)
def photo_overlay(state: State, account: CurrentAccount, job_id: str):
    """Fig. 8: masks, boxes, names, scores and top attributes on the photo."""
    return _picture(state, account, job_id, "overlay")


@router.get("/{job_id}/supercategories.png", response_class=FileResponse)
def photo_supercategories(state: State, account: CurrentAccount, job_id: str):
    """Fig. 9: masks coloured by super category."""
    return _picture(state, account, job_id, "supercategories")
