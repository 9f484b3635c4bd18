"""``redress bench robustness``: recall and false matches of plain PDQ and Redress's hash sets.

Everything is generated in the same run:

- **originals**: the photographs bundled with scikit-image, and distinct
  tiles cut from them (tiles of one photograph overlap by at most a quarter of
  their area, so they are different pictures that look alike: that is where
  false matches come from). Originals are split by source photograph into a
  *tuning* half and a *held-out* half; thresholds were chosen on the tuning
  half only, and both are reported.
- **edited copies**: each original is re-shared through every edit family
  below, made with Pillow (random parameters drawn from the seed), then JPEG
  encoded as a chat app would, and decoded again.

For each copy, plain PDQ (one hash of the copy against one hash of each
original, distance <= 31) and Redress (the copy's query set exactly as a scan
computes it, :func:`~redress.signals.service.image_hashes`, against every
original's :func:`~redress.signals.robust.reference_hash_set`, decided by
:func:`~redress.signals.robust.match_sets`) are asked which originals
it matches. A hit on its own original is recall; a hit on any other original
is a false match. All pairs are compared with one vectorised distance table.

A third column, **Redress + verification**, is what an installation gets for
pictures whose pixels it held when banking them (docs/robustness.md,
"Verification"): every original whose hash set came within
:data:`~redress.signals.verify.NEAR_MISS_BITS` of a match (a near miss) is
checked with local features (ORB + RANSAC) against features computed from the
original. It needs OpenCV; without it the column is left out. A verified pair
of two *different* originals cut from the same photograph shares real pixels
(one may contain the other); such pairs are counted apart from pairs of
different photographs.
"""

from __future__ import annotations

import io
import os
import platform
import random
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFilter, ImageFont, ImageOps

from redress.errors import ConfigurationError
from redress.machine import cpu_model
from redress.signals.errors import HashError
from redress.signals.options import HashOptions
from redress.signals.pdq import RgbArray, pdq_from_rgb
from redress.signals.robust import (
    PLAIN_THRESHOLD,
    QUALITY_MIN,
    DerivedHash,
    decode_picture,
    pair_distances,
    reference_hash_set,
)
from redress.signals.service import image_hashes
from redress.signals.verify import (
    NEAR_MISS_BITS,
    LocalFeatures,
    available,
    local_features,
    verify_copy,
)

# scikit-image's bundled pictures: photographs and photo-like scans.
_SOURCES = (
    "astronaut",
    "coffee",
    "chelsea",
    "rocket",
    "camera",
    "coins",
    "hubble_deep_field",
    "immunohistochemistry",
    "retina",
    "moon",
    "clock",
    "grass",
    "gravel",
    "brick",
    "colorwheel",
    "page",
)
# Sources whose originals are reported as held out (never looked at while tuning).
_HELD_OUT = frozenset(
    {"coffee", "camera", "hubble_deep_field", "moon", "grass", "colorwheel", "page", "clock"}
)


@dataclass(frozen=True, slots=True)
class Original:
    """One protected picture of the benchmark."""

    name: str
    source: str
    rgb: RgbArray
    # A picture from the operator's own folder (``--pictures``): never seen while tuning.
    outside: bool = False

    @property
    def held_out(self) -> bool:
        """Whether this original belongs to the held-out split."""
        return self.outside or self.source in _HELD_OUT


Edit = Callable[[Image.Image, random.Random], Image.Image]
# Edit families Redress added beyond the list (a crop at a free position
# and aspect): reported, and counted in the overall recall, and also left out of
# a second overall figure that covers exactly the families.
EXTRA_FAMILIES = frozenset({"crop-free"})
_SCAN_OPTIONS = HashOptions()
_QUERY_OPTIONS = HashOptions(robust="query")
_NO_MARGIN = 256


