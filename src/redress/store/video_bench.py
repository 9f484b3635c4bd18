"""``redress bench videos``: re-shared video copies, Meta's vPDQ rule vs Redress's matcher.

Originals are generated in the same run: short clips that pan and zoom across
scikit-image's bundled photographs (the same sources as the picture bench),
encoded with H.264 by this module's own PyAV code. Each is banked as its vPDQ
frames (one hash a second, as posted). Every original gets these copies, each
encoded again at a lower quality:

- ``recompress``: smaller and lower quality, nothing else changed;
- ``letterbox``: the landscape clip inside a portrait frame with black bars;
- ``canvas``: the clip shrunk onto a coloured square canvas (bars on all sides);
- ``excerpt``: the middle half of the clip;
- ``compilation``: the clip spliced between two other originals;
- ``letterbox+excerpt``: the middle half, in a portrait frame;
- ``square``: every frame cut to its centred square (a feed, story or profile
  format);
- ``trim``: every frame's central part, keeping 75-90 % of the area.

Redress banks each original with its reference crops too (the centred square
and the central 87 %, 82 % and 77 %, ``HashOptions(robust="reference")``, each one more vPDQ
entry); Meta's rule has only the frames as posted.

Each copy is hashed as a scan hashes it (``HashOptions(letterbox=True)``) and
matched two ways against every original: **Meta's rule** (the copy's frames as
posted; query share >= 0.8, as Hasher-Matcher-Actioner matches) and
**Redress** (the same, or the frames without the copy's bars, or a banked clip
found whole inside the copy: :func:`redress.store.service.frame_sets_match`).
Recall is per family; false matches are copies matched to any other original.
"""

from __future__ import annotations

import io
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av
import numpy as np
import numpy.typing as npt
from PIL import Image

from redress.signals.options import HashOptions
from redress.signals.pdq import RgbArray
from redress.signals.robust import PLAIN_THRESHOLD, QUALITY_MIN
from redress.signals.robust_bench import machine_figures, sample_pictures
from redress.signals.types import VpdqFrame
from redress.signals.vpdq import hash_video
from redress.store.service import FrameShare, frame_sets_match, vpdq_frame_share
from redress.store.sync import unique_frames

FPS = 10
SECONDS = 8
SIZE = (640, 360)
SHARE_MIN = 0.8

Clip = list[RgbArray]


@dataclass(frozen=True, slots=True)
class VideoCopy:
    """One edited copy: which original it was made from, the originals it holds whole
    (a compilation holds two others too: matching those is right, not false), and its
    encoded bytes."""

    original: int
    family: str
    holds: frozenset[int]
    data: bytes


