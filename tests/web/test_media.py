"""Scans by upload through the real pipeline: signals hash, store match, policy, outcome,
the embedded queue, dead letters and signed job callbacks."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageOps
from sqlalchemy import select
from web_support import Api, pdq_entry, serving

from console_support import log_in
from redress.actions import verify_signature
from redress.actions.interfaces import ActionKind, ActionRequest, ActionTarget
from redress.actions.reupload import BlockReuploadActioner
from redress.config import Settings
from redress.evidence.interfaces import EntryKind
from redress.evidence.models import LedgerEntryRow
from redress.evidence.service import build_evidence_service
from redress.evidence.store import SqlEvidenceStore
from redress.pipeline.container import PipelineParts, captured_copy
from redress.pipeline.keys import ApiKeyService, Scope
from redress.pipeline.matching import StoreMatcher
from redress.pipeline.models import ScanAction, ScanItem, ScanMedia
from redress.review.interfaces import Role
from redress.review.service import ReviewConfig, ReviewService
from redress.review.store import ReviewStore
from redress.signals import HashOptions, hash_bytes
from redress.store.interfaces import BankPurpose, EntryIn
from store.test_robust_matching import picture
from store.test_verification import FREE_CROP

pytestmark = pytest.mark.anyio


def photo(seed: int, size: tuple[int, int] = (320, 240), fmt: str = "JPEG") -> bytes:
    """A distinct, detailed picture (PDQ quality well above 50)."""
    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    freq = rng.uniform(0.02, 0.08, 3)
    base = np.stack(
        [127 + 120 * np.sin(xx * f + yy * f * rng.uniform(0.3, 1.5)) for f in freq], axis=-1
    )
    image = Image.fromarray(base.astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(12):
        x0, y0 = int(rng.integers(0, w - 20)), int(rng.integers(0, h - 20))
        box = (x0, y0, x0 + int(rng.integers(20, 120)), y0 + int(rng.integers(20, 90)))
        draw.ellipse(box, fill=tuple(int(c) for c in rng.integers(0, 256, 3)))
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


async def wait_done(api: Api, job_id: str, headers: dict[str, str]) -> dict[str, Any]:
    queue = api.state.pipeline.queue
    assert hasattr(queue, "drain")
    assert queue.drain()
    response = await api.client.get(f"/api/v1/jobs/{job_id}", headers=headers)
    body: dict[str, Any] = response.json()
    return body


async def test_upload_matching_a_confirmed_bank_acts(api: Api) -> None:
    data = photo(1)
    job = await act_on_confirmed(api, data, caption="call 13812345678")
    headers = api.auth()
    assert job["status"] == "done"
    assert job["outcome"] == "act"
    assert job["matches"] == [{"bank": "confirmed", "signal": "pdq"}]
    assert job["personal_details"] == ["phone"]
    with api.state.pipeline.sessions() as session:
        # Redress keeps hashes, not media: the spooled bytes are gone once processed.
        assert session.get(ScanMedia, job["id"]) is None
    # Acting blocked re-uploads: the same bytes now also match the block bank exactly.
    again = await api.client.post(
        "/api/v1/scan", files={"file": ("again.jpg", data)}, headers=headers
    )
    second = await wait_done(api, again.json()["id"], headers)
    assert {"bank": "blocked-reuploads", "signal": "sha256"} in second["matches"]
    assert second["outcome"] == "act"


def mirrored(data: bytes) -> bytes:
    out = io.BytesIO()
    ImageOps.mirror(Image.open(io.BytesIO(data))).save(out, format="JPEG", quality=85)
    return out.getvalue()


async def act_on_confirmed(api: Api, data: bytes, caption: str = "") -> dict[str, Any]:
    """Scan ``data`` from a chat message against a confirmed bank holding its PDQ; the
    item is captured as evidence and its actions (``block_reupload`` among them) run."""
    signals = hash_bytes(data, HashOptions())
    assert signals.pdq is not None
    api.bank("confirmed", BankPurpose.CONFIRMED_VIOLATIONS, [pdq_entry(signals.pdq.bits)])
    headers = api.auth()
    accepted = await api.client.post(
        "/api/v1/scan",
        files={"file": ("leak.jpg", data, "image/jpeg")},
        data={"chat_id": "-100", "message_id": "7", "caption": caption},
        headers=headers,
    )
    assert accepted.status_code == 202
    job = await wait_done(api, accepted.json()["id"], headers)
    assert job["outcome"] == "act"
    assert "block_reupload" in job["actions"]
    return job


async def test_blocked_copy_is_banked_from_its_captured_pixels(api: Api) -> None:
    # Redress holds the confirmed copy's pixels (captured as evidence), so blocking
    # re-uploads banks its reference set too: a mirrored re-upload, which the plain
    # hash misses, is blocked; the ledger logs the view that hashing the copy needed.
    data = photo(4)
    job = await act_on_confirmed(api, data)
    plain = hash_bytes(data, HashOptions()).pdq
    flipped = hash_bytes(mirrored(data), HashOptions()).pdq
    assert plain is not None
    assert flipped is not None
    assert plain.distance(flipped) > 31  # plain PDQ alone would miss it
    matcher = api.state.pipeline.service.matcher
    assert isinstance(matcher, StoreMatcher)
    matcher.follower.poll()  # see the blocked entries now rather than within 0.2 s
    headers = api.auth()
    again = await api.client.post(
        "/api/v1/scan", files={"file": ("flipped.jpg", mirrored(data))}, headers=headers
    )
    second = await wait_done(api, again.json()["id"], headers)
    assert {"bank": "blocked-reuploads", "signal": "pdq-set"} in second["matches"]
    assert {"bank": "confirmed", "signal": "pdq"} not in second["matches"]
    assert second["outcome"] == "act"
    with api.state.pipeline.sessions() as session:
        action = session.get(ScanAction, f"{job['id']}:block_reupload")
        assert action is not None
        assert action.status == "done"
        assert "banked from the captured copy's pixels" in (action.detail or "")
        views = session.scalars(
            select(LedgerEntryRow).where(LedgerEntryRow.kind == EntryKind.VIEW.value)
        ).all()
    # One logged view per blocked copy: the mirrored copy was acted on and blocked too.
    assert [v.actor for v in views] == [
        f"action:{job['id']}:block_reupload",
        f"action:{second['id']}:block_reupload",
    ]


@pytest.mark.parametrize("verify", [False, True], ids=["hashes-only", "verified"])
async def test_a_free_crop_of_a_blocked_copy_is_verified_for_review(
    settings: Settings, verify: bool
) -> None:
    # With verification on, the blocked copy's local features are kept too (confirmed
    # content Redress holds the pixels of): a free crop that the hashes only come near
    # is confirmed by them and goes to a moderator, never straight to an action.
    pytest.importorskip("cv2")
    original = picture(3)
    confirmed = io.BytesIO()
    original.save(confirmed, format="JPEG", quality=88)
    crop = io.BytesIO()
    original.crop(FREE_CROP).save(crop, format="JPEG", quality=88)
    async with serving(settings.model_copy(update={"verify_features": verify})) as api:
        await act_on_confirmed(api, confirmed.getvalue())
        matcher = api.state.pipeline.service.matcher
        assert isinstance(matcher, StoreMatcher)
        matcher.follower.poll()
        headers = api.auth()
        again = await api.client.post(
            "/api/v1/scan", files={"file": ("crop.jpg", crop.getvalue())}, headers=headers
        )
        job = await wait_done(api, again.json()["id"], headers)
        if verify:
            assert job["outcome"] == "review"
            assert job["matches"] == [{"bank": "blocked-reuploads", "signal": "pdq-set"}]
            # The moderator is told why a distance beyond the threshold matched at all.
            page = await moderator_page(api, "/review/")
            item = re.search(r'href="/review/items/(\d+)"', page)
            assert item is not None
            page = await moderator_page(api, f"/review/items/{item.group(1)}")
            assert "near miss, verified by local features" in page
        else:
            assert (job["outcome"], job["matches"]) == ("ignore", [])


async def moderator_page(api: Api, path: str) -> str:
    """A console page as a logged-in moderator sees it."""
    if not api.client.cookies:
        with api.state.pipeline.sessions.begin() as session:
            service = ReviewService(
                ReviewStore(session), ReviewConfig.from_settings(api.state.settings)
            )
            service.create_user("mod@example.org", Role.MODERATOR, "a long enough password")
        await log_in(api.client, "mod@example.org", "a long enough password")
    response = await api.client.get(path)
    assert response.status_code == 200, response.text[:300]
    return response.text


def block_request(item_id: str) -> ActionRequest:
    """The pipeline's ``block_reupload`` request for a scanned item, run again."""
    return ActionRequest(
        action_id=f"{item_id}:block_reupload",
        kind=ActionKind.BLOCK_REUPLOAD,
        item_id=item_id,
        source="test",
        target=ActionTarget(),
        reason="confirmed",
    )


