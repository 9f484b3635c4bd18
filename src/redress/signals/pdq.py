"""PDQ for still images: decode, convert to RGB, hash.

Three ways to hash an image, chosen by :class:`~redress.signals.options.HashOptions`:

- **compat HMA** (``compat_hma=True``): exactly Hasher-Matcher-Actioner's path.
  Pillow decodes the file at full resolution, ``Image.convert("RGB")`` makes it
  RGB (alpha dropped, palette expanded), no EXIF orientation; PDQ hashes it.
  Bit-for-bit equal to ``threatexchange`` (Meta's C++ PDQ, the ``pdqhash``
  package).
- **exact** (``exact=True``): the same full-resolution decode and the same
  PDQ, but the picture a person sees: EXIF orientation applied, transparent
  pixels composited on white, 16-bit and float images scaled to 8 bits.

Full-resolution PDQ runs in C (``_pdq.c``): the same float operations in the
same order as ``pdqhash``, so hashes and qualities are bit for bit equal to
it (tests check it on Meta's reference images and on random pictures), about
four times faster, and without holding the GIL.
- **fast** (the default, for scanning): large images are decoded at a reduced
  scale (JPEG: libjpeg's DCT-domain scaling via ``Image.draft``, grey only;
  others: Pillow's box ``reduce``) and PDQ's full-resolution blur-and-decimate
  step is reproduced on the reduced picture as one small linear map, so the
  hash stays within a few bits of the exact one at a fraction of the cost.
  Small images take the exact path.

The fast path's last steps (64x64 buffer -> quality, DCT, median, bits) are
the same C code, checked against ``pdqhash`` bit for bit on 64x64 inputs.
"""

from __future__ import annotations

import contextlib
import functools
import io
import math
import struct
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pillow_heif
from PIL import Image, UnidentifiedImageError

from redress.signals import _pdq
from redress.signals.errors import (
    CorruptMediaError,
    HashError,
    MediaTooLargeError,
    TruncatedMediaError,
    UnsupportedMediaError,
)
from redress.signals.sniff import MediaFormat
from redress.signals.types import PdqHash

# Registering a Pillow plug-in is idempotent and only adds a format.
pillow_heif.register_heif_opener()

RgbArray = npt.NDArray[np.uint8]
LumaArray = npt.NDArray[np.uint8]
FloatArray = npt.NDArray[np.float32]
# A banded linear map to PDQ's 64 samples: first input index and weights per sample.
Band = tuple[npt.NDArray[np.int64], FloatArray]

_EXIF_ORIENTATION = 0x0112
# Fast path: the reduced picture keeps at least this many pixels on its
# shorter side (PDQ's own grid is 64x64; about 4 reduced pixels per PDQ cell
# keep the hash within a few bits of the exact one, see docs/signals.md).
# 240 rather than 256 lets a 1280x960 chat photo decode at 1/4 (measured on
# the accuracy corpus: mean 0.70 bits from exact instead of 0.59, max 6 both).
FAST_MIN_SIDE = 240
_FAST_SCALES = (8, 4, 2)

#: What Pillow's plug-ins raise on malformed data (beyond OSError, fuzzing finds
# index, type, key and arithmetic errors in some of them): all mean "corrupt".
DECODER_ERRORS = (
    Image.DecompressionBombError,
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    struct.error,
    IndexError,
    KeyError,
    TypeError,
    ZeroDivisionError,
    RuntimeError,  # the AVIF plug-in's "Failed to decode image"
)

# Pillow's transpose for each EXIF orientation (what ImageOps.exif_transpose does).
_ORIENTATION_METHOD = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# For the same orientations in array terms: (swap axes, reverse rows, reverse columns),
# applied as transpose first, then reversals, on a (rows, cols) array.
_ORIENTATION_AXES = {
    1: (False, False, False),
    2: (False, False, True),
    3: (False, True, True),
    4: (False, True, False),
    5: (True, False, False),
    6: (True, False, True),
    7: (True, True, True),
    8: (True, True, False),
}


