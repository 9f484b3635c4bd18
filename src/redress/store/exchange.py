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

import contextlib
import csv
import datetime as dt
import enum
import hashlib
import io
import itertools
import json
import queue
import re
import threading
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, BinaryIO, NamedTuple, TextIO, TypeVar

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
    ChangeOp,
    EntryIn,
    EntryRead,
    EntrySource,
    JsonObject,
    VpdqFrameIn,
)
from redress.store.models import CaseEntry, ImportCheckpoint, VictimCase, utcnow
from redress.store.robust import VIDEO_CROP_KEY
from redress.store.service import RetroMatcher
from redress.store.store import (
    HashRows,
    SqlAuditLog,
    SqlBankStore,
    bulk_upsert_rows,
    log_changes,
)

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


_HMA_BY_LENGTH = {64: SignalKind.PDQ, 32: SignalKind.MD5}
_HEX_RUN = re.compile("[0-9a-fA-F]*")
# Rows per block of the bulk HMA parser. Fixed (not the import's chunk size) so that the
# sequence of parsed items, which checkpoints count, is the same on every run of a file.
HMA_BLOCK_ROWS = 10_000
_MetaKey = tuple[str, ...]


def _hma_meta(key: _MetaKey) -> str | None:
    """The metadata JSON of an HMA row from its ``time`` and ``tags`` fields."""
    stamp = key[0].strip() if key else ""
    tags = key[1].strip() if len(key) > 1 else ""
    data: JsonObject = {}
    if stamp:
        data["time"] = stamp
    if tags:
        data["tags"] = list(tags.split())
    return json.dumps(data) if data else None


def _hma_row(
    number: int, row: Sequence[str], kind: SignalKind | None, meta_cache: dict[_MetaKey, str | None]
) -> Parsed | None:
    """One HMA CSV row: a record, a problem, or None (blank, comment, header)."""
    if not row:
        return None
    value = row[0].strip()
    if not value or value.startswith("#"):
        return None
    row_kind = kind or _HMA_BY_LENGTH.get(len(value))
    if row_kind is None:
        if number == 1 and not _HEX.issuperset(value):
            return None  # a header line
        return ImportProblem(
            number,
            "bad_hash",
            f"{len(value)} characters is neither a PDQ (64 hex) nor an MD5 (32 hex) hash",
        )
    try:
        # fromhex skips spaces, so a wrong length below also catches embedded blanks.
        raw = bytes.fromhex(value)
    except ValueError:
        raw = b""
    if len(value) != _HEX_LENGTH[row_kind] or len(raw) * 2 != len(value):
        if number == 1 and not _HEX.issuperset(value):
            return None  # a header line
        try:
            parse_hex(value, row_kind)
        except BadHashError as exc:
            return ImportProblem(number, exc.code, exc.message)
        return None
    key = tuple(row[2:4])
    if key not in meta_cache:
        if len(meta_cache) >= 10_000:
            meta_cache.clear()
        meta_cache[key] = _hma_meta(key)
    external = row[1].strip() or None if len(row) > 1 else None
    return ParsedRecord(number, row_kind, raw, external, meta_cache[key])


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


def _hma_rows(
    stream: TextIO, first: int, kind: SignalKind | None, meta_cache: dict[_MetaKey, str | None]
) -> Generator[Parsed, None, int]:
    """HMA rows one by one from row number ``first``; returns how many rows were read."""
    count = 0
    for count, row in enumerate(_csv_rows(stream), start=1):
        number = first + count - 1
        if isinstance(row, csv.Error):
            yield ImportProblem(number, "bad_record", f"unreadable CSV row: {row}")
            continue
        item = _hma_row(number, row, kind, meta_cache)
        if item is not None:
            yield item
    return count


def parse_hma_csv(stream: TextIO, kind: SignalKind | None = None) -> Iterator[Parsed]:
    """Rows ``hash,id,time,tags``; blank lines and ``#`` comments are skipped."""
    yield from _hma_rows(stream, 1, kind, {})


