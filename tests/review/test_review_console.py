"""The console's routes in-process: authorisation on every route for every role,
CSRF, login lock-out and the decision forms' refusals."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI
from review_support import FAST_HASHER, PASSWORD, VICTIM, flip

from console_support import log_in
from redress.actions.interfaces import ActionTarget
from redress.config import Settings
from redress.pipeline.interfaces import MatchQuery
from redress.pipeline.service import HashSubmission, ScanContext
from redress.review.interfaces import Role
from redress.review.service import ReviewConfig, ReviewService
from redress.review.store import ReviewStore
from redress.signals.types import PdqHash, SignalKind
from redress.store.interfaces import EntryIn
from redress.store.service import CaseService
from redress.web import console
from redress.web.app import AppState, create_app

pytestmark = pytest.mark.anyio

#: Which roles may use each console route (anything not listed here fails the walk).
ALLOWED: dict[tuple[str, str], set[str]] = {
    ("POST", "/review/logout"): {"admin", "moderator", "advocate", "auditor"},
    ("GET", "/review/"): {"admin", "moderator", "advocate"},
    ("GET", "/review/items/{item_id}"): {"admin", "moderator", "advocate"},
    ("GET", "/review/items/{item_id}/media"): {"admin", "moderator", "advocate"},
    ("POST", "/review/items/{item_id}/reveal"): {"admin", "moderator", "advocate"},
    ("POST", "/review/items/{item_id}/decide"): {"admin", "moderator"},
    ("POST", "/review/bulk"): {"admin", "moderator"},
    ("GET", "/review/appeals"): {"admin", "moderator", "auditor"},
    ("POST", "/review/clusters/{cluster_id}/appeal"): {"admin", "moderator"},
    ("GET", "/review/dashboard"): {"admin", "moderator", "auditor"},
    ("GET", "/review/audit"): {"admin", "auditor"},
    ("GET", "/review/notices"): {"admin", "moderator", "auditor"},
    ("GET", "/review/transparency"): {"admin", "moderator", "auditor"},
    ("GET", "/review/transparency.csv"): {"admin", "moderator", "auditor"},
    ("GET", "/review/transparency.json"): {"admin", "moderator", "auditor"},
    ("GET", "/review/users"): {"admin"},
    ("POST", "/review/users"): {"admin"},
}
PUBLIC = {("GET", "/review/login"), ("POST", "/review/login")}


@dataclass
class Site:
    app: FastAPI
    client: httpx.AsyncClient
    case_number: str

    @property
    def state(self) -> AppState:
        state: AppState = self.app.state.redress
        return state

    def service(self, session: object) -> ReviewService:
        return ReviewService(
            ReviewStore(session),  # type: ignore[arg-type]
            ReviewConfig.from_settings(self.state.settings),
            passwords=FAST_HASHER,
        )

    def user(self, email: str, role: Role, cases: tuple[str, ...] = ()) -> None:
        with self.state.pipeline.sessions.begin() as session:
            self.service(session).create_user(email, role, PASSWORD, cases=cases)

    def scan(self, bits: bytes, chat: str = "-1001", message: str = "1") -> str:
        with self.state.pipeline.sessions.begin() as session:
            result = self.state.pipeline.service.scan_hashes(
                session,
                HashSubmission(
                    MatchQuery(pdq=(PdqHash(bits, 100),)),
                    ScanContext(
                        source="telegram", target=ActionTarget("telegram", chat, message, "77")
                    ),
                ),
                key=None,
            )
        return result.item_id


@pytest.fixture
def settings(redress_home: object, database_url: str) -> Settings:
    return Settings(home=redress_home, database_url=database_url, pipeline_threads=1)  # type: ignore[arg-type]


@pytest.fixture
async def site(settings: Settings) -> AsyncIterator[Site]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        state: AppState = app.state.redress
        with state.pipeline.sessions.begin() as session:
            created = CaseService(session).create(
                [EntryIn(kind=SignalKind.PDQ, value=VICTIM, quality=100)], contact="v@example.org"
            )
        follower = getattr(state.pipeline.service.matcher, "follower", None)
        if follower is not None:
            follower.poll()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://redress.test") as client:
            yield Site(app, client, created.case.case_number)


async def login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> httpx.Response:
    return await log_in(client, email, password)


async def csrf_of(client: httpx.AsyncClient, path: str = "/review/dashboard") -> str:
    page = await client.get(path)
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found is not None, page.text[:300]
    return found.group(1)


async def test_every_route_allows_exactly_its_roles(site: Site) -> None:
    routes = {
        (method, route.path)  # type: ignore[attr-defined]
        for route in console.router.routes
        for method in route.methods  # type: ignore[attr-defined]
        if method != "HEAD"
    }
    assert routes == set(ALLOWED) | PUBLIC, "a console route has no authorisation expectation"
    for role in Role:
        site.user(
            f"{role.value}@example.org",
            role,
            cases=(site.case_number,) if role is Role.ADVOCATE else (),
        )
    site.scan(VICTIM)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=site.app), base_url="http://redress.test"
    ) as anonymous:
        for method, path in ALLOWED:
            url = path.format(item_id=1, cluster_id=1)
            answer = await anonymous.request(method, url, data={})
            assert answer.status_code in (303, 401), (method, path, answer.status_code)
            if method == "GET":
                assert answer.headers["location"] == "/review/login"
    for role in Role:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=site.app), base_url="http://redress.test"
        ) as client:
            assert (await login(client, f"{role.value}@example.org")).status_code == 303
            home = "/review/dashboard" if role is not Role.ADVOCATE else "/review/"
            csrf = await csrf_of(client, home)
            for (method, path), roles in ALLOWED.items():
                if path == "/review/logout":
                    continue
                url = path.format(item_id=1, cluster_id=1)
                answer = await client.request(method, url, data={"csrf_token": csrf})
                allowed = answer.status_code not in (401, 403)
                assert allowed == (role.value in roles), (role, method, path, answer.status_code)
                if not allowed:
                    assert "role_forbidden" in answer.text
            out = await client.post("/review/logout", data={"csrf_token": csrf})
            assert out.status_code == 303
            assert (await client.get("/review/dashboard")).status_code == 303


async def test_csrf_is_checked_on_every_form(site: Site) -> None:
    site.user("mod@example.org", Role.MODERATOR)
    site.scan(VICTIM)
    await login(site.client, "mod@example.org")
    queue = await site.client.get("/review/")
    item = re.search(r'href="/review/items/(\d+)"', queue.text)
    assert item is not None
    page = await site.client.get(f"/review/items/{item.group(1)}")
    version = re.search(r'name="version" value="(\d+)"', page.text)
    cluster = re.search(r'name="cluster_id" value="(\d+)"', page.text)
    assert version is not None
    assert cluster is not None
    form = {
        "cluster_id": cluster.group(1),
        "version": version.group(1),
        "outcome": "confirmed",
        "reason_code": "ncii_match",
        "actions": "delete_message",
    }
    for token in (None, "forged"):
        data = dict(form, **({"csrf_token": token} if token else {}))
        answer = await site.client.post(f"/review/items/{item.group(1)}/decide", data=data)
        assert answer.status_code == 403
        assert "csrf_failed" in answer.text
    assert "Nothing waiting" not in (await site.client.get("/review/")).text
    with site.state.pipeline.sessions() as session:
        refused = ReviewStore(session).audit_events(action="review:csrf:rejected")
    assert [e.actor for e in refused] == ["mod@example.org", "mod@example.org"]
    # Without the login cookie's token the login form itself is refused.
    fresh = httpx.AsyncClient(transport=httpx.ASGITransport(app=site.app), base_url="http://x")
    async with fresh:
        answer = await fresh.post(
            "/review/login", data={"email": "mod@example.org", "password": PASSWORD}
        )
    assert answer.status_code == 403


async def test_session_cookie_is_locked_down(site: Site) -> None:
    site.user("mod@example.org", Role.MODERATOR)
    answer = await login(site.client, "mod@example.org")
    cookie = answer.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=strict" in cookie
    assert "path=/review" in cookie
    page = await site.client.get("/review/")
    assert "script-src 'self'" in page.headers["content-security-policy"]


async def test_wrong_passwords_lock_the_account(site: Site) -> None:
    site.user("mod@example.org", Role.MODERATOR)
    for _ in range(5):
        answer = await login(site.client, "mod@example.org", "wrong password entirely")
        assert answer.status_code == 401
        assert "wrong e-mail or password" in answer.text
    answer = await login(site.client, "mod@example.org")
    assert answer.status_code == 423
    assert "too many failed logins" in answer.text


async def test_tampered_and_stale_forms_change_nothing(site: Site) -> None:
    site.user("mod@example.org", Role.MODERATOR)
    first = site.scan(VICTIM, "-1001", "1")
    second = site.scan(flip(VICTIM, 5), "-1002", "2")
    await login(site.client, "mod@example.org")
    queue = await site.client.get("/review/")
    item = re.search(r'href="/review/items/(\d+)"', queue.text)
    assert item is not None
    page = await site.client.get(f"/review/items/{item.group(1)}")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    version = re.search(r'name="version" value="(\d+)"', page.text)
    cluster = re.search(r'name="cluster_id" value="(\d+)"', page.text)
    assert csrf
    assert version
    assert cluster
    good = {
        "csrf_token": csrf.group(1),
        "cluster_id": cluster.group(1),
        "version": version.group(1),
        "outcome": "confirmed",
        "reason_code": "ncii_match",
        "actions": ["delete_message", "block_reupload"],
    }
    url = f"/review/items/{item.group(1)}/decide"
    tampered = [
        (dict(good, version="abc"), 400, "must be a number"),
        (dict(good, outcome="delete_everything"), 400, "is not a decision"),
        (dict(good, reason_code="because"), 400, "is not a reason code"),
        (dict(good, actions=["drop_table"]), 400, "confirm needs"),
        (dict(good, version=str(int(version.group(1)) + 7)), 409, "changed since you opened"),
    ]
    for data, status, message in tampered:
        answer = await site.client.post(url, data=data)
        assert answer.status_code == status, (data, answer.text[:400])
        assert message in answer.text
    with site.state.pipeline.sessions() as session:
        assert site.service(session).outbox([first, second]) == []
    done = await site.client.post(url, data=good)
    assert done.status_code == 303
    again = await site.client.post(url, data=good)
    assert again.status_code == 409
    assert "already decided" in again.text
    with site.state.pipeline.sessions() as session:
        outbox = dict(site.service(session).outbox([first, second]))
    # Both copies were actioned; block_reupload ran here, delete waits for the connector.
    assert outbox == {
        f"{first}:block_reupload": "done",
        f"{first}:delete_message": "pending",
        f"{second}:block_reupload": "done",
        f"{second}:delete_message": "pending",
    }


async def test_bulk_decides_every_selected_cluster(site: Site) -> None:
    site.user("mod@example.org", Role.MODERATOR)
    a = site.scan(VICTIM, "-1001", "1")
    other = bytes(reversed(VICTIM))  # a different image of no bank: not reviewed
    site.scan(other, "-1002", "2")
    await login(site.client, "mod@example.org")
    queue = await site.client.get("/review/")
    ids = re.findall(r'name="item_ids" value="(\d+)"', queue.text)
    assert len(ids) == 1
    csrf = await csrf_of(site.client, "/review/")
    empty = await site.client.post(
        "/review/bulk",
        data={"csrf_token": csrf, "outcome": "confirmed", "reason_code": "ncii_match"},
    )
    assert empty.status_code == 400
    assert "select one or more clusters" in empty.text
    done = await site.client.post(
        "/review/bulk",
        data={
            "csrf_token": csrf,
            "item_ids": ids,
            "outcome": "not_violation",
            "reason_code": "false_match",
            "actions": ["delete_message"],  # ignored: not a confirmation
        },
    )
    assert done.status_code == 303
    assert "Nothing waiting" in (await site.client.get("/review/")).text
    with site.state.pipeline.sessions() as session:
        assert site.service(session).outbox([a]) == []


async def test_logins_from_one_address_are_rate_limited(site: Site) -> None:
    statuses = []
    for n in range(console.LOGIN_BURST + 1):
        answer = await login(site.client, f"nobody{n}@example.org", "wrong password here")
        statuses.append(answer.status_code)
    assert statuses == [401] * console.LOGIN_BURST + [429]
    assert "rate limit" in answer.text


def pixel(png: bytes) -> tuple[int, int, int]:
    import io

    from PIL import Image

    value = Image.open(io.BytesIO(png)).convert("RGB").getpixel((50, 50))
    assert isinstance(value, tuple)
    return (int(value[0]), int(value[1]), int(value[2]))


async def test_media_stays_grey_and_blurred_until_revealed(site: Site) -> None:
    import io

    from PIL import Image

    from redress.evidence.interfaces import CaptureRequest, MessageFacts, Trigger, TriggerKind
    from redress.evidence.service import build_evidence_service
    from redress.evidence.store import SqlEvidenceStore

    picture = Image.new("RGB", (200, 120), "#d03030")
    raw = io.BytesIO()
    picture.save(raw, format="PNG")
    with site.state.pipeline.sessions.begin() as session:
        build_evidence_service(SqlEvidenceStore(session), site.state.settings).capture(
            CaptureRequest(
                content=raw.getvalue(),
                media_type="image/png",
                message=MessageFacts(platform="telegram", chat_id="-1001", message_id="1"),
                trigger=Trigger(TriggerKind.MATCH),
                connector="telegram-bot",
                operator="test",
            )
        )
    site.user("mod@example.org", Role.MODERATOR)
    site.scan(VICTIM, "-1001", "1")
    await login(site.client, "mod@example.org")
    queue = await site.client.get("/review/")
    item = re.search(r'href="/review/items/(\d+)"', queue.text)
    assert item is not None
    page = await site.client.get(f"/review/items/{item.group(1)}")
    assert 'id="media" src=' in page.text
    hidden = await site.client.get(f"/review/items/{item.group(1)}/media")
    assert hidden.status_code == 200
    r, g, b = pixel(hidden.content)
    assert r == g == b  # greyscale on the server, whatever the page does
    csrf = await csrf_of(site.client, f"/review/items/{item.group(1)}")
    shown = await site.client.post(
        f"/review/items/{item.group(1)}/reveal",
        data={"csrf_token": csrf},
        headers={"X-CSRF-Token": csrf},
    )
    assert shown.json()["today"] == 1
    clear = await site.client.get(f"/review/items/{item.group(1)}/media")
    r, g, b = pixel(clear.content)
    assert r > 150
    assert g < 100
