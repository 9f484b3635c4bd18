"""Evidence packages: a zipped BagIt bag that police can verify offline.

Layout inside the zip (one top folder, the bag)::

    redress-evidence-<UTC stamp>/
      bagit.txt, bag-info.txt
      manifest-sha256.txt, manifest-sha512.txt        payload hashes
      tagmanifest-sha256.txt, tagmanifest-sha512.txt
      data/
        VERIFY.md                       how to verify without Redress, step by step
        summary.html                    the items' facts; no imagery
        package.json                    index: which file is which item, entry, proof
        items/<item id>/content<.ext>   the original bytes, unchanged (+ .enc when encrypted)
        items/<item id>/capture-record.json   the full capture record (+ .enc)
        ledger/entries/<seq>.json       each ledger entry's canonical bytes
        ledger/proofs/<seq>.json        its inclusion proof to the checkpoint
        ledger/consistency.json         consistency proofs from earlier checkpoints
        checkpoint/checkpoint.txt       the signed note
        checkpoint/timestamp.tsr        RFC 3161 TimeStampResp (when a TSA is configured)
        checkpoint/tsa-chain.pem        the TSA's certificates (when timestamped)
        key/ledger-key.pem              the Ed25519 public key (+ ledger-key.vkey note key)
        tools/redress_verify.py         the offline verifier (standard library + cryptography)

File names come only from validated item IDs, sequence numbers and a fixed
media-type table, so nothing a platform sent can steer a path.
"""

from __future__ import annotations

import base64
import html
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from redress import __version__
from redress.evidence import verify as verifier_module
from redress.evidence.checkpoint import SignedCheckpoint
from redress.evidence.crypto import encrypt_for_recipient
from redress.evidence.errors import ExportError
from redress.evidence.interfaces import EvidenceItem, LedgerEntry, check_item_id
from redress.evidence.ledger import ConsistencyProof, InclusionProof

PACKAGE_FORMAT = "redress-evidence-package/1"

EXTENSIONS = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/gif": ".gif",
    "image/webp": ".webp",
    "image/heic": ".heic",
    "image/heif": ".heif",
    "image/tiff": ".tif",
    "image/bmp": ".bmp",
    "video/mp4": ".mp4",
    "video/quicktime": ".mov",
    "video/webm": ".webm",
    "video/x-matroska": ".mkv",
    "application/x-tgsticker": ".tgs",
    "text/plain": ".txt",
}


@dataclass(frozen=True)
class PackageItem:
    """One item going into a package, already decrypted."""

    item: EvidenceItem
    content: bytes
    record: bytes


@dataclass(frozen=True)
class PackageContents:
    """Everything a package holds, gathered by :meth:`EvidenceService.export`."""

    items: Sequence[PackageItem]
    entries: Sequence[LedgerEntry]
    proofs: Sequence[InclusionProof]
    consistency: Sequence[tuple[ConsistencyProof, bytes]]
    checkpoint: SignedCheckpoint
    public_key_pem: bytes
    verifier_key: str
    key_fingerprint: str
    export_seq: int
    recipient: X25519PublicKey | None
    recipient_fingerprint: str | None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _json_bytes(doc: object) -> bytes:
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False).encode() + b"\n"


