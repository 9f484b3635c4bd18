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
