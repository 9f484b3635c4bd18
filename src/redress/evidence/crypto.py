"""Key material and encryption of the evidence domain.

Key hierarchy (docs/evidence.md, "Keys")::

    master key (outside the database: key file under REDRESS_HOME, or REDRESS_EVIDENCE_MASTER_KEY)
      └── wraps, with AES-256-GCM, one random item key per evidence item
            └── encrypts, with AES-256-GCM, the item's bytes and its capture record
    ledger signing key (Ed25519, keys/ledger-signing.pem): signs checkpoints
    recipient keys (X25519, held by the police/lawyer): exports encrypted to them

Every AES-GCM operation binds associated data naming what the ciphertext is
(item ID, ledger sequence, which part), so a blob moved onto another item, or a
wrapped key copied onto another row, fails to decrypt instead of decrypting
to the wrong thing.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from redress.evidence.errors import EvidenceDecryptError, EvidenceKeyError, ExportError

KEY_SIZE = 32
NONCE_SIZE = 12
MASTER_KEY_FILE = "evidence-master.key"
SIGNING_KEY_FILE = "ledger-signing.pem"

RECIPIENT_MAGIC = b"REDRESS-X25519-HKDF-SHA256-AES256GCM-v1\n"
RECIPIENT_INFO = b"redress evidence recipient v1"
"""Export encryption to a recipient: see :func:`encrypt_for_recipient`."""


# -- small primitives -------------------------------------------------------------------------


def new_key() -> bytes:
    """A fresh random 256-bit key."""
    return os.urandom(KEY_SIZE)


def seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """AES-256-GCM with a random 96-bit nonce: returns nonce || ciphertext || tag."""
    nonce = os.urandom(NONCE_SIZE)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def unseal(key: bytes, sealed: bytes, aad: bytes) -> bytes:
    """Inverse of :func:`seal`; a wrong key, wrong AAD or a damaged byte raises."""
    if len(sealed) < NONCE_SIZE + 16:
        raise EvidenceDecryptError("ciphertext is too short to be AES-GCM output")
    try:
        return AESGCM(key).decrypt(sealed[:NONCE_SIZE], sealed[NONCE_SIZE:], aad)
    except InvalidTag as exc:
        raise EvidenceDecryptError(
            "authentication failed: wrong key, or the ciphertext belongs to another item or "
            "was altered"
        ) from exc


def item_aad(item_id: str, capture_seq: int, part: str) -> bytes:
    """Associated data binding an item's ciphertext to its ID and capture ledger sequence."""
    return f"redress-evidence/v1\n{item_id}\n{capture_seq}\n{part}".encode()


def _wrap_aad(item_id: str, master_key_id: str) -> bytes:
    return f"redress-evidence-key/v1\n{item_id}\n{master_key_id}".encode()


# -- master keys --------------------------------------------------------------------------------


def master_key_id(key: bytes) -> str:
    """A short public identifier of a master key (not secret, not the key)."""
    return hashlib.sha256(b"redress master key id\n" + key).hexdigest()[:16]


@dataclass(frozen=True)
class MasterKeys:
    """The master key in force (``current_id``) and any older ones still wrapping items."""

    current_id: str
    keys: Mapping[str, bytes]

    @staticmethod
    def of(current: bytes, previous: tuple[bytes, ...] = ()) -> MasterKeys:
        """Build from raw keys, checking their length."""
        for key in (current, *previous):
            if len(key) != KEY_SIZE:
                raise EvidenceKeyError(f"a master key must be {KEY_SIZE} bytes, got {len(key)}")
        keys = {master_key_id(k): k for k in previous}
        keys[master_key_id(current)] = current
        return MasterKeys(master_key_id(current), keys)

    def wrap(self, item_id: str, item_key: bytes) -> tuple[str, bytes]:
        """Wrap an item key under the current master key; returns (master key id, wrapped)."""
        kid = self.current_id
        return kid, seal(self.keys[kid], item_key, _wrap_aad(item_id, kid))

    def unwrap(self, item_id: str, master_key_id: str, wrapped: bytes) -> bytes:
        """Recover an item key wrapped under ``master_key_id``."""
        key = self.keys.get(master_key_id)
        if key is None:
            raise EvidenceKeyError(
                f"item {item_id} is wrapped under master key {master_key_id}, which is not "
                "loaded; set REDRESS_EVIDENCE_PREVIOUS_MASTER_KEYS or restore the key file"
            )
        return unseal(key, wrapped, _wrap_aad(item_id, master_key_id))


