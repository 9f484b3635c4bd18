"""Fuzzing ``redress evidence verify``: damaged real evidence packages.

A real package (two captured items, signed checkpoint, proofs, BagIt) is
damaged at the byte level (the zip) and at the JSON level (package.json and
the entry files, re-zipped with regenerated manifests so the damage reaches the
JSON checks). The verifier must fail closed with documented check codes; a
failure that is only the verifier's catch-all for an unexpected exception
("the package is malformed: <ExceptionType>") counts as a finding.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import zipfile
from dataclasses import dataclass
from typing import Any

import pytest
from fuzz_support import CODES, MUTATIONS, Mutation, damaged_json, fuzz
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from redress.config import Settings
from redress.evidence.interfaces import CaptureRequest, MessageFacts, Trigger, TriggerKind
from redress.evidence.service import build_evidence_service
from redress.evidence.store import SqlEvidenceStore
from redress.evidence.verify import verify_package
from redress.store.db import make_engine
from redress.store.migrate import upgrade

CATCH_ALL = "the package is malformed:"


@dataclass(frozen=True, repr=False)
class Package:
    data: bytes
    fingerprint: str
    members: dict[str, bytes]

    def __repr__(self) -> str:
        # Hypothesis prints a failing example's arguments; 130 kB of zip bytes made it
        # warn (an error here) and hid the finding itself.
        return f"Package({len(self.data)} bytes, {len(self.members)} members)"


def _capture(n: int) -> CaptureRequest:
    return CaptureRequest(
        content=b"\xff\xd8\xff\xe0" + f"photo {n}".encode() * 40 + b"\xff\xd9",
        media_type="image/jpeg",
        message=MessageFacts(
            platform="telegram",
            chat_id="-1001",
            message_id=str(n),
            message_date=dt.datetime(2026, 11, 24, 22, 0, n, tzinfo=dt.UTC),
        ),
        trigger=Trigger(TriggerKind.MATCH, reference=f"match-{n}"),
        connector="telegram-bot",
        operator="helpline",
    )


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Package:
    folder = tmp_path_factory.mktemp("evidence")
    url = f"sqlite:///{folder / 'redress.db'}"
    upgrade(url)
    settings = Settings(home=folder / "home", database_url=url)
    engine = make_engine(url)
    try:
        with Session(engine) as session, session.begin():
            service = build_evidence_service(SqlEvidenceStore(session), settings)
            ids = [service.capture(_capture(n)).id for n in range(2)]
        with Session(engine) as session, session.begin():
            service = build_evidence_service(SqlEvidenceStore(session), settings)
            result = service.export(ids, folder / "package.zip", "police-liaison:1")
    finally:
        engine.dispose()
    data = (folder / "package.zip").read_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        members = {info.filename: archive.read(info) for info in archive.infolist()}
    assert verify_package(folder / "package.zip", result.key_fingerprint).ok
    return Package(data, result.key_fingerprint, members)


def _undocumented(
    tmp_path_factory: pytest.TempPathFactory, data: bytes, fingerprint: str
) -> list[str]:
    """Verify the package; the failures it reported without a documented code, or only
    with the catch-all message (both would leave a court expert guessing)."""
    path = tmp_path_factory.mktemp("fuzzed") / "package.zip"
    path.write_bytes(data)
    report = verify_package(path, fingerprint)
    return [
        f"{failure.code}: {failure.message}"
        for failure in report.failures
        if failure.code not in CODES or failure.message.startswith(CATCH_ALL)
    ]


def _rezip(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, body in members.items():
            archive.writestr(name, body)
    return out.getvalue()


def _with_manifests(members: dict[str, bytes]) -> dict[str, bytes]:
    """Regenerate the BagIt manifests and tag manifests, so that damaged JSON passes the
    bag checks and reaches the verifier's JSON checks."""
    out = dict(members)
    root = next(n for n in members if n.endswith("/bagit.txt")).removesuffix("bagit.txt")

    def listing(algorithm: str, names: list[str]) -> bytes:
        lines = [
            f"{hashlib.new(algorithm, out[n]).hexdigest()}  {n.removeprefix(root)}" for n in names
        ]
        return ("\n".join(lines) + "\n").encode()

    payload = sorted(n for n in members if n.startswith(root + "data/"))
    for algorithm in ("sha256", "sha512"):
        out[f"{root}manifest-{algorithm}.txt"] = listing(algorithm, payload)
    tags = sorted(
        n
        for n in out
        if n.startswith(root)
        and "/" not in n.removeprefix(root)
        and not n.removeprefix(root).startswith("tagmanifest-")
    )
    for algorithm in ("sha256", "sha512"):
        out[f"{root}tagmanifest-{algorithm}.txt"] = listing(algorithm, tags)
    return out


@fuzz(share=0.5)
@given(mutation=MUTATIONS)
def test_damaged_package_bytes_fail_closed_with_documented_codes(
    package: Package, tmp_path_factory: pytest.TempPathFactory, mutation: Mutation
) -> None:
    assert _undocumented(tmp_path_factory, mutation.apply(package.data), package.fingerprint) == []


@fuzz()
@given(data=st.data())
def test_damaged_package_json_fails_closed_with_documented_codes(
    package: Package, tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    names = sorted(n for n in package.members if n.endswith(".json"))
    name = data.draw(st.sampled_from(names))
    document: Any = json.loads(package.members[name])
    damaged = json.dumps(data.draw(damaged_json(document))).encode()
    members = _with_manifests({**package.members, name: damaged})
    assert _undocumented(tmp_path_factory, _rezip(members), package.fingerprint) == []


def _with_member_header(data: bytes, offset: int, value: bytes) -> bytes:
    """``data`` with ``value`` written at ``offset`` into the first member's local header
    and its central-directory entry (zip's two copies of a member's header)."""
    out = bytearray(data)
    local = out.index(b"PK\x03\x04")
    central = out.index(b"PK\x01\x02")
    # The same field sits 2 bytes further on in a central-directory entry.
    out[local + offset : local + offset + len(value)] = value
    out[central + offset + 2 : central + offset + 2 + len(value)] = value
    return bytes(out)


@pytest.mark.parametrize(
    ("offset", "value", "code"),
    [
        # Found by this fuzz test: flag bit 6 ("strong encryption") made zipfile raise
        # NotImplementedError, which reached the verifier's catch-all.
        (6, (0x40).to_bytes(2, "little"), "unsafe_package"),
        # Also found by it: a "version needed to extract" above what zipfile reads.
        (4, (99).to_bytes(2, "little"), "package_unreadable"),
        # A compression method Python's zipfile does not implement (99: AES).
        (8, (99).to_bytes(2, "little"), "package_unreadable"),
    ],
)
def test_zip_features_the_verifier_does_not_read_fail_with_documented_codes(
    package: Package,
    tmp_path_factory: pytest.TempPathFactory,
    offset: int,
    value: bytes,
    code: str,
) -> None:
    damaged = _with_member_header(package.data, offset, value)
    path = tmp_path_factory.mktemp("zip-feature") / "package.zip"
    path.write_bytes(damaged)
    report = verify_package(path, package.fingerprint)
    assert not report.ok
    assert [f.code for f in report.failures] == [code]
    assert not any(f.message.startswith(CATCH_ALL) for f in report.failures)
