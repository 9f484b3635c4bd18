"""Outbound takedown notices (Project Arachnid's model): from a match to a hosting
platform's abuse contact, re-sent every ``resend_hours`` until the content is confirmed
gone, with each platform's response time tracked.

A notice carries the content's location, the legal basis and an evidence reference
(the evidence item ID and the media's SHA-256) — never the imagery itself.
"""

from __future__ import annotations

import datetime as dt
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from redress.reports.errors import BadReportInputError, MailError, NoticeNotFoundError
from redress.reports.interfaces import Clock, ContentProbe, Mail, Mailer
from redress.reports.locations import is_location, message_link
from redress.reports.models import OutboundNotice
from redress.reports.service import EMAIL, new_reference
from redress.reports.store import NoticeStore
from redress.review.service import facts_of

OPEN = "open"
GONE = "gone"


@dataclass(frozen=True, slots=True)
class OutboundConfig:
    """The settings outbound notices need."""

    resend_hours: float = 24.0
    legal_basis: str = "Non-consensual intimate imagery"
    sender_name: str = "Redress"

    @classmethod
    def from_settings(cls, settings: Any) -> OutboundConfig:
        """Build from the app's settings."""
        return cls(
            resend_hours=settings.notice_resend_hours,
            legal_basis=settings.notice_outbound_legal_basis,
            sender_name=settings.smtp_from,
        )


@dataclass(frozen=True, slots=True)
class OutboundRead:
    """An outbound notice as its sender tracks it."""

    reference: str
    platform: str
    abuse_contact: str | None
    location: str
    status: str
    sends: int
    first_sent_at: dt.datetime | None
    next_send_at: dt.datetime | None
    gone_at: dt.datetime | None
    last_error: str | None


@dataclass(frozen=True, slots=True)
class PlatformResponse:
    """How fast one platform removed content after the first notice."""

    platform: str
    notices: int
    removed: int
    median_hours: float | None
    max_hours: float | None


