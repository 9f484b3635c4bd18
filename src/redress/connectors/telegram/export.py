"""Import a Telegram Desktop export ("Export chat history" / "Export Telegram data", JSON).

Both shapes are read:

* a single-chat export: ``result.json`` is ``{"name", "type", "id", "messages": [...]}``;
* a full-account export: ``{"about", "personal_information", ..., "chats": {"about",
  "list": [chat, ...]}, "left_chats": {"list": [...]}}``, each chat shaped as above.

``result.json`` is streamed with ``ijson`` (one message object in memory at a
time), so exports of millions of messages import in constant memory. Each
message's media (``"photo": "photos/photo_1@...jpg"``, or ``"file":
"video_files/..."`` with ``"media_type"`` / ``"mime_type"``) is read from beside
``result.json`` and handed to the same :class:`MediaSink` as the bot. Media the
export left out (``"(File not included. Change data exporting settings to
download.)"``), files that are absent or unreadable, and paths that leave the
export folder (``../../etc/passwd``) become records; the import continues.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import enum
import json
import os
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import IO, Any

import ijson

from redress.connectors.interfaces import (
    BatchMediaSink,
    Decision,
    IncomingMedia,
    MediaKind,
    MediaOrigin,
    MediaSink,
    MessageFacts,
    Outcome,
    Person,
    TooLarge,
)
from redress.connectors.telegram.errors import ExportError, ExportPathError
from redress.errors import RedressError

_MESSAGE_PREFIXES = (
    "messages.item",
    "chats.list.item.messages.item",
    "left_chats.list.item.messages.item",
)
_CHAT_PREFIXES = ("", "chats.list.item", "left_chats.list.item")
_CHAT_FIELDS = ("name", "type", "id")
_SCALARS = frozenset({"string", "number", "boolean", "null"})
_NOT_INCLUDED = "(File "  # "(File not included. ...)" / "(File exceeds maximum size. ...)"
_FILE_KINDS = {
    "video_file": MediaKind.VIDEO,
    "animation": MediaKind.ANIMATION,
    "video_message": MediaKind.VIDEO_NOTE,
    "sticker": MediaKind.STICKER,
}
_SUPERGROUPS = frozenset(
    {"private_supergroup", "public_supergroup", "private_channel", "public_channel"}
)


class ExportRecordKind(enum.StrEnum):
    """What an :class:`ExportRecord` says."""

    MATCH = "match"  # the sink decided act or review
    SCANNED = "scanned"  # the sink found nothing
    MISSING = "missing"  # the export left the file out, or it is not on disk
    TOO_LARGE = "too_large"  # over REDRESS_MAX_FILE_BYTES
    UNREADABLE = "unreadable"  # the sink could not read it (corrupt) or the disk failed
    UNSAFE_PATH = "unsafe_path"  # the path leaves the export folder: refused


@dataclass(frozen=True, slots=True)
class ExportChat:
    """The chat a message belongs to, as the export names it."""

    id: int | None
    name: str | None
    type: str | None

    @property
    def bot_api_id(self) -> int:
        """The chat id as the Bot API writes it (-100... for supergroups and channels)."""
        if self.id is None:
            return 0
        bare = abs(self.id)
        if self.id < 0 and str(bare).startswith("100") and bare > 10**12:
            bare = int(str(bare)[3:])  # already in Bot API form (-100...)
        if self.type in _SUPERGROUPS:
            return int(f"-100{bare}")
        if self.type == "private_group":
            return -bare
        return bare

    def link(self, message_id: int, username: str | None) -> str | None:
        """``https://t.me/<username>/<id>`` when public, ``https://t.me/c/<id>/<msg>`` else."""
        if self.type not in _SUPERGROUPS:
            return None  # basic groups and private chats have no message links
        if username:
            return f"https://t.me/{username}/{message_id}"
        return f"https://t.me/c/{str(self.bot_api_id).removeprefix('-100')}/{message_id}"


@dataclass(frozen=True, slots=True)
class ExportRecord:
    """One finding of an import, for the JSON-lines report."""

    kind: ExportRecordKind
    chat_id: int
    chat_name: str | None
    message_id: int
    link: str | None
    date: str | None
    sender: str | None
    sender_id: str | None
    path: str | None
    media_kind: str | None
    outcome: str | None = None
    matches: tuple[str, ...] = ()
    evidence_ref: str | None = None
    forwarded_from: str | None = None
    detail: str | None = None

    def to_json(self) -> str:
        """One JSON line."""
        return json.dumps(asdict(self), ensure_ascii=False)


