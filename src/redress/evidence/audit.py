"""``redress evidence audit``: check the stored ledger and items from the ground up.

A package is verified offline by :mod:`redress.evidence.verify`; this is the
operator's check of the whole store, after a crash, a restore from backup or a
fault-injection run. It reads every entry in order and proves that:

- sequence numbers run 0..size-1 with no gap or repeat, each body is canonical
  JSON naming its own ``seq`` and kind, and each stored leaf hash is the hash
  of its body;
- the Merkle tree rebuilt from the leaves has the root the head stores, and the
  stored interior nodes give the same root at every signed checkpoint;
- every checkpoint is signed by the ledger key, over the rebuilt root;
- every item has exactly one capture entry (its ``capture_seq``, naming it),
  and, with ``decrypt``, every live item's blob is present and decrypts to the
  SHA-256 the ledger committed to.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from redress.errors import RedressError
from redress.evidence.checkpoint import open_note
from redress.evidence.interfaces import EntryKind
from redress.evidence.merkle import Frontier, TreeReader, leaf_hash
from redress.evidence.models import EvidenceItemRow
from redress.evidence.service import STATUS_DELETED, EvidenceService


@dataclass(frozen=True)
class AuditFailure:
    """One failed check: a stable ``code`` and what was found."""

    code: str
    message: str


@dataclass(frozen=True)
class AuditReport:
    """What :func:`audit_ledger` found."""

    size: int
    checkpoints: int
    items: int
    live_items: int
    decrypted: int
    kinds: dict[str, int] = field(default_factory=dict)
    failures: tuple[AuditFailure, ...] = ()

    @property
    def ok(self) -> bool:
        """True when every check held."""
        return not self.failures


MAX_FAILURES = 100  # a badly damaged store would otherwise print one line per entry


def audit_ledger(service: EvidenceService, *, decrypt: bool = True) -> AuditReport:
    """Check the ledger, its checkpoints and every item (see the module's docstring)."""
    store = service.store
    failures: list[AuditFailure] = []

    def fail(code: str, message: str) -> None:
        if len(failures) < MAX_FAILURES:
            failures.append(AuditFailure(code, message))

    # The head, the entries and the items as of one moment: the ledger may be live.
    store.read_snapshot()
    size, frontier_bytes = store.head()
    checkpoint_sizes = set(store.checkpoint_sizes())
    frontier = Frontier.empty()
    roots: dict[int, bytes] = {}
    kinds: Counter[str] = Counter()
    captures: dict[str, list[int]] = {}
    for entry in store.iter_entries():
        if entry.seq != frontier.size:
            fail("ledger_gap", f"expected entry {frontier.size}, found {entry.seq}")
            break
        try:
            doc = json.loads(entry.body)
        except ValueError:
            fail("ledger_entry_unreadable", f"entry {entry.seq} is not JSON")
            doc = {}
        if doc.get("seq") != entry.seq or doc.get("kind") != entry.kind:
            fail("ledger_entry_mismatch", f"entry {entry.seq}'s body names another seq or kind")
        if doc.get("item") != entry.item_id:
            fail("ledger_entry_mismatch", f"entry {entry.seq}'s body names another item")
        if leaf_hash(entry.body) != entry.leaf_hash:
            fail("ledger_leaf_hash", f"entry {entry.seq}'s stored leaf hash is not its body's")
        kinds[entry.kind] += 1
        if entry.kind == EntryKind.CAPTURE and entry.item_id is not None:
            captures.setdefault(entry.item_id, []).append(entry.seq)
        frontier, _ = frontier.append(leaf_hash(entry.body))
        if frontier.size in checkpoint_sizes:
            roots[frontier.size] = frontier.root()
    if frontier.size != size:
        fail("ledger_size", f"the head says {size} entries; {frontier.size} were read in order")
    else:
        try:
            stored = Frontier.from_bytes(size, frontier_bytes)
        except ValueError as exc:
            fail("ledger_head", str(exc))
        else:
            if stored.root() != frontier.root():
                fail("ledger_root", "the head's root is not the root of the stored entries")

    reader = TreeReader(store.node)
    signer = service.ledger.signer
    for cp_size in sorted(checkpoint_sizes):
        checkpoint = store.checkpoint(cp_size)
        if checkpoint is None or cp_size not in roots:
            fail("checkpoint_beyond_ledger", f"checkpoint at {cp_size} is beyond the entries")
            continue
        if bytes(checkpoint.root) != roots[cp_size]:
            fail("checkpoint_root", f"checkpoint at {cp_size} has another root than the entries")
        try:
            note = open_note(checkpoint.note, signer.origin, signer.public_key)
        except RedressError as exc:
            fail("checkpoint_signature", f"checkpoint at {cp_size}: {exc.message}")
        else:
            if note.size != cp_size or note.root != roots[cp_size]:
                fail("checkpoint_note", f"the signed note at {cp_size} names another tree")
        try:
            if reader.root(cp_size) != roots[cp_size]:
                fail("ledger_nodes", f"stored tree nodes give another root at {cp_size}")
        except RedressError as exc:
            fail("ledger_nodes", f"at {cp_size}: {exc.message}")

    items = live = decrypted = 0
    for row in store.iter_items():
        items += 1
        seqs = captures.pop(row.id, [])
        if seqs != [row.capture_seq]:
            fail(
                "item_capture_entries",
                f"item {row.id} has capture entries {seqs}, expected [{row.capture_seq}]",
            )
        if row.status == STATUS_DELETED:
            continue
        live += 1
        if decrypt:
            decrypted += _decrypts(service, row, fail)
    for item_id, seqs in captures.items():
        fail("capture_without_item", f"capture entries {seqs} name item {item_id}, not stored")
    return AuditReport(
        size=size,
        checkpoints=len(checkpoint_sizes),
        items=items,
        live_items=live,
        decrypted=decrypted,
        kinds=dict(sorted(kinds.items())),
        failures=tuple(failures),
    )


def _decrypts(
    service: EvidenceService, row: EvidenceItemRow, fail: Callable[[str, str], None]
) -> int:
    try:
        content, _ = service.decrypt(row)
    except RedressError as exc:
        fail("item_unreadable", f"item {row.id}: {exc.message}")
        return 0
    if hashlib.sha512(content).hexdigest() != row.sha512:
        fail("item_content", f"item {row.id} decrypted to bytes with the wrong SHA-512")
        return 0
    return 1
