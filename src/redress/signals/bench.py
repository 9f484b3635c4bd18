"""``redress bench hash``: hashing speed beside Meta's hasher, measured in the same run.

Images: Telegram-like inputs (photos re-encoded at 1280 px on the long side,
JPEG quality 87) are generated from the photos bundled with scikit-image.
Three hashers run over the same files, on one CPU core, interleaved pass by
pass so that machine load hits all of them alike:

- the anchor, ``threatexchange``'s ``PdqSignal.hash_from_file`` (the path
  Hasher-Matcher-Actioner uses: Pillow decode, full resolution, Meta's C++ PDQ);
- Redress exact (``hash_file`` with ``exact=True``: full decode, EXIF, digests);
- Redress fast (``hash_file`` default: reduced-scale decode).

Each figure is the best pass; ratios are against the anchor. The same run
also reports how far fast hashes are from exact ones on these inputs.

Video: seconds of video hashed per second at one hash per second (Redress
default and exact modes) on the sample videos, beside a decode-only floor
(PyAV decoding the same frames, no conversion, no hashing).
"""

from __future__ import annotations

import math
import os
import platform
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import av
import numpy as np
import pdqhash
import PIL
from PIL import Image

from redress.errors import ConfigurationError
from redress.machine import cpu_model
from redress.signals.options import HashOptions
from redress.signals.service import hash_file

# scikit-image's bundled photographs (colour first); all ship inside the wheel.
_SOURCE_PHOTOS = (
    "astronaut",
    "coffee",
    "chelsea",
    "rocket",
    "hubble_deep_field",
    "immunohistochemistry",
    "retina",
    "camera",
    "moon",
    "coins",
)
LONG_SIDE = 1280
JPEG_QUALITY = 87


def run_hash_bench(
    *, count: int = 40, repeat: int = 2, videos: Sequence[Path] = (), seed: int = 2026
) -> dict[str, Any]:
    """Run the image and video benchmarks; return every figure as plain JSON-able data."""
    anchor = _anchor_hasher()
    with _one_core() as core, tempfile.TemporaryDirectory(prefix="redress-bench-") as folder:
        paths = _telegram_like_images(Path(folder), count, seed)
        exact_options = HashOptions(exact=True)
        fast_options = HashOptions()
        hashers: dict[str, Callable[[Path], object]] = {
            "anchor": anchor,
            "exact": lambda p: hash_file(p, exact_options),
            "fast": lambda p: hash_file(p, fast_options),
        }
        best = _time_interleaved(hashers, paths, repeat)
        accuracy = _fast_vs_exact(paths, exact_options, fast_options)
        anchor_rate = count / best["anchor"]
        images = {
            name: {
                "images_per_s": round(count / seconds, 1),
                "ms_per_image": round(seconds / count * 1000, 2),
                "ratio_vs_anchor": round((count / seconds) / anchor_rate, 2),
            }
            for name, seconds in best.items()
        }
        video = _video_bench(videos, repeat) if videos else None
    return {
        "benchmark": "hash",
        "machine": _machine(core),
        "inputs": {
            "images": count,
            "source": "scikit-image bundled photos, random crops, "
            f"{LONG_SIDE} px long side, JPEG q{JPEG_QUALITY}",
            "passes": repeat,
        },
        "anchor": "threatexchange PdqSignal.hash_from_file (HMA's PDQ path)",
        "images": images,
        "fast_vs_exact": accuracy,
        "targets": {"fast_ratio": 10.0, "exact_ratio": 1.0},
        "video": video,
    }


