"""The victim portal in a real headless Chromium, served by a real uvicorn.

She opens /protect, chooses photos and a video, confirms, and gets a case
number and PIN; every request the page makes is watched, and none may carry
a byte of her files. The server then finds the same pictures when they are
scanned, until she withdraws her case. Screenshots go to
``$REDRESS_TEST_SCREENSHOTS`` when set (docs/screenshots/ holds the
committed ones), else to a temporary folder.
"""

from __future__ import annotations

import json
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import uvicorn
from portal_support import PORTAL_IMAGES, scan_body, visible_text

from redress.config import Settings
from redress.pipeline.keys import ApiKeyService, Scope
from redress.pipeline.matching import StoreMatcher
from redress.signals import HashOptions, hash_file
from redress.web.app import AppState, create_app

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Request, Route

VIDEO = "vpdq/videos/chair-19-sd-bar.mp4"
VIEWPORT = {"width": 1280, "height": 800}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Served:
    """The real app on uvicorn in a thread, and its state."""

    url: str
    app: Any

    @property
    def state(self) -> AppState:
        state: AppState = self.app.state.redress
        return state

    def scan_key(self) -> str:
        with self.state.pipeline.sessions.begin() as session:
            return ApiKeyService(session).create("platform", frozenset({Scope.SCAN})).token

    def scan(self, body: dict[str, Any], key: str) -> list[str]:
        matcher = self.state.pipeline.service.matcher
        assert isinstance(matcher, StoreMatcher)
        matcher.follower.poll()
        # Seen in a group (a target), so each match is recorded against her case.
        seen = {**body, "target": {"platform": "telegram", "chat_id": "-100", "message_id": "9"}}
        response = httpx.post(
            f"{self.url}/api/v1/scan",
            json=seen,
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        return [m["bank"] for m in response.json()["matches"]]


@pytest.fixture
def served(redress_home: Path, sqlite_url: str) -> Iterator[Served]:
    settings = Settings(
        home=redress_home,
        database_url=sqlite_url,
        queue_size=20,
        pipeline_threads=1,
        api_rate_per_second=10_000.0,
        api_rate_burst=10_000,
    )
    app = create_app(settings)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        assert thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield Served(f"http://127.0.0.1:{port}", app)
    finally:
        server.should_exit = True
        thread.join()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    target = Path(os.environ.get("REDRESS_TEST_SCREENSHOTS") or tmp_path)
    target.mkdir(parents=True, exist_ok=True)
    return target


@dataclass
class Watch:
    """Every request the page and its workers make, with its body."""

    seen: list[tuple[str, str, bytes]] = field(default_factory=list)

    def route(self, route: Route, request: Request) -> None:
        self.seen.append((request.method, request.url, request.post_data_buffer or b""))
        route.continue_()


def samples_of(path: Path, size: int = 48, count: int = 12) -> list[bytes]:
    data = path.read_bytes()
    step = max(1, (len(data) - size) // count)
    return [data[i : i + size] for i in range(0, len(data) - size, step)][:count]


def choose_and_hash(page: Page, files: list[Path]) -> None:
    page.set_input_files("#files", [str(p) for p in files])
    page.wait_for_selector("#progress[data-state=ready]", timeout=120_000)


def open_case(page: Page) -> tuple[str, str]:
    page.check("#depicted")
    page.check("#adult")
    page.click("#submit")
    page.wait_for_selector("#created:not([hidden])", timeout=30_000)
    return page.inner_text("#case-number"), page.inner_text("#case-pin")


def open_status(page: Page, base: str, number: str, pin: str) -> None:
    page.goto(f"{base}/protect/status")
    page.fill("#case_number", number)
    page.fill("#pin", pin)
    page.click("#open")
    page.wait_for_load_state()


def test_victim_protects_checks_and_withdraws_without_sending_her_files(
    chromium: Browser, served: Served, shared_data: Path, shots: Path
) -> None:
    files = [shared_data / "pdq" / name for name in PORTAL_IMAGES] + [shared_data / VIDEO]
    context = chromium.new_context(viewport=VIEWPORT, locale="en-US")
    watch = Watch()
    context.route("**/*", watch.route)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))

    page.goto(f"{served.url}/protect")
    choose_and_hash(page, files)
    assert page.locator(".preview").count() == len(files)
    assert page.locator(".preview img").count() == 3
    assert page.locator(".preview video").count() == 1
    # The low-quality photo is explained, not dropped.
    assert page.locator(".flag.low_quality").count() == 1
    assert page.locator(".preview.failed").count() == 0
    page.screenshot(path=str(shots / "portal-create-en.png"))
    page.evaluate("document.getElementById('progress').scrollIntoView()")
    page.screenshot(path=str(shots / "portal-files-en.png"))
    number, pin = open_case(page)
    assert re.fullmatch(r"RC-[A-Z0-9-]+", number)
    assert "cannot be recovered" in page.inner_text("#created")
    page.screenshot(path=str(shots / "portal-created-en.png"))

    # Only hashes left the browser: one POST, JSON of hash sets, no file bytes anywhere.
    origin = served.url
    assert all(url.startswith((origin, "blob:", "data:")) for _m, url, _b in watch.seen)
    posts = [(url, body) for method, url, body in watch.seen if method != "GET"]
    assert [url for url, _ in posts] == [f"{origin}/protect/api/cases"]
    sent = json.loads(posts[0][1])
    assert set(sent) == {"files", "declarations", "contact", "lang"}
    assert [set(f) for f in sent["files"]] == [{"kind", "hashes"}] * len(files)
    bodies = [body for _m, _u, body in watch.seen]
    for path in files:
        for sample in samples_of(path):
            assert not any(sample in body for body in bodies), f"bytes of {path.name} were sent"
    assert sockets == []

    # The server finds the same pictures and the video when they are scanned.
    key = served.scan_key()
    good = [files[0], files[2]]
    for path in good:
        assert served.scan(scan_body(path), key) == ["victim-cases"], path.name
    low = hash_file(files[1], HashOptions())
    assert served.scan({"md5": low.md5}, key) == ["victim-cases"]
    video = hash_file(files[3], HashOptions())
    frames = [{"pdq": f.pdq.hex, "quality": f.pdq.quality, "ts": f.ts} for f in video.vpdq]
    assert served.scan({"vpdq": frames}, key) == ["victim-cases"]
    assert served.scan({"md5": video.md5}, key) == ["victim-cases"]

    # Status: the matches recorded for her case.
    open_status(page, served.url, number, pin)
    assert page.inner_text("#case-status") in {"Received", "Active"}
    assert int(page.inner_text("#case-matches").split()[0]) >= 5
    page.screenshot(path=str(shots / "portal-status-en.png"), full_page=False)

    # Withdrawal: the same scans no longer match.
    page.check("#confirm-withdraw")
    page.click("#withdraw")
    page.wait_for_load_state()
    assert page.inner_text("#case-status") == "Withdrawn"
    for path in good:
        assert served.scan(scan_body(path), key) == []
    assert served.scan({"md5": low.md5}, key) == []
    assert served.scan({"vpdq": frames}, key) == []
    context.close()
    assert errors == []