@dataclass(frozen=True, slots=True)
class DecodedImage:
    """An image opened from bytes, with its header facts (nothing decoded yet)."""

    image: Image.Image
    width: int
    height: int
    frames: int

    @property
    def animated(self) -> bool:
        """An animation (GIF, WebP, APNG with several frames).

        A camera JPEG's extra MPO pictures (depth maps, HDR gain maps) are
        not frames of an animation: such a JPEG is one photo.
        """
        return self.frames > 1 and self.image.format in {"GIF", "WEBP", "PNG"}


def open_image(data: bytes, fmt: MediaFormat, max_pixels: int) -> DecodedImage:
    """Open an image from its bytes and check its declared size before any pixel is decoded.

    Pillow reads only the header here; a file declaring more than ``max_pixels``
    pixels is refused as a decompression bomb (``too_many_pixels``).
    """
    with _quiet():
        try:
            image = Image.open(io.BytesIO(data), formats=[fmt.name])
        except Image.DecompressionBombError as exc:
            raise MediaTooLargeError(
                f"the image declares more pixels than Pillow allows: {exc}",
                code="too_many_pixels",
            ) from exc
        except UnidentifiedImageError as exc:
            raise CorruptMediaError(
                f"the file starts like {fmt.name} but its header cannot be read"
            ) from exc
        except DECODER_ERRORS as exc:
            raise _decode_error(exc, fmt) from exc
        if fmt.name == "PNG":
            _verify_png(data, fmt)
        try:
            # Counting frames walks the file (GIF): damaged data fails here too.
            frames = int(getattr(image, "n_frames", 1) or 1)
        except DECODER_ERRORS as exc:
            raise _decode_error(exc, fmt) from exc
    width, height = image.size
    if width * height > max_pixels:
        raise MediaTooLargeError(
            f"the image declares {width}x{height} = {width * height} pixels,"
            f" over the limit of {max_pixels} (possible decompression bomb)",
            code="too_many_pixels",
        )
    if width < 1 or height < 1:
        raise CorruptMediaError(f"the image declares an empty size {width}x{height}")
    return DecodedImage(image, width, height, frames)


def orientation_of(image: Image.Image) -> int:
    """The EXIF orientation tag (1-8); 1 when absent or unreadable."""
    try:
        with _quiet():
            value = image.getexif().get(_EXIF_ORIENTATION, 1)
    except DECODER_ERRORS:
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def load_rgb(decoded: DecodedImage, fmt: MediaFormat, *, compat_hma: bool) -> RgbArray:
    """Decode the (first frame of the) image at full resolution as an RGB uint8 array.

    ``compat_hma``: exactly HMA's conversion (``convert("RGB")``, no orientation).
    Otherwise EXIF orientation is applied and alpha, 16-bit and float pixels are
    converted to what a viewer shows.
    """
    image = decoded.image
    with _quiet():
        try:
            image.load()
            if compat_hma:
                return np.asarray(image.convert("RGB"))
            rgb = _to_rgb(image)
        except HashError:
            raise
        except DECODER_ERRORS as exc:
            raise _decode_error(exc, fmt) from exc
    orientation = orientation_of(image)
    if orientation != 1:
        rgb = np.ascontiguousarray(_orient(rgb, orientation))
    return rgb


def pdq_from_rgb(rgb: RgbArray) -> PdqHash:
    """PDQ of an 8-bit RGB (rows x cols x 3) or grey (rows x cols) array.

    Bit for bit what Meta's C++ PDQ (``pdqhash.compute``) gives for the same
    RGB array (a grey array as if its three channels were equal).
    """
    (bits,), quality = _hash_pixels(rgb, dihedral=False)
    return PdqHash(bits, quality)


def dihedral_hashes(rgb: RgbArray) -> tuple[PdqHash, ...]:
    """The eight PDQ hashes of an image's rotations and flips, from one DCT.

    Order (Meta's): original, rotate 90, rotate 180, rotate 270, flip X,
    flip Y, flip about the main diagonal, flip about the anti-diagonal.
    Bit for bit ``pdqhash.compute_dihedral``.
    """
    hashes, quality = _hash_pixels(rgb, dihedral=True)
    return tuple(PdqHash(bits, quality) for bits in hashes)


