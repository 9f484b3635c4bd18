"""Evidence rules: capture, view, delete, rotate keys, record other domains' decisions.

The service never commits: the edge (CLI command, request, worker task) owns
the transaction. Blob files are written before the commit; if the
transaction rolls back, the orphaned blob is unreadable because its item key
was never stored.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from redress import __version__
from redress.config import Settings
from redress.errors import ConfigurationError
from redress.evidence.canonical import JsonValue, canonical_json
from redress.evidence.checkpoint import CheckpointSigner, TimestampAuthority
from redress.evidence.crypto import (
    MASTER_KEY_FILE,
    SIGNING_KEY_FILE,
    MasterKeyFile,
    MasterKeys,
    item_aad,
    key_fingerprint,
    load_master_keys,
    load_signing_key,
    new_key,
    seal,
    unseal,
    wipe_file,
)
from redress.evidence.errors import (
    BadCaptureError,
    EvidenceDecryptError,
    EvidenceDeletedError,
    EvidenceNotFoundError,
    EvidenceStorageError,
    ExportError,
)
from redress.evidence.interfaces import (
    CaptureRequest,
    Clock,
    EntryDraft,
    EntryKind,
    EvidenceItem,
    ExportResult,
    LedgerEntry,
    MessageFacts,
    OpenedItem,
    Trigger,
    check_item_id,
)
from redress.evidence.ledger import Ledger, format_time
from redress.evidence.models import EvidenceItemRow
from redress.evidence.package import PackageContents, PackageItem, write_package
from redress.evidence.store import SqlEvidenceStore, item_from_row

MEDIA_TYPE = re.compile(
    r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$", re.IGNORECASE
)
RECORD_FORMAT = "redress-capture-record/1"
STATUS_ACTIVE = "active"
STATUS_DELETED = "deleted"


class SystemClock:
    """The host's clock, read as UTC. Run NTP; RFC 3161 timestamps corroborate it."""

    source = "system clock (UTC)"

    def now(self) -> dt.datetime:
        """The current UTC time."""
        return dt.datetime.now(dt.UTC)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


