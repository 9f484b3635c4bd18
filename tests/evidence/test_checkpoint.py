"""Signed-note checkpoints and RFC 3161 timestamps from a local OpenSSL TSA."""

from __future__ import annotations

import base64
import hashlib

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from rfc3161_client import decode_timestamp_response

from redress.evidence import verify as offline
from redress.evidence.checkpoint import (
    Checkpoint,
    CheckpointSigner,
    TimestampAuthority,
    key_id,
    open_note,
)
from redress.evidence.errors import LedgerCorruptError, TimestampAuthorityError

from .conftest import EvidenceEnv, LocalTsa


def test_note_format_follows_c2sp() -> None:
    signer = CheckpointSigner(Ed25519PrivateKey.generate(), "example.org/evidence")
    root = hashlib.sha256(b"root").digest()
    note = signer.sign(Checkpoint("example.org/evidence", 42, root))
    text, blank, signature = note.partition("\n\n")
    assert text == f"example.org/evidence\n42\n{base64.b64encode(root).decode()}"
    assert blank
    dash, name, blob = signature.rstrip("\n").split(" ")
    assert dash == "\u2014"
    assert name == "example.org/evidence"
    raw = base64.b64decode(blob)
    expected_id = hashlib.sha256(b"example.org/evidence\n\x01" + signer.public_key).digest()[:4]
    assert raw[:4] == expected_id == key_id("example.org/evidence", signer.public_key)
    assert len(raw) == 68
    assert signer.verifier_key().startswith(f"example.org/evidence+{expected_id.hex()}+")
    # Both the library and the standalone verifier accept it ...
    assert open_note(note, signer.origin, signer.public_key).size == 42
    assert offline.open_checkpoint(note.encode(), signer.public_key).root == root
    # ... and reject an edited size.
    with pytest.raises(LedgerCorruptError, match="does not verify"):
        open_note(note.replace("\n42\n", "\n43\n"), signer.origin, signer.public_key)
    other = CheckpointSigner(Ed25519PrivateKey.generate(), "example.org/evidence")
    with pytest.raises(LedgerCorruptError, match="not signed by"):
        open_note(note, other.origin, other.public_key)


def test_default_origin_derives_from_key_and_bad_origins_refused() -> None:
    signer = CheckpointSigner(Ed25519PrivateKey.generate())
    assert signer.origin == "redress.evidence/" + hashlib.sha256(signer.public_key).hexdigest()[:16]
    with pytest.raises(LedgerCorruptError):
        CheckpointSigner(Ed25519PrivateKey.generate(), "has space")


def test_local_tsa_timestamps_checkpoints(env: EvidenceEnv, local_tsa: LocalTsa) -> None:
    settings = {"evidence_tsa_url": local_tsa.url, "evidence_tsa_ca_file": local_tsa.ca_file}
    with env.service(**settings) as service:
        for i in range(8):
            service.record_event("test:entry:added", "t", {"i": i})
    with env.service(**settings) as service:
        assert service.timestamp_pending() == 2
        assert service.timestamp_pending() == 0
        signed = service.ledger.signed_checkpoint(4)
    assert signed.timestamp is not None
    response = decode_timestamp_response(signed.timestamp.response)
    assert (
        response.tst_info.message_imprint.message == hashlib.sha256(signed.note.encode()).digest()
    )
    assert signed.timestamp.gen_time == response.tst_info.gen_time
    # The TSA's own certificate (from the token) and the configured root.
    assert signed.timestamp.chain_pem.count("BEGIN CERTIFICATE") == 2


def test_tsa_failures_are_clear_errors(local_tsa: LocalTsa) -> None:
    with httpx.Client() as client:
        unreachable = TimestampAuthority("http://127.0.0.1:9/tsa", client, timeout=2)
        with pytest.raises(TimestampAuthorityError, match="cannot reach"):
            unreachable.timestamp(b"data")
        wrong_ca = TimestampAuthority(local_tsa.url, client, ca_pem=_other_ca_pem())
        with pytest.raises(TimestampAuthorityError, match="does not verify"):
            wrong_ca.timestamp(b"data")
        good = TimestampAuthority(local_tsa.url, client, ca_pem=local_tsa.ca_file.read_bytes())
        token = good.timestamp(b"data")
        assert token.gen_time.tzinfo is not None


def _other_ca_pem() -> bytes:
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Unrelated Root")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)