async def test_without_hash_sets_or_features_no_evidence_is_opened_to_block(
    settings: Settings,
) -> None:
    # The pixels would add nothing to the recorded hashes: the captured copy of an
    # intimate image stays sealed, and no view is logged.
    plain = settings.model_copy(update={"robust_hash_sets": False, "verify_features": False})
    async with serving(plain) as api:
        job = await act_on_confirmed(api, photo(9))
        with api.state.pipeline.sessions() as session:
            action = session.get(ScanAction, f"{job['id']}:block_reupload")
            assert action is not None
            assert action.status == "done"
            assert "pixels" not in (action.detail or "")
            views = session.scalars(
                select(LedgerEntryRow).where(LedgerEntryRow.kind == EntryKind.VIEW.value)
            ).all()
        assert views == []


async def test_blocking_a_deleted_capture_banks_the_recorded_hashes(api: Api) -> None:
    # The victim withdrew and her captured copy was erased: blocking again banks the
    # recorded hashes only, never fails, and says why nothing more was banked.
    job = await act_on_confirmed(api, photo(5))
    with api.state.pipeline.sessions.begin() as session:
        item = session.get(ScanItem, job["id"])
        assert item is not None
        assert item.evidence_item_id
        evidence = build_evidence_service(SqlEvidenceStore(session), api.state.settings)
        evidence.delete(item.evidence_item_id, "victim", "withdrawn")
    blocker = api.state.pipeline.runner.actioners[ActionKind.BLOCK_REUPLOAD]
    result = blocker.perform(block_request(job["id"]))
    assert result.ok
    assert "captured copy not opened (evidence_deleted)" in result.detail
    assert "0 entries added" in result.detail  # the first run banked them already