def write_package(contents: PackageContents, destination: Path, stamp: str) -> None:
    """Build the bag in a temporary folder next to ``destination`` and zip it there."""
    destination = destination.resolve()
    bag_name = f"redress-evidence-{stamp}"
    work = Path(tempfile.mkdtemp(prefix=".redress-export-", dir=destination.parent))
    try:
        bag_dir = work / bag_name
        bag_dir.mkdir()
        _write_payload(contents, bag_dir)
        _make_bag(
            bag_dir,
            {
                "Source-Organization": "Redress evidence ledger",
                "External-Description": "Evidence package; see data/VERIFY.md",
                "External-Identifier": (
                    f"{contents.checkpoint.checkpoint.origin} export {contents.export_seq}"
                ),
                "Redress-Version": __version__,
                "Redress-Key-Fingerprint": contents.key_fingerprint,
            },
        )
        tmp_zip = work / "package.zip"
        with zipfile.ZipFile(tmp_zip, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(bag_dir.rglob("*")):
                if path.is_file():
                    archive.write(path, f"{bag_name}/{path.relative_to(bag_dir).as_posix()}")
        os.replace(tmp_zip, destination)
    finally:
        shutil.rmtree(work, ignore_errors=True)


_MAKE_BAG = """
import json, sys
import bagit
bagit.make_bag(sys.argv[1], json.loads(sys.argv[2]), checksums=["sha256", "sha512"])
"""


def _make_bag(bag_dir: Path, bag_info: dict[str, str]) -> None:
    """Turn ``bag_dir`` into a BagIt bag with SHA-256 and SHA-512 manifests.

    ``bagit.make_bag`` changes the process's working directory while it runs;
    it runs in a child process so that a threaded server exporting never
    sees its own working directory move under it.
    """
    result = subprocess.run(  # noqa: S603 - our own interpreter and fixed code
        [sys.executable, "-c", _MAKE_BAG, str(bag_dir), json.dumps(bag_info)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        detail = result.stderr.strip().splitlines()[-1:] or ["no detail"]
        raise ExportError(f"could not build the BagIt bag: {detail[0]}")


def _write(root: Path, relative: str, data: bytes) -> None:
    # Paths are built from validated parts; this is the last guard all the same.
    target = (root / relative).resolve()
    if not target.is_relative_to(root.resolve()):
        raise ExportError(f"refusing to write {relative!r} outside the package")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)


def _write_payload(contents: PackageContents, root: Path) -> None:
    """Write the payload files (bagit moves them under data/)."""
    cp = contents.checkpoint
    encrypted = contents.recipient is not None
    items_index = []
    for entry in contents.items:
        item = entry.item
        item_id = check_item_id(item.id)
        ext = EXTENSIONS.get(item.media_type.lower(), ".bin")
        content_path = f"items/{item_id}/content{ext}"
        record_path = f"items/{item_id}/capture-record.json"
        content, record = entry.content, entry.record
        if contents.recipient is not None:
            content_path += ".enc"
            record_path += ".enc"
            content = encrypt_for_recipient(
                contents.recipient, content, f"data/{content_path}".encode()
            )
            record = encrypt_for_recipient(
                contents.recipient, record, f"data/{record_path}".encode()
            )
        _write(root, content_path, content)
        _write(root, record_path, record)
        items_index.append(
            {
                "item": item_id,
                "capture_seq": item.capture_seq,
                "media_type": item.media_type,
                "content": f"data/{content_path}",
                "record": f"data/{record_path}",
            }
        )
    entries_index = []
    proofs = {p.index: p for p in contents.proofs}
    for led in contents.entries:
        name = f"{led.seq:012d}"
        proof = proofs[led.seq]
        _write(root, f"ledger/entries/{name}.json", led.body)
        _write(
            root,
            f"ledger/proofs/{name}.json",
            _json_bytes(
                {
                    "leaf_index": proof.index,
                    "tree_size": proof.size,
                    "hashes": [_b64(h) for h in proof.hashes],
                }
            ),
        )
        entries_index.append(
            {
                "seq": led.seq,
                "kind": led.kind,
                "entry": f"data/ledger/entries/{name}.json",
                "proof": f"data/ledger/proofs/{name}.json",
            }
        )
    _write(
        root,
        "ledger/consistency.json",
        _json_bytes(
            [
                {
                    "old_size": proof.old_size,
                    "old_root": _b64(old_root),
                    "new_size": proof.new_size,
                    "hashes": [_b64(h) for h in proof.hashes],
                }
                for proof, old_root in contents.consistency
            ]
        ),
    )
    _write(root, "checkpoint/checkpoint.txt", cp.note.encode())
    if cp.timestamp is not None:
        _write(root, "checkpoint/timestamp.tsr", cp.timestamp.response)
        _write(root, "checkpoint/tsa-chain.pem", cp.timestamp.chain_pem.encode())
    _write(root, "key/ledger-key.pem", contents.public_key_pem)
    _write(root, "key/ledger-key.vkey", contents.verifier_key.encode() + b"\n")
    _write(root, "tools/redress_verify.py", Path(verifier_module.__file__).read_bytes())
    index = {
        "format": PACKAGE_FORMAT,
        "redress_version": __version__,
        "origin": cp.checkpoint.origin,
        "key_fingerprint": contents.key_fingerprint,
        "public_key": "data/key/ledger-key.pem",
        "checkpoint": "data/checkpoint/checkpoint.txt",
        "checkpoint_size": cp.checkpoint.size,
        "timestamp": "data/checkpoint/timestamp.tsr" if cp.timestamp else None,
        "tsa_chain": "data/checkpoint/tsa-chain.pem" if cp.timestamp else None,
        "export_seq": contents.export_seq,
        "encryption": (
            {
                "scheme": "X25519-HKDF-SHA256-AES-256-GCM",
                "recipient_fingerprint": contents.recipient_fingerprint,
                "associated_data": "the file's path in the bag: data/items/.../content.jpg.enc",
            }
            if encrypted
            else None
        ),
        "items": items_index,
        "entries": entries_index,
        "consistency": "data/ledger/consistency.json",
    }
    _write(root, "package.json", _json_bytes(index))
    _write(root, "summary.html", _summary(contents).encode())
    _write(root, "VERIFY.md", _verify_md(contents).encode())


def _summary(contents: PackageContents) -> str:
    cp = contents.checkpoint
    esc = html.escape
    rows = []
    for entry in contents.items:
        item = entry.item
        rows.append(
            "<tr>"
            + "".join(
                f"<td>{esc(str(v))}</td>"
                for v in (
                    item.id,
                    item.media_type,
                    f"{item.size:,} bytes",
                    item.captured_at.isoformat(),
                    item.platform or "",
                    item.chat_id or "",
                    item.message_id or "",
                    item.trigger_kind,
                    item.capture_seq,
                )
            )
            + f"<td><code>{esc(item.sha256)}</code></td></tr>"
        )
    stamp = (
        f"<p>Timestamped by an RFC 3161 authority at {esc(cp.timestamp.gen_time.isoformat())}.</p>"
        if cp.timestamp
        else "<p>No RFC 3161 timestamp (no authority configured).</p>"
    )
    encrypted = (
        "<p><strong>Item files are encrypted to the recipient key "
        f"{esc(contents.recipient_fingerprint or '')}.</strong></p>"
        if contents.recipient is not None
        else ""
    )
    entry_lines = [
        f"<li>{e.seq}: {esc(e.kind)} by {esc(e.actor)} at {esc(e.recorded_at.isoformat())}</li>"
        for e in contents.entries
    ]
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Redress evidence package</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #999;padding:4px 8px;font-size:90%}}code{{word-break:break-all}}</style>
</head><body>
<h1>Redress evidence package</h1>
<p>This summary shows no imagery. The items themselves are in <code>data/items/</code>.</p>
{encrypted}
<h2>Ledger checkpoint</h2>
<ul>
<li>Origin: <code>{esc(cp.checkpoint.origin)}</code></li>
<li>Size: {cp.checkpoint.size} entries</li>
<li>Root hash (base64): <code>{esc(_b64(cp.checkpoint.root))}</code></li>
<li>Signing key fingerprint (SHA-256 of the Ed25519 public key):
<code>{esc(contents.key_fingerprint)}</code></li>
<li>Signed at: {esc(cp.signed_at.isoformat())}</li>
</ul>
{stamp}
<h2>Items ({len(contents.items)})</h2>
<table><tr><th>item</th><th>media type</th><th>size</th><th>captured (UTC)</th><th>platform</th>
<th>chat</th><th>message</th><th>trigger</th><th>ledger entry</th><th>SHA-256</th></tr>
{"".join(rows)}
</table>
<h2>Ledger entries included ({len(contents.entries)})</h2>
<ul>{"".join(entry_lines)}</ul>
<p>Verify this package as data/VERIFY.md explains.</p>
</body></html>
"""


def _verify_md(contents: PackageContents) -> str:
    cp = contents.checkpoint
    encrypted_note = (
        "\n   Item files here are encrypted to a recipient key (X25519 + HKDF-SHA256 + "
        "AES-256-GCM): check them with `redress_verify.py --recipient-key PRIVATE.pem`, "
        "which decrypts them first."
        if contents.recipient is not None
        else ""
    )
    return f"""# Verifying this evidence package

This package was exported by Redress {__version__}. You do not need Redress,
nor any trust in it, to check it. You need the fingerprint of the ledger's
signing key, obtained **separately** from this package (from the operator,
in writing, or from an earlier package you already hold):

    {contents.key_fingerprint}

(the SHA-256 of the 32-byte Ed25519 public key, in hex, grouped by four).

## The quick way

With Python 3.11+ and the `cryptography` package (`rfc3161-client` too if
the package holds a timestamp), unzip the package and run its verifier on
the zip:

    python redress-evidence-*/data/tools/redress_verify.py PACKAGE.zip \\
        --key-fingerprint {contents.key_fingerprint}

It exits 0 only when every check below holds, and prints one line, with an
error code, for each failure. Add `--extract-to DIR` to have the items
written out (decrypted, with `--recipient-key`, if the package is encrypted)
once every check has held. Add `--previous-checkpoint FILE` with a
checkpoint you received earlier to check that the log only grew since.
The script is a single readable file that uses no Redress code. Whoever
could alter the package could alter this copy too: read it, or compare it
with the copy published with Redress (`src/redress/evidence/verify.py`),
before you trust it, or do the checks by hand as below.

## Step by step, by hand

1. **Bag manifests.** The zip holds one BagIt bag (RFC 8493). Unzip it and
   check every payload file against both manifests:
   `sha256sum -c manifest-sha256.txt` and `sha512sum -c manifest-sha512.txt`
   (or `bagit.py --validate DIR`). Every file under `data/` must be listed.

2. **The key.** Compute the fingerprint of `data/key/ledger-key.pem`:
   `openssl pkey -pubin -in data/key/ledger-key.pem -outform DER | tail -c 32 | sha256sum`.
   Ignoring the colons, it must equal the fingerprint you obtained separately. If it does not,
   stop: someone may have replaced the key and the signature together.

3. **The checkpoint signature.** `data/checkpoint/checkpoint.txt` is a C2SP
   signed note. Its first three lines (each ending in a newline) are the
   signed text: the origin `{cp.checkpoint.origin}`, the ledger size
   `{cp.checkpoint.size}`, and the base64 Merkle root. After a blank line
   comes `— <origin> <base64 signature>`; the decoded signature is a
   4-byte key ID (the first 4 bytes of SHA-256(origin || 0x0A || 0x01 ||
   public key)) followed by the 64-byte Ed25519 signature over the text:

       head -n 3 data/checkpoint/checkpoint.txt > body.txt
       tail -n 1 data/checkpoint/checkpoint.txt | cut -d' ' -f3 | base64 -d | tail -c 64 > sig.bin
       openssl pkeyutl -verify -pubin -inkey data/key/ledger-key.pem -rawin \\
           -in body.txt -sigfile sig.bin

4. **The timestamp** (if `data/checkpoint/timestamp.tsr` exists). It is an
   RFC 3161 answer over SHA-256 of the whole `checkpoint.txt` file:

       openssl ts -verify -data data/checkpoint/checkpoint.txt -in data/checkpoint/timestamp.tsr \\
           -CAfile data/checkpoint/tsa-chain.pem

   Check that the root certificate in `tsa-chain.pem` is an authority you
   trust; `openssl ts -reply -in data/checkpoint/timestamp.tsr -text` shows the time.

5. **Each ledger entry and its inclusion proof.** An entry file in
   `data/ledger/entries/` is canonical JSON (RFC 8785). Its leaf hash is
   SHA-256(0x00 || file bytes). The proof in `data/ledger/proofs/` lists
   base64 sibling hashes; combine them as RFC 9162 section 2.1.3.2 says
   (node = SHA-256(0x01 || left || right)) using `leaf_index` (which must
   equal the entry's `seq`) and `tree_size` (which must equal the
   checkpoint size). The result must be the checkpoint's root.

6. **Each item against its capture entry.** `data/package.json` names, per
   item, its capture entry (`capture_seq`), its content file and its capture
   record. The capture entry's `facts` record `sha256`, `sha512` and `size`
   of the original bytes and `record_sha256` of the capture record:
   `sha256sum data/items/*/content*` and `sha256sum data/items/*/capture-record.json`
   must give exactly those values, and the manifests must list those same
   hashes (so regenerated manifests cannot hide an altered file).{encrypted_note}

7. **Consistency with a checkpoint you already hold** (optional).
   `data/ledger/consistency.json` holds RFC 9162 consistency proofs from
   every earlier checkpoint size to this one. Verify the proof for your
   checkpoint's size (section 2.1.4.2): it shows the log only grew, and no
   past entry was rewritten or dropped.

The capture record (`capture-record.json`) holds what the platform showed
(message IDs and link, chat, sender, forward origin, dates, self-destruct
timer, content protection, caption, the raw platform object), the capture
time in UTC with its clock source, the Redress version, the collecting
connector and operator, and, kept apart under `trigger`, the match or
report that caused the capture.

Deleting an item in Redress later does not recall this copy.
"""
