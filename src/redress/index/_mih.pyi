"""Type stub of the C extension redress.index._mih (source: _mih.c).

Array arguments are any C-contiguous buffer (NumPy arrays, bytes); they are
typed ``object`` because NumPy's stubs do not declare the buffer protocol on
Python 3.11.
"""

def search(
    hashes: object,
    tomb: object | None,
    offsets: tuple[object, ...],
    rows: tuple[object, ...],
    starts: tuple[int, ...],
    widths: tuple[int, ...],
    radii: tuple[int, ...] | None,
    dhashes: object | None,
    dtomb: object | None,
    queries: object,
    threshold: int,
    /,
) -> tuple[bytes, bytes, bytes]: ...
def build_chunk(
    hashes: object, start: int, width: int, offsets_out: object, rows_out: object, /
) -> None: ...
def crc32c(data: object, crc: int = 0, /) -> int: ...
