"""Hash-list exchange: StopNCII JSON, Hasher-Matcher-Actioner CSV, Meta's vPDQ text.

Formats
-------
``stopncii``
    The shape of StopNCII's ``FetchHashes`` response: an object whose
    ``hashRecords`` array holds records ``{"signalType": "ImagePDQ" |
    "VideoMD5", "hashValue": hex, "hashStatus": status, "caseNumbers":
    {case: status}, "lastModtimestamp": unix, "CSPFeedbacks": [...]}``; or
    JSON Lines with one such record per line. A record is a deletion when its
    cases are all Withdrawn/Deleted (or, with no cases, when ``hashStatus``
    is), and a later record for the same hash replaces an earlier one.
``hma-csv``
    Hasher-Matcher-Actioner's bank/dataset CSV: no header, one row per
    signal ``hash,id,time,tags`` (tags space-separated; only the hash is
    required). The signal type comes from ``--signal-type`` or from the hash
    length: 64 hex digits are PDQ, 32 are MD5 (HMA's ``video_md5``).
``vpdq``
    Meta's vPDQ text: one line per frame, ``frame_number,quality,pdq_hex,
    timestamp_seconds``. One file is one video entry.

Imports are streamed and checkpointed: every chunk is applied in one
transaction together with the checkpoint row that says how far the file has
been read, so an import killed at any moment resumes where the last commit
left it and never applies a row twice. Malformed rows are reported with
their line numbers and skipped, or, with ``strict``, the whole file is
checked first and rejected without applying anything.
"""

from __future__ import annotations

import csv
import datetime as dt
import enum
import hashlib
import io
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, BinaryIO, NamedTuple, TextIO

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from redress.errors import RedressError
from redress.signals.types import PdqHash, SignalKind
from redress.store.errors import (
    BadHashError,
    ImportProblem,
    ImportRejectedError,
    UnknownSignalTypeError,
)
from redress.store.interfaces import (
    AuditAction,
    CaseStatus,
    EntryIn,
    EntryRead,
    EntrySource,
    JsonObject,
    VpdqFrameIn,
)
from redress.store.models import CaseEntry, ImportCheckpoint, VictimCase, utcnow
from redress.store.service import RetroMatcher
from redress.store.store import SqlAuditLog, SqlBankStore, bulk_upsert_hashes

_HEX = frozenset("0123456789abcdefABCDEF")
_MAX_RECORD_CHARS = 8 * 1024 * 1024
_STOPNCII_TYPES = {"ImagePDQ": SignalKind.PDQ, "VideoMD5": SignalKind.MD5}
_STOPNCII_NAMES = {v: k for k, v in _STOPNCII_TYPES.items()}
_STOPNCII_KNOWN = {"Unknown", "VideoTMK", "Text", "URL"}
_CLOSED = {CaseStatus.WITHDRAWN.value, CaseStatus.DELETED.value}
_OPEN = {CaseStatus.RECEIVED.value, CaseStatus.ACTIVE.value}
_HEX_LENGTH = {SignalKind.PDQ: 64, SignalKind.MD5: 32, SignalKind.SHA256: 64}
_SIGNAL_NAMES = {
    "pdq": SignalKind.PDQ,
    "md5": SignalKind.MD5,
    "video_md5": SignalKind.MD5,
    "sha256": SignalKind.SHA256,
}


class ExchangeFormat(enum.StrEnum):
    """The hash-list formats Redress reads and writes."""

    STOPNCII = "stopncii"
    HMA_CSV = "hma-csv"
    VPDQ = "vpdq"


class ParsedRecord(NamedTuple):
    """One well-formed record: a hash to add, or (``delete``) one to remove.

    Single hashes (pdq, md5, sha256) travel as plain fields, with their
    metadata already encoded as JSON, because imports create millions of
    them; a pdq-set or vpdq record carries its :class:`EntryIn` in ``entry``.
    """

    line: int
    kind: SignalKind
    value: bytes
    external_id: str | None = None
    meta_json: str | None = None
    delete: bool = False
    quality: int | None = None
    entry: EntryIn | None = None


