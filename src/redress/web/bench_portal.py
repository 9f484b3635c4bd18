"""``redress bench portal``: how long a victim's browser takes to fingerprint photos.

Generates phone-size JPEGs (default 20 photos of 4000x3000, 12 MP) from
scikit-image's sample pictures, upscaled with noise so they compress like
camera output, then times, in the same run:

- the portal's JavaScript in headless Chromium (decode with EXIF orientation,
  PDQ + 8 dihedral variants + quality, MD5, SHA-256, in Web Workers), timed
  in the page from "files selected" to "all hashes ready";
- the anchor: the same outputs computed on the server's path, in one Python
  process (Pillow decode to RGB, Meta's C++ PDQ through ``pdqhash``
  ``compute_dihedral``, ``hashlib`` MD5 and SHA-256).

Both sides' PDQ hashes are compared, so the figure is only reported for
hashes that agree.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pdqhash
from PIL import Image

from redress.errors import InvalidInputError
from redress.machine import describe_machine
from redress.web.browser import PortalSite, hash_in_page, headless_chromium

TARGET_SECONDS = 10.0
_SAMPLES = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field")


@dataclass(frozen=True, slots=True)
class PortalBenchResult:
    """Figures of one ``redress bench portal`` run."""

    photos: int
    width: int
    height: int
    total_megabytes: float
    browser_seconds: float
    browser_ms_per_photo: float
    browser_workers: int
    browser_cpu_seconds: float | None
    anchor: str
    anchor_seconds: float
    anchor_cpu_seconds: float
    ratio: float
    target_seconds: float
    within_target: bool
    max_pdq_distance: int
    chromium: str
    machine: str
    load_average: float

    def as_dict(self) -> dict[str, Any]:
        """The figures as a JSON-ready dict (for ``--json``)."""
        return {"bench": "portal", **asdict(self)}


def generate_photos(folder: Path, count: int, width: int, height: int, seed: int = 9) -> list[Path]:
    """Write ``count`` camera-like JPEGs of ``width`` x ``height`` into ``folder``."""
    if count < 1 or width < 16 or height < 16:
        raise InvalidInputError(
            "need at least 1 photo of at least 16x16 pixels", code="bad_bench_size"
        )
    try:
        from skimage import data as samples
    except ImportError as exc:
        raise InvalidInputError(
            "scikit-image is needed to generate the photos (pip install 'redress[bench]')",
            code="bench_dependency_missing",
        ) from exc
    rng = np.random.default_rng(seed)
    paths = []
    for index in range(count):
        picture = np.asarray(getattr(samples, _SAMPLES[index % len(_SAMPLES)])())
        if picture.ndim == 2:
            picture = np.stack([picture] * 3, axis=-1)
        picture = picture[..., :3].astype(np.uint8)
        # Flip/rotate so repeated sample pictures still make distinct photos.
        picture = np.rot90(picture, index // len(_SAMPLES) % 4)
        big = Image.fromarray(np.ascontiguousarray(picture)).resize(
            (width, height), Image.Resampling.BICUBIC
        )
        noise = rng.integers(-6, 7, size=(height, width, 3), dtype=np.int16)
        pixels = np.clip(np.asarray(big, dtype=np.int16) + noise, 0, 255).astype(np.uint8)
        path = folder / f"photo-{index:02d}.jpg"
        Image.fromarray(pixels).save(path, quality=90)
        paths.append(path)
    return paths


def _bits_hex(bits: np.ndarray) -> str:
    return "".join(
        f"{int(''.join(str(int(b)) for b in bits[k : k + 4]), 2):x}" for k in range(0, 256, 4)
    )


def descendants_cpu_seconds() -> float | None:
    """CPU seconds (user + system) used so far by this process's descendants (the browser).

    On a shared machine wall-clock time depends on everyone else's load; CPU
    time much less, so both are recorded. None where /proc is unavailable.
    """
    ticks = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    used: dict[int, float] = {}
    try:
        entries = [e for e in os.listdir("/proc") if e.isdigit()]
    except OSError:
        return None
    for entry in entries:
        try:
            stat = Path(f"/proc/{entry}/stat").read_text(encoding="ascii")
        except OSError:
            continue  # exited meanwhile
        fields = stat[stat.rindex(")") + 2 :].split()
        parents[int(entry)] = int(fields[1])
        used[int(entry)] = (int(fields[11]) + int(fields[12])) / ticks
    ours = {os.getpid()}
    grew = True
    while grew:
        found = {pid for pid, parent in parents.items() if parent in ours} - ours
        grew = bool(found)
        ours |= found
    ours.discard(os.getpid())
    return sum(used[pid] for pid in ours)


def anchor_hashes(paths: Sequence[Path]) -> tuple[float, list[str]]:
    """Seconds the server's path takes for ``paths``, and the PDQ hexes it produced."""
    hexes = []
    started = time.perf_counter()
    for path in paths:
        raw = path.read_bytes()
        hashlib.md5(raw, usedforsecurity=False).hexdigest()
        hashlib.sha256(raw).hexdigest()
        with Image.open(path) as image:
            pixels = np.asarray(image.convert("RGB"))
        variants, _quality = pdqhash.compute_dihedral(pixels)
        hexes.append(_bits_hex(variants[0]))
    elapsed = time.perf_counter() - started
    return elapsed, hexes


