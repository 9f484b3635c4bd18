"""Types the review console shares with the web layer, the CLI and other domains."""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from redress.evidence.interfaces import EvidenceItem


class Role(enum.StrEnum):
    """Console roles. Admins do everything; auditors only read the audit log and reports."""

    ADMIN = "admin"
    MODERATOR = "moderator"
    ADVOCATE = "advocate"
    AUDITOR = "auditor"


class Outcome(enum.StrEnum):
    """What a moderator decides about a cluster."""

    CONFIRMED = "confirmed"
    NOT_VIOLATION = "not_violation"
    ESCALATED = "escalated"
    NEEDS_INFO = "needs_info"


class ReviewAction(enum.StrEnum):
    """Console audit tags, shaped ``review:noun:verb``."""

    LOGIN = "review:login:ok"
    LOGIN_FAILED = "review:login:failed"
    LOCKED = "review:login:locked"
    LOGOUT = "review:logout"
    USER_CREATE = "review:user:create"
    LEASE = "review:item:leased"
    REVEAL = "review:media:revealed"
    DECISION = "review:cluster:decided"
    AUTO_DECISION = "review:cluster:followed"
    APPEAL_OPEN = "review:appeal:opened"
    APPEAL_DECIDED = "review:appeal:decided"
    CSRF_REJECTED = "review:csrf:rejected"


#: Reason codes a decision must carry, by outcome (shown in the form; anything else is refused).
REASON_CODES: Mapping[Outcome, tuple[str, ...]] = {
    Outcome.CONFIRMED: ("ncii_match", "ncii_new", "doxxing", "sextortion", "minor_suspected"),
    Outcome.NOT_VIOLATION: ("false_match", "consensual_public", "not_intimate", "duplicate_report"),
    Outcome.ESCALATED: ("senior_review", "law_enforcement", "minor_suspected", "threat_to_life"),
    Outcome.NEEDS_INFO: ("unclear_consent", "need_context", "poor_quality"),
}

#: Actions a confirmation may ask for (the pipeline's outbox kinds).
CONFIRM_ACTIONS = ("delete_message", "restrict_user", "block_reupload")


@dataclass(frozen=True, slots=True)
class Viewer:
    """The logged-in user of one request."""

    user_id: int
    email: str
    role: Role
    csrf_token: str
    case_ids: frozenset[int] = frozenset()


@dataclass(frozen=True, slots=True)
class UserRead:
    """A console account as listed to admins."""

    id: int
    email: str
    role: Role
    locked_until: dt.datetime | None
    case_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class QueueFilter:
    """Queue filters (empty means any)."""

    bank: str | None = None
    source: str | None = None
    chat: str | None = None
    min_priority: int | None = None


@dataclass(frozen=True, slots=True)
class QueueRow:
    """One open cluster in the queue, by its most urgent item."""

    item_id: int
    cluster_id: int
    copies: int
    bank: str | None
    source: str
    chat: str | None
    priority: int
    deadline: dt.datetime
    breached: bool
    leased_by: str | None


@dataclass(frozen=True, slots=True)
class CandidateView:
    """One bank entry the item matched."""

    bank: str
    purpose: str
    entry_id: int | None
    signal: str
    distance: int | None
    cases: tuple[str, ...]  # "case 7" or, for her advocate, the case number and contact
    # The hashes only came near; local features confirmed the same picture.
    verified: bool = False


@dataclass(frozen=True, slots=True)
class SightingView:
    """Where a copy in the cluster was seen."""

    scan_item_id: str
    source: str
    platform: str | None
    chat: str | None
    message_id: str | None
    message_link: str | None
    sender: str | None
    at: dt.datetime


@dataclass(frozen=True, slots=True)
class CaptionPart:
    """A run of caption text; ``kind`` names the personal detail it is, if any."""

    text: str
    kind: str | None = None


@dataclass(frozen=True, slots=True)
class DecisionView:
    """A past decision on the cluster."""

    outcome: str
    reason_code: str
    by: str
    at: dt.datetime
    actions: tuple[str, ...]
    note: str | None


@dataclass(frozen=True, slots=True)
class ItemView:
    """Everything a moderator sees about one item and its cluster."""

    item_id: int
    scan_item_id: str
    cluster_id: int
    cluster_status: str
    cluster_outcome: str | None
    version: int
    priority: int
    deadline: dt.datetime
    breached: bool
    media_kind: str | None
    has_media: bool
    pdq: str | None
    candidates: tuple[CandidateView, ...]
    sightings: tuple[SightingView, ...]
    caption: tuple[CaptionPart, ...]
    evidence: tuple[str, ...]
    decisions: tuple[DecisionView, ...]
    open_appeal_id: int | None
    leased_by: str | None
    lease_until: dt.datetime | None
    reasons: tuple[str, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class DecisionRequest:
    """A moderator's decision on a cluster, as the form sent it."""

    cluster_id: int
    item_id: int
    version: int
    outcome: Outcome
    reason_code: str
    actions: tuple[str, ...] = ()
    note: str | None = None
    escalate_to: str | None = None  # "senior" or "law_enforcement"
    disable_entries: bool = False


@dataclass(frozen=True, slots=True)
class DecisionResult:
    """What a decision did: the copies decided and the outbox actions queued."""

    cluster_id: int
    outcome: Outcome
    copies: int
    queued_actions: tuple[str, ...]
    scan_item_ids: tuple[str, ...]
    export_items: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Dashboard:
    """Figures for the dashboard page."""

    open_items: int
    open_clusters: int
    breaches: int
    median_seconds: float | None
    p90_seconds: float | None
    by_outcome: Mapping[str, int]
    by_bank_day: Mapping[str, Mapping[str, int]]
    by_chat_day: Mapping[str, Mapping[str, int]]
    days: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AuditRow:
    """One console audit event."""

    id: int
    at: dt.datetime
    actor: str
    action: str
    target: str
    details: Mapping[str, object]


class EvidenceLedger(Protocol):
    """The part of :class:`redress.evidence.EvidenceService` the console uses."""

    def record_event(
        self, kind: str, actor: str, facts: Mapping[str, object], item_id: str | None = None
    ) -> object:
        """Append a decision to the evidence ledger."""
        ...

    def items_for_message(self, platform: str, chat_id: str, message_id: str) -> list[EvidenceItem]:
        """Evidence captured from one message."""
        ...


class ActionPerformer(Protocol):
    """Performs an item's pending outbox actions after commit (the pipeline's runner)."""

    def after_commit(self, item_id: str) -> None:
        """Run the item's pending actions that have an actioner here."""
        ...


class ReviewIntake(Protocol):
    """What the pipeline may call to hand an item to review (one-way dependency)."""

    def import_pending(self) -> Sequence[str]:
        """Bring every pipeline item with outcome ``review`` into the queue."""
        ...