class BlobStore:
    """Encrypted item bytes on disk, one file per item, fanned out by ID prefix."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, name: str) -> Path:
        """Where blob ``name`` lives."""
        return self.root / name

    def write(self, name: str, data: bytes) -> None:
        """Write a blob durably (temporary file, fsync, rename)."""
        path = self.path(name)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except OSError as exc:
            # A full disk (ENOSPC), a quota (EDQUOT), a file size limit (EFBIG) or a
            # read-only mount: leave no partial file, and say so in one clear error; the
            # caller's transaction rolls back, so no ledger entry or row points at it.
            tmp.unlink(missing_ok=True)
            raise EvidenceStorageError(
                f"cannot write an evidence blob under {self.root}: "
                f"{exc.strerror or exc.__class__.__name__}"
            ) from exc

    def remove_abandoned(self) -> int:
        """Remove temporary files left by writers killed mid-write; return how many.

        A write's temporary file is named after its process; one whose process is gone
        (or is this process, which has not written yet when it calls this at start) was
        abandoned: its transaction never committed, so nothing refers to it. A file of
        a live process (another worker on this host) is left alone, and so is one whose
        process cannot be told (a worker on another host sharing the volume, with a
        process ID alive here).
        """
        removed = 0
        for tmp in self.root.glob("*/.*.tmp"):
            pid_text = tmp.name.rsplit(".", 2)[-2]
            if not pid_text.isdigit():
                continue
            pid = int(pid_text)
            if pid != os.getpid() and _process_alive(pid):
                continue
            tmp.unlink(missing_ok=True)
            removed += 1
        return removed

    def read(self, name: str) -> bytes:
        """Read a blob."""
        try:
            return self.path(name).read_bytes()
        except FileNotFoundError as exc:
            raise EvidenceDecryptError(f"the encrypted blob {name} is missing from disk") from exc

    def wipe(self, name: str) -> None:
        """Overwrite and remove a blob."""
        wipe_file(self.path(name))


@dataclass(frozen=True)
class RotationResult:
    """What a master-key rotation did."""

    new_key_id: str
    old_key_ids: tuple[str, ...]
    rewrapped: int
    entry_seq: int


def _time(value: dt.datetime | None) -> str | None:
    return None if value is None else format_time(value)


def _message_json(message: MessageFacts) -> dict[str, JsonValue]:
    return {
        "platform": message.platform,
        "chat_id": message.chat_id,
        "chat_title": message.chat_title,
        "message_id": message.message_id,
        "message_link": message.message_link,
        "sender_id": message.sender_id,
        "sender_name": message.sender_name,
        "forward_origin": message.forward_origin,
        "message_date": _time(message.message_date),
        "edit_date": _time(message.edit_date),
        "self_destruct_seconds": message.self_destruct_seconds,
        "content_protected": message.content_protected,
        "caption": message.caption,
        "raw": message.raw,
    }


def _trigger_json(trigger: Trigger) -> dict[str, JsonValue]:
    return {
        "kind": trigger.kind.value,
        "reference": trigger.reference,
        "case_id": trigger.case_id,
        "bank": trigger.bank,
        "distance": trigger.distance,
        "details": trigger.details,
    }


def _validate(request: CaptureRequest) -> None:
    if not request.content:
        raise BadCaptureError("capture content is empty")
    if not MEDIA_TYPE.fullmatch(request.media_type):
        raise BadCaptureError(f"{request.media_type!r} is not a media type like image/jpeg")
    for name in ("connector", "operator"):
        if not getattr(request, name):
            raise BadCaptureError(f"a capture needs a {name}")
    if not request.message.platform:
        raise BadCaptureError("a capture needs the platform it came from")
    for when in (request.message.message_date, request.message.edit_date):
        if when is not None and when.tzinfo is None:
            raise BadCaptureError("message dates must be timezone-aware")


class EvidenceService:
    """Capture, view, export, delete and key rotation, each written to the ledger."""

    def __init__(
        self,
        store: SqlEvidenceStore,
        ledger: Ledger,
        master_keys: MasterKeys,
        blobs: BlobStore,
        clock: Clock,
        timestamper: TimestampAuthority | None = None,
        master_key_file: MasterKeyFile | None = None,
    ) -> None:
        self.store = store
        self.ledger = ledger
        self._keys = master_keys
        self.blobs = blobs
        self.clock = clock
        self.timestamper = timestamper
        self._key_file = master_key_file

    # -- capture ---------------------------------------------------------------------------------

    def capture(self, request: CaptureRequest) -> EvidenceItem:
        """Store ``request.content`` unchanged, encrypted, and log the capture.

        Returns the item; its ``capture_seq`` is the ledger entry that commits
        to the bytes' SHA-256/SHA-512 and to the full capture record.
        """
        _validate(request)
        captured_at = self.clock.now()
        item_id = uuid.uuid4().hex
        content = request.content
        sha256 = hashlib.sha256(content).hexdigest()
        sha512 = hashlib.sha512(content).hexdigest()
        evidence: dict[str, JsonValue] = {
            "content": {
                "sha256": sha256,
                "sha512": sha512,
                "size": len(content),
                "media_type": request.media_type,
                "file_name": request.file_name,
            },
            "message": _message_json(request.message),
            "captured_at": format_time(captured_at),
            "clock": self.clock.source,
            "redress_version": __version__,
            "connector": request.connector,
            "operator": request.operator,
        }
        record = canonical_json(
            {
                "format": RECORD_FORMAT,
                "item": item_id,
                "evidence": evidence,
                "trigger": _trigger_json(request.trigger),
            }
        )
        facts: dict[str, JsonValue] = {
            "sha256": sha256,
            "sha512": sha512,
            "size": len(content),
            "media_type": request.media_type,
            "captured_at": format_time(captured_at),
            "clock": self.clock.source,
            "redress_version": __version__,
            "connector": request.connector,
            "operator": request.operator,
            "platform": request.message.platform,
            "chat_id": request.message.chat_id,
            "message_id": request.message.message_id,
            "record_sha256": hashlib.sha256(record).hexdigest(),
            "trigger": {"kind": request.trigger.kind.value, "reference": request.trigger.reference},
        }
        entry = self.ledger.append(EntryKind.CAPTURE, request.connector, facts, item_id)
        if self._key_file is not None:
            # Re-read under the ledger lock so a concurrent key rotation is never missed.
            self._keys = self._key_file.load()
        item_key = new_key()
        blob_name = f"{item_id[:2]}/{item_id}.bin"
        self.blobs.write(
            blob_name, seal(item_key, content, item_aad(item_id, entry.seq, "content"))
        )
        key_id, wrapped = self._keys.wrap(item_id, item_key)
        row = EvidenceItemRow(
            id=item_id,
            capture_seq=entry.seq,
            status=STATUS_ACTIVE,
            case_id=request.trigger.case_id,
            platform=request.message.platform,
            chat_id=request.message.chat_id,
            message_id=request.message.message_id,
            media_type=request.media_type,
            size=len(content),
            sha256=sha256,
            sha512=sha512,
            captured_at=captured_at,
            connector=request.connector,
            operator=request.operator,
            trigger_kind=request.trigger.kind.value,
            master_key_id=key_id,
            wrapped_key=wrapped,
            record_ciphertext=seal(item_key, record, item_aad(item_id, entry.seq, "record")),
            blob_name=blob_name,
        )
        self.store.add_item(row)
        return item_from_row(row)

    # -- reading ---------------------------------------------------------------------------------

    def item(self, item_id: str) -> EvidenceItem:
        """An item's public facts (no decryption, not logged)."""
        return item_from_row(self._row(item_id))

    def _row(self, item_id: str, *, for_update: bool = False) -> EvidenceItemRow:
        row = self.store.item(check_item_id(item_id), for_update=for_update)
        if row is None:
            raise EvidenceNotFoundError(f"no evidence item {item_id}")
        return row

    def decrypt(self, row: EvidenceItemRow) -> tuple[bytes, bytes]:
        """The item's original bytes and capture record (not logged: callers log why)."""
        if row.status == STATUS_DELETED or row.wrapped_key is None or row.master_key_id is None:
            raise EvidenceDeletedError(
                f"item {row.id} was deleted (ledger entry {row.deleted_seq}); its key is destroyed"
            )
        if row.record_ciphertext is None:
            raise EvidenceDecryptError(f"item {row.id} has no capture record")
        item_key = self._keys.unwrap(row.id, row.master_key_id, row.wrapped_key)
        content = unseal(
            item_key, self.blobs.read(row.blob_name), item_aad(row.id, row.capture_seq, "content")
        )
        if hashlib.sha256(content).hexdigest() != row.sha256:
            raise EvidenceDecryptError(f"item {row.id} decrypted to bytes with the wrong SHA-256")
        record = unseal(
            item_key, row.record_ciphertext, item_aad(row.id, row.capture_seq, "record")
        )
        return content, record

    def open(self, item_id: str, actor: str, purpose: str) -> OpenedItem:
        """Decrypt an item for someone to look at; the view is logged first."""
        row = self._row(item_id)
        content, record = self.decrypt(row)
        entry = self.ledger.append(
            EntryKind.VIEW, actor, {"purpose": purpose, "sha256": row.sha256}, row.id
        )
        return OpenedItem(item_from_row(row), content, record, entry.seq)

    def items_for_message(self, platform: str, chat_id: str, message_id: str) -> list[EvidenceItem]:
        """Items already captured from one message (so a connector need not capture twice)."""
        return [
            self.item(item_id)
            for item_id in self.store.item_ids_for_message(platform, chat_id, message_id)
        ]

    def item_ids_for_case(self, case_id: str) -> list[str]:
        """Items captured for a victim case (from their triggers), in capture order."""
        return self.store.item_ids_for_case(case_id)

    # -- other domains' decisions ----------------------------------------------------------------

    def record_event(
        self,
        kind: str,
        actor: str,
        facts: Mapping[str, JsonValue],
        item_id: str | None = None,
    ) -> LedgerEntry:
        """Append a decision of another domain (``"review:match:confirmed"``) to the ledger.

        ``kind`` is ``domain:noun:verb``; the ``evidence:`` namespace is reserved.
        ``facts`` must be JSON (integers within +/-2**53, no NaN).
        """
        (entry,) = self.record_events([EntryDraft(kind, actor, facts, item_id)])
        return entry

    def record_events(self, drafts: Sequence[EntryDraft]) -> list[LedgerEntry]:
        """Append other domains' decisions in order, taking the ledger's head once.

        The head stays locked until the caller's transaction ends, so a batch that
        appends once, last, holds it for the shortest time (see ``record_event``).
        """
        for draft in drafts:
            if draft.kind.startswith("evidence:"):
                raise BadCaptureError(
                    "the evidence: entry kinds are written by the evidence domain"
                )
        for item_id in {d.item_id for d in drafts if d.item_id is not None}:
            self._row(item_id)
        return self.ledger.append_many(drafts)

    # -- deletion --------------------------------------------------------------------------------

    def delete(self, item_id: str, actor: str, reason: str) -> LedgerEntry:
        """Victim-controlled deletion: destroy the item key, wipe the blob, log a tombstone.

        Copies already exported cannot be recalled; the tombstone records that
        the item existed (its hashes stay in the ledger) and when it was erased.
        """
        row = self._row(item_id, for_update=True)
        if row.status == STATUS_DELETED:
            raise EvidenceDeletedError(f"item {item_id} was already deleted")
        entry = self.ledger.append(
            EntryKind.DELETION,
            actor,
            {"reason": reason, "sha256": row.sha256, "capture_seq": row.capture_seq},
            row.id,
        )
        row.wrapped_key = None
        row.master_key_id = None
        row.record_ciphertext = None
        row.status = STATUS_DELETED
        row.deleted_seq = entry.seq
        row.deleted_at = entry.recorded_at
        self.store.flush()
        self.blobs.wipe(row.blob_name)
        return entry

    def delete_case(self, case_id: str, actor: str, reason: str) -> list[LedgerEntry]:
        """Delete every live item of a victim case (withdrawal); returns the tombstones."""
        entries = []
        for item_id in self.store.item_ids_for_case(case_id):
            if self._row(item_id).status != STATUS_DELETED:
                entries.append(self.delete(item_id, actor, reason))
        return entries

    # -- keys ------------------------------------------------------------------------------------

    def rotate_master_key(self, actor: str) -> RotationResult:
        """Re-wrap every item key under a new master key (file) or the current one (env).

        With the key file: a new key is added as current (the old ones kept),
        items are re-wrapped here, and after the caller commits it calls
        :meth:`forget_old_master_keys`. With an environment key: set the new
        key as REDRESS_EVIDENCE_MASTER_KEY and the old one in
        REDRESS_EVIDENCE_PREVIOUS_MASTER_KEYS, run this, then drop the old one.
        """
        if self._key_file is not None:
            self._keys = self._key_file.add_current()
        # Hold the ledger lock before looking for items: a capture either committed
        # before (and is re-wrapped here) or waits, then wraps under the new key,
        # because captures re-read the key file while they hold this lock.
        self.store.lock_head()
        current = self._keys.current_id
        rows = self.store.items_wrapped_under_other_keys(current)
        old_ids = sorted(set(self._keys.keys) - {current})
        for row in rows:
            if row.master_key_id is None or row.wrapped_key is None:
                continue  # unreachable: the query selects wrapped keys only
            item_key = self._keys.unwrap(row.id, row.master_key_id, row.wrapped_key)
            row.master_key_id, row.wrapped_key = self._keys.wrap(row.id, item_key)
        self.store.flush()
        entry = self.ledger.append(
            EntryKind.KEY_ROTATION,
            actor,
            {"new_key_id": current, "old_key_ids": list(old_ids), "rewrapped": len(rows)},
        )
        return RotationResult(current, tuple(old_ids), len(rows), entry.seq)

    def forget_old_master_keys(self) -> None:
        """After the rotation committed: drop old keys from the key file."""
        if self._key_file is not None:
            self._keys = self._key_file.retain_only_current()

    # -- export ----------------------------------------------------------------------------------

    def export(
        self,
        item_ids: Sequence[str],
        destination: Path,
        actor: str,
        *,
        recipient: X25519PublicKey | None = None,
        consistency_from: Sequence[int] = (),
    ) -> ExportResult:
        """Write an evidence package (a zipped BagIt bag) for ``item_ids`` to ``destination``.

        Logs the export (which covers the decryption it needs), signs a
        checkpoint of the ledger including that entry, timestamps it when a
        TSA is configured, and packs every entry about the items with its
        inclusion proof, plus consistency proofs from every earlier checkpoint
        (and from each size in ``consistency_from``). With ``recipient`` the
        item files are encrypted to that X25519 key.
        """
        if not item_ids:
            raise ExportError("name at least one item to export")
        if destination.exists():
            raise ExportError(f"{destination} exists; evidence packages are never overwritten")
        if not destination.parent.is_dir():
            raise ExportError(f"folder {destination.parent} does not exist")
        rows: list[EvidenceItemRow] = []
        for item_id in dict.fromkeys(item_ids):
            row = self._row(item_id)
            if row.status == STATUS_DELETED:
                raise EvidenceDeletedError(f"item {item_id} was deleted; it cannot be exported")
            rows.append(row)
        decrypted = [(row, *self.decrypt(row)) for row in rows]
        recipient_fpr = None
        if recipient is not None:
            recipient_fpr = key_fingerprint(
                recipient.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            )
        export_entry = self.ledger.append(
            EntryKind.EXPORT,
            actor,
            {
                "items": [row.id for row in rows],
                "recipient": recipient_fpr,
                "package": destination.name,
            },
        )
        size = self.ledger.checkpoint().checkpoint.size
        self.timestamp_checkpoint(size)
        checkpoint = self.ledger.signed_checkpoint(size)
        entries = {export_entry.seq: export_entry}
        for row in rows:
            entries.update((e.seq, e) for e in self.ledger.entries_for_item(row.id))
        ordered = [entries[seq] for seq in sorted(entries)]
        proofs = self.ledger.inclusion_proofs([e.seq for e in ordered], size)
        old_sizes = sorted(
            {s for s in self.ledger.checkpoint_sizes() if s < size}
            | {s for s in consistency_from if 0 < s < size}
        )
        consistency = self.ledger.consistency_proofs(old_sizes, size)
        signer = self.ledger.signer
        write_package(
            PackageContents(
                items=[
                    PackageItem(item_from_row(r), content, record)
                    for r, content, record in decrypted
                ],
                entries=ordered,
                proofs=proofs,
                consistency=consistency,
                checkpoint=checkpoint,
                public_key_pem=signer.public_key_pem(),
                verifier_key=signer.verifier_key(),
                key_fingerprint=signer.fingerprint,
                export_seq=export_entry.seq,
                recipient=recipient,
                recipient_fingerprint=recipient_fpr,
            ),
            destination,
            export_entry.recorded_at.strftime("%Y%m%dT%H%M%SZ"),
        )
        return ExportResult(
            path=str(destination),
            item_ids=tuple(row.id for row in rows),
            checkpoint_size=size,
            key_fingerprint=signer.fingerprint,
            export_seq=export_entry.seq,
            encrypted_to=recipient_fpr,
        )

    # -- timestamps ------------------------------------------------------------------------------

    def timestamp_pending(self) -> int:
        """Ask the TSA to timestamp every checkpoint that has no timestamp yet."""
        if self.timestamper is None:
            return 0
        done = 0
        for row in self.store.checkpoints_without_timestamp():
            token = self.timestamper.timestamp(row.note.encode())
            self.store.set_timestamp(row.size, token.response, token.chain_pem)
            done += 1
        return done

    def timestamp_checkpoint(self, size: int) -> None:
        """Timestamp one checkpoint now if a TSA is configured and it has none."""
        row = self.store.checkpoint(size)
        if self.timestamper is None or row is None or row.timestamp_token is not None:
            return
        token = self.timestamper.timestamp(row.note.encode())
        self.store.set_timestamp(size, token.response, token.chain_pem)
        self.store.flush()


