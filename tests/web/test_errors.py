"""Every error, on every route, answers in the one envelope."""

from __future__ import annotations

import io
import random
from collections.abc import AsyncIterator

import httpx
import pytest
from PIL import Image
from sqlalchemy import func, select, text
from web_support import Api, serving

from redress.config import Settings
from redress.pipeline.models import ScanItem, ScanMedia

pytestmark = pytest.mark.anyio
ENVELOPE_KEYS = {"ok", "error", "detail", "status"}


def assert_envelope(response: httpx.Response, status: int, code: str | None = None) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == ENVELOPE_KEYS
    assert body["ok"] is False
    assert body["status"] == status
    assert isinstance(body["detail"], str)
    assert body["detail"]
    if code is not None:
        assert body["error"] == code


def png_bytes(size: tuple[int, int] = (64, 48), *, noise: bool = False) -> bytes:
    out = io.BytesIO()
    if noise:
        image = Image.frombytes("RGB", size, random.Random(7).randbytes(size[0] * size[1] * 3))
    else:
        image = Image.new("RGB", size, (200, 30, 60))
    image.save(out, format="PNG")
    return out.getvalue()


def api_routes(api: Api) -> dict[str, set[str]]:
    """Every documented path and its methods (the OpenAPI document lists them all)."""
    paths = api.app.openapi()["paths"]
    routes = {path: {m.upper() for m in ops} for path, ops in paths.items()}
    routes["/openapi.json"] = {"GET"}
    return routes


def concrete(path: str) -> str:
    return path.replace("{job_id}", "0" * 32)


async def test_every_route_answers_wrong_methods_with_the_envelope(api: Api) -> None:
    routes = api_routes(api)
    assert set(routes) >= {"/healthz", "/readyz", "/metrics", "/api/v1/scan"}
    for path, methods in routes.items():
        for method in {"GET", "POST", "PUT", "DELETE", "PATCH"} - methods:
            response = await api.client.request(method, concrete(path))
            assert_envelope(response, 405, "method_not_allowed")


async def test_every_api_route_answers_missing_keys_with_the_envelope(api: Api) -> None:
    for path, methods in api_routes(api).items():
        if not path.startswith("/api/"):
            continue
        for method in methods:
            response = await api.client.request(method, concrete(path))
            assert_envelope(response, 401, "unauthenticated")


async def test_unknown_paths_get_the_envelope(api: Api) -> None:
    assert_envelope(await api.client.get("/nothing/here"), 404, "not_found")
    assert_envelope(await api.client.get("/api/v1/unknown"), 404, "not_found")


async def test_internal_errors_get_the_envelope_without_a_traceback(settings: Settings) -> None:
    async with serving(settings) as api:
        headers = api.auth()
        with api.state.pipeline.engine.begin() as conn:
            conn.execute(text("ALTER TABLE scan_items RENAME TO scan_items_elsewhere"))
        transport = httpx.ASGITransport(app=api.app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await client.post("/api/v1/scan", json={"md5": "0" * 32}, headers=headers)
        assert_envelope(response, 500, "internal_error")
        assert "Traceback" not in response.text
        assert "scan_items" not in response.text
        with api.state.pipeline.engine.begin() as conn:
            conn.execute(text("ALTER TABLE scan_items_elsewhere RENAME TO scan_items"))


@pytest.fixture
async def small_api(settings: Settings) -> AsyncIterator[Api]:
    async with serving(settings.model_copy(update={"api_max_body_bytes": 4096})) as api:
        yield api


async def test_oversized_bodies_get_413(small_api: Api) -> None:
    headers = small_api.auth()
    big = {"md5": "0" * 32, "caption": "x" * 5000}
    assert_envelope(
        await small_api.client.post("/api/v1/scan", json=big, headers=headers),
        413,
        "payload_too_large",
    )

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"x" * 1000

    streamed = await small_api.client.post(
        "/api/v1/scan",
        content=chunks(),
        headers={**headers, "Content-Type": "application/json"},
    )
    assert_envelope(streamed, 413, "payload_too_large")
    upload = await small_api.client.post(
        "/api/v1/scan",
        files={"file": ("big.png", png_bytes((100, 100), noise=True))},
        headers=headers,
    )
    assert_envelope(upload, 413, "payload_too_large")


@pytest.mark.parametrize(
    ("files", "status", "code"),
    [
        ({"file": ("notes.txt", b"just some text, not a picture")}, 415, "unsupported_media"),
        ({"file": ("fake.jpg", b"<html><body>hi</body></html>")}, 415, "unsupported_media"),
        ({"file": ("empty.png", b"")}, 415, "unsupported_media"),
        ({"other": ("x.png", png_bytes())}, 400, "missing_file"),
    ],
)
async def test_bad_uploads(
    api: Api, files: dict[str, tuple[str, bytes]], status: int, code: str
) -> None:
    response = await api.client.post("/api/v1/scan", files=files, headers=api.auth())
    assert_envelope(response, status, code)


async def test_wrong_content_type(api: Api) -> None:
    response = await api.client.post(
        "/api/v1/scan",
        content=b"hello",
        headers={**api.auth(), "Content-Type": "text/plain"},
    )
    assert_envelope(response, 415, "unsupported_content_type")


async def test_bad_form_fields(api: Api) -> None:
    response = await api.client.post(
        "/api/v1/scan",
        files={"file": ("a.png", png_bytes())},
        data={"reporters": "many"},
        headers=api.auth(),
    )
    assert_envelope(response, 400, "invalid_input")
    response = await api.client.post(
        "/api/v1/scan",
        files={"file": ("a.png", png_bytes())},
        data={"callback_url": "ftp://x"},
        headers=api.auth(),
    )
    assert_envelope(response, 400, "bad_callback_url")


async def test_accepted_media_is_durable_before_202_and_a_full_queue_says_503(
    settings: Settings,
) -> None:
    async with serving(settings.model_copy(update={"queue_size": 1})) as api:
        api.state.pipeline.queue.stop()  # nothing drains the queue now
        headers = api.auth()
        first = await api.client.post(
            "/api/v1/scan", files={"file": ("a.png", png_bytes())}, headers=headers
        )
        assert first.status_code == 202
        job = first.json()
        assert job["status"] == "queued"
        assert first.headers["Location"] == f"/api/v1/jobs/{job['id']}"
        with api.state.pipeline.sessions() as session:
            assert session.get(ScanItem, job["id"]) is not None
            assert session.get(ScanMedia, job["id"]).data == png_bytes()
        second = await api.client.post(
            "/api/v1/scan", files={"file": ("b.png", png_bytes((10, 10)))}, headers=headers
        )
        assert_envelope(second, 503, "queue_full")
        assert int(second.headers["Retry-After"]) >= 1
        with api.state.pipeline.sessions() as session:
            assert session.scalar(select(func.count()).select_from(ScanItem)) == 1
