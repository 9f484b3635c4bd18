"""Keys and encryption: master key file, wrapping, item AAD, recipient encryption."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization

from redress.evidence import verify as offline
from redress.evidence.crypto import (
    MasterKeyFile,
    MasterKeys,
    encrypt_for_recipient,
    item_aad,
    key_fingerprint,
    load_master_keys,
    load_recipient_key,
    load_signing_key,
    new_key,
    new_recipient_key,
    normalise_fingerprint,
    seal,
    unseal,
    wipe_file,
)
from redress.evidence.errors import EvidenceDecryptError, EvidenceKeyError, ExportError


def test_seal_round_trip_and_aad_binding() -> None:
    key = new_key()
    sealed = seal(key, b"original bytes", item_aad("a" * 32, 5, "content"))
    assert unseal(key, sealed, item_aad("a" * 32, 5, "content")) == b"original bytes"
    with pytest.raises(EvidenceDecryptError, match="another item"):
        unseal(key, sealed, item_aad("b" * 32, 5, "content"))
    with pytest.raises(EvidenceDecryptError):
        unseal(key, sealed, item_aad("a" * 32, 6, "content"))
    flipped = bytearray(sealed)
    flipped[20] ^= 1
    with pytest.raises(EvidenceDecryptError):
        unseal(key, bytes(flipped), item_aad("a" * 32, 5, "content"))


def test_master_key_file_is_private_and_stable(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "evidence-master.key"
    first = MasterKeyFile(path).load_or_create()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert MasterKeyFile(path).load_or_create() == first
    kid, wrapped = first.wrap("c" * 32, b"k" * 32)
    assert first.unwrap("c" * 32, kid, wrapped) == b"k" * 32
    with pytest.raises(EvidenceDecryptError):
        first.unwrap("d" * 32, kid, wrapped)  # a wrapped key copied onto another item
    os.chmod(path, 0o644)
    with pytest.raises(EvidenceKeyError, match="chmod 600"):
        MasterKeyFile(path).load()


def test_rotation_steps_keep_old_keys_until_told(tmp_path: Path) -> None:
    source = MasterKeyFile(tmp_path / "m.key")
    old = source.load_or_create()
    kid, wrapped = old.wrap("e" * 32, b"x" * 32)
    both = source.add_current()
    assert both.current_id != old.current_id
    assert both.unwrap("e" * 32, kid, wrapped) == b"x" * 32
    only = source.retain_only_current()
    assert set(only.keys) == {both.current_id}
    with pytest.raises(EvidenceKeyError, match="not loaded"):
        only.unwrap("e" * 32, kid, wrapped)


def test_environment_master_key_wins_and_is_checked(tmp_path: Path) -> None:
    raw = new_key()
    keys, source = load_master_keys(tmp_path / "unused", base64.b64encode(raw).decode(), None)
    assert source is None
    assert keys == MasterKeys.of(raw)
    assert not (tmp_path / "unused").exists()
    with pytest.raises(EvidenceKeyError, match="32 bytes"):
        load_master_keys(tmp_path / "x", base64.b64encode(b"short").decode(), None)
    with pytest.raises(EvidenceKeyError, match="base64"):
        load_master_keys(tmp_path / "x", "not base64!", None)


def test_signing_key_generated_once_and_fingerprint_defined(tmp_path: Path) -> None:
    key = load_signing_key(tmp_path / "ledger-signing.pem")
    again = load_signing_key(tmp_path / "ledger-signing.pem")
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    raw_again = again.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    assert raw == raw_again
    fpr = key_fingerprint(raw)
    assert len(fpr) == 79
    assert fpr.count(":") == 15
    assert normalise_fingerprint(fpr.upper().replace(":", " ")) == normalise_fingerprint(fpr)
    assert fpr == offline.fingerprint(raw)


def test_recipient_encryption_round_trip(tmp_path: Path) -> None:
    private_pem, public_pem = new_recipient_key()
    (tmp_path / "r.pub").write_bytes(public_pem)
    (tmp_path / "r.key").write_bytes(private_pem)
    public = load_recipient_key(tmp_path / "r.pub")
    private = offline.load_recipient_private_key(tmp_path / "r.key")
    blob = encrypt_for_recipient(public, b"secret image bytes", b"data/items/x/content.jpg.enc")
    assert b"secret image bytes" not in blob
    assert offline.decrypt_for_recipient(private, blob, b"data/items/x/content.jpg.enc") == (
        b"secret image bytes"
    )
    with pytest.raises(InvalidTag):  # the file moved to another path in the bag
        offline.decrypt_for_recipient(private, blob, b"data/items/y/content.jpg.enc")
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    (tmp_path / "r.b64").write_text(base64.b64encode(raw).decode())
    assert (
        load_recipient_key(tmp_path / "r.b64").public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        == raw
    )
    (tmp_path / "bad").write_text("nonsense")
    with pytest.raises(ExportError):
        load_recipient_key(tmp_path / "bad")


def test_wipe_overwrites_then_removes(tmp_path: Path) -> None:
    path = tmp_path / "blob.bin"
    path.write_bytes(b"A" * 5000)
    wipe_file(path)
    assert not path.exists()
    wipe_file(path)  # already gone: nothing to do