class HttpContentProbe:
    """Checks a public URL: 404 or 410 means the content is gone (any other answer, or
    no answer, means it may still be up)."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client

    def still_up(self, location: str) -> bool:
        """Whether ``location`` still answers with content."""
        if not location.startswith(("http://", "https://")):
            return True
        try:
            response = self.client.get(location, follow_redirects=True)
        except httpx.HTTPError:
            return True
        return response.status_code not in (404, 410)


class OutboundService:
    """Creates, sends, re-sends and closes outbound notices over one session."""

    def __init__(
        self,
        store: NoticeStore,
        config: OutboundConfig,
        *,
        clock: Clock,
        mailer: Mailer | None = None,
        probe: ContentProbe | None = None,
    ) -> None:
        self.store = store
        self.config = config
        self.clock = clock
        self.mailer = mailer
        self.probe = probe

    def create(
        self,
        scan_item_id: str,
        *,
        platform: str,
        abuse_contact: str | None,
        actor: str,
        legal_basis: str | None = None,
        location: str | None = None,
    ) -> OutboundRead:
        """A takedown notice for a matched item (sent by the next :meth:`send_due`)."""
        scan = self.store.scan_item(scan_item_id)
        if scan is None:
            raise NoticeNotFoundError(f"no scanned item {scan_item_id!r}")
        if abuse_contact is not None and not EMAIL.match(abuse_contact):
            raise BadReportInputError(f"{abuse_contact!r} is not an e-mail address")
        if not platform.strip():
            raise BadReportInputError("name the hosting platform")
        facts = facts_of(scan)
        where = location or facts.message_link
        where = where or message_link(facts.platform, facts.chat, facts.message_id)
        where = where or str((scan.request or {}).get("context", {}).get("location") or "")
        if not where or not is_location(where):
            raise BadReportInputError(
                "the item has no location a platform can act on; give one with --location"
            )
        evidence = [f"evidence item {scan.evidence_item_id}"] if scan.evidence_item_id else []
        if facts.sha256:
            evidence.append(f"SHA-256 {facts.sha256}")
        if facts.pdq:
            evidence.append(f"PDQ {facts.pdq}")
        evidence.append(f"Redress item {scan.id}")
        now = self.clock()
        row = OutboundNotice(
            reference=new_reference("T"),
            scan_item_id=scan.id,
            platform=platform.strip()[:100],
            abuse_contact=abuse_contact,
            location=where,
            legal_basis=(legal_basis or self.config.legal_basis).strip(),
            evidence_reference="; ".join(evidence),
            created_at=now,
            created_by=actor[:254],
            status=OPEN,
            sends=0,
            details={},
        )
        self.store.add(row)
        self.store.audit(
            now,
            actor,
            "notice:outbound:created",
            f"outbound:{row.reference}",
            {"platform": platform},
        )
        return read(row)

    def text(self, reference: str) -> Mail:
        """The notice as it is sent (and exported): plain text, no imagery."""
        row = self._row(reference)
        return compose(row, self.config, self.clock())

    def export(self, reference: str, folder: Path) -> Path:
        """Write the notice as an RFC 5322 text file for sending by other means."""
        mail = self.text(reference)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"takedown-{reference}.eml"
        headers = "".join(f"{k}: {v}\n" for k, v in mail.headers.items())
        path.write_text(
            f"To: {mail.to}\nSubject: {mail.subject}\n{headers}\n{mail.body}", encoding="utf-8"
        )
        return path

    def send_due(self) -> tuple[list[str], list[str]]:
        """Send first notices and re-send open ones every ``resend_hours``; close those
        whose content is gone. Returns ``(sent, failed)`` references."""
        now = self.clock()
        sent: list[str] = []
        failed: list[str] = []
        for row in self.store.outbound_due(now):
            if row.sends and self.probe is not None and not self.probe.still_up(row.location):
                self._gone(row, now, "probe")
                continue
            if self.mailer is None:
                continue
            try:
                self.mailer.send(compose(row, self.config, now))
            except MailError as exc:
                row.last_error = exc.message[:2000]
                failed.append(row.reference)
                continue
            row.sends += 1
            row.first_sent_at = row.first_sent_at or now
            row.last_sent_at = now
            row.next_send_at = now + dt.timedelta(hours=self.config.resend_hours)
            row.last_error = None
            sent.append(row.reference)
            self.store.audit(
                now,
                "redress",
                "notice:outbound:sent",
                f"outbound:{row.reference}",
                {"platform": row.platform, "send": row.sends},
            )
        self.store.session.flush()
        return sent, failed

    def confirm_gone(self, reference: str, actor: str) -> OutboundRead:
        """Record that the content is gone: no more re-sends."""
        row = self._row(reference)
        if row.status == OPEN:
            self._gone(row, self.clock(), actor)
        return read(row)

    def _gone(self, row: OutboundNotice, now: dt.datetime, by: str) -> None:
        row.status = GONE
        row.gone_at = now
        row.next_send_at = None
        self.store.audit(
            now,
            by,
            "notice:outbound:gone",
            f"outbound:{row.reference}",
            {
                "platform": row.platform,
                "sends": row.sends,
                "hours": (now - row.first_sent_at).total_seconds() / 3600
                if row.first_sent_at
                else None,
            },
        )
        self.store.session.flush()

    def _row(self, reference: str) -> OutboundNotice:
        row = self.store.outbound(reference)
        if row is None:
            raise NoticeNotFoundError(f"no outbound notice {reference!r}")
        return row

    def notices(self) -> list[OutboundRead]:
        """Every outbound notice."""
        return [read(r) for r in self.store.outbound_all()]

    def response_times(self) -> list[PlatformResponse]:
        """Per platform: notices, removals, median and longest hours from first send to gone."""
        by_platform: dict[str, list[OutboundNotice]] = {}
        for row in self.store.outbound_all():
            by_platform.setdefault(row.platform, []).append(row)
        out = []
        for platform, rows in sorted(by_platform.items()):
            hours = [
                (r.gone_at - r.first_sent_at).total_seconds() / 3600
                for r in rows
                if r.gone_at is not None and r.first_sent_at is not None
            ]
            out.append(
                PlatformResponse(
                    platform=platform,
                    notices=len(rows),
                    removed=sum(1 for r in rows if r.status == GONE),
                    median_hours=statistics.median(hours) if hours else None,
                    max_hours=max(hours) if hours else None,
                )
            )
        return out


def read(row: OutboundNotice) -> OutboundRead:
    """The public view of an outbound notice."""
    return OutboundRead(
        reference=row.reference,
        platform=row.platform,
        abuse_contact=row.abuse_contact,
        location=row.location,
        status=row.status,
        sends=row.sends,
        first_sent_at=row.first_sent_at,
        next_send_at=row.next_send_at,
        gone_at=row.gone_at,
        last_error=row.last_error,
    )


def compose(row: OutboundNotice, config: OutboundConfig, now: dt.datetime) -> Mail:
    """The takedown notice e-mail."""
    repeat = f" (reminder {row.sends})" if row.sends else ""
    body = (
        f"To the abuse team of {row.platform},\n\n"
        "We ask you to remove the following content, which is an intimate image or video "
        "of a person published without her consent.\n\n"
        f"Location: {row.location}\n"
        f"Legal basis: {row.legal_basis}\n"
        f"Evidence reference: {row.evidence_reference}\n"
        f"Our reference: {row.reference}\n"
        f"First notified: {(row.first_sent_at or now):%Y-%m-%d %H:%M} UTC\n\n"
        "No imagery is attached. The evidence is preserved and can be made available to "
        "law enforcement. We will repeat this notice every "
        f"{config.resend_hours:g} hours until the content is gone.\n"
    )
    return Mail(
        row.abuse_contact or "",
        f"Takedown request {row.reference}{repeat}: non-consensual intimate imagery",
        body,
        {"X-Redress-Takedown": row.reference},
    )
