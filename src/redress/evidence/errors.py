"""Errors of the evidence domain.

Hierarchy (this module)::

    RedressError
    ├── EvidenceError                   evidence_error           500
    │   ├── EvidenceNotFoundError       evidence_not_found       404
    │   ├── EvidenceDeletedError        evidence_deleted         410
    │   ├── EvidenceDecryptError        evidence_decrypt_failed  500
    │   ├── EvidenceKeyError            evidence_key_error       500
    │   ├── LedgerConflictError         ledger_conflict          409
    │   ├── LedgerCorruptError          ledger_corrupt           500
    │   ├── CanonicalJsonError          canonical_json           400
    │   ├── BadCaptureError             bad_capture              400
    │   ├── TimestampAuthorityError     tsa_error                502
    │   ├── ExportError                 export_error             400
    │   ├── EvidenceStorageError        evidence_storage_full    507
    │   └── PackageVerificationError    (code of the first failed check, see verify.py)  422

The offline verifier (:mod:`redress.evidence.verify`) deliberately does not
import this module (it must run without Redress); the CLI translates its
failures into :class:`PackageVerificationError`.
"""

from __future__ import annotations

from redress.errors import RedressError


class EvidenceError(RedressError):
    """Base of the evidence domain's errors."""

    code = "evidence_error"
    status_code = 500


class EvidenceNotFoundError(EvidenceError):
    """No evidence item has the given ID."""

    code = "evidence_not_found"
    status_code = 404


class EvidenceDeletedError(EvidenceError):
    """The item was deleted at the victim's request: its key and bytes are gone."""

    code = "evidence_deleted"
    status_code = 410


class EvidenceDecryptError(EvidenceError):
    """Decryption failed: a wrong master key, a damaged blob, or a blob for another item."""

    code = "evidence_decrypt_failed"
    status_code = 500


class EvidenceKeyError(EvidenceError):
    """A master, signing or recipient key is missing, unreadable or malformed."""

    code = "evidence_key_error"
    status_code = 500


class LedgerConflictError(EvidenceError):
    """Two writers tried to take the same ledger sequence number (nothing was written)."""

    code = "ledger_conflict"
    status_code = 409


class LedgerCorruptError(EvidenceError):
    """The stored ledger contradicts itself (a missing node, a head that does not match)."""

    code = "ledger_corrupt"
    status_code = 500


class CanonicalJsonError(EvidenceError):
    """A value cannot be written as RFC 8785 canonical JSON (NaN, a huge integer, a bad key)."""

    code = "canonical_json"
    status_code = 400


class BadCaptureError(EvidenceError):
    """A capture request is malformed (empty content, a bad media type, a naive date)."""

    code = "bad_capture"
    status_code = 400


class TimestampAuthorityError(EvidenceError):
    """The RFC 3161 time-stamping authority could not be reached or gave a bad answer."""

    code = "tsa_error"
    status_code = 502


class ExportError(EvidenceError):
    """An export was asked for something it cannot do (no items, a bad recipient key)."""

    code = "export_error"
    status_code = 400


class EvidenceStorageError(EvidenceError):
    """An encrypted blob could not be written (the disk is full or read-only). Nothing of
    the capture is kept: the temporary file is removed and the transaction rolls back."""

    code = "evidence_storage_full"
    status_code = 507


class PackageVerificationError(EvidenceError):
    """An evidence package failed offline verification; ``code`` names the first failed check."""

    code = "evidence_verification_failed"
    status_code = 422