def run_robustness_bench(
    *,
    originals: int = 60,
    seed: int = 2026,
    repeat: int = 3,
    pictures_dir: Path | None = None,
) -> dict[str, Any]:
    """Generate originals and edited copies, hash both ways; return every figure as JSON data.

    Hashing CPU is each copy's fastest of ``repeat`` runs, for plain PDQ and
    Redress alike. With ``pictures_dir``, the originals are the pictures in
    that folder instead (:func:`folder_pictures`), all of them held out.
    """
    rng = random.Random(seed)
    skipped: list[str] = []
    if pictures_dir is None:
        pictures = sample_pictures(originals, rng)
    else:
        pictures, skipped = folder_pictures(pictures_dir)
    families = _edit_families()
    plain_refs = np.stack([_plain_hash(o.rgb)[0] for o in pictures])
    plain_quality = np.array([_plain_hash(o.rgb)[1] for o in pictures])
    ref_sets = [reference_hash_set(o.rgb) for o in pictures]
    ref_bits, ref_owner, ref_limit = _flatten(ref_sets)
    verifying = available()
    feature_time = 0.0
    held: list[LocalFeatures] = []
    if verifying:
        start = time.process_time()
        held = [local_features(o.rgb) for o in pictures]
        feature_time = time.process_time() - start
    verify_time = 0.0
    checks = 0

    copies: list[tuple[int, str, bytes]] = []
    for index, original in enumerate(pictures):
        image = Image.fromarray(original.rgb)
        for family, edit in families.items():
            edited = edit(image, rng).convert("RGB")
            copies.append((index, family, _jpeg(edited, 85)))

    plain_time = 0.0
    scan_time = 0.0
    robust_time = 0.0
    rows: list[dict[str, Any]] = []
    for index, family, data in copies:
        # Each of the three is timed ``repeat`` times in turn and its fastest
        # run kept: another job on the machine only ever adds CPU time (cache
        # and core sharing), and it must not decide the ratio either way.
        plain_best = scan_best = robust_best = float("inf")
        for _ in range(repeat):
            # The anchor: plain PDQ as Hasher-Matcher-Actioner computes it (the
            # whole picture decoded, then hashed).
            start = time.process_time()
            rgb = _decode(data)
            plain = pdq_from_rgb(rgb)
            plain_best = min(plain_best, time.process_time() - start)
            # Redress's own plain scan (a reduced JPEG decode), for a second ratio.
            start = time.process_time()
            image_hashes(data, _SCAN_OPTIONS)
            scan_best = min(scan_best, time.process_time() - start)
            # The query set exactly as a scan computes it (the scan's fast PDQ as
            # its whole hash, windows from a reduced decode), timed and matched.
            start = time.process_time()
            _, query = image_hashes(data, _QUERY_OPTIONS)
            robust_best = min(robust_best, time.process_time() - start)
        plain_time += plain_best
        scan_time += scan_best
        robust_time += robust_best
        plain_bits = np.frombuffer(plain.bits, dtype=np.uint8)[np.newaxis, :]
        plain_dist = pair_distances(plain_refs, plain_bits)[:, 0]
        plain_hits = set(np.flatnonzero(plain_dist <= PLAIN_THRESHOLD).tolist())
        robust_hits, robust_margin, near = _robust_hits(
            query, ref_bits, ref_owner, ref_limit, index
        )
        verified: set[int] = set()
        if verifying and near:
            start = time.process_time()
            verified = {o for o in near if verify_copy(held[o], rgb).same_scene}
            verify_time += time.process_time() - start
            checks += len(near)
        checked_hits = robust_hits | verified
        related = {
            o for o in checked_hits - {index} if pictures[o].source == pictures[index].source
        }
        plain_others = np.delete(plain_dist, index)
        plain_margin = (
            int(plain_others.min()) - PLAIN_THRESHOLD if plain_others.size else _NO_MARGIN
        )
        rows.append(
            {
                "original": index,
                "family": family,
                "plain_hit": index in plain_hits,
                "robust_hit": index in robust_hits,
                "plain_false": len(plain_hits - {index}),
                "robust_false": len(robust_hits - {index}),
                "verified_hit": index in checked_hits,
                "verified_false": len(checked_hits - {index} - related),
                "verified_related": len(related),
                "query_hashes": len(query),
                "plain_margin": plain_margin,
                "robust_margin": robust_margin,
            }
        )

    hashable = [bool(q >= QUALITY_MIN) for q in plain_quality]
    splits = {
        "tuning": [not o.held_out for o in pictures],
        "held_out": [o.held_out for o in pictures],
        "all": [True] * len(pictures),
    }
    report: dict[str, Any] = {
        "originals": len(pictures),
        "originals_hashable": int(sum(hashable)),
        "copies": len(copies),
        "cross_pairs": len(copies) * (len(pictures) - 1),
        "families": list(families),
        "seed": seed,
        "pictures": str(pictures_dir) if pictures_dir is not None else None,
        "skipped": skipped,
        "hashes_per_original": {
            "plain": 1,
            "redress_mean": round(float(np.mean([len(s) for s in ref_sets])), 2),
            "redress_max": max(len(s) for s in ref_sets),
        },
        "query_hashes_mean": round(float(np.mean([r["query_hashes"] for r in rows])), 2),
        "query_cpu_seconds": {
            "repeat": repeat,
            "plain": round(plain_time, 3),
            "redress": round(robust_time, 3),
            "ratio": round(robust_time / plain_time, 2) if plain_time else None,
            "redress_plain_scan": round(scan_time, 3),
            "ratio_to_redress_plain_scan": round(robust_time / scan_time, 2) if scan_time else None,
        },
        "verification": {
            "available": verifying,
            "near_miss_bits": NEAR_MISS_BITS,
            "checks": checks,
            "features_cpu_seconds": round(feature_time, 3),
            "cpu_seconds": round(verify_time, 3),
            "cpu_ms_per_check": round(1000 * verify_time / checks, 2) if checks else None,
        },
        "splits": {},
        "machine": machine_figures(),
    }
    for split, member in splits.items():
        report["splits"][split] = _split_figures(
            rows, member, hashable, list(families), verifying=verifying
        )
    return report