@dataclass(frozen=True, slots=True)
class RecordBlock:
    """Well-formed single-hash records of one kind, as columns (the bulk path of big lists).

    ``hex_values`` are lowercase hex and may repeat (the importer collapses them).
    """

    kind: SignalKind
    lines: list[int]
    hex_values: list[str]
    external_ids: list[str | None]
    metadata_json: list[str | None]

    def __len__(self) -> int:
        return len(self.lines)

    def drop(self, count: int) -> RecordBlock:
        """The block without its first ``count`` records."""
        return RecordBlock(
            self.kind,
            self.lines[count:],
            self.hex_values[count:],
            self.external_ids[count:],
            self.metadata_json[count:],
        )


def _hma_block(
    rows: list[list[str]],
    first: int,
    kind: SignalKind | None,
    meta_cache: dict[_MetaKey, str | None],
) -> list[Parsed | RecordBlock]:
    """Parse rows ``first, first+1, ...`` at once: problems (in line order), then blocks."""
    lengths = {_HEX_LENGTH[kind]: kind} if kind in _HEX_LENGTH else _HMA_BY_LENGTH
    values = [r[0].strip() if r else "" for r in rows]
    joined = "".join(values)
    sizes = set(map(len, values))
    groups: dict[SignalKind, list[int]] = {}
    bad: list[int] = []
    only = next(iter(sizes)) if len(sizes) == 1 else 0
    if only in lengths and _HEX_RUN.fullmatch(joined):
        # The usual case: every row of the block is a well-formed hash of one kind.
        groups[lengths[only]] = list(range(len(rows)))
    else:
        for i, value in enumerate(values):
            row_kind = lengths.get(len(value))
            if row_kind is not None and _HEX.issuperset(value):
                groups.setdefault(row_kind, []).append(i)
            else:
                bad.append(i)
    out: list[Parsed | RecordBlock] = []
    for i in bad:
        item = _hma_row(first + i, rows[i], kind, meta_cache)
        if item is not None:
            out.append(item)
    if len(meta_cache) >= 10_000:
        meta_cache.clear()
    for row_kind, index in groups.items():
        picked = rows if len(index) == len(rows) else [rows[i] for i in index]
        hexes = values if len(index) == len(rows) else [values[i] for i in index]
        if any(c in joined for c in "ABCDEF"):
            hexes = [h.lower() for h in hexes]
        keys = [tuple(r[2:4]) for r in picked]
        for key in set(keys).difference(meta_cache):
            meta_cache[key] = _hma_meta(key)
        out.append(
            RecordBlock(
                row_kind,
                [first + i for i in index],
                hexes,
                [r[1].strip() or None if len(r) > 1 else None for r in picked],
                [meta_cache[k] for k in keys],
            )
        )
    return out


