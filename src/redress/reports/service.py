"""Inbound notices and their clock: validation, locating the content and its copies,
review items, reminders, escalation, breaches, and answers to the sender.

Every method works in the caller's session and only flushes; the edge (the web
request, the CLI command, the worker's tick) commits. E-mails go out after the
state they report is flushed and are marked sent only once the SMTP server took
them, so a failed send is retried by the next tick (at least once, never lost).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from redress.index.interfaces import PdqIndex
from redress.pipeline.models import ScanItem
from redress.reports.errors import MailError, NoticeIncompleteError, NoticeNotFoundError
from redress.reports.interfaces import (
    Clock,
    Mail,
    Mailer,
    NoticeIn,
    NoticeItemRead,
    NoticeOutcome,
    NoticeRead,
    NoticeStatus,
    Regime,
    Relation,
    Sender,
)
from redress.reports.locations import is_location, message_link, parse_location
from redress.reports.models import Notice, NoticeItem
from redress.reports.store import NoticeStore
from redress.review.interfaces import Outcome
from redress.review.service import ReviewConfig, ReviewService
from redress.review.store import ReviewStore
from redress.store.models import Sighting

EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
#: Priority added to the review items of a trusted flagger's notice (DSA Art. 22).
TRUSTED_PRIORITY = 1000
#: Priority added to any notice's items (a person asked; a legal clock runs).
NOTICE_PRIORITY = 500
MAX_LOCATIONS = 100


def utcnow() -> dt.datetime:
    """The current UTC time (the default clock)."""
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True, slots=True)
class NoticeConfig:
    """The settings notices need (from :class:`redress.config.Settings`)."""

    deadline_hours: Mapping[str, float] = field(default_factory=lambda: {"US": 48.0, "EU": 48.0})
    default_hours: float = 48.0
    trusted_hours: float = 24.0
    reminder_hours: float = 12.0
    escalation_hours: float = 4.0
    escalation_email: str | None = None
    near_distance: int = 31
    quality_min: int = 50
    review: ReviewConfig = field(default_factory=ReviewConfig)

    @classmethod
    def from_settings(cls, settings: Any) -> NoticeConfig:
        """Build from the app's settings."""
        return cls(
            deadline_hours={k.upper(): v for k, v in settings.notice_deadline_hours.items()},
            default_hours=settings.notice_default_hours,
            trusted_hours=settings.notice_trusted_hours,
            reminder_hours=settings.notice_reminder_hours,
            escalation_hours=settings.notice_escalation_hours,
            escalation_email=settings.notice_escalation_email,
            near_distance=settings.pdq_threshold,
            quality_min=settings.pdq_quality_min,
            review=ReviewConfig.from_settings(settings),
        )

    def hours_for(self, jurisdiction: str, trusted: bool) -> float:
        """Hours to act on a notice from this jurisdiction (a trusted flagger's sooner)."""
        hours = self.deadline_hours.get(jurisdiction.upper(), self.default_hours)
        return min(hours, self.trusted_hours) if trusted else hours


def default_jurisdiction(regime: Regime) -> str:
    """The jurisdiction a notice falls under when the sender did not say."""
    return "US" if regime is Regime.TAKE_IT_DOWN else "EU"


