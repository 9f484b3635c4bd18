"""The offline verifier against every tampering the issue lists, each with its own message."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import bagit
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import delete
from sqlalchemy.orm import Session

from redress.evidence.canonical import canonical_json
from redress.evidence.checkpoint import Checkpoint, CheckpointSigner
from redress.evidence.interfaces import LedgerEntry
from redress.evidence.merkle import Frontier, leaf_hash
from redress.evidence.models import CheckpointRow, LedgerEntryRow, LedgerNodeRow
from redress.evidence.store import SqlEvidenceStore
from redress.evidence.verify import Report, verify_package

from .conftest import EvidenceEnv, LocalTsa, capture_items, capture_request

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Package:
    path: Path
    fingerprint: str
    item_ids: list[str]


def export(
    env: EvidenceEnv,
    item_ids: list[str],
    name: str = "package.zip",
    consistency_from: tuple[int, ...] = (),
    **settings: object,
) -> Package:
    target = env.settings.home.parent / name
    with env.service(**settings) as service:
        result = service.export(
            item_ids, target, "police-liaison:1", consistency_from=consistency_from
        )
    return Package(target, result.key_fingerprint, item_ids)


@pytest.fixture
def package(sqlite_env: EvidenceEnv) -> Package:
    ids = capture_items(sqlite_env, 3)
    with sqlite_env.service() as service:
        service.open(ids[0], "moderator:1", "review")
    return export(sqlite_env, ids[:2])


def codes(report: Report) -> list[str]:
    return [f.code for f in report.failures]


def tamper(pkg: Package, change: Callable[[Path], None], *, regenerate: bool = False) -> Path:
    """Unzip, apply ``change`` to the bag folder, optionally regenerate manifests, re-zip."""
    work = pkg.path.parent / "tamper"
    with zipfile.ZipFile(pkg.path) as archive:
        archive.extractall(work)
    bag = next(work.iterdir())
    change(bag)
    if regenerate:
        bagit.Bag(str(bag)).save(manifests=True)
    out = pkg.path.with_name("tampered.zip")
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(bag.rglob("*")):
            if path.is_file():
                archive.write(path, f"{bag.name}/{path.relative_to(bag).as_posix()}")
    return out


def index_of(bag: Path) -> dict[str, object]:
    return json.loads((bag / "data" / "package.json").read_text())  # type: ignore[no-any-return]


def content_file(bag: Path) -> Path:
    items = index_of(bag)["items"]
    assert isinstance(items, list)
    return bag / items[0]["content"]


def flip_byte(path: Path, offset: int = 10) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


# -- the untouched package -----------------------------------------------------------------------


def test_untouched_package_verifies(package: Package) -> None:
    report = verify_package(package.path, package.fingerprint)
    assert report.ok, report.failures
    assert any("pinned fingerprint" in line for line in report.passed)


def test_fingerprint_may_be_pasted_in_any_grouping(package: Package) -> None:
    pasted = package.fingerprint.replace(":", "").upper()
    assert verify_package(package.path, pasted).ok


# -- the tamper list ---------------------------------------------------------------------


def test_flipped_media_byte_is_caught_by_the_manifests(package: Package) -> None:
    out = package.path.parent / "extracted"
    report = verify_package(
        tamper(package, lambda bag: flip_byte(content_file(bag))),
        package.fingerprint,
        extract_to=out,
    )
    assert "bag_manifest_mismatch" in codes(report)
    assert "altered after export" in report.failures[0].message
    assert not out.exists()  # nothing is handed out from a package that failed


def test_flipped_byte_with_regenerated_manifests_is_caught_by_the_ledger(package: Package) -> None:
    report = verify_package(
        tamper(package, lambda bag: flip_byte(content_file(bag)), regenerate=True),
        package.fingerprint,
    )
    found = codes(report)
    assert "bag_manifest_mismatch" not in found  # the forger made the manifests agree ...
    assert "manifest_ledger_mismatch" in found  # ... but not with the ledger
    assert "content_ledger_mismatch" in found
    assert any("regenerated" in f.message for f in report.failures)


def _edit_record_time(bag: Path) -> None:
    items = index_of(bag)["items"]
    assert isinstance(items, list)
    path = bag / items[0]["record"]
    doc = json.loads(path.read_bytes())
    doc["evidence"]["captured_at"] = "2026-01-01T00:00:00.000000Z"
    path.write_bytes(canonical_json(doc))


def test_edited_capture_time_in_the_record_is_caught(package: Package) -> None:
    report = verify_package(
        tamper(package, _edit_record_time, regenerate=True), package.fingerprint
    )
    assert codes(report) == ["record_ledger_mismatch"]
    assert "capture time" in report.failures[0].message


def _edit_entry_time(bag: Path) -> None:
    items = index_of(bag)["items"]
    assert isinstance(items, list)
    path = bag / "data" / "ledger" / "entries" / f"{items[0]['capture_seq']:012d}.json"
    doc = json.loads(path.read_bytes())
    doc["facts"]["captured_at"] = "2026-01-01T00:00:00.000000Z"
    path.write_bytes(canonical_json(doc))


def test_edited_capture_time_in_the_ledger_entry_is_caught(package: Package) -> None:
    report = verify_package(tamper(package, _edit_entry_time, regenerate=True), package.fingerprint)
    assert "inclusion_proof_failed" in codes(report)
    assert "entry or the proof was altered" in report.failures[0].message


def _resign(bag: Path, key: Ed25519PrivateKey, *, replace_public_key: bool) -> None:
    note_path = bag / "data" / "checkpoint" / "checkpoint.txt"
    body = note_path.read_text().split("\n\n")[0].split("\n")
    signer = CheckpointSigner(key, body[0])
    note_path.write_text(signer.sign(Checkpoint(body[0], int(body[1]), base64.b64decode(body[2]))))
    if replace_public_key:
        (bag / "data" / "key" / "ledger-key.pem").write_bytes(signer.public_key_pem())


def test_checkpoint_signed_with_another_key_is_caught(package: Package) -> None:
    other = Ed25519PrivateKey.generate()
    report = verify_package(
        tamper(package, lambda bag: _resign(bag, other, replace_public_key=False), regenerate=True),
        package.fingerprint,
    )
    assert codes(report) == ["checkpoint_signature_invalid"]
    assert "another key" in report.failures[0].message


def test_key_and_signature_replaced_together_is_caught_by_the_pin(package: Package) -> None:
    other = Ed25519PrivateKey.generate()
    report = verify_package(
        tamper(package, lambda bag: _resign(bag, other, replace_public_key=True), regenerate=True),
        package.fingerprint,
    )
    assert codes(report) == ["key_pin_mismatch"]
    assert "replaced" in report.failures[0].message


def _truncate_proof(bag: Path) -> None:
    proofs = sorted((bag / "data" / "ledger" / "proofs").iterdir())
    doc = json.loads(proofs[0].read_text())
    doc["hashes"] = doc["hashes"][:-1]
    proofs[0].write_text(json.dumps(doc))


def test_truncated_proof_is_caught(package: Package) -> None:
    report = verify_package(tamper(package, _truncate_proof, regenerate=True), package.fingerprint)
    assert codes(report)[0] == "inclusion_proof_failed"
    assert set(codes(report)) <= {"inclusion_proof_failed", "capture_entry_unverified"}
    assert "truncated" in report.failures[0].message


def test_timestamped_package_verifies_and_a_timestamp_for_other_data_is_caught(
    sqlite_env: EvidenceEnv, local_tsa: LocalTsa
) -> None:
    tsa = {"evidence_tsa_url": local_tsa.url, "evidence_tsa_ca_file": local_tsa.ca_file}
    ids = capture_items(sqlite_env, 2)
    pkg = export(sqlite_env, ids, **tsa)
    report = verify_package(pkg.path, pkg.fingerprint)
    assert report.ok, report.failures
    assert any("RFC 3161 timestamp over the checkpoint verifies" in p for p in report.passed)
    # VERIFY.md's by-hand command agrees.
    with zipfile.ZipFile(pkg.path) as archive:
        archive.extractall(pkg.path.parent / "by-hand")
    checkpoint_dir = next((pkg.path.parent / "by-hand").iterdir()) / "data" / "checkpoint"
    by_hand = subprocess.run(
        [
            "openssl",
            "ts",
            "-verify",
            "-data",
            str(checkpoint_dir / "checkpoint.txt"),
            "-in",
            str(checkpoint_dir / "timestamp.tsr"),
            "-CAfile",
            str(checkpoint_dir / "tsa-chain.pem"),
        ],
        capture_output=True,
        text=True,
    )
    assert "Verification: OK" in by_hand.stdout, by_hand.stdout + by_hand.stderr

    other = local_tsa.reply_for(b"some other checkpoint\n")

    def swap(bag: Path) -> None:
        (bag / "data" / "checkpoint" / "timestamp.tsr").write_bytes(other)

    report = verify_package(tamper(pkg, swap, regenerate=True), pkg.fingerprint)
    assert codes(report) == ["timestamp_mismatch"]
    assert "other data" in report.failures[0].message


# -- history: rewritten and dropped entries against a checkpoint someone kept ------------


def _rewrite_log(env: EvidenceEnv, change: Callable[[list[bytes]], list[bytes]]) -> None:
    """What an operator holding the signing key could do: rebuild the log from edited entries."""
    with Session(env.engine) as session, session.begin():
        store = SqlEvidenceStore(session)
        size, _ = store.lock_head()
        bodies = change([e.body for e in store.entries(range(size))])
        for table in (LedgerEntryRow, LedgerNodeRow, CheckpointRow):
            session.execute(delete(table))
        frontier = Frontier.empty()
        nodes: list[tuple[int, int, bytes]] = []
        entries = []
        for seq, body in enumerate(bodies):
            doc = json.loads(body)
            doc["seq"] = seq
            body = canonical_json(doc)
            leaf = leaf_hash(body)
            frontier, completed = frontier.append(leaf)
            nodes.extend(node for node in completed if node[0] > 0)
            entries.append(
                LedgerEntry(seq, doc["kind"], doc.get("item"), doc["actor"], _now(), body, leaf)
            )
        store.append_entries(entries, nodes, frontier.size, frontier.to_bytes())


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _witness(env: EvidenceEnv) -> bytes:
    """A checkpoint handed to the police earlier (e.g. in a previous package)."""
    with env.service() as service:
        return service.ledger.checkpoint().note.encode()


def test_rewritten_past_entry_fails_consistency_with_an_older_checkpoint(
    sqlite_env: EvidenceEnv,
) -> None:
    ids = capture_items(sqlite_env, 2)
    with sqlite_env.service() as service:
        service.record_event(
            "review:match:confirmed", "moderator:1", {"decision": "remove"}, ids[0]
        )
    witnessed = _witness(sqlite_env)

    def soften_decision(bodies: list[bytes]) -> list[bytes]:
        doc = json.loads(bodies[2])
        doc["facts"]["decision"] = "keep"
        return [*bodies[:2], canonical_json(doc), *bodies[3:]]

    _rewrite_log(sqlite_env, soften_decision)
    # Asked for a package consistent with the police's checkpoint, the operator must
    # include a proof from its size: with a rewritten log no such proof can hold.
    witnessed_size = int(witnessed.split(b"\n")[1])
    forged = export(sqlite_env, ids[:1], consistency_from=(witnessed_size,))
    # On its own the forged package is self-consistent: only history reveals it.
    assert verify_package(forged.path, forged.fingerprint).ok
    report = verify_package(forged.path, forged.fingerprint, previous_checkpoint=witnessed)
    assert codes(report) == ["consistency_failed"]
    assert "rewritten or dropped" in report.failures[0].message


def test_dropped_newest_entry_against_a_witnessed_checkpoint(sqlite_env: EvidenceEnv) -> None:
    ids = capture_items(sqlite_env, 3)
    with sqlite_env.service() as service:
        service.record_event(
            "review:match:confirmed", "moderator:1", {"decision": "remove"}, ids[2]
        )
    witnessed = _witness(sqlite_env)
    _rewrite_log(sqlite_env, lambda bodies: bodies[:-1])
    forged = export(sqlite_env, ids[:1])
    report = verify_package(forged.path, forged.fingerprint, previous_checkpoint=witnessed)
    assert codes(report) == ["consistency_failed"]
    assert "rewritten" in report.failures[0].message


def test_package_older_than_the_witnessed_checkpoint_is_a_rollback(sqlite_env: EvidenceEnv) -> None:
    ids = capture_items(sqlite_env, 2)
    pkg = export(sqlite_env, ids)
    with sqlite_env.service() as service:
        service.record_event("review:match:confirmed", "moderator:1", {}, ids[0])
    report = verify_package(pkg.path, pkg.fingerprint, previous_checkpoint=_witness(sqlite_env))
    assert codes(report) == ["log_rollback"]


def test_honest_growth_is_consistent_with_the_older_checkpoint(sqlite_env: EvidenceEnv) -> None:
    ids = capture_items(sqlite_env, 2)
    witnessed = _witness(sqlite_env)
    with sqlite_env.service() as service:
        service.open(ids[1], "moderator:1", "review")
    pkg = export(sqlite_env, ids)
    report = verify_package(pkg.path, pkg.fingerprint, previous_checkpoint=witnessed)
    assert report.ok, report.failures
    assert any("append-only" in line for line in report.passed)


def test_previous_checkpoint_signed_by_another_key_is_refused(package: Package) -> None:
    other = CheckpointSigner(Ed25519PrivateKey.generate(), "x.example/log")
    note = other.sign(Checkpoint("x.example/log", 1, b"\x00" * 32)).encode()
    report = verify_package(package.path, package.fingerprint, previous_checkpoint=note)
    assert codes(report) == ["previous_checkpoint_invalid"]


@pytest.mark.parametrize(
    "change",
    [
        {"items": {"not": "a list"}},
        {"items": ["a string"]},
        {"entries": [{"seq": "7", "entry": "data/x", "proof": "data/y"}]},
        {"entries": [{"seq": 0, "entry": "../../etc/passwd", "proof": "data/y"}]},
        {"public_key": 42},
        {"checkpoint": "data/package.json"},
        {"consistency": None, "items": [{"item": "x", "capture_seq": True}]},
        {"format": "something else"},
    ],
)
def test_malformed_index_fails_closed(package: Package, change: dict[str, object]) -> None:
    def edit(bag: Path) -> None:
        index = index_of(bag)
        index.update(change)
        (bag / "data" / "package.json").write_text(json.dumps(index))

    report = verify_package(tamper(package, edit, regenerate=True), package.fingerprint)
    assert not report.ok
    assert report.failures[0].code in {
        "package_invalid",
        "checkpoint_malformed",
        "capture_entry_missing",
        "key_invalid",
        "export_entry_missing",
    }


# -- hostile zips --------------------------------------------------------------------------------


def _zip(path: Path, members: dict[str, bytes], *, symlink: str | None = None) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = 0o120777 << 16
            archive.writestr(info, "/etc/passwd")
    return path


@pytest.mark.parametrize(
    "members",
    [
        {"bag/../../evil.txt": b"x"},
        {"/abs/evil.txt": b"x"},
        {"bag\\..\\evil.txt": b"x"},
        {"C:/evil.txt": b"x"},
    ],
)
def test_path_traversal_in_the_zip_is_refused(tmp_path: Path, members: dict[str, bytes]) -> None:
    report = verify_package(_zip(tmp_path / "p.zip", members), "00")
    assert codes(report) == ["unsafe_package"]
    assert not (tmp_path.parent / "evil.txt").exists()


def test_symlink_and_bomb_and_garbage_are_refused(tmp_path: Path) -> None:
    link = verify_package(_zip(tmp_path / "l.zip", {"bag/a": b"x"}, symlink="bag/link"), "00")
    assert codes(link) == ["unsafe_package"]
    bomb = verify_package(_zip(tmp_path / "b.zip", {"bag/zeros": bytes(8 * 1024 * 1024)}), "00")
    assert codes(bomb) == ["unsafe_package"]
    assert "zip bomb" in bomb.failures[0].message
    (tmp_path / "g.zip").write_bytes(b"not a zip at all")
    assert codes(verify_package(tmp_path / "g.zip", "00")) == ["package_unreadable"]
    small = verify_package(
        _zip(tmp_path / "s.zip", {"bag/a": b"x" * 100}), "00", max_total_bytes=50
    )
    assert codes(small) == ["unsafe_package"]


# -- the verifier as a program, without Redress -------------------------------------------


def test_shipped_verifier_runs_standalone(package: Package, tmp_path: Path) -> None:
    with zipfile.ZipFile(package.path) as archive:
        name = next(n for n in archive.namelist() if n.endswith("tools/redress_verify.py"))
        script = tmp_path / "redress_verify.py"
        script.write_bytes(archive.read(name))
    clean_env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    # -I: isolated mode, so `redress` itself cannot be imported from anywhere.
    ok = subprocess.run(
        [
            sys.executable,
            "-I",
            str(script),
            str(package.path),
            "--key-fingerprint",
            package.fingerprint,
        ],
        capture_output=True,
        text=True,
        env=clean_env,
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.strip().endswith("VERIFIED")
    bad = subprocess.run(
        [sys.executable, "-I", str(script), str(package.path), "--key-fingerprint", "00" * 32],
        capture_output=True,
        text=True,
        env=clean_env,
    )
    assert bad.returncode == 1
    assert "[key_pin_mismatch]" in bad.stdout
    assert "Traceback" not in bad.stdout + bad.stderr


def test_recipient_encrypted_package(sqlite_env: EvidenceEnv, tmp_path: Path) -> None:
    from redress.evidence.crypto import load_recipient_key, new_recipient_key
    from redress.evidence.verify import load_recipient_private_key

    private_pem, public_pem = new_recipient_key()
    (tmp_path / "police.key").write_bytes(private_pem)
    (tmp_path / "police.pub").write_bytes(public_pem)
    ids = capture_items(sqlite_env, 2)
    target = tmp_path / "sealed.zip"
    with sqlite_env.service() as service:
        result = service.export(
            ids, target, "liaison", recipient=load_recipient_key(tmp_path / "police.pub")
        )
    with zipfile.ZipFile(target) as archive:
        blobs = b"".join(archive.read(n) for n in archive.namelist())
    assert b"photo 0" not in blobs
    assert b"caption text" not in blobs
    without = verify_package(target, result.key_fingerprint)
    assert set(codes(without)) == {"content_unchecked"}
    private = load_recipient_private_key(tmp_path / "police.key")
    out = tmp_path / "items"
    assert verify_package(target, result.key_fingerprint, recipient_key=private, extract_to=out).ok
    assert (out / ids[0] / "content.jpg").read_bytes() == capture_request(0).content
    assert json.loads((out / ids[0] / "capture-record.json").read_bytes())["item"] == ids[0]
    other = load_recipient_private_key(_other_private(tmp_path))
    assert set(codes(verify_package(target, result.key_fingerprint, recipient_key=other))) == {
        "decryption_failed"
    }


def _other_private(tmp_path: Path) -> Path:
    from redress.evidence.crypto import new_recipient_key

    path = tmp_path / "other.key"
    path.write_bytes(new_recipient_key()[0])
    return path
