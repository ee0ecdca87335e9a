"""The page at ``/`` driven end to end in headless Chromium (Debian's ``chromium``).

A person creates an account, uploads a photo and sees the labelled overlay (Fig. 8), the
super-category view (Fig. 9) and the items found as cut-outs; edits a tag; adds items by hand;
filters the gallery; gets outfits with their explanations and gives like / dislike / wore;
changes the password (a second tab still holding the old token goes back to the login, where
the new password works); logs out, and the next person sees none of it. Each step asserts what the page shows and what the
server then holds, and saves a screenshot under the test's temporary folder (``screenshots/``).

The server listens on 127.0.0.1 only, in this process, detecting with the synthetic world's
ground truth; the browser must make no request anywhere else.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import time
from pathlib import Path

import httpx
import pytest

from fashionkit.service import create_app
from fashionkit.wardrobe import Wardrobe

from .fakes import TruthPredictor, served, tiny_embedder

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-quic", "--no-first-run",
]  # fmt: skip

# Developers without Chromium may skip this test; CI (.ci/run installs Chromium and sets
# FASHIONKIT_REQUIRE_BROWSER) may not.
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists() and not os.environ.get("FASHIONKIT_REQUIRE_BROWSER"),
    reason="the browser test needs Debian's Chromium at /usr/bin/chromium "
    "(apt-get install chromium chromium-driver; .ci/run installs it)",
)

PASSWORD = "correct horse"
NEW_PASSWORD = "battery staple"
BY_HAND = [
    ("white-shirt", "shirt", "#ffffff"),
    ("blue-tee", "top", "#3060c0"),
    ("jeans", "pants", "#1f2a44"),
    ("khakis", "pants", "#c3b091"),
    ("loafers", "shoe", "#5a3a22"),
]


@pytest.fixture
def live(tmp_path):
    """The service on 127.0.0.1 (a free port), in a thread; yields (base URL, db URL,
    predictor)."""
    predictor = TruthPredictor()
    db = f"sqlite:///{tmp_path / 'w.sqlite'}"
    app = create_app(db, tmp_path / "data", predictor=predictor, embedder=tiny_embedder())
    with served(app) as base:
        yield base, db, predictor


def _api(base: str, name: str) -> httpx.Client:
    """A client of the same server, logged in as ``name``: the server's view of the data."""
    token = httpx.post(f"{base}/api/token", data={"username": name, "password": PASSWORD})
    assert token.status_code == 200, token.text
    return httpx.Client(
        base_url=base, headers={"Authorization": f"Bearer {token.json()['access_token']}"}
    )


def _photographed_again(photo: Path, predictor: TruthPredictor) -> Path:
    """The photo's garments photographed again (a little brighter: other bytes, the same
    ground truth)."""
    import hashlib
    import io

    import numpy as np
    from PIL import Image

    pixels = np.asarray(Image.open(photo).convert("RGB"), np.int16)
    buffer = io.BytesIO()
    Image.fromarray(np.clip(pixels + 6, 0, 255).astype(np.uint8)).save(buffer, format="PNG")
    again = photo.with_name("again.png")
    again.write_bytes(buffer.getvalue())
    digest = lambda data: hashlib.sha256(data).hexdigest()  # noqa: E731
    predictor.truth[digest(again.read_bytes())] = predictor.truth[digest(photo.read_bytes())]
    return again


