"""Notices on the web: the public form (CSRF, rate limit, fields named, Chinese) and the
API (scopes, trusted flaggers, 422 naming fields, statements and reports for review keys)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from reports_support import FAST_HASHER, IMAGE, PASSWORD, Inbox

from redress.config import Settings
from redress.pipeline.keys import ApiKeyService, Scope
from redress.review.interfaces import Role
from redress.review.service import ReviewConfig, ReviewService
from redress.review.store import ReviewStore
from redress.web.app import AppState, create_app

pytestmark = pytest.mark.anyio
TAKE_IT_DOWN = {
    "regime": "take_it_down",
    "locations": ["https://t.me/c/1001001/1"],
    "signature": "Jane Doe",
    "non_consent": True,
    "sender_email": "jane@example.org",
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def web_settings(redress_home: Path, database_url: str, smtp: tuple[Inbox, int]) -> Settings:
    return Settings(
        home=redress_home,
        database_url=database_url,
        pipeline_threads=1,
        smtp_host="127.0.0.1",
        smtp_port=smtp[1],
        notice_form_burst=3,
    )


class Site:
    def __init__(self, app: object, client: httpx.AsyncClient) -> None:
        self.app = app
        self.client = client

    @property
    def state(self) -> AppState:
        state: AppState = self.app.state.redress  # type: ignore[attr-defined]
        return state

    def auth(self, *scopes: Scope) -> dict[str, str]:
        with self.state.pipeline.sessions.begin() as session:
            token = ApiKeyService(session).create("ngo", frozenset(scopes)).token
        return {"Authorization": f"Bearer {token}"}

    async def form(self, **fields: str) -> httpx.Response:
        page = await self.client.get("/notice")
        match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert match is not None
        return await self.client.post("/notice", data={"csrf_token": match.group(1), **fields})


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[Site]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://redress.test") as client:
            yield Site(app, client)


@pytest.fixture
async def site(web_settings: Settings) -> AsyncIterator[Site]:
    async with serving(web_settings) as running:
        yield running


async def test_the_form_takes_a_notice_and_acknowledges_it(site: Site, inbox: Inbox) -> None:
    page = await site.client.get("/notice")
    assert page.status_code == 200
    assert "default-src 'self'" in page.headers["content-security-policy"]
    answer = await site.form(
        regime="take_it_down",
        locations="https://t.me/c/1001001/1\nhttps://example.org/p/9",
        signature="Jane Doe",
        non_consent="yes",
        sender_email="jane@example.org",
    )
    assert answer.status_code == 201
    reference = re.search(r"N-[0-9A-F]{10}", answer.text)
    assert reference is not None
    mails = inbox.to("jane@example.org")
    assert [m["Subject"] for m in mails] == [f"Notice {reference.group(0)} received"]


async def test_the_form_names_each_missing_field(site: Site) -> None:
    answer = await site.form(regime="dsa", locations="https://example.org/p/9")
    assert answer.status_code == 422
    named = set(re.findall(r'data-field="(\w+)"', answer.text))
    assert named == {"explanation", "sender_name", "sender_email", "good_faith"}


async def test_the_form_refuses_a_forged_post_and_limits_each_address(site: Site) -> None:
    site.client.cookies.set("redress_notice_csrf", "y", path="/notice")
    forged = await site.client.post("/notice", data={"csrf_token": "x", "regime": "dsa"})
    assert forged.status_code == 403
    assert 'data-field="csrf"' in forged.text
    codes = [(await site.form(regime="dsa")).status_code for _ in range(4)]
    assert codes == [422, 422, 422, 429]


async def test_the_form_speaks_chinese(site: Site) -> None:
    page = await site.client.get("/notice?lang=zh")
    assert "举报要求删除的内容" in page.text
    assert "Report content for removal" not in page.text


async def test_api_needs_the_notice_scope_and_names_missing_fields(site: Site) -> None:
    assert (await site.client.post("/api/v1/notices", json=TAKE_IT_DOWN)).status_code == 401
    scan_only = site.auth(Scope.SCAN)
    refused = await site.client.post("/api/v1/notices", json=TAKE_IT_DOWN, headers=scan_only)
    assert refused.status_code == 403
    key = site.auth(Scope.NOTICE)
    incomplete = {k: v for k, v in TAKE_IT_DOWN.items() if k != "signature"}
    answer = await site.client.post("/api/v1/notices", json=incomplete, headers=key)
    assert answer.status_code == 422
    assert answer.json()["error"] == "notice_incomplete"
    assert "signature" in answer.json()["detail"]


async def test_api_notice_with_copies_and_a_trusted_flagger(site: Site) -> None:
    scan = site.auth(Scope.SCAN)
    for chat in ("-1001001001", "-1001002002"):
        body = {
            "pdq": [IMAGE.hex()],
            "target": {"platform": "telegram", "chat_id": chat, "message_id": "1"},
        }
        assert (await site.client.post("/api/v1/scan", json=body, headers=scan)).status_code == 200
    flagger = site.auth(Scope.NOTICE, Scope.TRUSTED_FLAGGER)
    answer = await site.client.post("/api/v1/notices", json=TAKE_IT_DOWN, headers=flagger)
    assert answer.status_code == 201, answer.text
    notice = answer.json()
    assert notice["trusted"] is True
    assert sorted(i["relation"] for i in notice["items"]) == ["identical", "located"]
    again = await site.client.get(f"/api/v1/notices/{notice['reference']}", headers=flagger)
    assert again.json()["reference"] == notice["reference"]
    other = site.auth(Scope.NOTICE)
    hidden = await site.client.get(f"/api/v1/notices/{notice['reference']}", headers=other)
    assert hidden.status_code == 404


async def test_statements_and_reports_need_the_review_scope(site: Site) -> None:
    notice_key = site.auth(Scope.NOTICE)
    review = site.auth(Scope.REVIEW)
    for path in (
        "/api/v1/statements",
        "/api/v1/reports/transparency?from=2026-01-01&to=2026-02-01",
    ):
        assert (await site.client.get(path, headers=notice_key)).status_code == 403
        assert (await site.client.get(path, headers=review)).status_code == 200
    csv_answer = await site.client.get("/api/v1/statements?format=csv", headers=review)
    assert csv_answer.text.startswith("decision_visibility,")
    bad = await site.client.get(
        "/api/v1/reports/transparency?from=2026-02-01&to=2026-01-01", headers=review
    )
    assert bad.status_code == 400
    assert bad.json()["error"] == "report_bad_input"


async def console_login(site: Site, email: str, role: Role) -> None:
    with site.state.pipeline.sessions.begin() as session:
        ReviewService(ReviewStore(session), ReviewConfig(), passwords=FAST_HASHER).create_user(
            email, role, PASSWORD
        )
    page = await site.client.get("/review/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert csrf is not None
    answer = await site.client.post(
        "/review/login", data={"csrf_token": csrf.group(1), "email": email, "password": PASSWORD}
    )
    assert answer.status_code == 303


async def test_console_pages_for_notices_and_transparency(site: Site) -> None:
    assert (await site.client.get("/review/transparency")).status_code == 303  # log in first
    key = site.auth(Scope.NOTICE)
    made = await site.client.post(
        "/api/v1/notices",
        json={**TAKE_IT_DOWN, "locations": ["https://example.org/a"]},
        headers=key,
    )
    reference = made.json()["reference"]
    await console_login(site, "auditor@example.org", Role.AUDITOR)
    notices = await site.client.get("/review/notices")
    assert notices.status_code == 200
    assert reference in notices.text
    page = await site.client.get("/review/transparency")
    assert page.status_code == 200
    assert "<svg" in page.text
    assert re.search(r'id="notices">1<', page.text)
    exported = await site.client.get("/review/transparency.csv")
    assert exported.text.startswith("period,metric,key,value")
    assert (await site.client.get("/review/transparency.pdf")).status_code == 404
    bad = await site.client.get("/review/transparency?from=2026-02-01&to=2026-01-01")
    assert bad.status_code == 400


async def test_advocates_do_not_see_the_transparency_page(site: Site) -> None:
    await console_login(site, "advocate@example.org", Role.ADVOCATE)
    assert (await site.client.get("/review/transparency")).status_code == 403
    assert (await site.client.get("/review/notices")).status_code == 403


async def test_moderators_see_notice_items_in_the_queue(site: Site) -> None:
    scan = site.auth(Scope.SCAN)
    body = {
        "pdq": [IMAGE.hex()],
        "target": {"platform": "telegram", "chat_id": "-1001001001", "message_id": "1"},
    }
    await site.client.post("/api/v1/scan", json=body, headers=scan)
    made = await site.client.post(
        "/api/v1/notices", json=TAKE_IT_DOWN, headers=site.auth(Scope.NOTICE)
    )
    item_id = made.json()["items"][0]["review_item_id"]
    await console_login(site, "mod@example.org", Role.MODERATOR)
    queue = await site.client.get("/review/")
    assert queue.status_code == 200
    assert f"/review/items/{item_id}" in queue.text
    item = await site.client.get(f"/review/items/{item_id}")
    assert item.status_code == 200
    assert made.json()["reference"] in item.text
