"""Queued items processed in batches keep every guarantee of one-by-one processing:
one outcome each, one outbox row per action, dead letters for the poisoned, and an
item that crashes its batch cannot take the others to the dead letters with it."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
from pathlib import Path

import pytest
from media_support import photo
from sqlalchemy import func, select

from redress.actions.interfaces import ActionTarget
from redress.config import Settings
from redress.pipeline.container import PipelineContainer, PipelineParts, build_pipeline
from redress.pipeline.interfaces import ClassifierScore, MatchQuery, MediaDigest
from redress.pipeline.matching import SignalsHasher, StoreMatcher
from redress.pipeline.models import ScanAction, ScanItem, ScanMedia
from redress.pipeline.service import (
    HashSubmission,
    MediaSubmission,
    ScanContext,
    ScanResult,
    SightingFacts,
)
from redress.signals import HashOptions, hash_bytes
from redress.signals.types import SignalKind
from redress.signals.verify import ScannedPicture
from redress.store.interfaces import BankPurpose, EntryIn
from redress.store.migrate import upgrade
from redress.store.models import Match, SeenItem, Sighting
from redress.store.service import BankService


def _accept(container: PipelineContainer, photos: list[bytes]) -> list[str]:
    ids = []
    with container.sessions.begin() as session:
        for n, data in enumerate(photos):
            item, _ = container.service.accept(
                session,
                MediaSubmission(data=data, filename=f"{n}.jpg"),
                key=None,
                idempotency_key=f"m{n}",
            )
            ids.append(item.id)
    return ids


@pytest.mark.parametrize("processes", [1, 2])
def test_a_batch_gives_each_item_one_outcome(
    tmp_path: Path, database_url: str, processes: int
) -> None:
    upgrade(database_url)
    settings = Settings(
        home=tmp_path / "home", database_url=database_url, serve_processes=processes
    )
    container = build_pipeline(settings, embedded_queue=False)
    # Several processes on one SQLite file: matching reads before the write gate.
    split = processes > 1 and database_url.startswith("sqlite")
    assert container.runner.match_before_gate is split
    try:
        photos = [photo(n) for n in range(6)]
        photos[4] = photos[4][:150]  # truncated: cannot be decoded
        known = hash_bytes(photos[1], HashOptions()).pdq
        assert known is not None
        with container.sessions.begin() as session:
            BankService(session).create("confirmed", BankPurpose.CONFIRMED_VIOLATIONS)
            BankService(session).add(
                "confirmed", [EntryIn(SignalKind.PDQ, known.bits, known.quality)]
            )
        matcher = container.service.matcher
        assert isinstance(matcher, StoreMatcher)
        matcher.follower.poll()  # the index sees the new entry now
        ids = _accept(container, photos)

        reports = container.runner.process_many([*ids, ids[0]])  # a duplicate delivery too
        again = container.runner.process_many(ids)

        assert [r.item_id for r in reports] == [*ids, ids[0]]
        assert [r.status for r in reports[:6]] == ["done"] * 4 + ["dead", "done"]
        assert reports[1].outcome == "act"
        assert {r.outcome for n, r in enumerate(reports[:6]) if n not in (1, 4)} == {"ignore"}
        assert [r.status for r in again] == ["skipped"] * 6
        with container.sessions() as session:
            items = {i.id: i for i in session.scalars(select(ScanItem))}
            kinds = sorted(session.scalars(select(ScanAction.kind)))
            spooled = session.scalar(select(func.count()).select_from(ScanMedia))
            seen = session.scalar(select(func.count()).select_from(SeenItem))
            matched = session.scalar(select(func.count()).select_from(Match))
        assert seen == 5  # every decoded upload is in the seen-media history, once
        assert matched == 1
        assert items[ids[4]].error_code  # dead-lettered with the reason
        assert all(items[i].attempts == 1 for i in ids)
        assert spooled == 0  # hashes are kept, media is not
        # Only the acting item has actions, each once (the webhook needs a callback URL).
        assert kinds == ["block_reupload", "delete_message"]
        assert [s["step"] for s in items[ids[1]].steps][:4] == [
            "hash",
            "match",
            "policy",
            "outcome",
        ]
    finally:
        container.close()


class CrashingHasher:
    """Hashes like the real one, but one picture makes it fail hard (as a decoder bug
    in a native library would crash a worker)."""

    def __init__(self, settings: Settings, poison: bytes) -> None:
        self.real = SignalsHasher(settings)
        self.poison = poison

    def hash_bytes(self, data: bytes, name: str | None = None) -> MediaDigest:
        if data == self.poison:
            raise RuntimeError("decoder crashed")
        return self.real.hash_bytes(data, name)

    def picture(self, data: bytes, digest: MediaDigest) -> ScannedPicture | None:
        return self.real.picture(data, digest)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_an_item_that_crashes_its_batch_is_dead_lettered_alone(
    tmp_path: Path, database_url: str
) -> None:
    upgrade(database_url)
    settings = Settings(home=tmp_path / "home", database_url=database_url, scan_max_attempts=3)
    photos = [photo(n) for n in range(5)]
    container = build_pipeline(
        settings,
        PipelineParts(hasher=CrashingHasher(settings, photos[2])),
        embedded_queue=False,
    )
    now = [dt.datetime(2026, 11, 25, 4, 0, tzinfo=dt.UTC)]
    container.service.clock = lambda: now[0]
    try:
        ids = _accept(container, photos)
        with pytest.raises(RuntimeError):
            container.runner.process_many(ids)  # the whole batch goes down with it
        rounds = 0
        while True:
            now[0] += dt.timedelta(seconds=settings.scan_lease_seconds + 1)  # leases run out
            with container.sessions() as session:
                queued = list(
                    session.scalars(select(ScanItem.id).where(ScanItem.status == "queued"))
                )
            if not queued:
                break
            rounds += 1
            assert rounds < 10
            # The sweep hands the stranded items back as a batch; each is now a retry. A
            # failure escapes only when the item is alone (the queue logs it, as here).
            with contextlib.suppress(RuntimeError):
                container.runner.process_many(sorted(queued, key=ids.index))
        with container.sessions() as session:
            items = {i.id: i for i in session.scalars(select(ScanItem))}
            dead = session.scalar(
                select(func.count()).select_from(ScanItem).where(ScanItem.status == "dead")
            )
    finally:
        container.close()
    assert dead == 1
    assert items[ids[2]].error_code == "too_many_attempts"
    for n in (0, 1, 3, 4):  # the crash cost them one attempt, no more
        assert (items[ids[n]].status, items[ids[n]].attempts) == ("done", 2)


def test_a_scan_context_survives_its_json_form() -> None:
    # Items carry their context as JSON between acceptance and processing.
    context = ScanContext(
        source="bot",
        caption="call 138 1234 5678",
        reporters=2,
        trusted_flagger=True,
        target=ActionTarget("telegram", "-100", "7", "42"),
        banks=("a", "b"),
        callback_url="https://example.org/hook",
        sighting=SightingFacts(connector="telegram-bot", chat_title="group"),
    )
    data = context.to_json()
    assert set(data) == {f.name for f in dataclasses.fields(ScanContext)}
    assert ScanContext.from_json(json.loads(json.dumps(data))) == context


class FlakyClassifier:
    """A plug-in classifier that fails on one picture (a model that chokes on it)."""

    name = "flaky"

    def __init__(self, bad: bytes) -> None:
        self.bad = bad

    def classify(self, data: bytes, digest: MediaDigest) -> ClassifierScore:
        if data == self.bad:
            raise RuntimeError("model failed")
        return ClassifierScore(label="nudity", score=0.1)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_when_a_batch_cannot_be_decided_each_item_is_decided_alone(
    tmp_path: Path, database_url: str
) -> None:
    upgrade(database_url)
    settings = Settings(home=tmp_path / "home", database_url=database_url)
    photos = [photo(n) for n in range(3)]
    container = build_pipeline(
        settings, PipelineParts(classifier=FlakyClassifier(photos[1])), embedded_queue=False
    )
    try:
        ids = _accept(container, photos)
        reports = container.runner.process_many(ids)
        with container.sessions() as session:
            items = {i.id: i for i in session.scalars(select(ScanItem))}
            spooled = list(session.scalars(select(ScanMedia.item_id)))
    finally:
        container.close()
    assert [r.status for r in reports] == ["done", "failed", "done"]
    assert spooled == [ids[1]]  # only the item still queued keeps its bytes
    assert items[ids[1]].status == "queued"  # left for a retry, alone, once its lease ends
    for n in (0, 2):  # each step recorded once, not once per try
        steps = [s["step"] for s in items[ids[n]].steps]
        assert steps == ["hash", "match", "classifier", "policy", "outcome"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_an_idempotency_key_taken_between_matching_and_writing_answers_the_first_scan(
    tmp_path: Path, database_url: str
) -> None:
    upgrade(database_url)
    settings = Settings(home=tmp_path / "home", database_url=database_url, serve_processes=2)
    container = build_pipeline(settings, embedded_queue=False)
    service = container.service
    submission = HashSubmission(
        query=MatchQuery(md5="0" * 32), context=ScanContext(target=ActionTarget("telegram", "c"))
    )
    try:
        with container.sessions.begin() as session:  # matched and decided, not yet written
            plan = service.plan_hash_scans(session, [(submission, "resend-1")], key=None)
        # Meanwhile another process scans the same request under the same key.
        with container.writes, container.sessions.begin() as session:
            (first,) = service.scan_hashes_many(session, [(submission, "resend-1")], key=None)
        with container.writes, container.sessions.begin() as session:
            (late,) = service.write_hash_scans(session, plan)
        assert isinstance(first, ScanResult)
        assert first.created
        assert isinstance(late, ScanResult)
        assert not late.created
        assert late.item_id == first.item_id
        with container.sessions() as session:
            items = session.scalar(select(func.count()).select_from(ScanItem))
            sightings = session.scalar(select(func.count()).select_from(Sighting))
        assert items == 1  # one item, one outcome
        assert sightings == 1  # and seen once: the late plan recorded nothing
    finally:
        container.close()
