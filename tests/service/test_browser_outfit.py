""""Today's outfit" on the page, in headless Chromium: a person adds two photos, logs an
outfit photo of a chosen day, sees their recognised items highlighted and the new ones offered,
adds one with the tags suggested from their labelled items in one click and another with a tag
edited, says another is one of theirs, sees times worn and last worn on the cards, and asks for outfits that favour rarely
worn items and leave out what was just worn. Each step is checked against what the server
holds; screenshots go to the test's ``screenshots/`` folder. Same server, browser and rules as
tests/service/test_browser.py (its fixture and settings)."""

from __future__ import annotations

from .test_browser import CHROMIUM, CHROMIUM_ARGS, PASSWORD, _api, live, pytestmark  # noqa: F401

DAY = "2026-11-20"


def test_todays_outfit_in_the_browser(live, tmp_path):  # noqa: F811 - the imported fixture
    from playwright.sync_api import expect, sync_playwright

    base, _, predictor = live
    photos = []
    for index in (0, 2):
        path = tmp_path / f"photo{index}.png"
        path.write_bytes(predictor.photo(index, size=200))
        photos.append(path)
    outfit = tmp_path / "outfit.png"
    outfit.write_bytes(predictor.outfit(0, 1, size=200))
    shots = tmp_path / "screenshots"
    shots.mkdir()
    problems: list[str] = []
    elsewhere: list[str] = []

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(20_000)
        # Detection, embedding and recognition share two busy cores in the tests.
        expect.set_options(timeout=30_000)
        page.on("pageerror", lambda err: problems.append(f"page error: {err}"))
        page.on(
            "request",
            lambda r: (
                None if r.url.startswith((base, "blob:", "data:")) else elsewhere.append(r.url)
            ),
        )

        def shot(name: str) -> None:
            page.screenshot(path=str(shots / f"{name}.png"), full_page=True)

        page.goto(f"{base}/")
        page.fill("#name", "alice")
        page.fill("#password", PASSWORD)
        page.click("#register-button")
        expect(page.locator("#me")).to_have_text("alice")
        api = _api(base, "alice")
        for path in photos:
            page.set_input_files("#photo-file", str(path))
            page.click("#upload-button")
            expect(page.locator("#upload-button")).to_be_disabled()
            expect(page.locator("#upload-button")).to_be_enabled()
            expect(page.locator("#photo-status")).to_have_text(
                f"{predictor.garments(path.read_bytes())} item(s) found"
            )
        held = len(api.get("/api/items").json())
        expect(page.locator("#gallery .card")).to_have_count(held)
        expect(page.locator("#gallery .card .worn").first).to_have_text("never worn")

        # Alice's tags, which the offers' suggestions are learned from.
        for key in [i["id"] for i in api.get("/api/items").json()]:
            tagged = api.patch(f"/api/items/{key}", json={"brand": "acme", "occasion": ["work"]})
            assert tagged.status_code == 200, tagged.text

        # -- today's outfit: recognised items highlighted, new ones offered -------------------
        page.fill("#outfit-photo-day", DAY)
        page.set_input_files("#outfit-photo-file", str(outfit))
        page.click("#outfit-photo-button")
        status = page.locator("#outfit-photo-status")
        expect(status).to_contain_text(f"worn on {DAY}")
        job = api.get("/api/outfit-photos").json()[-1]
        recognised = [r["item"] for r in job["recognised"]]
        assert job["status"] == "done" and recognised and job["new"]
        expect(status).to_have_text(
            f"worn on {DAY}: {len(recognised)} of your items recognised, {len(job['new'])} new"
        )
        highlighted = page.locator("#outfit-recognised figure.recognised")
        expect(highlighted).to_have_count(len(recognised))
        assert highlighted.evaluate_all("fs => fs.map(f => f.dataset.item)") == recognised
        for key in recognised:
            expect(page.locator(f"#outfit-recognised [data-item='{key}'] img")).to_have_js_property(
                "complete", True
            )
            expect(page.locator(f".card[data-item='{key}'] .worn")).to_have_text(
                f"worn once · last worn {DAY}"
            )
        offers = page.locator("#outfit-new figure.offer")
        expect(offers).to_have_count(len(job["new"]))
        assert page.locator("[data-picture=outfit] img").evaluate("i => i.naturalWidth") > 0
        # Each offer shows its suggested tags with their confidence, ready to confirm.
        assert len(job["new"]) >= 3
        for n, offer in enumerate(job["new"]):
            suggested = offer["suggested_tags"]
            assert suggested["brand"]["value"] == "acme" and suggested["occasion"]["value"] == ["work"]
            for field, s in suggested.items():
                row = offers.nth(n).locator(f".suggested [data-tag='{field}']")
                value = ", ".join(s["value"]) if isinstance(s["value"], list) else s["value"]
                expect(row.locator("input")).to_have_value(value)
                why = "learned" if s["source"] == "learned" else "your usual"
                expect(row.locator(".confidence")).to_have_text(
                    f"{round(s['confidence'] * 100)}% · {why}"
                )
        expect(offers.first.locator("button.add")).to_have_text("Add with these tags")
        shot("01-todays-outfit")

        first = job["new"][0]
        offers.first.locator("button.add").click()
        expect(offers.first.locator("button.add")).to_have_text("Added")
        expect(offers.first.locator("button.add")).to_be_disabled()
        added = api.get(f"/api/items/{first['id']}").json()
        assert added["times_worn"] == 1 and added["last_worn"] == DAY
        # One click applied every suggestion to the item.
        for field, s in first["suggested_tags"].items():
            assert added.get(field) == s["value"], (field, added)
        card = page.locator(f".card[data-item='{first['id']}']")
        expect(card.locator(".worn")).to_have_text(f"worn once · last worn {DAY}")
        expect(card.locator("img.cutout")).to_have_js_property("complete", True)
        expect(page.locator("#gallery .card")).to_have_count(held + 1)
        assert api.get("/api/outfit-photos").json()[-1]["new"][0]["added"] == first["id"]
        # Another offer is one of alice's items that recognition missed: "It's <closest>".
        second = job["new"][1]
        closest = second["candidates"][0]["item"]
        mine = offers.nth(1).locator("button.is-mine")
        expect(mine).to_have_text(f"It's {closest}")
        mine.click()
        expect(mine).to_have_text(f"{closest} ✓")
        expect(offers.nth(1).locator("button.add")).to_be_disabled()
        assert api.get("/api/outfit-photos").json()[-1]["new"][1]["added"] == closest
        assert api.get(f"/api/items/{closest}").json()["last_worn"] == DAY
        # A suggestion edited before adding, another emptied: the item has what was left.
        third = job["new"][2]
        offers.nth(2).locator(".suggested [data-tag='brand'] input").fill("zara")
        offers.nth(2).locator(".suggested [data-tag='occasion'] input").fill("")
        offers.nth(2).locator("button.add").click()
        expect(offers.nth(2).locator("button.add")).to_have_text("Added")
        edited = api.get(f"/api/items/{third['id']}").json()
        assert edited["brand"] == "zara" and "occasion" not in edited, edited
        expect(page.locator("#gallery .card")).to_have_count(held + 2)
        shot("02-added")

        # -- outfits that favour rarely worn items and leave out what was just worn -----------
        page.check("#outfit-rarely")
        page.fill("#outfit-not-worn", "3650")
        page.click("#suggest-button")
        params = {"n": 5, "favour_rarely_worn": "true", "not_worn_days": 3650}
        expected = api.get("/api/outfits", params=params).json()
        rows = page.locator("#outfit-list li.outfit")
        expect(rows).to_have_count(len(expected))
        worn_now = set(recognised) | {first["id"], third["id"], closest}
        for row, suggestion in zip(rows.all(), expected, strict=True):
            expect(row.locator(".explanation")).to_have_text(suggestion["explanation"])
            assert not worn_now & set(suggestion["items"])
            assert "never worn" in suggestion["explanation"]
        shot("03-outfits")

        page.click("#logout")
        expect(page.locator("#login")).to_be_visible()
        for emptied in ("#outfit-recognised", "#outfit-new", "#outfit-photo-picture"):
            assert page.locator(emptied).evaluate("e => e.childElementCount") == 0, emptied
        expect(page.locator("#outfit-photo-status")).to_have_text("")
        browser.close()
    assert problems == [] and elsewhere == []