Parsed = ParsedRecord | ImportProblem


def parse_hex(text: str, kind: SignalKind) -> bytes:
    """Parse a hash of ``kind`` from hex, with a clear error for the wrong length or digits."""
    value = text.strip()
    want = _HEX_LENGTH[kind]
    if len(value) != want:
        raise BadHashError(f"a {kind.value} hash is {want} hex digits; got {len(value)}")
    if not _HEX.issuperset(value):
        raise BadHashError(f"a {kind.value} hash may contain only hex digits 0-9a-f")
    return bytes.fromhex(value)


def signal_kind(name: str) -> SignalKind:
    """A signal type by Redress's or HMA's name; :class:`UnknownSignalTypeError` otherwise."""
    key = name.strip().lower()
    if key in _SIGNAL_NAMES:
        return _SIGNAL_NAMES[key]
    try:
        return SignalKind(key)
    except ValueError:
        raise UnknownSignalTypeError(
            f"unknown signal type {name!r}; known: pdq, pdq-set, vpdq, md5 (video_md5), sha256"
        ) from None


# --- StopNCII -----------------------------------------------------------------------------


def stopncii_record(line: int, record: Any) -> Parsed:
    """Turn one StopNCII hash record into an entry (or deletion), or a problem."""
    if not isinstance(record, dict):
        return ImportProblem(line, "bad_record", "a hash record must be a JSON object")
    type_name = record.get("signalType")
    if not isinstance(type_name, str):
        return ImportProblem(line, "bad_record", "missing signalType")
    kind = _STOPNCII_TYPES.get(type_name)
    if kind is None:
        why = "not stored by Redress" if type_name in _STOPNCII_KNOWN else "unknown"
        return ImportProblem(
            line, "unknown_signal_type", f"signalType {type_name!r} is {why} (ImagePDQ, VideoMD5)"
        )
    value = record.get("hashValue")
    if not isinstance(value, str):
        return ImportProblem(line, "bad_record", "missing hashValue")
    try:
        raw = parse_hex(value, kind)
    except BadHashError as exc:
        return ImportProblem(line, exc.code, exc.message)
    cases = record.get("caseNumbers") or {}
    if not isinstance(cases, dict):
        return ImportProblem(line, "bad_record", "caseNumbers must be an object")
    status = record.get("hashStatus", "Active")
    statuses = {str(s) for s in cases.values()}
    if statuses:
        delete = not (statuses & _OPEN) and statuses <= _CLOSED | {"Unknown"}
        delete = delete and bool(statuses & _CLOSED)
    else:
        delete = status in _CLOSED
    meta: JsonObject = {
        "stopncii": {
            "hashStatus": str(status),
            "caseNumbers": {str(k): str(v) for k, v in cases.items()},
            "lastModtimestamp": record.get("lastModtimestamp"),
        }
    }
    return ParsedRecord(line, kind, raw, value.lower(), json.dumps(meta), delete)


