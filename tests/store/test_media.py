"""From hashed media files to bank entries and matcher queries."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import av
import numpy as np

from redress.config import Settings
from redress.signals import hash_file
from redress.signals.types import SignalKind
from redress.store.media import entries_for_files, hash_options, query_for_signals
from redress.store.robust import VIDEO_CROP_KEY

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from redress.store.sync import IndexFollower


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


def test_a_video_banks_as_vpdq_with_its_reference_crops(shared_data: Path) -> None:
    path = shared_data / "vpdq" / "videos" / "pattern-sd-with-small-logo-bar.mp4"
    entries = entries_for_files([path], Settings())
    assert [e.kind for e in entries] == [SignalKind.VPDQ] * 6 + [SignalKind.MD5, SignalKind.SHA256]
    # The clip has side bars: it is banked without them too.
    assert [e.metadata.get(VIDEO_CROP_KEY) for e in entries[:6]] == [
        None,
        "square",
        "central87",
        "central82",
        "central77",
        "trimmed",
    ]
    # One hash of each crop per hashed frame, at the same frame numbers.
    assert len(entries[0].frames) > 0
    assert [f.frame for f in entries[1].frames] == [f.frame for f in entries[0].frames]
    plain = entries_for_files([path], Settings(robust_hash_sets=False))
    assert [e.kind for e in plain] == [SignalKind.VPDQ, SignalKind.MD5, SignalKind.SHA256]


def plain_and_robust_banks(video: Path, tmp_path: Path) -> tuple[Engine, IndexFollower]:
    """A database where bank "plain" holds ``video`` banked without reference sets and
    bank "robust" the same video with them; and an index follower that has read both."""
    from sqlalchemy.orm import Session

    from redress.index.mih import MihIndex
    from redress.store.db import make_engine
    from redress.store.migrate import upgrade
    from redress.store.service import BankService
    from redress.store.sync import IndexFollower

    url = f"sqlite:///{tmp_path / 'redress.db'}"
    upgrade(url)
    engine = make_engine(url)
    for settings, bank in ((Settings(robust_hash_sets=False), "plain"), (Settings(), "robust")):
        with Session(engine) as session:
            BankService(session).create(bank)
            BankService(session).add(bank, entries_for_files([video], settings))
            session.commit()
    follower = IndexFollower(engine, MihIndex)
    follower.poll()
    return engine, follower


def test_a_copy_without_the_bars_of_a_banked_barred_video_matches(
    shared_data: Path, tmp_path: Path
) -> None:
    from sqlalchemy.orm import Session

    from redress.store.service import Matcher

    # The converse of the letterbox test: the banked original is the SD clip inside
    # grey bars, the scanned copy the same clip without them (HD, as first posted).
    videos = shared_data / "vpdq" / "videos"
    engine, follower = plain_and_robust_banks(videos / "pattern-sd-grey-bar.mp4", tmp_path)
    with Session(engine) as session:
        copy = hash_file(videos / "pattern-hd-no-bar.mp4", hash_options(Settings(), robust="query"))
        hits = Matcher(follower).match(session, query_for_signals(copy))
        assert [(h.bank_name, h.signal) for h in hits] == [("robust", SignalKind.VPDQ)]
        other = hash_file(videos / "chair-22-sd-grey-bar.mp4", hash_options(Settings()))
        assert Matcher(follower).match(session, query_for_signals(other)) == []
    engine.dispose()


def square_copy(source: Path, destination: Path) -> Path:
    """Re-encode ``source`` with every frame cut to its centred square (as a feed or
    story re-share does)."""
    with av.open(str(source)) as reading, av.open(str(destination), mode="w") as writing:
        stream = reading.streams.video[0]
        out = None
        for frame in reading.decode(stream):
            rgb = frame.to_ndarray(format="rgb24")
            rows, cols = rgb.shape[:2]
            side = min(rows, cols) // 2 * 2
            top, left = (rows - side) // 2, (cols - side) // 2
            square = np.ascontiguousarray(rgb[top : top + side, left : left + side])
            if out is None:
                out = writing.add_stream("libx264", rate=stream.average_rate or 25)
                out.width = out.height = side
                out.pix_fmt = "yuv420p"
            for packet in out.encode(av.VideoFrame.from_ndarray(square, format="rgb24")):
                writing.mux(packet)
        assert out is not None
        for packet in out.encode():
            writing.mux(packet)
    return destination


def test_a_square_cut_copy_of_a_banked_video_matches_its_square_crop(
    shared_data: Path, tmp_path: Path
) -> None:
    from sqlalchemy.orm import Session

    from redress.store.exchange import ExchangeFormat, export_bank
    from redress.store.service import Matcher

    videos = shared_data / "vpdq" / "videos"
    original = videos / "pattern-hd-no-bar.mp4"
    copy = square_copy(original, tmp_path / "square.mp4")
    other = square_copy(videos / "chair-22-sd-grey-bar.mp4", tmp_path / "other.mp4")
    engine, follower = plain_and_robust_banks(original, tmp_path)
    with Session(engine) as session:
        # As a scan hashes it: the square copy matches only the bank that holds the
        # original's square crop, and another clip cut the same way matches neither.
        scanned = hash_file(copy, hash_options(Settings(), robust="query"))
        hits = Matcher(follower).match(session, query_for_signals(scanned))
        assert [(h.bank_name, h.signal) for h in hits] == [("robust", SignalKind.VPDQ)]
        assert hits[0].query_share is not None
        assert hits[0].query_share >= 0.8
        unrelated = hash_file(other, hash_options(Settings(), robust="query"))
        assert Matcher(follower).match(session, query_for_signals(unrelated)) == []
        # Partners get the video's own vPDQ, never Redress's crops of it.
        report = export_bank(session, "robust", ExchangeFormat.VPDQ, tmp_path / "export")
    assert report.written == 1
    # Skipped: the square and the three central crops, and the checksums.
    assert report.skipped == {"vpdq": 4, "md5": 1, "sha256": 1}
    engine.dispose()


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