def render_report(report: dict[str, Any]) -> str:
    """Human-readable lines for the terminal (``--json`` prints the dict itself)."""
    machine = report["machine"]
    lines = [
        f"redress bench hash: {report['inputs']['images']} images ({report['inputs']['source']}),"
        f" best of {report['inputs']['passes']} tries per image, one core of {machine['cpu']}",
        f"anchor: {report['anchor']}",
        "",
        f"{'hasher':<8} {'images/s':>10} {'ms/image':>10} {'vs anchor':>10}",
    ]
    for name, figures in report["images"].items():
        lines.append(
            f"{name:<8} {figures['images_per_s']:>10.1f} {figures['ms_per_image']:>10.2f}"
            f" {figures['ratio_vs_anchor']:>9.2f}x"
        )
    accuracy = report["fast_vs_exact"]
    lines.append(
        f"fast vs exact: mean {accuracy['mean_bits']} bits, max {accuracy['max_bits']},"
        f" {accuracy['share_within_8_bits'] * 100:.1f}% within 8 bits;"
        f" exact == anchor on {accuracy['exact_equals_anchor']} of {accuracy['images']}"
    )
    video = report.get("video")
    if video:
        lines += [
            "",
            f"video: {video['videos']} sample videos, {video['video_seconds']:.1f} s,"
            f" {video['frames']} frames, 1 hash/s",
        ]
        for name in ("decode_only", "default", "exact"):
            figures = video[name]
            lines.append(
                f"{name:<12} {figures['video_s_per_s']:>8.1f} video-s/s"
                f" ({figures['share_of_decode_floor'] * 100:.0f}% of the decode-only floor)"
            )
    return "\n".join(lines)


# ---------------------------------------------------------------- images


def _anchor_hasher() -> Callable[[Path], object]:
    try:
        from threatexchange.signal_type.pdq.signal import PdqSignal
    except ImportError as exc:
        raise ConfigurationError(
            "the benchmark anchor needs the bench extra: pip install 'redress[bench]'",
            code="bench_dependency_missing",
        ) from exc
    hasher: Callable[[Path], object] = PdqSignal.hash_from_file
    return hasher