def parse_stopncii(stream: TextIO) -> Iterator[Parsed]:
    """Stream records from a FetchHashes-shaped document or from JSON Lines."""
    decoder = json.JSONDecoder()
    buffer = ""
    line = 1  # line number at buffer[0]
    eof = False

    def fill() -> bool:
        nonlocal buffer, eof
        chunk = stream.read(1 << 20)
        if not chunk:
            eof = True
            return False
        buffer += chunk
        return True

    def skip_ws(pos: int) -> int:
        while True:
            while pos < len(buffer) and buffer[pos] in " \t\r\n,":
                pos += 1
            if pos < len(buffer) or eof or not fill():
                return pos

    pos = skip_ws(0)
    # JSON Lines: the first value is itself a hash record.
    if buffer[pos : pos + 1] == "{":
        while not eof and "\n" not in buffer[pos:] and fill():
            pass
        first_line = buffer[pos:].split("\n", 1)[0]
        try:
            probe = json.loads(first_line)
        except ValueError:
            probe = None
        if isinstance(probe, dict) and "hashValue" in probe:
            yield from _parse_jsonl(buffer, stream)
            return
    marker = '"hashRecords"'
    while marker not in buffer and fill():
        pass
    at = buffer.find(marker)
    if at < 0:
        yield ImportProblem(1, "bad_document", 'no "hashRecords" array found')
        return
    pos = at + len(marker)
    pos = skip_ws(pos)
    if buffer[pos : pos + 1] != ":":
        yield ImportProblem(line + buffer.count("\n", 0, pos), "bad_document", "expected ':'")
        return
    pos = skip_ws(pos + 1)
    if buffer[pos : pos + 1] != "[":
        yield ImportProblem(line + buffer.count("\n", 0, pos), "bad_document", "expected '['")
        return
    pos += 1
    while True:
        pos = skip_ws(pos)
        # Drop what has been consumed so the buffer stays small on huge files.
        line += buffer.count("\n", 0, pos)
        buffer, pos = buffer[pos:], 0
        if not buffer:
            yield ImportProblem(line, "bad_document", "the hashRecords array is not closed")
            return
        if buffer[0] == "]":
            return
        while True:
            try:
                record, end = decoder.raw_decode(buffer, 0)
                break
            except json.JSONDecodeError as exc:
                if eof or len(buffer) > _MAX_RECORD_CHARS or not fill():
                    yield ImportProblem(
                        line + buffer.count("\n", 0, exc.pos),
                        "bad_json",
                        f"{exc.msg}; the rest of the file could not be read",
                    )
                    return
        yield stopncii_record(line, record)
        pos = end


def _parse_jsonl(head: str, rest: TextIO) -> Iterator[Parsed]:
    def lines() -> Iterator[str]:
        pending = head
        while True:
            *complete, pending = pending.split("\n")
            yield from complete
            more = rest.read(1 << 20)
            if not more:
                break
            pending += more
        if pending:
            yield pending

    for number, text in enumerate(lines(), start=1):
        if not text.strip():
            continue
        try:
            record = json.loads(text)
        except ValueError as exc:
            yield ImportProblem(number, "bad_json", str(exc))
            continue
        yield stopncii_record(number, record)


def stopncii_json(record_lines: Iterable[JsonObject], count_hint: int = 0) -> Iterator[str]:
    """Yield a FetchHashes-shaped document piece by piece (records streamed)."""
    yield '{"hashRecords": [\n'
    count = 0
    for record in record_lines:
        yield ("" if count == 0 else ",\n") + json.dumps(record, separators=(",", ":"))
        count += 1
    tail = {
        "count": count,
        "nextPageToken": None,
        "nextSetTimestamp": int(utcnow().timestamp()),
        "hasMoreRecords": False,
    }
    yield "\n], " + json.dumps(tail)[1:] + "\n"


# --- HMA CSV ------------------------------------------------------------------------------


def _csv_rows(stream: TextIO) -> Iterator[list[str] | csv.Error]:
    """CSV rows, with a row the reader refuses (a field over the csv module's size limit)
    given as its error, so that one hostile row is reported and the file carries on."""
    reader = csv.reader(stream)
    while True:
        before = reader.line_num
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield exc
            if reader.line_num == before:  # nothing consumed: stop rather than spin
                return
            continue
        yield row