def _hma_plain_block(
    lines: list[str], first: int, kind: SignalKind | None, meta_cache: dict[str, str | None]
) -> RecordBlock | None:
    """The common case, without the csv module: every line ``HASH[,ID[,TIME[,TAGS]]]``
    with well-formed hashes of one kind and no quoting. None when the block is not that."""
    body = [line.rstrip("\r\n") for line in lines]
    head = body[0]
    cut = head.find(",")
    width = _HEX_LENGTH[kind] if kind in _HEX_LENGTH else (len(head) if cut < 0 else cut)
    row_kind = kind if kind in _HEX_LENGTH else _HMA_BY_LENGTH.get(width)
    if row_kind is None or _HEX_LENGTH[row_kind] != width:
        return None
    hexes = [line[:width] for line in body]
    joined = "".join(hexes)
    if len(joined) != width * len(body) or not _HEX_RUN.fullmatch(joined):
        return None
    if any(c in joined for c in "ABCDEF"):
        hexes = [h.lower() for h in hexes]
    separators = "".join([line[width : width + 1] for line in body])
    if not separators and all(len(line) == width for line in body):
        nothing: list[str | None] = [None] * len(body)
        return RecordBlock(row_kind, list(range(first, first + len(body))), hexes, nothing, nothing)
    if separators != "," * len(body):
        return None
    rest = [line[width + 1 :] for line in body]
    cuts = [r.find(",") for r in rest]
    external = [(r if c < 0 else r[:c]).strip() or None for r, c in zip(rest, cuts, strict=True)]
    tails = ["" if c < 0 else r[c + 1 :] for r, c in zip(rest, cuts, strict=True)]
    if len(meta_cache) >= 10_000:
        meta_cache.clear()
    for tail in set(tails).difference(meta_cache):
        meta_cache[tail] = _hma_meta(tuple(tail.split(",")[:2]))
    return RecordBlock(
        row_kind,
        list(range(first, first + len(body))),
        hexes,
        external,
        [meta_cache[t] for t in tails],
    )