# ---------------------------------------------------------------- figures


def _split_figures(
    rows: list[dict[str, Any]],
    member: list[bool],
    hashable: list[bool],
    families: list[str],
    *,
    verifying: bool,
) -> dict[str, Any]:
    chosen = [r for r in rows if member[r["original"]]]
    good = [r for r in chosen if hashable[r["original"]]]
    listed = [r for r in good if r["family"] not in EXTRA_FAMILIES]
    per_family: dict[str, dict[str, float]] = {}
    for family in families:
        subset = [r for r in good if r["family"] == family]
        per_family[family] = {
            "plain": _rate(subset, "plain_hit"),
            "redress": _rate(subset, "robust_hit"),
        }
        if verifying:
            per_family[family]["verified"] = _rate(subset, "verified_hit")
    figures: dict[str, Any] = {
        "originals": sum(member),
        "originals_hashable": sum(m and h for m, h in zip(member, hashable, strict=True)),
        "recall_hashable": {
            "plain": _rate(good, "plain_hit"),
            "redress": _rate(good, "robust_hit"),
        },
        "recall_hashable_issue_families": {
            "plain": _rate(listed, "plain_hit"),
            "redress": _rate(listed, "robust_hit"),
        },
        "recall_all": {"plain": _rate(chosen, "plain_hit"), "redress": _rate(chosen, "robust_hit")},
        "false_matches": {
            "plain": sum(r["plain_false"] for r in chosen),
            "redress": sum(r["robust_false"] for r in chosen),
        },
        # Bits by which the nearest pair of different pictures stayed outside
        # its threshold (negative when a false match happened).
        "closest_false_margin": {
            "plain": min((r["plain_margin"] for r in chosen), default=_NO_MARGIN),
            "redress": min((r["robust_margin"] for r in chosen), default=_NO_MARGIN),
        },
        "families": per_family,
    }
    if verifying:
        figures["verified"] = {
            "recall_hashable": _rate(good, "verified_hit"),
            "recall_hashable_issue_families": _rate(listed, "verified_hit"),
            "recall_all": _rate(chosen, "verified_hit"),
            "false_matches": sum(r["verified_false"] for r in chosen),
            "same_photograph": sum(r["verified_related"] for r in chosen),
        }
    return figures


