"""Offline verifier for Redress evidence packages.

This file stands alone on purpose: it imports only the Python standard
library, ``cryptography`` (Ed25519, X25519, AES-GCM) and, when a package holds
an RFC 3161 timestamp, ``rfc3161-client``. It re-implements the checks
independently of the code that wrote the package, so a court expert can read
this one file and run it without installing Redress::

    python redress_verify.py PACKAGE.zip --key-fingerprint FPR [--previous-checkpoint FILE]
                             [--recipient-key PRIVATE.pem]

Exit status 0 means every check held; 1 means at least one failed (each
failure is printed on its own line with a stable code); 2 means the command
line itself was wrong. Checks, in order:

1. the zip is safe to open (no path traversal, links, duplicate names or zip bomb);
2. it holds one BagIt bag whose manifests match every payload file;
3. the package's public key has the fingerprint you pinned;
4. the checkpoint note is signed by that key;
5. the RFC 3161 timestamp (if any) is over this checkpoint and signed by the included chain;
6. every ledger entry hashes, through its inclusion proof, to the checkpoint root;
7. every item's bytes, capture record and manifest lines equal the hashes its capture
   entry recorded (so regenerated manifests cannot hide a change);
8. optionally, the log is an append-only extension of an older checkpoint you hold.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import json
import os
import re
import shutil
import stat
import sys
import tempfile
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

PACKAGE_FORMAT = "redress-evidence-package/1"
CAPTURE_KIND = "evidence:item:captured"
EXPORT_KIND = "evidence:package:exported"
RECIPIENT_MAGIC = b"REDRESS-X25519-HKDF-SHA256-AES256GCM-v1\n"
RECIPIENT_INFO = b"redress evidence recipient v1"
EM_DASH = "\u2014"

# Zip limits: a package is media plus small text files.
MAX_MEMBERS = 200_000
MAX_TOTAL_BYTES = 16 * 1024**3
MAX_RATIO = 200  # uncompressed / compressed, for members above 1 MiB
CHUNK = 1 << 20


@dataclass(frozen=True)
class Failure:
    """One failed check: a stable code and a message for people."""

    code: str
    message: str


@dataclass
class Report:
    """The outcome of verifying one package."""

    failures: list[Failure] = field(default_factory=list)
    passed: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True only when every check held."""
        return not self.failures

    def fail(self, code: str, message: str) -> None:
        """Record a failed check."""
        self.failures.append(Failure(code, message))

    def note(self, message: str) -> None:
        """Record a check that held."""
        self.passed.append(message)


