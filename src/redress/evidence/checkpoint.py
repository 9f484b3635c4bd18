"""Signed checkpoints (C2SP tlog-checkpoint in a C2SP signed note) and RFC 3161 timestamps.

A checkpoint commits to the whole ledger at one size::

    <origin>\\n<size>\\n<base64 root hash>\\n

It is signed as a signed note: the text, a blank line, then one line
``— <key name> <base64(key ID || Ed25519 signature over the text)>``, where the
key ID is the first four bytes of SHA-256(key name || 0x0A || 0x01 || public key).
The key name is the origin. Optionally the whole signed note is sent to an
RFC 3161 time-stamping authority; its answer proves the checkpoint (and so
every entry under it) existed no later than the authority's time.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
from dataclasses import dataclass

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from rfc3161_client import (
    HashAlgorithm,
    PKIStatus,
    TimestampRequestBuilder,
    VerificationError,
    VerifierBuilder,
    decode_timestamp_response,
)

from redress.evidence.crypto import key_fingerprint, raw_public_key
from redress.evidence.errors import LedgerCorruptError, TimestampAuthorityError

SIGNATURE_TYPE_ED25519 = b"\x01"
EM_DASH = "\u2014"


@dataclass(frozen=True)
class Checkpoint:
    """The ledger's state at one size: origin, size and root hash."""

    origin: str
    size: int
    root: bytes

    def body(self) -> str:
        """The checkpoint note text (what is signed), ending in a newline."""
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode()}\n"


@dataclass(frozen=True)
class TimestampToken:
    """An RFC 3161 TimeStampResp (DER) and the PEM certificates needed to check it offline."""

    response: bytes
    chain_pem: str
    gen_time: dt.datetime


@dataclass(frozen=True)
class SignedCheckpoint:
    """A checkpoint with its signed note and, when a TSA is configured, its timestamp."""

    checkpoint: Checkpoint
    note: str
    signed_at: dt.datetime
    timestamp: TimestampToken | None = None


def stored_token(response: bytes, chain_pem: str) -> TimestampToken:
    """A token read back from the database (its time is read from the token itself)."""
    try:
        gen_time = decode_timestamp_response(response).tst_info.gen_time
    except ValueError as exc:
        raise LedgerCorruptError(f"a stored RFC 3161 token no longer parses: {exc}") from exc
    return TimestampToken(response, chain_pem, gen_time)


def key_id(name: str, public_key: bytes) -> bytes:
    """C2SP signed-note key ID of an Ed25519 key: SHA-256(name || 0x0A || 0x01 || key)[:4]."""
    return hashlib.sha256(name.encode() + b"\n" + SIGNATURE_TYPE_ED25519 + public_key).digest()[:4]


class CheckpointSigner:
    """Signs checkpoints with the ledger's Ed25519 key under a key name (the origin)."""

    def __init__(self, private_key: Ed25519PrivateKey, origin: str | None = None) -> None:
        self._private = private_key
        self.public_key = raw_public_key(private_key.public_key())
        self.fingerprint = key_fingerprint(self.public_key)
        if origin is None:
            origin = "redress.evidence/" + hashlib.sha256(self.public_key).hexdigest()[:16]
        if not origin or any(ch.isspace() or ch == "+" for ch in origin):
            raise LedgerCorruptError(f"origin {origin!r} must be non-empty, without spaces or '+'")
        self.origin = origin
        self.key_id = key_id(origin, self.public_key)

    def verifier_key(self) -> str:
        """The note verifier key string: ``<name>+<hex key ID>+<base64(0x01 || key)>``."""
        encoded = base64.b64encode(SIGNATURE_TYPE_ED25519 + self.public_key).decode()
        return f"{self.origin}+{self.key_id.hex()}+{encoded}"

    def public_key_pem(self) -> bytes:
        """The public key as a PEM SubjectPublicKeyInfo, for the package."""
        return self._private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def sign(self, checkpoint: Checkpoint) -> str:
        """The signed note for ``checkpoint``."""
        if checkpoint.origin != self.origin:
            raise LedgerCorruptError(
                f"checkpoint origin {checkpoint.origin!r} is not this key's {self.origin!r}"
            )
        text = checkpoint.body()
        signature = self._private.sign(text.encode())
        line = base64.b64encode(self.key_id + signature).decode()
        return f"{text}\n{EM_DASH} {self.origin} {line}\n"


