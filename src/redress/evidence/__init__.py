"""Evidence: capture on arrival, encryption at rest, a tamper-evident ledger, packages.

Other domains use :class:`EvidenceService` (built with :func:`build_evidence_service`)
through the :class:`EvidenceRecorder` interface: ``capture(CaptureRequest)`` when a
connector sees a matching or reported item, ``record_event(kind, actor, facts, item_id)``
for decisions. See docs/evidence.md.

Names are imported on first use, so that ``redress --help`` does not load the
cryptography and database stack.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

_HOMES = dict.fromkeys(__all__, "redress.evidence.interfaces") | {
    "EvidenceService": "redress.evidence.service",
    "build_evidence_service": "redress.evidence.service",
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'redress.evidence' has no attribute {name!r}")