def _hash_pixels(pixels: RgbArray, *, dihedral: bool) -> tuple[tuple[bytes, ...], int]:
    if pixels.dtype != np.uint8 or pixels.ndim not in (2, 3):
        raise ValueError(f"PDQ needs 8-bit grey or RGB pixels, not {pixels.dtype} {pixels.shape}")
    grey = pixels.ndim == 2
    if not grey and pixels.shape[2] < 3:
        raise ValueError(f"PDQ needs at least 3 channels, not {pixels.shape[2]}")
    if not pixels.flags.c_contiguous:  # a rotated or cropped view
        pixels = np.ascontiguousarray(pixels)
    rows, cols = pixels.shape[:2]
    hashes, quality = _pdq.hash_pixels(
        pixels, rows, cols, pixels.strides[0], pixels.strides[1], grey, dihedral
    )
    return hashes, quality


def fast_pdq(decoded: DecodedImage, fmt: MediaFormat) -> PdqHash | None:
    """PDQ from a reduced-scale decode, or ``None`` when the image is too small to gain.

    The caller falls back to the exact path on ``None``. EXIF orientation is
    applied (the fast path is never used for HMA compatibility).
    """
    scale = _fast_scale(decoded.width, decoded.height)
    if scale == 1 or decoded.animated:
        return None
    image = decoded.image
    orientation = orientation_of(image)
    with _quiet():
        try:
            luma = _reduced_luma(image, fmt, scale)
        except HashError:
            raise
        except DECODER_ERRORS as exc:
            raise _decode_error(exc, fmt) from exc
    if luma is None:
        return None
    rows, cols = luma.shape
    row_edges = _block_edges(decoded.height, rows)
    col_edges = _block_edges(decoded.width, cols)
    swap, rev_rows, rev_cols = _ORIENTATION_AXES[orientation]
    full_rows, full_cols = decoded.height, decoded.width
    if swap:
        luma = luma.T
        row_edges, col_edges = col_edges, row_edges
        full_rows, full_cols = full_cols, full_rows
    if rev_rows:
        luma = luma[::-1, :]
        row_edges = full_rows - row_edges[::-1]
    if rev_cols:
        luma = luma[:, ::-1]
        col_edges = full_cols - col_edges[::-1]
    return _apply_bands(
        luma,
        _reduced_operator(full_rows, tuple(row_edges.tolist())),
        _reduced_operator(full_cols, tuple(col_edges.tolist())),
    )


def _apply_bands(luma: LumaArray, rows: Band, cols: Band) -> PdqHash:
    # Each of the 64 samples reads a narrow band of pixels: a few thousand
    # multiply-adds, done in C without the GIL.
    row_starts, row_weights = rows
    col_starts, col_weights = cols
    plane = np.ascontiguousarray(luma)
    bits, quality = _pdq.hash_banded(
        plane,
        plane.shape[0],
        plane.shape[1],
        row_starts,
        row_weights,
        row_weights.shape[1],
        col_starts,
        col_weights,
        col_weights.shape[1],
    )
    return PdqHash(bits, quality)


def pdq_of_window(
    plane: LumaArray, top: int, left: int, rows: int, cols: int, *, mirrored: bool = False
) -> PdqHash:
    """PDQ of a ``rows`` x ``cols`` window of an 8-bit luma plane, without copying it.

    The window's hash is what PDQ gives for the window cut out as a picture of
    its own (its blur and decimation reproduced as one banded linear map, in
    float32: within a bit or two of :func:`pdq_from_rgb` of the cut-out), or
    for that picture mirrored left to right when ``mirrored``. Only the
    window's pixels are read, so many windows of one plane cost their own
    sizes (robust hash sets hash 20-60 windows of one picture).
    """
    if plane.dtype != np.uint8 or plane.ndim != 2 or not plane.flags.c_contiguous:
        raise ValueError("a luma plane must be a C-contiguous 2-D uint8 array")
    if (
        rows < 1
        or cols < 1
        or top < 0
        or left < 0
        or top + rows > plane.shape[0]
        or left + cols > plane.shape[1]
    ):
        raise ValueError(f"window {rows}x{cols} at ({top}, {left}) is outside the plane")
    row_starts, row_weights = window_operator(rows, mirrored=False)
    col_starts, col_weights = window_operator(cols, mirrored=mirrored)
    bits, quality = _pdq.hash_banded(
        plane,
        plane.shape[0],
        plane.shape[1],
        row_starts + top,
        row_weights,
        row_weights.shape[1],
        col_starts + left,
        col_weights,
        col_weights.shape[1],
    )
    return PdqHash(bits, quality)


