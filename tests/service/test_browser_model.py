"""The page's "My model" section driven in headless Chromium: a person with corrected photos
teaches their model (progress bar, then the new version in use), rolls back to the base model,
and a second teaching is cancelled from the page, making no version.

The server listens on 127.0.0.1 only, in this process, detecting with the synthetic world's
ground truth and teaching a tiny model with a two-step budget.
"""

from __future__ import annotations

import time

import httpx
import pytest

from fashionkit.service import ServiceSettings, create_app

from .fakes import TruthPredictor, served
from .test_browser import CHROMIUM, CHROMIUM_ARGS, PASSWORD, pytestmark  # noqa: F401

PHOTOS = 3
# How long a two-step fine-tuning may take on a busy 2-core machine.
TEACHING_MS = 240_000


@pytest.fixture
def live(tmp_path):
    """The service on 127.0.0.1 (a free port) with a tiny base model to teach from; yields
    (base URL, predictor)."""
    from tests.personal.conftest import make_base_checkpoint

    predictor = TruthPredictor()
    settings = ServiceSettings(teach_minutes=2.0, teach_min_photos=PHOTOS, teach_max_steps=2)
    app = create_app(f"sqlite:///{tmp_path / 'w.sqlite'}", tmp_path / "data", predictor=predictor,
                     settings=settings, teach_base=make_base_checkpoint(tmp_path / "base.pt"))
    with served(app, stop_s=60) as base:
        yield base, predictor


def _person_with_photos(base: str, predictor: TruthPredictor, name: str) -> httpx.Client:
    assert httpx.post(f"{base}/api/users", json={"name": name, "password": PASSWORD}
                      ).status_code == 201
    token = httpx.post(f"{base}/api/token", data={"username": name, "password": PASSWORD})
    api = httpx.Client(base_url=base, timeout=30,
                       headers={"Authorization": f"Bearer {token.json()['access_token']}"})
    for index in range(PHOTOS):
        job = api.post("/api/photos", files={"file": ("p.png", predictor.photo(index, size=96),
                                                      "image/png")}).json()
        deadline = time.monotonic() + 60
        while api.get(f"/api/photos/{job['id']}").json()["status"] != "done":
            assert time.monotonic() < deadline
            time.sleep(0.1)
    return api


def test_teach_my_model_in_the_browser(live, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    base, predictor = live
    api = _person_with_photos(base, predictor, "alice")
    shots = tmp_path / "screenshots"
    shots.mkdir()
    problems: list[str] = []
    elsewhere: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(15_000)
        page.on("pageerror", lambda err: problems.append(f"page error: {err}"))
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("request", lambda r: None if r.url.startswith((base, "blob:", "data:"))
                else elsewhere.append(r.url))
        page.goto(f"{base}/")
        page.fill("#name", "alice")
        page.fill("#password", PASSWORD)
        page.click("#login-form button[type=submit]")
        expect(page.locator("#model-in-use")).to_have_text("the base model")
        expect(page.locator("#model-photos")).to_contain_text(f"{PHOTOS} corrected photo(s)")
        expect(page.locator("#model-rollback")).to_be_disabled()

        # -- teach: the progress bar shows while it runs, then version 1 is in use ---------------
        page.click("#model-teach")
        expect(page.locator("#model-progress")).to_be_visible()
        expect(page.locator("#model-cancel")).to_be_visible()
        expect(page.locator("#model-teach")).to_be_disabled()
        page.screenshot(path=str(shots / "01-teaching.png"), full_page=True)
        expect(page.locator("#model-in-use")).to_contain_text("version 1 (3 photos",
                                                              timeout=TEACHING_MS)
        expect(page.locator("#model-progress")).to_be_hidden()
        expect(page.locator("#model-status")).to_contain_text("done")
        expect(page.locator("#model-versions li")).to_have_count(1)
        page.screenshot(path=str(shots / "02-taught.png"), full_page=True)
        status = api.get("/api/model").json()
        assert status["active"]["version"] == 1 and status["jobs"][0]["state"] == "done"

        # -- roll back: the base model again -----------------------------------------------------
        page.click("#model-rollback")
        expect(page.locator("#model-in-use")).to_have_text("the base model")
        assert api.get("/api/model").json()["active"] is None

        # -- teach again and cancel from the page: no new version --------------------------------
        page.click("#model-teach")
        page.click("#model-cancel")
        expect(page.locator("#model-status")).to_contain_text("cancelled", timeout=TEACHING_MS)
        expect(page.locator("#model-in-use")).to_have_text("the base model")
        expect(page.locator("#model-versions li")).to_have_count(1)
        page.screenshot(path=str(shots / "03-cancelled.png"), full_page=True)
        assert [v["version"] for v in api.get("/api/model").json()["versions"]] == [1]
        browser.close()
    assert problems == [] and elsewhere == []
