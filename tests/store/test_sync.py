"""The in-memory index follows the database, across processes."""

from __future__ import annotations

import random
import subprocess
import sys
import threading

import numpy as np
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from redress.index import BruteForceIndex
from redress.signals.types import SignalKind
from redress.store.db import make_engine
from redress.store.interfaces import EntryIn, MediaQuery, VpdqFrameIn
from redress.store.service import BankService, CaseService, Matcher
from redress.store.sync import IndexFollower, id_runs_merge
from store.store_hashes import random_pdq

# The follower thread's default poll interval: one poll applies every committed change,
# so a change reaches every process's index within this interval plus one poll.
POLL_INTERVAL = 0.2


def test_cold_start_loads_pdq_sets_and_vpdq_frames(engine: Engine) -> None:
    rng = random.Random(1)
    single, members = random_pdq(rng), [random_pdq(rng) for _ in range(3)]
    frames = tuple(VpdqFrameIn(i, random_pdq(rng, 90 if i % 2 else 10), float(i)) for i in range(8))
    with Session(engine) as s:
        BankService(s).create("b")
        ids = (
            BankService(s)
            .add(
                "b",
                [
                    EntryIn(SignalKind.PDQ, single.bits),
                    EntryIn(SignalKind.PDQ_SET, hashes=tuple(members)),
                    EntryIn(SignalKind.VPDQ, frames=frames),
                ],
            )
            .added
        )
        s.commit()
    follower = IndexFollower(engine, BruteForceIndex)
    stats = follower.start()
    assert len(follower.index) == 2
    # Only the four frames of quality >= 50 take part in matching.
    assert stats.hashes_loaded == 1 + 3 + 4
    entry_frames = follower.entry_frames(ids[2])
    assert entry_frames is not None
    assert len(entry_frames) == 4
    hit = follower.index.search(members[2].bits, 0)
    assert [h.entry_id for h in hit] == [ids[1]]


def test_a_restart_or_replay_never_duplicates_or_resurrects(engine: Engine) -> None:
    rng = random.Random(2)
    h = random_pdq(rng)
    with Session(engine) as s:
        BankService(s).create("b")
        [entry] = BankService(s).add("b", [EntryIn(SignalKind.PDQ, h.bits)]).added
        s.commit()
    follower = IndexFollower(engine, BruteForceIndex)
    follower.start()
    follower.stats.last_seq = 0  # replay the whole log over a loaded index
    follower.poll()
    assert len(follower.index) == 1
    with Session(engine) as s:
        BankService(s).remove("b", [entry])
        BankService(s).add("b", [EntryIn(SignalKind.PDQ, random_pdq(rng).bits)])
        s.commit()
    follower.poll()
    follower.stats.last_seq = 0
    follower.poll()
    assert follower.index.search(h.bits, 0) == []
    assert len(follower.index) == 1


def test_a_follower_thread_applies_changes_from_another_engine(engine: Engine) -> None:
    rng = random.Random(3)
    h = random_pdq(rng)
    follower = IndexFollower(engine, BruteForceIndex)
    follower.start()
    applied = threading.Event()
    original = follower.poll

    def poll() -> int:
        read = original()
        if read:
            applied.set()
        return read

    follower.poll = poll  # type: ignore[method-assign]
    follower.run(POLL_INTERVAL)
    other = make_engine(str(engine.url.render_as_string(hide_password=False)))
    try:
        with Session(other) as s:
            created = CaseService(s).create([EntryIn(SignalKind.PDQ, h.bits)])
            s.commit()
        applied.wait()
        with Session(engine) as s:
            assert len(Matcher(follower).match(s, MediaQuery(pdq=(h,)))) == 1
        applied.clear()
        with Session(other) as s:
            CaseService(s).withdraw(created.case.case_number, created.pin)
            s.commit()
        applied.wait()
        assert follower.index.search(h.bits, 31) == []
    finally:
        follower.stop()
        other.dispose()


CHILD = """
import sys
from sqlalchemy.orm import Session
from redress.signals.types import SignalKind
from redress.store.db import make_engine
from redress.store.interfaces import EntryIn
from redress.store.service import BankService
engine = make_engine(sys.argv[1])
with Session(engine) as s:
    entry = EntryIn(SignalKind.PDQ, bytes.fromhex(sys.argv[2]))
    BankService(s, actor="other-process").add("shared", [entry])
    s.commit()
"""


def test_two_processes_see_each_others_changes_after_one_poll(engine: Engine) -> None:
    rng = random.Random(4)
    h = random_pdq(rng)
    with Session(engine) as s:
        BankService(s).create("shared")
        s.commit()
    follower = IndexFollower(engine, BruteForceIndex)
    follower.start()
    url = engine.url.render_as_string(hide_password=False)
    subprocess.run([sys.executable, "-c", CHILD, url, h.hex], check=True)
    assert follower.index.search(h.bits, 0) == []
    assert follower.poll() >= 1
    assert [x.distance for x in follower.index.search(h.bits, 0)] == [0]
    assert POLL_INTERVAL < 1.0


def test_runs_merge() -> None:
    merged = id_runs_merge([(5, 9), (1, 2), (3, 3), (9, 12), (20, 20), (4, 4)])
    assert merged == [(1, 12), (20, 20)]
    assert id_runs_merge([(1, 2), (4, 5)]) == [(1, 2), (4, 5)]


def test_bulk_import_reaches_followers_as_runs(engine: Engine) -> None:
    from redress.store.interfaces import EntrySource
    from redress.store.store import bulk_upsert_hashes

    with Session(engine) as s:
        bank = BankService(s).create("b")
        s.commit()
    follower = IndexFollower(engine, BruteForceIndex)
    follower.start()
    hashes = np.random.default_rng(5).integers(0, 256, size=(3000, 32), dtype=np.uint8)
    with Session(engine) as s:
        ids = bulk_upsert_hashes(
            s,
            bank.id,
            SignalKind.PDQ,
            [r.tobytes() for r in hashes],
            [None] * 3000,
            [None] * 3000,
            EntrySource.IMPORT,
        )
        s.commit()
    assert follower.poll() < 10  # a handful of run events, not 3000
    assert len(follower.index) == len(ids) == 3000
