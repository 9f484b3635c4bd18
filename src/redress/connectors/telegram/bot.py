"""The group-guard bot: every media item posted in a guarded group goes through the sink.

One :class:`GroupGuard` serves every group the bot is in. For each update it:

1. parses it (a malformed update is recorded and skipped; the rest continue);
2. skips messages already handled (key: chat, message, edit date);
3. for each photo (largest size), video, animation, video note, image/video
   document and static sticker: getFile, download within the size limit (or a
   "too_large" record), and hands an :class:`IncomingMedia` to the sink;
4. only after the sink returned (it captures evidence) carries out the actions
   the group allows: delete, ban or restrict the sender, post a notice. A
   failed action (bot not admin, ...) is an alert record, never a crash;
5. writes the records, marks the message handled and (when polling) the next
   offset in one transaction, so a restart resumes exactly after the last
   fully handled update.

``/report`` as a reply files a user report and acknowledges it privately;
``/start`` in a private chat explains how to protect images through the portal.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from redress.connectors.interfaces import (
    ActionKind,
    Decision,
    IncomingMedia,
    MediaOrigin,
    MediaSink,
    MessageFacts,
    Outcome,
    TooLarge,
    UserReport,
)
from redress.connectors.telegram.client import BotApiClient
from redress.connectors.telegram.errors import (
    BotApiConflictError,
    BotApiError,
    BotApiNetworkError,
    BotApiUnauthorizedError,
    FileTooBigError,
    MalformedUpdateError,
)
from redress.connectors.telegram.store import GroupSettings, RecordKind, TelegramStore
from redress.connectors.telegram.texts import text
from redress.connectors.telegram.wire import ALLOWED_UPDATES, MediaRef, Message, parse_update
from redress.errors import RedressError

_log = logging.getLogger(__name__)
_GROUP_TYPES = frozenset({"group", "supergroup", "channel"})
_CONTENT_KEYS = frozenset(
    {"text", "photo", "video", "animation", "video_note", "document", "sticker", "caption"}
)


@dataclass(frozen=True, slots=True)
class GuardOptions:
    """How the guard behaves; built from Settings at the edge."""

    portal_url: str
    poll_timeout: int = 30
    poll_backoff_max: float = 60.0
    concurrency: int = 8  # chats handled at once; one chat's updates stay in order


@dataclass(slots=True)
class _Pending:
    """Records gathered while an update is handled, written in one transaction at the end."""

    update_id: int | None
    rows: list[tuple[RecordKind, dict[str, Any]]] = field(default_factory=list)

    def add(self, record_kind: RecordKind, /, **detail: Any) -> None:
        self.rows.append((record_kind, detail))


@dataclass(frozen=True, slots=True)
class HandleResult:
    """What handling one update came to (for callers and tests)."""

    update_id: int | None
    records: tuple[RecordKind, ...]
    duplicate: bool = False


def _facts(update_raw: str, msg: Message) -> MessageFacts:
    return MessageFacts(
        platform="telegram",
        chat_id=msg.chat.id,
        chat_title=msg.chat.title,
        chat_type=msg.chat.type,
        message_id=msg.message_id,
        link=msg.link,
        sender=msg.sender,
        date=msg.date,
        edit_date=msg.edit_date,
        forward_origin=msg.forward_origin,
        forward_date=msg.forward_date,
        caption=msg.caption if msg.caption is not None else msg.text,
        media_group_id=msg.media_group_id,
        has_protected_content=msg.has_protected_content,
        raw=update_raw,
    )


class GroupGuard:
    """The group-guard bot over an injected Bot API client, sink and session factory."""

    name = "telegram"

    def __init__(
        self,
        api: BotApiClient,
        sink: MediaSink,
        sessions: sessionmaker[Session],
        options: GuardOptions,
    ) -> None:
        self.api = api
        self.sink = sink
        self._sessions = sessions
        self.options = options
        self.bot_id: int | None = None
        self.offset: int | None = None
        # One chat's updates are handled one at a time, in order; chats run side by side.
        self._chat_locks: dict[int, asyncio.Lock] = {}
        self._slots = asyncio.Semaphore(max(1, options.concurrency))
        self._noticed_albums: OrderedDict[tuple[int, str], None] = OrderedDict()
        self._rights_checked: set[int] = set()

    async def start(self) -> int:
        """Identify the bot (getMe) and load its persisted offset; return the bot's user id."""
        me = await self.api.get_me()
        bot_id = me.get("id")
        if not isinstance(bot_id, int):
            raise MalformedUpdateError("getMe returned no user id")
        self.bot_id = bot_id
        with self._sessions() as session:
            self.offset = TelegramStore(session).offset(bot_id)
        return bot_id

    # -- polling ---------------------------------------------------------------

    async def poll_once(self) -> int:
        """One getUpdates round; returns how many updates arrived.

        Updates of different chats are handled concurrently, each chat's in
        order. The offset advances only when the whole batch is handled; a crash
        midway re-delivers the batch and the (chat, message, edit) keys already
        recorded make the repeat a no-op.
        """
        if self.bot_id is None:
            await self.start()
        updates = await self.api.get_updates(
            offset=self.offset, timeout=self.options.poll_timeout, allowed_updates=ALLOWED_UPDATES
        )
        lanes: dict[object, list[Any]] = {}
        newest: int | None = None
        for raw in updates:
            update_id = raw.get("update_id") if isinstance(raw, dict) else None
            if isinstance(update_id, int):
                if self.offset is not None and update_id < self.offset:
                    continue  # already handled before a restart
                newest = update_id if newest is None else max(newest, update_id)
            lanes.setdefault(_chat_of(raw), []).append(raw)

        async def lane(items: list[Any]) -> None:
            async with self._slots:
                for raw in items:
                    await self.handle(raw)

        await asyncio.gather(*(lane(items) for items in lanes.values()))
        if newest is not None:
            self._commit(_Pending(None), None, newest + 1)
        return len(updates)

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Long-poll until ``stop`` is set; network failures back off and retry, forever."""
        await self.start()
        await self.api.delete_webhook()  # getUpdates answers 409 while a webhook is set
        failures = 0
        while stop is None or not stop.is_set():
            try:
                await self.poll_once()
                failures = 0
            except (BotApiConflictError, BotApiUnauthorizedError):
                raise  # another poller or a wrong token: retrying cannot help
            except (BotApiNetworkError, BotApiError) as exc:
                failures += 1
                wait = min(self.options.poll_backoff_max, 2.0**failures)
                _log.warning("getUpdates failed (%s); retrying in %.0fs", exc.code, wait)
                await asyncio.sleep(wait)

    # -- one update ------------------------------------------------------------

    async def handle(self, raw: Any, *, next_offset: int | None = None) -> HandleResult:
        """Handle one raw update completely, then persist its records (and the offset)."""
        chat = _chat_of(raw)
        lock = self._chat_locks.setdefault(chat if isinstance(chat, int) else 0, asyncio.Lock())
        async with lock:
            raw_id = raw.get("update_id") if isinstance(raw, dict) else None
            pending = _Pending(raw_id if isinstance(raw_id, int) else None)
            key: tuple[int, int, int] | None = None
            duplicate = False
            try:
                update = parse_update(raw)
                msg = update.message
                if msg is None:
                    pending.add(RecordKind.SKIPPED, reason=f"update kind {update.kind!r}")
                else:
                    edit = int(msg.edit_date.timestamp()) if msg.edit_date else 0
                    key = (msg.chat.id, msg.message_id, edit)
                    with self._sessions() as session:
                        duplicate = TelegramStore(session).is_processed(*key)
                    if duplicate:
                        pending.add(RecordKind.DUPLICATE, chat_id=key[0], message_id=key[1])
                    else:
                        await self._message(update.raw_json(), msg, update.is_edit, pending)
            except MalformedUpdateError as exc:
                pending.add(RecordKind.MALFORMED, error=exc.message, raw=_short(raw))
            except Exception as exc:  # noqa: BLE001 - one bad update must not stop the guard
                _log.exception("unexpected failure handling update %s", pending.update_id)
                pending.add(
                    RecordKind.MALFORMED,
                    error=f"{type(exc).__name__}: {self.api.redact(str(exc))}",
                    raw=_short(raw),
                )
            self._commit(pending, None if duplicate else key, next_offset)
            return HandleResult(pending.update_id, tuple(k for k, _ in pending.rows), duplicate)

    def _commit(
        self, pending: _Pending, key: tuple[int, int, int] | None, next_offset: int | None
    ) -> None:
        with self._sessions.begin() as session:
            store = TelegramStore(session)
            for kind, detail in pending.rows:
                chat_id = detail.pop("chat_id", None)
                message_id = detail.pop("message_id", None)
                group = detail.pop("media_group_id", None)
                store.record(
                    kind,
                    update_id=pending.update_id,
                    chat_id=chat_id,
                    message_id=message_id,
                    media_group_id=group,
                    detail=detail,
                )
            if key is not None:
                store.mark_processed(*key)
            if next_offset is not None and self.bot_id is not None:
                store.set_offset(self.bot_id, next_offset)
        if next_offset is not None:
            self.offset = next_offset

    async def _message(self, raw: str, msg: Message, is_edit: bool, pending: _Pending) -> None:
        where = {"chat_id": msg.chat.id, "message_id": msg.message_id}
        command = msg.command
        if msg.chat.type == "private":
            if command == "/start":
                await self._start(msg, pending)
            else:
                pending.add(RecordKind.SKIPPED, reason="private message", **where)
            return
        if msg.chat.type not in _GROUP_TYPES:
            pending.add(RecordKind.SKIPPED, reason=f"chat type {msg.chat.type!r}", **where)
            return
        if command == "/report":
            await self._report(raw, msg, pending)
            return
        with self._sessions() as session:
            group = TelegramStore(session).group(msg.chat.id)
        if not group.enabled:
            pending.add(RecordKind.SKIPPED, reason="group disabled", **where)
            return
        await self._check_rights(msg.chat.id, pending)
        if not msg.media:
            if not _CONTENT_KEYS.intersection(msg.raw):
                kinds = sorted(k for k in msg.raw if k not in {"message_id", "date", "chat"})
                pending.add(RecordKind.SKIPPED, reason="no media", keys=kinds[:12], **where)
            return
        facts = _facts(raw, msg)
        origin = MediaOrigin.EDIT if is_edit else MediaOrigin.ARRIVAL
        decisions: list[Decision] = []
        for ref in msg.media:
            media = await self._fetch(ref, facts, origin, group.banks, pending)
            if media is None:
                continue
            try:
                decision = await self.sink.receive(media)
            except RedressError as exc:
                pending.add(
                    RecordKind.SCAN_FAILED,
                    code=exc.code,
                    error=exc.message,
                    file_unique_id=ref.file_unique_id,
                    media_group_id=msg.media_group_id,
                    **where,
                )
                continue
            decisions.append(decision)
            pending.add(
                RecordKind.SCANNED,
                kind=str(ref.kind),
                origin=str(origin),
                file_unique_id=ref.file_unique_id,
                outcome=str(decision.outcome),
                actions=[str(a) for a in decision.actions],
                matches=list(decision.matches),
                evidence_ref=decision.evidence_ref,
                reason=decision.reason,
                link=facts.link,
                sender_id=facts.sender.id if facts.sender else None,
                forward_origin=facts.forward_origin,
                caption=facts.caption,
                media_group_id=msg.media_group_id,
                **where,
            )
        await self._act(msg, group, decisions, pending)

    async def _fetch(
        self,
        ref: MediaRef,
        facts: MessageFacts,
        origin: MediaOrigin,
        banks: tuple[str, ...],
        pending: _Pending,
    ) -> IncomingMedia | None:
        limit = self.api.file_limit
        where = {
            "chat_id": facts.chat_id,
            "message_id": facts.message_id,
            "media_group_id": facts.media_group_id,
        }
        content: bytes | TooLarge
        reason = (
            "the cloud Bot API serves files up to 20 MB; run a self-hosted Bot API server "
            "(REDRESS_TELEGRAM_API_URL) to fetch larger ones"
            if self.api.is_cloud
            else f"file exceeds the configured limit of {limit} bytes"
        )
        try:
            if ref.file_size is not None and ref.file_size > limit:
                content = TooLarge(ref.file_size, limit, reason)
            else:
                file = await self.api.get_file(ref.file_id)
                content = await self.api.download(file)
        except FileTooBigError:
            content = TooLarge(ref.file_size, limit, reason)
        except (BotApiError, BotApiNetworkError, MalformedUpdateError) as exc:
            pending.add(
                RecordKind.FETCH_FAILED,
                code=exc.code,
                error=exc.message,
                kind=str(ref.kind),
                file_unique_id=ref.file_unique_id,
                **where,
            )
            return None
        if isinstance(content, TooLarge):
            pending.add(
                RecordKind.TOO_LARGE,
                kind=str(ref.kind),
                file_unique_id=ref.file_unique_id,
                size=content.size,
                limit=content.limit,
                reason=content.reason,
                **where,
            )
        return IncomingMedia(
            kind=ref.kind,
            origin=origin,
            message=facts,
            content=content,
            file_name=ref.file_name,
            mime_type=ref.mime_type,
            platform_file_id=ref.file_unique_id,
            banks=banks,
        )

    async def _act(
        self, msg: Message, group: GroupSettings, decisions: list[Decision], pending: _Pending
    ) -> None:
        acting = [d for d in decisions if d.outcome is Outcome.ACT]
        if not acting:
            return
        wanted = {a for d in acting for a in d.actions if a in group.outcomes}
        evidence = [d.evidence_ref for d in acting if d.evidence_ref]
        where = {
            "chat_id": msg.chat.id,
            "message_id": msg.message_id,
            "media_group_id": msg.media_group_id,
        }
        chat_id = msg.chat.id
        sender = msg.sender
        user_id = sender.id if sender is not None and sender.id is not None else None
        steps: list[tuple[ActionKind, Any]] = []
        if ActionKind.DELETE_MESSAGE in wanted:
            if evidence:
                steps.append((ActionKind.DELETE_MESSAGE, (chat_id, msg.message_id)))
            else:  # never destroy what has not been preserved
                pending.add(
                    RecordKind.ALERT,
                    action=str(ActionKind.DELETE_MESSAGE),
                    code="evidence_missing",
                    error="the sink returned no evidence reference; the message was not deleted",
                    **where,
                )
        user_is_person = user_id is not None and user_id > 0  # chats (sender_chat) are negative
        if ActionKind.BAN_SENDER in wanted and user_is_person:
            steps.append((ActionKind.BAN_SENDER, user_id))
        elif ActionKind.RESTRICT_SENDER in wanted and user_is_person:
            steps.append((ActionKind.RESTRICT_SENDER, user_id))
        if ActionKind.POST_NOTICE in wanted:
            album = (chat_id, msg.media_group_id) if msg.media_group_id else None
            if album is None or album not in self._noticed_albums:
                steps.append((ActionKind.POST_NOTICE, group.notice_text))
                if album is not None:  # one notice per album, not one per item
                    self._noticed_albums[album] = None
                    while len(self._noticed_albums) > 10_000:
                        self._noticed_albums.popitem(last=False)
        for action, arg in steps:
            try:
                if action is ActionKind.DELETE_MESSAGE:
                    await self.api.delete_message(*arg)
                elif action is ActionKind.BAN_SENDER:
                    await self.api.ban_chat_member(chat_id, arg)
                elif action is ActionKind.RESTRICT_SENDER:
                    await self.api.restrict_chat_member(chat_id, arg)
                else:
                    notice = arg or text("notice", group.language)
                    await self.api.send_message(chat_id, notice)
            except (BotApiError, BotApiNetworkError) as exc:
                pending.add(
                    RecordKind.ALERT,
                    action=str(action),
                    code=exc.code,
                    error=exc.message,
                    hint=_hint(action, exc),
                    **where,
                )
            else:
                target = (
                    user_id
                    if action in {ActionKind.BAN_SENDER, ActionKind.RESTRICT_SENDER}
                    else None
                )
                pending.add(
                    RecordKind.ACTION,
                    action=str(action),
                    user_id=target,
                    evidence=evidence,
                    **where,
                )

    async def _check_rights(self, chat_id: int, pending: _Pending) -> None:
        """Once per group and process: alert early when the bot cannot delete or ban."""
        if chat_id in self._rights_checked or self.bot_id is None:
            return
        self._rights_checked.add(chat_id)
        try:
            member = await self.api.get_chat_member(chat_id, self.bot_id)
        except (BotApiError, BotApiNetworkError) as exc:
            self._rights_checked.discard(chat_id)  # try again with the next message
            _log.warning("getChatMember failed in chat %s: %s", chat_id, exc.code)
            return
        missing = [
            right
            for right in ("can_delete_messages", "can_restrict_members")
            if member.get("status") != "creator" and not member.get(right)
        ]
        if missing:
            pending.add(
                RecordKind.ALERT,
                action="check_rights",
                code="missing_admin_rights",
                error=f"the bot is {member.get('status', 'unknown')} without {', '.join(missing)}",
                hint="make the bot an admin with 'Delete messages' and 'Ban users'",
                chat_id=chat_id,
            )

    async def _report(self, raw: str, msg: Message, pending: _Pending) -> None:
        where = {"chat_id": msg.chat.id, "message_id": msg.message_id}
        reporter = msg.sender
        target = msg.reply_to
        if reporter is None or reporter.id is None or target is None:
            pending.add(
                RecordKind.SKIPPED, reason="/report must be sent as a reply to a message", **where
            )
            return
        facts = _facts(raw, target)
        media: list[IncomingMedia] = []
        with self._sessions() as session:
            banks = TelegramStore(session).group(msg.chat.id).banks
        for ref in target.media:
            item = await self._fetch(ref, facts, MediaOrigin.REPORT, banks, pending)
            if item is not None:
                media.append(item)
        try:
            ref_id = await self.sink.report(UserReport(reporter, facts, tuple(media)))
        except RedressError as exc:
            pending.add(RecordKind.SCAN_FAILED, code=exc.code, error=exc.message, **where)
            return
        pending.add(
            RecordKind.REPORT,
            reference=ref_id,
            reporter_id=reporter.id,
            reported_message_id=target.message_id,
            link=target.link,
            media=len(media),
            **where,
        )
        ack = text(
            "ack",
            reporter.language_code,
            message=target.link or str(target.message_id),
            chat=msg.chat.title or str(msg.chat.id),
            ref=ref_id,
        )
        try:
            await self.api.send_message(reporter.id, ack)
        except (BotApiError, BotApiNetworkError) as exc:
            pending.add(
                RecordKind.ALERT,
                action="acknowledge_report",
                code=exc.code,
                error=exc.message,
                hint="the reporter has not started a private chat with the bot (or blocked it)",
                **where,
            )

    async def _start(self, msg: Message, pending: _Pending) -> None:
        language = msg.sender.language_code if msg.sender else None
        try:
            await self.api.send_message(
                msg.chat.id, text("start", language, portal=self.options.portal_url)
            )
        except (BotApiError, BotApiNetworkError) as exc:
            pending.add(
                RecordKind.ALERT,
                action="start",
                code=exc.code,
                error=exc.message,
                chat_id=msg.chat.id,
                message_id=msg.message_id,
            )


def _chat_of(raw: Any) -> object:
    """The chat id an update belongs to, read leniently (for ordering, not for trust)."""
    if isinstance(raw, dict):
        for name in ("message", "edited_message", "channel_post", "edited_channel_post"):
            msg = raw.get(name)
            if isinstance(msg, dict) and isinstance(msg.get("chat"), dict):
                chat_id = msg["chat"].get("id")
                if isinstance(chat_id, int):
                    return chat_id
    return None


def _hint(action: ActionKind, exc: RedressError) -> str:
    if isinstance(exc, BotApiError) and exc.error_code in {400, 403}:
        if action is ActionKind.DELETE_MESSAGE:
            return "make the bot an admin with the 'Delete messages' right"
        if action in {ActionKind.BAN_SENDER, ActionKind.RESTRICT_SENDER}:
            return "make the bot an admin with the 'Ban users' right"
        return "the bot may not post in this chat"
    return "the Bot API could not be reached; the action was not retried"


def _short(raw: Any) -> str:
    try:
        textual = json.dumps(raw, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        textual = repr(raw)
    return textual[:2000]