def test_wardrobe_in_the_browser(live, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    assert CHROMIUM.exists(), "FASHIONKIT_REQUIRE_BROWSER is set but /usr/bin/chromium is missing"
    base, db, predictor = live
    photo = tmp_path / "photo.png"
    photo.write_bytes(predictor.photo(0, size=200))
    garments = predictor.garments(photo.read_bytes())
    assert garments >= 2
    shots = tmp_path / "screenshots"
    shots.mkdir()
    problems: list[str] = []
    refused: list[tuple[str, str, int]] = []
    elsewhere: list[str] = []

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(15_000)
        page.on("pageerror", lambda err: problems.append(f"page error: {err}"))
        # The browser logs every answer >= 400 as a console error: those are checked below
        # against the bad input this test gives on purpose; any other console error fails.
        page.on(
            "console",
            lambda m: (
                problems.append(f"console {m.type}: {m.text}")
                if m.type == "error" and not m.text.startswith("Failed to load resource")
                else None
            ),
        )
        page.on(
            "response",
            lambda r: (
                refused.append((r.request.method, r.url[len(base) :], r.status))
                if r.status >= 400
                else None
            ),
        )
        page.on(
            "request",
            lambda r: (
                None if r.url.startswith((base, "blob:", "data:")) else elsewhere.append(r.url)
            ),
        )

        def shot(name: str) -> None:
            page.screenshot(path=str(shots / f"{name}.png"), full_page=True)

        # -- log in: a bad password first, then an account ---------------------------------
        page.goto(f"{base}/")
        expect(page.locator("#login")).to_be_visible()
        expect(page.locator("#app")).to_be_hidden()
        shot("01-login")
        page.fill("#name", "alice")
        page.fill("#password", "short")
        page.click("#register-button")
        expect(page.locator("#error")).to_contain_text("password")
        page.fill("#password", PASSWORD)
        page.click("#register-button")
        expect(page.locator("#me")).to_have_text("alice")
        expect(page.locator("#error")).to_have_text("")
        shot("02-logged-in")
        api = _api(base, "alice")
        assert api.get("/api/me").json()["name"] == "alice"

        # -- upload a photo: Fig. 8, Fig. 9 and the items found as cut-outs ------------------
        page.set_input_files("#photo-file", str(photo))
        page.click("#upload-button")
        expect(page.locator("#photo-status")).to_have_text(f"{garments} item(s) found")
        overlay = page.locator("[data-picture=overlay] img")
        view = page.locator("[data-picture=supercategories] img")
        # A 200 px photo is drawn enlarged 3×: the smallest whole factor that reaches 512 px.
        drawn = 600
        expect(overlay).to_have_js_property("naturalWidth", drawn)
        expect(overlay).to_have_js_property("naturalHeight", drawn)
        expect(view).to_have_js_property("naturalHeight", drawn)
        assert view.evaluate("img => img.naturalWidth") > drawn  # the legend is on the right
        expect(page.locator("[data-picture=overlay] figcaption")).to_contain_text("Fig. 8")
        expect(page.locator("[data-picture=supercategories] figcaption")).to_contain_text("Fig. 9")
        jobs = api.get("/api/photos").json()
        assert [j["status"] for j in jobs] == ["done"] and len(jobs[0]["items"]) == garments
        found = jobs[0]["items"]
        expect(page.locator("#photo-items figure")).to_have_count(garments)
        for key in found:
            expect(page.locator(f"#photo-items [data-item='{key}'] img")).to_have_js_property(
                "complete", True
            )
            width = page.locator(f"#photo-items [data-item='{key}'] img").evaluate(
                "img => img.naturalWidth"
            )
            assert width > 0, key
        expect(page.locator("#photo-list li")).to_have_count(1)
        shot("03-photo")

        # -- the gallery: one card per item, each with its cut-out --------------------------
        cards = page.locator("#gallery .card")
        expect(cards).to_have_count(garments)
        for key in found:
            cutout = page.locator(f".card[data-item='{key}'] img.cutout")
            expect(cutout).to_have_js_property("complete", True)
            assert cutout.evaluate("img => img.naturalWidth") > 0
        shot("04-gallery")

        # -- the same garments photographed again: merged into the items they are -----------
        page.set_input_files("#photo-file", str(_photographed_again(photo, predictor)))
        page.click("#upload-button")
        notes = page.locator("#photo-notes li")
        expect(notes.first).to_contain_text("looks like")  # the second photo's job is done
        [second] = [j for j in api.get("/api/photos").json() if j["id"] != jobs[0]["id"]]
        assert second["status"] == "done" and len(second["items"]) == garments
        duplicates = second["duplicates"]
        assert {d["existing"] for d in duplicates} <= set(found)
        expect(notes).to_have_count(len(duplicates))
        merged = {}
        for d in duplicates:  # the most alike first
            note = page.locator(f"#photo-notes li[data-duplicate='{d['new']}']"
                                f"[data-existing='{d['existing']}']")
            if d["new"] not in merged:
                note.locator("button").click()
                merged[d["new"]] = d["existing"]
            expect(note).to_have_text(f"{d['new']} merged into {merged[d['new']]}")
        # What the duplicate check did not name stays an item of its own.
        garments += len(second["items"]) - len(merged)
        expect(cards).to_have_count(garments)
        assert {i["id"] for i in api.get("/api/items").json()} >= set(found)
        shot("04-merged")

        # -- edit tags of a detected item ----------------------------------------------------
        key = found[0]
        card = page.locator(f".card[data-item='{key}']")
        expect(card.locator(".tags-summary")).to_contain_text("any season")
        card.locator("details.edit summary").click()
        card.locator("input[name=brand]").fill("Acme")
        card.locator("input[name=season]").fill("winter, autumn")
        card.locator("input[name=occasion]").fill("work")
        card.locator("button.save").click()
        # Read back from the server after the save: seasons in the calendar's order.
        expect(card.locator(".tags-summary")).to_contain_text("autumn, winter")
        expect(card.locator(".tags-summary")).to_contain_text("Acme")
        card.locator("details.edit summary").click()
        expect(card.locator("input[name=season]")).to_have_value("autumn, winter")
        expect(card.locator("input[name=brand]")).to_have_value("Acme")
        saved = api.get(f"/api/items/{key}").json()
        assert (saved["brand"], saved["season"], saved["occasion"]) == (
            "Acme", ["autumn", "winter"], ["work"]
        )  # fmt: skip
        card.locator("input[name=season]").fill("monsoon")
        card.locator("button.save").click()
        expect(card.locator(".error")).to_contain_text("monsoon")
        assert api.get(f"/api/items/{key}").json()["season"] == ["autumn", "winter"]
        shot("05-edit")
        page.click("#filter-clear")  # reload the gallery: the rejected edit is dropped
        expect(card.locator(".tags-summary")).to_contain_text("autumn, winter")

        # -- add items by hand ----------------------------------------------------------------
        for item_id, category, colour in BY_HAND:
            page.fill("#add-id", item_id)
            page.fill("#add-category", category)
            page.fill("#add-color", colour)
            page.click("#add-button")
            expect(page.locator(f".card[data-item='{item_id}']")).to_have_count(1)
        expect(cards).to_have_count(garments + len(BY_HAND))
        assert api.get("/api/items/loafers").json()["colors"] == ["#5a3a22"]
        page.fill("#add-id", "jeans")
        page.fill("#add-category", "pants")
        page.click("#add-button")
        expect(page.locator("#error")).to_contain_text("already")

        # -- filter the gallery ---------------------------------------------------------------
        def shown() -> set[str]:
            return set(cards.evaluate_all("cards => cards.map(c => c.dataset.item)"))

        for category, season, occasion in (("pants", "", ""), ("", "winter", ""), ("", "", "work")):
            page.fill("#filter-category", category)
            page.select_option("#filter-season", season)
            page.fill("#filter-occasion", occasion)
            params = {k: v for k, v in
                      (("category", category), ("season", season), ("occasion", occasion)) if v}  # fmt: skip
            expected = {i["id"] for i in api.get("/api/items", params=params).json()}
            assert expected, params
            page.click("#filter-button")
            expect(page.locator("#gallery-count")).to_have_text(f"{len(expected)} item(s)")
            assert shown() == expected, params
        assert shown() == {key}
        shot("06-filter")
        page.click("#filter-clear")
        expect(cards).to_have_count(garments + len(BY_HAND))

        # -- outfits with explanations, and feedback ------------------------------------------
        page.click("#suggest-button")
        outfits = page.locator("#outfit-list li.outfit")
        expected = api.get("/api/outfits", params={"n": 5}).json()
        assert len(expected) >= 3
        expect(outfits).to_have_count(len(expected))
        for row, outfit in zip(outfits.all(), expected, strict=True):
            expect(row.locator(".explanation")).to_have_text(outfit["explanation"])
            pieces = row.locator("figure").evaluate_all("fs => fs.map(f => f.dataset.item)")
            assert pieces == outfit["items"]
            assert outfit["explanation"].strip()
        shot("07-outfits")
        for row, kind in zip(outfits.all()[:3], ("like", "dislike", "wore"), strict=True):
            row.locator(f"button[data-kind={kind}]").click()
            expect(row.locator(f"button[data-kind={kind}]")).to_have_text(f"{kind} ✓")
        events = api.get("/api/outfits/feedback").json()
        assert [(sorted(e["items"]), e["kind"]) for e in events] == [
            (sorted(o["items"]), kind)
            for o, kind in zip(expected[:3], ("like", "dislike", "wore"), strict=True)
        ]
        today = dt.date.today().isoformat()
        for worn in expected[2]["items"]:
            assert api.get(f"/api/items/{worn}").json()["last_worn"] == today
            expect(page.locator(f".card[data-item='{worn}'] .worn")).to_have_text(
                f"worn once · last worn {today}"
            )
        shot("08-feedback")

        # -- change the password: earlier tokens end, the new password logs in ----------------
        old_token = page.evaluate("sessionStorage.getItem('fashionkit-token')")
        page.click("#password-change summary")
        page.fill("#current-password", "not the password")
        page.fill("#new-password", NEW_PASSWORD)
        page.fill("#repeat-password", NEW_PASSWORD + "!")
        page.click("#password-button")
        expect(page.locator("#error")).to_contain_text("differ")  # refused before any request
        page.fill("#repeat-password", NEW_PASSWORD)
        page.click("#password-button")
        expect(page.locator("#error")).to_contain_text("current password is wrong")
        page.fill("#current-password", PASSWORD)
        page.click("#password-button")
        expect(page.locator("#password-status")).to_contain_text("Password changed")
        expect(page.locator("#error")).to_have_text("")
        for field in ("#current-password", "#new-password", "#repeat-password"):
            expect(page.locator(field)).to_have_value("")
        new_token = page.evaluate("sessionStorage.getItem('fashionkit-token')")
        assert new_token and new_token != old_token

        def me(bearer: str) -> int:
            answer = httpx.get(f"{base}/api/me", headers={"Authorization": f"Bearer {bearer}"})
            return answer.status_code

        assert (me(old_token), me(new_token)) == (401, 200)
        shot("09-password")
        # A second tab still holding the old token (as another device would) goes back to
        # the login; the old password is refused there and the new one works.
        other = browser.new_page()
        other.set_default_timeout(15_000)
        other.on("pageerror", lambda err: problems.append(f"other tab: page error: {err}"))
        other_refused: list[tuple[str, str, int]] = []
        other.on(
            "response",
            lambda r: (
                other_refused.append((r.request.method, r.url[len(base) :], r.status))
                if r.status >= 400
                else None
            ),
        )
        other.goto(f"{base}/")
        other.evaluate(f"sessionStorage.setItem('fashionkit-token', {old_token!r})")
        other.reload()
        expect(other.locator("#login")).to_be_visible()
        expect(other.locator("#app")).to_be_hidden()
        assert other.evaluate("sessionStorage.getItem('fashionkit-token')") is None
        other.fill("#name", "alice")
        other.fill("#password", PASSWORD)
        other.click("#login-button")
        expect(other.locator("#error")).to_contain_text("wrong name or password")
        other.fill("#password", NEW_PASSWORD)
        other.click("#login-button")
        expect(other.locator("#me")).to_have_text("alice")
        expect(other.locator("#gallery .card")).to_have_count(garments + len(BY_HAND))
        assert other_refused[-1] == ("POST", "/api/token", 401), other_refused
        assert all(status == 401 for _, _, status in other_refused), other_refused
        other.close()
        # The old token's refusals did not end the new login of the first tab.
        assert me(new_token) == 200
        page.click("#filter-clear")
        expect(cards).to_have_count(garments + len(BY_HAND))

        # -- log out; the next person sees nothing of alice's ---------------------------------
        token = page.evaluate("sessionStorage.getItem('fashionkit-token')")
        page.click("#logout")
        expect(page.locator("#login")).to_be_visible()
        # Logging out ends the login on the server too: the page's token no longer works.
        deadline = time.monotonic() + 10
        while (
            httpx.get(f"{base}/api/me", headers={"Authorization": f"Bearer {token}"}).status_code
            != 401
        ):
            assert time.monotonic() < deadline, "the page's token still works after log out"
            time.sleep(0.1)
        for emptied in ("#gallery", "#photo-pictures", "#photo-items", "#outfit-list"):
            assert page.locator(emptied).evaluate("e => e.childElementCount") == 0, emptied
        shot("10-logged-out")
        page.fill("#name", "bob")
        page.fill("#password", PASSWORD)
        page.click("#register-button")
        expect(page.locator("#me")).to_have_text("bob")
        expect(page.locator("#gallery-count")).to_have_text("0 item(s)")
        expect(cards).to_have_count(0)
        expect(page.locator("#photo-list li")).to_have_count(0)
        shot("11-next-person")
        browser.close()

    assert problems == [], "\n".join(problems)
    assert elsewhere == [], "the page asked for something off the server"
    assert refused == [  # exactly the bad input given on purpose; no 404 for missing cut-outs
        ("POST", "/api/users", 422),
        ("PATCH", f"/api/items/{key}", 422),
        ("POST", "/api/items", 409),
        ("POST", "/api/me/password", 403),
    ]
    assert sorted(p.name for p in shots.iterdir()) == [
        "01-login.png", "02-logged-in.png", "03-photo.png", "04-gallery.png", "04-merged.png",
        "05-edit.png",
        "06-filter.png", "07-outfits.png", "08-feedback.png", "09-password.png",
        "10-logged-out.png", "11-next-person.png",
    ]  # fmt: skip
    with Wardrobe(db, user="alice", apply_migrations=False) as wardrobe:  # the database itself
        assert len(wardrobe) == garments + len(BY_HAND)
        assert wardrobe.get(key).brand == "Acme"
        assert [e.kind for e in wardrobe.feedback()] == ["like", "dislike", "wore"]
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", base)
