"""Block re-uploads: put an acted-on item's hashes in a bank of confirmed content, so the
next copy anywhere matches at once (and, that bank being confirmed, acts at once)."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from redress.actions.interfaces import ActionKind, ActionRequest, ActionResult
from redress.pipeline.models import ScanItem
from redress.signals.types import PdqHash, SignalKind
from redress.store.interfaces import BankPurpose, EntryIn, EntrySource
from redress.store.service import BankService

BLOCKED_BANK = "blocked-reuploads"


def item_entries(item: ScanItem) -> list[EntryIn]:
    """The bank entries (PDQ, MD5, SHA-256) of a processed item, from its recorded steps
    (media) or its request (hashes)."""
    pdq: list[PdqHash] = []
    md5: str | None = None
    sha256: str | None = None
    for step in item.steps or []:
        if step.get("step") == "hash":
            if step.get("pdq") and int(step.get("quality") or 0) >= 50:
                pdq.append(PdqHash.from_hex(step["pdq"], int(step["quality"])))
            md5, sha256 = step.get("md5"), step.get("sha256")
    query = (item.request or {}).get("query")
    if query:
        pdq.extend(PdqHash.from_hex(h, int(q)) for h, q in query.get("pdq", []))
        md5, sha256 = query.get("md5") or md5, query.get("sha256") or sha256
    note = f"blocked after scan {item.id}"
    entries = [
        EntryIn(kind=SignalKind.PDQ, value=h.bits, quality=h.quality, note=note) for h in pdq
    ]
    if md5:
        entries.append(EntryIn(kind=SignalKind.MD5, value=bytes.fromhex(md5), note=note))
    if sha256:
        entries.append(EntryIn(kind=SignalKind.SHA256, value=bytes.fromhex(sha256), note=note))
    return entries


class BlockReuploadActioner:
    """The :class:`~redress.actions.interfaces.Actioner` for ``block_reupload``.

    Adding the same entries twice collapses into one, so a repeated request is harmless.
    """

    kind = ActionKind.BLOCK_REUPLOAD

    def __init__(self, sessions: sessionmaker[Session], bank: str = BLOCKED_BANK) -> None:
        self.sessions = sessions
        self.bank = bank

    def perform(self, request: ActionRequest) -> ActionResult:
        """Add the item's hashes to the block bank (created on first use)."""
        with self.sessions.begin() as session:
            item = session.get(ScanItem, request.item_id)
            if item is None:
                return ActionResult(ok=False, detail=f"no scan item {request.item_id}")
            entries = item_entries(item)
            if not entries:
                return ActionResult(ok=False, detail="the item has no hashes to block")
            banks = BankService(session, actor=f"action:{request.action_id}")
            banks.ensure(self.bank, BankPurpose.CONFIRMED_VIOLATIONS)
            added = banks.add(self.bank, entries, EntrySource.MODERATOR)
        return ActionResult(
            ok=True,
            detail=f"{len(added.added)} entries added to {self.bank} ({added.duplicates} known)",
        )
