"""The on-disk snapshot of a :class:`~redress.index.mih.MihIndex` (format: docs/index.md).

One file: a 24-byte fixed header, a JSON description of the sections, then the
raw little-endian arrays, each starting on a 64-byte boundary and each with its
CRC-32C. No pickle: every byte is described by the header. Saving writes a
temporary file in the same folder, fsyncs it, renames it over the old snapshot
and fsyncs the folder, so a crash at any moment leaves either the old or the new
snapshot whole.
"""

from __future__ import annotations

import contextlib
import json
import os
import struct
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import numpy.typing as npt

from redress.index import _mih
from redress.index.errors import (
    SnapshotCorruptError,
    SnapshotError,
    SnapshotNotFoundError,
    SnapshotVersionError,
)

MAGIC = b"RDRSPDQX"
FORMAT_VERSION = 1
FORMAT_NAME = "redress-pdq-index"
_FIXED = struct.Struct("<8sIII4x")  # magic, version, JSON length, JSON CRC-32C, reserved
_ALIGN = 64


@dataclass(frozen=True, slots=True)
class SnapshotState:
    """Everything a snapshot holds: layout, counts and the arrays of both segments."""

    starts: tuple[int, ...]
    widths: tuple[int, ...]
    live_entries: int
    hashes: npt.NDArray[np.uint8]
    entries: npt.NDArray[np.int64]
    tomb: npt.NDArray[np.uint8]
    offsets: tuple[npt.NDArray[np.uint32], ...]
    rows: tuple[npt.NDArray[np.uint32], ...]
    dhashes: npt.NDArray[np.uint8]
    dentries: npt.NDArray[np.int64]
    dtomb: npt.NDArray[np.uint8]


def _sections(state: SnapshotState) -> list[tuple[str, npt.NDArray[Any]]]:
    named: list[tuple[str, npt.NDArray[Any]]] = [
        ("hashes", state.hashes),
        ("entries", state.entries),
        ("tomb", state.tomb),
    ]
    for c in range(len(state.widths)):
        named.append((f"offsets.{c}", state.offsets[c]))
        named.append((f"rows.{c}", state.rows[c]))
    named += [("delta_hashes", state.dhashes), ("delta_entries", state.dentries)]
    named.append(("delta_tomb", state.dtomb))
    return named


def _pad(f: BinaryIO, position: int) -> int:
    gap = -position % _ALIGN
    f.write(b"\0" * gap)
    return position + gap


def write(path: Path, state: SnapshotState) -> None:
    """Write ``state`` to ``path`` atomically; the previous file survives any failure."""
    named = _sections(state)
    # Lay out the sections first: the header must state every offset and checksum.
    described: list[dict[str, Any]] = []
    for name, array in named:
        contiguous = np.ascontiguousarray(array)
        described.append(
            {
                "name": name,
                "dtype": contiguous.dtype.str,
                "shape": list(contiguous.shape),
                "nbytes": int(contiguous.nbytes),
                "crc32c": _mih.crc32c(contiguous),
            }
        )
    header: dict[str, Any] = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "chunk_starts": list(state.starts),
        "chunk_widths": list(state.widths),
        "live_entries": state.live_entries,
        "main_rows": len(state.hashes),
        "delta_rows": len(state.dhashes),
        "sections": described,
    }
    # Reserve room for the header with every number at full width, then fill it in:
    # the JSON is padded with spaces (valid JSON whitespace) to the reserved size.
    for section in described:
        section["offset"] = 0
    header["file_size"] = 0
    room = _FIXED.size + len(json.dumps(header)) + 21 * (len(described) + 1)
    position = room + (-room % 4096)
    for section in described:
        section["offset"] = position
        position += section["nbytes"] + (-section["nbytes"] % _ALIGN)
    header["file_size"] = position
    text = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
    data_start = described[0]["offset"]
    encoded = text + b" " * (data_start - _FIXED.size - len(text))
    folder = path.parent if str(path.parent) else Path(".")
    tmp = folder / f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp"
    try:
        with open(tmp, "wb") as f:
            f.write(_FIXED.pack(MAGIC, FORMAT_VERSION, len(encoded), _mih.crc32c(encoded)))
            f.write(encoded)
            pos = _FIXED.size + len(encoded)
            for (_, array), section in zip(named, described, strict=True):
                f.write(np.ascontiguousarray(array).reshape(-1).view(np.uint8).data)
                pos = _pad(f, pos + section["nbytes"])
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise SnapshotError(f"could not write index snapshot {path}: {exc}") from exc
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_folder(folder)


def _fsync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems do not fsync folders; the rename is still atomic
    finally:
        os.close(fd)