class _AbortError(Exception):
    """A failure after which nothing else can be checked."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.failure = Failure(code, message)


# -- RFC 6962 / 9162 Merkle verification ---------------------------------------------------------


def _leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def _node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def inclusion_proof_length(index: int, size: int) -> int:
    """How many hashes an RFC 9162 inclusion proof of ``index`` in ``size`` leaves has."""
    inner = (index ^ (size - 1)).bit_length()
    border = bin(index >> inner).count("1")
    return inner + border


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """RFC 9162 section 2.1.3.2."""
    if index < 0 or index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = _node_hash(p, r)
            if not fn & 1:
                while not (fn & 1 or fn == 0):
                    fn >>= 1
                    sn >>= 1
        else:
            r = _node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """RFC 9162 section 2.1.4.2."""
    if old_size <= 0 or old_size > new_size:
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    if not path:
        return False
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = _node_hash(c, fr)
            sr = _node_hash(c, sr)
            if not fn & 1:
                while not (fn & 1 or fn == 0):
                    fn >>= 1
                    sn >>= 1
        else:
            sr = _node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == old_root and sr == new_root


# -- signed-note checkpoints ---------------------------------------------------------------------


@dataclass(frozen=True)
class ParsedCheckpoint:
    """A checkpoint whose signature verified."""

    origin: str
    size: int
    root: bytes
    text: bytes


def fingerprint(public_key: bytes) -> str:
    """SHA-256 of the raw 32-byte Ed25519 public key, hex, in groups of four."""
    digest = hashlib.sha256(public_key).hexdigest()
    return ":".join(digest[i : i + 4] for i in range(0, 64, 4))


def _hex_only(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch in "0123456789abcdef")


def open_checkpoint(note: bytes, public_key: bytes) -> ParsedCheckpoint:
    """Parse a C2SP signed-note checkpoint and verify its Ed25519 signature.

    Raises ``_AbortError`` with code ``checkpoint_malformed`` or
    ``checkpoint_signature_invalid``.
    """
    try:
        text_all = note.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _AbortError("checkpoint_malformed", "the checkpoint is not UTF-8") from exc
    body, sep, sigs = text_all.partition("\n\n")
    lines = body.split("\n")
    if not sep or len(lines) < 3:
        raise _AbortError("checkpoint_malformed", "the checkpoint is not a signed note of 3+ lines")
    origin, size_text, root_text = lines[0], lines[1], lines[2]
    if not re.fullmatch(r"0|[1-9][0-9]{0,18}", size_text):
        raise _AbortError("checkpoint_malformed", f"checkpoint size {size_text!r} is not a number")
    try:
        root = base64.b64decode(root_text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _AbortError("checkpoint_malformed", "the checkpoint root is not base64") from exc
    if len(root) != 32:
        raise _AbortError("checkpoint_malformed", "the checkpoint root is not 32 bytes")
    text = (body + "\n").encode()
    key_id = hashlib.sha256(origin.encode() + b"\n\x01" + public_key).digest()[:4]
    verifier = Ed25519PublicKey.from_public_bytes(public_key)
    for line in sigs.split("\n"):
        parts = line.split(" ")
        if len(parts) != 3 or parts[0] != EM_DASH or parts[1] != origin:
            continue
        try:
            blob = base64.b64decode(parts[2], validate=True)
        except (binascii.Error, ValueError):
            continue
        if len(blob) != 68 or blob[:4] != key_id:
            continue  # a signature by some other key: ignored, as C2SP says
        try:
            verifier.verify(blob[4:], text)
        except InvalidSignature as exc:
            raise _AbortError(
                "checkpoint_signature_invalid",
                "the checkpoint's signature by the pinned key does not verify "
                "(the checkpoint text was altered or signed by another key)",
            ) from exc
        return ParsedCheckpoint(origin, int(size_text), root, note)
    raise _AbortError(
        "checkpoint_signature_invalid",
        "the checkpoint carries no signature by the pinned key (it was signed with another key)",
    )


# -- safe unzip ----------------------------------------------------------------------------------


def _safe_member_name(name: str) -> bool:
    if not name or "\\" in name or "\x00" in name or name.startswith("/"):
        return False
    if re.match(r"^[A-Za-z]:", name):
        return False
    parts = PurePosixPath(name).parts
    return all(p not in ("..", ".", "") for p in parts)


def _extract(package: Path, target: Path, max_total: int) -> Path:
    """Extract the zip into ``target`` defensively; return the bag folder."""
    try:
        archive = zipfile.ZipFile(package)
    # NotImplementedError: a member needs a newer zip version than zipfile reads.
    except (zipfile.BadZipFile, OSError, NotImplementedError) as exc:
        raise _AbortError(
            "package_unreadable", f"{package} is not a readable zip file: {exc}"
        ) from exc
    with archive:
        members = archive.infolist()
        if len(members) > MAX_MEMBERS:
            raise _AbortError(
                "unsafe_package", f"the zip has {len(members)} members, over {MAX_MEMBERS}"
            )
        names: set[str] = set()
        total = 0
        tops: set[str] = set()
        for info in members:
            name = info.filename
            if not _safe_member_name(name.rstrip("/")):
                raise _AbortError("unsafe_package", f"zip member {name!r} has an unsafe path")
            if name.rstrip("/") in names:
                raise _AbortError("unsafe_package", f"zip member {name!r} appears twice")
            names.add(name.rstrip("/"))
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise _AbortError("unsafe_package", f"zip member {name!r} is a symbolic link")
            # Bit 0: traditional encryption; bit 6: "strong" (PKWARE) encryption.
            if info.flag_bits & 0x41:
                raise _AbortError("unsafe_package", f"zip member {name!r} is encrypted")
            total += info.file_size
            if total > max_total:
                raise _AbortError("unsafe_package", f"the zip expands to over {max_total} bytes")
            if info.file_size > CHUNK and info.file_size > MAX_RATIO * max(info.compress_size, 1):
                raise _AbortError(
                    "unsafe_package",
                    f"zip member {name!r} expands {info.file_size} bytes "
                    f"from {info.compress_size}: a zip bomb",
                )
            tops.add(PurePosixPath(name).parts[0])
        if len(tops) != 1:
            raise _AbortError("bag_invalid", "the zip must hold exactly one top-level bag folder")
        written = 0
        for info in members:
            if info.is_dir():
                continue
            dest = target.joinpath(*PurePosixPath(info.filename).parts)
            dest.parent.mkdir(parents=True, exist_ok=True)
            try:
                with archive.open(info) as src, dest.open("xb") as out:
                    while chunk := src.read(CHUNK):
                        written += len(chunk)
                        if written > max_total:
                            raise _AbortError(
                                "unsafe_package", "the zip expands beyond its declared size"
                            )
                        out.write(chunk)
            except (
                zipfile.BadZipFile,
                OSError,
                EOFError,
                ValueError,
                zlib.error,
                NotImplementedError,
            ) as exc:
                # zlib.error: a damaged deflate stream inside a member; NotImplementedError:
                # a compression method or zip feature Python's zipfile does not read.
                if isinstance(exc, FileExistsError):
                    raise _AbortError(
                        "unsafe_package", f"zip member {info.filename!r} collides"
                    ) from exc
                raise _AbortError(
                    "package_unreadable", f"cannot read {info.filename!r}: {exc}"
                ) from exc
    return target / tops.pop()


# -- BagIt ---------------------------------------------------------------------------------------


_BAGIT_ESCAPES = {"0A": "\n", "0D": "\r", "25": "%"}


def _read_manifest(path: Path) -> dict[str, str]:
    entries: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        digest, sep, name = line.partition(" ")
        name = name.strip()
        if not sep or not re.fullmatch(r"[0-9a-fA-F]+", digest) or not _safe_member_name(name):
            raise _AbortError("bag_invalid", f"{path.name} line {number} is malformed")
        # BagIt percent-encodes CR, LF and % in manifest paths (RFC 8493 2.1.3).
        name = re.sub(
            r"%(0A|0D|25)", lambda m: _BAGIT_ESCAPES[m.group(1).upper()], name, flags=re.I
        )
        entries[name] = digest.lower()
    return entries


def _file_digests(path: Path) -> dict[str, str]:
    sha256, sha512 = hashlib.sha256(), hashlib.sha512()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            sha256.update(chunk)
            sha512.update(chunk)
    return {"sha256": sha256.hexdigest(), "sha512": sha512.hexdigest()}


def check_bag(bag: Path, report: Report) -> dict[str, dict[str, str]]:
    """Check BagIt structure and manifests; return {algorithm: {path: digest}}."""
    declaration = bag / "bagit.txt"
    if not declaration.is_file() or "BagIt-Version" not in declaration.read_text(
        "utf-8", "replace"
    ):
        raise _AbortError("bag_invalid", "bagit.txt is missing or does not declare a BagIt version")
    if not (bag / "data").is_dir():
        raise _AbortError("bag_invalid", "the bag has no data/ folder")
    manifests: dict[str, dict[str, str]] = {}
    for algorithm in ("sha256", "sha512"):
        path = bag / f"manifest-{algorithm}.txt"
        if not path.is_file():
            raise _AbortError("bag_invalid", f"manifest-{algorithm}.txt is missing")
        manifests[algorithm] = _read_manifest(path)
    payload = {p.relative_to(bag).as_posix() for p in (bag / "data").rglob("*") if p.is_file()}
    digests = {name: _file_digests(bag / name) for name in sorted(payload)}
    bad = 0
    for algorithm, manifest in manifests.items():
        for name in sorted(set(manifest) - payload):
            report.fail(
                "bag_file_missing", f"{name} is listed in manifest-{algorithm}.txt but absent"
            )
            bad += 1
        for name in sorted(payload - set(manifest)):
            report.fail("bag_file_unlisted", f"{name} is not listed in manifest-{algorithm}.txt")
            bad += 1
        for name in sorted(payload & set(manifest)):
            if digests[name][algorithm] != manifest[name]:
                report.fail(
                    "bag_manifest_mismatch",
                    f"{name} does not match its {algorithm.upper()} in manifest-{algorithm}.txt "
                    "(the file was altered after export)",
                )
                bad += 1
    for algorithm in ("sha256", "sha512"):
        tag = bag / f"tagmanifest-{algorithm}.txt"
        if not tag.is_file():
            continue
        for name, digest in _read_manifest(tag).items():
            target = bag / name
            if not target.is_file():
                report.fail("bag_file_missing", f"tag file {name} is absent")
                bad += 1
            elif _file_digests(target)[algorithm] != digest:
                report.fail(
                    "bag_manifest_mismatch",
                    f"tag file {name} does not match tagmanifest-{algorithm}.txt",
                )
                bad += 1
    if not bad:
        report.note(f"bag manifests match all {len(payload)} payload files (SHA-256 and SHA-512)")
    return manifests


# -- helpers -------------------------------------------------------------------------------------


def _strict_json(data: bytes, what: str) -> Any:
    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            if key in out:
                raise ValueError(f"duplicate key {key!r}")
            out[key] = value
        return out

    def constant(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    try:
        return json.loads(data.decode("utf-8"), object_pairs_hook=pairs, parse_constant=constant)
    except (UnicodeDecodeError, ValueError) as exc:
        raise _AbortError("package_invalid", f"{what} is not valid JSON: {exc}") from exc


def _payload_file(bag: Path, name: object, what: str) -> Path:
    if not isinstance(name, str) or not name.startswith("data/") or not _safe_member_name(name):
        raise _AbortError(
            "package_invalid", f"package.json names an unsafe path for {what}: {name!r}"
        )
    path = bag / name
    if not path.is_file():
        raise _AbortError("package_invalid", f"{what} ({name}) is missing from the package")
    return path


def _b64list(values: object, what: str) -> list[bytes]:
    if not isinstance(values, list):
        raise _AbortError("package_invalid", f"{what} is not a list of hashes")
    out = []
    for value in values:
        try:
            out.append(base64.b64decode(str(value), validate=True))
        except (binascii.Error, ValueError) as exc:
            raise _AbortError("package_invalid", f"{what} holds a hash that is not base64") from exc
    return out


def decrypt_for_recipient(private_key: X25519PrivateKey, data: bytes, aad: bytes) -> bytes:
    """Inverse of the export's recipient encryption (X25519 + HKDF-SHA256 + AES-256-GCM)."""
    if not data.startswith(RECIPIENT_MAGIC) or len(data) < len(RECIPIENT_MAGIC) + 32 + 12 + 16:
        raise ValueError("not a Redress recipient-encrypted file")
    rest = data[len(RECIPIENT_MAGIC) :]
    eph_pub, nonce, ciphertext = rest[:32], rest[32:44], rest[44:]
    rec_pub = private_key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    shared = private_key.exchange(X25519PublicKey.from_public_bytes(eph_pub))
    key = HKDF(hashes.SHA256(), 32, salt=eph_pub + rec_pub, info=RECIPIENT_INFO).derive(shared)
    return AESGCM(key).decrypt(nonce, ciphertext, aad)


