"""vPDQ: one PDQ hash per ``seconds_per_hash`` of video, compatible with Meta's vPDQ.

Frame selection follows Meta's reference (``vpdq/cpp/hashing/filehasher.cpp``):
frames are numbered 0, 1, 2... in the order the decoder outputs them, the
frame rate is the stream's average frame rate (else its base rate), and frame
``n`` is hashed when ``n % int(seconds_per_hash * fps) == 0`` (the modulus is at
least 1, so ``seconds_per_hash=0`` hashes every frame). Meta's timestamp is
``n / fps``; Redress writes that in HMA-compatible mode and the frame's own
presentation time otherwise, which is the same for constant-frame-rate video
and the true time for variable-frame-rate video. A stream with no usable
frame rate is sampled by presentation time instead.

Decoding uses PyAV (FFmpeg). Every frame must be decoded (inter-frame codecs),
but only the selected ones are converted and hashed. A selected frame is
converted to RGB24 by FFmpeg's swscale the way Meta's reference hashes were
made: BT.601 matrix whatever the stream is tagged, limited range unless the
picture is full range, chroma taken from the nearest sample, accurate
rounding (with these settings Redress reproduces 13 of Meta's 14 sample
videos bit for bit). Every mode hashes that RGB with full-resolution PDQ
(bit for bit Meta's C++; see :mod:`redress.signals.pdq`).

Meta's text format, one line per hashed frame::

    frame_number,quality,pdq_hex,timestamp_seconds
    0,100,e271017837246aaccddea259648fb7d62f435c89d9e99b2497763e216c8d055c,0.000
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import IO, Any

import av
import av.error
import numpy as np
from av.video.reformatter import ColorRange, Colorspace, Interpolation, VideoReformatter
from PIL import Image

from redress.errors import InvalidInputError
from redress.signals.errors import (
    CorruptMediaError,
    MediaTooLargeError,
    NoVideoFramesError,
    TruncatedMediaError,
    UnsupportedMediaError,
)
from redress.signals.options import HashOptions
from redress.signals.pdq import RgbArray, pdq_from_rgb
from redress.signals.robust import Window, trim_borders
from redress.signals.types import PdqHash, VpdqFrame

# Pixel formats whose first plane is full-range luma.
_FULL_RANGE_FORMATS = frozenset({"yuvj420p", "yuvj422p", "yuvj444p", "yuvj440p", "yuvj411p"})
# How Meta's reference hashes convert a frame to RGB24: nearest chroma sample
# and accurate rounding. Measured on Meta's 14 sample videos, every frame:
# this gives 0 bits on 13 of them; swscale's default (SIMD) conversion is up
# to 74 bits away on the dark frames of doorknob-hd-no-bar, and interpolated
# chroma leaves 2 bits of noise everywhere (docs/signals.md).
_META_SWS_FLAGS = Interpolation.POINT | Interpolation.ACCURATE_RND


#: The highest frame rate a real video has (phones' slow motion): with the length limit,
#: it bounds how many frames one file may make the decoder produce.
MAX_FRAMES_PER_SECOND = 240

# Letterbox bars (docs/robustness.md, "Video"): the bars are found on the first
# LETTERBOX_PROBES hashed frames, each kept reduced to LETTERBOX_PROBE_SIDE pixels on
# its long side until the bars are known. A side counts as a bar only when every
# probe has it (a dark scene is not a bar), and only from LETTERBOX_MIN_SIDE of the
# frame; what is left must keep LETTERBOX_MIN_AREA of it.
LETTERBOX_PROBES = 8
LETTERBOX_PROBE_SIDE = 1024
LETTERBOX_MIN_SIDE = 0.03
LETTERBOX_MIN_AREA = 0.3


# A protected video's reference crops (``HashOptions(robust="reference")``): re-shares
# cut a landscape clip to a centred square (a profile, story or feed format) or trim
# its edges, and every frame's PDQ is then another picture's. Each crop's frame hashes
# are banked as one more vPDQ entry, so a copy cut the same way matches as posted.
# The centred square only for clips at least this much wider (or taller) than square.
VIDEO_SQUARE_MIN_ASPECT = 1.2
# Central windows keeping 87 %, 82 % and 77 % of the area (sides 0.935, 0.905 and
# 0.875), 3 % of a side apart: a copy whose kept side is within about 1.5 % of one
# matches it, so together they cover central trims of about 2-8 % off each side (a
# trim under 2 % matches as posted). With two crops 4.6 % apart, trims between them
# and past them were missed. A frame set is about 32 bytes a hashed second.
VIDEO_CENTRAL_SIDES = (("central87", 0.935), ("central82", 0.905), ("central77", 0.875))


@dataclass(frozen=True, slots=True)
class VideoCrop:
    """One reference crop of a video: its name and each hashed frame's hash of it."""

    kind: str
    frames: tuple[VpdqFrame, ...]