@functools.lru_cache(maxsize=2048)
def window_operator(length: int, *, mirrored: bool = False) -> Band:
    """PDQ's blur-and-decimate map for a side of ``length`` pixels, banded.

    ``mirrored`` gives the map of the same side read backwards (the window
    mirrored), which is not the forward map reversed: PDQ's sampling grid is
    not symmetric.
    """
    starts, weights = _reduced_operator(length, tuple(range(length + 1)))
    if not mirrored:
        return starts, weights
    band = weights.shape[1]
    return (length - band - starts).astype(np.int64), np.ascontiguousarray(weights[:, ::-1])


def box_resize(plane: LumaArray, rows: int, cols: int) -> LumaArray:
    """``plane`` resized to ``rows`` x ``cols`` with Pillow's box filter, in C.

    The weights are Pillow's (each output pixel the mean of the input pixels
    whose centres it covers) but the two passes run in float32 with one
    rounding at the end, where Pillow rounds after each pass: an output pixel
    differs from ``Image.resize(..., BOX)``'s by a level at most. About
    twice as fast as Pillow's fixed-point resample, which was the largest
    cost of a robust query set after its window hashes.
    """
    if plane.dtype != np.uint8 or plane.ndim != 2 or not plane.flags.c_contiguous:
        raise ValueError("a luma plane must be a C-contiguous 2-D uint8 array")
    if rows < 1 or cols < 1:
        raise ValueError(f"cannot resize to {rows}x{cols}")
    row_starts, row_weights = _box_operator(plane.shape[0], rows)
    col_starts, col_weights = _box_operator(plane.shape[1], cols)
    data = _pdq.resample_banded(
        plane,
        plane.shape[0],
        plane.shape[1],
        rows,
        row_starts,
        row_weights,
        row_weights.shape[1],
        cols,
        col_starts,
        col_weights,
        col_weights.shape[1],
    )
    return np.frombuffer(data, dtype=np.uint8).reshape(rows, cols)


@functools.lru_cache(maxsize=256)
def _box_operator(length: int, size: int) -> Band:
    """Pillow's box-filter weights from ``length`` pixels to ``size``, banded."""
    scale = length / size
    stretch = max(scale, 1.0)
    centres = (np.arange(size, dtype=np.float64) + 0.5) * scale
    lows = np.maximum(0, (centres - stretch * 0.5 + 0.5).astype(np.int64))
    highs = np.minimum(length, (centres + stretch * 0.5 + 0.5).astype(np.int64))
    band = max(1, int((highs - lows).max()))
    starts = np.minimum(lows, length - band)
    pixels = starts[:, np.newaxis] + np.arange(band)
    # Pillow's box: a pixel counts when its centre lies in (-0.5, 0.5] of the
    # output pixel's span, measured in output pixels, and within the span
    # Pillow reads.
    offset = (pixels - centres[:, np.newaxis] + 0.5) / stretch
    inside = (offset > -0.5) & (offset <= 0.5)
    inside &= (pixels >= lows[:, np.newaxis]) & (pixels < highs[:, np.newaxis])
    weights = inside.astype(np.float64)
    totals = weights.sum(axis=1, keepdims=True)
    table = (weights / np.where(totals > 0, totals, 1.0)).astype(np.float32)
    return starts.astype(np.int64), np.ascontiguousarray(table)