# -- the checks ----------------------------------------------------------------------------------


def _check_timestamp(bag: Path, index: dict[str, Any], note: bytes, report: Report) -> None:
    if not index.get("timestamp"):
        report.note("no RFC 3161 timestamp in this package (none was configured)")
        return
    tsr = _payload_file(bag, index["timestamp"], "the timestamp").read_bytes()
    chain = _payload_file(bag, index.get("tsa_chain"), "the TSA chain").read_bytes()
    try:
        import rfc3161_client
        from cryptography import x509
    except ImportError:
        report.fail("timestamp_unverifiable", "install rfc3161-client to check the timestamp")
        return
    try:
        response = rfc3161_client.decode_timestamp_response(tsr)
        certs = x509.load_pem_x509_certificates(chain)
    except ValueError as exc:
        report.fail("timestamp_invalid", f"the timestamp or its chain cannot be parsed: {exc}")
        return
    imprint = response.tst_info.message_imprint
    algorithms = {
        "2.16.840.1.101.3.4.2.1": hashlib.sha256,
        "2.16.840.1.101.3.4.2.2": hashlib.sha384,
        "2.16.840.1.101.3.4.2.3": hashlib.sha512,
    }
    digest = algorithms.get(imprint.hash_algorithm.dotted_string)
    if digest is None or imprint.message != digest(note).digest():
        report.fail(
            "timestamp_mismatch",
            "the RFC 3161 timestamp is for other data, not this checkpoint",
        )
        return
    roots = [c for c in certs if c.issuer == c.subject]
    if not roots:
        report.fail("timestamp_invalid", "the TSA chain holds no root certificate")
        return
    builder = rfc3161_client.VerifierBuilder()
    for cert in roots:
        builder = builder.add_root_certificate(cert)
    for cert in certs:
        if cert not in roots:
            builder = builder.add_intermediate_certificate(cert)
    try:
        builder.build().verify_message(response, note)
    except (rfc3161_client.VerificationError, ValueError) as exc:
        report.fail("timestamp_invalid", f"the timestamp signature or chain does not verify: {exc}")
        return
    root_fpr = hashlib.sha256(roots[0].public_bytes(serialization.Encoding.DER)).hexdigest()
    report.note(
        "RFC 3161 timestamp over the checkpoint verifies: "
        f"{response.tst_info.gen_time.isoformat()} by {roots[0].subject.rfc4514_string()} "
        f"(root SHA-256 {root_fpr}; decide whether you trust it)"
    )


