"""A whole wardrobe in and out, in the file format of ``fashionkit wardrobe export``."""

import shutil
import tempfile
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from fashionkit.errors import InvalidDataError, Problem
from fashionkit.service.deps import (
    CurrentAccount,
    CurrentWardrobe,
    ServiceState,
    State,
    room_for_items,
)
from fashionkit.wardrobe.database import Wardrobe

router = APIRouter(prefix="/api/wardrobe")


@router.post("/import")
async def import_items(
    request: Request, state: State, account: CurrentAccount, replace: bool = True
):
    """Import a wardrobe file (request body: the JSON of ``fashionkit wardrobe export``);
    nothing is stored when any item is invalid (422 names the first problems' items and says
    how many more), nor when it would take the wardrobe past its most items (422). Stored in
    transactions of a few hundred items, so other requests proceed meanwhile."""
    from starlette.concurrency import run_in_threadpool

    limit = state.settings.max_import_bytes
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            raise HTTPException(413, f"import over {limit} bytes")
    wardrobe = state.database.wardrobe(account.name, user_id=account.user_id)
    count = await run_in_threadpool(_import, state, wardrobe, bytes(body), replace)
    return {"imported": count}


def _import(state: ServiceState, wardrobe: Wardrobe, body: bytes, replace: bool) -> int:
    from fashionkit.wardrobe.exchange import read_items, store_items

    folder = Path(tempfile.mkdtemp(dir=state.data_dir, prefix=".import-"))
    try:
        path = folder / "upload.json"
        path.write_bytes(body)
        try:
            items = read_items(path)
        except InvalidDataError as err:
            # The temporary file's path means nothing to the client (and is the server's).
            raise InvalidDataError(
                [Problem("upload", p.where, p.message) for p in err.problems]
            ) from None
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    new = len(items) - len(wardrobe.existing_keys(i.id for i in items))
    room_for_items(state, wardrobe, new)
    return store_items(
        wardrobe, items, replace=replace, batch_size=state.settings.import_batch,
        max_items=state.settings.max_items,
    )  # fmt: skip


@router.get("/export")
def export_items(state: State, wardrobe: CurrentWardrobe) -> Response:
    """Every item in the import format (``{"format", "version", "items"}``)."""
    from fashionkit.wardrobe.exchange import export_wardrobe

    folder = Path(tempfile.mkdtemp(dir=state.data_dir, prefix=".export-"))
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