def _rate(rows: list[dict[str, Any]], key: str) -> float:
    return round(sum(bool(r[key]) for r in rows) / len(rows), 3) if rows else 0.0


def _robust_hits(
    query: tuple[DerivedHash, ...],
    ref_bits: npt.NDArray[np.uint8],
    ref_owner: npt.NDArray[np.int64],
    ref_limit: npt.NDArray[np.int64],
    own: int,
) -> tuple[set[int], int, set[int]]:
    """Originals the query set matches, how far outside its threshold the nearest
    pair with any *other* original stayed (negative: a false match), and the near
    misses: originals not matched whose nearest pair stayed within NEAR_MISS_BITS."""
    if not query:
        return set(), _NO_MARGIN, set()
    query_bits = np.frombuffer(b"".join(h.pdq.bits for h in query), dtype=np.uint8).reshape(-1, 32)
    distances = pair_distances(ref_bits, query_bits)
    limits = np.minimum(ref_limit[:, np.newaxis], np.array([h.threshold for h in query]))
    margins = distances - limits
    hit_rows = np.flatnonzero((margins <= 0).any(axis=1))
    others = margins[ref_owner != own]
    margin = int(others.min()) if others.size else _NO_MARGIN
    nearest = margins.min(axis=1)
    near_rows = np.flatnonzero((nearest > 0) & (nearest <= NEAR_MISS_BITS))
    hits = set(ref_owner[hit_rows].tolist())
    return hits, margin, set(ref_owner[near_rows].tolist()) - hits


def _flatten(
    sets: list[tuple[DerivedHash, ...]],
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    bits = [np.frombuffer(h.pdq.bits, dtype=np.uint8) for s in sets for h in s]
    owner = [i for i, s in enumerate(sets) for _ in s]
    limit = [h.threshold for s in sets for h in s]
    return (
        np.stack(bits) if bits else np.zeros((0, 32), dtype=np.uint8),
        np.array(owner, dtype=np.int64),
        np.array(limit, dtype=np.int64),
    )


def _plain_hash(rgb: RgbArray) -> tuple[npt.NDArray[np.uint8], int]:
    plain = pdq_from_rgb(np.ascontiguousarray(rgb))
    return np.frombuffer(plain.bits, dtype=np.uint8).copy(), plain.quality


def _decode(data: bytes) -> RgbArray:
    with Image.open(io.BytesIO(data)) as image:
        out: RgbArray = np.asarray(image.convert("RGB"))
    return out


def _jpeg(image: Image.Image, quality: int) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def machine_figures() -> dict[str, Any]:
    """The machine a bench ran on, for its report."""
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "processor": cpu_model(),
        "cpus": os.cpu_count(),
    }


# ---------------------------------------------------------------- originals


def sample_pictures(count: int, rng: random.Random) -> list[Original]:
    """``count`` protected pictures: scikit-image's bundled photographs, then tiles of
    them (the robustness benches' originals)."""
    try:
        import skimage.data as sample_data
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ConfigurationError(
            "redress bench robustness needs scikit-image: pip install 'redress[bench]'"
        ) from exc
    sources: dict[str, RgbArray] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in _SOURCES:
            try:
                array = np.asarray(getattr(sample_data, name)())
            except (AttributeError, OSError, ImportError, ValueError):
                continue  # a sample a given scikit-image release lacks or must download
            if array.dtype != np.uint8:
                continue
            if array.ndim == 2:
                array = np.repeat(array[:, :, np.newaxis], 3, axis=2)
            sources[name] = np.ascontiguousarray(array[:, :, :3])
    if not sources:
        raise ConfigurationError("no scikit-image sample pictures could be loaded")
    out = [Original(name, name, rgb) for name, rgb in sources.items()]
    tiles: dict[str, list[tuple[int, int, int, int]]] = {name: [] for name in sources}
    names = sorted(sources)
    attempts = 0
    while len(out) < count and attempts < count * 200:
        attempts += 1
        name = names[attempts % len(names)]
        rgb = sources[name]
        rows, cols = rgb.shape[:2]
        side_h = int(rows * rng.uniform(0.25, 0.6))
        side_w = int(cols * rng.uniform(0.25, 0.6))
        if min(side_h, side_w) < 112:
            continue
        top = rng.randrange(0, rows - side_h + 1)
        left = rng.randrange(0, cols - side_w + 1)
        box = (top, left, side_h, side_w)
        if any(_overlap(box, other) > 0.25 for other in tiles[name]):
            continue
        tiles[name].append(box)
        tile = np.ascontiguousarray(rgb[top : top + side_h, left : left + side_w])
        out.append(Original(f"{name}-tile{len(tiles[name])}", name, tile))
    return out[:count] if len(out) > count else out


