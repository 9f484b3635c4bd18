"""Capture, view, deletion, key rotation and other domains' events, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from dataclasses import replace

import pytest
from pydantic import SecretStr

from redress import __version__
from redress.evidence.crypto import MASTER_KEY_FILE, MasterKeyFile
from redress.evidence.errors import (
    BadCaptureError,
    EvidenceDecryptError,
    EvidenceDeletedError,
    EvidenceNotFoundError,
)
from redress.evidence.interfaces import EntryDraft, EntryKind, EvidenceRecorder, MessageFacts
from redress.evidence.models import EvidenceItemRow

from .conftest import EvidenceEnv, capture_request


def test_capture_keeps_original_bytes_and_every_fact(env: EvidenceEnv) -> None:
    request = capture_request(1)
    with env.service() as service:
        item = service.capture(request)
    assert item.sha256 == hashlib.sha256(request.content).hexdigest()
    assert item.sha512 == hashlib.sha512(request.content).hexdigest()
    assert item.size == len(request.content)
    assert item.captured_at.tzinfo is not None
    # The blob on disk is ciphertext, not the image.
    blob = (
        env.settings.effective_evidence_dir / "blobs" / item.id[:2] / f"{item.id}.bin"
    ).read_bytes()
    assert request.content not in blob
    with env.service() as service:
        opened = service.open(item.id, "moderator:1", "case review")
        entries = service.ledger.entries_for_item(item.id)
    assert opened.content == request.content
    record = json.loads(opened.record)
    evidence, trigger = record["evidence"], record["trigger"]
    assert evidence["message"]["message_link"] == "https://t.me/c/1234567890/1001"
    assert evidence["message"]["content_protected"] is True
    assert evidence["message"]["self_destruct_seconds"] == 60
    assert evidence["message"]["forward_origin"] == {
        "type": "channel",
        "chat": {"id": -1009876543210},
    }
    assert evidence["message"]["raw"] == {"message_id": 1001, "has_protected_content": True}
    assert evidence["message"]["message_date"] == "2026-11-24T22:00:01.000000Z"
    assert evidence["clock"] == "system clock (UTC)"
    assert evidence["redress_version"] == __version__
    assert (evidence["connector"], evidence["operator"]) == ("telegram-bot", "helpline-ngo")
    assert trigger == {
        "kind": "match",
        "reference": "match-1",
        "case_id": "case-1",
        "bank": None,
        "distance": 4,
        "details": {},
    }
    assert "trigger" not in evidence  # detector facts are kept apart from evidence facts
    capture, view = (json.loads(e.body) for e in entries)
    assert capture["kind"] == EntryKind.CAPTURE
    assert capture["seq"] == item.capture_seq
    assert capture["facts"]["record_sha256"] == hashlib.sha256(opened.record).hexdigest()
    assert capture["facts"]["sha256"] == item.sha256
    assert "caption text" not in entries[0].body.decode()  # personal facts stay encrypted
    assert view["kind"] == EntryKind.VIEW
    assert view["actor"] == "moderator:1"
    assert view["facts"]["purpose"] == "case review"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"content": b""}, "empty"),
        ({"media_type": "jpeg"}, "media type"),
        ({"operator": ""}, "operator"),
        (
            {"message": MessageFacts(platform="telegram", message_date=dt.datetime(2026, 1, 1))},
            "timezone",
        ),
    ],
)
def test_bad_captures_are_refused(
    env: EvidenceEnv, change: dict[str, object], message: str
) -> None:
    with env.service() as service:
        with pytest.raises(BadCaptureError, match=message):
            service.capture(replace(capture_request(), **change))  # type: ignore[arg-type]
        assert service.ledger.size() == 0


def test_deletion_really_erases(env: EvidenceEnv) -> None:
    with env.service() as service:
        item = service.capture(capture_request(2))
    blob = env.settings.effective_evidence_dir / "blobs" / item.id[:2] / f"{item.id}.bin"
    assert blob.exists()
    with env.service() as service:
        tombstone = service.delete(item.id, "victim:case-1", "victim request")
    assert not blob.exists()
    with env.service() as service:
        row = service.store.item(item.id)
        assert row is not None
        assert (row.wrapped_key, row.record_ciphertext, row.master_key_id) == (None, None, None)
        assert row.status == "deleted"
        assert row.deleted_seq == tombstone.seq
        with pytest.raises(EvidenceDeletedError, match="deleted"):
            service.open(item.id, "moderator:1", "look")
        with pytest.raises(EvidenceDeletedError):
            service.delete(item.id, "victim:case-1", "again")
        kinds = [e.kind for e in service.ledger.entries_for_item(item.id)]
    assert kinds == [EntryKind.CAPTURE, EntryKind.DELETION]
    doc = json.loads(tombstone.body)
    assert doc["actor"] == "victim:case-1"
    assert doc["facts"]["reason"] == "victim request"


def test_delete_case_erases_only_that_case(env: EvidenceEnv) -> None:
    with env.service() as service:
        mine = service.capture(capture_request(3))
        other = service.capture(
            capture_request(4, trigger=replace(capture_request(4).trigger, case_id="case-2"))
        )
        assert len(service.delete_case("case-1", "victim:case-1", "withdrawn")) == 1
        assert service.item(mine.id).status == "deleted"
        assert service.item(other.id).status == "active"


def test_blob_moved_to_another_item_fails_to_decrypt(env: EvidenceEnv) -> None:
    with env.service() as service:
        a = service.capture(capture_request(5))
        b = service.capture(capture_request(6))
    root = env.settings.effective_evidence_dir / "blobs"
    (root / b.id[:2] / f"{b.id}.bin").write_bytes((root / a.id[:2] / f"{a.id}.bin").read_bytes())
    with env.service() as service, pytest.raises(EvidenceDecryptError):
        service.open(b.id, "moderator:1", "look")


def test_master_key_rotation_rewraps_and_is_logged(env: EvidenceEnv) -> None:
    with env.service() as service:
        item = service.capture(capture_request(7))
    key_file = MasterKeyFile(env.settings.home / "keys" / MASTER_KEY_FILE)
    old = key_file.load().current_id
    with env.service() as service:
        result = service.rotate_master_key("admin:1")
    with env.service() as service:
        service.forget_old_master_keys()
    assert result.rewrapped == 1
    assert old in result.old_key_ids
    assert set(key_file.load().keys) == {result.new_key_id}
    with env.service() as service:
        row = service.store.item(item.id)
        assert isinstance(row, EvidenceItemRow)
        assert row.master_key_id == result.new_key_id
        assert (
            service.open(item.id, "moderator:1", "after rotation").content
            == capture_request(7).content
        )
        entry = json.loads(service.ledger.entries([result.entry_seq])[0].body)
    assert entry["kind"] == EntryKind.KEY_ROTATION
    assert entry["actor"] == "admin:1"


def test_environment_master_key_rotation(env: EvidenceEnv) -> None:
    old = SecretStr(base64.b64encode(b"o" * 32).decode())
    new = SecretStr(base64.b64encode(b"n" * 32).decode())
    with env.service(evidence_master_key=old) as service:
        item = service.capture(capture_request(8))
    with (
        env.service(evidence_master_key=new) as service,
        pytest.raises(Exception, match="not loaded"),
    ):
        service.open(item.id, "m", "x")
    with env.service(evidence_master_key=new, evidence_previous_master_keys=old) as service:
        assert service.rotate_master_key("admin").rewrapped == 1
    with env.service(evidence_master_key=new) as service:
        assert service.open(item.id, "m", "x").content == capture_request(8).content


def test_record_event_for_an_item_checks_it_exists(env: EvidenceEnv) -> None:
    with env.service() as service:
        item = service.capture(capture_request(9))
        entry = service.record_event(
            "review:match:confirmed", "moderator:2", {"decision": "remove"}, item.id
        )
        assert entry.item_id == item.id
        with pytest.raises(EvidenceNotFoundError):
            service.record_event("review:match:confirmed", "moderator:2", {}, "f" * 32)
        with pytest.raises(EvidenceNotFoundError, match="32 hex"):
            service.item("../../etc/passwd")


def test_record_events_appends_a_batch_in_order_or_nothing(env: EvidenceEnv) -> None:
    with env.service() as service:
        item = service.capture(capture_request(11))
        size = service.ledger.size()
        entries = service.record_events(
            [
                EntryDraft("pipeline:scan:decided", "pipeline", {"n": 1}),
                EntryDraft("pipeline:scan:decided", "pipeline", {"n": 2}, item.id),
            ]
        )
        assert [e.seq for e in entries] == [size, size + 1]
        assert [e.item_id for e in entries] == [None, item.id]
        assert service.ledger.size() == size + 2
        # One bad draft refuses the whole batch before anything is appended.
        with pytest.raises(BadCaptureError, match="evidence: entry kinds"):
            service.record_events(
                [
                    EntryDraft("pipeline:scan:decided", "pipeline", {}),
                    EntryDraft("evidence:item:captured", "pipeline", {}),
                ]
            )
        with pytest.raises(EvidenceNotFoundError):
            service.record_events([EntryDraft("pipeline:scan:decided", "p", {}, "f" * 32)])
        assert service.ledger.size() == size + 2


def test_service_is_an_evidence_recorder_and_finds_captures_by_message(env: EvidenceEnv) -> None:
    with env.service() as service:
        assert isinstance(service, EvidenceRecorder)
        item = service.capture(capture_request(10))
        found = service.items_for_message("telegram", "-1001234567890", "1010")
        assert [i.id for i in found] == [item.id]
        assert service.items_for_message("telegram", "-1001234567890", "999") == []


def test_capture_after_a_concurrent_rotation_uses_the_new_key(env: EvidenceEnv) -> None:
    with env.service() as service:
        service.capture(capture_request(11))
    # A long-lived service loaded the keys before another process rotated them ...
    with env.service() as early:
        early.ledger.size()
        with env.service() as rotator:
            rotator.rotate_master_key("admin")
        with env.service() as rotator:
            rotator.forget_old_master_keys()
        # ... its next capture must not wrap under the key that was just forgotten.
        late = early.capture(capture_request(12))
    with env.service() as service:
        assert service.open(late.id, "m", "check").content == capture_request(12).content