def parse_hma_csv_blocks(
    stream: TextIO, kind: SignalKind | None = None, block_rows: int = HMA_BLOCK_ROWS
) -> Iterator[Parsed | RecordBlock]:
    """:func:`parse_hma_csv` in blocks: the same records, problems and line numbers,
    without a Python object per row. Each block of lines yields its problems, then one
    block of records per signal type.
    """
    meta_cache: dict[_MetaKey, str | None] = {}
    plain_cache: dict[str, str | None] = {}
    first = 1
    while True:
        lines = list(itertools.islice(stream, block_rows))
        if not lines:
            return
        text = "".join(lines)
        if '"' not in text:
            plain = _hma_plain_block(lines, first, kind, plain_cache)
            if plain is not None:
                yield plain
                first += len(lines)
                continue
        else:
            # A quoted field may hold a line break: never cut a block inside one.
            while text.count('"') % 2:
                more = stream.readline()
                if not more:
                    break
                lines.append(more)
                text += more
        try:
            rows = list(csv.reader(lines))
        except csv.Error:
            # A row the csv module refuses (a field over its size limit): this block row
            # by row, so that the hostile row is reported and the rest carries on.
            first += yield from _hma_rows(io.StringIO(text), first, kind, meta_cache)
            continue
        yield from _hma_block(rows, first, kind, meta_cache)
        first += len(rows)


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

    def done_bytes(self) -> int:
        """Bytes read so far."""
        return self.done


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
        chunk_size: int = 50_000,
        actor: str = "cli",
        kept_problems: int = 1000,
    ) -> None:
        self.engine = engine
        self.retro = retro
        self.chunk_size = chunk_size
        self.actor = actor
        self.kept_problems = kept_problems
        # Chunks left before the fast plain insert is tried again (0: try it now).
        self._optimistic = 0

    def _parse(
        self, fmt: ExchangeFormat, stream: TextIO, kind: SignalKind | None, name: str
    ) -> Iterator[Parsed | RecordBlock]:
        if fmt is ExchangeFormat.STOPNCII:
            return parse_stopncii(stream)
        if fmt is ExchangeFormat.HMA_CSV:
            return parse_hma_csv_blocks(stream, kind)
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
        self._optimistic = 0
        text, counter, raw = self._open(path)
        with raw:
            items = self._parse(fmt, text, signal_type, path.name)
            # Parsing runs in a thread one chunk ahead, while this one waits for the database.
            with contextlib.closing(
                _prefetched(self._chunks(items, start, counter.done_bytes))
            ) as chunks:
                for chunk in chunks:
                    self._apply(bank.id, checkpoint_id, chunk, counters, source)
                    if progress is not None and not chunk.last:
                        progress(chunk.bytes_read, total)
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

    def _chunks(
        self, items: Iterator[Parsed | RecordBlock], start: int, bytes_read: Callable[[], int]
    ) -> Iterator[_Chunk]:
        """Group parsed items into chunks of about ``chunk_size`` records, skipping the first
        ``start`` (already applied by an interrupted run); the last chunk is marked."""
        position = 0
        pending: list[Parsed | RecordBlock] = []
        size = 0
        for item in items:
            count = len(item) if isinstance(item, RecordBlock) else 1
            if position + count <= start:
                position += count
                continue
            if position < start:  # only a block can straddle the resume point
                assert isinstance(item, RecordBlock)
                item = item.drop(start - position)
                position, count = start, len(item)
            position += count
            pending.append(item)
            size += count
            if size >= self.chunk_size:
                yield _Chunk.build(pending, position, bytes_read(), last=False)
                pending, size = [], 0
        yield _Chunk.build(pending, position, bytes_read(), last=True)

    def _apply(
        self,
        bank_id: int,
        checkpoint_id: int,
        chunk: _Chunk,
        counters: _Counters,
        source: EntrySource,
    ) -> None:
        with Session(self.engine) as session:
            # Write first: on SQLite this takes the write lock before anything is read.
            session.execute(
                update(ImportCheckpoint)
                .where(ImportCheckpoint.id == checkpoint_id)
                .values(updated_at=utcnow())
            )
            for problem in chunk.problems:
                counters.problem_count += 1
                if len(counters.problems) < self.kept_problems:
                    counters.problems.append(problem)
            counters.records += chunk.records
            counters.duplicates += chunk.duplicates
            added_ids: list[int] = []
            store = SqlBankStore(session)
            for kind, (adds, _deletes) in chunk.singles.items():
                if len(adds):
                    result = bulk_upsert_rows(
                        session,
                        bank_id,
                        kind,
                        adds,
                        source,
                        optimistic=self._optimistic <= 0,
                        log=False,
                    )
                    # After a chunk that had to upsert (a re-import, a resumed file), upsert
                    # straight away for a while rather than failing the fast insert each time.
                    self._optimistic = 8 if result.upserted else self._optimistic - 1
                    added_ids.extend(result.ids)
                    counters.added += len(result.ids)
                    counters.duplicates += len(adds) - len(result.ids)
            # Every insert before the first change-log write, which takes the log's lock:
            # an importer holding it never waits for rows another importer holds.
            log_changes(session, ChangeOp.ADD, added_ids, bank_id)
            for kind, (_adds, deletes) in chunk.singles.items():
                if deletes:
                    counters.removed += len(store.remove_values(bank_id, kind, deletes))
            if chunk.sets:
                added = store.add_entries(bank_id, chunk.sets, source)
                added_ids.extend(added.added)
                counters.added += len(added.added)
                counters.duplicates += added.duplicates
            if self.retro is not None and added_ids:
                counters.retro += self.retro.match_entries(session, added_ids)
            session.execute(
                update(ImportCheckpoint)
                .where(ImportCheckpoint.id == checkpoint_id)
                .values(
                    position=chunk.position,
                    counters=counters.dump(),
                    status="done" if chunk.last else "running",
                    updated_at=utcnow(),
                )
            )
            if chunk.last:
                SqlAuditLog(session).append(
                    self.actor,
                    AuditAction.BANK_IMPORT,
                    f"bank:{store.get_bank_by_id(bank_id).name}",
                    {k: v for k, v in counters.dump().items() if k != "problems"},
                )
            session.commit()


