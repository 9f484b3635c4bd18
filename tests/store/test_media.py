"""From hashed media files to bank entries and matcher queries."""

from __future__ import annotations

from pathlib import Path

from redress.config import Settings
from redress.signals import hash_file
from redress.signals.types import SignalKind
from redress.store.media import entries_for_files, hash_options, query_for_signals


def test_an_image_banks_as_pdq_md5_and_sha256(shared_data: Path) -> None:
    path = shared_data / "pdq" / "bridge-mods" / "aaa-orig.jpg"
    entries = entries_for_files([path], Settings())
    assert [e.kind for e in entries] == [
        SignalKind.PDQ,
        SignalKind.PDQ_SET,  # the robust reference set (docs/robustness.md)
        SignalKind.MD5,
        SignalKind.SHA256,
    ]
    plain = entries_for_files([path], Settings(robust_hash_sets=False))
    assert [e.kind for e in plain] == [SignalKind.PDQ, SignalKind.MD5, SignalKind.SHA256]
    # Banking with the reference set decodes at full resolution: the exact PDQ.
    signals = hash_file(path, hash_options(Settings(), robust="reference"))
    assert entries[0].value == signals.pdq.bits if signals.pdq else False
    query = query_for_signals(hash_file(path, hash_options(Settings(), dihedral=True)))
    assert len(query.pdq) == 9  # the hash and its eight rotations/flips
    assert query.sha256 == bytes.fromhex(signals.sha256)


def test_a_video_banks_as_vpdq(shared_data: Path) -> None:
    path = shared_data / "vpdq" / "videos" / "pattern-sd-with-small-logo-bar.mp4"
    entries = entries_for_files([path], Settings())
    assert [e.kind for e in entries] == [SignalKind.VPDQ, SignalKind.MD5, SignalKind.SHA256]
    assert len(entries[0].frames) > 0


def test_a_letterboxed_copy_of_a_banked_video_matches_without_its_bars(
    shared_data: Path, tmp_path: Path
) -> None:
    from sqlalchemy.orm import Session

    from redress.index.mih import MihIndex
    from redress.store.db import make_engine
    from redress.store.migrate import upgrade
    from redress.store.service import BankService, Matcher
    from redress.store.sync import IndexFollower

    # Meta's samples: the same clip as posted (HD, portrait) and re-encoded in SD, grey,
    # inside bars. Frame for frame, no hash of the copy is near the original's.
    videos = shared_data / "vpdq" / "videos"
    settings = Settings(home=tmp_path)
    url = f"sqlite:///{tmp_path / 'redress.db'}"
    upgrade(url)
    engine = make_engine(url)
    with Session(engine) as session:
        banks = BankService(session)
        banks.create("confirmed")
        banks.add("confirmed", entries_for_files([videos / "pattern-hd-no-bar.mp4"], settings))
        session.commit()
    follower = IndexFollower(engine, MihIndex)
    follower.poll()
    matcher = Matcher(follower)
    copy = videos / "pattern-sd-grey-bar.mp4"
    other = videos / "chair-22-sd-grey-bar.mp4"  # another clip inside the same bars
    scanned = hash_file(copy, hash_options(settings, robust="query"))
    assert len(scanned.vpdq_trimmed) == len(scanned.vpdq) > 0
    with Session(engine) as session:
        plain = hash_file(copy, hash_options(settings))
        assert plain.vpdq_trimmed == ()
        assert matcher.match(session, query_for_signals(plain)) == []
        (hit,) = matcher.match(session, query_for_signals(scanned))
        assert hit.signal is SignalKind.VPDQ
        assert hit.query_share is not None
        assert hit.query_share >= 0.8
        unrelated = hash_file(other, hash_options(settings, robust="query"))
        assert unrelated.vpdq_trimmed
        assert matcher.match(session, query_for_signals(unrelated)) == []
    engine.dispose()
