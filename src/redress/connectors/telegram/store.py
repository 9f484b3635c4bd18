"""All SQL of the Telegram connector. Stores only ``flush()``; the edge commits."""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from redress.connectors.interfaces import ActionKind
from redress.connectors.telegram.models import (
    TelegramGroup,
    TelegramProcessed,
    TelegramRecord,
    TelegramState,
)

JOURNAL_PREFIX = "actions:"  # telegram_state keys of planned, not yet recorded actions
DEFAULT_OUTCOMES = (ActionKind.DELETE_MESSAGE, ActionKind.BAN_SENDER, ActionKind.POST_NOTICE)


class RecordKind(enum.StrEnum):
    """What a :class:`TelegramRecord` row says happened."""

    SCANNED = "scanned"  # an item went through the sink; detail has the decision
    TOO_LARGE = "too_large"  # an item over the download limit (still handed to the sink)
    FETCH_FAILED = "fetch_failed"  # getFile / download failed
    SCAN_FAILED = "scan_failed"  # the sink could not read the item
    ACTION = "action"  # an action was carried out
    ALERT = "alert"  # an action failed (bot not admin, user blocked the bot, ...)
    REPORT = "report"  # a user report was filed
    SKIPPED = "skipped"  # an update or message with nothing to scan
    MALFORMED = "malformed"  # an update that is not shaped as the Bot API documents
    DUPLICATE = "duplicate"  # a message (and edit) already handled


@dataclass(frozen=True, slots=True)
class GroupSettings:
    """One group's settings. A group without a row gets :meth:`default`."""

    chat_id: int
    title: str | None = None
    enabled: bool = True
    banks: tuple[str, ...] = ()  # () = every bank
    outcomes: tuple[ActionKind, ...] = DEFAULT_OUTCOMES
    notice_text: str | None = None
    language: str = "en"

    @classmethod
    def default(cls, chat_id: int) -> GroupSettings:
        """The settings of a group nobody configured: scan all banks, delete and notify."""
        return cls(chat_id=chat_id)


@dataclass(frozen=True, slots=True)
class RecordIn:
    """One record to append."""

    kind: RecordKind
    update_id: int | None = None
    chat_id: int | None = None
    message_id: int | None = None
    media_group_id: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RecordRead:
    """One record, as read back."""

    id: int
    created_at: dt.datetime
    kind: RecordKind
    update_id: int | None
    chat_id: int | None
    message_id: int | None
    media_group_id: str | None
    detail: dict[str, Any] = field(default_factory=dict)


