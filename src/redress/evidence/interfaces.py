"""The typed interface other domains use to hand evidence to this one.

Connectors (Telegram bot, export importer) and the pipeline build a
:class:`CaptureRequest` the moment they see a matching or reported item and
call :meth:`EvidenceRecorder.capture`; the review console and the actions
record their decisions with :meth:`EvidenceRecorder.record_event`. Both are
implemented by :class:`redress.evidence.service.EvidenceService`.

Evidence facts (what the platform showed: bytes, message, sender, dates) live
in :class:`MessageFacts`; why Redress captured it (the match or report) lives
apart in :class:`Trigger`, so a court can read one without the other.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol, runtime_checkable

from redress.evidence.canonical import JsonValue
from redress.evidence.errors import EvidenceNotFoundError

ITEM_ID = re.compile(r"^[0-9a-f]{32}$")


def check_item_id(item_id: str) -> str:
    """Refuse anything but a 32-hex item ID (they become file names in packages)."""
    if not ITEM_ID.fullmatch(item_id):
        raise EvidenceNotFoundError(f"{item_id!r} is not an evidence item ID (32 hex digits)")
    return item_id


class TriggerKind(StrEnum):
    """Why an item was captured."""

    MATCH = "match"
    REPORT = "report"
    MANUAL = "manual"


class EntryKind(StrEnum):
    """Ledger entry kinds written by the evidence domain itself (``domain:noun:verb``)."""

    CAPTURE = "evidence:item:captured"
    VIEW = "evidence:item:viewed"
    EXPORT = "evidence:package:exported"
    KEY_ROTATION = "evidence:master-key:rotated"
    DELETION = "evidence:item:deleted"


@dataclass(frozen=True)
class Trigger:
    """The detector facts that caused a capture, kept apart from the evidence facts.

    ``reference`` is the match, report or notice ID in the domain that raised it;
    ``case_id`` the victim case whose bank matched, when known (exports by case use it).
    """

    kind: TriggerKind
    reference: str | None = None
    case_id: str | None = None
    bank: str | None = None
    distance: int | None = None
    details: Mapping[str, JsonValue] = field(default_factory=dict)


@dataclass(frozen=True)
class MessageFacts:
    """What the platform said about the message that carried the item.

    Dates must be timezone-aware. ``raw`` is the platform's own object for the
    message (e.g. the Bot API ``Message`` as JSON), kept as received.
    """

    platform: str
    chat_id: str | None = None
    chat_title: str | None = None
    message_id: str | None = None
    message_link: str | None = None
    sender_id: str | None = None
    sender_name: str | None = None
    forward_origin: Mapping[str, JsonValue] | None = None
    message_date: dt.datetime | None = None
    edit_date: dt.datetime | None = None
    self_destruct_seconds: int | None = None
    content_protected: bool | None = None
    caption: str | None = None
    raw: Mapping[str, JsonValue] | None = None


@dataclass(frozen=True)
class CaptureRequest:
    """Everything needed to capture one item as evidence.

    ``content`` is stored exactly as given: never decode, resize or re-encode
    it before calling. ``connector`` names the code that collected it
    (``"telegram-bot"``); ``operator`` the person or deployment running it.
    """

    content: bytes
    media_type: str
    message: MessageFacts
    trigger: Trigger
    connector: str
    operator: str
    file_name: str | None = None


@dataclass(frozen=True)
class EvidenceItem:
    """A captured item as other domains see it (never its bytes)."""

    id: str
    capture_seq: int
    status: str
    media_type: str
    size: int
    sha256: str
    sha512: str
    captured_at: dt.datetime
    connector: str
    operator: str
    trigger_kind: str
    case_id: str | None
    platform: str | None
    chat_id: str | None
    message_id: str | None
    deleted_seq: int | None = None


@dataclass(frozen=True)
class OpenedItem:
    """An item decrypted for viewing: its bytes and its full capture record."""

    item: EvidenceItem
    content: bytes
    record: bytes
    view_seq: int


@dataclass(frozen=True)
class LedgerEntry:
    """One ledger entry: ``body`` is its canonical JSON; ``leaf_hash`` = SHA-256(0x00 || body)."""

    seq: int
    kind: str
    item_id: str | None
    actor: str
    recorded_at: dt.datetime
    body: bytes
    leaf_hash: bytes


@dataclass(frozen=True)
class EntryDraft:
    """A ledger entry before it gets its sequence number, time and salt."""

    kind: str
    actor: str
    facts: Mapping[str, JsonValue]
    item_id: str | None = None


@dataclass(frozen=True)
class ExportResult:
    """What an export wrote."""

    path: str
    item_ids: tuple[str, ...]
    checkpoint_size: int
    key_fingerprint: str
    export_seq: int
    encrypted_to: str | None


class Clock(Protocol):
    """Where capture times come from; ``source`` is recorded beside every time."""

    source: str

    def now(self) -> dt.datetime:
        """The current time, timezone-aware UTC."""
        ...


@runtime_checkable
class EvidenceRecorder(Protocol):
    """What connectors, the pipeline and the review console call."""

    def capture(self, request: CaptureRequest) -> EvidenceItem:
        """Store an item as evidence and log its capture."""
        ...

    def record_event(
        self,
        kind: str,
        actor: str,
        facts: Mapping[str, JsonValue],
        item_id: str | None = None,
    ) -> LedgerEntry:
        """Append another domain's decision (``"review:match:confirmed"``) to the ledger."""
        ...

    def record_events(self, drafts: Sequence[EntryDraft]) -> list[LedgerEntry]:
        """Append several decisions in order, taking the ledger's head once."""
        ...
