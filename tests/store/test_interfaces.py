"""Conformance suites for the store's Protocols, run on every implementation and backend.

Each suite checks the signature of every Protocol method (the runtime
analogue of ``verifyClass``) and then the behaviour other domains rely on,
through the Protocol type only.
"""

from __future__ import annotations

import hashlib
import inspect
import random
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

import redress.store
from redress.signals.types import PdqHash, SignalKind
from redress.store.errors import BankExistsError, BankNotFoundError, CaseNotFoundError
from redress.store.interfaces import (
    BankPurpose,
    BankStore,
    CaseStatus,
    CaseStore,
    EntryIn,
    EntrySource,
    MatchResult,
    MediaQuery,
    SeenStore,
    SightingIn,
    VpdqFrameIn,
)
from redress.store.store import SqlBankStore, SqlCaseStore, SqlSeenStore
from store.store_hashes import random_pdq

BANK_STORES: list[Callable[[Session], BankStore]] = [SqlBankStore]
CASE_STORES: list[Callable[[Session], CaseStore]] = [SqlCaseStore]
SEEN_STORES: list[Callable[[Session], SeenStore]] = [SqlSeenStore]


def protocol_methods(protocol: type) -> list[str]:
    return [n for n, v in vars(protocol).items() if callable(v) and not n.startswith("_")]


@pytest.mark.parametrize(
    ("protocol", "implementation"),
    [(BankStore, SqlBankStore), (CaseStore, SqlCaseStore), (SeenStore, SqlSeenStore)],
)
def test_signatures_match_the_protocol(protocol: type, implementation: type) -> None:
    for name in protocol_methods(protocol):
        expected = list(inspect.signature(getattr(protocol, name)).parameters)
        actual = list(inspect.signature(getattr(implementation, name)).parameters)
        assert actual[: len(expected)] == expected, name


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with Session(engine) as s:
        yield s
        s.rollback()


@pytest.mark.parametrize("make", BANK_STORES)
def test_bank_store_conformance(make: Callable[[Session], BankStore], session: Session) -> None:
    store = make(session)
    bank = store.create_bank("alpha", BankPurpose.VICTIM_CASES, 25, "review-first")
    with pytest.raises(BankExistsError):
        store.create_bank("alpha", BankPurpose.INTERNAL, 31)
    assert store.get_bank("alpha") == bank == store.get_bank_by_id(bank.id)
    with pytest.raises(BankNotFoundError):
        store.get_bank("missing")
    rng = random.Random(1)
    h = random_pdq(rng)
    members = (random_pdq(rng), random_pdq(rng))
    frames = (VpdqFrameIn(0, random_pdq(rng), 0.0), VpdqFrameIn(30, random_pdq(rng), 1.0))
    md5 = hashlib.md5(b"a").digest()
    result = store.add_entries(
        bank.id,
        [
            EntryIn(SignalKind.PDQ, h.bits, 90, note="n", metadata={"tags": ["x"]}),
            EntryIn(SignalKind.PDQ_SET, hashes=members),
            EntryIn(SignalKind.VPDQ, frames=frames),
            EntryIn(SignalKind.MD5, md5),
            EntryIn(SignalKind.MD5, md5),
        ],
        EntrySource.MODERATOR,
    )
    assert len(result.added) == 4
    assert result.duplicates == 1
    pdq_id, set_id, vpdq_id, md5_id = result.added
    entry = store.get_entry(pdq_id)
    assert (entry.kind, entry.value, entry.quality, entry.note, entry.metadata) == (
        SignalKind.PDQ,
        h.bits,
        90,
        "n",
        {"tags": ["x"]},
    )
    assert entry.source is EntrySource.MODERATOR
    assert store.entry_hashes(set_id) == list(members)
    assert [x.bits for x in store.entry_hashes(vpdq_id)] == [f.pdq.bits for f in frames]
    assert [e.id for e in store.find_entries(bank.id, SignalKind.MD5, md5)] == [md5_id]
    assert store.remove_entries([md5_id, md5_id]) == [md5_id]
    assert store.remove_entries([md5_id]) == []
    assert [e.id for e in store.iter_entries(bank.id, chunk=2)] == [pdq_id, set_id, vpdq_id]
    assert len(list(store.iter_entries(bank.id, include_removed=True))) == 4
    stats = store.stats(bank.id)
    assert stats.active == {"pdq": 1, "pdq-set": 1, "vpdq": 1}
    assert stats.removed == 1
    updated = store.update_bank(bank.id, enabled=False, pdq_threshold=10)
    assert (updated.enabled, updated.pdq_threshold) == (False, 10)
    assert [b.name for b in store.list_banks()] == ["alpha"]