def parse_hma_csv(stream: TextIO, kind: SignalKind | None = None) -> Iterator[Parsed]:
    """Rows ``hash,id,time,tags``; blank lines and ``#`` comments are skipped."""
    by_length = {64: SignalKind.PDQ, 32: SignalKind.MD5}
    meta_cache: dict[tuple[str, str], str | None] = {}
    for number, row in enumerate(_csv_rows(stream), start=1):
        if isinstance(row, csv.Error):
            yield ImportProblem(number, "bad_record", f"unreadable CSV row: {row}")
            continue
        if not row:
            continue
        value = row[0].strip()
        if not value or value.startswith("#"):
            continue
        row_kind = kind or by_length.get(len(value))
        if row_kind is None:
            if number == 1 and not _HEX.issuperset(value):
                continue  # a header line
            yield ImportProblem(
                number,
                "bad_hash",
                f"{len(value)} characters is neither a PDQ (64 hex) nor an MD5 (32 hex) hash",
            )
            continue
        try:
            # fromhex skips spaces, so a wrong length below also catches embedded blanks.
            raw = bytes.fromhex(value)
        except ValueError:
            raw = b""
        if len(value) != _HEX_LENGTH[row_kind] or len(raw) * 2 != len(value):
            if number == 1 and not _HEX.issuperset(value):
                continue  # a header line
            try:
                parse_hex(value, row_kind)
            except BadHashError as exc:
                yield ImportProblem(number, exc.code, exc.message)
            continue
        width = len(row)
        stamp = row[2].strip() if width > 2 else ""
        tags = row[3].strip() if width > 3 else ""
        key = (stamp, tags)
        meta = meta_cache.get(key, "")
        if meta == "":
            data: JsonObject = {}
            if stamp:
                data["time"] = stamp
            if tags:
                data["tags"] = list(tags.split())
            meta = json.dumps(data) if data else None
            if len(meta_cache) < 10_000:
                meta_cache[key] = meta
        external = row[1].strip() or None if width > 1 else None
        yield ParsedRecord(number, row_kind, raw, external, meta)


def hma_csv_row(entry: EntryRead, tags: Sequence[str]) -> list[str]:
    """One HMA CSV row for a pdq or md5 entry."""
    stamp = entry.added_at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")
    return [entry.value.hex(), entry.external_id or str(entry.id), stamp, " ".join(tags)]


# --- vPDQ text ----------------------------------------------------------------------------


def parse_vpdq_lines(stream: TextIO) -> Iterator[tuple[int, VpdqFrameIn] | ImportProblem]:
    """Frames of Meta's vPDQ text, or a problem per malformed line."""
    for number, text in enumerate(stream, start=1):
        text = text.strip()
        if not text or text.startswith("#"):
            continue
        parts = text.split(",")
        if len(parts) != 4:
            yield ImportProblem(number, "bad_vpdq_line", f"expected 4 fields, got {len(parts)}")
            continue
        try:
            frame, quality, ts = int(parts[0]), int(parts[1]), float(parts[3])
            pdq = PdqHash(parse_hex(parts[2], SignalKind.PDQ), quality)
        except RedressError as exc:  # bad hex, quality outside 0-100
            yield ImportProblem(number, exc.code, exc.message)
            continue
        except ValueError as exc:
            yield ImportProblem(number, "bad_vpdq_line", f"bad number: {exc}")
            continue
        yield number, VpdqFrameIn(frame, pdq, ts)


def parse_vpdq_file(stream: TextIO, name: str = "") -> Iterator[Parsed]:
    """One vpdq entry for the whole file (problems reported per line)."""
    frames: list[VpdqFrameIn] = []
    for item in parse_vpdq_lines(stream):
        if isinstance(item, ImportProblem):
            yield item
        else:
            frames.append(item[1])
    if not frames:
        yield ImportProblem(1, "empty_vpdq", "no frames in the vPDQ file")
        return
    meta: JsonObject = {"file": name} if name else {}
    entry = EntryIn(SignalKind.VPDQ, frames=tuple(frames), metadata=meta)
    yield ParsedRecord(1, SignalKind.VPDQ, b"", entry=entry)


def vpdq_text(frames: Iterable[tuple[int, PdqHash, float]]) -> str:
    """Meta's vPDQ text for frames (frame number, hash, timestamp)."""
    return "".join(f"{n},{h.quality},{h.hex},{ts:.3f}\n" for n, h, ts in frames)