def run_video_bench(*, originals: int = 16, seed: int = 2026) -> dict[str, Any]:
    """Make ``originals`` clips and their copies, match them both ways; return the figures."""
    rng = random.Random(seed)
    pictures = [p.rgb for p in sample_pictures(originals, rng)]
    clips = [_pan_clip(pictures[n % len(pictures)], rng) for n in range(originals)]
    # Each original's frames as posted, then its reference crops' frames.
    banked: list[list[npt.NDArray[np.uint8]]] = []
    for clip in clips:
        hashed = hash_video(io.BytesIO(_encode(clip, 2_000_000)), HashOptions(robust="reference"))
        banked.append([_frames(hashed.frames), *(_frames(c.frames) for c in hashed.crops)])
    copies: list[VideoCopy] = []
    for n in range(len(clips)):
        for family, edit in _families().items():
            frames, holds = edit(clips, n, rng)
            copies.append(VideoCopy(n, family, holds | {n}, _encode(frames, 600_000)))
    rows: list[dict[str, Any]] = []
    plain_cpu = redress_cpu = 0.0
    for copy in copies:
        start = time.process_time()
        hash_video(io.BytesIO(copy.data), HashOptions())
        plain_cpu += time.process_time() - start
        start = time.process_time()
        scanned = hash_video(io.BytesIO(copy.data), HashOptions(letterbox=True))
        redress_cpu += time.process_time() - start
        posted, trimmed = _frames(scanned.frames), _frames(scanned.trimmed)
        meta_hits: set[int] = set()
        redress_hits: set[int] = set()
        for n, entries in enumerate(banked):
            share = vpdq_frame_share(posted, entries[0], PLAIN_THRESHOLD)
            if share.query_share >= SHARE_MIN:
                meta_hits.add(n)
            for entry in entries:
                readings: list[FrameShare] = [
                    share
                    if entry is entries[0]
                    else vpdq_frame_share(posted, entry, PLAIN_THRESHOLD)
                ]
                if len(trimmed):
                    readings.append(vpdq_frame_share(trimmed, entry, PLAIN_THRESHOLD))
                if any(frame_sets_match(r, len(entry), SHARE_MIN) for r in readings):
                    redress_hits.add(n)
                    break
        rows.append(
            {
                "family": copy.family,
                "meta_hit": copy.original in meta_hits,
                "redress_hit": copy.original in redress_hits,
                "meta_false": len(meta_hits - copy.holds),
                "redress_false": len(redress_hits - copy.holds),
                "bars_found": scanned.letterbox is not None,
            }
        )
    families = list(_families())
    return {
        "seed": seed,
        "machine": machine_figures(),
        "originals": len(clips),
        "copies": len(copies),
        "cross_pairs": len(copies) * (len(clips) - 1),
        "seconds": SECONDS,
        "families": {
            family: {
                "meta": _rate(rows, family, "meta_hit"),
                "redress": _rate(rows, family, "redress_hit"),
                "bars_found": _rate(rows, family, "bars_found"),
            }
            for family in families
        },
        "recall": {
            "meta": round(float(np.mean([r["meta_hit"] for r in rows])), 3),
            "redress": round(float(np.mean([r["redress_hit"] for r in rows])), 3),
        },
        "false_matches": {
            "meta": sum(r["meta_false"] for r in rows),
            "redress": sum(r["redress_false"] for r in rows),
        },
        "hashing_cpu_seconds": {
            "as_posted": round(plain_cpu, 3),
            "with_letterbox": round(redress_cpu, 3),
            "ratio": round(redress_cpu / plain_cpu, 3) if plain_cpu else None,
        },
    }


def render_video_report(report: dict[str, Any]) -> str:
    """The report as text."""
    cost = report["hashing_cpu_seconds"]
    machine = report["machine"]
    lines = [
        "redress bench videos: Meta's vPDQ rule (frames as posted, query share >= 0.8) vs Redress"
        " (also without letterbox bars, banked clips inside longer videos, and the originals'"
        " reference crops)",
        f"original clips {report['originals']} ({report['seconds']} s each), copies"
        f" {report['copies']}, cross pairs {report['cross_pairs']}",
        f"  recall:        Meta {report['recall']['meta']:.3f}"
        f"  Redress {report['recall']['redress']:.3f}",
        f"  false matches: Meta {report['false_matches']['meta']}"
        f"  Redress {report['false_matches']['redress']}",
        f"  hashing CPU: as posted {cost['as_posted']} s, with the letterbox search"
        f" {cost['with_letterbox']} s, ratio {cost['ratio']}x",
        f"  {'family':<18} {'Meta':>6} {'Redress':>8} {'bars found':>11}",
    ]
    for family, rates in report["families"].items():
        lines.append(
            f"  {family:<18} {rates['meta']:>6.3f} {rates['redress']:>8.3f}"
            f" {rates['bars_found']:>11.3f}"
        )
    lines.append(
        f"seed {report['seed']}; machine: {machine['platform']}, {machine['cpus']} CPUs,"
        f" Python {machine['python']}"
    )
    return "\n".join(lines)


# ---------------------------------------------------------------- clips and edits


Edit = Callable[[list[Clip], int, random.Random], tuple[Clip, frozenset[int]]]
_NONE: frozenset[int] = frozenset()


def _families() -> dict[str, Edit]:
    return {
        "recompress": lambda clips, n, rng: ([_fit(f, 480) for f in clips[n]], _NONE),
        "letterbox": lambda clips, n, rng: ([_letterbox(f) for f in clips[n]], _NONE),
        "canvas": lambda clips, n, rng: ([_canvas(f, rng) for f in clips[n]], _NONE),
        "excerpt": lambda clips, n, rng: (_middle(clips[n]), _NONE),
        "compilation": _compilation,
        "letterbox+excerpt": lambda clips, n, rng: (
            [_letterbox(f) for f in _middle(clips[n])],
            _NONE,
        ),
        "square": lambda clips, n, rng: ([_square(f) for f in clips[n]], _NONE),
        "trim": _trim,
    }