def validate(notice: NoticeIn) -> tuple[Regime, dict[str, str]]:
    """The regime and every field that is missing or wrong, by name.

    TAKE IT DOWN Act: a physical or electronic signature, identification of the
    content with enough information to locate it, a good-faith statement that it
    was shared without consent, and contact details. DSA Art. 16: an explanation of
    why the content is illegal, its exact electronic location, the sender's name and
    e-mail, and a good-faith statement that the notice is accurate and complete.
    """
    problems: dict[str, str] = {}
    regime_text = (notice.regime or "").strip().lower()
    try:
        regime = Regime(regime_text)
    except ValueError:
        problems["regime"] = "choose take_it_down (US TAKE IT DOWN Act) or dsa (EU DSA Art. 16)"
        regime = Regime.TAKE_IT_DOWN
    locations = [loc.strip() for loc in notice.locations if loc.strip()]
    if not locations:
        problems["locations"] = "give the exact location (URL or message link) of the content"
    elif len(locations) > MAX_LOCATIONS:
        problems["locations"] = f"at most {MAX_LOCATIONS} locations per notice"
    else:
        bad = [loc for loc in locations if not is_location(loc)]
        if bad:
            problems["locations"] = "not a URL or message link: " + ", ".join(bad[:5])
    email = (notice.sender_email or "").strip()
    if not email:
        problems["sender_email"] = "give an e-mail address so we can answer you"
    elif not EMAIL.match(email) or len(email) > 254:
        problems["sender_email"] = f"{email!r} is not an e-mail address"
    if regime is Regime.TAKE_IT_DOWN or "regime" in problems:
        if not (notice.signature or "").strip():
            problems["signature"] = (
                "sign the request (type your full name as an electronic signature)"
            )
        if not notice.non_consent:
            problems["non_consent"] = (
                "state in good faith that the depiction was published without consent"
            )
    if regime is Regime.DSA and "regime" not in problems:
        if not (notice.explanation or "").strip():
            problems["explanation"] = "explain why you consider the content illegal"
        if not (notice.sender_name or "").strip():
            problems["sender_name"] = "give your name"
        if not notice.good_faith:
            problems["good_faith"] = (
                "confirm in good faith that the information in the notice is accurate and complete"
            )
    if notice.jurisdiction and not re.fullmatch(r"[A-Za-z]{2,8}", notice.jurisdiction.strip()):
        problems["jurisdiction"] = "a country or region code such as US, EU or DE"
    return regime, problems


def new_reference(prefix: str) -> str:
    """A notice reference the sender can quote (random, not guessable)."""
    return f"{prefix}-{secrets.token_hex(5).upper()}"