def _check_entries(
    bag: Path, index: dict[str, Any], checkpoint: ParsedCheckpoint, report: Report
) -> dict[int, dict[str, Any]]:
    """Hash every entry and check its inclusion proof; return the verified entries by seq."""
    verified: dict[int, dict[str, Any]] = {}
    listed = index.get("entries")
    if not isinstance(listed, list) or not listed:
        raise _AbortError("package_invalid", "package.json lists no ledger entries")
    for item in listed:
        seq = item.get("seq") if isinstance(item, dict) else None
        if not isinstance(seq, int):
            raise _AbortError(
                "package_invalid", "package.json has an entry without a sequence number"
            )
        body = _payload_file(bag, item.get("entry"), f"ledger entry {seq}").read_bytes()
        proof_doc = _strict_json(
            _payload_file(bag, item.get("proof"), f"proof {seq}").read_bytes(), f"proof {seq}"
        )
        entry = _strict_json(body, f"ledger entry {seq}")
        if not isinstance(entry, dict) or entry.get("seq") != seq:
            report.fail(
                "entry_invalid",
                f"the ledger entry file listed as {seq} holds another entry",
            )
            continue
        if not isinstance(proof_doc, dict):
            raise _AbortError("package_invalid", f"proof {seq} is not an object")
        hashes_ = _b64list(proof_doc.get("hashes"), f"proof {seq}")
        if proof_doc.get("leaf_index") != seq or proof_doc.get("tree_size") != checkpoint.size:
            report.fail(
                "inclusion_proof_failed",
                f"proof for entry {seq} is for leaf {proof_doc.get('leaf_index')} in a tree of "
                f"{proof_doc.get('tree_size')}, not leaf {seq} in the checkpoint's "
                f"{checkpoint.size}",
            )
            continue
        if seq >= checkpoint.size:
            report.fail(
                "inclusion_proof_failed",
                f"entry {seq} is beyond the checkpoint size {checkpoint.size}",
            )
            continue
        if not verify_inclusion(_leaf_hash(body), seq, checkpoint.size, hashes_, checkpoint.root):
            expected = inclusion_proof_length(seq, checkpoint.size)
            detail = (
                f"the proof has {len(hashes_)} hashes where a tree of {checkpoint.size} "
                f"needs {expected} (truncated or padded)"
                if len(hashes_) != expected
                else "the entry or the proof was altered"
            )
            report.fail(
                "inclusion_proof_failed",
                f"ledger entry {seq} ({item.get('entry')}) does not hash to the checkpoint "
                f"root: {detail}",
            )
            continue
        verified[seq] = entry
    if len(verified) == len(listed):
        report.note(f"all {len(verified)} ledger entries are included in the signed checkpoint")
    return verified