def _square(frame: RgbArray) -> RgbArray:
    rows, cols = frame.shape[:2]
    side = min(rows, cols) // 2 * 2
    top, left = (rows - side) // 2, (cols - side) // 2
    return np.ascontiguousarray(frame[top : top + side, left : left + side])


def _trim(clips: list[Clip], n: int, rng: random.Random) -> tuple[Clip, frozenset[int]]:
    # The central part keeping 75-90 % of the area, the same for every frame.
    side = rng.uniform(0.75, 0.9) ** 0.5
    rows, cols = clips[n][0].shape[:2]
    height, width = round(rows * side / 2) * 2, round(cols * side / 2) * 2
    top, left = (rows - height) // 2, (cols - width) // 2
    return [
        np.ascontiguousarray(f[top : top + height, left : left + width]) for f in clips[n]
    ], _NONE


def _pan_clip(picture: RgbArray, rng: random.Random) -> Clip:
    """A clip that zooms and pans across ``picture`` (every second a different view)."""
    image = Image.fromarray(picture)
    width, height = SIZE
    scale = max(width / image.width, height / image.height) * 1.6
    image = image.resize((round(image.width * scale), round(image.height * scale)))
    start_zoom, end_zoom = rng.uniform(0.85, 1.0), rng.uniform(0.55, 0.7)
    x0, y0, x1, y1 = (rng.random() for _ in range(4))
    frames: Clip = []
    total = FPS * SECONDS
    for index in range(total):
        t = index / (total - 1)
        zoom = start_zoom + (end_zoom - start_zoom) * t
        box_w, box_h = image.width * zoom, image.width * zoom * height / width
        box_h = min(box_h, image.height)
        box_w = box_h * width / height
        left = (image.width - box_w) * (x0 + (x1 - x0) * t)
        top = (image.height - box_h) * (y0 + (y1 - y0) * t)
        view = image.resize((width, height), box=(left, top, left + box_w, top + box_h))
        frames.append(np.asarray(view))
    return frames


def _fit(frame: RgbArray, width: int) -> RgbArray:
    height = round(frame.shape[0] * width / frame.shape[1] / 2) * 2
    return np.asarray(Image.fromarray(frame).resize((width, height)))


def _letterbox(frame: RgbArray) -> RgbArray:
    # A landscape clip posted in a 9:16 portrait frame, bars above and below.
    content = _fit(frame, 360)
    canvas = np.zeros((640, 360, 3), dtype=np.uint8)
    top = (640 - content.shape[0]) // 2
    canvas[top : top + content.shape[0]] = content
    return canvas


def _canvas(frame: RgbArray, rng: random.Random) -> RgbArray:
    colour = rng.choice(((24, 24, 24), (240, 240, 240), (40, 60, 120)))
    content = _fit(frame, 400)
    canvas = np.empty((480, 480, 3), dtype=np.uint8)
    canvas[:] = colour
    top, left = (480 - content.shape[0]) // 2, (480 - content.shape[1]) // 2
    canvas[top : top + content.shape[0], left : left + content.shape[1]] = content
    return canvas


def _middle(clip: Clip) -> Clip:
    quarter = len(clip) // 4
    return clip[quarter : len(clip) - quarter]


def _compilation(clips: list[Clip], n: int, rng: random.Random) -> tuple[Clip, frozenset[int]]:
    others = [m for m in range(len(clips)) if m != n]
    before, after = rng.sample(others, 2)
    return clips[before] + clips[n] + clips[after], frozenset({before, after})


def _encode(clip: Clip, bit_rate: int) -> bytes:
    out = io.BytesIO()
    with av.open(out, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.height, stream.width = clip[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        stream.bit_rate = bit_rate
        stream.codec_context.options = {"preset": "veryfast"}
        stream.codec_context.time_base = Fraction(1, FPS)
        for frame in clip:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return out.getvalue()


def _frames(frames: Sequence[VpdqFrame]) -> npt.NDArray[np.uint8]:
    return unique_frames([f.pdq.bits for f in frames if f.quality >= QUALITY_MIN])


def _rate(rows: list[dict[str, Any]], family: str, key: str) -> float:
    chosen = [r[key] for r in rows if r["family"] == family]
    return round(float(np.mean(chosen)), 3) if chosen else 0.0
