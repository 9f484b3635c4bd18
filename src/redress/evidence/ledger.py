"""The append-only evidence ledger: canonical entries under an RFC 6962 Merkle tree.

Each entry is one RFC 8785 canonical JSON object::

    {"v": 1, "seq": 41, "kind": "evidence:item:captured", "time": "2026-...Z",
     "clock": "system", "actor": "telegram-bot", "item": "9f...", "salt": "<16 random bytes, b64>",
     "facts": {...}}

``seq`` is the entry's leaf index, so an entry cannot be moved; ``salt`` keeps
a leaf hash from revealing guessable facts when proofs are shared. Every
``checkpoint_interval`` entries the ledger signs a checkpoint in the same
transaction as the entry that completes it.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from redress.evidence.canonical import JsonValue, canonical_json
from redress.evidence.checkpoint import (
    Checkpoint,
    CheckpointSigner,
    SignedCheckpoint,
    stored_token,
)
from redress.evidence.errors import BadCaptureError, EvidenceNotFoundError, LedgerCorruptError
from redress.evidence.interfaces import Clock, EntryDraft, LedgerEntry
from redress.evidence.merkle import Frontier, TreeReader, leaf_hash
from redress.evidence.store import SqlEvidenceStore

ENTRY_VERSION = 1
SALT_BYTES = 16


def format_time(value: dt.datetime) -> str:
    """RFC 3339 UTC with microseconds and ``Z``: the one time format of entries."""
    if value.tzinfo is None:
        raise BadCaptureError(f"time {value.isoformat()} has no timezone; give UTC")
    utc = value.astimezone(dt.UTC).replace(tzinfo=None)
    return utc.isoformat(timespec="microseconds") + "Z"


@dataclass(frozen=True)
class InclusionProof:
    """RFC 9162 inclusion proof of leaf ``index`` in the tree of ``size``."""

    index: int
    size: int
    hashes: tuple[bytes, ...]


@dataclass(frozen=True)
class ConsistencyProof:
    """RFC 9162 consistency proof from ``old_size`` to ``new_size``."""

    old_size: int
    new_size: int
    hashes: tuple[bytes, ...]


def _check_kind(kind: str) -> None:
    parts = kind.split(":")
    if len(parts) < 2 or not all(
        p and p.replace("-", "").replace("_", "").isalnum() for p in parts
    ):
        raise BadCaptureError(
            f"entry kind {kind!r} must be colon-separated words, like 'review:match:confirmed'"
        )


class Ledger:
    """Appends entries, signs checkpoints and answers proofs."""

    def __init__(
        self,
        store: SqlEvidenceStore,
        clock: Clock,
        signer: CheckpointSigner,
        checkpoint_interval: int = 1000,
    ) -> None:
        self._store = store
        self._clock = clock
        self.signer = signer
        self._interval = checkpoint_interval

    def append(
        self,
        kind: str,
        actor: str,
        facts: Mapping[str, JsonValue],
        item_id: str | None = None,
    ) -> LedgerEntry:
        """Append one entry (serialised against every other writer); return it."""
        return self.append_many([EntryDraft(kind, actor, facts, item_id)])[0]

    def append_many(self, drafts: Sequence[EntryDraft]) -> list[LedgerEntry]:
        """Append entries in order under one lock (a batch's fast path: the head stays
        locked until the caller's transaction ends, so one append per batch, as late as
        possible, keeps concurrent writers from queueing behind it)."""
        for draft in drafts:
            _check_kind(draft.kind)
            if not draft.actor:
                raise BadCaptureError("every ledger entry needs an actor")
        size, frontier_bytes = self._store.lock_head()
        try:
            frontier = Frontier.from_bytes(size, frontier_bytes)
        except ValueError as exc:
            raise LedgerCorruptError(str(exc)) from exc
        entries: list[LedgerEntry] = []
        nodes: list[tuple[int, int, bytes]] = []
        checkpoints: list[tuple[int, bytes]] = []
        now = self._clock.now()
        for draft in drafts:
            seq = frontier.size
            doc: dict[str, JsonValue] = {
                "v": ENTRY_VERSION,
                "seq": seq,
                "kind": draft.kind,
                "time": format_time(now),
                "clock": self._clock.source,
                "actor": draft.actor,
                "salt": base64.b64encode(os.urandom(SALT_BYTES)).decode(),
                "facts": draft.facts,
            }
            if draft.item_id is not None:
                doc["item"] = draft.item_id
            body = canonical_json(doc)
            leaf = leaf_hash(body)
            frontier, completed = frontier.append(leaf)
            # Level 0 (the leaf) is stored with its entry; interior nodes go to the node table.
            nodes.extend(node for node in completed if node[0] > 0)
            entries.append(
                LedgerEntry(seq, draft.kind, draft.item_id, draft.actor, now, body, leaf)
            )
            if frontier.size % self._interval == 0:
                checkpoints.append((frontier.size, frontier.root()))
        self._store.append_entries(entries, nodes, frontier.size, frontier.to_bytes())
        for cp_size, root in checkpoints:
            self._sign(cp_size, root, now)
        return entries

    def _sign(self, size: int, root: bytes, when: dt.datetime) -> None:
        note = self.signer.sign(Checkpoint(self.signer.origin, size, root))
        self._store.add_checkpoint(size, root, note, when)

    def size(self) -> int:
        """Number of entries."""
        return self._store.head()[0]

    def _reader(self) -> TreeReader:
        return TreeReader(self._store.node)

    def root(self, size: int | None = None) -> bytes:
        """Root hash of the tree of the first ``size`` entries (default: all)."""
        current, frontier = self._store.head()
        if size is None or size == current:
            return Frontier.from_bytes(current, frontier).root()
        if size > current:
            raise EvidenceNotFoundError(f"the ledger has {current} entries, not {size}")
        return self._reader().root(size)

    def checkpoint(self) -> SignedCheckpoint:
        """A signed checkpoint of the ledger as it stands (signed now if none exists)."""
        size, frontier = self._store.head()
        if size == 0:
            raise EvidenceNotFoundError("the ledger is empty; there is nothing to checkpoint")
        if self._store.checkpoint(size) is None:
            self._sign(size, Frontier.from_bytes(size, frontier).root(), self._clock.now())
        return self.signed_checkpoint(size)

    def signed_checkpoint(self, size: int) -> SignedCheckpoint:
        """The stored checkpoint at ``size``."""
        row = self._store.checkpoint(size)
        if row is None:
            raise EvidenceNotFoundError(f"no checkpoint was signed at size {size}")
        stamp = None
        if row.timestamp_token is not None:
            stamp = stored_token(row.timestamp_token, row.tsa_chain_pem or "")
        signed_at = row.signed_at if row.signed_at.tzinfo else row.signed_at.replace(tzinfo=dt.UTC)
        return SignedCheckpoint(
            Checkpoint(self.signer.origin, row.size, bytes(row.root)), row.note, signed_at, stamp
        )

    def checkpoint_sizes(self) -> list[int]:
        """Sizes at which checkpoints were signed."""
        return self._store.checkpoint_sizes()

    def inclusion_proof(self, seq: int, size: int) -> InclusionProof:
        """Proof that entry ``seq`` is in the tree of ``size`` entries."""
        if size > self.size():
            raise EvidenceNotFoundError(f"the ledger has fewer than {size} entries")
        try:
            hashes = self._reader().inclusion_proof(seq, size)
        except ValueError as exc:
            raise EvidenceNotFoundError(str(exc)) from exc
        return InclusionProof(seq, size, tuple(hashes))

    def consistency_proof(self, old_size: int, new_size: int) -> ConsistencyProof:
        """Proof that the tree of ``new_size`` extends the tree of ``old_size``."""
        if new_size > self.size():
            raise EvidenceNotFoundError(f"the ledger has fewer than {new_size} entries")
        try:
            hashes = self._reader().consistency_proof(old_size, new_size)
        except ValueError as exc:
            raise EvidenceNotFoundError(str(exc)) from exc
        return ConsistencyProof(old_size, new_size, tuple(hashes))

    def inclusion_proofs(self, seqs: Sequence[int], size: int) -> list[InclusionProof]:
        """Inclusion proofs of many entries in one tree, sharing node lookups."""
        if size > self.size():
            raise EvidenceNotFoundError(f"the ledger has fewer than {size} entries")
        reader = self._reader()
        return [InclusionProof(s, size, tuple(reader.inclusion_proof(s, size))) for s in seqs]

    def consistency_proofs(
        self, old_sizes: Sequence[int], new_size: int
    ) -> list[tuple[ConsistencyProof, bytes]]:
        """Consistency proofs from each old size to ``new_size``, each with the old root."""
        if new_size > self.size():
            raise EvidenceNotFoundError(f"the ledger has fewer than {new_size} entries")
        reader = self._reader()
        return [
            (
                ConsistencyProof(old, new_size, tuple(reader.consistency_proof(old, new_size))),
                reader.root(old),
            )
            for old in old_sizes
        ]

    def entries(self, seqs: Sequence[int]) -> list[LedgerEntry]:
        """Entries by sequence number."""
        return self._store.entries(seqs)

    def entries_for_item(self, item_id: str) -> list[LedgerEntry]:
        """An item's chain of custody."""
        return self._store.entries_for_item(item_id)