class NoticeService:
    """Inbound notices over one database session."""

    def __init__(
        self,
        store: NoticeStore,
        config: NoticeConfig,
        *,
        clock: Clock = utcnow,
        mailer: Mailer | None = None,
        seen_index: PdqIndex | None = None,
    ) -> None:
        self.store = store
        self.config = config
        self.clock = clock
        self.mailer = mailer
        self.seen_index = seen_index

    def review(self) -> ReviewService:
        """The review service on the same session and clock."""
        return ReviewService(ReviewStore(self.store.session), self.config.review, clock=self.clock)

    # -- intake ----------------------------------------------------------------------------------

    def submit(self, notice: NoticeIn, sender: Sender) -> NoticeRead:
        """Validate a notice, start its clock and put the content and its copies in review.

        Raises :class:`NoticeIncompleteError` naming every missing field; nothing is
        stored for an incomplete notice.
        """
        regime, problems = validate(notice)
        if problems:
            raise NoticeIncompleteError(problems)
        now = self.clock()
        jurisdiction = (notice.jurisdiction or default_jurisdiction(regime)).strip().upper()
        hours = self.config.hours_for(jurisdiction, sender.trusted)
        locations = list(dict.fromkeys(loc.strip() for loc in notice.locations if loc.strip()))
        row = Notice(
            reference=new_reference("N"),
            regime=regime.value,
            jurisdiction=jurisdiction,
            channel=sender.channel,
            trusted=sender.trusted,
            api_key_id=sender.api_key_id,
            locations=locations,
            explanation=(notice.explanation or "").strip(),
            signature=(notice.signature or notice.sender_name or "").strip()[:300],
            good_faith=notice.good_faith or notice.non_consent,
            sender_name=(notice.sender_name or "").strip()[:300] or None,
            sender_email=(notice.sender_email or "").strip(),
            locale=notice.locale,
            received_at=now,
            due_at=now + dt.timedelta(hours=hours),
            status=NoticeStatus.OPEN.value,
        )
        self.store.add(row)
        for location in locations:
            self._locate(row, location)
        review = self.review()
        review.import_pending()
        self._set_deadlines(row)
        self.store.audit(
            now,
            f"notice:{sender.channel}",
            "notice:received",
            f"notice:{row.reference}",
            {
                "regime": row.regime,
                "jurisdiction": row.jurisdiction,
                "trusted": row.trusted,
                "items": len(self.store.notice_items(row.id)),
                "due_at": row.due_at.isoformat(),
            },
        )
        return self.read(row.reference)

    def _locate(self, notice: Notice, location: str) -> None:
        """Put the content at ``location`` and every copy Redress has seen in review."""
        parsed = parse_location(location)
        sightings: list[Sighting] = []
        if parsed is not None:
            sightings = self.store.sightings_at(parsed.platform, parsed.chats, parsed.message_id)
        if not sightings:
            self._notice_item(notice, location, Relation.UNLOCATED, None, None, parsed)
            return
        located = sorted({s.item_id for s in sightings})
        copies: dict[int, tuple[Relation, int | None]] = {}
        for item_id in located:
            item = self.store.seen_item(item_id)
            if item is not None and item.sha256 is not None:
                for other in self.store.seen_by_sha256(item.sha256):
                    copies.setdefault(other, (Relation.IDENTICAL, 0))
            if self.seen_index is not None:
                for bits in self.store.pdq_of(item_id, self.config.quality_min):
                    for hit in self.seen_index.search(bits, self.config.near_distance):
                        known = copies.get(hit.entry_id)
                        if known is None or (known[1] or 0) > hit.distance:
                            relation = Relation.IDENTICAL if hit.distance == 0 else Relation.NEAR
                            if known is not None and known[0] is Relation.IDENTICAL:
                                relation = Relation.IDENTICAL
                            copies[hit.entry_id] = (relation, hit.distance)
        for item_id in located:
            copies[item_id] = (Relation.LOCATED, 0)
        for sighting in self.store.sightings_of(sorted(copies)):
            relation, distance = copies[sighting.item_id]
            if relation is Relation.LOCATED and not (
                parsed is not None
                and sighting.chat in parsed.chats
                and sighting.message_id == parsed.message_id
            ):
                relation = Relation.IDENTICAL  # the same item, seen in another message
            self._notice_item(notice, location, relation, distance, sighting, None)

    def _notice_item(
        self,
        notice: Notice,
        location: str,
        relation: Relation,
        distance: int | None,
        sighting: Sighting | None,
        parsed: Any,
    ) -> None:
        """A pipeline item with outcome ``review`` for one sighting (or one unlocated
        location), shared by every notice that names the same sighting."""
        if sighting is not None:
            key = f"sighting:{sighting.id}"
            target = {
                "platform": sighting.platform,
                "chat_id": sighting.chat,
                "message_id": sighting.message_id,
                "user_id": sighting.sender,
            }
        else:
            key = "location:" + hashlib.sha256(location.encode()).hexdigest()
            target = (
                {
                    "platform": parsed.platform,
                    "chat_id": parsed.chats[0],
                    "message_id": parsed.message_id,
                }
                if parsed is not None
                else {}
            )
        scan = self.store.scan_item_by_key("notice", key)
        if scan is None:
            scan = self._scan_item(notice, key, location, relation, target, sighting)
        if any(i.scan_item_id == scan.id for i in self.store.notice_items(notice.id)):
            return
        self.store.add(
            NoticeItem(
                notice_id=notice.id,
                scan_item_id=scan.id,
                location=location,
                relation=relation.value,
                distance=distance,
            )
        )

    def _scan_item(
        self,
        notice: Notice,
        key: str,
        location: str,
        relation: Relation,
        target: dict[str, Any],
        sighting: Sighting | None,
    ) -> ScanItem:
        import uuid

        steps: list[dict[str, Any]] = []
        if sighting is not None:
            item = self.store.seen_item(sighting.item_id)
            pdq = self.store.pdq_of(sighting.item_id, 0)
            steps.append(
                {
                    "step": "hash",
                    "kind": item.kind if item else None,
                    "sha256": item.sha256.hex() if item and item.sha256 else None,
                    "pdq": pdq[0].hex() if pdq else None,
                }
            )
        law = "TAKE IT DOWN Act" if notice.regime == Regime.TAKE_IT_DOWN.value else "DSA Art. 16"
        trusted = " from a trusted flagger" if notice.trusted else ""
        steps.append(
            {
                "step": "policy",
                "outcome": "review",
                "reasons": [
                    f"{law} notice {notice.reference}{trusted}: {relation.value} ({location}); "
                    f"act by {notice.due_at:%Y-%m-%d %H:%M} UTC"
                ],
            }
        )
        link = message_link(target.get("platform"), target.get("chat_id"), target.get("message_id"))
        request = {
            "query": {},
            "context": {
                "source": "notice",
                "caption": None,
                "target": target,
                "notice": notice.reference,
                "location": link or location,
            },
        }
        scan = ScanItem(
            id=uuid.uuid4().hex,
            api_key_id=None,
            idempotency_scope="notice",
            idempotency_key=key,
            request_sha256=hashlib.sha256(key.encode()).hexdigest(),
            mode="notice",
            source="notice",
            status="done",
            attempts=0,
            created_at=notice.received_at,
            finished_at=notice.received_at,
            request=request,
            outcome="review",
            priority=NOTICE_PRIORITY + (TRUSTED_PRIORITY if notice.trusted else 0),
            result={"outcome": "review", "notice": notice.reference},
            steps=steps,
        )
        return self.store.add_scan_item_once(scan)

    def _set_deadlines(self, notice: Notice) -> None:
        """Bring the notice's review items' deadlines forward to its due time, and raise
        their priority (a trusted flagger's most), so the queue serves them first."""
        items = self.store.notice_items(notice.id)
        reviews = self.store.review_items([i.scan_item_id for i in items])
        bonus = NOTICE_PRIORITY + (TRUSTED_PRIORITY if notice.trusted else 0)
        for review in reviews.values():
            if review.deadline > notice.due_at:
                review.deadline = notice.due_at
            review.priority = max(review.priority, bonus)
        self.store.session.flush()

    # -- reading ---------------------------------------------------------------------------------

    def read(self, reference: str) -> NoticeRead:
        """A notice and its items."""
        row = self.store.notice(reference)
        if row is None:
            raise NoticeNotFoundError(f"no notice {reference!r}")
        items = self.store.notice_items(row.id)
        reviews = self.store.review_items([i.scan_item_id for i in items])
        now = self.clock()
        return NoticeRead(
            reference=row.reference,
            regime=Regime(row.regime),
            jurisdiction=row.jurisdiction,
            trusted=row.trusted,
            received_at=row.received_at,
            due_at=row.due_at,
            status=NoticeStatus(row.status),
            outcome=NoticeOutcome(row.outcome) if row.outcome else None,
            closed_at=row.closed_at,
            breached=row.breached_at is not None
            or (row.status == NoticeStatus.OPEN.value and now >= row.due_at),
            items=tuple(
                NoticeItemRead(
                    scan_item_id=i.scan_item_id,
                    location=i.location,
                    relation=Relation(i.relation),
                    distance=i.distance,
                    review_item_id=reviews[i.scan_item_id].id
                    if i.scan_item_id in reviews
                    else None,
                    decided=i.scan_item_id in reviews and reviews[i.scan_item_id].status != "open",
                )
                for i in items
            ),
        )

    def notices(self, status: NoticeStatus | None = None) -> list[NoticeRead]:
        """Notices, earliest due first."""
        return [
            self.read(n.reference)
            for n in self.store.notices(status=status.value if status else None)
        ]

    # -- the clock -------------------------------------------------------------------------------

    def run_clock(self) -> dict[str, list[str]]:
        """Close decided notices, remind, escalate and record breaches; answer senders.

        Returns the references touched, by what happened to them.
        """
        now = self.clock()
        self.review().import_pending()
        done: dict[str, list[str]] = {"closed": [], "reminded": [], "escalated": [], "breached": []}
        for notice in self.store.notices(status=NoticeStatus.OPEN.value, limit=10_000):
            self._set_deadlines(notice)
            closed_at = self._decided_at(notice)
            if closed_at is not None:
                self._close(notice, closed_at, now)
                done["closed"].append(notice.reference)
                late = notice.closed_at is not None and notice.closed_at > notice.due_at
                if late and notice.reference not in done["breached"]:
                    done["breached"].append(notice.reference)
                continue
            left = notice.due_at - now
            if left <= dt.timedelta(0):
                if notice.breached_at is None:
                    self._breach(notice, now)
                    done["breached"].append(notice.reference)
            elif left <= dt.timedelta(hours=self.config.escalation_hours):
                if notice.escalated_at is None:
                    self._escalate(notice, now)
                    done["escalated"].append(notice.reference)
            elif (
                left <= dt.timedelta(hours=self.config.reminder_hours)
                and notice.reminded_at is None
            ):
                notice.reminded_at = now
                self._staff_mail(notice, "reminder", now)
                done["reminded"].append(notice.reference)
        self.store.session.flush()
        self.answer_senders()
        return done

    def _decided_at(self, notice: Notice) -> dt.datetime | None:
        """When the last of the notice's items was decided (None while any is open)."""
        items = self.store.notice_items(notice.id)
        reviews = self.store.review_items([i.scan_item_id for i in items])
        if not items or len(reviews) < len(items):
            return None
        if any(r.status == "open" or r.decided_at is None for r in reviews.values()):
            return None
        return max(r.decided_at for r in reviews.values() if r.decided_at is not None)

    def _close(self, notice: Notice, decided_at: dt.datetime, now: dt.datetime) -> None:
        items = self.store.notice_items(notice.id)
        reviews = self.store.review_items([i.scan_item_id for i in items])
        outcomes = set()
        for review in reviews.values():
            cluster = self.store.cluster(review.cluster_id)
            if cluster is not None and cluster.outcome:
                outcomes.add(cluster.outcome)
        if Outcome.CONFIRMED.value in outcomes:
            outcome = NoticeOutcome.REMOVED
        elif all(i.relation == Relation.UNLOCATED.value for i in items) and not outcomes:
            outcome = NoticeOutcome.NOT_FOUND
        else:
            outcome = NoticeOutcome.REJECTED
        notice.status = NoticeStatus.CLOSED.value
        notice.outcome = outcome.value
        notice.closed_at = decided_at
        if decided_at > notice.due_at and notice.breached_at is None:
            self._breach(notice, now)
        self.store.audit(
            now,
            "redress",
            "notice:closed",
            f"notice:{notice.reference}",
            {
                "outcome": outcome.value,
                "seconds_to_act": (decided_at - notice.received_at).total_seconds(),
                "breached": notice.breached_at is not None,
            },
        )

    def _breach(self, notice: Notice, now: dt.datetime) -> None:
        notice.breached_at = now
        self.store.audit(
            now,
            "redress",
            "notice:deadline:breached",
            f"notice:{notice.reference}",
            {"due_at": notice.due_at.isoformat(), "jurisdiction": notice.jurisdiction},
        )
        self._staff_mail(notice, "breach", now)

    def _escalate(self, notice: Notice, now: dt.datetime) -> None:
        notice.escalated_at = now
        items = self.store.notice_items(notice.id)
        for review in self.store.review_items([i.scan_item_id for i in items]).values():
            review.priority = max(review.priority, NOTICE_PRIORITY + TRUSTED_PRIORITY * 2)
        self.store.audit(
            now,
            "redress",
            "notice:deadline:escalated",
            f"notice:{notice.reference}",
            {"due_at": notice.due_at.isoformat()},
        )
        self._staff_mail(notice, "escalation", now)

    def _staff_mail(self, notice: Notice, kind: str, now: dt.datetime) -> None:
        """Tell the escalation contact (no personal data of the sender, no imagery)."""
        if self.mailer is None or not self.config.escalation_email:
            return
        left = notice.due_at - now
        hours = left.total_seconds() / 3600
        subject = {
            "reminder": f"[Redress] Notice {notice.reference}: {hours:.1f} h left to act",
            "escalation": f"[Redress] ESCALATION: notice {notice.reference} due in {hours:.1f} h",
            "breach": f"[Redress] BREACH: notice {notice.reference} passed its deadline",
        }[kind]
        body = (
            f"Notice {notice.reference} ({notice.regime}, {notice.jurisdiction}) was received "
            f"{notice.received_at:%Y-%m-%d %H:%M} UTC and is due "
            f"{notice.due_at:%Y-%m-%d %H:%M} UTC.\n"
            f"Open the review console (/review) to decide its items.\n"
        )
        # A failed alert is not retried: the audit log holds the event and the console
        # shows the deadline.
        with contextlib.suppress(MailError):
            self.mailer.send(Mail(self.config.escalation_email, subject, body))

    # -- answers to the sender -------------------------------------------------------------------

    def answer_senders(self) -> int:
        """Send due acknowledgements and outcomes; returns how many failed (retried later)."""
        failed = 0
        if self.mailer is None:
            return 0
        for notice in self.store.notices_to_answer():
            if notice.acknowledged_at is None:
                failed += not self._mail(notice, acknowledgement(notice), "acknowledged_at")
            if notice.status == NoticeStatus.CLOSED.value and notice.outcome_sent_at is None:
                failed += not self._mail(notice, outcome_mail(notice), "outcome_sent_at")
        return failed

    def acknowledge(self, reference: str) -> bool:
        """Acknowledge one notice now (the edge calls it after the notice committed)."""
        notice = self.store.notice(reference)
        if notice is None or self.mailer is None or notice.acknowledged_at is not None:
            return False
        return self._mail(notice, acknowledgement(notice), "acknowledged_at")

    def _mail(self, notice: Notice, mail: Mail, column: str) -> bool:
        assert self.mailer is not None
        try:
            self.mailer.send(mail)
        except MailError:
            return False
        setattr(notice, column, self.clock())
        self.store.session.flush()
        return True