def video_crop_windows(width: int, height: int) -> tuple[tuple[str, Window], ...]:
    """The reference crops of a ``width`` x ``height`` video, named (see the constants)."""
    windows: list[tuple[str, Window]] = []
    if width >= VIDEO_SQUARE_MIN_ASPECT * height > 0:
        side = height / width
        windows.append(("square", Window((1 - side) / 2, 0.0, side, 1.0)))
    elif height >= VIDEO_SQUARE_MIN_ASPECT * width > 0:
        side = width / height
        windows.append(("square", Window(0.0, (1 - side) / 2, 1.0, side)))
    for kind, keep in VIDEO_CENTRAL_SIDES:
        margin = (1 - keep) / 2
        windows.append((kind, Window(margin, margin, keep, keep)))
    return tuple(windows)


@dataclass(frozen=True, slots=True)
class VideoHashes:
    """What hashing one video stream produced, with the stream's facts."""

    frames: tuple[VpdqFrame, ...]
    width: int
    height: int
    fps: float | None
    frame_count: int
    duration: float | None
    rotation: int
    # With ``HashOptions.letterbox``: the picture inside the video's letterbox bars, and
    # each hashed frame's hash of that picture alone (empty when there are no bars).
    letterbox: Window | None = None
    trimmed: tuple[VpdqFrame, ...] = ()
    # With ``HashOptions(robust="reference")``: the video's reference crops (and,
    # with ``letterbox`` too and bars found, its frames without them, "trimmed").
    crops: tuple[VideoCrop, ...] = ()


def read_vpdq_text(text: str) -> tuple[VpdqFrame, ...]:
    """Parse Meta's vPDQ text format (``frame,quality,pdq_hex,timestamp`` per line).

    Blank lines are skipped; any malformed line raises :class:`InvalidInputError`
    (code ``bad_vpdq``) naming the line.
    """
    frames: list[VpdqFrame] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        parts = line.split(",")
        if len(parts) != 4:
            raise InvalidInputError(
                f"vPDQ line {number}: expected frame,quality,pdq_hex,timestamp; got {line!r}",
                code="bad_vpdq",
            )
        try:
            frame, quality, ts = int(parts[0]), int(parts[1]), float(parts[3])
        except ValueError as exc:
            raise InvalidInputError(
                f"vPDQ line {number}: frame and quality must be integers and the"
                f" timestamp a number; got {line!r}",
                code="bad_vpdq",
            ) from exc
        if frame < 0 or not math.isfinite(ts) or ts < 0:
            raise InvalidInputError(
                f"vPDQ line {number}: negative frame number or timestamp", code="bad_vpdq"
            )
        try:
            pdq = PdqHash.from_hex(parts[2], quality)
        except InvalidInputError as exc:
            raise InvalidInputError(f"vPDQ line {number}: {exc.message}", code="bad_vpdq") from exc
        frames.append(VpdqFrame(frame=frame, quality=quality, pdq=pdq, ts=ts))
    return tuple(frames)


