"""Near misses of pictures banked from files are verified with local features (issue #11)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from cli_support import run_redress
from redress.config import Settings
from redress.signals import hash_file
from redress.signals.verify import ScannedPicture
from redress.store.interfaces import MatchResult
from redress.store.media import entries_for_files, hash_options, query_for_signals
from redress.store.models import EntryFeature
from redress.store.service import BankService, Matcher
from redress.store.store import SqlBankStore
from redress.store.sync import IndexFollower
from store.test_robust_matching import picture, save

pytest.importorskip("cv2")

# Off-grid and off-centre, with a new aspect: between every window the hash sets
# sample, so the hashes alone come near but do not match.
FREE_CROP = (47, 21, 601, 437)


def bank(engine: Engine, follower: IndexFollower, path: Path, settings: Settings) -> list[int]:
    with Session(engine) as s:
        BankService(s).create("confirmed")
        added = BankService(s).add("confirmed", entries_for_files([path], settings))
        s.commit()
    follower.poll()
    return list(added.added)


def bank_original(
    engine: Engine, follower: IndexFollower, tmp_path: Path, settings: Settings
) -> tuple[list[int], Path, Path]:
    """Bank a photo-like picture; return its entry IDs, its file and a free crop's file."""
    original = picture(3)
    path = save(original, tmp_path / "o.jpg")
    ids = bank(engine, follower, path, settings)
    return ids, path, save(original.crop(FREE_CROP), tmp_path / "crop.jpg")


def scan(
    engine: Engine, path: Path, *, with_picture: bool, follower: IndexFollower
) -> list[MatchResult]:
    options = hash_options(Settings(), robust="query")
    held = ScannedPicture(path.read_bytes(), options) if with_picture else None
    query = query_for_signals(hash_file(path, options), held)
    with Session(engine) as s:
        return Matcher(follower).match(s, query)


def test_a_free_crop_is_found_only_by_verifying_the_near_miss(
    engine: Engine, follower: IndexFollower, tmp_path: Path
) -> None:
    ids, _, crop = bank_original(engine, follower, tmp_path, Settings(verify_features=True))
    with Session(engine) as s:
        stored = SqlBankStore(s).entry_features(ids)
    # One picture, one set of features, kept with its reference set.
    assert len(stored) == 1

    assert scan(engine, crop, with_picture=False, follower=follower) == []
    found = scan(engine, crop, with_picture=True, follower=follower)
    assert [(m.signal.value, m.verified) for m in found] == [("pdq-set", True)]
    assert found[0].distance > 31

    other = save(picture(4), tmp_path / "other.jpg")
    assert scan(engine, other, with_picture=True, follower=follower) == []


def test_without_verify_features_nothing_is_kept_and_the_near_miss_stays_missed(
    engine: Engine, follower: IndexFollower, tmp_path: Path
) -> None:
    _, _, crop = bank_original(engine, follower, tmp_path, Settings())
    with Session(engine) as s:
        assert s.scalar(select(func.count()).select_from(EntryFeature)) == 0
    assert scan(engine, crop, with_picture=True, follower=follower) == []


def test_a_removed_entry_is_not_verified(
    engine: Engine, follower: IndexFollower, tmp_path: Path
) -> None:
    ids, _, crop = bank_original(engine, follower, tmp_path, Settings(verify_features=True))
    with Session(engine) as s:
        BankService(s).remove("confirmed", ids)
        s.commit()
    follower.poll()
    assert scan(engine, crop, with_picture=True, follower=follower) == []


def test_a_restarted_follower_keeps_verifying(engine: Engine, tmp_path: Path) -> None:
    from redress.index.brute import BruteForceIndex

    first = IndexFollower(engine, BruteForceIndex)
    first.start()
    _, _, crop = bank_original(engine, first, tmp_path, Settings(verify_features=True))
    again = IndexFollower(engine, BruteForceIndex)
    again.start()
    assert [m.verified for m in scan(engine, crop, with_picture=True, follower=again)] == [True]


def test_damaged_stored_features_leave_the_near_miss_unmatched(
    engine: Engine, follower: IndexFollower, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _, path, crop = bank_original(engine, follower, tmp_path, Settings(verify_features=True))
    with Session(engine) as s:
        for row in s.scalars(select(EntryFeature)):
            row.data = row.data[:-7]
        s.commit()
    assert scan(engine, crop, with_picture=True, follower=follower) == []
    assert "not verified: invalid_input" in caplog.text
    # The hash matching itself is untouched: the banked picture still matches.
    assert [m.verified for m in scan(engine, path, with_picture=True, follower=follower)] == [
        False,
        False,
        False,
    ]


def test_redress_scan_reports_a_verified_near_miss(redress_home: Path, tmp_path: Path) -> None:
    cli_env = dict(os.environ)  # the embedded SQLite database in a fresh REDRESS_HOME
    original = picture(3)
    path = save(original, tmp_path / "o.jpg")
    crop = save(original.crop(FREE_CROP), tmp_path / "crop.jpg")
    env = {**cli_env, "REDRESS_VERIFY_FEATURES": "true"}
    assert run_redress("bank", "create", "confirmed", env=env).returncode == 0
    assert run_redress("bank", "add", "confirmed", str(path), env=env).returncode == 0
    result = run_redress("scan", "--json", str(crop), env=env)
    assert result.returncode == 0, result.stderr
    matches = json.loads(result.stdout)["matches"]
    assert [(m["signal"], m["verified"]) for m in matches] == [("pdq-set", True)]
    text = run_redress("scan", str(crop), env=env)
    assert "verified by local features" in text.stdout
    # Without the setting the same scan finds nothing.
    plain = run_redress("scan", "--json", str(crop), env=cli_env)
    assert json.loads(plain.stdout)["matches"] == []


def test_the_scan_hasher_hands_over_the_picture_only_when_verification_is_on(
    tmp_path: Path,
) -> None:
    from redress.pipeline.matching import SignalsHasher

    data = save(picture(3), tmp_path / "o.jpg").read_bytes()
    on = SignalsHasher(Settings(verify_features=True))
    held = on.picture(data, on.hash_bytes(data))
    assert held is not None
    assert held.rgb().shape == (480, 640, 3)
    off = SignalsHasher(Settings())
    assert off.picture(data, off.hash_bytes(data)) is None