def _check_items(
    bag: Path,
    index: dict[str, Any],
    entries: dict[int, dict[str, Any]],
    manifests: dict[str, dict[str, str]],
    recipient: X25519PrivateKey | None,
    report: Report,
) -> None:
    items = index.get("items")
    if not isinstance(items, list) or not items:
        raise _AbortError("package_invalid", "package.json lists no items")
    encrypted = index.get("encryption") is not None
    listed_seqs = {e.get("seq") for e in index.get("entries", []) if isinstance(e, dict)}
    good = 0
    for item in items:
        if not isinstance(item, dict):
            raise _AbortError("package_invalid", "package.json has a malformed item")
        item_id, seq = item.get("item"), item.get("capture_seq")
        entry = entries.get(seq) if isinstance(seq, int) else None
        if entry is None and seq in listed_seqs:
            report.fail(
                "capture_entry_unverified",
                f"item {item_id} cannot be trusted: its capture entry {seq} failed the "
                "checks above",
            )
            continue
        if entry is None:
            report.fail(
                "capture_entry_missing",
                f"item {item_id}: its capture entry {seq} is not among the verified entries",
            )
            continue
        if entry.get("kind") != CAPTURE_KIND or entry.get("item") != item_id:
            report.fail(
                "capture_entry_missing", f"item {item_id}: entry {seq} is not its capture entry"
            )
            continue
        facts = entry.get("facts")
        if not isinstance(facts, dict):
            report.fail("entry_invalid", f"capture entry {seq} has no facts")
            continue
        content_path = _payload_file(bag, item.get("content"), f"item {item_id} content")
        record_path = _payload_file(bag, item.get("record"), f"item {item_id} record")
        content_name, record_name = str(item["content"]), str(item["record"])
        failures_before = len(report.failures)
        if encrypted:
            if recipient is None:
                report.fail(
                    "content_unchecked",
                    f"item {item_id} is encrypted to a recipient; pass --recipient-key to check "
                    "its bytes against the ledger",
                )
                continue
            try:
                content = decrypt_for_recipient(
                    recipient, content_path.read_bytes(), content_name.encode()
                )
                record = decrypt_for_recipient(
                    recipient, record_path.read_bytes(), record_name.encode()
                )
            except (ValueError, InvalidTag):
                report.fail(
                    "decryption_failed",
                    f"item {item_id} does not decrypt with the recipient key given",
                )
                continue
            content_sha256 = hashlib.sha256(content).hexdigest()
            content_sha512 = hashlib.sha512(content).hexdigest()
            content_size = len(content)
            record_sha256 = hashlib.sha256(record).hexdigest()
        else:
            for algorithm in ("sha256", "sha512"):
                if manifests[algorithm].get(content_name) != facts.get(algorithm):
                    report.fail(
                        "manifest_ledger_mismatch",
                        f"manifest-{algorithm}.txt gives {content_name} a "
                        f"{algorithm.upper()} other than the one ledger entry {seq} recorded "
                        "at capture (manifests were regenerated after the file changed)",
                    )
            digests = _file_digests(content_path)
            content_sha256, content_sha512 = digests["sha256"], digests["sha512"]
            content_size = content_path.stat().st_size
            record = record_path.read_bytes()
            record_sha256 = hashlib.sha256(record).hexdigest()
        if (content_sha256, content_sha512, content_size) != (
            facts.get("sha256"),
            facts.get("sha512"),
            facts.get("size"),
        ):
            report.fail(
                "content_ledger_mismatch",
                f"{content_name} is not the original: its hashes or size differ from "
                f"capture entry {seq}",
            )
        if record_sha256 != facts.get("record_sha256"):
            report.fail(
                "record_ledger_mismatch",
                f"{record_name} differs from the capture record committed in entry {seq} "
                "(a capture fact such as the capture time was edited)",
            )
        else:
            doc = _strict_json(record, f"capture record of {item_id}")
            evidence = doc.get("evidence", {}) if isinstance(doc, dict) else {}
            if doc.get("item") != item_id or evidence.get("captured_at") != facts.get(
                "captured_at"
            ):
                report.fail(
                    "record_ledger_mismatch",
                    f"the capture record of {item_id} contradicts entry {seq}",
                )
        if len(report.failures) == failures_before:
            good += 1
    if good == len(items):
        report.note(f"all {good} items match the hashes recorded at capture")


