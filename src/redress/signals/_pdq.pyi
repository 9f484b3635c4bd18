"""Type stub of the C extension redress.signals._pdq (source: _pdq.c).

Buffers are typed ``object``: any C-contiguous buffer (NumPy arrays, bytes,
PyAV planes), which NumPy's stubs do not declare on Python 3.11.
"""

def hash_pixels(
    pixels: object,
    rows: int,
    cols: int,
    row_stride: int,
    pixel_stride: int,
    grey: bool,
    dihedral: bool,
    /,
) -> tuple[tuple[bytes, ...], int]: ...
def hash_buffer64(buffer64: object, /) -> tuple[bytes, int]: ...
def hash_banded(
    luma: object,
    rows: int,
    cols: int,
    row_starts: object,
    row_weights: object,
    row_band: int,
    col_starts: object,
    col_weights: object,
    col_band: int,
    /,
) -> tuple[bytes, int]: ...
def resample_banded(
    luma: object,
    rows: int,
    cols: int,
    out_rows: int,
    row_starts: object,
    row_weights: object,
    row_band: int,
    out_cols: int,
    col_starts: object,
    col_weights: object,
    col_band: int,
    /,
) -> bytes: ...
def dense_rectangle(
    content: object, rows: int, cols: int, /
) -> tuple[int, int, int, int] | None: ...