def _telegram_like_images(folder: Path, count: int, seed: int) -> list[Path]:
    try:
        from skimage import data as skimage_data
    except ImportError as exc:
        raise ConfigurationError(
            "the benchmark photos come from scikit-image: pip install 'redress[bench]'",
            code="bench_dependency_missing",
        ) from exc
    sources = [
        Image.fromarray(getattr(skimage_data, name)()).convert("RGB") for name in _SOURCE_PHOTOS
    ]
    rng = random.Random(seed)
    paths = []
    for index in range(count):
        image = sources[index % len(sources)]
        width, height = image.size
        # A different framing of each photo, as re-posts crop and re-encode.
        crop_w, crop_h = rng.randint(width * 3 // 4, width), rng.randint(height * 3 // 4, height)
        left, top = rng.randint(0, width - crop_w), rng.randint(0, height - crop_h)
        crop = image.crop((left, top, left + crop_w, top + crop_h))
        scale = LONG_SIDE / max(crop_w, crop_h)
        crop = crop.resize((round(crop_w * scale), round(crop_h * scale)), Image.Resampling.LANCZOS)
        path = folder / f"telegram-{index:04d}.jpg"
        crop.save(path, "JPEG", quality=JPEG_QUALITY)
        paths.append(path)
    return paths


def _time_interleaved(
    hashers: dict[str, Callable[[Path], object]], paths: list[Path], repeat: int
) -> dict[str, float]:
    """Seconds each hasher needs for all ``paths``: per image, the best of ``repeat`` tries.

    The hashers take turns image by image (in rotating order), so a burst of
    load from elsewhere on the machine falls on all of them alike, and the
    per-image minimum discards the tries such a burst spoiled.
    """
    for hasher in hashers.values():  # warm caches and lazy imports
        for path in paths[:2]:
            hasher(path)
    names = list(hashers)
    best = {name: [float("inf")] * len(paths) for name in names}
    for attempt in range(repeat):
        for index, path in enumerate(paths):
            shift = (attempt + index) % len(names)
            for name in names[shift:] + names[:shift]:
                started = time.perf_counter()
                hashers[name](path)
                elapsed = time.perf_counter() - started
                best[name][index] = min(best[name][index], elapsed)
    return {name: math.fsum(times) for name, times in best.items()}


def _fast_vs_exact(
    paths: list[Path], exact_options: HashOptions, fast_options: HashOptions
) -> dict[str, Any]:
    from threatexchange.signal_type.pdq.pdq_hasher import pdq_from_file

    distances = []
    equal = 0
    for path in paths:
        exact = hash_file(path, exact_options).pdq
        fast = hash_file(path, fast_options).pdq
        if exact is None or fast is None:  # pragma: no cover - every image has a PDQ hash
            continue
        distances.append(exact.distance(fast))
        anchor_hex, _ = pdq_from_file(path)
        equal += anchor_hex == exact.hex
    return {
        "images": len(paths),
        "mean_bits": round(statistics.fmean(distances), 2),
        "max_bits": max(distances),
        "share_within_8_bits": round(sum(d <= 8 for d in distances) / len(distances), 4),
        "exact_equals_anchor": equal,
    }


# ---------------------------------------------------------------- video


def _video_bench(videos: Sequence[Path], repeat: int) -> dict[str, Any]:
    seconds = 0.0
    frames = 0
    for path in videos:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            if stream.duration is not None and stream.time_base is not None:
                seconds += float(stream.duration * stream.time_base)
            frames += stream.frames or 0

    default, exact = HashOptions(), HashOptions(exact=True)
    runs: dict[str, Callable[[Path], object]] = {
        "decode_only": _decode_only,
        "default": lambda p: hash_file(p, default),
        "exact": lambda p: hash_file(p, exact),
    }
    best = _time_interleaved(runs, list(videos), repeat)
    floor = seconds / best["decode_only"]
    return {
        "videos": len(videos),
        "video_seconds": round(seconds, 2),
        "frames": frames,
        "seconds_per_hash": 1.0,
        **{
            name: {
                "video_s_per_s": round(seconds / elapsed, 1),
                "share_of_decode_floor": round((seconds / elapsed) / floor, 3),
            }
            for name, elapsed in best.items()
        },
    }


def _decode_only(path: Path) -> None:
    """The floor: demux and decode every frame as vPDQ does, then drop it."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.codec_context.thread_type = "AUTO"
        for _ in container.decode(stream):
            pass


# ---------------------------------------------------------------- machine


@contextmanager
def _one_core() -> Iterator[int | None]:
    """Pin this process to one CPU for the measurement ("per core" figures), then restore."""
    if not hasattr(os, "sched_setaffinity"):
        yield None
        return
    allowed = os.sched_getaffinity(0)
    core = min(allowed)
    os.sched_setaffinity(0, {core})
    try:
        yield core
    finally:
        os.sched_setaffinity(0, allowed)


def _machine(core: int | None) -> dict[str, Any]:
    return {
        "cpu": cpu_model(),
        "cores_available": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "pinned_core": core,
        "python": platform.python_version(),
        "pillow": PIL.__version__,
        "pdqhash": pdqhash.__version__,
        "pyav": av.__version__,
        "numpy": np.__version__,
    }


def default_sample_videos() -> list[Path]:
    """Meta's sample videos when ../shared/data is beside the checkout (or REDRESS_SHARED_DATA)."""
    base = os.environ.get("REDRESS_SHARED_DATA")
    candidates = [Path(base)] if base else []
    candidates.append(Path.cwd().parent / "shared" / "data")
    for root in candidates:
        folder = root / "vpdq" / "videos"
        if folder.is_dir():
            return sorted(folder.glob("*.mp4"))
    return []


def synthetic_video(folder: Path, seconds: float = 10.0) -> Path:
    """A 1280x720, 30 fps H.264 clip of moving photo crops, for machines without the samples."""
    path = folder / "synthetic.mp4"
    rng = np.random.default_rng(1)
    base = (rng.random((90, 160, 3)) * 255).astype(np.uint8)
    picture = Image.fromarray(base).resize((1600, 900), Image.Resampling.BICUBIC)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 1280, 720, "yuv420p"
        for index in range(int(seconds * 30)):
            offset = index % 300
            frame = picture.crop((offset, offset // 3, offset + 1280, offset // 3 + 720))
            video_frame = av.VideoFrame.from_ndarray(np.asarray(frame), format="rgb24")
            for packet in stream.encode(video_frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
