"""Types the reports domain shares with the web layer, the CLI and connectors."""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

Clock = Callable[[], dt.datetime]


class Regime(enum.StrEnum):
    """The law a notice is sent under (each has its own required fields)."""

    TAKE_IT_DOWN = "take_it_down"  # US TAKE IT DOWN Act, removal within 48 hours
    DSA = "dsa"  # EU Digital Services Act, Art. 16 notice


class NoticeStatus(enum.StrEnum):
    """Open until every item it put in review is decided."""

    OPEN = "open"
    CLOSED = "closed"


class NoticeOutcome(enum.StrEnum):
    """What the sender is told at the end."""

    REMOVED = "removed"  # at least one item was removed or restricted
    REJECTED = "rejected"  # reviewed: not a violation
    NOT_FOUND = "not_found"  # nothing at the given locations could be acted on


class Relation(enum.StrEnum):
    """How a notice item relates to the content the notice named."""

    LOCATED = "located"  # seen at a location the notice gave
    IDENTICAL = "identical"  # the same bytes (SHA-256) seen elsewhere
    NEAR = "near"  # a PDQ near-duplicate seen elsewhere
    UNLOCATED = "unlocated"  # a location Redress has not seen: reviewed from the notice alone


@dataclass(frozen=True, slots=True)
class NoticeIn:
    """A notice as a form or the API sent it (every field optional here; the service says
    which are missing for the regime)."""

    regime: str | None = None
    jurisdiction: str | None = None
    locations: tuple[str, ...] = ()
    explanation: str | None = None
    signature: str | None = None
    good_faith: bool = False
    non_consent: bool = False
    sender_name: str | None = None
    sender_email: str | None = None
    locale: str = "en"


@dataclass(frozen=True, slots=True)
class Sender:
    """Who sent a notice: the public form (anonymous) or an API key."""

    channel: str  # form, api
    api_key_id: int | None = None
    trusted: bool = False  # a trusted flagger (DSA Art. 22)


@dataclass(frozen=True, slots=True)
class NoticeItemRead:
    """One item a notice put in review."""

    scan_item_id: str
    location: str
    relation: Relation
    distance: int | None
    review_item_id: int | None
    decided: bool


@dataclass(frozen=True, slots=True)
class NoticeRead:
    """A notice as its sender and moderators see it."""

    reference: str
    regime: Regime
    jurisdiction: str
    trusted: bool
    received_at: dt.datetime
    due_at: dt.datetime
    status: NoticeStatus
    outcome: NoticeOutcome | None
    closed_at: dt.datetime | None
    breached: bool
    items: tuple[NoticeItemRead, ...] = ()


@dataclass(frozen=True, slots=True)
class TickReport:
    """What one run of the clock did."""

    statements_created: int = 0
    notices_closed: tuple[str, ...] = ()
    reminded: tuple[str, ...] = ()
    escalated: tuple[str, ...] = ()
    breached: tuple[str, ...] = ()
    outbound_sent: tuple[str, ...] = ()
    outbound_failed: tuple[str, ...] = ()
    mails_failed: int = 0


@dataclass(frozen=True, slots=True)
class Mail:
    """One e-mail: plain text only (never imagery)."""

    to: str
    subject: str
    body: str
    headers: Mapping[str, str] = field(default_factory=dict)


class Mailer(Protocol):
    """Sends e-mail (SMTP in production; raises :class:`~redress.reports.errors.MailError`)."""

    def send(self, mail: Mail) -> None:
        """Deliver one message or raise ``MailError``."""
        ...


class ContentProbe(Protocol):
    """Says whether reported content is still up (an outbound notice stops when it is gone)."""

    def still_up(self, location: str) -> bool:
        """Whether the content at ``location`` is still reachable."""
        ...