def _decode_key(text: str, what: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise EvidenceKeyError(f"{what} is not valid base64") from exc
    if len(key) != KEY_SIZE:
        raise EvidenceKeyError(f"{what} must decode to {KEY_SIZE} bytes, got {len(key)}")
    return key


def _check_private(path: Path) -> None:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise EvidenceKeyError(
            f"{path} is readable by other users (mode {stat.S_IMODE(mode):o}); chmod 600 it"
        )


def _write_private_new(path: Path, data: bytes) -> bool:
    """Create ``path`` with ``data`` (mode 0600) unless it exists; True when this call made it.

    Written to a temporary file and hard-linked into place, so two processes
    creating the key at once never see a half-written file and only one wins.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        return True
    finally:
        tmp.unlink(missing_ok=True)


def _replace_private(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


class MasterKeyFile:
    """The master key file (JSON: the current key ID and base64 keys), mode 0600."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load_or_create(self) -> MasterKeys:
        """Read the key file, creating it with a fresh key on first use."""
        if not self.path.exists():
            self._write_new(MasterKeys.of(new_key()))
        return self.load()

    def load(self) -> MasterKeys:
        """Read the key file."""
        try:
            _check_private(self.path)
            doc = json.loads(self.path.read_text(encoding="utf-8"))
            keys = {
                kid: _decode_key(text, f"key {kid} in {self.path}")
                for kid, text in doc["keys"].items()
            }
            current = str(doc["current"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise EvidenceKeyError(f"cannot read the master key file {self.path}: {exc}") from exc
        for kid, key in keys.items():
            if master_key_id(key) != kid:
                raise EvidenceKeyError(f"key {kid} in {self.path} does not match its identifier")
        if current not in keys:
            raise EvidenceKeyError(f"the current key {current} is missing from {self.path}")
        return MasterKeys(current, keys)

    def _doc(self, keys: MasterKeys) -> bytes:
        doc = {
            "current": keys.current_id,
            "keys": {kid: base64.b64encode(k).decode() for kid, k in keys.keys.items()},
        }
        return json.dumps(doc, indent=2, sort_keys=True).encode() + b"\n"

    def _write_new(self, keys: MasterKeys) -> None:
        _write_private_new(self.path, self._doc(keys))

    def add_current(self) -> MasterKeys:
        """Step 1 of rotation: a new current key, keeping the old ones to unwrap with."""
        old = self.load()
        fresh = new_key()
        keys = MasterKeys(master_key_id(fresh), {**old.keys, master_key_id(fresh): fresh})
        _replace_private(self.path, self._doc(keys))
        return keys

    def retain_only_current(self) -> MasterKeys:
        """Step 3 of rotation, after every item key is re-wrapped and committed."""
        keys = self.load()
        only = MasterKeys(keys.current_id, {keys.current_id: keys.keys[keys.current_id]})
        _replace_private(self.path, self._doc(only))
        return only


def load_master_keys(
    key_file: Path, env_key: str | None, env_previous: str | None
) -> tuple[MasterKeys, MasterKeyFile | None]:
    """The master keys in force: the environment's when given, else the key file's.

    Returns the key file too (None for an environment key) so rotation knows
    whether it may write a new key itself.
    """
    if env_key:
        previous = tuple(
            _decode_key(part, "a REDRESS_EVIDENCE_PREVIOUS_MASTER_KEYS key")
            for part in (env_previous or "").split(",")
            if part.strip()
        )
        return MasterKeys.of(_decode_key(env_key, "REDRESS_EVIDENCE_MASTER_KEY"), previous), None
    source = MasterKeyFile(key_file)
    return source.load_or_create(), source


# -- the ledger signing key ----------------------------------------------------------------------


def load_signing_key(path: Path) -> Ed25519PrivateKey:
    """The Ed25519 checkpoint signing key at ``path``, generated (mode 0600) on first use."""
    if not path.exists():
        fresh = Ed25519PrivateKey.generate()
        pem = fresh.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        _write_private_new(path, pem)
    try:
        _check_private(path)
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise EvidenceKeyError(f"cannot read the ledger signing key {path}: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise EvidenceKeyError(f"{path} is not an Ed25519 private key")
    return key


def raw_public_key(key: Ed25519PublicKey) -> bytes:
    """The 32-byte RFC 8032 encoding of an Ed25519 public key."""
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_fingerprint(public_key: bytes) -> str:
    """Fingerprint of an Ed25519 public key: SHA-256 of its 32 raw bytes, hex, in groups of 4."""
    digest = hashlib.sha256(public_key).hexdigest()
    return ":".join(digest[i : i + 4] for i in range(0, len(digest), 4))


def normalise_fingerprint(text: str) -> str:
    """Lower-case hex digits only, so pasted fingerprints compare whatever their grouping."""
    return "".join(ch for ch in text.lower() if ch in "0123456789abcdef")


# -- export recipients --------------------------------------------------------------------------


def load_recipient_key(path: Path) -> X25519PublicKey:
    """A recipient's X25519 public key: a PEM file or base64 of the 32 raw bytes."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ExportError(f"cannot read recipient key {path}: {exc.strerror}") from exc
    if b"-----BEGIN" in data:
        try:
            key = serialization.load_pem_public_key(data)
        except ValueError as exc:
            raise ExportError(f"{path} is not a PEM public key") from exc
        if not isinstance(key, X25519PublicKey):
            raise ExportError(f"{path} is not an X25519 public key")
        return key
    try:
        raw = base64.b64decode(data.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ExportError(f"{path} is neither PEM nor base64") from exc
    if len(raw) != KEY_SIZE:
        raise ExportError(f"{path}: an X25519 public key is 32 bytes, got {len(raw)}")
    return X25519PublicKey.from_public_bytes(raw)


def new_recipient_key() -> tuple[bytes, bytes]:
    """A fresh X25519 recipient key pair: (private PEM, public PEM)."""
    private = X25519PrivateKey.generate()
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private_pem, public_pem


def write_private_file(path: Path, data: bytes) -> None:
    """Write a new private file with mode 0600; refuse to overwrite one."""
    if not _write_private_new(path, data):
        raise EvidenceKeyError(f"{path} already exists; refusing to overwrite a key")


def encrypt_for_recipient(recipient: X25519PublicKey, plaintext: bytes, aad: bytes) -> bytes:
    """Encrypt a file of an export to a recipient.

    Scheme (ECIES-style): a fresh ephemeral X25519 key per file; the shared
    secret goes through HKDF-SHA256 (salt = ephemeral public key || recipient
    public key, info = ``RECIPIENT_INFO``) to a 256-bit AES-GCM key; the file's
    path inside the bag is the associated data. Layout:
    ``RECIPIENT_MAGIC || ephemeral public key (32) || nonce (12) || ciphertext || tag``.
    """
    ephemeral = X25519PrivateKey.generate()
    eph_pub = ephemeral.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    rec_pub = recipient.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    key = HKDF(
        algorithm=hashes.SHA256(), length=KEY_SIZE, salt=eph_pub + rec_pub, info=RECIPIENT_INFO
    ).derive(ephemeral.exchange(recipient))
    nonce = os.urandom(NONCE_SIZE)
    return RECIPIENT_MAGIC + eph_pub + nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def wipe_file(path: Path) -> None:
    """Overwrite a file with random bytes, flush it to disk, then unlink it.

    On journaling or copy-on-write storage the old blocks may survive; the
    erasure that counts is destroying the item key (crypto-shredding).
    """
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return
    with path.open("r+b") as handle:
        remaining = size
        while remaining > 0:
            chunk = min(remaining, 1 << 20)
            handle.write(os.urandom(chunk))
            remaining -= chunk
        handle.flush()
        os.fsync(handle.fileno())
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