@pytest.mark.parametrize("make", CASE_STORES)
def test_case_store_conformance(make: Callable[[Session], CaseStore], session: Session) -> None:
    banks = SqlBankStore(session)
    bank = banks.create_bank("cases", BankPurpose.VICTIM_CASES, 31)
    store = make(session)
    one = store.create_case("RC-AAAA-BBBB-CCCC", "argon2-hash", bank.id, "en", "mail@example.org")
    two = store.create_case("RC-DDDD-EEEE-FFFF", "other-hash", bank.id, "zh-CN", None)
    assert one.status is CaseStatus.RECEIVED
    with pytest.raises(CaseNotFoundError):
        store.get_case("RC-0000-0000-0000")
    rng = random.Random(2)
    ids = banks.add_entries(
        bank.id, [EntryIn(SignalKind.PDQ, random_pdq(rng).bits) for _ in range(3)], EntrySource.CASE
    ).added
    store.link_entries(one.id, ids)
    store.link_entries(one.id, ids)  # idempotent
    store.link_entries(two.id, ids[:1])
    assert store.get_case("rc-aaaa-bbbb-cccc").entry_ids == ids
    assert store.pin_hash(one.case_number) == "argon2-hash"
    assert store.orphaned_entries(one.id) == list(ids[1:])
    store.set_status(two.id, CaseStatus.WITHDRAWN)
    assert store.orphaned_entries(one.id) == list(ids)
    deleted = store.set_status(one.id, CaseStatus.DELETED)
    assert (deleted.status, deleted.contact) == (CaseStatus.DELETED, None)


@pytest.mark.parametrize("make", SEEN_STORES)
def test_seen_store_conformance(make: Callable[[Session], SeenStore], session: Session) -> None:
    bank = SqlBankStore(session).create_bank("b", BankPurpose.INTERNAL, 31)
    h = random_pdq(random.Random(3))
    [entry] = (
        SqlBankStore(session)
        .add_entries(bank.id, [EntryIn(SignalKind.PDQ, h.bits)], EntrySource.IMPORT)
        .added
    )
    store = make(session)
    sha = hashlib.sha256(b"item").digest()
    query = MediaQuery(sha256=sha, pdq=(PdqHash(h.bits, 80),))
    item = store.record_item(query, SightingIn(platform="telegram", chat="-1001", sender="u1"))
    assert store.record_item(query, None) == item
    match = MatchResult(4, bank.id, "b", BankPurpose.INTERNAL, entry, SignalKind.PDQ)
    assert store.record_matches(item, [match]) == 1
    assert store.record_matches(item, [match]) == 0
    assert store.matches_for_item(item) == [match]


def test_public_surface_is_pinned() -> None:
    assert sorted(redress.store.__all__) == sorted(
        [
            "AddResult",
            "AuditAction",
            "BankImporter",
            "BankPurpose",
            "BankRead",
            "BankService",
            "BankStore",
            "Base",
            "CaseCreated",
            "CaseRead",
            "CaseService",
            "CaseStatus",
            "CaseStore",
            "EntryIn",
            "EntryRead",
            "EntrySource",
            "ExchangeFormat",
            "FrameShare",
            "ImportReport",
            "IndexFollower",
            "MatchResult",
            "Matcher",
            "MediaQuery",
            "RetroMatcher",
            "ScanOutcome",
            "SeenFollower",
            "SeenStore",
            "SightingIn",
            "SqlAuditLog",
            "SqlBankStore",
            "SqlCaseStore",
            "SqlSeenStore",
            "VpdqFrameIn",
            "export_bank",
            "make_engine",
            "vpdq_frame_share",
        ]
    )
    for name in redress.store.__all__:
        assert getattr(redress.store, name) is not None