def run_portal_bench(
    *,
    count: int = 20,
    width: int = 4000,
    height: int = 3000,
    workers: int | None = None,
    chromium: str | None = None,
) -> PortalBenchResult:
    """Generate the photos, time the browser and the anchor on them, compare hashes."""
    with tempfile.TemporaryDirectory(prefix="redress-bench-portal-") as tmp:
        paths = generate_photos(Path(tmp), count, width, height)
        # Other work on the machine slows both sides; the record keeps how much there was.
        load = os.getloadavg()[0]
        megabytes = sum(p.stat().st_size for p in paths) / 1e6
        with PortalSite() as site, headless_chromium(chromium) as browser:
            page = browser.new_page()
            page.goto(site.url + "/")
            cpu_before = descendants_cpu_seconds()
            outcome = hash_in_page(page, paths, options={"applyExif": True}, workers=workers)
            cpu_after = descendants_cpu_seconds()
            version = browser.version
            page.close()
        anchor_cpu_started = time.process_time()
        anchor_seconds, anchor_hexes = anchor_hashes(paths)
        anchor_cpu = time.process_time() - anchor_cpu_started
    failures = [r["error"] for r in outcome["results"] if "error" in r]
    if failures:
        raise InvalidInputError(
            f"the browser could not hash the photos: {failures[0]}", code="bench_failed"
        )
    distances = [
        (int(r["hashes"]["pdq"], 16) ^ int(h, 16)).bit_count()
        for r, h in zip(outcome["results"], anchor_hexes, strict=True)
    ]
    seconds = float(outcome["elapsedMs"]) / 1000
    # The target (10 s for 20 photos of 12 MP), scaled to the size run.
    target = TARGET_SECONDS * (count / 20) * (width * height / 12_000_000)
    return PortalBenchResult(
        photos=count,
        width=width,
        height=height,
        total_megabytes=round(megabytes, 1),
        browser_seconds=round(seconds, 3),
        browser_ms_per_photo=round(1000 * seconds / count, 1),
        browser_workers=int(outcome["workers"]),
        browser_cpu_seconds=(
            None if cpu_before is None or cpu_after is None else round(cpu_after - cpu_before, 3)
        ),
        anchor="server path, one process: Pillow decode + pdqhash.compute_dihedral + hashlib",
        anchor_seconds=round(anchor_seconds, 3),
        anchor_cpu_seconds=round(anchor_cpu, 3),
        ratio=round(seconds / anchor_seconds, 2),
        target_seconds=round(target, 2),
        within_target=seconds <= target,
        max_pdq_distance=max(distances),
        chromium=version,
        machine=describe_machine(),
        load_average=round(load, 2),
    )