def write_vpdq_text(frames: Iterable[VpdqFrame]) -> str:
    """Write frames in Meta's vPDQ text format (timestamps to the millisecond)."""
    return "".join(f"{f.frame},{f.quality},{f.pdq.hex},{f.ts:.3f}\n" for f in frames)


def hash_video(source: str | Path | IO[bytes], options: HashOptions) -> VideoHashes:
    """Decode the first video stream of ``source`` and hash it per ``options``.

    Raises :class:`NoVideoFramesError` (``audio_only`` / ``no_video_frames``),
    :class:`MediaTooLargeError` (``too_long`` / ``too_many_pixels``) and
    :class:`CorruptMediaError` / :class:`TruncatedMediaError` for undecodable data.
    """
    try:
        container = av.open(source, mode="r")
    except av.error.InvalidDataError as exc:
        raise CorruptMediaError(f"the video container cannot be read: {exc}") from exc
    except av.error.EOFError as exc:
        raise TruncatedMediaError(f"the container ends before its first frame: {exc}") from exc
    except (av.error.FFmpegError, ValueError) as exc:
        raise UnsupportedMediaError(f"FFmpeg cannot open this file: {exc}") from exc
    with container:
        # Cover art in an audio file is a one-picture "video" stream; it is not a video.
        pictures = [
            stream
            for stream in container.streams.video
            if not stream.disposition & av.stream.Disposition.attached_pic
        ]
        if not pictures:
            if container.streams.audio:
                raise NoVideoFramesError(
                    "the file holds audio only, no picture to hash", code="audio_only"
                )
            raise NoVideoFramesError("the file holds no video stream", code="no_video_frames")
        return _hash_stream(container, pictures[0], options)


