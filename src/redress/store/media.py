"""From media files to the store's inputs: bank entries and matcher queries.

The only place the store touches the signals domain: :func:`entries_for_signals`
turns a hashed file into the entries ``redress bank add`` / ``case create``
store, :func:`query_for_signals` into the :class:`MediaQuery` the matcher takes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Literal

from redress.config import Settings
from redress.signals import HashOptions, MediaSignals, hash_bytes, hash_file
from redress.signals.robust import DerivedHash, decode_picture
from redress.signals.types import SignalKind
from redress.signals.verify import ScannedPicture, encode_features, local_features
from redress.store.interfaces import EntryIn, JsonObject, MediaQuery, VpdqFrameIn
from redress.store.robust import VIDEO_CROP_KEY, robust_entry


def hash_options(
    settings: Settings,
    *,
    dihedral: bool = False,
    robust: Literal["off", "reference", "query"] = "off",
) -> HashOptions:
    """Hashing options from the settings (limits, quality minimum, and which robust set
    the settings allow: reference sets by ``robust_hash_sets``, query sets by
    ``robust_query_sets``). A query (``robust="query"``) always hashes videos without
    their letterbox bars too: it costs little (docs/robustness.md, "Video"); so does
    banking with reference sets, so a copy with the bars cut off is found."""
    allowed = settings.robust_hash_sets if robust == "reference" else settings.robust_query_sets
    return HashOptions(
        dihedral=dihedral,
        robust=robust if allowed else "off",
        letterbox=robust == "query" or (robust == "reference" and allowed),
        max_image_pixels=settings.max_image_pixels,
        max_video_seconds=settings.max_video_seconds,
        max_file_bytes=settings.max_file_bytes,
        quality_min=settings.pdq_quality_min,
    )


def entries_for_signals(signals: MediaSignals, name: str = "") -> list[EntryIn]:
    """The entries that bank one file: its PDQ (or vPDQ) and its exact MD5 and SHA-256."""
    meta: JsonObject = {"file": name, "media_type": signals.media_type} if name else {}
    entries: list[EntryIn] = []
    if signals.kind == "video" and signals.vpdq:
        frames = tuple(VpdqFrameIn(f.frame, f.pdq, f.ts) for f in signals.vpdq)
        entries.append(EntryIn(SignalKind.VPDQ, frames=frames, metadata=meta))
        # The reference crops (a centred square, the central 87 %, 82 % and 77 % and, for a
        # video with bars, its picture without them) when the file was hashed for
        # banking: each one more vPDQ entry, never exported (docs/robustness.md).
        for crop in signals.vpdq_crops:
            cropped = tuple(VpdqFrameIn(f.frame, f.pdq, f.ts) for f in crop.frames)
            metadata: JsonObject = {**meta, VIDEO_CROP_KEY: crop.kind}
            entries.append(EntryIn(SignalKind.VPDQ, frames=cropped, metadata=metadata))
    elif signals.pdq is not None and signals.hashable:
        entries.append(
            EntryIn(SignalKind.PDQ, signals.pdq.bits, signals.pdq.quality, metadata=meta)
        )
        # The robust reference set (flips, crops, halves, small rotations) when
        # the pixels were at hand; the plain PDQ entry stays for exchanges.
        reference = robust_entry(signals.robust, meta) if signals.robust else None
        if reference is not None:
            entries.append(reference)
    entries.append(EntryIn(SignalKind.MD5, bytes.fromhex(signals.md5), metadata=meta))
    entries.append(EntryIn(SignalKind.SHA256, bytes.fromhex(signals.sha256), metadata=meta))
    return entries


def entries_for_files(paths: Sequence[Path], settings: Settings) -> list[EntryIn]:
    """Hash each file (on this machine) and return the entries that bank them; with
    ``verify_features``, a picture's entry also carries its local features."""
    options = hash_options(settings, robust="reference")
    entries: list[EntryIn] = []
    for path in paths:
        signals = hash_file(path, options)
        banked = entries_for_signals(signals, path.name)
        # Pictures only: a video is streamed from disk and never read whole.
        if settings.verify_features and signals.kind == "image":
            banked = _with_features(banked, path.read_bytes(), options)
        entries += banked
    return entries


def entries_for_media(data: bytes, settings: Settings) -> list[EntryIn]:
    """:func:`entries_for_files` for media held in memory (a captured copy Redress holds
    the bytes of): the same entries, reference set and features included, with no file
    name in their metadata."""
    options = hash_options(settings, robust="reference")
    banked = entries_for_signals(hash_bytes(data, options))
    if settings.verify_features:
        banked = _with_features(banked, data, options)
    return banked


def _with_features(entries: list[EntryIn], data: bytes, options: HashOptions) -> list[EntryIn]:
    # The features go with the picture's reference set when it has one (its members
    # include the plain hash), else with its plain PDQ entry; videos get none.
    kinds = [e.kind for e in entries]
    target = (
        SignalKind.PDQ_SET
        if SignalKind.PDQ_SET in kinds
        else SignalKind.PDQ
        if SignalKind.PDQ in kinds
        else None
    )
    if target is None:
        return entries
    features = encode_features(local_features(decode_picture(data, options)))
    return [replace(e, features=features) if e.kind is target else e for e in entries]


def query_for_signals(signals: MediaSignals, picture: ScannedPicture | None = None) -> MediaQuery:
    """The matcher's query for a hashed file (dihedral hashes included when computed);
    ``picture``, the file's image, lets the matcher verify near misses."""
    pdq = ((signals.pdq,) if signals.pdq is not None else ()) + tuple(signals.dihedral)
    return MediaQuery(
        kind=signals.kind,
        sha256=bytes.fromhex(signals.sha256),
        md5=bytes.fromhex(signals.md5),
        size=signals.size,
        media_type=signals.media_type,
        pdq=pdq,
        vpdq=tuple(VpdqFrameIn(f.frame, f.pdq, f.ts) for f in signals.vpdq),
        robust=_query_robust(signals),
        vpdq_trimmed=tuple(VpdqFrameIn(f.frame, f.pdq, f.ts) for f in signals.vpdq_trimmed),
        picture=picture if signals.kind == "image" else None,
    )


def _query_robust(signals: MediaSignals) -> tuple[DerivedHash, ...]:
    # A reference set is not a query set (its radii and windows differ).
    if signals.robust and signals.robust[0].kind == "whole":
        return signals.robust
    return ()