# --- the importer -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ImportReport:
    """What an import did."""

    bank: str
    format: ExchangeFormat
    records: int
    added: int
    duplicates: int
    removed: int
    problems: tuple[ImportProblem, ...]
    problem_count: int
    resumed_at: int
    retro_matches: int


class _CountingReader(io.RawIOBase):
    """Counts the bytes read from a file (the progress bar's position)."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.done = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.raw.read(len(buffer))
        buffer[: len(data)] = data
        self.done += len(data)
        return len(data)


def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes (identifies an import to resume)."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


Progress = Callable[[int, int], None]


@dataclass
class _Counters:
    records: int = 0
    added: int = 0
    duplicates: int = 0
    removed: int = 0
    retro: int = 0
    problem_count: int = 0
    problems: list[ImportProblem] = field(default_factory=list)

    def dump(self) -> JsonObject:
        return {
            "records": self.records,
            "added": self.added,
            "duplicates": self.duplicates,
            "removed": self.removed,
            "retro": self.retro,
            "problem_count": self.problem_count,
            "problems": [[p.line, p.code, p.message] for p in self.problems],
        }

    @classmethod
    def load(cls, data: JsonObject) -> _Counters:
        def num(key: str) -> int:
            value = data.get(key, 0)
            return int(value) if isinstance(value, int | float) else 0

        problems = data.get("problems", [])
        return cls(
            num("records"),
            num("added"),
            num("duplicates"),
            num("removed"),
            num("retro"),
            num("problem_count"),
            [
                ImportProblem(int(p[0]), str(p[1]), str(p[2]))  # type: ignore[arg-type,index]
                for p in (problems if isinstance(problems, list) else [])
            ],
        )


class BankImporter:
    """Streams an exchange file into a bank in checkpointed chunks.

    It owns its transactions (one per chunk), so it takes the engine rather
    than a session. ``retro`` matches each chunk's new entries against the
    seen-media history inside the same transaction.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        retro: RetroMatcher | None = None,
        chunk_size: int = 20_000,
        actor: str = "cli",
        kept_problems: int = 1000,
    ) -> None:
        self.engine = engine
        self.retro = retro
        self.chunk_size = chunk_size
        self.actor = actor
        self.kept_problems = kept_problems

    def _parse(
        self, fmt: ExchangeFormat, stream: TextIO, kind: SignalKind | None, name: str
    ) -> Iterator[Parsed]:
        if fmt is ExchangeFormat.STOPNCII:
            return parse_stopncii(stream)
        if fmt is ExchangeFormat.HMA_CSV:
            return parse_hma_csv(stream, kind)
        return parse_vpdq_file(stream, name)

    def _open(self, path: Path) -> tuple[TextIO, _CountingReader, IO[bytes]]:
        raw = path.open("rb")
        counter = _CountingReader(raw)
        text = io.TextIOWrapper(
            io.BufferedReader(counter), encoding="utf-8", errors="replace", newline=""
        )
        return text, counter, raw

    def run(
        self,
        bank_name: str,
        path: Path,
        fmt: ExchangeFormat,
        *,
        strict: bool = False,
        signal_type: SignalKind | None = None,
        progress: Progress | None = None,
        source: EntrySource = EntrySource.IMPORT,
    ) -> ImportReport:
        """Import ``path`` into ``bank_name``, resuming an interrupted import of the same file."""
        total = path.stat().st_size
        digest = file_digest(path)
        with Session(self.engine) as session:
            bank = SqlBankStore(session).get_bank(bank_name)
        if strict:
            text, _counter, raw = self._open(path)
            with raw:
                problems = [
                    p
                    for p in self._parse(fmt, text, signal_type, path.name)
                    if isinstance(p, ImportProblem)
                ]
            if problems:
                raise ImportRejectedError(problems)
        checkpoint_id, start, counters = self._checkpoint(bank.id, digest, fmt)
        text, counter, raw = self._open(path)
        with raw:
            chunk: list[Parsed] = []
            position = 0
            for item in self._parse(fmt, text, signal_type, path.name):
                position += 1
                if position <= start:
                    continue
                chunk.append(item)
                if len(chunk) >= self.chunk_size:
                    self._apply(bank.id, checkpoint_id, chunk, position, counters, source)
                    chunk = []
                    if progress is not None:
                        progress(counter.done, total)
            self._apply(bank.id, checkpoint_id, chunk, position, counters, source, done=True)
            if progress is not None:
                progress(total, total)
        return ImportReport(
            bank_name,
            fmt,
            counters.records,
            counters.added,
            counters.duplicates,
            counters.removed,
            tuple(counters.problems),
            counters.problem_count,
            start,
            counters.retro,
        )

    def _checkpoint(
        self, bank_id: int, digest: str, fmt: ExchangeFormat
    ) -> tuple[int, int, _Counters]:
        with Session(self.engine) as session:
            row = session.scalar(
                select(ImportCheckpoint).where(
                    ImportCheckpoint.bank_id == bank_id,
                    ImportCheckpoint.file_digest == digest,
                    ImportCheckpoint.format == fmt.value,
                )
            )
            if row is not None and row.status == "running":
                return row.id, row.position, _Counters.load(row.counters)
            if row is None:
                row = ImportCheckpoint(
                    bank_id=bank_id,
                    file_digest=digest,
                    format=fmt.value,
                    position=0,
                    status="running",
                    counters={},
                    started_at=utcnow(),
                    updated_at=utcnow(),
                )
                session.add(row)
            else:  # a finished import of the same file: run it again from the top
                row.position, row.status, row.counters = 0, "running", {}
                row.started_at = utcnow()
            session.commit()
            return row.id, 0, _Counters()

    def _apply(
        self,
        bank_id: int,
        checkpoint_id: int,
        chunk: Sequence[Parsed],
        position: int,
        counters: _Counters,
        source: EntrySource,
        *,
        done: bool = False,
    ) -> None:
        with Session(self.engine) as session:
            # Write first: on SQLite this takes the write lock before anything is read.
            session.execute(
                update(ImportCheckpoint)
                .where(ImportCheckpoint.id == checkpoint_id)
                .values(updated_at=utcnow())
            )
            # Later records for the same hash replace earlier ones (StopNCII's snapshot rule).
            latest: dict[tuple[SignalKind, bytes], ParsedRecord] = {}
            sets: list[EntryIn] = []
            singles = 0
            for item in chunk:
                if isinstance(item, ImportProblem):
                    counters.problem_count += 1
                    if len(counters.problems) < self.kept_problems:
                        counters.problems.append(item)
                    continue
                counters.records += 1
                if item.entry is not None:
                    sets.append(item.entry)
                    continue
                singles += 1
                key = (item.kind, item.value)
                latest.pop(key, None)
                latest[key] = item
            counters.duplicates += singles - len(latest)
            added_ids: list[int] = []
            store = SqlBankStore(session)
            for kind in (SignalKind.PDQ, SignalKind.MD5, SignalKind.SHA256):
                adds = [r for r in latest.values() if r.kind is kind and not r.delete]
                dels = [r.value for r in latest.values() if r.kind is kind and r.delete]
                if adds:
                    added = bulk_upsert_hashes(
                        session,
                        bank_id,
                        kind,
                        [r.value for r in adds],
                        [r.quality for r in adds],
                        [r.external_id for r in adds],
                        source,
                        [r.meta_json for r in adds],
                    )
                    added_ids.extend(added)
                    counters.added += len(added)
                    counters.duplicates += len(adds) - len(added)
                if dels:
                    counters.removed += len(store.remove_values(bank_id, kind, dels))
            if sets:
                result = store.add_entries(bank_id, sets, source)
                added_ids.extend(result.added)
                counters.added += len(result.added)
                counters.duplicates += result.duplicates
            if self.retro is not None and added_ids:
                counters.retro += self.retro.match_entries(session, added_ids)
            session.execute(
                update(ImportCheckpoint)
                .where(ImportCheckpoint.id == checkpoint_id)
                .values(
                    position=position,
                    counters=counters.dump(),
                    status="done" if done else "running",
                    updated_at=utcnow(),
                )
            )
            if done:
                SqlAuditLog(session).append(
                    self.actor,
                    AuditAction.BANK_IMPORT,
                    f"bank:{store.get_bank_by_id(bank_id).name}",
                    {k: v for k, v in counters.dump().items() if k != "problems"},
                )
            session.commit()