def _check_export_entry(
    index: dict[str, Any], entries: dict[int, dict[str, Any]], report: Report
) -> None:
    seq = index.get("export_seq")
    entry = entries.get(seq) if isinstance(seq, int) else None
    if entry is None or entry.get("kind") != EXPORT_KIND:
        report.fail("export_entry_missing", "the package's export is not recorded in the ledger")
        return
    listed = [i.get("item") for i in index.get("items", []) if isinstance(i, dict)]
    facts = entry.get("facts") or {}
    if sorted(map(str, facts.get("items") or [])) != sorted(map(str, listed)):
        report.fail(
            "export_entry_missing", f"export entry {seq} lists other items than the package holds"
        )
        return
    report.note(f"the export itself is ledger entry {seq}")


def _check_consistency(
    bag: Path,
    index: dict[str, Any],
    checkpoint: ParsedCheckpoint,
    previous_note: bytes,
    public_key: bytes,
    report: Report,
) -> None:
    try:
        previous = open_checkpoint(previous_note, public_key)
    except _AbortError as exc:
        report.fail(
            "previous_checkpoint_invalid", f"the previous checkpoint: {exc.failure.message}"
        )
        return
    if previous.origin != checkpoint.origin:
        report.fail(
            "previous_checkpoint_invalid", f"the previous checkpoint is for log {previous.origin!r}"
        )
        return
    if previous.size > checkpoint.size:
        report.fail(
            "log_rollback",
            f"the package's checkpoint has {checkpoint.size} entries but the previous checkpoint "
            f"already had {previous.size}: entries were dropped from the log",
        )
        return
    if previous.size == checkpoint.size:
        if previous.root != checkpoint.root:
            report.fail(
                "consistency_failed",
                f"two checkpoints of size {checkpoint.size} have different roots: "
                "the log was rewritten",
            )
        else:
            report.note("the previous checkpoint is this same checkpoint")
        return
    proofs = _strict_json(
        _payload_file(bag, index.get("consistency"), "consistency proofs").read_bytes(),
        "consistency proofs",
    )
    match = (
        next(
            (
                p
                for p in proofs
                if isinstance(p, dict)
                and p.get("old_size") == previous.size
                and p.get("new_size") == checkpoint.size
            ),
            None,
        )
        if isinstance(proofs, list)
        else None
    )
    if match is None:
        report.fail(
            "consistency_proof_missing",
            f"the package has no consistency proof from size {previous.size}",
        )
        return
    if not verify_consistency(
        previous.size,
        checkpoint.size,
        previous.root,
        checkpoint.root,
        _b64list(match.get("hashes"), "consistency proof"),
    ):
        report.fail(
            "consistency_failed",
            f"the log of {checkpoint.size} entries is not an append-only extension of the previous "
            f"checkpoint ({previous.size} entries): a past entry was rewritten or dropped",
        )
        return
    report.note(
        "the log grew append-only from the previous checkpoint "
        f"({previous.size} -> {checkpoint.size})"
    )


