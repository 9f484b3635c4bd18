"""Inbound notices: validation names each missing field; a valid notice puts the content
and every known copy in review with its deadline; the clock reminds, escalates, records
breaches and answers the sender (over a real local SMTP server)."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from reports_support import IMAGE, OTHER, Inbox, World, dsa, flip, take_it_down, world

from redress.config import Settings
from redress.reports.errors import NoticeIncompleteError
from redress.reports.interfaces import NoticeIn, NoticeOutcome, Relation, Sender
from redress.reports.mail import SmtpMailer
from redress.reports.models import Notice
from redress.reports.service import validate
from redress.review.interfaces import DecisionRequest, Outcome

TAKE_IT_DOWN_FIELDS = {
    "signature": "",
    "locations": (),
    "non_consent": False,
    "sender_email": "",
}
DSA_FIELDS = {
    "explanation": "",
    "locations": (),
    "sender_name": "",
    "sender_email": "",
    "good_faith": False,
}


@pytest.mark.parametrize("missing", sorted(TAKE_IT_DOWN_FIELDS))
def test_take_it_down_notice_missing_a_field_is_rejected_naming_it(missing: str) -> None:
    notice = dataclasses.replace(
        take_it_down("https://t.me/c/1001/1"), **{missing: TAKE_IT_DOWN_FIELDS[missing]}
    )
    _, problems = validate(notice)
    assert list(problems) == [missing]


@pytest.mark.parametrize("missing", sorted(DSA_FIELDS))
def test_dsa_notice_missing_a_field_is_rejected_naming_it(missing: str) -> None:
    notice = dataclasses.replace(dsa("https://t.me/c/1001/1"), **{missing: DSA_FIELDS[missing]})
    _, problems = validate(notice)
    assert list(problems) == [missing]


def test_an_empty_notice_names_every_field() -> None:
    _, problems = validate(NoticeIn(regime="take_it_down"))
    assert set(problems) == set(TAKE_IT_DOWN_FIELDS)
    _, problems = validate(NoticeIn())
    assert "regime" in problems


def test_bad_values_are_named() -> None:
    notice = dataclasses.replace(
        take_it_down("not a link"), sender_email="nobody", jurisdiction="U S A"
    )
    _, problems = validate(notice)
    assert set(problems) == {"locations", "sender_email", "jurisdiction"}


def test_an_incomplete_notice_stores_nothing(w: World) -> None:
    with pytest.raises(NoticeIncompleteError) as raised:
        w.submit(dataclasses.replace(take_it_down("https://t.me/c/1001/1"), signature=""))
    assert raised.value.fields.keys() == {"signature"}
    assert "signature" in raised.value.message
    with w.pipeline.sessions() as session:
        assert session.query(Notice).count() == 0


def test_a_valid_notice_puts_the_content_and_all_known_copies_in_review(w: World) -> None:
    located = w.scan(IMAGE, "-1001001001", "1")
    identical = w.scan(IMAGE, "-1001002002", "7")  # same bytes, another group
    near = w.scan(flip(IMAGE, 12), "-1001003003", "9")  # a re-encode: 12 bits away
    far = w.scan(OTHER, "-1001004004", "3")
    reference = w.submit(take_it_down("https://t.me/c/1001001/1"))
    with w.pipeline.sessions.begin() as session:
        read = w.notices(session).read(reference)
        relations = {(i.relation, i.location) for i in read.items}
        assert {i.relation for i in read.items} == {
            Relation.LOCATED,
            Relation.IDENTICAL,
            Relation.NEAR,
        }
        assert len(read.items) == 3
        assert all(i.review_item_id is not None for i in read.items)
        assert read.due_at == w.now + dt.timedelta(hours=48)
        assert {location for _, location in relations} == {"https://t.me/c/1001001/1"}
    viewer = w.moderator()
    with w.pipeline.sessions.begin() as session:
        queue = w.review(session).queue(viewer)
    # The three copies are one cluster (decided once), due at the notice's deadline.
    rows = [r for r in queue if r.source == "notice"]
    assert len(rows) == 1
    assert rows[0].copies == 3
    assert rows[0].deadline == read.due_at
    # The far image and the original scans are not part of the notice.
    scan_ids = {i.scan_item_id for i in read.items}
    assert not scan_ids & {located, identical, near, far}


def test_an_unknown_location_is_still_reviewed(w: World) -> None:
    reference = w.submit(dsa("https://example.org/gallery/123"))
    with w.pipeline.sessions.begin() as session:
        read = w.notices(session).read(reference)
    assert [i.relation for i in read.items] == [Relation.UNLOCATED]
    assert read.items[0].review_item_id is not None


def test_trusted_flaggers_jump_the_queue(w: World) -> None:
    w.scan(IMAGE, "-1001001001", "1")
    w.scan(OTHER, "-1001002002", "2")
    first = w.submit(take_it_down("https://t.me/c/1001001/1"))
    w.advance(minutes=5)
    trusted = w.submit(dsa("https://t.me/c/1002002/2"), Sender("api", trusted=True))
    viewer = w.moderator()
    with w.pipeline.sessions.begin() as session:
        queue = w.review(session).queue(viewer)
        notices = w.notices(session)
        due_first = notices.read(first).due_at
        due_trusted = notices.read(trusted).due_at
    assert due_trusted < due_first
    assert [r.deadline for r in queue[:2]] == [due_trusted, due_first]


def test_deadline_is_configurable_per_jurisdiction(w: World, settings: Settings) -> None:
    custom = settings.model_copy(update={"notice_deadline_hours": {"US": 48, "DE": 24}})
    with world(custom, w.mailer) as other:
        reference = other.submit(
            dataclasses.replace(dsa("https://example.org/x"), jurisdiction="de")
        )
        with other.pipeline.sessions.begin() as session:
            read = other.notices(session).read(reference)
    assert read.jurisdiction == "DE"
    assert (read.due_at - read.received_at).total_seconds() == 24 * 3600


def test_clock_reminds_escalates_and_records_a_breach(w: World, inbox: Inbox) -> None:
    w.scan(IMAGE, "-1001001001", "1")
    reference = w.submit(take_it_down("https://t.me/c/1001001/1"))
    with w.pipeline.sessions.begin() as session:
        done = w.notices(session).run_clock()
    assert done["reminded"] == []
    assert done["breached"] == []
    assert [m["Subject"] for m in inbox.to("sender@example.org")] == [
        f"Notice {reference} received"
    ]
    w.advance(hours=37)  # 11 h left
    with w.pipeline.sessions.begin() as session:
        done = w.notices(session).run_clock()
    assert done["reminded"] == [reference]
    w.advance(hours=8)  # 3 h left
    with w.pipeline.sessions.begin() as session:
        done = w.notices(session).run_clock()
    assert done["escalated"] == [reference]
    w.advance(hours=3, seconds=1)
    with w.pipeline.sessions.begin() as session:
        done = w.notices(session).run_clock()
        assert done["breached"] == [reference]
        assert w.notices(session).read(reference).breached
    with w.pipeline.sessions.begin() as session:
        assert w.notices(session).run_clock()["breached"] == []  # recorded once
    subjects = [m["Subject"] for m in inbox.to("oncall@example.org")]
    assert len(subjects) == 3
    assert "left to act" in subjects[0]
    assert subjects[1].startswith("[Redress] ESCALATION")
    assert subjects[2].startswith("[Redress] BREACH")
    for message in inbox.messages:
        assert message.get_content_maintype() == "text"  # never imagery


def test_decided_notice_closes_and_the_sender_gets_the_outcome(w: World, inbox: Inbox) -> None:
    w.scan(IMAGE, "-1001001001", "1")
    w.scan(IMAGE, "-1001002002", "7")
    reference = w.submit(take_it_down("https://t.me/c/1001001/1"))
    viewer = w.moderator()
    w.advance(hours=3)
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
                actions=("delete_message",),
            ),
        )
    with w.pipeline.sessions.begin() as session:
        done = w.notices(session).run_clock()
        read = w.notices(session).read(reference)
    assert done["closed"] == [reference]
    assert read.outcome is NoticeOutcome.REMOVED
    assert not read.breached
    assert read.closed_at is not None
    assert (read.closed_at - read.received_at).total_seconds() == 3 * 3600
    subjects = [m["Subject"] for m in inbox.to("sender@example.org")]
    assert subjects == [f"Notice {reference} received", f"Notice {reference}: decided"]
    assert "removed" in inbox.to("sender@example.org")[1].get_payload()


def test_two_notices_naming_one_message_share_its_review_item(w: World) -> None:
    w.scan(IMAGE, "-1001001001", "1")
    first = w.submit(take_it_down("https://t.me/c/1001001/1"))
    second = w.submit(dsa("https://t.me/c/1001001/1", "telegram:-1001001001:1"))
    with w.pipeline.sessions.begin() as session:
        one = w.notices(session).read(first)
        two = w.notices(session).read(second)
    assert [i.scan_item_id for i in one.items] == [i.scan_item_id for i in two.items]
    assert one.items[0].review_item_id == two.items[0].review_item_id


def test_an_acknowledgement_the_smtp_server_refused_is_sent_by_a_later_tick(
    settings: Settings, inbox: Inbox, mailer: SmtpMailer
) -> None:
    from reports_support import free_port

    down = SmtpMailer("127.0.0.1", free_port(), timeout=2.0)
    with world(settings, down) as w:
        reference = w.submit(take_it_down("https://example.org/p/1"))
        with w.pipeline.sessions.begin() as session:
            assert w.notices(session).run_clock()["closed"] == []
            row = session.query(Notice).one()
            assert row.acknowledged_at is None  # refused: not marked sent
        w.mailer = mailer  # the server is back
        with w.pipeline.sessions.begin() as session:
            w.notices(session).run_clock()
    assert [m["Subject"] for m in inbox.to("sender@example.org")] == [
        f"Notice {reference} received"
    ]