def pdq_from_buffer64(buffer64: FloatArray) -> PdqHash:
    """PDQ's last steps on a 64x64 luma buffer: quality metric, 16x16 DCT, median threshold."""
    bits, quality = _pdq.hash_buffer64(np.ascontiguousarray(buffer64, dtype=np.float32))
    return PdqHash(bits, quality)


# ---------------------------------------------------------------- internals


def _verify_png(data: bytes, fmt: MediaFormat) -> None:
    # Pillow's decoder does not check chunk checksums; verify() does, so a
    # corrupted PNG is reported instead of hashed as whatever inflates.
    try:
        with Image.open(io.BytesIO(data), formats=["PNG"]) as probe:
            probe.verify()
    except DECODER_ERRORS as exc:
        raise _decode_error(exc, fmt) from exc


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence decoder warnings (corrupt EXIF, Pillow's own bomb warning) while decoding.

    Pillow warns through the warnings module; Redress reports problems as
    errors or ignores them, and checks its own pixel limit from the header.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _decode_error(exc: BaseException, fmt: MediaFormat) -> HashError:
    text = str(exc)
    if isinstance(exc, Image.DecompressionBombError):
        return MediaTooLargeError(
            f"the image holds more pixels than Pillow allows: {text}", code="too_many_pixels"
        )
    lowered = text.lower()
    if isinstance(exc, EOFError) or "truncated" in lowered or "end of file" in lowered:
        return TruncatedMediaError(f"the {fmt.name} file is truncated: {text or 'ends early'}")
    if "cannot identify" in lowered or ("unsupported" in lowered and "mode" not in lowered):
        return UnsupportedMediaError(f"the {fmt.name} variant cannot be decoded: {text}")
    return CorruptMediaError(f"the {fmt.name} data cannot be decoded: {text or type(exc).__name__}")


def _to_rgb(image: Image.Image) -> RgbArray:
    """Convert any Pillow mode to the RGB a viewer shows."""
    mode = image.mode
    if mode.startswith("I;16") or mode in {"I", "F"}:
        grey = _scale_to_8bit(np.asarray(image))
        return np.repeat(grey[:, :, np.newaxis], 3, axis=2)
    if mode in {"RGBA", "LA", "PA", "RGBa", "La"} or (mode == "P" and "transparency" in image.info):
        rgba = np.asarray(image.convert("RGBA"))
        alpha = rgba[:, :, 3]
        if alpha.min() == 255:
            return np.ascontiguousarray(rgba[:, :, :3])
        # Composite on white, as a browser or chat app shows a transparent picture.
        weight = alpha.astype(np.float32)[:, :, np.newaxis] / 255.0
        blended = rgba[:, :, :3].astype(np.float32) * weight + 255.0 * (1.0 - weight)
        composited: RgbArray = np.rint(blended).astype(np.uint8)
        return composited
    converted = image if mode == "RGB" else image.convert("RGB")
    rgb: RgbArray = np.asarray(converted)
    return rgb


def _scale_to_8bit(values: npt.NDArray[Any]) -> RgbArray:
    """16-bit, 32-bit integer and float greys to 0-255 by their evident range."""
    array = values.astype(np.float64)
    top = float(array.max()) if array.size else 0.0
    if values.dtype.kind == "f" and top <= 1.0:
        array = array * 255.0
    elif top > 255.0:
        array = array * (255.0 / (65535.0 if top <= 65535.0 else top))
    return np.clip(np.rint(array), 0, 255).astype(np.uint8)


def _orient(rgb: RgbArray, orientation: int) -> RgbArray:
    swap, rev_rows, rev_cols = _ORIENTATION_AXES[orientation]
    out = rgb.transpose(1, 0, 2) if swap else rgb
    if rev_rows:
        out = out[::-1, :, :]
    if rev_cols:
        out = out[:, ::-1, :]
    return out


def _fast_scale(width: int, height: int) -> int:
    for scale in _FAST_SCALES:
        if min(math.ceil(width / scale), math.ceil(height / scale)) >= FAST_MIN_SIDE:
            return scale
    return 1


def _reduced_luma(image: Image.Image, fmt: MediaFormat, scale: int) -> LumaArray | None:
    """Luma of the picture reduced ``scale`` times per side (block means), before orientation."""
    width, height = image.size
    target = (math.ceil(width / scale), math.ceil(height / scale))
    if fmt.is_jpeg and image.mode in {"RGB", "L"}:
        # DCT-domain scaling: libjpeg computes only the low frequencies and,
        # for "L", only the Y channel (JPEG's Y uses PDQ's own luma weights).
        # Pillow picks the scale as full // requested, so ask for the floored
        # size: asking for the ceiling picks half the reduction (1257 // 315 == 3
        # -> scale 2) and decodes four times the pixels. libjpeg then rounds
        # the scaled size up, which is ``target``.
        image.draft("L", (max(1, width // scale), max(1, height // scale)))
        image.load()
        grey = image if image.mode == "L" else image.convert("L")
    else:
        image.load()
        grey = Image.fromarray(_to_rgb(image)).convert("L")
    if grey.size != target:
        factor = max(1, round(grey.size[0] / target[0]))
        grey = grey.reduce(factor) if factor > 1 else grey
    if grey.size != target:
        return None
    luma: LumaArray = np.asarray(grey)
    return luma


def _block_edges(full: int, reduced: int) -> npt.NDArray[np.int64]:
    """Edges of the full-resolution pixel blocks that each reduced pixel averages."""
    scale = math.ceil(full / reduced)
    edges = np.minimum(np.arange(reduced + 1, dtype=np.int64) * scale, full)
    edges[-1] = full
    return edges


def _jarosz_window(length: int) -> int:
    # Meta's computeJaroszFilterWindowSize(length, 64).
    return (length + 2 * 64 - 1) // (2 * 64)


@functools.lru_cache(maxsize=64)
def _decimating_operator(length: int) -> npt.NDArray[np.float64]:
    """The 64 x length matrix of PDQ's two box-filter passes followed by decimation.

    Row i holds the weight of every full-resolution pixel in output sample i,
    with the reference implementation's shrinking windows at the edges.
    """
    window = _jarosz_window(length)
    half = (window + 2) // 2
    before, after = window - half, half - 1  # output k averages inputs [k - before, k + after]
    index = np.arange(length)
    counts = (np.minimum(index + after, length - 1) - np.maximum(index - before, 0) + 1).astype(
        np.float64
    )
    samples = ((np.arange(64) + 0.5) * length / 64).astype(np.int64)
    rows = np.zeros((64, length), dtype=np.float64)
    rows[np.arange(64), samples] = 1.0
    for _ in range(2):
        # Adjoint of one box pass: input x receives u[k] for every k whose window holds x.
        spread = rows / counts
        cumulative = np.concatenate([np.zeros((64, 1)), np.cumsum(spread, axis=1)], axis=1)
        low = np.maximum(index - after, 0)
        high = np.minimum(index + before, length - 1) + 1
        rows = cumulative[:, high] - cumulative[:, low]
    return rows


@functools.lru_cache(maxsize=128)
def _reduced_operator(length: int, edges: tuple[int, ...]) -> Band:
    """The decimating operator summed over each reduced pixel's block of full pixels.

    Returned banded: ``starts[i]`` is the first reduced pixel sample ``i``
    reads and ``weights[i, k]`` the weight of reduced pixel ``starts[i] + k``.
    """
    full = _decimating_operator(length)
    cumulative = np.concatenate([np.zeros((64, 1)), np.cumsum(full, axis=1)], axis=1)
    bounds = np.asarray(edges)
    dense = cumulative[:, bounds[1:]] - cumulative[:, bounds[:-1]]
    reduced = dense.shape[1]
    nonzero = np.abs(dense) > 1e-12
    low = nonzero.argmax(axis=1)
    high = reduced - nonzero[:, ::-1].argmax(axis=1)
    band = int((high - low).max())
    starts = np.minimum(low, reduced - band).astype(np.int64)
    index = starts[:, np.newaxis] + np.arange(band)
    weights = np.take_along_axis(dense, index, axis=1).astype(np.float32)
    return starts, weights