class TelegramStore:
    """Reads and writes the connector's tables through one session."""

    def __init__(self, session: Session) -> None:
        self.session = session

    # -- groups
    def group(self, chat_id: int) -> GroupSettings:
        """The group's settings (defaults when none are stored)."""
        row = self.session.get(TelegramGroup, chat_id)
        if row is None:
            return GroupSettings.default(chat_id)
        return GroupSettings(
            chat_id=row.chat_id,
            title=row.title,
            enabled=row.enabled,
            banks=tuple(row.banks),
            outcomes=tuple(ActionKind(o) for o in row.outcomes),
            notice_text=row.notice_text,
            language=row.language,
        )

    def put_group(self, settings: GroupSettings) -> None:
        """Create or replace a group's settings."""
        row = self.session.get(TelegramGroup, settings.chat_id)
        if row is None:
            row = TelegramGroup(chat_id=settings.chat_id)
            self.session.add(row)
        row.title = settings.title
        row.enabled = settings.enabled
        row.banks = list(settings.banks)
        row.outcomes = [str(o) for o in settings.outcomes]
        row.notice_text = settings.notice_text
        row.language = settings.language
        row.updated_at = dt.datetime.now(dt.UTC)
        self.session.flush()

    def groups(self) -> list[GroupSettings]:
        """Every configured group."""
        ids = self.session.scalars(select(TelegramGroup.chat_id).order_by(TelegramGroup.chat_id))
        return [self.group(chat_id) for chat_id in ids]

    # -- offset
    def offset(self, bot_id: int) -> int | None:
        """The next update_id to ask for, as persisted after the last fully handled update."""
        row = self.session.get(TelegramState, f"offset:{bot_id}")
        return int(row.value) if row is not None else None

    def set_offset(self, bot_id: int, offset: int) -> None:
        """Persist the next update_id to ask for."""
        key = f"offset:{bot_id}"
        row = self.session.get(TelegramState, key)
        if row is None:
            self.session.add(TelegramState(key=key, value=str(offset)))
        else:
            row.value = str(offset)
        self.session.flush()

    # -- actions decided but not yet carried out (see GroupGuard: a crash in between resumes them)
    def put_journal(self, key: str, value: str) -> None:
        """Store a batch's planned actions under ``key`` (``actions:...``)."""
        self.session.add(TelegramState(key=key, value=value))
        self.session.flush()

    def journals(self) -> list[tuple[str, str]]:
        """Every stored batch of planned actions, oldest key first."""
        rows = self.session.scalars(
            select(TelegramState)
            .where(TelegramState.key.startswith(JOURNAL_PREFIX))
            .order_by(TelegramState.key)
        )
        return [(row.key, row.value) for row in rows]

    def drop_journal(self, key: str) -> None:
        """Forget a batch's planned actions once they were carried out and recorded."""
        row = self.session.get(TelegramState, key)
        if row is not None:
            self.session.delete(row)
            self.session.flush()

    # -- idempotency
    def processed_among(self, keys: Sequence[tuple[int, int, int]]) -> set[tuple[int, int, int]]:
        """Which of these (chat, message, edit date) keys were already handled: one query."""
        if not keys:
            return set()
        wanted = set(keys)
        rows = self.session.execute(
            select(
                TelegramProcessed.chat_id,
                TelegramProcessed.message_id,
                TelegramProcessed.edit_date,
            ).where(
                TelegramProcessed.chat_id.in_({k[0] for k in wanted}),
                TelegramProcessed.message_id.in_({k[1] for k in wanted}),
            )
        )
        return {(c, m, e) for c, m, e in rows if (c, m, e) in wanted}

    def mark_processed_many(self, keys: Sequence[tuple[int, int, int]]) -> None:
        """Remember that these messages (at these edits) were handled: one flush."""
        self.session.add_all(
            TelegramProcessed(chat_id=c, message_id=m, edit_date=e) for c, m, e in keys
        )
        self.session.flush()

    def is_processed(self, chat_id: int, message_id: int, edit_date: int) -> bool:
        """Whether this message (at this edit) was already handled."""
        return self.session.get(TelegramProcessed, (chat_id, message_id, edit_date)) is not None

    def mark_processed(self, chat_id: int, message_id: int, edit_date: int) -> None:
        """Remember that this message (at this edit) was handled."""
        self.session.add(
            TelegramProcessed(chat_id=chat_id, message_id=message_id, edit_date=edit_date)
        )
        self.session.flush()

    # -- records
    def record(
        self,
        kind: RecordKind,
        *,
        update_id: int | None = None,
        chat_id: int | None = None,
        message_id: int | None = None,
        media_group_id: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        """Append one record; ``detail`` is JSON-serialisable facts for people and reports."""
        self.session.add(
            TelegramRecord(
                kind=str(kind),
                update_id=update_id,
                chat_id=chat_id,
                message_id=message_id,
                media_group_id=media_group_id,
                detail=dict(detail or {}),
            )
        )
        self.session.flush()

    def record_many(self, rows: Sequence[RecordIn]) -> None:
        """Append many records with one flush (a batch's records, in order)."""
        self.session.add_all(
            TelegramRecord(
                kind=str(row.kind),
                update_id=row.update_id,
                chat_id=row.chat_id,
                message_id=row.message_id,
                media_group_id=row.media_group_id,
                detail=dict(row.detail),
            )
            for row in rows
        )
        self.session.flush()

    def records(
        self, kinds: Sequence[RecordKind] = (), *, chat_id: int | None = None, limit: int = 1000
    ) -> list[RecordRead]:
        """Records, oldest first, optionally of some kinds or one chat."""
        query = select(TelegramRecord).order_by(TelegramRecord.id)
        if kinds:
            query = query.where(TelegramRecord.kind.in_([str(k) for k in kinds]))
        if chat_id is not None:
            query = query.where(TelegramRecord.chat_id == chat_id)
        return [
            RecordRead(
                id=row.id,
                created_at=row.created_at,
                kind=RecordKind(row.kind),
                update_id=row.update_id,
                chat_id=row.chat_id,
                message_id=row.message_id,
                media_group_id=row.media_group_id,
                detail=dict(row.detail),
            )
            for row in self.session.scalars(query.limit(limit))
        ]