@dataclass(slots=True)
class ImportTally:
    """Running counts, for the progress bar and the summary."""

    bytes_read: int = 0
    bytes_total: int = 0
    messages: int = 0
    media: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)

    def count(self, kind: ExportRecordKind) -> None:
        """Count one record."""
        self.by_kind[str(kind)] = self.by_kind.get(str(kind), 0) + 1


def iter_messages(stream: IO[bytes]) -> Iterator[tuple[ExportChat, dict[str, Any]]]:
    """Yield ``(chat, message)`` from a ``result.json`` stream, one message in memory at a time.

    Telegram Desktop writes a chat's ``name``, ``type`` and ``id`` before its
    ``messages``, which is what lets a streaming reader attach them.
    """
    chat: dict[str, Any] = {}
    current = ExportChat(None, None, None)
    builder: Any = None
    depth = 0
    try:
        for prefix, event, value in ijson.parse(stream, use_float=True):
            if builder is not None:
                builder.event(event, value)
                if event in ("start_map", "start_array"):
                    depth += 1
                elif event in ("end_map", "end_array"):
                    depth -= 1
                    if depth == 0:
                        if isinstance(builder.value, dict):
                            yield current, builder.value
                        builder = None
                continue
            if event == "start_map" and prefix in _MESSAGE_PREFIXES:
                builder = ijson.ObjectBuilder()
                builder.event(event, value)
                depth = 1
                continue
            if event == "start_map" and prefix in _CHAT_PREFIXES[1:]:
                chat = {}
                current = ExportChat(None, None, None)
            elif event in _SCALARS:
                head, _, name = prefix.rpartition(".")
                if name in _CHAT_FIELDS and head in _CHAT_PREFIXES:
                    chat[name] = value
                    chat_id = chat.get("id")
                    current = ExportChat(
                        int(chat_id) if isinstance(chat_id, int | float) else None,
                        chat.get("name") if isinstance(chat.get("name"), str) else None,
                        chat.get("type") if isinstance(chat.get("type"), str) else None,
                    )
    except ijson.JSONError as exc:
        raise ExportError(f"result.json is not valid JSON: {exc}") from exc


def safe_media_path(root: Path, relative: str) -> Path:
    """``root / relative``, refusing absolute paths and anything that leaves ``root``."""
    if not relative or "\x00" in relative:
        raise ExportPathError(f"empty or invalid media path {relative!r}")
    posix, windows = PurePosixPath(relative), PureWindowsPath(relative)
    if posix.is_absolute() or windows.is_absolute() or windows.drive or ".." in windows.parts:
        raise ExportPathError(f"media path {relative!r} leaves the export folder: refused")
    resolved = (root / posix).resolve()
    if not resolved.is_relative_to(root.resolve()):  # a symlink pointing out
        raise ExportPathError(f"media path {relative!r} resolves outside the export folder")
    return resolved


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        return value or None
    if isinstance(value, list):
        parts = [
            p if isinstance(p, str) else str(p.get("text", ""))
            for p in value
            if isinstance(p, str | dict)
        ]
        return "".join(parts) or None
    return None


def _date(message: dict[str, Any]) -> dt.datetime:
    stamp = message.get("date_unixtime")
    if isinstance(stamp, str) and stamp.isdigit():
        return dt.datetime.fromtimestamp(int(stamp), dt.UTC)
    text = message.get("date")
    if isinstance(text, str):
        try:  # older exports: local time of the exporting computer, no zone
            return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)
        except ValueError:
            pass
    return dt.datetime.fromtimestamp(0, dt.UTC)


def _media_of(message: dict[str, Any]) -> tuple[MediaKind, str, str | None] | None:
    photo = message.get("photo")
    if isinstance(photo, str):
        return MediaKind.PHOTO, photo, "image/jpeg"
    path = message.get("file")
    if not isinstance(path, str):
        return None
    mime = message.get("mime_type") if isinstance(message.get("mime_type"), str) else None
    media_type = message.get("media_type")
    if isinstance(media_type, str):
        kind = _FILE_KINDS.get(media_type)
        if (
            kind is MediaKind.STICKER
            and not (mime or "").startswith("image/")
            and not path.endswith(".webp")
        ):
            return None  # animated (.tgs) and video (.webm) stickers are not images
        return (kind, path, mime) if kind is not None else None  # voice, audio: not scanned
    if (mime or "").startswith(("image/", "video/")):
        return MediaKind.DOCUMENT, path, mime
    return None