def open_note(note: str, origin: str, public_key: bytes) -> Checkpoint:
    """Verify a signed checkpoint note against a known key; return the checkpoint it holds.

    Raises :class:`LedgerCorruptError` when no signature by that key verifies.
    """
    text, sep, signatures = note.partition("\n\n")
    if not sep:
        raise LedgerCorruptError("the note has no signature block")
    text += "\n"
    wanted = key_id(origin, public_key)
    verifier = Ed25519PublicKey.from_public_bytes(public_key)
    for line in signatures.splitlines():
        parts = line.split(" ")
        if len(parts) != 3 or parts[0] != EM_DASH or parts[1] != origin:
            continue
        try:
            blob = base64.b64decode(parts[2], validate=True)
        except (binascii.Error, ValueError):
            continue
        if blob[:4] != wanted:
            continue
        try:
            verifier.verify(blob[4:], text.encode())
        except InvalidSignature as exc:
            raise LedgerCorruptError("the checkpoint signature does not verify") from exc
        lines = text.split("\n")
        return Checkpoint(lines[0], int(lines[1]), base64.b64decode(lines[2]))
    raise LedgerCorruptError("the checkpoint is not signed by the ledger key")


class TimestampAuthority:
    """An RFC 3161 time-stamping authority reached over HTTP.

    Pass an ``httpx.Client`` to share connections (or a test transport); without
    one, each request opens and closes its own.
    """

    def __init__(
        self,
        url: str,
        client: httpx.Client | None = None,
        ca_pem: bytes | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.url = url
        self._client = client
        self._ca_pem = ca_pem
        self._timeout = timeout

    def _post(self, client: httpx.Client, query: bytes) -> httpx.Response:
        return client.post(
            self.url,
            content=query,
            headers={"Content-Type": "application/timestamp-query"},
            timeout=self._timeout,
        )

    def timestamp(self, data: bytes) -> TimestampToken:
        """Ask the authority to timestamp SHA-256(``data``); check and return its answer."""
        request = (
            TimestampRequestBuilder()
            .data(data)
            .hash_algorithm(HashAlgorithm.SHA256)
            .nonce(nonce=True)
            .cert_request(cert_request=True)
            .build()
        )
        try:
            if self._client is not None:
                reply = self._post(self._client, request.as_bytes())
            else:
                with httpx.Client() as client:
                    reply = self._post(client, request.as_bytes())
        except httpx.HTTPError as exc:
            raise TimestampAuthorityError(f"cannot reach the TSA at {self.url}: {exc}") from exc
        if reply.status_code != 200:
            raise TimestampAuthorityError(
                f"the TSA at {self.url} answered HTTP {reply.status_code}"
            )
        try:
            response = decode_timestamp_response(reply.content)
        except ValueError as exc:
            # Some TSAs send certificate sets a strict DER parser rejects (docs/evidence.md).
            raise TimestampAuthorityError(
                f"the TSA's answer is not a DER TimeStampResp this parser accepts: {exc}"
            ) from exc
        if response.status != PKIStatus.GRANTED:
            raise TimestampAuthorityError(
                f"the TSA refused the request (status {response.status}: "
                f"{'; '.join(response.status_string)})"
            )
        info = response.tst_info
        if info.nonce != request.nonce:
            raise TimestampAuthorityError("the TSA's answer does not carry our nonce")
        if info.message_imprint.message != hashlib.sha256(data).digest():
            raise TimestampAuthorityError("the TSA timestamped different data")
        certs = [x509.load_der_x509_certificate(c) for c in response.signed_data.certificates]
        roots: list[x509.Certificate] = []
        if self._ca_pem:
            roots = x509.load_pem_x509_certificates(self._ca_pem)
            builder = VerifierBuilder()
            for cert in roots:
                builder = builder.add_root_certificate(cert)
            for cert in certs:
                if cert not in roots:
                    builder = builder.add_intermediate_certificate(cert)
            try:
                builder.build().verify_message(response, data)
            except VerificationError as exc:
                raise TimestampAuthorityError(
                    "the TSA's timestamp does not verify against "
                    f"REDRESS_EVIDENCE_TSA_CA_FILE: {exc}"
                ) from exc
        chain = [*certs, *(c for c in roots if c not in certs)]
        pem = "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in chain)
        return TimestampToken(reply.content, pem, info.gen_time)
