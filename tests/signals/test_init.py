"""The signals package's public surface is pinned: other domains code against it."""

from __future__ import annotations

import dataclasses

import redress.signals as signals


def test_exported_members_are_pinned() -> None:
    assert sorted(signals.__all__) == [
        "HashError",
        "HashOptions",
        "MediaSignals",
        "PdqHash",
        "SignalKind",
        "VpdqFrame",
        "dihedral_hashes",
        "hash_bytes",
        "hash_file",
        "read_vpdq_text",
        "write_vpdq_text",
    ]
    for name in signals.__all__:
        assert getattr(signals, name) is not None


def test_value_types_are_frozen_dataclasses_with_the_agreed_fields() -> None:
    fields = {
        signals.HashOptions: [
            "compat_hma",
            "exact",
            "seconds_per_hash",
            "dihedral",
            "robust",
            "letterbox",
            "max_image_pixels",
            "max_video_seconds",
            "max_file_bytes",
            "quality_min",
        ],
        signals.VpdqFrame: ["frame", "quality", "pdq", "ts"],
    }
    for cls, names in fields.items():
        assert dataclasses.is_dataclass(cls)
        assert cls.__dataclass_params__.frozen  # type: ignore[attr-defined]
        assert [f.name for f in dataclasses.fields(cls)] == names
    media = [f.name for f in dataclasses.fields(signals.MediaSignals)]
    for name in (
        "kind",
        "sha256",
        "md5",
        "size",
        "media_type",
        "pdq",
        "hashable",
        "unhashable_reason",
        "dihedral",
        "robust",
        "vpdq",
        "vpdq_trimmed",
    ):
        assert name in media
    assert signals.MediaSignals.__dataclass_params__.frozen  # type: ignore[attr-defined]
    defaults = signals.HashOptions()
    assert (defaults.compat_hma, defaults.exact, defaults.seconds_per_hash) == (False, False, 1.0)
    assert (defaults.dihedral, defaults.quality_min) == (False, 50)
