"""Type stub of the C extension redress.index._mih (source: _mih.c)."""

from typing_extensions import Buffer

def search(
    hashes: Buffer,
    tomb: Buffer | None,
    offsets: tuple[Buffer, ...],
    rows: tuple[Buffer, ...],
    starts: tuple[int, ...],
    widths: tuple[int, ...],
    radii: tuple[int, ...] | None,
    dhashes: Buffer | None,
    dtomb: Buffer | None,
    queries: Buffer,
    threshold: int,
    /,
) -> tuple[bytes, bytes, bytes]: ...
def build_chunk(
    hashes: Buffer, start: int, width: int, offsets_out: Buffer, rows_out: Buffer, /
) -> None: ...
def crc32c(data: Buffer, crc: int = 0, /) -> int: ...
