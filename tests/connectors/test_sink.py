"""PipelineSink: a connector's media through the real pipeline, answered as a Decision."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from redress.config import Settings
from redress.connectors.interfaces import (
    ActionKind,
    IncomingMedia,
    MediaKind,
    MediaOrigin,
    MessageFacts,
    Outcome,
    Person,
    TooLarge,
)
from redress.connectors.sink import PipelineSink, handoff_actioners
from redress.connectors.telegram.fakeapi import jpeg
from redress.errors import RedressError
from redress.evidence.models import EvidenceItemRow
from redress.pipeline.container import PipelineParts, build_pipeline
from redress.pipeline.models import ScanAction
from redress.signals import HashOptions, hash_bytes
from redress.store.db import make_engine
from redress.store.interfaces import BankPurpose
from redress.store.media import entries_for_signals
from redress.store.migrate import upgrade
from redress.store.service import BankService

pytestmark = pytest.mark.anyio
KNOWN = jpeg(256, 256, 21)
BANNED = jpeg(256, 256, 22)
POLICY = '[banks.ban-bank]\nactions = ["delete_message", "restrict_user"]\n'


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def sink(tmp_path: Path, sqlite_url: str) -> Iterator[PipelineSink]:
    (tmp_path / "policy.toml").write_text(POLICY, encoding="utf-8")
    settings = Settings(
        home=tmp_path / "home", database_url=sqlite_url, policy_path=tmp_path / "policy.toml"
    )
    upgrade(sqlite_url)
    engine = make_engine(sqlite_url)
    options = HashOptions.from_settings(settings)
    with Session(engine) as session, session.begin():
        banks = BankService(session)
        for name, image in (("known", KNOWN), ("ban-bank", BANNED)):
            banks.create(name, BankPurpose.CONFIRMED_VIOLATIONS)
            banks.add(name, entries_for_signals(hash_bytes(image, options)))
    engine.dispose()
    pipeline = build_pipeline(
        settings, PipelineParts(actioners=handoff_actioners("telegram")), embedded_queue=False
    )
    sink = PipelineSink(pipeline, connector="telegram-bot")
    try:
        yield sink
    finally:
        sink.close()
        pipeline.close()


def media(content: bytes | TooLarge, message_id: int = 1) -> IncomingMedia:
    facts = MessageFacts(
        platform="telegram",
        chat_id=-1001,
        chat_title="G",
        chat_type="supergroup",
        message_id=message_id,
        link=f"https://t.me/c/1/{message_id}",
        sender=Person(77, "Mallory"),
        date=dt.datetime(2026, 11, 1, tzinfo=dt.UTC),
        caption="look",
        raw=json.dumps({"message_id": message_id}),
    )
    return IncomingMedia(MediaKind.PHOTO, MediaOrigin.ARRIVAL, facts, content, "p.jpg")


def evidence_count(sink: PipelineSink) -> int:
    with sink.pipeline.sessions() as session:
        return session.scalar(select(func.count()).select_from(EvidenceItemRow)) or 0


async def test_a_match_acts_with_evidence_and_a_repeat_is_answered_from_the_first_scan(
    sink: PipelineSink,
) -> None:
    first = await sink.receive(media(KNOWN))
    assert first.outcome is Outcome.ACT
    assert first.actions == (ActionKind.DELETE_MESSAGE, ActionKind.POST_NOTICE)
    assert first.evidence_ref is not None
    assert first.matches[0].startswith("known/")
    again = await sink.receive(media(KNOWN))
    assert again == first
    assert evidence_count(sink) == 1
    with sink.pipeline.sessions() as session:
        [delete] = session.scalars(
            select(ScanAction).where(ScanAction.kind == "delete_message")
        ).all()
    assert delete.status == "done"
    assert "handed to the telegram connector" in (delete.detail or "")


async def test_a_bank_that_restricts_asks_to_ban_or_restrict(sink: PipelineSink) -> None:
    decision = await sink.receive(media(BANNED, 2))
    assert decision.actions == (
        ActionKind.DELETE_MESSAGE,
        ActionKind.POST_NOTICE,
        ActionKind.BAN_SENDER,
        ActionKind.RESTRICT_SENDER,
    )


async def test_no_match_is_ignored_and_keeps_nothing(sink: PipelineSink) -> None:
    decision = await sink.receive(media(jpeg(256, 256, 23), 3))
    assert decision.outcome is Outcome.IGNORE
    assert decision.evidence_ref is None
    assert decision.actions == ()
    assert evidence_count(sink) == 0


async def test_unreadable_bytes_raise_the_signals_error(sink: PipelineSink) -> None:
    with pytest.raises(RedressError) as caught:
        await sink.receive(media(KNOWN[:300], 4))
    assert caught.value.code != "internal_error"


async def test_too_large_goes_to_review_without_a_scan(sink: PipelineSink) -> None:
    decision = await sink.receive(media(TooLarge(30_000_000, 20_000_000, "cloud limit"), 5))
    assert decision.outcome is Outcome.REVIEW
    assert decision.evidence_ref is None
    assert "cloud limit" in decision.reason


async def test_a_batch_is_answered_in_order_and_one_bad_item_does_not_stop_the_rest(
    sink: PipelineSink,
) -> None:
    batch = [
        media(jpeg(256, 256, 31), 10),
        media(KNOWN, 11),
        media(KNOWN[:300], 12),  # corrupt
        media(TooLarge(30_000_000, 20_000_000, "cloud limit"), 13),
        media(BANNED, 14),
        media(jpeg(256, 256, 32), 15),
    ]
    answers = await sink.receive_many(batch)
    assert len(answers) == len(batch)
    ignored, known, corrupt, too_large, banned, other = answers
    assert not isinstance(ignored, RedressError)
    assert ignored.outcome is Outcome.IGNORE
    assert not isinstance(known, RedressError)
    assert known.outcome is Outcome.ACT
    assert known.evidence_ref is not None
    assert known.matches[0].startswith("known/")
    assert isinstance(corrupt, RedressError)
    assert corrupt.code != "internal_error"
    assert not isinstance(too_large, RedressError)
    assert too_large.outcome is Outcome.REVIEW
    assert not isinstance(banned, RedressError)
    assert ActionKind.BAN_SENDER in banned.actions
    assert banned.evidence_ref is not None
    assert not isinstance(other, RedressError)
    assert other.outcome is Outcome.IGNORE
    assert evidence_count(sink) == 2

    # Delivered again (a restart before the connector committed): answered from the
    # first scans, nothing captured twice, and the same as one item at a time.
    again = await sink.receive_many(batch)
    assert [type(a) for a in again] == [type(a) for a in answers]
    assert again[1] == known
    assert again[4] == banned
    assert await sink.receive(media(KNOWN, 11)) == known
    assert evidence_count(sink) == 2


async def test_a_batch_bigger_than_the_workers_decides_every_item_like_one_at_a_time(
    sink: PipelineSink,
) -> None:
    images = [KNOWN if n % 5 == 0 else jpeg(128, 128, 100 + n) for n in range(20)]
    answers = await sink.receive_many([media(data, 100 + n) for n, data in enumerate(images)])
    outcomes = [a.outcome for a in answers if not isinstance(a, RedressError)]
    assert outcomes == [Outcome.ACT if n % 5 == 0 else Outcome.IGNORE for n in range(20)]
    assert evidence_count(sink) == 4