# Pictures from a folder are scaled to at most this longer side (a phone photo
# of 12 MP would make the run slow and tells nothing a 1600-pixel copy does not).
FOLDER_SIDE = 1600


def folder_pictures(folder: Path) -> tuple[list[Original], list[str]]:
    """The still pictures in ``folder`` (not its subfolders), sorted by name, as
    originals: EXIF orientation applied, at most :data:`FOLDER_SIDE` long. Also
    returns ``name: reason`` for each file that is not a picture Redress decodes."""
    if not folder.is_dir():
        raise ConfigurationError(f"--pictures: {folder} is not a folder")
    out: list[Original] = []
    skipped: list[str] = []
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        try:
            length = path.stat().st_size
            if length > _SCAN_OPTIONS.max_file_bytes:
                skipped.append(f"{path.name}: {length} bytes, over {_SCAN_OPTIONS.max_file_bytes}")
                continue
            rgb = decode_picture(path.read_bytes(), _SCAN_OPTIONS)
        except HashError as exc:
            skipped.append(f"{path.name}: {exc.message}")
            continue
        except OSError as exc:
            skipped.append(f"{path.name}: not readable ({exc.strerror or exc})")
            continue
        fitted = _fit(Image.fromarray(rgb), FOLDER_SIDE)
        out.append(Original(path.stem, path.name, np.asarray(fitted), outside=True))
    if len(out) < 2:
        raise ConfigurationError(
            f"--pictures: {folder} holds {len(out)} picture(s) Redress can decode; at least 2"
            " are needed (false matches are counted between different pictures)"
        )
    return out, skipped


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    top = max(a[0], b[0])
    bottom = min(a[0] + a[2], b[0] + b[2])
    left = max(a[1], b[1])
    right = min(a[1] + a[3], b[1] + b[3])
    if bottom <= top or right <= left:
        return 0.0
    shared = (bottom - top) * (right - left)
    return shared / min(a[2] * a[3], b[2] * b[3])


# ---------------------------------------------------------------- edits


def _edit_families() -> dict[str, Edit]:
    return {
        "recompress": _telegram,
        "small": lambda im, rng: _fit(im, 512),
        "crop90": lambda im, rng: _crop(im, 0.90, rng),
        "crop75": lambda im, rng: _crop(im, 0.75, rng),
        "crop-free": lambda im, rng: _free_crop(im, rng.uniform(0.75, 0.9), rng),
        "border15": _border,
        "meme": _meme,
        "screenshot": _screenshot,
        "sticker": _sticker,
        "text": _text_overlay,
        "flip": lambda im, rng: ImageOps.mirror(im),
        "rotate90": lambda im, rng: im.rotate(rng.choice((90, 270)), expand=True),
        "rotate5": _rotate_small,
        "grey": lambda im, rng: ImageOps.grayscale(im).convert("RGB"),
        "brightness": _brightness,
        "blur": lambda im, rng: im.filter(ImageFilter.GaussianBlur(rng.uniform(1.0, 2.0))),
        "crop+recompress": lambda im, rng: _telegram(_crop(im, rng.uniform(0.75, 0.9), rng), rng),
        "screenshot+flip": lambda im, rng: _screenshot(ImageOps.mirror(im), rng),
        "meme+crop": lambda im, rng: _meme(_crop(im, 0.85, rng), rng),
    }


