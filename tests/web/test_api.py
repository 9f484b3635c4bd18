"""The REST API in-process: scans by hashes, auth, limits, idempotency, batch, jobs."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select
from web_support import CONFIRMED_HASH, VICTIM_HASH, Api, flip, pdq_entry, serving

from redress.config import Settings
from redress.pipeline.keys import ApiKeyService, Scope
from redress.pipeline.models import ScanAction, ScanItem
from redress.store.interfaces import BankPurpose

pytestmark = pytest.mark.anyio


async def test_liveness(api: Api) -> None:
    response = await api.client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["ok"] is True


async def test_readiness_checks_database_index_and_queue(api: Api) -> None:
    response = await api.client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "ok": True,
        "checks": {"database": "ok", "index": "ok", "queue": "ok"},
    }


async def test_hash_scan_without_match_is_ignored(api: Api) -> None:
    response = await api.client.post(
        "/api/v1/scan", json={"pdq": [VICTIM_HASH.hex]}, headers=api.auth()
    )
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "done"
    assert body["outcome"] == "ignore"
    assert body["matches"] == []


async def test_victim_bank_match_goes_to_review_without_distances(api: Api) -> None:
    api.bank("victims", BankPurpose.VICTIM_CASES, [pdq_entry(VICTIM_HASH.bits)])
    near = flip(VICTIM_HASH.bits, 5).hex()
    response = await api.client.post("/api/v1/scan", json={"pdq": [near]}, headers=api.auth())
    body = response.json()
    assert body["outcome"] == "review"
    assert body["matches"] == [{"bank": "victims", "signal": "pdq"}]
    assert body["actions"] == []
    assert "distance" not in response.text


async def test_near_misses_are_never_shown(api: Api) -> None:
    api.bank("victims", BankPurpose.VICTIM_CASES, [pdq_entry(VICTIM_HASH.bits)])
    miss = flip(VICTIM_HASH.bits, 40).hex()  # beyond the bank's threshold of 31
    response = await api.client.post("/api/v1/scan", json={"pdq": [miss]}, headers=api.auth())
    assert response.json()["outcome"] == "ignore"
    assert "victims" not in response.text
    assert "distance" not in response.text


async def test_confirmed_bank_match_acts_and_fills_the_outbox(api: Api) -> None:
    api.bank("confirmed", BankPurpose.CONFIRMED_VIOLATIONS, [pdq_entry(CONFIRMED_HASH.bits)])
    response = await api.client.post(
        "/api/v1/scan",
        json={
            "pdq": [{"hash": CONFIRMED_HASH.hex, "quality": 90}],
            "target": {"platform": "telegram", "chat_id": "-100123", "message_id": "77"},
        },
        headers=api.auth(),
    )
    body = response.json()
    assert body["outcome"] == "act"
    # No callback URL was given, so there is no webhook to send.
    assert body["actions"] == ["delete_message", "block_reupload"]
    with api.state.pipeline.sessions() as session:
        kinds = session.scalars(select(ScanAction.kind).where(ScanAction.item_id == body["id"]))
        assert sorted(kinds) == ["block_reupload", "delete_message"]


async def test_md5_exact_match(api: Api) -> None:
    from redress.signals.types import SignalKind
    from redress.store.interfaces import EntryIn

    digest = "0123456789abcdef0123456789abcdef"
    api.bank(
        "exact",
        BankPurpose.VICTIM_CASES,
        [EntryIn(kind=SignalKind.MD5, value=bytes.fromhex(digest))],
    )
    response = await api.client.post(
        "/api/v1/scan", json={"md5": digest.upper()}, headers=api.auth()
    )
    assert response.json()["matches"] == [{"bank": "exact", "signal": "md5"}]


async def test_caption_with_personal_details_raises_review(api: Api) -> None:
    response = await api.client.post(
        "/api/v1/scan",
        json={"pdq": [VICTIM_HASH.hex], "caption": "她的微信: lucy_1990 电话 13812345678"},
        headers=api.auth(),
    )
    body = response.json()
    assert body["outcome"] == "review"
    assert body["personal_details"] == ["handle", "phone"]
    assert body["priority"] > 0


async def test_idempotency_key_never_makes_a_second_item_or_action(api: Api) -> None:
    api.bank("confirmed", BankPurpose.CONFIRMED_VIOLATIONS, [pdq_entry(CONFIRMED_HASH.bits)])
    headers = {**api.auth(), "Idempotency-Key": "msg-77"}
    payload = {"pdq": [CONFIRMED_HASH.hex]}
    first = await api.client.post("/api/v1/scan", json=payload, headers=headers)
    second = await api.client.post("/api/v1/scan", json=payload, headers=headers)
    assert first.json() == second.json()
    assert "Idempotent-Replayed" not in first.headers
    assert second.headers["Idempotent-Replayed"] == "true"
    with api.state.pipeline.sessions() as session:
        assert session.scalar(select(func.count()).select_from(ScanItem)) == 1
        assert session.scalar(select(func.count()).select_from(ScanAction)) == 2
    conflict = await api.client.post(
        "/api/v1/scan", json={"pdq": [VICTIM_HASH.hex]}, headers=headers
    )
    assert conflict.status_code == 422
    assert conflict.json()["error"] == "idempotency_conflict"


async def test_idempotency_keys_are_per_api_key(api: Api) -> None:
    payload = {"pdq": [VICTIM_HASH.hex]}
    one = await api.client.post(
        "/api/v1/scan", json=payload, headers={**api.auth(), "Idempotency-Key": "k"}
    )
    two = await api.client.post(
        "/api/v1/scan", json=payload, headers={**api.auth(name="other"), "Idempotency-Key": "k"}
    )
    assert one.json()["id"] != two.json()["id"]


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        ({"pdq": ["abc"]}, 400, "bad_pdq_hash"),
        ({"pdq": ["z" * 64]}, 400, "bad_pdq_hash"),
        ({"pdq": [{"hash": "00" * 32, "quality": 101}]}, 400, "bad_pdq_quality"),
        ({"md5": "1234"}, 400, "bad_md5"),
        ({"sha256": "g" * 64}, 400, "bad_sha256"),
        ({"vpdq": [{"pdq": "0" * 63}]}, 400, "bad_pdq_hash"),
        ({}, 400, "no_hashes"),
        ({"pdq": "00"}, 422, "validation_error"),
        ({"pdq": [], "surprise": 1}, 422, "validation_error"),
        ({"md5": "0" * 32, "reporters": -1}, 422, "validation_error"),
    ],
)
async def test_malformed_hash_scans(
    api: Api, payload: dict[str, object], status: int, code: str
) -> None:
    response = await api.client.post("/api/v1/scan", json=payload, headers=api.auth())
    assert response.status_code == status
    assert response.json() == {
        "ok": False,
        "error": code,
        "detail": response.json()["detail"],
        "status": status,
    }
    assert response.json()["detail"]


async def test_invalid_json_is_422(api: Api) -> None:
    response = await api.client.post(
        "/api/v1/scan",
        content=b"{not json",
        headers={**api.auth(), "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert response.json()["error"] == "validation_error"


async def test_unknown_bank_is_404(api: Api) -> None:
    response = await api.client.post(
        "/api/v1/scan", json={"pdq": [VICTIM_HASH.hex], "banks": ["nope"]}, headers=api.auth()
    )
    assert response.status_code == 404
    assert response.json()["error"] == "unknown_bank"


async def test_scan_restricted_to_a_bank(api: Api) -> None:
    api.bank("victims", BankPurpose.VICTIM_CASES, [pdq_entry(VICTIM_HASH.bits)])
    api.bank("other", BankPurpose.VICTIM_CASES, [pdq_entry(CONFIRMED_HASH.bits)])
    response = await api.client.post(
        "/api/v1/scan", json={"pdq": [VICTIM_HASH.hex], "banks": ["other"]}, headers=api.auth()
    )
    assert response.json()["matches"] == []


async def test_keys_missing_wrong_revoked_expired_and_out_of_scope(api: Api) -> None:
    payload = {"pdq": [VICTIM_HASH.hex]}
    expired = api.key()
    api.expire_key(expired)
    revoked = api.key(name="revoked")
    with api.state.pipeline.sessions.begin() as session:
        from redress.pipeline.keys import ApiKeyService

        ApiKeyService(session).revoke(revoked[:12])
    cases = [
        ({}, 401, "unauthenticated"),
        ({"Authorization": "Bearer rdk_wrong"}, 401, "bad_api_key"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, 401, "unauthenticated"),
        ({"Authorization": f"Bearer {expired}"}, 401, "api_key_expired"),
        ({"Authorization": f"Bearer {revoked}"}, 401, "api_key_revoked"),
        (api.auth(Scope.REVIEW), 403, "forbidden"),
    ]
    for headers, status, code in cases:
        response = await api.client.post("/api/v1/scan", json=payload, headers=headers)
        assert (response.status_code, response.json()["error"]) == (status, code), headers
        if status == 401:
            assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_admin_scope_includes_scan(api: Api) -> None:
    response = await api.client.post(
        "/api/v1/scan", json={"pdq": [VICTIM_HASH.hex]}, headers=api.auth(Scope.ADMIN)
    )
    assert response.status_code == 200


async def test_per_key_rate_limit(api: Api) -> None:
    limited = api.auth(rate_per_second=0.01, rate_burst=2)
    other = api.auth(name="other")
    payload = {"pdq": [VICTIM_HASH.hex]}
    statuses = [
        (await api.client.post("/api/v1/scan", json=payload, headers=limited)).status_code
        for _ in range(3)
    ]
    assert statuses == [200, 200, 429]
    refused = await api.client.post("/api/v1/scan", json=payload, headers=limited)
    assert refused.json()["error"] == "rate_limited"
    assert int(refused.headers["Retry-After"]) >= 1
    # Another key has its own bucket.
    assert (await api.client.post("/api/v1/scan", json=payload, headers=other)).status_code == 200


async def test_batch_answers_each_item_and_carries_on(api: Api) -> None:
    api.bank("victims", BankPurpose.VICTIM_CASES, [pdq_entry(VICTIM_HASH.bits)])
    response = await api.client.post(
        "/api/v1/scan/batch",
        json={
            "items": [
                {"pdq": [VICTIM_HASH.hex]},
                {"pdq": ["nothex"]},
                {"md5": "0" * 32, "banks": ["missing"]},
                {"pdq": [CONFIRMED_HASH.hex], "idempotency_key": "b1"},
                {"pdq": [CONFIRMED_HASH.hex], "idempotency_key": "b1"},
            ]
        },
        headers=api.auth(),
    )
    assert response.status_code == 200
    results = response.json()["results"]
    assert [(r["ok"], r["status"]) for r in results] == [
        (True, 200),
        (False, 400),
        (False, 404),
        (True, 200),
        (True, 200),
    ]
    assert results[0]["result"]["outcome"] == "review"
    assert results[1]["error"] == "bad_pdq_hash"
    assert results[2]["error"] == "unknown_bank"
    assert results[3]["result"]["id"] == results[4]["result"]["id"]
    # A replay inside the batch shows the decision the batch made for its first copy.
    assert results[4]["result"] == results[3]["result"]
    assert results[4]["result"]["status"] == "done"


async def test_batch_size_limit(api: Api) -> None:
    items = [{"md5": "0" * 32}] * (api.state.settings.api_batch_max + 1)
    response = await api.client.post(
        "/api/v1/scan/batch", json={"items": items}, headers=api.auth()
    )
    assert response.status_code == 400
    assert response.json()["error"] == "batch_too_large"


async def test_jobs_are_visible_to_their_key_and_to_reviewers(api: Api) -> None:
    owner = api.auth()
    scanned = await api.client.post("/api/v1/scan", json={"md5": "1" * 32}, headers=owner)
    job_id = scanned.json()["id"]
    mine = await api.client.get(f"/api/v1/jobs/{job_id}", headers=owner)
    assert mine.json() == scanned.json()
    other = await api.client.get(f"/api/v1/jobs/{job_id}", headers=api.auth(name="other"))
    assert (other.status_code, other.json()["error"]) == (404, "job_not_found")
    reviewer = await api.client.get(
        f"/api/v1/jobs/{job_id}", headers=api.auth(Scope.SCAN, Scope.REVIEW, name="moderator")
    )
    assert reviewer.status_code == 200
    missing = await api.client.get("/api/v1/jobs/nope", headers=owner)
    assert missing.status_code == 404


async def test_metrics_in_prometheus_text(api: Api) -> None:
    await api.client.post("/api/v1/scan", json={"md5": "1" * 32}, headers=api.auth())
    response = await api.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert "redress_queue_depth 0.0" in text
    assert 'redress_scan_outcomes{outcome="ignore"} 1.0' in text
    assert 'redress_scanned_items_total{mode="hashes",outcome="ignore"} 1.0' in text
    assert (
        'redress_http_request_duration_seconds_bucket{le="0.02",method="POST",route="/api/v1/scan"}'
        in text
    )


async def test_dead_letters_need_admin(api: Api) -> None:
    denied = await api.client.get("/api/v1/dead-letters", headers=api.auth())
    assert denied.status_code == 403
    allowed = await api.client.get("/api/v1/dead-letters", headers=api.auth(Scope.ADMIN))
    assert allowed.json() == []


async def test_a_key_expiring_later_still_works(api: Api) -> None:
    token = api.key(expires_in=dt.timedelta(days=30))
    response = await api.client.post(
        "/api/v1/scan", json={"md5": "1" * 32}, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200


async def test_revocation_takes_effect_within_the_cache_time(settings: Settings) -> None:
    async with serving(settings.model_copy(update={"api_key_cache_seconds": 0})) as api:
        token = api.key()
        headers = {"Authorization": f"Bearer {token}"}
        payload = {"md5": "1" * 32}
        assert (
            await api.client.post("/api/v1/scan", json=payload, headers=headers)
        ).status_code == 200
        with api.state.pipeline.sessions.begin() as session:
            ApiKeyService(session).revoke(token[:12])
        refused = await api.client.post("/api/v1/scan", json=payload, headers=headers)
        assert refused.json()["error"] == "api_key_revoked"


async def test_only_sightings_enter_the_seen_media_history(api: Api) -> None:
    from redress.store.models import SeenItem

    headers = api.auth()
    await api.client.post("/api/v1/scan", json={"md5": "2" * 32}, headers=headers)
    await api.client.post(
        "/api/v1/scan",
        json={"md5": "3" * 32, "target": {"platform": "telegram", "chat_id": "-1"}},
        headers=headers,
    )
    with api.state.pipeline.sessions() as session:
        assert session.scalar(select(func.count()).select_from(SeenItem)) == 1


async def test_batch_respects_earlier_idempotency_keys(api: Api) -> None:
    api.bank("confirmed", BankPurpose.CONFIRMED_VIOLATIONS, [pdq_entry(CONFIRMED_HASH.bits)])
    headers = api.auth()
    first = await api.client.post(
        "/api/v1/scan",
        json={"pdq": [CONFIRMED_HASH.hex]},
        headers={**headers, "Idempotency-Key": "m1"},
    )
    batch = await api.client.post(
        "/api/v1/scan/batch",
        json={
            "items": [
                {"pdq": [CONFIRMED_HASH.hex], "idempotency_key": "m1"},
                {"pdq": [VICTIM_HASH.hex], "idempotency_key": "m1"},
                {"pdq": [CONFIRMED_HASH.hex], "idempotency_key": "m2"},
            ]
        },
        headers=headers,
    )
    results = batch.json()["results"]
    assert results[0]["result"] == first.json()
    assert (results[1]["ok"], results[1]["error"]) == (False, "idempotency_conflict")
    assert results[2]["result"]["outcome"] == "act"
    with api.state.pipeline.sessions() as session:
        assert session.scalar(select(func.count()).select_from(ScanItem)) == 2
        assert session.scalar(select(func.count()).select_from(ScanAction)) == 4