class ExportImporter:
    """Streams an export folder through a :class:`MediaSink`."""

    def __init__(
        self,
        sink: MediaSink,
        *,
        usernames: Mapping[int, str] | None = None,
        max_file_bytes: int = 2 * 1024**3,
        banks: tuple[str, ...] = (),
        concurrency: int = 4,
        scan_batch: int = 32,
        scan_batch_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        self.sink = sink
        self.concurrency = max(1, concurrency)
        self.scan_batch = max(1, scan_batch)
        self.scan_batch_bytes = scan_batch_bytes
        self.usernames = dict(usernames or {})
        self.max_file_bytes = max_file_bytes
        self.banks = banks

    async def run(
        self, folder: Path, on_progress: Callable[[ImportTally], None] | None = None
    ) -> AsyncIterator[ExportRecord]:
        """Yield one record per media item found, in export order."""
        result = folder / "result.json"
        if not result.is_file():
            raise ExportError(f"{folder} has no result.json (export with the JSON format)")
        root = folder.resolve()
        tally = ImportTally(bytes_total=result.stat().st_size)
        try:
            stream = result.open("rb")
        except OSError as exc:
            raise ExportError(f"cannot open {result}: {exc.strerror}") from exc
        with stream:
            messages = self._media_messages(stream, tally, on_progress)
            records = (
                self._in_slices(root, messages, self.sink)
                if isinstance(self.sink, BatchMediaSink)
                else self._in_window(root, messages)
            )
            # Closed here, not when collected: a consumer that stops early cancels the
            # scans in flight at once.
            async with contextlib.aclosing(records):
                async for record in records:
                    yield self._counted(record, tally)
            tally.bytes_read = tally.bytes_total
            if on_progress is not None:
                on_progress(tally)

    @staticmethod
    def _media_messages(
        stream: IO[bytes],
        tally: ImportTally,
        on_progress: Callable[[ImportTally], None] | None,
    ) -> Iterator[tuple[ExportChat, dict[str, Any]]]:
        for chat, message in iter_messages(stream):
            tally.messages += 1
            if message.get("type", "message") == "message" and _media_of(message):
                yield chat, message
            if on_progress is not None and tally.messages % 200 == 0:
                tally.bytes_read = stream.tell()
                on_progress(tally)

    async def _in_window(
        self, root: Path, messages: Iterator[tuple[ExportChat, dict[str, Any]]]
    ) -> AsyncGenerator[ExportRecord, None]:
        # A small window of items in flight (hashing runs in worker threads); records
        # still come out in export order, and memory stays bounded by the window.
        window: deque[asyncio.Task[ExportRecord]] = deque()
        try:
            for chat, message in messages:
                window.append(asyncio.create_task(self._message(root, chat, message)))
                if len(window) >= self.concurrency:
                    yield await window.popleft()
            while window:
                yield await window.popleft()
        finally:
            for task in window:  # the consumer stopped early, or parsing failed
                task.cancel()

    async def _in_slices(
        self,
        root: Path,
        messages: Iterator[tuple[ExportChat, dict[str, Any]]],
        sink: BatchMediaSink,
    ) -> AsyncGenerator[ExportRecord, None]:
        # Slices of ``scan_batch`` files (at most ``scan_batch_bytes`` read) go to the
        # sink in one call: a batch costs a third of the transactions of one-by-one
        # scans. Records come out in export order; memory is bounded by one slice.
        slice_: list[ExportRecord | _Prepared] = []
        count = size = 0
        for chat, message in messages:
            prepared = self._prepare(root, chat, message)
            slice_.append(prepared)
            if isinstance(prepared, _Prepared):
                count += 1
                content = prepared.media.content
                size += len(content) if isinstance(content, bytes) else 0
            if count >= self.scan_batch or size >= self.scan_batch_bytes:
                for record in await self._settle_slice(slice_, sink):
                    yield record
                slice_, count, size = [], 0, 0
        for record in await self._settle_slice(slice_, sink):
            yield record

    @staticmethod
    async def _settle_slice(
        slice_: list[ExportRecord | _Prepared], sink: BatchMediaSink
    ) -> list[ExportRecord]:
        pending = [p for p in slice_ if isinstance(p, _Prepared)]
        answers = iter(await sink.receive_many([p.media for p in pending]) if pending else [])
        return [p if isinstance(p, ExportRecord) else p.settle(next(answers)) for p in slice_]

    @staticmethod
    def _counted(record: ExportRecord, tally: ImportTally) -> ExportRecord:
        tally.media += 1
        tally.count(record.kind)
        return record

    async def _message(self, root: Path, chat: ExportChat, message: dict[str, Any]) -> ExportRecord:
        prepared = self._prepare(root, chat, message)
        if isinstance(prepared, ExportRecord):
            return prepared
        try:
            answer: Decision | RedressError = await self.sink.receive(prepared.media)
        except RedressError as exc:
            answer = exc
        return prepared.settle(answer)

    def _prepare(
        self, root: Path, chat: ExportChat, message: dict[str, Any]
    ) -> ExportRecord | _Prepared:
        """The message's media, read and ready for the sink, or its record when it cannot
        be scanned (missing, unsafe path, unreadable)."""
        found = _media_of(message)
        assert found is not None  # the caller checked
        kind, relative, mime = found
        message_id = message.get("id") if isinstance(message.get("id"), int) else 0
        assert isinstance(message_id, int)
        username = self.usernames.get(chat.id or 0) or self.usernames.get(chat.bot_api_id)
        sender_name = message.get("from") if isinstance(message.get("from"), str) else None
        sender_ref = message.get("from_id") if isinstance(message.get("from_id"), str) else None
        digits = "".join(c for c in (sender_ref or "") if c.isdigit())
        date = _date(message)
        forwarded = (
            message.get("forwarded_from")
            if isinstance(message.get("forwarded_from"), str)
            else None
        )
        base = ExportRecord(
            kind=ExportRecordKind.SCANNED,
            chat_id=chat.bot_api_id,
            chat_name=chat.name,
            message_id=message_id,
            link=chat.link(message_id, username),
            date=date.isoformat(),
            sender=sender_name,
            sender_id=sender_ref,
            path=relative,
            media_kind=str(kind),
            forwarded_from=forwarded,
        )
        if relative.startswith(_NOT_INCLUDED):
            return replace(base, kind=ExportRecordKind.MISSING, detail=relative)
        try:
            path = safe_media_path(root, relative)
        except ExportPathError as exc:
            return replace(base, kind=ExportRecordKind.UNSAFE_PATH, detail=exc.message)
        content: bytes | TooLarge
        try:
            size = path.stat().st_size
            if size > self.max_file_bytes:
                content = TooLarge(size, self.max_file_bytes, "over REDRESS_MAX_FILE_BYTES")
            else:
                content = path.read_bytes()
        except FileNotFoundError:
            return replace(
                base, kind=ExportRecordKind.MISSING, detail="listed in result.json but absent"
            )
        except OSError as exc:
            return replace(
                base, kind=ExportRecordKind.UNREADABLE, detail=f"cannot read: {exc.strerror}"
            )
        facts = MessageFacts(
            platform="telegram",
            chat_id=chat.bot_api_id,
            chat_title=chat.name,
            chat_type=chat.type or "unknown",
            message_id=message_id,
            link=base.link,
            sender=Person(int(digits) if digits else None, sender_name or sender_ref or "unknown"),
            date=date,
            edit_date=(
                dt.datetime.fromtimestamp(int(message["edited_unixtime"]), dt.UTC)
                if str(message.get("edited_unixtime", "")).isdigit()
                else None
            ),
            forward_origin=forwarded,
            caption=_text(message.get("text")),
            has_protected_content=False,
            raw=json.dumps(message, ensure_ascii=False, default=str),
        )
        media = IncomingMedia(
            kind=kind,
            origin=MediaOrigin.IMPORT,
            message=facts,
            content=content,
            file_name=os.path.basename(relative),
            mime_type=mime,
            platform_file_id=relative,
            banks=self.banks,
        )
        return _Prepared(base, media)


@dataclass(frozen=True, slots=True)
class _Prepared:
    """A media message read from the export, waiting for the sink's answer."""

    base: ExportRecord
    media: IncomingMedia

    def settle(self, answer: Decision | RedressError) -> ExportRecord:
        """The message's record, given the sink's decision or the error it raised."""
        base = self.base
        if isinstance(answer, RedressError):
            return replace(
                base, kind=ExportRecordKind.UNREADABLE, detail=f"[{answer.code}] {answer.message}"
            )
        if isinstance(self.media.content, TooLarge):
            return replace(
                base,
                kind=ExportRecordKind.TOO_LARGE,
                outcome=str(answer.outcome),
                detail=self.media.content.reason,
            )
        record_kind = (
            ExportRecordKind.SCANNED if answer.outcome is Outcome.IGNORE else ExportRecordKind.MATCH
        )
        return replace(
            base,
            kind=record_kind,
            outcome=str(answer.outcome),
            matches=answer.matches,
            evidence_ref=answer.evidence_ref,
            detail=answer.reason or None,
        )
