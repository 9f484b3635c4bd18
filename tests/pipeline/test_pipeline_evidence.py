"""Matched and reported media are preserved as evidence before any action runs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from media_support import photo
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from redress.actions.interfaces import ActionKind, ActionRequest, ActionResult, ActionTarget
from redress.config import Settings
from redress.evidence.merkle import leaf_hash, verify_inclusion
from redress.evidence.models import EvidenceItemRow, LedgerEntryRow
from redress.evidence.service import EvidenceService, build_evidence_service
from redress.evidence.store import SqlEvidenceStore
from redress.pipeline.container import PipelineContainer, PipelineParts, build_pipeline
from redress.pipeline.interfaces import MatchQuery
from redress.pipeline.models import ScanItem
from redress.pipeline.service import (
    HashSubmission,
    MediaSubmission,
    ScanContext,
    ScanResult,
    SightingFacts,
)
from redress.signals import HashOptions, hash_bytes
from redress.store.db import make_engine
from redress.store.interfaces import BankPurpose
from redress.store.media import entries_for_signals
from redress.store.migrate import upgrade
from redress.store.service import BankService, CaseService

VICTIM = photo(101)
KNOWN = photo(102)
STRANGER = photo(103)


def evidence(session: Session, settings: Settings) -> EvidenceService:
    return build_evidence_service(SqlEvidenceStore(session), settings)


class CheckingDelete:
    """A delete actioner that looks for the item's evidence before it 'deletes'."""

    kind = ActionKind.DELETE_MESSAGE

    def __init__(self, container: list[PipelineContainer]) -> None:
        self.container = container
        self.seen: list[tuple[str, bytes | None]] = []

    def perform(self, request: ActionRequest) -> ActionResult:
        pipeline = self.container[0]
        with pipeline.sessions() as session:
            item = session.get(ScanItem, request.item_id)
            assert item is not None
            content = None
            if item.evidence_item_id is not None:
                opened = evidence(session, pipeline.settings).open(
                    item.evidence_item_id, "test", "check before delete"
                )
                content = opened.content
            self.seen.append((request.item_id, content))
        return ActionResult(ok=True, detail="deleted")


@dataclass
class World:
    pipeline: PipelineContainer
    settings: Settings
    case_id: int
    deleter: CheckingDelete


@pytest.fixture
def world(tmp_path: Path, database_url: str) -> Iterator[World]:
    settings = Settings(home=tmp_path / "home", database_url=database_url)
    upgrade(database_url)
    options = HashOptions.from_settings(settings)
    holder: list[PipelineContainer] = []
    deleter = CheckingDelete(holder)
    engine = make_engine(database_url)
    with Session(engine) as session, session.begin():
        created = CaseService(session).create(entries_for_signals(hash_bytes(VICTIM, options)))
        banks = BankService(session)
        banks.create("mod-confirmed", BankPurpose.CONFIRMED_VIOLATIONS)
        banks.add("mod-confirmed", entries_for_signals(hash_bytes(KNOWN, options)))
    engine.dispose()
    pipeline = build_pipeline(
        settings,
        PipelineParts(actioners={ActionKind.DELETE_MESSAGE: deleter}),
        embedded_queue=False,
    )
    holder.append(pipeline)
    try:
        yield World(pipeline, settings, created.case.id, deleter)
    finally:
        pipeline.close()


def submit(world: World, data: bytes, **context: object) -> str:
    sighting = SightingFacts(
        connector="telegram-bot",
        chat_title="Group A",
        message_link="https://t.me/c/1234/42",
        sender_name="poster",
        content_protected=True,
        raw=json.dumps({"message_id": 42}),
    )
    ctx = ScanContext(
        source="telegram",
        caption="look",
        target=ActionTarget("telegram", "-1001234", "42", "777"),
        sighting=sighting,
        **context,  # type: ignore[arg-type]
    )
    with world.pipeline.sessions.begin() as session:
        item, _ = world.pipeline.service.accept(
            session, MediaSubmission(data=data, filename="p.jpg", context=ctx),
            key=None, idempotency_key=None,
        )  # fmt: skip
    return item.id


def counts(world: World) -> tuple[int, int]:
    with world.pipeline.sessions() as session:
        return (
            session.scalar(select(func.count()).select_from(EvidenceItemRow)) or 0,
            session.scalar(select(func.count()).select_from(LedgerEntryRow)) or 0,
        )


