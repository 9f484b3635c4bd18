"""Block re-uploads: put an acted-on item's hashes in a bank of confirmed content, so the
next copy anywhere matches at once (and, that bank being confirmed, acts at once).

When Redress captured the item as evidence it holds the confirmed copy's pixels, and
the copy is banked the way a protected file is (issue #11, docs/robustness.md): with
its robust reference set (flips, crops, halves, small rotations) and, where the
installation keeps them, its local features, so the next copy is found even when it
is mirrored, cropped or covered, and a near miss can be verified.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Protocol

from sqlalchemy.orm import Session, sessionmaker

from redress.actions.interfaces import ActionKind, ActionRequest, ActionResult
from redress.errors import RedressError
from redress.pipeline.models import ScanItem
from redress.signals.types import PdqHash, SignalKind
from redress.store.interfaces import BankPurpose, EntryIn, EntrySource
from redress.store.service import BankService

BLOCKED_BANK = "blocked-reuploads"

log = logging.getLogger(__name__)


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


class CapturedCopy(Protocol):
    """Opens an item's captured evidence for ``actor`` (a view the evidence ledger logs)
    and returns its bytes; raises a :class:`~redress.errors.RedressError` when it
    cannot (deleted after a withdrawal, keys gone)."""

    def __call__(self, session: Session, evidence_item_id: str, actor: str) -> bytes: ...


# Why the evidence is opened, as the ledger's view entry records it.
VIEW_PURPOSE = "block re-uploads: bank the confirmed copy's hash set"


class BlockReuploadActioner:
    """The :class:`~redress.actions.interfaces.Actioner` for ``block_reupload``.

    Adding the same entries twice collapses into one, so a repeated request is harmless.
    With ``captured`` and ``hash_copy`` (the store's :func:`~redress.store.media.
    entries_for_media`), a captured media item is also banked from its pixels; when
    its evidence cannot be opened the recorded hashes are still banked and the
    result's detail says why the rest was not.
    """

    kind = ActionKind.BLOCK_REUPLOAD

    def __init__(
        self,
        sessions: sessionmaker[Session],
        bank: str = BLOCKED_BANK,
        *,
        captured: CapturedCopy | None = None,
        hash_copy: Callable[[bytes], list[EntryIn]] | None = None,
    ) -> None:
        self.sessions = sessions
        self.bank = bank
        self.captured = captured
        self.hash_copy = hash_copy

    def perform(self, request: ActionRequest) -> ActionResult:
        """Add the item's hashes to the block bank (created on first use)."""
        actor = f"action:{request.action_id}"
        with self.sessions.begin() as session:
            item = session.get(ScanItem, request.item_id)
            if item is None:
                return ActionResult(ok=False, detail=f"no scan item {request.item_id}")
            held, why_not = self._from_pixels(session, item, actor)
            entries = item_entries(item) + held
            if not entries:
                return ActionResult(ok=False, detail="the item has no hashes to block")
            banks = BankService(session, actor=actor)
            banks.ensure(self.bank, BankPurpose.CONFIRMED_VIOLATIONS)
            added = banks.add(self.bank, entries, EntrySource.MODERATOR)
        detail = f"{len(added.added)} entries added to {self.bank} ({added.duplicates} known)"
        if held:
            detail += "; banked from the captured copy's pixels"
        elif why_not:
            detail += f"; {why_not}"
        return ActionResult(ok=True, detail=detail)

    def _from_pixels(
        self, session: Session, item: ScanItem, actor: str
    ) -> tuple[list[EntryIn], str]:
        """The entries hashed from the item's captured copy, or none and why not."""
        if self.captured is None or self.hash_copy is None:
            return [], ""
        if item.mode != "media" or not item.evidence_item_id:
            return [], ""
        try:
            data = self.captured(session, item.evidence_item_id, actor)
        except RedressError as exc:
            return [], f"captured copy not opened ({exc.code})"
        recorded = next(
            (s.get("sha256") for s in item.steps or [] if s.get("step") == "hash"), None
        )
        if recorded and hashlib.sha256(data).hexdigest() != recorded:
            # Never bank pixels that are not the copy the moderator confirmed.
            return [], "captured copy differs from the scanned bytes; not hashed"
        try:
            entries = self.hash_copy(data)
        except RedressError as exc:
            return [], f"captured copy not hashed ({exc.code})"
        except Exception as exc:  # noqa: BLE001 - a decoder's or OpenCV's own failure
            # The recorded hashes are still banked: blocking must not fail because
            # the richer hash set could not be made.
            log.warning("captured copy of %s not hashed: %s", item.id, type(exc).__name__)
            return [], f"captured copy not hashed ({type(exc).__name__})"
        note = f"blocked after scan {item.id}"
        return [replace(e, note=note) for e in entries], ""
