"""Statements of reasons: one per removal or restriction, exported in the DSA Transparency
Database's schema without personal data, and sent to the affected user on Telegram."""

from __future__ import annotations

import asyncio
import csv
import io
import json

import httpx
import jsonschema
from reports_support import IMAGE, World, flip, take_it_down

from redress.connectors.telegram.client import BotApiClient
from redress.connectors.telegram.fakeapi import FakeBotApi
from redress.connectors.telegram.statements import TelegramStatementSender
from redress.reports.statements import DSA_FIELDS, deliver_statements, dsa_schema, to_csv
from redress.review.interfaces import DecisionRequest, Outcome
from redress.signals.types import SignalKind


def confirm_notice_cluster(w: World, actions: tuple[str, ...] = ("delete_message",)) -> None:
    viewer = w.moderator()
    with w.pipeline.sessions.begin() as session:
        review = w.review(session)
        row = next(r for r in review.queue(viewer) if r.source == "notice")
        item = review.lease(viewer, row.item_id)
        review.decide(
            viewer,
            DecisionRequest(
                cluster_id=item.cluster_id,
                item_id=item.id,
                version=item.version,
                outcome=Outcome.CONFIRMED,
                reason_code="ncii_new",
                actions=actions,
            ),
        )


def test_every_removal_and_restriction_gets_a_statement_that_validates(w: World) -> None:
    w.scan(IMAGE, "-1001001001", "1", sender="4242")
    w.scan(flip(IMAGE, 10), "-1001002002", "5", sender="4343")
    w.submit(take_it_down("https://t.me/c/1001001/1", email="victim@example.org"))
    confirm_notice_cluster(w, ("delete_message", "restrict_user"))
    with w.pipeline.sessions.begin() as session:
        assert w.statements(session).sync() == 4  # two copies, two actions each
        assert w.statements(session).sync() == 0  # once per item and action
        records = w.statements(session).export()
    schema = dsa_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    for record in records:
        jsonschema.validate(record, schema)
    assert {r.get("decision_visibility") for r in records} == {
        "DECISION_VISIBILITY_CONTENT_REMOVED",
        None,
    }
    assert {r.get("decision_account") for r in records} == {"DECISION_ACCOUNT_SUSPENDED", None}
    assert {r["source_type"] for r in records} == {"SOURCE_ARTICLE_16"}
    assert {r["category"] for r in records} == {"STATEMENT_CATEGORY_NON_CONSENT"}
    assert {r["automated_decision"] for r in records} == {"No"}  # a moderator decided
    # The located copy was found by the notice, the near copy by hash matching.
    by_url = {r["url"]: r["automated_detection"] for r in records}
    assert by_url == {"https://t.me/c/1001001/1": "No", "https://t.me/c/1002002/5": "Yes"}
    assert "TAKE IT DOWN" in records[0]["illegal_content_legal_ground"]
    # No personal data: not the sender, not the affected users.
    text = json.dumps(records)
    for personal in ("victim@example.org", "Jane Doe", "4242", "4343"):
        assert personal not in text


def test_the_export_refuses_what_the_schema_refuses() -> None:
    schema = dsa_schema()
    good = {
        "decision_visibility": "DECISION_VISIBILITY_CONTENT_REMOVED",
        "decision_ground": "DECISION_GROUND_ILLEGAL_CONTENT",
        "illegal_content_legal_ground": "law",
        "illegal_content_explanation": "why",
        "content_type": ["CONTENT_TYPE_IMAGE"],
        "category": "STATEMENT_CATEGORY_NON_CONSENT",
        "application_date": "2026-06-01-09",
        "decision_facts": "facts",
        "source_type": "SOURCE_VOLUNTARY",
        "automated_detection": "Yes",
        "automated_decision": "No",
        "url": "https://t.me/c/1/2",
        "puid": "p1",
    }
    jsonschema.validate(good, schema)
    for broken in (
        {**good, "category": "NCII"},
        {**good, "application_date": "2026-06-01T09:00"},
        {k: v for k, v in good.items() if k != "illegal_content_explanation"},
        {k: v for k, v in good.items() if k != "decision_visibility"},
        {**good, "affected_user": "4242"},
    ):
        validator = jsonschema.Draft202012Validator(schema)
        assert list(validator.iter_errors(broken)), broken


def test_csv_export_has_one_column_per_field(w: World) -> None:
    w.scan(IMAGE, "-1001001001", "1")
    w.submit(take_it_down("https://t.me/c/1001001/1"))
    confirm_notice_cluster(w)
    with w.pipeline.sessions.begin() as session:
        w.statements(session).sync()
        records = w.statements(session).export()
    rows = list(csv.DictReader(io.StringIO(to_csv(records))))
    assert tuple(rows[0]) == DSA_FIELDS
    assert rows[0]["content_type"] == "CONTENT_TYPE_IMAGE"
    assert rows[0]["puid"] == records[0]["puid"]


def test_statements_reach_the_affected_user_through_the_telegram_bot(w: World) -> None:
    w.scan(IMAGE, "-1001001001", "1", sender="4242")
    w.scan(IMAGE, "-1001002002", "2", sender="4343")
    w.submit(take_it_down("https://t.me/c/1001001/1"))
    confirm_notice_cluster(w)
    with w.pipeline.sessions.begin() as session:
        assert w.statements(session).sync() == 2
    fake = FakeBotApi()
    fake.started.add(4242)  # 4343 never opened a chat with the bot

    async def run() -> int:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=fake.app)) as http:
            client = BotApiClient(http, fake.token)
            try:
                return await deliver_statements(
                    w.pipeline.sessions, w.statements, TelegramStatementSender(client)
                )
            finally:
                client.close()

    assert asyncio.run(run()) == 1
    assert [m["chat"]["id"] for m in fake.sent] == [4242]
    assert "Your message was removed." in fake.sent[0]["text"]
    with w.pipeline.sessions.begin() as session:
        rows = w.statements(session).store.statements()
        assert sorted(r.delivery for r in rows) == ["failed", "sent"]
        assert asyncio.run(run()) == 0  # nothing left to send


def test_an_automatic_removal_gets_an_automated_statement(w: World) -> None:
    from redress.store.interfaces import BankPurpose, EntryIn
    from redress.store.service import BankService

    with w.pipeline.sessions.begin() as session:
        banks = BankService(session)
        banks.create("known", BankPurpose.CONFIRMED_VIOLATIONS)
        banks.add("known", [EntryIn(kind=SignalKind.PDQ, value=IMAGE, quality=100)])
    w.pipeline.service.matcher.follower.poll()  # type: ignore[attr-defined]
    w.scan(flip(IMAGE, 4), "-1001001001", "8", sender="555")
    with w.pipeline.sessions.begin() as session:
        assert w.statements(session).sync() == 2  # delete_message and block_reupload
        records = w.statements(session).export()
    for record in records:
        jsonschema.validate(record, dsa_schema())
    assert {r["source_type"] for r in records} == {"SOURCE_VOLUNTARY"}
    assert {r["automated_detection"] for r in records} == {"Yes"}
    assert {r["automated_decision"] for r in records} == {"Yes"}
    assert {r["decision_visibility"] for r in records} == {
        "DECISION_VISIBILITY_CONTENT_REMOVED",
        "DECISION_VISIBILITY_CONTENT_DISABLED",
    }
    assert "PDQ distance 4" in records[0]["decision_facts"]