@dataclass(frozen=True, slots=True)
class _Chunk:
    """One committed unit of an import, prepared off the database thread.

    ``singles`` maps a signal type to the hashes to add (collapsed: the last
    record of a hash wins, StopNCII's snapshot rule) and the values to remove.
    ``position`` is how many parsed items the file has yielded up to its end.
    """

    position: int
    bytes_read: int
    last: bool
    records: int
    duplicates: int
    problems: list[ImportProblem]
    singles: dict[SignalKind, tuple[HashRows, list[bytes]]]
    sets: list[EntryIn]

    @classmethod
    def build(
        cls, items: Sequence[Parsed | RecordBlock], position: int, bytes_read: int, *, last: bool
    ) -> _Chunk:
        problems: list[ImportProblem] = []
        sets: list[EntryIn] = []
        # Per signal type, the single-hash records in file order, as columns.
        columns: dict[SignalKind, _Columns] = {}
        records = 0
        for item in items:
            if isinstance(item, ImportProblem):
                problems.append(item)
                continue
            if isinstance(item, RecordBlock):
                records += len(item)
                col = columns.setdefault(item.kind, _Columns())
                col.hexes.extend(item.hex_values)
                col.qualities.extend(itertools.repeat(None, len(item)))
                col.external_ids.extend(item.external_ids)
                col.metas.extend(item.metadata_json)
                col.deletes.extend(itertools.repeat(False, len(item)))
                continue
            records += 1
            if item.entry is not None:
                sets.append(item.entry)
                continue
            col = columns.setdefault(item.kind, _Columns())
            col.hexes.append(item.value.hex())
            col.qualities.append(item.quality)
            col.external_ids.append(item.external_id)
            col.metas.append(item.meta_json)
            col.deletes.append(item.delete)
        duplicates = 0
        singles: dict[SignalKind, tuple[HashRows, list[bytes]]] = {}
        for kind, col in columns.items():
            # The last record of each hash wins.
            last_of = dict(zip(col.hexes, range(len(col.hexes)), strict=True))
            duplicates += len(col.hexes) - len(last_of)
            keep = list(last_of.values())
            if len(keep) == len(col.hexes) and not any(col.deletes):
                adds = HashRows(col.hexes, col.qualities, col.external_ids, col.metas)
                singles[kind] = (adds, [])
                continue
            add = [i for i in keep if not col.deletes[i]]
            adds = HashRows(
                [col.hexes[i] for i in add],
                [col.qualities[i] for i in add],
                [col.external_ids[i] for i in add],
                [col.metas[i] for i in add],
            )
            singles[kind] = (adds, [bytes.fromhex(col.hexes[i]) for i in keep if col.deletes[i]])
        return cls(position, bytes_read, last, records, duplicates, problems, singles, sets)


@dataclass
class _Columns:
    hexes: list[str] = field(default_factory=list)
    qualities: list[int | None] = field(default_factory=list)
    external_ids: list[str | None] = field(default_factory=list)
    metas: list[str | None] = field(default_factory=list)
    deletes: list[bool] = field(default_factory=list)


_T = TypeVar("_T")


def _prefetched(items: Iterator[_T], depth: int = 2) -> Generator[_T, None, None]:
    """Run ``items`` in a thread, up to ``depth`` ahead of the consumer.

    The parser (pure Python) then overlaps with the database work, during which
    the driver releases the GIL. Errors in the thread are raised here; closing
    this generator stops and joins the thread.
    """
    slots: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        slots.put(("item", item), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            slots.put(("end", None))
        except Exception as exc:  # noqa: BLE001 -- handed to the consumer, which raises it
            slots.put(("error", exc))

    thread = threading.Thread(target=produce, name="redress-import-parser", daemon=True)
    thread.start()
    try:
        while True:
            tag, value = slots.get()
            if tag == "end":
                return
            if tag == "error":
                raise value
            yield value
    finally:
        stop.set()
        while thread.is_alive():
            try:  # unblock a producer waiting to put its final message
                slots.get_nowait()
            except queue.Empty:
                thread.join(0.05)


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
            # A reference crop is Redress's own matching aid, not a hash of the file
            # partners can use: the plain vPDQ entry goes out, its crops stay.
            if entry.kind is not SignalKind.VPDQ or VIDEO_CROP_KEY in entry.metadata:
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
