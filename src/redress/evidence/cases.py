"""Victim cases and their evidence: erasure when a case closes, lookup by case number.

An item captured because a victim's case matched names that case in its
trigger by the store's case key (``redress.store.interfaces.case_key``: the
case's ID). When the victim withdraws her case, or it is deleted,
:class:`EvidenceErasure` (a ``CaseClosure`` the store calls inside the status
change's transaction) erases every item captured for it.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from redress.evidence.service import EvidenceService
from redress.store.interfaces import CaseRead, CaseStatus, case_key
from redress.store.store import SqlCaseStore


class EvidenceErasure:
    """Erases a closed case's evidence (destroys keys, wipes blobs, logs tombstones)."""

    def __init__(self, service: EvidenceService) -> None:
        self.service = service
        self.erased: list[int] = []  # tombstone ledger entries written, for the caller

    def case_closed(self, case: CaseRead, status: CaseStatus, actor: str) -> None:
        """Erase every live item captured for ``case``; its tombstones name the reason."""
        reason = f"case {case.case_number} {status.value.lower()} (victim-controlled erasure)"
        entries = self.service.delete_case(case_key(case.id), actor, reason)
        self.erased.extend(entry.seq for entry in entries)


def item_ids_for_case_number(
    service: EvidenceService, session: Session, case_number: str
) -> list[str]:
    """The items captured for the case with this number (``RC-...``), in capture order."""
    case = SqlCaseStore(session).get_case(case_number.strip().upper())
    return service.item_ids_for_case(case_key(case.id))


__all__ = ["EvidenceErasure", "item_ids_for_case_number"]
