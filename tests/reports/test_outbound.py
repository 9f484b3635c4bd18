"""Outbound takedown notices: built from a match without imagery, sent by SMTP, re-sent
every 24 hours until the content is gone, exported, and timed per platform."""

from __future__ import annotations

import httpx
import pytest
from reports_support import IMAGE, Inbox, World

from redress.reports.errors import BadReportInputError, NoticeNotFoundError
from redress.reports.outbound import HttpContentProbe, OutboundConfig, OutboundService
from redress.reports.store import NoticeStore


class Platform:
    """A hosting platform's public page for the content: up until it removes it."""

    def __init__(self) -> None:
        self.removed: set[str] = set()
        self.requests: list[str] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(str(request.url))
        if request.url.path in self.removed:
            return httpx.Response(404)
        return httpx.Response(200, text="<html>post</html>")


def outbound(w: World, session, probe=None) -> OutboundService:  # type: ignore[no-untyped-def]
    return OutboundService(
        NoticeStore(session),
        OutboundConfig.from_settings(w.settings),
        clock=w.clock,
        mailer=w.mailer,
        probe=probe,
    )


def test_renotice_every_24_hours_stops_when_the_content_is_gone(w: World, inbox: Inbox) -> None:
    item = w.scan(IMAGE, "-1001001001", "1")
    platform = Platform()
    probe = HttpContentProbe(httpx.Client(transport=httpx.MockTransport(platform.handler)))
    with w.pipeline.sessions.begin() as session:
        created = outbound(w, session).create(
            item, platform="Telegram", abuse_contact="abuse@telegram.example", actor="ngo"
        )
    assert created.location == "https://t.me/c/1001001/1"
    sends = []
    for hour in range(0, 24 * 3 + 1):
        with w.pipeline.sessions.begin() as session:
            sent, failed = outbound(w, session, probe).send_due()
        assert failed == []
        if sent:
            sends.append(hour)
        if hour == 50:
            platform.removed.add("/c/1001001/1")
        w.advance(hours=1)
    # Sent at once, again at 24 h and 48 h; at 72 h the probe finds the content gone.
    assert sends == [0, 24, 48]
    mails = inbox.to("abuse@telegram.example")
    assert len(mails) == 3
    assert "reminder 2" in mails[2]["Subject"]
    body = mails[0].get_payload()
    assert "Location: https://t.me/c/1001001/1" in body
    assert "Legal basis:" in body
    assert f"Redress item {item}" in body
    assert all(m.get_content_maintype() == "text" for m in mails)  # never imagery
    with w.pipeline.sessions.begin() as session:
        (read,) = outbound(w, session).notices()
        times = outbound(w, session).response_times()
    assert read.status == "gone"
    assert read.sends == 3
    assert times[0].platform == "Telegram"
    assert times[0].removed == 1
    assert times[0].median_hours == 72


def test_confirming_removal_by_hand_stops_resends(w: World, inbox: Inbox) -> None:
    item = w.scan(IMAGE, "-1001001001", "1")
    with w.pipeline.sessions.begin() as session:
        reference = (
            outbound(w, session)
            .create(item, platform="X", abuse_contact="abuse@x.example", actor="ngo")
            .reference
        )
        outbound(w, session).send_due()
    w.advance(hours=5)
    with w.pipeline.sessions.begin() as session:
        outbound(w, session).confirm_gone(reference, "ngo")
    w.advance(hours=30)
    with w.pipeline.sessions.begin() as session:
        assert outbound(w, session).send_due() == ([], [])
        (times,) = outbound(w, session).response_times()
    assert times.median_hours == 5
    assert len(inbox.to("abuse@x.example")) == 1


def test_export_writes_the_notice_without_sending(w: World, inbox: Inbox, tmp_path) -> None:  # type: ignore[no-untyped-def]
    item = w.scan(IMAGE, "-1001001001", "1")
    with w.pipeline.sessions.begin() as session:
        service = outbound(w, session)
        reference = service.create(item, platform="Host", abuse_contact=None, actor="ngo").reference
        path = service.export(reference, tmp_path)
        assert service.send_due() == ([], [])  # no contact: export only
    text = path.read_text()
    assert f"Takedown request {reference}" in text
    assert "https://t.me/c/1001001/1" in text
    assert inbox.messages == []


def test_bad_outbound_requests_are_refused(w: World) -> None:
    item = w.scan(IMAGE, "-1001001001", "1")
    with w.pipeline.sessions.begin() as session:
        service = outbound(w, session)
        with pytest.raises(NoticeNotFoundError):
            service.create("nope", platform="X", abuse_contact=None, actor="ngo")
        with pytest.raises(BadReportInputError):
            service.create(item, platform="X", abuse_contact="not-mail", actor="ngo")
        with pytest.raises(NoticeNotFoundError):
            service.confirm_gone("T-NOPE", "ngo")