def _fit(image: Image.Image, side: int) -> Image.Image:
    scale = side / max(image.size)
    if scale >= 1:
        return image
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS)


def _telegram(image: Image.Image, rng: random.Random) -> Image.Image:
    fitted = _fit(image.convert("RGB"), 1280)
    with Image.open(io.BytesIO(_jpeg(fitted, 80))) as reopened:
        return reopened.convert("RGB")


def _crop(image: Image.Image, area: float, rng: random.Random) -> Image.Image:
    """Keep ``area`` of the picture the way people crop: centred, off one edge, or to a corner."""
    style = rng.choice(("central", "edge", "corner"))
    if style == "central":
        keep_w = keep_h = area**0.5
        left_share = top_share = 0.5
    elif style == "edge":
        if rng.random() < 0.5:
            keep_w, keep_h = 1.0, area
        else:
            keep_w, keep_h = area, 1.0
        left_share = top_share = float(rng.choice((0, 1)))
    else:
        keep_w = keep_h = area**0.5
        left_share, top_share = float(rng.choice((0, 1))), float(rng.choice((0, 1)))
    width, height = round(image.width * keep_w), round(image.height * keep_h)
    left = round((image.width - width) * left_share)
    top = round((image.height - height) * top_share)
    return image.crop((left, top, left + width, top + height))


def _free_crop(image: Image.Image, area: float, rng: random.Random) -> Image.Image:
    """Keep ``area`` of the picture at a random position with a random aspect change."""
    stretch = rng.uniform(0.9, 1.1)
    keep_w = min(1.0, (area**0.5) * stretch)
    keep_h = min(1.0, area / keep_w)
    width, height = round(image.width * keep_w), round(image.height * keep_h)
    left = rng.randint(0, image.width - width)
    top = rng.randint(0, image.height - height)
    return image.crop((left, top, left + width, top + height))


def _border(image: Image.Image, rng: random.Random) -> Image.Image:
    pad = round(0.15 * max(image.size))
    colour = rng.choice(((255, 255, 255), (0, 0, 0), (240, 240, 240), (24, 24, 24)))
    return ImageOps.expand(image.convert("RGB"), border=pad, fill=colour)


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _words(rng: random.Random, count: int) -> str:
    vocabulary = ("when", "you", "see", "it", "lol", "this", "is", "fine", "me", "irl", "again")
    return " ".join(rng.choice(vocabulary) for _ in range(count)).upper()


