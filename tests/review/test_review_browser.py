"""End to end in a real headless Chromium against the real app served by uvicorn:
log in, work the queue, reveal, decide a cluster, appeal, role limits, CSRF.

Skips when Chromium or Playwright is missing, unless REDRESS_REQUIRE_SERVICES=1.
With REDRESS_TEST_SCREENSHOTS=1 the pages' screenshots are saved under
docs/screenshots/ (1280x800).
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import io
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from PIL import Image, ImageDraw
from review_support import FAST_HASHER, PASSWORD, VICTIM, flip

from redress.actions.interfaces import ActionTarget
from redress.config import Settings
from redress.evidence.interfaces import CaptureRequest, MessageFacts, Trigger, TriggerKind
from redress.evidence.service import build_evidence_service
from redress.evidence.store import SqlEvidenceStore
from redress.pipeline.interfaces import MatchQuery
from redress.pipeline.service import HashSubmission, ScanContext
from redress.review.interfaces import Role
from redress.review.service import ReviewConfig, ReviewService
from redress.review.store import ReviewStore
from redress.signals.types import PdqHash, SignalKind
from redress.store.interfaces import EntryIn
from redress.store.service import CaseService
from redress.web.app import AppState, create_app
from redress.web.browser import DEFAULT_CHROMIUM

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM = os.environ.get("REDRESS_CHROMIUM", DEFAULT_CHROMIUM)
SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
THIRD = bytes(range(64, 96))


def _missing(reason: str) -> None:
    if os.environ.get("REDRESS_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason} (REDRESS_REQUIRE_SERVICES=1 forbids skipping)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not os.access(CHROMIUM, os.X_OK):
        _missing(f"no Chromium at {CHROMIUM}")
    if importlib.util.find_spec("playwright") is None:
        _missing("Playwright is not installed")
    from redress.web.browser import headless_chromium

    with headless_chromium(CHROMIUM) as running:
        yield running


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Served:
    url: str
    state: AppState
    case_number: str

    def service(self, session: object) -> ReviewService:
        return ReviewService(
            ReviewStore(session),  # type: ignore[arg-type]
            ReviewConfig.from_settings(self.state.settings),
            passwords=FAST_HASHER,
        )


def _png() -> bytes:
    image = Image.new("RGB", (480, 320), "#3a7bd5")
    draw = ImageDraw.Draw(image)
    draw.ellipse((140, 60, 340, 260), fill="#f4c542")
    draw.rectangle((20, 20, 120, 120), fill="#c0392b")
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


@pytest.fixture
def served(redress_home: Path, sqlite_url: str) -> Iterator[Served]:
    import uvicorn

    settings = Settings(home=redress_home, database_url=sqlite_url, pipeline_threads=1)
    app = create_app(settings)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            pytest.fail("uvicorn did not start")
        time.sleep(0.05)
    try:
        state: AppState = app.state.redress
        with state.pipeline.sessions.begin() as session:
            created = CaseService(session).create(
                [EntryIn(kind=SignalKind.PDQ, value=VICTIM, quality=100)],
                contact="victim@example.org",
            )
        follower = getattr(state.pipeline.service.matcher, "follower", None)
        if follower is not None:
            follower.poll()
        yield Served(f"http://127.0.0.1:{port}", state, created.case.case_number)
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def _scan(served: Served, bits: bytes, chat: str, message: str, caption: str | None) -> str:
    with served.state.pipeline.sessions.begin() as session:
        result = served.state.pipeline.service.scan_hashes(
            session,
            HashSubmission(
                MatchQuery(pdq=(PdqHash(bits, 100),)),
                ScanContext(
                    source="telegram",
                    caption=caption,
                    target=ActionTarget("telegram", chat, message, "5550001"),
                ),
            ),
            key=None,
        )
    return result.item_id


def _capture(served: Served, chat: str, message: str) -> None:
    with served.state.pipeline.sessions.begin() as session:
        evidence = build_evidence_service(SqlEvidenceStore(session), served.state.settings)
        evidence.capture(
            CaptureRequest(
                content=_png(),
                media_type="image/png",
                message=MessageFacts(
                    platform="telegram",
                    chat_id=chat,
                    message_id=message,
                    message_date=dt.datetime.now(dt.UTC),
                ),
                trigger=Trigger(TriggerKind.MATCH, bank="victim-cases"),
                connector="telegram-bot",
                operator="test",
            )
        )


def _login(browser: Browser, served: Served, email: str) -> Page:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto(served.url + "/review/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()
    return page


def _shot(page: Page, name: str, tmp_path: Path) -> None:
    path = tmp_path / name
    page.screenshot(path=str(path))
    assert path.stat().st_size > 1000
    if os.environ.get("REDRESS_TEST_SCREENSHOTS") == "1":
        SHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, SHOTS / name)


def test_a_moderator_works_the_queue_in_a_real_browser(
    browser: Browser, served: Served, tmp_path: Path
) -> None:
    with served.state.pipeline.sessions.begin() as session:
        service = served.service(session)
        for email, role in (
            ("mod@example.org", Role.MODERATOR),
            ("second@example.org", Role.MODERATOR),
            ("admin@example.org", Role.ADMIN),
            ("other-advocate@example.org", Role.ADVOCATE),
        ):
            service.create_user(email, role, PASSWORD)
        service.create_user(
            "advocate@example.org", Role.ADVOCATE, PASSWORD, cases=(served.case_number,)
        )
    first = _scan(served, VICTIM, "-1001", "1", "her number is 138 1234 5678, share it")
    second = _scan(served, flip(VICTIM, 6), "-1002", "7", None)
    _capture(served, "-1001", "1")

    page = _login(browser, served, "mod@example.org")
    assert page.url.endswith("/review/")
    rows = page.locator("table.queue tbody tr[data-item]")
    assert rows.count() == 1  # two copies, one cluster
    assert rows.first.locator("td").nth(6).inner_text() == "2"
    assert "h" in rows.first.locator(".countdown").inner_text()
    _shot(page, "review-queue.png", tmp_path)

    page.click("a.open")
    page.wait_for_selector("#shield")
    media = page.locator("img#media")
    media.wait_for()
    for _ in range(200):
        if media.evaluate("e => e.complete && e.naturalWidth > 0"):
            break
        page.wait_for_timeout(25)
    assert "blur" in media.evaluate("e => getComputedStyle(e).filter")
    assert page.locator("mark.pd").inner_text() == "138 1234 5678"
    assert "identity hidden" in page.locator("td.cases").inner_text()
    assert page.locator("table.sightings tbody tr").count() == 2
    _shot(page, "review-item-blurred.png", tmp_path)

    page.click("#shield")
    page.wait_for_selector("#shield.revealed")
    # The un-blur is a 0.2 s transition; wait for it to finish.
    # (Polled from Python: the console's CSP forbids the eval wait_for_function needs.)
    for _ in range(200):
        if media.evaluate("e => getComputedStyle(e).filter") == "none":
            break
        page.wait_for_timeout(25)
    assert media.evaluate("e => getComputedStyle(e).filter") == "none"
    with served.state.pipeline.sessions() as session:
        reveals = ReviewStore(session).audit_events(action="review:media:revealed")
    assert [e.actor for e in reveals] == ["mod@example.org"]
    assert "seen today 1/" in page.locator("#exposure").inner_text()

    # Keyboard: c picks "confirm and act", then a reason code and Ctrl+Enter.
    page.locator("body").press("c")
    page.select_option("#reason", "ncii_match")
    page.locator("#reason").press("Control+Enter")
    page.wait_for_url("**/review/?decided=*")
    assert "Nothing waiting" in page.content()
    with served.state.pipeline.sessions() as session:
        outbox = dict(served.service(session).outbox([first, second]))
    assert set(outbox) == {
        f"{item}:{kind}"
        for item in (first, second)
        for kind in ("delete_message", "restrict_user", "block_reupload")
    }
    assert outbox[f"{second}:block_reupload"] == "done"

    # The affected user appeals: reopened, and the same moderator may not decide it.
    item_url = served.url + "/review/items/1"
    page.goto(item_url)
    page.fill("input[name=appellant]", "telegram user 5550001")
    page.fill("textarea[name=statement]", "This is my own photo and I posted it.")
    page.click("#appeal button[type=submit]")
    page.wait_for_url("**/review/appeals")
    assert page.locator("td.status").first.inner_text() == "open"
    page.goto(item_url)
    page.check("#o-not_violation")
    page.select_option("#reason", "consensual_public")
    page.click("#submit-decision")
    page.wait_for_load_state()
    assert page.locator("#error-message").get_attribute("data-code") == "same_moderator"

    # The appeal goes to a different moderator.
    other = _login(browser, served, "second@example.org")
    other.goto(item_url)
    other.check("#o-not_violation")
    other.select_option("#reason", "consensual_public")
    other.click("#submit-decision")
    other.wait_for_url("**/review/?decided=*")
    other.goto(served.url + "/review/appeals")
    assert other.locator("td.status").first.inner_text() == "overturned"

    # The first moderator's old form is now stale: a clear message, nothing changed.
    page.go_back()
    page.goto(item_url)
    assert "not_violation" in page.locator("#cluster-outcome").inner_text()

    # A stale lease: the first moderator walks away from another item; after the lease
    # expires a second one takes it over, and the first one's form is refused.
    with served.state.pipeline.sessions.begin() as session:
        CaseService(session).create([EntryIn(kind=SignalKind.PDQ, value=THIRD, quality=100)])
    follower = getattr(served.state.pipeline.service.matcher, "follower", None)
    if follower is not None:
        follower.poll()
    third = _scan(served, THIRD, "-1005", "3", None)
    page.goto(served.url + "/review/")
    page.click("a.open")
    page.wait_for_selector("#decide")
    stale_url = page.url
    with served.state.pipeline.sessions.begin() as session:
        from sqlalchemy import update

        from redress.review.models import ReviewItem

        session.execute(update(ReviewItem).values(leased_until=dt.datetime.now(dt.UTC)))
    other.goto(stale_url)
    other.wait_for_selector("#decide")
    page.check("#o-needs_info")
    page.select_option("#reason", "need_context")
    page.click("#submit-decision")
    page.wait_for_load_state()
    assert page.locator("#error-message").get_attribute("data-code") == "lease_lost"
    assert "expired" in page.locator("#error-message").inner_text()
    fields = {
        name: other.locator(f"#decide input[name={name}]").get_attribute("value") or ""
        for name in ("csrf_token", "cluster_id", "version")
    }
    other.check("#o-not_violation")
    other.select_option("#reason", "false_match")
    other.click("#submit-decision")
    other.wait_for_url("**/review/?decided=*")
    # A double submit (the same form sent again, with the session's cookie) is refused.
    again = other.request.post(
        stale_url + "/decide",
        form={**fields, "outcome": "not_violation", "reason_code": "false_match"},
        max_redirects=0,
    )
    assert again.status == 409
    assert "already decided" in again.text()
    with served.state.pipeline.sessions() as session:
        assert served.service(session).outbox([third]) == []

    # Role limits: a moderator cannot open admin pages.
    page.goto(served.url + "/review/users")
    assert page.locator("#error-message").get_attribute("data-code") == "role_forbidden"

    # CSRF: a form whose token was tampered with is refused.
    page.goto(served.url + "/review/users")
    admin = _login(browser, served, "admin@example.org")
    admin.goto(served.url + "/review/users")
    admin.evaluate("document.querySelector('form.stack input[name=csrf_token]').value = 'x'")
    admin.fill("form.stack input[name=email]", "intruder@example.org")
    admin.fill("form.stack input[name=password]", "long enough password")
    admin.click("form.stack button[type=submit]")
    admin.wait_for_load_state()
    assert admin.locator("#error-message").get_attribute("data-code") == "csrf_failed"
    with served.state.pipeline.sessions() as session:
        assert "intruder@example.org" not in {u.email for u in ReviewStore(session).users()}

    admin.goto(served.url + "/review/dashboard")
    assert admin.locator("svg.chart").count() == 3
    _shot(admin, "review-dashboard.png", tmp_path)

    # Advocates: hers is visible with the case number; another advocate sees nothing.
    advocate = _login(browser, served, "advocate@example.org")
    advocate.goto(item_url)
    assert served.case_number in advocate.locator("td.cases").inner_text()
    stranger = _login(browser, served, "other-advocate@example.org")
    stranger.goto(item_url)
    assert stranger.locator("#error-message").get_attribute("data-code") == "review_not_found"