def acknowledgement(notice: Notice) -> Mail:
    """The receipt a sender gets: reference, deadline, what happens next."""
    law = (
        "the TAKE IT DOWN Act"
        if notice.regime == Regime.TAKE_IT_DOWN.value
        else "Article 16 of the EU Digital Services Act"
    )
    body = (
        f"We received your notice under {law} on {notice.received_at:%Y-%m-%d %H:%M} UTC.\n"
        f"Reference: {notice.reference}\n"
        f"Locations: {len(notice.locations)}\n"
        f"We will act by {notice.due_at:%Y-%m-%d %H:%M} UTC and will also look for identical "
        "and near-identical copies we have seen.\n"
        "You will get another message with the outcome.\n"
    )
    return Mail(
        notice.sender_email,
        f"Notice {notice.reference} received",
        body,
        {"X-Redress-Notice": notice.reference},
    )


def outcome_mail(notice: Notice) -> Mail:
    """The outcome a sender gets when every item was decided."""
    text = {
        NoticeOutcome.REMOVED.value: "The content was removed or access to it was restricted, "
        "together with the copies we found.",
        NoticeOutcome.REJECTED.value: "After review we did not find the content to break the law "
        "or our terms; it was not removed. You may appeal this decision by answering this e-mail.",
        NoticeOutcome.NOT_FOUND.value: "We could not find content at the locations you gave. "
        "If it is still online, please send a new notice with its exact link.",
    }[notice.outcome or NoticeOutcome.REJECTED.value]
    decided = f"{notice.closed_at:%Y-%m-%d %H:%M} UTC" if notice.closed_at else "now"
    return Mail(
        notice.sender_email,
        f"Notice {notice.reference}: decided",
        f"Your notice {notice.reference} was decided on {decided}.\n{text}\n",
        {"X-Redress-Notice": notice.reference},
    )