def keys_dir(settings: Settings) -> Path:
    """Where the evidence key files live."""
    return settings.home / "keys"


def build_evidence_service(
    store: SqlEvidenceStore,
    settings: Settings,
    *,
    clock: Clock | None = None,
    http_client: httpx.Client | None = None,
) -> EvidenceService:
    """Wire an :class:`EvidenceService` from settings (keys are created on first use)."""
    clock = clock or SystemClock()
    env_key = settings.evidence_master_key
    env_prev = settings.evidence_previous_master_keys
    master, key_file = load_master_keys(
        keys_dir(settings) / MASTER_KEY_FILE,
        env_key.get_secret_value() if env_key else None,
        env_prev.get_secret_value() if env_prev else None,
    )
    signer = CheckpointSigner(
        load_signing_key(keys_dir(settings) / SIGNING_KEY_FILE), settings.evidence_log_origin
    )
    ledger = Ledger(store, clock, signer, settings.evidence_checkpoint_interval)
    timestamper = None
    if settings.evidence_tsa_url:
        ca_pem = None
        if settings.evidence_tsa_ca_file is not None:
            try:
                ca_pem = settings.evidence_tsa_ca_file.read_bytes()
            except OSError as exc:
                raise ConfigurationError(
                    f"cannot read REDRESS_EVIDENCE_TSA_CA_FILE: {exc.strerror}"
                ) from exc
        timestamper = TimestampAuthority(
            settings.evidence_tsa_url,
            http_client,
            ca_pem,
            settings.evidence_tsa_timeout,
        )
    return EvidenceService(
        store,
        ledger,
        master,
        BlobStore(settings.effective_evidence_dir / "blobs"),
        clock,
        timestamper,
        key_file,
    )