async def test_a_capture_that_differs_from_the_scanned_bytes_is_not_banked(api: Api) -> None:
    # Only the copy the moderator confirmed is ever hashed into the block bank.
    job = await act_on_confirmed(api, photo(6))
    blocker = BlockReuploadActioner(
        api.state.pipeline.sessions,
        captured=lambda session, evidence_id, actor: photo(7),
        hash_copy=lambda data: pytest.fail("a different picture was hashed"),
    )
    result = blocker.perform(block_request(job["id"]))
    assert result.ok
    assert "captured copy differs from the scanned bytes" in result.detail


async def test_a_copy_that_fails_to_hash_still_blocks_its_recorded_hashes(api: Api) -> None:
    # A decoder's own failure on the captured copy never fails the action.
    job = await act_on_confirmed(api, photo(8))

    def broken_decoder(data: bytes) -> list[EntryIn]:
        raise ValueError("the decoder gave up")

    blocker = BlockReuploadActioner(
        api.state.pipeline.sessions,
        captured=captured_copy(api.state.settings),
        hash_copy=broken_decoder,
    )
    result = blocker.perform(block_request(job["id"]))
    assert result.ok
    assert result.detail.endswith("captured copy not hashed (ValueError)")


async def test_recompressed_copy_still_matches_a_victim_bank(api: Api) -> None:
    original = photo(2, fmt="PNG")
    signals = hash_bytes(original, HashOptions())
    assert signals.pdq is not None
    api.bank("victims", BankPurpose.VICTIM_CASES, [pdq_entry(signals.pdq.bits)])
    copy = io.BytesIO()
    Image.open(io.BytesIO(original)).resize((240, 180)).save(copy, format="JPEG", quality=70)
    headers = api.auth()
    accepted = await api.client.post(
        "/api/v1/scan", files={"file": ("copy.jpg", copy.getvalue())}, headers=headers
    )
    job = await wait_done(api, accepted.json()["id"], headers)
    assert job["outcome"] == "review"
    assert job["actions"] == []


async def test_unrelated_upload_is_ignored(api: Api) -> None:
    headers = api.auth()
    accepted = await api.client.post(
        "/api/v1/scan", files={"file": ("cat.png", photo(3, fmt="PNG"))}, headers=headers
    )
    job = await wait_done(api, accepted.json()["id"], headers)
    assert (job["status"], job["outcome"], job["matches"]) == ("done", "ignore", [])


async def test_a_poisoned_upload_is_dead_lettered_and_the_queue_carries_on(api: Api) -> None:
    headers = api.auth()
    broken = photo(4)[:300]  # a JPEG cut short: sniffs as JPEG, cannot be decoded
    bad = await api.client.post(
        "/api/v1/scan", files={"file": ("bad.jpg", broken)}, headers=headers
    )
    good = await api.client.post(
        "/api/v1/scan", files={"file": ("ok.png", photo(5, fmt="PNG"))}, headers=headers
    )
    assert bad.status_code == good.status_code == 202
    dead = await wait_done(api, bad.json()["id"], headers)
    assert dead["status"] == "dead"
    assert dead["error"]["code"] in {"truncated", "corrupt"}
    assert (await wait_done(api, good.json()["id"], headers))["status"] == "done"
    letters = await api.client.get("/api/v1/dead-letters", headers=api.auth(Scope.ADMIN))
    assert [(d["id"], d["error"]) for d in letters.json()] == [(dead["id"], dead["error"]["code"])]


