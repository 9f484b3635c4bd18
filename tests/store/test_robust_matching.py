"""Robust hash sets in the banks: banked from pixels, matched member by member at own radii."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageOps
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from redress.config import Settings
from redress.signals import hash_file
from redress.signals.robust import CROP_THRESHOLD, DerivedHash
from redress.signals.types import PdqHash, SignalKind
from redress.store.interfaces import EntryIn, MediaQuery
from redress.store.media import entries_for_files, hash_options, query_for_signals
from redress.store.models import Match
from redress.store.robust import ROBUST_KEY, robust_entry
from redress.store.service import BankService, Matcher, RetroMatcher
from redress.store.sync import IndexFollower, SeenFollower
from store.store_hashes import flip, random_pdq


def picture(seed: int, size: tuple[int, int] = (640, 480)) -> Image.Image:
    """A generated photo-like picture: smooth shading with blobs and edges."""
    rng = np.random.default_rng(seed)
    canvas = np.zeros((size[1], size[0], 3), dtype=np.float32)
    for cells, weight in ((3, 0.5), (8, 0.3), (24, 0.2)):
        noise = rng.uniform(0, 255, (cells, cells, 3)).astype(np.uint8)
        layer = Image.fromarray(noise).resize(size, Image.Resampling.BICUBIC)
        canvas += weight * np.asarray(layer, dtype=np.float32)
    image = Image.fromarray(np.clip(canvas, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(12):
        x, y, r = (int(v) for v in rng.integers((0, 0, 10), (size[0], size[1], 80)))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)
    return image


def save(image: Image.Image, path: Path) -> Path:
    image.convert("RGB").save(path, "JPEG", quality=88)
    return path


def scan(engine: Engine, follower: IndexFollower, path: Path, settings: Settings) -> list[str]:
    """The signal kinds the file at ``path`` matches, hashed as the scan hashes it."""
    query = query_for_signals(hash_file(path, hash_options(settings, robust="query")))
    with Session(engine) as s:
        return sorted(m.signal.value for m in Matcher(follower).match(s, query))


def test_a_banked_picture_is_found_bordered_captioned_and_cropped(
    engine: Engine, follower: IndexFollower, tmp_path: Path
) -> None:
    settings = Settings(robust_query_sets=True)
    original = picture(1)
    entries = entries_for_files([save(original, tmp_path / "original.jpg")], settings)
    assert [e.kind for e in entries] == [
        SignalKind.PDQ,
        SignalKind.PDQ_SET,
        SignalKind.MD5,
        SignalKind.SHA256,
    ]
    assert 40 <= len(entries[1].hashes) <= 64
    assert len(entries[1].metadata[ROBUST_KEY]) == len(entries[1].hashes)
    with Session(engine) as s:
        BankService(s).create("protected")
        BankService(s).add("protected", entries)
        s.commit()
    follower.poll()

    bordered = ImageOps.expand(original, border=100, fill=(255, 255, 255))
    caption = Image.new("RGB", (640, 600), (255, 255, 255))
    caption.paste(original, (0, 120))
    cropped = original.crop((0, 0, 640, 408))  # 15 % off the bottom
    for name, copy in (("bordered", bordered), ("caption", caption), ("cropped", cropped)):
        path = save(copy, tmp_path / f"{name}.jpg")
        # Plain PDQ (the copy's one hash against the plain entry) misses each ...
        assert "pdq" not in scan(engine, follower, path, Settings(robust_query_sets=False))
        # ... the robust query set finds each, once: through the reference set,
        # or (a trimmed border) through the plain entry of the same picture.
        assert scan(engine, follower, path, settings) in (["pdq"], ["pdq-set"]), name
    # The picture itself meets both of its entries; it is one picture, found once.
    itself = tmp_path / "again.jpg"
    original.save(itself, "JPEG", quality=75)  # recompressed: other bytes
    assert scan(engine, follower, itself, settings) == ["pdq"]
    other = save(picture(2), tmp_path / "other.jpg")
    assert scan(engine, follower, other, settings) == []


def test_each_member_matches_only_within_its_own_radius(
    engine: Engine, follower: IndexFollower
) -> None:
    rng = random.Random(3)
    flipped, crop = random_pdq(rng), random_pdq(rng)
    reference = (
        DerivedHash("dihedral/original", flipped, 31),
        DerivedHash("cut-top70", crop, CROP_THRESHOLD),
    )
    entry = robust_entry(reference, {})
    assert entry is not None
    with Session(engine) as s:
        BankService(s).create("protected", pdq_threshold=31)
        BankService(s).add("protected", [entry])
        s.commit()
    follower.poll()
    with Session(engine) as s:
        m = Matcher(follower)
        # The bank allows 31, but a crop member only its own 28.
        assert m.match(s, MediaQuery(pdq=(flip(crop, 30),))) == []
        assert [r.distance for r in m.match(s, MediaQuery(pdq=(flip(crop, 27),)))] == [27]
        assert [r.distance for r in m.match(s, MediaQuery(pdq=(flip(flipped, 30),)))] == [30]
        # A query hash's own radius counts too.
        tight = (DerivedHash("centre", flip(flipped, 29), 28),)
        assert m.match(s, MediaQuery(robust=tight)) == []


def test_a_set_whose_kinds_are_unknown_never_matches(
    engine: Engine, follower: IndexFollower
) -> None:
    h = random_pdq(random.Random(4))
    entry = EntryIn(SignalKind.PDQ_SET, hashes=(h,), quality=100, metadata={ROBUST_KEY: ["nope"]})
    with Session(engine) as s:
        BankService(s).create("protected")
        BankService(s).add("protected", [entry])
        s.commit()
    follower.poll()
    with Session(engine) as s:
        assert Matcher(follower).match(s, MediaQuery(pdq=(h,))) == []


def test_retroactive_matching_keeps_each_members_radius(
    engine: Engine, follower: IndexFollower, seen: SeenFollower
) -> None:
    rng = random.Random(5)
    crop_near, crop_far = random_pdq(rng), random_pdq(rng)
    with Session(engine) as s:
        m = Matcher(follower)
        near = m.scan(s, MediaQuery(pdq=(flip(crop_near, 26),))).item_id
        m.scan(s, MediaQuery(pdq=(flip(crop_far, 30),)))
        s.commit()
    reference = (
        DerivedHash("cut-top70", crop_near, CROP_THRESHOLD),
        DerivedHash("cut-left70", crop_far, CROP_THRESHOLD),
    )
    entry = robust_entry(reference, {})
    assert entry is not None
    with Session(engine) as s:
        retro = RetroMatcher(seen)
        BankService(s, retro=retro).create("later", pdq_threshold=31)
        BankService(s, retro=retro).add("later", [entry])
        s.commit()
        rows = s.execute(select(Match.item_id, Match.distance)).all()
    assert rows == [(near, 26)]


def test_quality_of_a_robust_entry_is_its_best_members() -> None:
    reference = (
        DerivedHash("dihedral/original", PdqHash(bytes(32), 70), 31),
        DerivedHash("half-top", PdqHash(bytes(32), 90), 26),
    )
    entry = robust_entry(reference, {"file": "a.jpg"})
    assert entry is not None
    assert entry.quality == 90
    assert entry.metadata == {"file": "a.jpg", ROBUST_KEY: ["dihedral/original", "half-top"]}
    assert robust_entry((), {}) is None