def test_chinese_portal_is_fully_translated_and_wrong_pins_lock_out(
    chromium: Browser, served: Served, shared_data: Path, shots: Path
) -> None:
    context = chromium.new_context(viewport=VIEWPORT, locale="zh-CN")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{served.url}/protect")  # the browser's preference picks Chinese
    assert page.get_attribute("html", "lang") == "zh-Hans"
    choose_and_hash(page, [shared_data / "pdq" / name for name in PORTAL_IMAGES])
    assert "细节很少" in page.inner_text(".flag.low_quality")
    shown = page.inner_text("body")
    words = re.findall(r"[A-Za-z]{2,}(?:\s+[A-Za-z]{2,})+", shown)
    allowed = {"Redress", "English", "PIN", "UTC", "JPEG", "iPhone", "Cookie"}
    assert [w for w in words if not set(w.split()) <= allowed] == []
    page.screenshot(path=str(shots / "portal-create-zh.png"))
    page.evaluate("document.getElementById('progress').scrollIntoView()")
    page.screenshot(path=str(shots / "portal-files-zh.png"))
    number, pin = open_case(page)
    assert "无法找回" in page.inner_text("#created")

    open_status(page, served.url, number, pin)
    text = visible_text(page.content())
    assert re.findall(r"[A-Za-z]{3,}\s+[A-Za-z]{3,}", text) == []
    assert "2026" in page.inner_text("body") or "年" in page.inner_text("body")
    page.screenshot(path=str(shots / "portal-status-zh.png"))

    # Five wrong PINs lock the case; then even the right PIN is refused for a while.
    for _ in range(5):
        open_status(page, served.url, number, "000000000")
    assert "锁定" in page.inner_text(".problem")
    open_status(page, served.url, number, pin)
    assert "锁定" in page.inner_text(".problem")
    assert page.locator("#case-status").count() == 0
    context.close()
    assert errors == []