async def test_same_upload_with_the_same_idempotency_key_is_one_job(api: Api) -> None:
    headers = {**api.auth(), "Idempotency-Key": "tg:-100:5"}
    data = photo(6)
    first = await api.client.post("/api/v1/scan", files={"file": ("a.jpg", data)}, headers=headers)
    await wait_done(api, first.json()["id"], headers)
    again = await api.client.post("/api/v1/scan", files={"file": ("a.jpg", data)}, headers=headers)
    assert again.json()["id"] == first.json()["id"]
    assert again.status_code == 200  # already finished: the stored result
    assert again.headers["Idempotent-Replayed"] == "true"
    other = await api.client.post(
        "/api/v1/scan", files={"file": ("b.jpg", photo(7))}, headers=headers
    )
    assert other.status_code == 422
    assert other.json()["error"] == "idempotency_conflict"


class Receiver:
    """A platform's webhook endpoint (WSGI) that verifies every delivery."""

    def __init__(self) -> None:
        self.secret = b""
        self.events: list[tuple[str, str, dict[str, Any]]] = []

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        verify_signature(self.secret, body, environ.get("HTTP_REDRESS_SIGNATURE"))
        self.events.append(
            (environ["HTTP_REDRESS_EVENT"], environ["HTTP_REDRESS_DELIVERY"], json.loads(body))
        )
        start_response("204 No Content", [])
        return [b""]


async def test_signed_webhooks_for_actions_and_job_completion(settings: Settings) -> None:
    receiver = Receiver()
    http = httpx.Client(transport=httpx.WSGITransport(app=receiver))
    async with serving(settings, PipelineParts(http=http)) as api:
        with api.state.pipeline.sessions.begin() as session:
            created = ApiKeyService(session).create("platform", frozenset({Scope.SCAN}))
        receiver.secret = created.info.webhook_secret
        headers = {"Authorization": f"Bearer {created.token}"}
        data = photo(8)
        signals = hash_bytes(data, HashOptions())
        assert signals.pdq is not None
        api.bank("confirmed", BankPurpose.CONFIRMED_VIOLATIONS, [pdq_entry(signals.pdq.bits)])
        accepted = await api.client.post(
            "/api/v1/scan",
            files={"file": ("x.jpg", data)},
            data={"callback_url": "http://platform.test/redress"},
            headers=headers,
        )
        job = await wait_done(api, accepted.json()["id"], headers)
        assert job["actions"] == ["delete_message", "block_reupload", "webhook"]
        with api.state.pipeline.sessions() as session:
            states = dict(
                session.execute(
                    select(ScanAction.kind, ScanAction.status).where(
                        ScanAction.item_id == job["id"]
                    )
                ).all()
            )
    http.close()
    # The webhook and the re-upload block ran (once); deleting waits for a connector.
    assert states == {"webhook": "done", "delete_message": "pending", "block_reupload": "done"}
    assert [(e, d) for e, d, _ in receiver.events] == [
        ("scan.action_required", f"{job['id']}:webhook"),
        ("scan.completed", f"{job['id']}:completed"),
    ]
    assert receiver.events[1][2]["job"]["outcome"] == "act"
    assert "distance" not in json.dumps(receiver.events)


@pytest.mark.slow
async def test_video_upload_matches_by_vpdq(shared_data: Path, redress_home: Path) -> None:
    from redress.signals.types import SignalKind
    from redress.store.interfaces import EntryIn, VpdqFrameIn

    videos = shared_data / "vpdq" / "videos"
    original = hash_bytes((videos / "chair-orig-22-sd-bar.mp4").read_bytes(), HashOptions())
    frames = tuple(VpdqFrameIn(f.frame, f.pdq, f.ts) for f in original.vpdq)
    settings = Settings(home=redress_home, queue_size=5, pipeline_threads=1)
    async with serving(settings) as api:
        api.bank(
            "victims", BankPurpose.VICTIM_CASES, [EntryIn(kind=SignalKind.VPDQ, frames=frames)]
        )
        headers = api.auth()
        copy = (videos / "chair-22-with-small-logo-bar.mp4").read_bytes()
        accepted = await api.client.post(
            "/api/v1/scan", files={"file": ("clip.mp4", copy, "video/mp4")}, headers=headers
        )
        assert accepted.status_code == 202
        job = await wait_done(api, accepted.json()["id"], headers)
    assert job["status"] == "done"
    assert job["matches"] == [{"bank": "victims", "signal": "vpdq"}]
    assert job["outcome"] == "review"
