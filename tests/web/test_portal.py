"""The victim portal over HTTP, in process: pages, case creation, status, withdrawal,
PIN lock-out, limits and privacy headers (SQLite and PostgreSQL)."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
from portal_support import PORTAL_IMAGES, case_body, image_hash_set, scan_body, visible_text
from test_portal_i18n import zh_catalog
from web_support import Api, serving

from redress.config import Settings
from redress.pipeline.keys import Scope
from redress.pipeline.matching import StoreMatcher

pytestmark = pytest.mark.anyio


def images(shared_data: Path) -> list[Path]:
    return [shared_data / "pdq" / name for name in PORTAL_IMAGES]


async def create(api: Api, body: dict[str, object]) -> dict[str, str]:
    response = await api.client.post("/protect/api/cases", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, str] = response.json()
    return created


async def scan_matches(api: Api, body: dict[str, object], auth: dict[str, str]) -> list[str]:
    matcher = api.state.pipeline.service.matcher
    assert isinstance(matcher, StoreMatcher)
    matcher.follower.poll()
    # Seen in a group (a target), so the match is recorded as a sighting.
    seen = {**body, "target": {"platform": "telegram", "chat_id": "-100", "message_id": "7"}}
    response = await api.client.post("/api/v1/scan", json=seen, headers=auth)
    assert response.status_code == 200, response.text
    return [m["bank"] for m in response.json()["matches"]]


async def test_portal_page_explains_and_sets_privacy_headers(api: Api) -> None:
    response = await api.client.get("/protect", headers={"Accept-Language": "en"})
    assert response.status_code == 200
    text = response.text
    assert "Your pictures stay on your device." in text
    assert "https://takeitdown.ncmec.org/" in text  # the configured under-18 route
    csp = response.headers["content-security-policy"]
    assert "default-src 'self'" in csp
    assert "connect-src 'self'" in csp
    assert "set-cookie" not in response.headers  # no cookie unless she picks a language
    assert re.search(r"<script[^>]*src=\"https?://", text) is None
    static = await api.client.get("/static/portal/portal.js")
    assert static.status_code == 200
    assert "content-security-policy" in static.headers


async def test_language_from_browser_query_and_cookie(api: Api) -> None:
    zh = await api.client.get("/protect", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"})
    assert '<html lang="zh-Hans">' in zh.text
    assert "保护你的照片" in zh.text
    en = await api.client.get("/protect?lang=en", headers={"Accept-Language": "zh-CN"})
    assert '<html lang="en">' in en.text
    assert en.headers["set-cookie"].startswith("redress_lang=en")
    # The cookie now outranks the browser's preference.
    again = await api.client.get("/protect", headers={"Accept-Language": "zh-CN"})
    assert '<html lang="en">' in again.text


async def test_case_is_created_matches_and_withdrawal_stops_matching(
    api: Api, shared_data: Path
) -> None:
    paths = images(shared_data)
    created = await create(api, case_body(paths))
    assert re.fullmatch(r"RC-[A-Z0-9-]+", created["case_number"])
    assert created["pin"]
    auth = api.auth(Scope.SCAN)
    assert await scan_matches(api, scan_body(paths[0]), auth) == ["victim-cases"]
    # A low-quality image is still protected by its exact digests.
    low = image_hash_set(paths[1])
    assert low["quality"] < 50
    assert await scan_matches(api, {"md5": low["md5"]}, auth) == ["victim-cases"]

    status = await api.client.post(
        "/protect/status", data={"case_number": created["case_number"], "pin": created["pin"]}
    )
    assert status.status_code == 200
    figures = re.search(r'id="case-matches">([^<]*)<', status.text)
    assert figures is not None, status.text
    assert figures.group(1).startswith("2"), figures.group(1)  # both scans were recorded
    assert 'id="case-entries">' in status.text

    withdrawn = await api.client.post(
        "/protect/withdraw",
        data={"case_number": created["case_number"], "pin": created["pin"], "confirm": "yes"},
    )
    assert withdrawn.status_code == 200
    assert "Withdrawn" in withdrawn.text
    assert await scan_matches(api, scan_body(paths[0]), auth) == []
    assert await scan_matches(api, {"md5": low["md5"]}, auth) == []


async def test_withdrawal_needs_confirmation(api: Api, shared_data: Path) -> None:
    created = await create(api, case_body(images(shared_data)[:1]))
    response = await api.client.post(
        "/protect/withdraw", data={"case_number": created["case_number"], "pin": created["pin"]}
    )
    assert response.status_code == 400
    assert "Tick the box" in response.text
    assert (
        'id="case-status">Received' in response.text or 'id="case-status">Active' in response.text
    )


async def test_wrong_pins_lock_the_case_even_for_the_right_pin(api: Api, shared_data: Path) -> None:
    created = await create(api, case_body(images(shared_data)[:1]))
    number = created["case_number"]
    for left in (4, 3, 2, 1):
        wrong = await api.client.post("/protect/status", data={"case_number": number, "pin": "0"})
        assert wrong.status_code == 403
        assert f"locked for a while: {left}." in wrong.text
    locked = await api.client.post("/protect/status", data={"case_number": number, "pin": "0"})
    assert locked.status_code == 429
    assert "locked until" in locked.text
    right = await api.client.post(
        "/protect/status", data={"case_number": number, "pin": created["pin"]}
    )
    assert right.status_code == 429  # the lock holds, and it is in the database
    unknown = await api.client.post(
        "/protect/status", data={"case_number": "RC-NOPE", "pin": created["pin"]}
    )
    assert unknown.status_code == 403
    assert "do not match" in unknown.text


async def test_case_needs_declarations_valid_hashes_and_a_cap(
    settings: Settings, shared_data: Path
) -> None:
    capped = settings.model_copy(update={"portal_max_hashes": 15})
    async with serving(capped) as api:
        paths = images(shared_data)
        no_declaration = case_body(paths[:1], declarations={"depicted": True})
        response = await api.client.post("/protect/api/cases", json=no_declaration)
        assert response.status_code == 400
        assert response.json()["error"] == "declaration_required"
        too_many = await api.client.post("/protect/api/cases", json=case_body(paths[:2]))
        assert too_many.status_code == 413
        assert too_many.json()["error"] == "too_many_hashes"
        body = case_body(paths[:1])
        body["files"][0]["hashes"]["thumbnail"] = "ffd8ffe0"  # anything extra is refused
        extra = await api.client.post("/protect/api/cases", json=body)
        assert extra.status_code == 400
        assert extra.json()["error"] == "bad_hash_set"
        empty = await api.client.post("/protect/api/cases", json={"files": []})
        assert empty.status_code == 400


async def test_case_creation_is_rate_limited_per_client(
    settings: Settings, shared_data: Path
) -> None:
    limited = settings.model_copy(update={"portal_case_burst": 2, "portal_case_rate_per_hour": 1.0})
    async with serving(limited) as api:
        body = case_body(images(shared_data)[:1])
        for _ in range(2):
            assert (await api.client.post("/protect/api/cases", json=body)).status_code == 201
        refused = await api.client.post("/protect/api/cases", json=body)
        assert refused.status_code == 429
        assert refused.json()["error"] == "rate_limited"
        assert int(refused.headers["retry-after"]) > 0


async def test_hashes_and_pins_are_not_logged(
    api: Api, shared_data: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    body = case_body(images(shared_data)[:1])
    created = await create(api, body)
    await api.client.post(
        "/protect/status", data={"case_number": created["case_number"], "pin": created["pin"]}
    )
    logged = caplog.text
    hashes = body["files"][0]["hashes"]
    assert hashes["pdq"] not in logged
    assert hashes["md5"] not in logged
    assert created["pin"] not in logged


# (Here, before any browser test: Playwright's sync API holds an event loop for the session.)
async def test_chinese_pages_contain_no_untranslated_strings(api: Api, shared_data: Path) -> None:
    created = (
        await api.client.post(
            "/protect/api/cases",
            json=case_body([shared_data / "pdq" / PORTAL_IMAGES[0]]),
        )
    ).json()
    pages = [
        (await api.client.get("/protect?lang=zh")).text,
        (await api.client.get("/protect/status?lang=zh")).text,
        (
            await api.client.post(
                "/protect/status?lang=zh",
                data={"case_number": created["case_number"], "pin": created["pin"]},
            )
        ).text,
        (
            await api.client.post(
                "/protect/status?lang=zh", data={"case_number": created["case_number"], "pin": "1"}
            )
        ).text,
    ]
    msgids = [m for m in zh_catalog() if len(m) > 3]
    for page in pages:
        text = visible_text(page)
        assert '<html lang="zh-Hans">' in page
        leaked = [m for m in msgids if m in page or m in text]
        assert leaked == []
        # Any run of two or more English words is a leak, bar the names kept on purpose.
        allowed = {"Redress", "English", "PIN", "UTC", "JPEG", "iPhone", "Cookie", "RC"}
        words = re.findall(r"[A-Za-z]{2,}(?:\s+[A-Za-z]{2,})+", text)
        english = [w for w in words if not set(w.split()) <= allowed]
        assert english == [], english


async def test_status_counts_removals_of_copies_that_matched_her_case(
    api: Api, shared_data: Path
) -> None:
    import datetime as dt

    from redress.pipeline.models import ScanAction

    path = images(shared_data)[0]
    created = await create(api, case_body([path]))
    auth = api.auth(Scope.SCAN)
    matcher = api.state.pipeline.service.matcher
    assert isinstance(matcher, StoreMatcher)
    matcher.follower.poll()
    seen = {
        **scan_body(path),
        "target": {"platform": "telegram", "chat_id": "-5", "message_id": "1"},
    }
    scanned = (await api.client.post("/api/v1/scan", json=seen, headers=auth)).json()
    assert scanned["outcome"] == "review"  # her bank's matches go to people first
    # A reviewer confirmed it and the connector deleted the message.
    done_at = dt.datetime(2026, 11, 24, 9, 30, tzinfo=dt.UTC)
    with api.state.pipeline.sessions.begin() as session:
        session.add(
            ScanAction(
                id=f"{scanned['id']}:delete_message",
                item_id=scanned["id"],
                kind="delete_message",
                status="done",
                attempts=1,
                created_at=done_at,
                done_at=done_at,
            )
        )
    status = await api.client.post(
        "/protect/status?lang=zh",
        data={"case_number": created["case_number"], "pin": created["pin"]},
    )
    removed = re.search(r'id="case-removed">([^<]*)<', status.text)
    assert removed is not None
    assert removed.group(1).startswith("1")
    assert "2026年11月24日" in removed.group(1)


async def test_copies_seen_before_the_case_count_at_once(api: Api, shared_data: Path) -> None:
    path = images(shared_data)[2]
    auth = api.auth(Scope.SCAN)
    # Posted in a group before she opened her case: nothing to match yet, but recorded.
    assert await scan_matches(api, scan_body(path), auth) == []
    created = await create(api, case_body([path]))
    status = await api.client.post(
        "/protect/status", data={"case_number": created["case_number"], "pin": created["pin"]}
    )
    matches = re.search(r'id="case-matches">([^<]*)<', status.text)
    assert matches is not None
    assert matches.group(1).startswith("1")


async def test_a_cropped_copy_of_a_protected_picture_matches_through_its_robust_set(
    api: Api, shared_data: Path, tmp_path: Path
) -> None:
    from PIL import Image

    original = images(shared_data)[0]
    with Image.open(original) as image:
        width, height = image.size
        # A fifth cut off the top: plain PDQ of the copy is far from the original's.
        image.convert("RGB").crop((0, round(0.21 * height), width, height)).save(
            tmp_path / "cropped.jpg", quality=90
        )
    cropped = scan_body(tmp_path / "cropped.jpg")
    auth = api.auth(Scope.SCAN)
    without = case_body([original])
    for item in without["files"]:  # type: ignore[attr-defined]
        item["hashes"]["robust"] = []
    await create(api, without)
    assert await scan_matches(api, cropped, auth) == []
    await create(api, case_body([original]))
    assert await scan_matches(api, cropped, auth) == ["victim-cases"]