def read_header(path: Path) -> dict[str, Any]:
    """Validate and return the JSON header of a snapshot (no arrays read)."""
    try:
        with open(path, "rb") as f:
            fixed = f.read(_FIXED.size)
            if len(fixed) < _FIXED.size:
                raise SnapshotCorruptError(f"{path} is too short to be an index snapshot")
            magic, version, length, crc = _FIXED.unpack(fixed)
            if magic != MAGIC:
                raise SnapshotCorruptError(f"{path} is not a Redress index snapshot (bad magic)")
            if version != FORMAT_VERSION:
                raise SnapshotVersionError(
                    f"{path} is format version {version}; this Redress reads {FORMAT_VERSION}"
                )
            encoded = f.read(length)
            size = os.fstat(f.fileno()).st_size
    except FileNotFoundError as exc:
        raise SnapshotNotFoundError(f"no index snapshot at {path}") from exc
    except OSError as exc:
        raise SnapshotError(f"cannot read index snapshot {path}: {exc}") from exc
    if len(encoded) != length or _mih.crc32c(encoded) != crc:
        raise SnapshotCorruptError(f"{path}: header checksum mismatch (truncated or overwritten)")
    try:
        header: dict[str, Any] = json.loads(encoded)
    except ValueError as exc:
        raise SnapshotCorruptError(f"{path}: header is not valid JSON") from exc
    if header.get("format") != FORMAT_NAME or header.get("version") != FORMAT_VERSION:
        raise SnapshotCorruptError(f"{path}: header names another format")
    if header.get("file_size") != size:
        raise SnapshotCorruptError(
            f"{path}: file is {size} bytes, header says {header.get('file_size')} (truncated?)"
        )
    return header


def read(path: Path, *, mmap: bool = False, verify: bool = True) -> SnapshotState:
    """Read a snapshot; with ``mmap`` the big arrays map the file read-only (paged in lazily)."""
    header = read_header(path)
    try:
        if mmap:
            blob: npt.NDArray[np.uint8] = np.memmap(path, dtype=np.uint8, mode="r")
        else:
            blob = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise SnapshotError(f"cannot read index snapshot {path}: {exc}") from exc
    if len(blob) != header["file_size"]:
        raise SnapshotCorruptError(f"{path}: changed size while being read")
    arrays: dict[str, npt.NDArray[Any]] = {}
    try:
        for section in header["sections"]:
            start, nbytes = int(section["offset"]), int(section["nbytes"])
            if start < 0 or start + nbytes > len(blob):
                raise SnapshotCorruptError(f"{path}: section {section['name']} out of bounds")
            raw = blob[start : start + nbytes]
            if verify and _mih.crc32c(raw) != section["crc32c"]:
                raise SnapshotCorruptError(f"{path}: checksum mismatch in {section['name']}")
            arrays[section["name"]] = raw.view(np.dtype(section["dtype"])).reshape(section["shape"])
        widths = tuple(int(w) for w in header["chunk_widths"])
        starts = tuple(int(s) for s in header["chunk_starts"])
        state = SnapshotState(
            starts=starts,
            widths=widths,
            live_entries=int(header["live_entries"]),
            hashes=arrays["hashes"],
            entries=arrays["entries"],
            # Tombstones are set in place by removals: always a private, writable copy.
            tomb=np.array(arrays["tomb"], dtype=np.uint8) if mmap else arrays["tomb"],
            offsets=tuple(arrays[f"offsets.{c}"] for c in range(len(widths))),
            rows=tuple(arrays[f"rows.{c}"] for c in range(len(widths))),
            dhashes=arrays["delta_hashes"],
            dentries=arrays["delta_entries"],
            dtomb=arrays["delta_tomb"],
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise SnapshotCorruptError(
            f"{path}: header does not describe a valid index ({exc})"
        ) from exc
    _check_shapes(path, state)
    return state


def _check_shapes(path: Path, state: SnapshotState) -> None:
    n = len(state.hashes)
    ok = (
        state.hashes.shape == (n, 32)
        and state.entries.shape == (n,)
        and len(state.tomb) * 8 >= n
        and len(state.starts) == len(state.widths) == len(state.offsets) == len(state.rows)
        and all(len(o) == 2**w + 1 for o, w in zip(state.offsets, state.widths, strict=True))
        and all(len(r) == n for r in state.rows)
        and all(1 <= w <= 31 for w in state.widths)
        and sum(state.widths) == 256
        and all(int(o[-1]) == n for o in state.offsets)
        and state.dhashes.shape == (len(state.dentries), 32)
        and len(state.dtomb) * 8 >= len(state.dentries)
    )
    if not ok:
        raise SnapshotCorruptError(f"{path}: arrays do not fit together")
