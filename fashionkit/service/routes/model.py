"""The person's own model: its versions, the one in use, and "teach my model" jobs
(:mod:`fashionkit.personal.teaching`). Every route sees only the logged-in person's versions
and jobs: another person's job answers 404, as an unknown one does."""

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path
from starlette.concurrency import run_in_threadpool

from fashionkit.personal.models import PersonalModels
from fashionkit.personal.teaching import TeachJobs, corrected_photos
from fashionkit.service.deps import CurrentAccount, CurrentWardrobe, ServiceState, State
from fashionkit.wardrobe.database import Wardrobe

router = APIRouter(prefix="/api/model")


def _models(state: ServiceState, wardrobe: Wardrobe) -> PersonalModels:
    return PersonalModels(wardrobe, state.models_dir)


def _teaching(state: ServiceState) -> TeachJobs:
    """The teaching jobs; 503 when the service has no base model to fine-tune."""
    teaching = state.teaching
    if teaching is None or not teaching.available:
        raise HTTPException(
            503,
            "teaching a model is not available: the server was started without a base model "
            "(fashionkit serve --weights CHECKPOINT)",
        )
    return teaching


def _active(models: PersonalModels) -> dict:
    version = models.active_model()
    return {"active": version.to_json() if version is not None else None}


@router.get("")
def model_status(state: State, account: CurrentAccount, wardrobe: CurrentWardrobe) -> dict:
    """The version in use (``null``: the base model), every version (oldest first), the
    latest jobs (newest first), whether teaching is available, and the corrected photos it
    would learn from against the number it needs."""
    models = _models(state, wardrobe)
    teaching = state.teaching
    return {
        **_active(models),
        "versions": [v.to_json() for v in models.versions()],
        "jobs": teaching.of_user(account.user_id, limit=5) if teaching is not None else [],
        "can_teach": bool(teaching is not None and teaching.available),
        "min_photos": state.settings.teach_min_photos,
        "photos": corrected_photos(wardrobe),
    }


@router.post("/teach", status_code=202)
async def start_teaching(state: State, account: CurrentAccount) -> dict:
    """Fine-tune the person's model on their corrected photos in the background (at most
    ``teach_minutes``); poll ``GET /api/model/jobs/{id}``. 409 while one of theirs runs, 422
    with too few corrected photos."""
    teaching = _teaching(state)
    return await run_in_threadpool(teaching.start, account.user_id)


@router.get("/jobs/{job_id}")
def get_job(state: State, account: CurrentAccount, job_id: str) -> dict:
    """State (queued, running, done, failed, cancelled), progress 0..1, message, version."""
    return _teaching(state).get(job_id, account.user_id)


@router.delete("/jobs/{job_id}")
def cancel_job(state: State, account: CurrentAccount, job_id: str) -> dict:
    """Cancel: a queued job at once, a running one at its next training step (no new
    version). Answers the job as it is now."""
    return _teaching(state).cancel(job_id, account.user_id)


@router.post("/rollback")
def rollback(state: State, wardrobe: CurrentWardrobe) -> dict:
    """Use the version before the one in use (from the first: the base model); 409 when the
    base model is in use already."""
    models = _models(state, wardrobe)
    models.rollback()
    return _active(models)


@router.post("/use/{version}")
def use_version(state: State, wardrobe: CurrentWardrobe,
                version: Annotated[int, Path(ge=1, le=10**9)]) -> dict:
    """Use one of the person's versions for their next photos (404: no such version)."""
    models = _models(state, wardrobe)
    models.activate(version)
    return _active(models)
