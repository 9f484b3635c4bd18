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
import contextlib
import json
import logging
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from redress.connectors.interfaces import (
    ActionKind,
    BatchMediaSink,
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
    TelegramError,
)
from redress.connectors.telegram.store import (
    JOURNAL_PREFIX,
    GroupSettings,
    RecordIn,
    RecordKind,
    TelegramStore,
)
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
    fetches: int = 8  # files downloading at once (getFile + download), across the batch
    scan_batch: int = 32  # media handed to the sink at once (one scan of a batch)
    scan_batch_bytes: int = 64 * 1024 * 1024  # ... and at most this many announced bytes


@dataclass(frozen=True, slots=True)
class PlannedAction:
    """An action decided for a message, carried out after the decision was committed."""

    update_id: int | None
    chat_id: int
    message_id: int
    media_group_id: str | None
    action: ActionKind
    user_id: int | None = None  # ban / restrict: whom
    text: str | None = None  # post_notice: what
    evidence: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """A JSON object for the journal."""
        return {
            "update_id": self.update_id,
            "chat_id": self.chat_id,
            "message_id": self.message_id,
            "media_group_id": self.media_group_id,
            "action": str(self.action),
            "user_id": self.user_id,
            "text": self.text,
            "evidence": list(self.evidence),
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> PlannedAction:
        """Back from :meth:`to_json`."""
        return cls(
            update_id=obj.get("update_id"),
            chat_id=int(obj["chat_id"]),
            message_id=int(obj["message_id"]),
            media_group_id=obj.get("media_group_id"),
            action=ActionKind(obj["action"]),
            user_id=obj.get("user_id"),
            text=obj.get("text"),
            evidence=tuple(obj.get("evidence") or ()),
        )


@dataclass(slots=True)
class _Pending:
    """What handling one update produced: records (written with the batch's decisions),
    planned actions, and the records of carrying those out (written after them)."""

    update_id: int | None
    rows: list[RecordIn] = field(default_factory=list)
    actions: list[PlannedAction] = field(default_factory=list)
    after: list[RecordIn] = field(default_factory=list)

    def add(self, record_kind: RecordKind, /, **detail: Any) -> None:
        self.rows.append(_record(record_kind, self.update_id, detail))


def _record(kind: RecordKind, update_id: int | None, detail: dict[str, Any]) -> RecordIn:
    chat_id = detail.pop("chat_id", None)
    message_id = detail.pop("message_id", None)
    group = detail.pop("media_group_id", None)
    return RecordIn(kind, update_id, chat_id, message_id, group, detail)


@dataclass(slots=True)
class _Job:
    """One update of a batch on its way through the guard."""

    raw: Any
    pending: _Pending
    message: Message | None = None
    is_edit: bool = False
    raw_json: str = ""
    key: tuple[int, int, int] | None = None
    duplicate: bool = False
    # A scanned message: its media as fetched (None: not fetched, see the records) and
    # the sink's answer for each fetched one, in the same order.
    media: list[IncomingMedia | None] = field(default_factory=list)
    answers: list[Decision | RedressError] | None = None


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
        # A chat is handled by one batch at a time (webhook requests arrive side by side),
        # and within a batch one chat's updates run one after another, in order.
        self._chat_locks: dict[int, asyncio.Lock] = {}
        self._slots = asyncio.Semaphore(max(1, options.concurrency))
        self._fetching = asyncio.Semaphore(max(1, options.fetches))
        self._noticed_albums: OrderedDict[tuple[int, str], None] = OrderedDict()
        self._rights_checked: set[int] = set()

    async def start(self) -> int:
        """Identify the bot (getMe), load its persisted offset, and carry out the actions
        a previous process decided and committed but did not get to record; return the
        bot's user id."""
        me = await self.api.get_me()
        bot_id = me.get("id")
        if not isinstance(bot_id, int):
            raise MalformedUpdateError("getMe returned no user id")
        self.bot_id = bot_id
        with self._sessions() as session:
            store = TelegramStore(session)
            self.offset = store.offset(bot_id)
            journals = store.journals()
        for key, value in journals:
            planned = [PlannedAction.from_json(obj) for obj in json.loads(value)]
            done = await self._perform(planned, resumed=True)
            await asyncio.to_thread(self._commit_actions, [r for rows in done for r in rows], key)
        return bot_id

    # -- polling ---------------------------------------------------------------

    async def poll_once(self) -> int:
        """One getUpdates round; returns how many updates arrived.

        The batch is handled by :meth:`handle_batch`: chats side by side, each
        chat's updates in order, and the next offset is persisted with the
        batch's decisions, in the same transaction.
        """
        if self.bot_id is None:
            await self.start()
        updates = await self.api.get_updates(
            offset=self.offset, timeout=self.options.poll_timeout, allowed_updates=ALLOWED_UPDATES
        )
        fresh: list[Any] = []
        newest: int | None = None
        for raw in updates:
            update_id = raw.get("update_id") if isinstance(raw, dict) else None
            if isinstance(update_id, int):
                if self.offset is not None and update_id < self.offset:
                    continue  # already handled before a restart
                newest = update_id if newest is None else max(newest, update_id)
            fresh.append(raw)
        await self.handle_batch(fresh, next_offset=None if newest is None else newest + 1)
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

    # -- a batch of updates ----------------------------------------------------

    async def handle(self, raw: Any, *, next_offset: int | None = None) -> HandleResult:
        """Handle one raw update completely (a batch of one; webhook mode)."""
        (result,) = await self.handle_batch([raw], next_offset=next_offset)
        return result

    async def handle_batch(
        self, raws: Sequence[Any], *, next_offset: int | None = None
    ) -> list[HandleResult]:
        """Handle a batch of raw updates; return one result per update, in order.

        1. One read: which messages were already handled, and the groups' settings.
        2. The media to scan, in update order, in slices of ``scan_batch``: each
           slice's files download (``fetches`` at once) while the slice before it is
           scanned, and a slice goes to the sink in one call (which captures evidence
           for every match before it answers).
        3. Chats side by side (at most ``concurrency`` at once), each chat's updates
           in order: records of the scans, commands and reports, planned actions.
        4. One transaction: every record, the handled keys, the planned actions (a
           journal) and ``next_offset``.
        5. The actions, chats side by side, each chat's in order; then one
           transaction: their records, and the journal is dropped.

        A crash before 4 commits nothing: the batch is delivered again, and the sink
        answers each item from its first scan (idempotency key), so nothing is
        captured twice and no action has happened yet. A crash between 4 and 5 leaves
        the journal, which :meth:`start` carries out.
        """
        jobs = [self._parse(raw) for raw in raws]
        chat_ids = sorted({job.message.chat.id for job in jobs if job.message is not None})
        async with _all_locked([self._chat_lock(c) for c in chat_ids]):
            keys = [job.key for job in jobs if job.key is not None]
            handled, groups = await asyncio.to_thread(self._read, keys, chat_ids)
            for job in jobs:  # a repeat inside the batch is a duplicate too
                if job.key is not None:
                    if job.key in handled:
                        job.duplicate = True
                        job.pending.add(
                            RecordKind.DUPLICATE, chat_id=job.key[0], message_id=job.key[1]
                        )
                    handled.add(job.key)
            await self._scan([job for job in jobs if self._scans(job, groups)], groups)
            lanes: dict[object, list[_Job]] = {}
            for job in jobs:
                if job.message is not None and not job.duplicate:
                    lanes.setdefault(job.message.chat.id, []).append(job)

            async def lane(items: list[_Job]) -> None:
                async with self._slots:
                    for job in items:
                        await self._guarded(job, groups)

            await asyncio.gather(*(lane(items) for items in lanes.values()))
            planned = [action for job in jobs for action in job.pending.actions]
            journal = f"{JOURNAL_PREFIX}{uuid.uuid4().hex}" if planned else None
            await asyncio.to_thread(self._commit_batch, jobs, planned, journal, next_offset)
            if next_offset is not None:
                self.offset = next_offset
            if journal is not None:
                done = await self._perform(planned)
                owners = [job for job in jobs for _ in job.pending.actions]  # as ``planned``
                for owner, rows in zip(owners, done, strict=True):
                    owner.pending.after.extend(rows)
                await asyncio.to_thread(
                    self._commit_actions, [r for rows in done for r in rows], journal
                )
        return [
            HandleResult(
                job.pending.update_id,
                tuple(r.kind for r in (*job.pending.rows, *job.pending.after)),
                job.duplicate,
            )
            for job in jobs
        ]

    def _chat_lock(self, chat_id: int) -> asyncio.Lock:
        return self._chat_locks.setdefault(chat_id, asyncio.Lock())

    def _parse(self, raw: Any) -> _Job:
        raw_id = raw.get("update_id") if isinstance(raw, dict) else None
        job = _Job(raw, _Pending(raw_id if isinstance(raw_id, int) else None))
        try:
            update = parse_update(raw)
        except MalformedUpdateError as exc:
            job.pending.add(RecordKind.MALFORMED, error=exc.message, raw=_short(raw))
            return job
        msg = update.message
        if msg is None:
            job.pending.add(RecordKind.SKIPPED, reason=f"update kind {update.kind!r}")
            return job
        edit = int(msg.edit_date.timestamp()) if msg.edit_date else 0
        job.message, job.is_edit, job.key = msg, update.is_edit, (msg.chat.id, msg.message_id, edit)
        job.raw_json = update.raw_json()
        return job

    @staticmethod
    def _scans(job: _Job, groups: dict[int, GroupSettings]) -> bool:
        """Whether the job is a message whose media the guard scans (see :meth:`_message`)."""
        msg = job.message
        if msg is None or job.duplicate or not msg.media or msg.chat.type not in _GROUP_TYPES:
            return False
        return msg.command != "/report" and groups[msg.chat.id].enabled

    def _slices(self, jobs: list[_Job]) -> list[list[_Job]]:
        """Consecutive slices of at most ``scan_batch`` media and ``scan_batch_bytes``
        announced bytes (a message is never split), so that at most two slices' files are
        held in memory: the one being scanned and the one downloading."""
        slices: list[list[_Job]] = []
        current: list[_Job] = []
        count = size = 0
        # Even slices: 100 media in slices of 25, not 32 + 32 + 32 + 4 (a small last scan
        # costs nearly what a full one does).
        total = sum(len(job.message.media) for job in jobs if job.message is not None)
        pieces = max(1, -(-total // max(1, self.options.scan_batch)))
        most = -(-total // pieces)
        for job in jobs:
            assert job.message is not None
            refs = job.message.media
            announced = sum(ref.file_size or 0 for ref in refs)
            if current and (
                count + len(refs) > most or size + announced > self.options.scan_batch_bytes
            ):
                slices.append(current)
                current, count, size = [], 0, 0
            current.append(job)
            count += len(refs)
            size += announced
        if current:
            slices.append(current)
        return slices

    async def _scan(self, jobs: list[_Job], groups: dict[int, GroupSettings]) -> None:
        """Fetch and scan the media of ``jobs`` (in update order), slice by slice: the next
        slice's files download while this one is scanned; the answers land on the jobs."""
        slices = self._slices(jobs)

        def fetch(part: list[_Job]) -> list[asyncio.Task[list[IncomingMedia | None]]]:
            return [
                asyncio.ensure_future(self._fetch_media(job, groups[job.message.chat.id]))
                for job in part
                if job.message is not None
            ]

        ahead = fetch(slices[0]) if slices else []
        started = list(ahead)
        try:
            for n, part in enumerate(slices):
                downloading = ahead
                ahead = fetch(slices[n + 1]) if n + 1 < len(slices) else []
                started.extend(ahead)
                for job, task in zip(part, downloading, strict=True):
                    job.media = await task
                fetched = [media for job in part for media in job.media if media is not None]
                answers = iter(await self._receive_many(fetched))
                for job in part:
                    job.answers = [next(answers) for media in job.media if media is not None]
        finally:  # a crash mid-batch: no download goes on without its batch
            for task in started:
                if not task.done():
                    task.cancel()

    async def _receive_many(self, media: list[IncomingMedia]) -> list[Decision | RedressError]:
        """The sink's answers for ``media``, in order: in one call when the sink scans
        batches; otherwise item by item, chats side by side and each chat's in order."""
        if not media:
            return []
        if isinstance(self.sink, BatchMediaSink):
            try:
                return await self.sink.receive_many(media)
            except Exception as exc:  # noqa: BLE001 - the batch is recorded, never a crash
                _log.exception("the sink failed a batch of %d items", len(media))
                return [_scan_error(exc, self.api)] * len(media)
        answers: list[Decision | RedressError | None] = [None] * len(media)
        lanes: dict[int, list[int]] = {}
        for n, item in enumerate(media):
            lanes.setdefault(item.message.chat_id, []).append(n)

        async def lane(indexes: list[int]) -> None:
            async with self._slots:
                for n in indexes:
                    try:
                        answers[n] = await self.sink.receive(media[n])
                    except RedressError as exc:
                        answers[n] = exc
                    except Exception as exc:  # noqa: BLE001 - recorded, never a crash
                        _log.exception("the sink failed an item")
                        answers[n] = _scan_error(exc, self.api)

        await asyncio.gather(*(lane(indexes) for indexes in lanes.values()))
        return [a for a in answers if a is not None]

    async def _fetch_media(self, job: _Job, group: GroupSettings) -> list[IncomingMedia | None]:
        msg = job.message
        assert msg is not None
        facts = _facts(job.raw_json, msg)
        origin = MediaOrigin.EDIT if job.is_edit else MediaOrigin.ARRIVAL
        return [
            await self._fetch(ref, facts, origin, group.banks, job.pending) for ref in msg.media
        ]

    async def _guarded(self, job: _Job, groups: dict[int, GroupSettings]) -> None:
        assert job.message is not None
        try:
            await self._message(job, groups[job.message.chat.id])
        except MalformedUpdateError as exc:
            job.pending.add(RecordKind.MALFORMED, error=exc.message, raw=_short(job.raw))
        except Exception as exc:  # noqa: BLE001 - one bad update must not stop the guard
            _log.exception("unexpected failure handling update %s", job.pending.update_id)
            job.pending.add(
                RecordKind.MALFORMED,
                error=f"{type(exc).__name__}: {self.api.redact(str(exc))}",
                raw=_short(job.raw),
            )

    # -- the database: a few statements per batch, in a worker thread ------------

    def _read(
        self, keys: list[tuple[int, int, int]], chat_ids: list[int]
    ) -> tuple[set[tuple[int, int, int]], dict[int, GroupSettings]]:
        with self._sessions() as session:
            store = TelegramStore(session)
            return store.processed_among(keys), {c: store.group(c) for c in chat_ids}

    def _commit_batch(
        self,
        jobs: list[_Job],
        planned: list[PlannedAction],
        journal: str | None,
        next_offset: int | None,
    ) -> None:
        with self._sessions.begin() as session:
            store = TelegramStore(session)
            store.record_many([row for job in jobs for row in job.pending.rows])
            store.mark_processed_many(
                [job.key for job in jobs if job.key is not None and not job.duplicate]
            )
            if journal is not None:
                store.put_journal(journal, json.dumps([a.to_json() for a in planned]))
            if next_offset is not None and self.bot_id is not None:
                store.set_offset(self.bot_id, next_offset)

    def _commit_actions(self, rows: list[RecordIn], journal: str) -> None:
        with self._sessions.begin() as session:
            store = TelegramStore(session)
            store.record_many(rows)
            store.drop_journal(journal)

    # -- one message -----------------------------------------------------------

    async def _message(self, job: _Job, group: GroupSettings) -> None:
        msg, pending = job.message, job.pending
        assert msg is not None
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
            await self._report(job.raw_json, msg, group, pending)
            return
        if not group.enabled:
            pending.add(RecordKind.SKIPPED, reason="group disabled", **where)
            return
        await self._check_rights(msg.chat.id, pending)
        if not msg.media:
            if not _CONTENT_KEYS.intersection(msg.raw):
                kinds = sorted(k for k in msg.raw if k not in {"message_id", "date", "chat"})
                pending.add(RecordKind.SKIPPED, reason="no media", keys=kinds[:12], **where)
            return
        assert job.answers is not None  # scanned with its batch (see _scans)
        facts = _facts(job.raw_json, msg)
        origin = MediaOrigin.EDIT if job.is_edit else MediaOrigin.ARRIVAL
        decisions: list[Decision] = []
        answers = iter(job.answers)
        for ref, media in zip(msg.media, job.media, strict=True):
            if media is None:
                continue
            decision = next(answers)
            if isinstance(decision, RedressError):
                pending.add(
                    RecordKind.SCAN_FAILED,
                    code=decision.code,
                    error=decision.message,
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
        self._plan(msg, group, decisions, pending)

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
                async with self._fetching:  # bounded: memory, and the Bot API's patience
                    file = await self.api.get_file(ref.file_id)
                    content = await self.api.download(file)
        except FileTooBigError:
            content = TooLarge(ref.file_size, limit, reason)
        except Exception as exc:  # noqa: BLE001 - one file's failure is a record, never a crash
            if not isinstance(exc, BotApiError | BotApiNetworkError | MalformedUpdateError):
                _log.exception("unexpected failure fetching a file")
                exc = TelegramError(f"{type(exc).__name__}: {self.api.redact(str(exc))}")
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

    def _plan(
        self, msg: Message, group: GroupSettings, decisions: list[Decision], pending: _Pending
    ) -> None:
        """The actions the decisions call for and the group allows, in the order they run."""
        acting = [d for d in decisions if d.outcome is Outcome.ACT]
        if not acting:
            return
        wanted = {a for d in acting for a in d.actions if a in group.outcomes}
        evidence = tuple(d.evidence_ref for d in acting if d.evidence_ref)
        chat_id = msg.chat.id
        sender = msg.sender
        user_id = sender.id if sender is not None and sender.id is not None else None

        def plan(action: ActionKind, **extra: Any) -> None:
            pending.actions.append(
                PlannedAction(
                    pending.update_id,
                    chat_id,
                    msg.message_id,
                    msg.media_group_id,
                    action,
                    evidence=evidence,
                    **extra,
                )
            )

        if ActionKind.DELETE_MESSAGE in wanted:
            if evidence:
                plan(ActionKind.DELETE_MESSAGE)
            else:  # never destroy what has not been preserved
                pending.add(
                    RecordKind.ALERT,
                    action=str(ActionKind.DELETE_MESSAGE),
                    code="evidence_missing",
                    error="the sink returned no evidence reference; the message was not deleted",
                    chat_id=chat_id,
                    message_id=msg.message_id,
                    media_group_id=msg.media_group_id,
                )
        user_is_person = user_id is not None and user_id > 0  # chats (sender_chat) are negative
        if ActionKind.BAN_SENDER in wanted and user_is_person:
            plan(ActionKind.BAN_SENDER, user_id=user_id)
        elif ActionKind.RESTRICT_SENDER in wanted and user_is_person:
            plan(ActionKind.RESTRICT_SENDER, user_id=user_id)
        if ActionKind.POST_NOTICE in wanted:
            album = (chat_id, msg.media_group_id) if msg.media_group_id else None
            if album is None or album not in self._noticed_albums:
                notice = group.notice_text or text("notice", group.language)
                plan(ActionKind.POST_NOTICE, text=notice)
                if album is not None:  # one notice per album, not one per item
                    self._noticed_albums[album] = None
                    while len(self._noticed_albums) > 10_000:
                        self._noticed_albums.popitem(last=False)

    async def _perform(
        self, planned: list[PlannedAction], *, resumed: bool = False
    ) -> list[list[RecordIn]]:
        """Carry out planned actions (chats side by side, each chat's in order); return
        each action's records, aligned with ``planned``."""
        done: list[list[RecordIn]] = [[] for _ in planned]
        lanes: dict[int, list[int]] = {}
        for n, action in enumerate(planned):
            lanes.setdefault(action.chat_id, []).append(n)

        async def lane(indexes: list[int]) -> None:
            async with self._slots:
                for n in indexes:
                    done[n].append(await self._carry_out(planned[n], resumed))

        await asyncio.gather(*(lane(indexes) for indexes in lanes.values()))
        return done

    async def _carry_out(self, planned: PlannedAction, resumed: bool) -> RecordIn:
        action, chat_id = planned.action, planned.chat_id
        where: dict[str, Any] = {
            "chat_id": chat_id,
            "message_id": planned.message_id,
            "media_group_id": planned.media_group_id,
        }
        if resumed:
            where["resumed"] = True  # decided before a restart, carried out after it
        try:
            if action is ActionKind.DELETE_MESSAGE:
                await self.api.delete_message(chat_id, planned.message_id)
            elif action is ActionKind.BAN_SENDER and planned.user_id is not None:
                await self.api.ban_chat_member(chat_id, planned.user_id)
            elif action is ActionKind.RESTRICT_SENDER and planned.user_id is not None:
                await self.api.restrict_chat_member(chat_id, planned.user_id)
            elif action is ActionKind.POST_NOTICE:
                await self.api.send_message(chat_id, planned.text or text("notice", None))
        except Exception as exc:  # noqa: BLE001 - a failed action is an alert, never a crash
            if not isinstance(exc, TelegramError):
                _log.exception("unexpected failure carrying out %s", action)
                exc = TelegramError(f"{type(exc).__name__}: {self.api.redact(str(exc))}")
            gone = (
                resumed
                and action is ActionKind.DELETE_MESSAGE
                and isinstance(exc, BotApiError)
                and exc.error_code == 400
                and "not found" in exc.message
            )
            if not gone:
                detail = {"action": str(action), "code": exc.code, "error": exc.message}
                detail["hint"] = _hint(action, exc)
                return _record(RecordKind.ALERT, planned.update_id, {**detail, **where})
            where["note"] = "already gone: deleted before the restart"
        return _record(
            RecordKind.ACTION,
            planned.update_id,
            {
                "action": str(action),
                "user_id": planned.user_id,
                "evidence": list(planned.evidence),
                **where,
            },
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

    async def _report(
        self, raw: str, msg: Message, group: GroupSettings, pending: _Pending
    ) -> None:
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
        for ref in target.media:
            item = await self._fetch(ref, facts, MediaOrigin.REPORT, group.banks, pending)
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


@contextlib.asynccontextmanager
async def _all_locked(locks: list[asyncio.Lock]) -> AsyncIterator[None]:
    """Hold every lock (taken in the caller's order: sorted by chat, so no deadlock)."""
    async with contextlib.AsyncExitStack() as stack:
        for lock in locks:
            await stack.enter_async_context(lock)
        yield


def _scan_error(exc: Exception, api: BotApiClient) -> RedressError:
    """An unexpected failure of the sink, as the error recorded for the item."""
    if isinstance(exc, RedressError):
        return exc
    return RedressError(f"{type(exc).__name__}: {api.redact(str(exc))}", code="scan_failed")


def _hint(action: ActionKind, exc: RedressError) -> str:
    if isinstance(exc, BotApiError) and exc.error_code in {400, 403}:
        if action is ActionKind.DELETE_MESSAGE:
            return "make the bot an admin with the 'Delete messages' right"
        if action in {ActionKind.BAN_SENDER, ActionKind.RESTRICT_SENDER}:
            return "make the bot an admin with the 'Ban users' right"
        return "the bot may not post in this chat"
    if isinstance(exc, BotApiNetworkError):
        return "the Bot API could not be reached; the action was not retried"
    return "the Bot API's answer was not understood; the action was not retried"


def _short(raw: Any) -> str:
    try:
        textual = json.dumps(raw, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        textual = repr(raw)
    return textual[:2000]
