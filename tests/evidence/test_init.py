"""The evidence package's pinned public surface."""

from __future__ import annotations

import redress.evidence as evidence


def test_public_surface_is_pinned() -> None:
    assert sorted(evidence.__all__) == sorted(
        [
            "CaptureRequest",
            "EntryKind",
            "EvidenceItem",
            "EvidenceRecorder",
            "EvidenceService",
            "ExportResult",
            "LedgerEntry",
            "MessageFacts",
            "OpenedItem",
            "Trigger",
            "TriggerKind",
            "build_evidence_service",
        ]
    )
    for name in evidence.__all__:
        assert getattr(evidence, name) is not None