def _hash_stream(container: Any, stream: Any, options: HashOptions) -> VideoHashes:
    codec = stream.codec_context
    if codec is None:  # FFmpeg has no decoder for the stream's codec id
        raise UnsupportedMediaError("FFmpeg has no decoder for this video's codec")
    width, height = int(codec.width or 0), int(codec.height or 0)
    if width * height > options.max_image_pixels:
        raise MediaTooLargeError(
            f"video frames of {width}x{height} exceed the pixel limit {options.max_image_pixels}",
            code="too_many_pixels",
        )
    duration = _declared_duration(container, stream)
    if duration is not None and duration > options.max_video_seconds:
        raise MediaTooLargeError(
            f"the video lasts {duration:.1f} s, over the limit of {options.max_video_seconds:g} s",
            code="too_long",
        )
    fps = _frame_rate(stream)
    frame_mod = max(1, int(options.seconds_per_hash * fps)) if fps else 0
    start = _seconds(stream.start_time, stream.time_base) or 0.0
    # One swscale context per stream: building one per frame costs more than converting.
    converter = VideoReformatter()
    # Decoder threads: frame order is unchanged, and FFmpeg's threads add real speed.
    codec.thread_type = "AUTO"

    # Timestamps come from the file, so a hostile one can hold them still (or make them
    # up) while packing in frames: the frame count is bounded too, at the most frames
    # a real video of the allowed length can have.
    max_frames = max(1, int(options.max_video_seconds * MAX_FRAMES_PER_SECOND))
    frames: list[VpdqFrame] = []
    bars = LetterboxTrim() if options.letterbox and not options.compat_hma else None
    cropping = options.robust == "reference" and not options.compat_hma
    cropped: dict[str, list[VpdqFrame]] = {}
    count = 0
    next_due = 0.0
    rotation = 0
    try:
        for frame in container.decode(stream):
            number = count
            count += 1
            if count > max_frames:
                raise MediaTooLargeError(
                    f"the video holds more than {max_frames} frames, more than"
                    f" {options.max_video_seconds:g} s at {MAX_FRAMES_PER_SECOND} frames per"
                    " second (timestamps that do not advance?)",
                    code="too_long",
                )
            when = _seconds(frame.pts, frame.time_base)
            elapsed = (when - start) if when is not None else (number / fps if fps else 0.0)
            if elapsed > options.max_video_seconds:
                raise MediaTooLargeError(
                    f"the video runs past the limit of {options.max_video_seconds:g} s",
                    code="too_long",
                )
            if frame_mod:
                selected = number % frame_mod == 0
            else:  # no frame rate known: sample by presentation time
                selected = elapsed >= next_due
                if selected:
                    next_due = elapsed + options.seconds_per_hash
            if not selected:
                continue
            rotation = 0 if options.compat_hma else _rotation(frame)
            rgb = _meta_rgb(frame, converter, honour_range_tag=not options.compat_hma)
            if rotation:
                rgb = np.rot90(rgb, rotation // 90)
            pdq = pdq_from_rgb(rgb)
            ts = number / fps if options.compat_hma and fps else max(elapsed, 0.0)
            frames.append(VpdqFrame(frame=number, quality=pdq.quality, pdq=pdq, ts=ts))
            if bars is not None:
                bars.add(frames[-1], rgb)
            if cropping:
                rows, cols = rgb.shape[:2]
                for kind, crop in video_crop_windows(cols, rows):
                    cropped.setdefault(kind, []).append(_trimmed_frame(frames[-1], rgb, crop))
    except av.error.EOFError as exc:
        raise TruncatedMediaError(f"the video ends early: {exc}") from exc
    except av.error.FFmpegError as exc:
        if count:
            raise TruncatedMediaError(
                f"the video stops decoding after {count} frames: {exc}"
            ) from exc
        raise CorruptMediaError(f"the video data cannot be decoded: {exc}") from exc
    if not frames:
        raise NoVideoFramesError("the video stream has no decodable frames", code="no_video_frames")
    if rotation in (90, 270):
        width, height = height, width
    window, trimmed = bars.finish() if bars is not None else (None, ())
    crops = [VideoCrop(kind, tuple(hashed)) for kind, hashed in cropped.items()]
    if cropping and trimmed:
        # A banked original with bars: its picture without them is a reference crop
        # too, so a copy with the bars cut off matches as posted.
        crops.append(VideoCrop("trimmed", trimmed))
    return VideoHashes(
        frames=tuple(frames),
        width=width,
        height=height,
        fps=fps,
        frame_count=count,
        duration=duration,
        rotation=rotation,
        letterbox=window,
        trimmed=trimmed,
        crops=tuple(crops),
    )


class LetterboxTrim:
    """Finds a video's letterbox (or pillarbox) bars and hashes its frames without them.

    Re-shared videos are often the original inside bars (a landscape clip posted
    in a portrait frame, a film's black bands, a coloured canvas). The bars make
    every frame's PDQ a different picture, so no frame matches the original's.
    The first :data:`LETTERBOX_PROBES` hashed frames are kept, reduced, until the
    bars are known; after that each frame's picture inside them is hashed as it
    comes, so memory stays bounded for any length of video.
    """

    def __init__(self) -> None:
        self.probes: list[tuple[VpdqFrame, RgbArray]] = []
        self.window: Window | None = None
        self.decided = False
        self.trimmed: list[VpdqFrame] = []

    def add(self, frame: VpdqFrame, rgb: RgbArray) -> None:
        """Take one hashed frame (its full RGB picture)."""
        if self.decided:
            if self.window is not None:
                self.trimmed.append(_trimmed_frame(frame, rgb, self.window))
            return
        self.probes.append((frame, _reduced(rgb, LETTERBOX_PROBE_SIDE)))
        if len(self.probes) >= LETTERBOX_PROBES:
            self._decide()

    def finish(self) -> tuple[Window | None, tuple[VpdqFrame, ...]]:
        """The bars' inside (``None`` without bars) and the trimmed frame hashes."""
        if not self.decided:
            self._decide()
        return self.window, tuple(self.trimmed)

    def _decide(self) -> None:
        self.decided = True
        self.window = letterbox_window([rgb for _, rgb in self.probes])
        if self.window is not None:
            self.trimmed = [_trimmed_frame(f, rgb, self.window) for f, rgb in self.probes]
        self.probes.clear()


def letterbox_window(pictures: list[RgbArray]) -> Window | None:
    """The inside of bars that every picture has on a side, or ``None`` when there are
    none worth removing (see the module constants)."""
    if not pictures:
        return None
    windows = [trim_borders(p) for p in pictures]
    left = min(w.left for w in windows)
    top = min(w.top for w in windows)
    right = min(1 - w.left - w.width for w in windows)
    bottom = min(1 - w.top - w.height for w in windows)
    sides = [max(0.0, v) if v >= LETTERBOX_MIN_SIDE else 0.0 for v in (left, top, right, bottom)]
    if not any(sides):
        return None
    left, top, right, bottom = sides
    width, height = 1 - left - right, 1 - top - bottom
    if width * height < LETTERBOX_MIN_AREA:
        return None
    return Window(left, top, width, height)


def _trimmed_frame(frame: VpdqFrame, rgb: RgbArray, window: Window) -> VpdqFrame:
    left, top, right, bottom = window.pixels(rgb.shape[1], rgb.shape[0])
    pdq = pdq_from_rgb(np.ascontiguousarray(rgb[top:bottom, left:right]))
    return VpdqFrame(frame=frame.frame, quality=pdq.quality, pdq=pdq, ts=frame.ts)


def _reduced(rgb: RgbArray, side: int) -> RgbArray:
    # A box reduction by a whole factor (Pillow's, in C): PDQ blurs far more than this.
    factor = max(1, math.ceil(max(rgb.shape[:2]) / side))
    picture = Image.fromarray(np.ascontiguousarray(rgb))
    return np.asarray(picture.reduce(factor) if factor > 1 else picture.copy())


def _meta_rgb(frame: Any, converter: VideoReformatter, *, honour_range_tag: bool) -> RgbArray:
    """The frame as RGB24, converted as Meta's vPDQ converts it.

    Meta's tool builds its swscale context from the pixel format alone, so
    the colour matrix is always BT.601 and only the ``yuvj`` formats are full
    range. ``honour_range_tag`` also treats a YUV frame tagged full range as
    full range (what a player shows); compat HMA mode ignores the tag, as Meta does.
    """
    name = frame.format.name
    if not name.startswith(("yuv", "nv")):
        # RGB, palette (GIF), grey and other non-YUV formats: no matrix to choose.
        converted = converter.reformat(
            frame, format="rgb24", interpolation=_META_SWS_FLAGS, threads=1
        )
        return _rgb_array(converted)
    full = name in _FULL_RANGE_FORMATS or (
        honour_range_tag and frame.color_range == ColorRange.JPEG
    )
    converted = converter.reformat(
        frame,
        format="rgb24",
        src_colorspace=Colorspace.ITU601,
        src_color_range=ColorRange.JPEG if full else ColorRange.MPEG,
        interpolation=_META_SWS_FLAGS,
        threads=1,
    )
    return _rgb_array(converted)


def _rgb_array(frame: Any) -> RgbArray:
    rgb: RgbArray = frame.to_ndarray()
    return rgb


def _rotation(frame: Any) -> int:
    """Counter-clockwise quarter turns (as degrees 0/90/180/270) that display the frame upright."""
    try:
        degrees = float(frame.rotation or 0)
    except (AttributeError, TypeError, ValueError):
        return 0
    return round(degrees / 90.0) % 4 * 90


def _frame_rate(stream: Any) -> float | None:
    for rate in (stream.average_rate, stream.base_rate):
        if rate and float(rate) > 0:
            return float(rate)
    return None


def _seconds(value: int | None, time_base: Fraction | None) -> float | None:
    if value is None or time_base is None:
        return None
    return float(value * time_base)


def _declared_duration(container: Any, stream: Any) -> float | None:
    from_stream = _seconds(stream.duration, stream.time_base)
    if from_stream is not None and from_stream > 0:
        return from_stream
    if container.duration:
        return float(container.duration) / 1_000_000.0  # AV_TIME_BASE
    return None