def _meme(image: Image.Image, rng: random.Random) -> Image.Image:
    width, height = image.size
    bar = round(height * rng.uniform(0.15, 0.3))
    both = rng.random() < 0.5
    canvas = Image.new("RGB", (width, height + bar * (2 if both else 1)), (255, 255, 255))
    canvas.paste(image, (0, bar))
    draw = ImageDraw.Draw(canvas)
    font = _font(max(10, bar // 3))
    draw.text((width // 12, bar // 4), _words(rng, 4), fill=(0, 0, 0), font=font)
    if both:
        draw.text((width // 10, height + bar + bar // 4), _words(rng, 3), fill=(0, 0, 0), font=font)
    return canvas


def _screenshot(image: Image.Image, rng: random.Random) -> Image.Image:
    """A phone screenshot: status bar, app bar, the picture, caption, input bar."""
    screen_w = rng.choice((720, 1080))
    screen_h = screen_w * 2
    dark = rng.random() < 0.5
    background = (16, 16, 20) if dark else rng.choice(((255, 255, 255), (222, 230, 212)))
    ink = (230, 230, 230) if dark else (20, 20, 20)
    canvas = Image.new("RGB", (screen_w, screen_h), background)
    draw = ImageDraw.Draw(canvas)
    unit = screen_w // 24
    # Status bar: time, signal and battery icons.
    draw.text((unit, unit // 3), "21:47", fill=ink, font=_font(unit))
    for i in range(3):
        draw.rectangle(
            (screen_w - unit * (4 - i) - unit // 2, unit // 2, screen_w - unit * (4 - i), unit),
            fill=ink,
        )
    # App bar with a back arrow, an avatar and a group name.
    bar_colour = (40, 44, 52) if dark else rng.choice(((82, 136, 193), (245, 245, 245)))
    draw.rectangle((0, unit * 2, screen_w, unit * 5), fill=bar_colour)
    draw.ellipse(
        (unit * 2, unit * 2 + unit // 2, unit * 4, unit * 4 + unit // 2), fill=(200, 120, 90)
    )
    draw.text(
        (unit * 5, unit * 3), "Group chat  12,408 members", fill=(255, 255, 255), font=_font(unit)
    )
    # The picture, in a message bubble or across the screen.
    if rng.random() < 0.5:
        shown_w = round(screen_w * rng.uniform(0.7, 0.85))
        x = unit
    else:
        shown_w = screen_w
        x = 0
    shown = image.resize((shown_w, max(1, round(image.height * shown_w / image.width))))
    if shown.height > screen_h - unit * 12:
        shown = _fit(shown, screen_h - unit * 12)
    y = unit * 6 + rng.randint(0, unit * 3)
    canvas.paste(shown, (x, y))
    draw.text(
        (x + unit // 2, y + shown.height + unit // 3),
        "forwarded  21:45",
        fill=ink,
        font=_font(unit),
    )
    # Input bar.
    draw.rectangle((0, screen_h - unit * 3, screen_w, screen_h), fill=bar_colour)
    draw.text((unit * 2, screen_h - unit * 2), "Message", fill=(150, 150, 150), font=_font(unit))
    return canvas


def _sticker(image: Image.Image, rng: random.Random) -> Image.Image:
    out = image.convert("RGB").copy()
    draw = ImageDraw.Draw(out)
    size = round(min(out.size) * rng.uniform(0.15, 0.25))
    x = rng.randint(0, out.width - size)
    y = rng.randint(0, out.height - size)
    # A round yellow face with eyes and a mouth, like an emoji sticker.
    draw.ellipse(
        (x, y, x + size, y + size),
        fill=(255, 204, 51),
        outline=(120, 80, 0),
        width=max(1, size // 20),
    )
    eye = size // 8
    draw.ellipse(
        (x + size // 3 - eye, y + size // 3, x + size // 3, y + size // 3 + eye), fill=(60, 40, 0)
    )
    draw.ellipse(
        (x + 2 * size // 3, y + size // 3, x + 2 * size // 3 + eye, y + size // 3 + eye),
        fill=(60, 40, 0),
    )
    draw.arc(
        (x + size // 4, y + size // 3, x + 3 * size // 4, y + 3 * size // 4),
        20,
        160,
        fill=(60, 40, 0),
        width=max(1, size // 16),
    )
    return out


def _text_overlay(image: Image.Image, rng: random.Random) -> Image.Image:
    out = image.convert("RGB").copy()
    draw = ImageDraw.Draw(out)
    font = _font(max(10, out.height // 12))
    y = rng.choice((out.height // 20, out.height - out.height // 6))
    draw.text(
        (out.width // 10, y),
        _words(rng, 3),
        fill=(255, 255, 255),
        font=font,
        stroke_width=2,
        stroke_fill=(0, 0, 0),
    )
    return out


def _rotate_small(image: Image.Image, rng: random.Random) -> Image.Image:
    degrees = rng.choice((-1, 1)) * rng.uniform(4.0, 6.0)
    fill = rng.choice(((0, 0, 0), (255, 255, 255)))
    return image.convert("RGB").rotate(
        degrees, resample=Image.Resampling.BICUBIC, expand=rng.random() < 0.5, fillcolor=fill
    )


def _brightness(image: Image.Image, rng: random.Random) -> Image.Image:
    factor = rng.choice((0.75, 1.3))
    array = np.asarray(image.convert("RGB"), dtype=np.float32) * factor
    return Image.fromarray(np.clip(array, 0, 255).astype(np.uint8))


def render_robustness_report(report: dict[str, Any]) -> str:
    """The report as text: per split, recall per family (plain vs Redress) and false matches."""
    cost = report["query_cpu_seconds"]
    stored = report["hashes_per_original"]
    lines = [
        "redress bench robustness: plain PDQ (1 hash, distance <= 31) vs Redress hash sets",
        f"originals {report['originals']} ({report['originals_hashable']} with PDQ quality"
        f" >= 50), edited copies {report['copies']}, cross pairs {report['cross_pairs']},"
        f" seed {report['seed']}",
        f"hashes stored per original: plain {stored['plain']},"
        f" Redress mean {stored['redress_mean']} (max {stored['redress_max']});"
        f" query hashes per copy: {report['query_hashes_mean']}",
        f"query hashing CPU: plain {cost['plain']} s, Redress {cost['redress']} s,"
        f" ratio {cost['ratio']}x (decode included in both; each copy's fastest of"
        f" {cost['repeat']} runs); Redress's own plain scan"
        f" {cost['redress_plain_scan']} s (reduced JPEG decode), query set"
        f" {cost['ratio_to_redress_plain_scan']}x that",
    ]
    check = report["verification"]
    if check["available"]:
        lines.append(
            f"verification (originals' features held): near misses within"
            f" {check['near_miss_bits']} bits checked {check['checks']},"
            f" {check['cpu_seconds']} s CPU ({check['cpu_ms_per_check']} ms each),"
            f" features of the originals {check['features_cpu_seconds']} s"
        )
    else:
        lines.append("verification: OpenCV not installed (pip install 'redress[verify]')")
    if report["pictures"] is not None:
        lines.append(f"originals: the pictures in {report['pictures']} (all held out)")
        lines += [f"  skipped {reason}" for reason in report["skipped"]]
    for split, figures in report["splits"].items():
        if not figures["originals"]:
            continue
        recall = figures["recall_hashable"]
        listed = figures["recall_hashable_issue_families"]
        recall_all = figures["recall_all"]
        false = figures["false_matches"]
        margin = figures["closest_false_margin"]
        lines += [
            "",
            f"[{split}] originals {figures['originals']}"
            f" ({figures['originals_hashable']} hashable)",
            f"  recall (hashable): plain {recall['plain']:.3f}  Redress {recall['redress']:.3f}",
            f"    the issue's families (without {', '.join(sorted(EXTRA_FAMILIES))}):"
            f" plain {listed['plain']:.3f}  Redress {listed['redress']:.3f}",
            f"  recall (all):      plain {recall_all['plain']:.3f}"
            f"  Redress {recall_all['redress']:.3f}",
            f"  false matches:     plain {false['plain']}  Redress {false['redress']}",
            f"  closest false pair, bits outside its threshold:"
            f" plain {margin['plain']}  Redress {margin['redress']}",
        ]
        checked = figures.get("verified")
        if checked is not None:
            lines += [
                f"  + verification:    recall (hashable) {checked['recall_hashable']:.3f}"
                f" ({checked['recall_hashable_issue_families']:.3f} the issue's families),"
                f" (all) {checked['recall_all']:.3f}; false matches {checked['false_matches']}"
                f" (and {checked['same_photograph']} between originals cut from the same"
                " photograph)",
            ]
        lines.append(
            f"  {'family':<18} {'plain':>6} {'Redress':>8}"
            + (f" {'+verify':>8}" if checked is not None else "")
        )
        for family, rates in figures["families"].items():
            lines.append(
                f"  {family:<18} {rates['plain']:>6.3f} {rates['redress']:>8.3f}"
                + (f" {rates['verified']:>8.3f}" if "verified" in rates else "")
            )
    machine = report["machine"]
    lines += [
        "",
        f"machine: {machine['platform']}, {machine['cpus']} CPUs, Python {machine['python']}",
    ]
    return "\n".join(lines)
