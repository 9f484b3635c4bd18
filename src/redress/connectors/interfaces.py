"""The narrow, typed seam between connectors and the pipeline.

A connector (the Telegram group-guard bot, the Telegram export importer, ...)
builds one :class:`IncomingMedia` per media item it sees and hands it to a
:class:`MediaSink`. The sink (the pipeline, in production) hashes, matches,
applies policy, captures evidence, and answers with a :class:`Decision`. The
connector only carries the decision out on its platform (delete, ban, ...)
*after* the sink returned, so evidence always exists before a deletion.

Nothing here knows about Telegram's wire format or about the index.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from redress.errors import RedressError


class MediaKind(enum.StrEnum):
    """What kind of media item a connector found."""

    PHOTO = "photo"
    VIDEO = "video"
    ANIMATION = "animation"
    VIDEO_NOTE = "video_note"
    DOCUMENT = "document"
    STICKER = "sticker"


class MediaOrigin(enum.StrEnum):
    """How the item reached Redress."""

    ARRIVAL = "arrival"  # posted in a guarded group, seen as it arrived
    EDIT = "edit"  # a message was edited and carries new media
    REPORT = "report"  # a user reported the message
    IMPORT = "import"  # read from an exported chat archive


class Outcome(enum.StrEnum):
    """The sink's verdict on one item."""

    IGNORE = "ignore"  # no match (or nothing to do)
    REVIEW = "review"  # queued for a human
    ACT = "act"  # confirmed: carry out the actions


class ActionKind(enum.StrEnum):
    """Actions a connector can carry out on its platform."""

    DELETE_MESSAGE = "delete_message"
    BAN_SENDER = "ban_sender"
    RESTRICT_SENDER = "restrict_sender"
    POST_NOTICE = "post_notice"


@dataclass(frozen=True, slots=True)
class Person:
    """A sender, reporter or forward origin, as the platform names them."""

    id: int | None
    name: str
    username: str | None = None
    is_bot: bool = False
    language_code: str | None = None


@dataclass(frozen=True, slots=True)
class MessageFacts:
    """Everything known about the message an item came from (kept as evidence)."""

    platform: str  # "telegram"
    chat_id: int
    chat_title: str | None
    chat_type: str  # "group", "supergroup", "channel", "private", or an export's chat type
    message_id: int
    link: str | None  # https://t.me/... when the chat has one
    sender: Person | None
    date: dt.datetime  # UTC
    edit_date: dt.datetime | None = None
    forward_origin: str | None = None  # a readable description, e.g. "user 42 (Alice)"
    forward_date: dt.datetime | None = None
    caption: str | None = None  # caption or text: input to the personal-details signal
    media_group_id: str | None = None  # album: items sharing it were posted together
    has_protected_content: bool = False
    raw: str | None = None  # the update / export record as JSON text, unchanged


@dataclass(frozen=True, slots=True)
class TooLarge:
    """The item exists but could not be fetched because of a size limit."""

    size: int | None  # bytes, when the platform said
    limit: int  # the limit in force, bytes
    reason: str  # human-readable, e.g. "Bot API getFile serves at most 20 MB"


@dataclass(frozen=True, slots=True)
class IncomingMedia:
    """One media item and its message, handed by a connector to a :class:`MediaSink`."""

    kind: MediaKind
    origin: MediaOrigin
    message: MessageFacts
    content: bytes | TooLarge  # the original bytes, unchanged, or why there are none
    file_name: str | None = None
    mime_type: str | None = None
    platform_file_id: str | None = None  # Telegram file_unique_id: stable across bots
    banks: tuple[str, ...] = ()  # banks this source is checked against; () = all

    @property
    def key(self) -> str:
        """A stable identity for idempotency: platform, chat, message, edit and file."""
        edit = int(self.message.edit_date.timestamp()) if self.message.edit_date else 0
        return (
            f"{self.message.platform}:{self.message.chat_id}:{self.message.message_id}:"
            f"{edit}:{self.platform_file_id or ''}"
        )


@dataclass(frozen=True, slots=True)
class Decision:
    """The sink's answer for one item.

    ``evidence_ref`` names the evidence captured for the item (the ledger entry
    or item ID). A connector must not delete anything for a decision without one.
    """

    outcome: Outcome
    actions: tuple[ActionKind, ...] = ()
    evidence_ref: str | None = None
    matches: tuple[str, ...] = ()  # human-readable "bank/entry@distance" for records
    reason: str = ""


@dataclass(frozen=True, slots=True)
class UserReport:
    """A user's report of a message, with the media it carries (possibly none)."""

    reporter: Person
    message: MessageFacts
    media: tuple[IncomingMedia, ...] = field(default_factory=tuple)
    note: str | None = None


class MediaSink(Protocol):
    """Where connectors hand media: the pipeline implements this.

    Implementations hash, match, apply policy and capture evidence *before*
    returning. They raise a ``RedressError`` for items they cannot read
    (corrupt bytes); connectors record that and continue.
    """

    async def receive(self, media: IncomingMedia) -> Decision:
        """Scan one item and decide what to do with it."""
        ...

    async def report(self, report: UserReport) -> str:
        """File a user report into the review queue; return its reference."""
        ...


@runtime_checkable
class BatchMediaSink(MediaSink, Protocol):
    """A :class:`MediaSink` that also scans several items at once, for less work per item
    (the pipeline's sink: one transaction accepts them all). Connectors use it when the
    sink has it and hand items one by one otherwise."""

    async def receive_many(self, media: Sequence[IncomingMedia]) -> list[Decision | RedressError]:
        """Scan the items; answer each, in order, with its decision or the error it raised
        (one item's error does not stop the others). Evidence is captured before this
        returns, as with :meth:`MediaSink.receive`."""
        ...


class Connector(Protocol):
    """A long-running source of media (the group-guard bot is one)."""

    name: str

    async def run(self) -> None:
        """Deliver media to the sink until cancelled."""
        ...


@dataclass(frozen=True, slots=True)
class StatementMessage:
    """A statement of reasons (DSA Art. 17) for the user whose content was acted on."""

    statement_id: int
    platform: str
    chat_id: str | None
    user_id: str
    text: str


class StatementSender(Protocol):
    """A connector that can tell an affected user why their content was removed or
    restricted (the Telegram bot sends a private message)."""

    platform: str

    async def send_statement(self, message: StatementMessage) -> tuple[bool, str]:
        """Deliver the statement; ``(ok, detail)``, never raising for an expected failure
        (a user who never opened a chat with the bot cannot be reached)."""
        ...