def _extract_items(
    bag: Path, index: dict[str, Any], recipient: X25519PrivateKey | None, target: Path
) -> None:
    """Write each verified item's bytes and capture record under ``target``/<item id>/."""
    encrypted = index.get("encryption") is not None
    for item in index["items"]:
        item_id = str(item["item"])
        # The whole ID, not the joined path's last part: "../../x/<32 hex>" must not pass.
        if not re.fullmatch(r"[0-9a-f]{32}", item_id):
            raise _AbortError("package_invalid", f"item ID {item_id!r} is not 32 hex digits")
        folder = target / item_id
        folder.mkdir(parents=True, exist_ok=True)
        for key in ("content", "record"):
            source = _payload_file(bag, item[key], f"item {folder.name} {key}")
            data = source.read_bytes()
            name = source.name
            if encrypted and recipient is not None:
                data = decrypt_for_recipient(recipient, data, str(item[key]).encode())
                name = name.removesuffix(".enc")
            with (folder / name).open("xb") as out:  # never overwrite what is there
                out.write(data)


def verify_package(
    package: Path,
    key_fingerprint: str,
    previous_checkpoint: bytes | None = None,
    recipient_key: X25519PrivateKey | None = None,
    max_total_bytes: int = MAX_TOTAL_BYTES,
    extract_to: Path | None = None,
) -> Report:
    """Run every check on ``package``; the report lists what held and what failed.

    With ``extract_to``, and only when every check held, the items' original
    bytes and capture records (decrypted with ``recipient_key`` when the
    package is encrypted) are written under that folder, one folder per item.
    """
    report = Report()
    work = Path(tempfile.mkdtemp(prefix="redress-verify-"))
    try:
        bag = _extract(package, work, max_total_bytes)
        manifests = check_bag(bag, report)
        index = _strict_json(
            _payload_file(bag, "data/package.json", "package.json").read_bytes(), "package.json"
        )
        if not isinstance(index, dict) or index.get("format") != PACKAGE_FORMAT:
            raise _AbortError("package_invalid", f"package.json is not a {PACKAGE_FORMAT} index")
        pem = _payload_file(bag, index.get("public_key"), "the public key").read_bytes()
        try:
            key = serialization.load_pem_public_key(pem)
        except ValueError as exc:
            raise _AbortError(
                "key_invalid", "the package's public key is not a PEM public key"
            ) from exc
        if not isinstance(key, Ed25519PublicKey):
            raise _AbortError("key_invalid", "the package's public key is not Ed25519")
        raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        if _hex_only(fingerprint(raw)) != _hex_only(key_fingerprint):
            raise _AbortError(
                "key_pin_mismatch",
                f"the package's signing key has fingerprint {fingerprint(raw)}, not the pinned "
                f"{key_fingerprint}: the key (and signature) were replaced",
            )
        report.note(f"signing key matches the pinned fingerprint {fingerprint(raw)}")
        note = _payload_file(bag, index.get("checkpoint"), "the checkpoint").read_bytes()
        checkpoint = open_checkpoint(note, raw)
        report.note(
            f"checkpoint of {checkpoint.size} entries for {checkpoint.origin} "
            "is signed by the pinned key"
        )
        _check_timestamp(bag, index, note, report)
        entries = _check_entries(bag, index, checkpoint, report)
        _check_items(bag, index, entries, manifests, recipient_key, report)
        _check_export_entry(index, entries, report)
        if previous_checkpoint is not None:
            _check_consistency(bag, index, checkpoint, previous_checkpoint, raw, report)
        if extract_to is not None and report.ok:
            _extract_items(bag, index, recipient_key, extract_to)
            report.note(f"items written to {extract_to}")
    except _AbortError as exc:
        report.failures.append(exc.failure)
    except (OSError, zipfile.BadZipFile, EOFError, zlib.error) as exc:
        report.fail("package_unreadable", f"cannot read the package: {exc}")
    except Exception as exc:  # noqa: BLE001 - a verifier must fail closed, never crash
        report.fail("package_invalid", f"the package is malformed: {type(exc).__name__}: {exc}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return report


def load_recipient_private_key(path: Path) -> X25519PrivateKey:
    """Read an X25519 private key (PEM PKCS#8)."""
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, X25519PrivateKey):
        raise ValueError(f"{path} is not an X25519 private key")
    return key


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: print each check and return the exit status."""
    parser = argparse.ArgumentParser(description="Verify a Redress evidence package offline.")
    parser.add_argument("package", type=Path)
    parser.add_argument(
        "--key-fingerprint", required=True, help="the signing key fingerprint you trust"
    )
    parser.add_argument("--previous-checkpoint", type=Path, help="an older checkpoint you hold")
    parser.add_argument(
        "--recipient-key", type=Path, help="X25519 private key (PEM) for encrypted packages"
    )
    parser.add_argument(
        "--extract-to", type=Path, help="after a clean verification, write the items here"
    )
    args = parser.parse_args(argv)
    try:
        previous = args.previous_checkpoint.read_bytes() if args.previous_checkpoint else None
        recipient = load_recipient_private_key(args.recipient_key) if args.recipient_key else None
    except (OSError, ValueError, TypeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    report = verify_package(
        args.package, args.key_fingerprint, previous, recipient, extract_to=args.extract_to
    )
    for line in report.passed:
        print(f"ok    {line}")
    for failure in report.failures:
        print(f"FAIL  [{failure.code}] {failure.message}")
    print("VERIFIED" if report.ok else f"NOT VERIFIED ({len(report.failures)} failed checks)")
    return 0 if report.ok else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    sys.exit(main())