def test_a_match_is_captured_encrypted_and_its_ledger_entry_verifies(world: World) -> None:
    item_id = submit(world, VICTIM)
    report = world.pipeline.runner.process(item_id)
    assert report.status == "done"
    assert report.outcome == "review"
    with world.pipeline.sessions.begin() as session:
        item = session.get(ScanItem, item_id)
        assert item is not None
        assert item.evidence_item_id is not None
        row = session.get(EvidenceItemRow, item.evidence_item_id)
        assert row is not None
        assert row.case_id == str(world.case_id)
        service = evidence(session, world.settings)
        blob = world.settings.effective_evidence_dir / "blobs" / row.blob_name
        assert VICTIM not in blob.read_bytes()  # encrypted at rest
        opened = service.open(row.id, "test", "check")
        assert opened.content == VICTIM
        record = json.loads(opened.record)
        assert record["evidence"]["message"]["message_link"] == "https://t.me/c/1234/42"
        assert record["evidence"]["message"]["chat_id"] == "-1001234"
        assert record["evidence"]["connector"] == "telegram-bot"
        trigger = record["trigger"]
        assert trigger["kind"] == "match"
        assert trigger["bank"] == "victim-cases"
        assert trigger["case_id"] == str(world.case_id)
        assert trigger["distance"] == 0
        assert "bank" not in record["evidence"]  # detector facts stay in the trigger
        ledger = service.ledger
        size, root = ledger.size(), ledger.root()
        kinds = [e.kind for e in ledger.entries_for_item(row.id)]
        assert kinds[:2] == ["evidence:item:captured", "pipeline:scan:decided"]
        capture = ledger.entries_for_item(row.id)[0]
        proof = ledger.inclusion_proof(capture.seq, size)
        assert verify_inclusion(leaf_hash(capture.body), capture.seq, size, proof.hashes, root)
        decided = json.loads(ledger.entries_for_item(row.id)[1].body)["facts"]
        assert decided["outcome"] == "review"
        assert decided["scan_item"] == item_id
        assert [s["step"] for s in item.steps or []][-1] == "evidence"


def test_reprocessing_never_captures_twice(world: World) -> None:
    item_id = submit(world, VICTIM)
    world.pipeline.runner.process(item_id)
    before = counts(world)
    assert before[0] == 1
    assert world.pipeline.runner.process(item_id).status == "skipped"
    assert counts(world) == before


def test_a_non_matching_scan_stores_nothing(world: World) -> None:
    item_id = submit(world, STRANGER)
    report = world.pipeline.runner.process(item_id)
    assert report.outcome == "ignore"
    assert counts(world) == (0, 0)
    with world.pipeline.sessions() as session:
        item = session.get(ScanItem, item_id)
        assert item is not None
        assert item.evidence_item_id is None


def test_act_deletes_only_after_the_item_is_preserved(world: World) -> None:
    item_id = submit(world, KNOWN)
    report = world.pipeline.runner.process(item_id)
    assert report.outcome == "act"
    assert world.deleter.seen == [(item_id, KNOWN)]  # the bytes were in evidence already
    with world.pipeline.sessions() as session:
        row = session.scalars(select(EvidenceItemRow)).one()
        assert row.case_id is None  # a moderator-confirmed bank, no victim case


def test_a_reported_item_without_a_match_is_captured_as_a_report(world: World) -> None:
    item_id = submit(world, STRANGER, reporters=2)
    report = world.pipeline.runner.process(item_id)
    assert report.outcome == "review"  # reports of unmatched media get a human look
    with world.pipeline.sessions() as session:
        item = session.get(ScanItem, item_id)
        assert item is not None
        assert item.evidence_item_id is not None
        opened = evidence(session, world.settings).open(item.evidence_item_id, "t", "check")
        assert opened.content == STRANGER
        assert json.loads(opened.record)["trigger"]["kind"] == "report"


def test_hash_scan_decisions_are_logged_without_an_item(world: World) -> None:
    options = HashOptions.from_settings(world.settings)
    known = hash_bytes(KNOWN, options).pdq
    stranger = hash_bytes(STRANGER, options).pdq
    assert known is not None
    assert stranger is not None
    with world.pipeline.sessions.begin() as session:
        answers = world.pipeline.service.scan_hashes_many(
            session,
            [
                (HashSubmission(MatchQuery(pdq=(known,))), None),
                (HashSubmission(MatchQuery(pdq=(stranger,))), None),
            ],
            key=None,
        )
    first, second = answers
    assert isinstance(first, ScanResult)
    assert isinstance(second, ScanResult)
    assert first.outcome == "act"
    assert second.outcome == "ignore"
    with world.pipeline.sessions() as session:
        rows = session.scalars(select(LedgerEntryRow)).all()
        assert session.scalar(select(func.count()).select_from(EvidenceItemRow)) == 0
    [entry] = rows  # one decision (act); the ignored lookup is not a decision about anyone
    body = json.loads(entry.body)
    assert body["kind"] == "pipeline:scan:decided"
    assert body["facts"]["scan_item"] == first.item_id
    assert body["facts"]["mode"] == "hashes"
    assert body["facts"]["evidence_items"] == []
