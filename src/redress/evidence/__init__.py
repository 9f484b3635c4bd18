"""Evidence: capture on arrival, encryption at rest, a tamper-evident ledger, packages.

Other domains use :class:`EvidenceService` (built with :func:`build_evidence_service`)
through the :class:`EvidenceRecorder` interface: ``capture(CaptureRequest)`` when a
connector sees a matching or reported item, ``record_event(kind, actor, facts, item_id)``
for decisions. See docs/evidence.md.
"""

from redress.evidence.interfaces import (
    CaptureRequest,
    EntryKind,
    EvidenceItem,
    EvidenceRecorder,
    ExportResult,
    LedgerEntry,
    MessageFacts,
    OpenedItem,
    Trigger,
    TriggerKind,
)
from redress.evidence.service import EvidenceService, build_evidence_service

__all__ = [
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