# --- exports ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExportReport:
    """What an export wrote and what the format could not carry."""

    written: int
    skipped: dict[str, int]


def case_statuses(session: Session, entry_ids: Sequence[int]) -> dict[int, dict[str, str]]:
    """Case number -> status for the cases holding each entry."""
    found: dict[int, dict[str, str]] = {}
    if entry_ids:
        rows = session.execute(
            select(CaseEntry.entry_id, VictimCase.case_number, VictimCase.status)
            .join(VictimCase, VictimCase.id == CaseEntry.case_id)
            .where(CaseEntry.entry_id.in_(list(entry_ids)))
        )
        for entry_id, number, status in rows:
            found.setdefault(entry_id, {})[number] = status
    return found


def _chunks(entries: Iterable[EntryRead], size: int) -> Iterator[list[EntryRead]]:
    batch: list[EntryRead] = []
    for entry in entries:
        batch.append(entry)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def export_bank(
    session: Session,
    bank_name: str,
    fmt: ExchangeFormat,
    out: TextIO | Path,
    *,
    include_removed: bool = False,
) -> ExportReport:
    """Write a bank in ``fmt``: to a text stream, or (vpdq) one file per entry in a folder."""
    store = SqlBankStore(session)
    bank = store.get_bank(bank_name)
    entries = store.iter_entries(bank.id, include_removed=include_removed)
    skipped: dict[str, int] = {}
    written = 0

    def skip(entry: EntryRead) -> None:
        skipped[entry.kind.value] = skipped.get(entry.kind.value, 0) + 1

    if fmt is ExchangeFormat.VPDQ:
        assert isinstance(out, Path)
        out.mkdir(parents=True, exist_ok=True)
        for entry in entries:
            if entry.kind is not SignalKind.VPDQ:
                skip(entry)
                continue
            (out / f"{bank.name}-{entry.id}.txt").write_text(
                vpdq_text(store.entry_frames(entry.id)), encoding="utf-8"
            )
            written += 1
        return ExportReport(written, skipped)
    assert not isinstance(out, Path)
    if fmt is ExchangeFormat.HMA_CSV:
        writer = csv.writer(out, lineterminator="\n")
        for entry in entries:
            if entry.kind not in (SignalKind.PDQ, SignalKind.MD5) or entry.removed_at is not None:
                skip(entry)
                continue
            tags = entry.metadata.get("tags")
            writer.writerow(
                hma_csv_row(
                    entry, [str(t) for t in tags] if isinstance(tags, list) else [bank.name]
                )
            )
            written += 1
        return ExportReport(written, skipped)

    def records() -> Iterator[JsonObject]:
        nonlocal written
        for batch in _chunks(entries, 5000):
            cases = case_statuses(session, [e.id for e in batch])
            for entry in batch:
                name = _STOPNCII_NAMES.get(entry.kind)
                if name is None:
                    skip(entry)
                    continue
                mine = cases.get(entry.id, {})
                removed = entry.removed_at is not None
                status = CaseStatus.WITHDRAWN.value if removed else CaseStatus.ACTIVE.value
                stamp = entry.removed_at if removed and entry.removed_at else entry.added_at
                written += 1
                yield {
                    "lastModtimestamp": int(stamp.timestamp()),
                    "signalType": name,
                    "hashValue": entry.value.hex(),
                    "hashStatus": status,
                    "caseNumbers": dict(mine.items()),
                    "CSPFeedbacks": [],
                }

    for piece in stopncii_json(records()):
        out.write(piece)
    return ExportReport(written, skipped)
