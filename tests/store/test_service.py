"""Bank and case rules, matching and retroactive matching, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from redress.index import BruteForceIndex
from redress.signals.types import PdqHash, SignalKind
from redress.store.errors import (
    BadBankSettingError,
    BankExistsError,
    CaseClosedError,
    WrongPinError,
)
from redress.store.interfaces import (
    AuditAction,
    BankPurpose,
    CaseStatus,
    EntryIn,
    MediaQuery,
    SightingIn,
    VpdqFrameIn,
)
from redress.store.models import AuditEvent, Match, SeenHash, SeenItem, Sighting
from redress.store.service import (
    CLIP_MIN_FRAMES,
    BankService,
    CaseService,
    FrameShare,
    Matcher,
    RetroMatcher,
    frame_sets_match,
    new_case_number,
    vpdq_frame_share,
)
from redress.store.store import SqlAuditLog, SqlSeenStore
from redress.store.sync import IndexFollower, SeenFollower
from store.store_hashes import flip, random_pdq


def pdq_entry(h: PdqHash) -> EntryIn:
    return EntryIn(SignalKind.PDQ, h.bits, h.quality)


def test_pdq_match_respects_each_banks_threshold(engine: Engine, follower: IndexFollower) -> None:
    rng = random.Random(1)
    h = random_pdq(rng)
    with Session(engine) as s:
        banks = BankService(s)
        banks.create("strict", pdq_threshold=10)
        banks.create("loose", BankPurpose.CONFIRMED_VIOLATIONS, pdq_threshold=31)
        strict = banks.add("strict", [pdq_entry(h)]).added[0]
        loose = banks.add("loose", [pdq_entry(h)]).added[0]
        s.commit()
    follower.poll()
    with Session(engine) as s:
        near = Matcher(follower).match(s, MediaQuery(pdq=(flip(h, 5),)))
        far = Matcher(follower).match(s, MediaQuery(pdq=(flip(h, 20),)))
        none = Matcher(follower).match(s, MediaQuery(pdq=(flip(h, 40),)))
    assert {(m.bank_name, m.entry_id, m.distance) for m in near} == {
        ("strict", strict, 5),
        ("loose", loose, 5),
    }
    assert [(m.bank_name, m.bank_purpose, m.signal) for m in far] == [
        ("loose", BankPurpose.CONFIRMED_VIOLATIONS, SignalKind.PDQ)
    ]
    assert none == []


def test_low_quality_query_hashes_are_not_matched(engine: Engine, follower: IndexFollower) -> None:
    h = random_pdq(random.Random(2))
    with Session(engine) as s:
        BankService(s).create("b")
        BankService(s).add("b", [pdq_entry(h)])
        s.commit()
    follower.poll()
    with Session(engine) as s:
        assert Matcher(follower).match(s, MediaQuery(pdq=(PdqHash(h.bits, 20),))) == []
        assert len(Matcher(follower).match(s, MediaQuery(pdq=(PdqHash(h.bits, 80),)))) == 1


def test_disabled_bank_does_not_match_until_enabled(
    engine: Engine, follower: IndexFollower
) -> None:
    h = random_pdq(random.Random(3))
    md5 = hashlib.md5(b"clip").digest()
    with Session(engine) as s:
        BankService(s).create("b")
        BankService(s).add("b", [pdq_entry(h), EntryIn(SignalKind.MD5, md5)])
        BankService(s).set_enabled("b", False)
        s.commit()
    follower.poll()
    query = MediaQuery(pdq=(h,), md5=md5)
    with Session(engine) as s:
        assert Matcher(follower).match(s, query) == []
        BankService(s).set_enabled("b", True)
        s.commit()
    follower.poll()
    with Session(engine) as s:
        kinds = sorted(m.signal.value for m in Matcher(follower).match(s, query))
    assert kinds == ["md5", "pdq"]


def test_duplicates_collapse_and_removed_entries_revive(engine: Engine) -> None:
    h = random_pdq(random.Random(4))
    with Session(engine) as s:
        banks = BankService(s)
        banks.create("b")
        first = banks.add("b", [pdq_entry(h), pdq_entry(h)])
        assert len(first.added) == 1
        assert first.duplicates == 1
        again = banks.add("b", [pdq_entry(h)])
        assert again.added == ()
        assert again.duplicates == 1
        assert banks.remove("b", list(first.added)) == list(first.added)
        revived = banks.add("b", [pdq_entry(h)])
        assert revived.added == first.added
        assert banks.stats("b").active == {"pdq": 1}
        s.commit()


def test_bank_names_and_thresholds_are_checked(engine: Engine) -> None:
    with Session(engine) as s:
        banks = BankService(s)
        with pytest.raises(BadBankSettingError):
            banks.create("no spaces please")
        with pytest.raises(BadBankSettingError):
            banks.create("x", pdq_threshold=300)
        banks.create("x")
        with pytest.raises(BankExistsError):
            banks.create("x")


def test_case_withdrawal_removes_its_hashes_from_matching(
    engine: Engine, follower: IndexFollower
) -> None:
    rng = random.Random(5)
    mine, shared = random_pdq(rng), random_pdq(rng)
    with Session(engine) as s:
        cases = CaseService(s)
        created = cases.create([pdq_entry(mine), pdq_entry(shared)], locale="zh-CN")
        other = cases.create([pdq_entry(shared)])
        s.commit()
    assert created.case.status is CaseStatus.RECEIVED
    assert len(created.pin) == 8
    assert created.case.case_number.startswith("RC-")
    follower.poll()
    with Session(engine) as s:
        hit = Matcher(follower).match(s, MediaQuery(pdq=(mine,)))
        assert hit[0].case_ids == (created.case.id,)
        assert Matcher(follower).match(s, MediaQuery(pdq=(shared,)))[0].case_ids == (
            created.case.id,
            other.case.id,
        )
        with pytest.raises(WrongPinError):
            CaseService(s).withdraw(created.case.case_number, "00000000x")
        withdrawn = CaseService(s).withdraw(created.case.case_number, created.pin)
        s.commit()
    assert withdrawn.status is CaseStatus.WITHDRAWN
    # One poll of the follower (it polls every 0.2 s) takes the hashes out of the index...
    follower.poll()
    with Session(engine) as s:
        assert Matcher(follower).match(s, MediaQuery(pdq=(mine,))) == []
        # ...except the hash another open case still holds.
        assert len(Matcher(follower).match(s, MediaQuery(pdq=(shared,)))) == 1
        with pytest.raises(CaseClosedError):
            CaseService(s).set_status(created.case.case_number, CaseStatus.ACTIVE)
        actions = [e.action for e in SqlAuditLog(s).events()]
    assert AuditAction.CASE_STATUS_WITHDRAWN in actions
    assert AuditAction.CASE_PIN_FAILED in actions


def test_removed_entry_never_matches_even_before_the_index_catches_up(
    engine: Engine, follower: IndexFollower
) -> None:
    h = random_pdq(random.Random(6))
    with Session(engine) as s:
        created = CaseService(s).create([pdq_entry(h)])
        s.commit()
    follower.poll()
    with Session(engine) as s:
        CaseService(s).set_status(created.case.case_number, CaseStatus.DELETED, actor="admin")
        s.commit()
    with Session(engine) as s:  # no poll yet
        assert Matcher(follower).match(s, MediaQuery(pdq=(h,))) == []
        case = CaseService(s).get(created.case.case_number)
    assert case.status is CaseStatus.DELETED
    assert case.contact is None


def test_scan_records_item_sighting_and_matches(engine: Engine, follower: IndexFollower) -> None:
    h = random_pdq(random.Random(7))
    sha = hashlib.sha256(b"x").digest()
    with Session(engine) as s:
        BankService(s).create("b")
        entry = BankService(s).add("b", [pdq_entry(h)]).added[0]
        s.commit()
    follower.poll()
    with Session(engine) as s:
        q = MediaQuery(sha256=sha, pdq=(flip(h, 3),))
        out = Matcher(follower).scan(
            s, q, SightingIn(platform="telegram", chat="-100", message_id="5")
        )
        again = Matcher(follower).scan(
            s, q, SightingIn(platform="telegram", chat="-100", message_id="6")
        )
        s.commit()
        assert out.item_id == again.item_id
        assert [(m.entry_id, m.distance) for m in out.matches] == [(entry, 3)]
        assert len(list(s.scalars(select(Match)))) == 1


def test_retroactive_match_finds_items_seen_before_the_hash_arrived(
    engine: Engine, follower: IndexFollower, seen: SeenFollower
) -> None:
    rng = random.Random(8)
    h = random_pdq(rng)
    md5 = hashlib.md5(b"video").digest()
    frames = tuple(VpdqFrameIn(i, random_pdq(rng), float(i)) for i in range(10))
    with Session(engine) as s:
        m = Matcher(follower)
        image = m.scan(s, MediaQuery(pdq=(flip(h, 4),)), SightingIn(chat="a")).item_id
        video = m.scan(s, MediaQuery(kind="video", md5=md5, vpdq=frames)).item_id
        m.scan(s, MediaQuery(pdq=(random_pdq(rng),)))
        s.commit()
    with Session(engine) as s:
        retro = RetroMatcher(seen)
        BankService(s, retro=retro).create("later")
        BankService(s, retro=retro).add(
            "later",
            [
                pdq_entry(h),
                EntryIn(SignalKind.MD5, md5),
                EntryIn(
                    SignalKind.VPDQ,
                    frames=tuple(VpdqFrameIn(f.frame, flip(f.pdq, 2), f.ts) for f in frames[:9]),
                ),
            ],
        )
        s.commit()
        rows = s.execute(select(Match.item_id, Match.signal_type, Match.retroactive)).all()
        audit = s.scalars(select(AuditEvent.action)).all()
    assert sorted(rows) == sorted(
        [(image, "pdq", True), (video, "md5", True), (video, "vpdq", True)]
    )
    assert AuditAction.MATCH_RETROACTIVE.value in audit


def test_vpdq_entry_matches_by_frame_share(engine: Engine, follower: IndexFollower) -> None:
    rng = random.Random(9)
    frames = tuple(VpdqFrameIn(i, random_pdq(rng), float(i)) for i in range(20))
    with Session(engine) as s:
        BankService(s).create("v")
        BankService(s).add("v", [EntryIn(SignalKind.VPDQ, frames=frames)])
        s.commit()
    follower.poll()
    with Session(engine) as s:
        most = MediaQuery(kind="video", vpdq=(*frames[:17], VpdqFrameIn(99, random_pdq(rng), 99.0)))
        few = MediaQuery(
            kind="video",
            vpdq=frames[:5] + tuple(VpdqFrameIn(50 + i, random_pdq(rng), 0.0) for i in range(5)),
        )
        hit = Matcher(follower).match(s, most)
        assert [m.signal for m in hit] == [SignalKind.VPDQ]
        assert hit[0].query_share == pytest.approx(17 / 18)
        assert hit[0].entry_share == pytest.approx(17 / 20)
        assert Matcher(follower).match(s, few) == []


def test_frame_share_is_symmetric_in_meaning() -> None:
    rng = random.Random(10)
    a = [random_pdq(rng).bits for _ in range(4)]
    import numpy as np

    q = np.frombuffer(b"".join(a), dtype=np.uint8).reshape(-1, 32)
    e = np.frombuffer(b"".join(a[:2]), dtype=np.uint8).reshape(-1, 32)
    share = vpdq_frame_share(q, e, 31)
    assert (share.query_share, share.entry_share, share.distance) == (0.5, 1.0, 0)


def test_case_numbers_are_unguessable_and_readable() -> None:
    numbers = {new_case_number() for _ in range(200)}
    assert len(numbers) == 200
    assert all(len(n) == 17 and not set(n[3:]) & set("ILOU") for n in numbers)


def test_bank_disabled_until_a_time_matches_again_after_it(
    engine: Engine, follower: IndexFollower
) -> None:
    import datetime as dt

    h = random_pdq(random.Random(11))
    with Session(engine) as s:
        BankService(s).create("paused")
        BankService(s).add("paused", [pdq_entry(h)])
        BankService(s).disable_until("paused", dt.datetime.now(dt.UTC) + dt.timedelta(days=1))
        BankService(s).create("resumed")
        BankService(s).add("resumed", [pdq_entry(h)])
        BankService(s).disable_until("resumed", dt.datetime(2000, 1, 1))
        s.commit()
    follower.poll()
    with Session(engine) as s:
        assert [m.bank_name for m in Matcher(follower).match(s, MediaQuery(pdq=(h,)))] == [
            "resumed"
        ]


def test_a_bank_disabled_a_moment_ago_never_matches(
    engine: Engine, follower: IndexFollower
) -> None:
    h = random_pdq(random.Random(12))
    with Session(engine) as s:
        BankService(s).create("b")
        BankService(s).add("b", [pdq_entry(h)])
        s.commit()
    follower.poll()
    with Session(engine) as s:
        BankService(s).set_enabled("b", False)
        s.commit()
    with Session(engine) as s:  # the follower has not polled since
        assert Matcher(follower).match(s, MediaQuery(pdq=(h,))) == []


def test_seen_follower_reads_the_history_in_bulk_and_waits_for_late_commits(
    engine: Engine,
) -> None:
    rng = random.Random(21)
    good, poor = random_pdq(rng), PdqHash(random_pdq(rng).bits, 10)
    frames = tuple(VpdqFrameIn(i, random_pdq(rng), float(i)) for i in range(4))
    with Session(engine) as s:
        store = SqlSeenStore(s)
        image = store.record_item(MediaQuery(pdq=(good, poor)), None)
        video = store.record_item(MediaQuery(kind="video", md5=b"v" * 16, vpdq=frames), None)
        s.commit()
    follower = SeenFollower(engine, BruteForceIndex)
    # The low-quality hash is not searchable; the video's frames are, and are kept per item.
    assert follower.catch_up() == 5
    assert [h.entry_id for h in follower.images.search(good.bits, 0)] == [image]
    assert follower.images.search(poor.bits, 0) == []
    kept = follower.item_frames(video)
    assert kept is not None
    assert len(kept) == 4
    assert follower.catch_up() == 0
    if engine.dialect.name != "postgresql":
        return  # SQLite has one writer at a time: no transaction can commit out of order
    late_hash, early_hash = random_pdq(rng), random_pdq(rng)
    with Session(engine) as late:
        late_item = SqlSeenStore(late).record_item(MediaQuery(pdq=(late_hash,)), None)
        with Session(engine) as early:  # takes IDs after the late one's, commits first
            early_item = SqlSeenStore(early).record_item(MediaQuery(pdq=(early_hash,)), None)
            early.commit()
        assert follower.catch_up() == 1
        assert [h.entry_id for h in follower.images.search(early_hash.bits, 0)] == [early_item]
        late.commit()
    # The row ID skipped while its transaction was open is picked up once it commits.
    assert follower.catch_up() == 1
    assert [h.entry_id for h in follower.images.search(late_hash.bits, 0)] == [late_item]


def test_a_batch_of_items_is_recorded_as_one_at_a_time_would_be(engine: Engine) -> None:
    rng = random.Random(23)
    old, new = random_pdq(rng), random_pdq(rng)
    with Session(engine) as s:
        known = SqlSeenStore(s).record_item(MediaQuery(pdq=(old,)), SightingIn(chat="a"))
        s.commit()
    frames = tuple(VpdqFrameIn(i, random_pdq(rng), float(i)) for i in range(3))
    video = MediaQuery(kind="video", md5=b"w" * 16, vpdq=frames)
    with Session(engine) as s:
        ids = SqlSeenStore(s).record_items(
            [
                (MediaQuery(pdq=(new,)), SightingIn(chat="b", message_id="1")),
                (MediaQuery(pdq=(old,)), SightingIn(chat="b", message_id="2")),
                (video, None),
                (MediaQuery(pdq=(new,)), SightingIn(chat="c", message_id="3")),  # again
            ]
        )
        s.commit()
    # In order; the known item keeps its ID; the same media twice is one item.
    assert ids[1] == known
    assert ids[0] == ids[3]
    assert len(set(ids)) == 3
    with Session(engine) as s:
        assert s.scalar(select(func.count()).select_from(SeenItem)) == 3
        # Hashes are stored once per item: 1 + 1 + 3 frames.
        assert s.scalar(select(func.count()).select_from(SeenHash)) == 5
        chats = sorted(
            (item_id, chat or "")
            for item_id, chat in s.execute(select(Sighting.item_id, Sighting.chat)).all()
        )
        assert chats == sorted([(known, "a"), (ids[0], "b"), (known, "b"), (ids[0], "c")])
        last_seen = s.scalar(select(SeenItem.last_seen).where(SeenItem.id == known))
        first_seen = s.scalar(select(SeenItem.first_seen).where(SeenItem.id == known))
        assert last_seen is not None
        assert first_seen is not None
        assert last_seen > first_seen
    assert SqlSeenStore(Session(engine)).record_items([]) == []


def test_retroactive_matching_records_many_matches_at_once(
    engine: Engine, follower: IndexFollower, seen: SeenFollower
) -> None:
    rng = random.Random(22)
    hashes = [random_pdq(rng) for _ in range(300)]
    with Session(engine) as s:
        m = Matcher(follower)
        items = [m.scan(s, MediaQuery(pdq=(flip(h, 6),))).item_id for h in hashes]
        s.commit()
    with Session(engine) as s:
        BankService(s, retro=RetroMatcher(seen)).create("many")
        BankService(s, retro=RetroMatcher(seen)).add("many", [pdq_entry(h) for h in hashes])
        s.commit()
        rows = s.execute(select(Match.item_id, Match.distance, Match.retroactive)).all()
    assert sorted(rows) == [(item, 6, True) for item in sorted(items)]


def test_match_many_answers_each_query_as_match_does(
    engine: Engine, follower: IndexFollower
) -> None:
    rng = random.Random(21)
    a, b, gone, dark = (random_pdq(rng) for _ in range(4))
    md5 = hashlib.md5(b"clip").digest()
    sha = hashlib.sha256(b"photo").digest()
    with Session(engine) as s:
        banks = BankService(s)
        banks.create("strict", pdq_threshold=10)
        banks.create("loose", BankPurpose.CONFIRMED_VIOLATIONS, pdq_threshold=31)
        banks.create("off")
        banks.add("strict", [pdq_entry(a), EntryIn(SignalKind.MD5, md5)])
        banks.add("loose", [pdq_entry(a), pdq_entry(b), EntryIn(SignalKind.SHA256, sha)])
        removed = banks.add("loose", [pdq_entry(gone)]).added
        banks.add("off", [pdq_entry(dark)])
        banks.remove("loose", list(removed))
        banks.set_enabled("off", False)
        s.commit()
    follower.poll()
    queries = [
        MediaQuery(pdq=(flip(a, 5),)),  # both banks
        MediaQuery(pdq=(flip(a, 20),)),  # only the loose bank's threshold
        MediaQuery(pdq=(flip(b, 3),), md5=md5),  # PDQ in one bank, MD5 in another
        MediaQuery(sha256=sha),
        MediaQuery(pdq=(gone,)),  # removed entry
        MediaQuery(pdq=(dark,)),  # disabled bank
        MediaQuery(pdq=(random_pdq(rng),)),  # nothing
        MediaQuery(pdq=(flip(a, 5),)),  # the same query twice in a batch
    ]
    with Session(engine) as s:
        one_by_one = [Matcher(follower).match(s, q) for q in queries]
        batched = Matcher(follower).match_many(s, queries)
    assert batched == one_by_one
    assert [len(r) for r in batched] == [2, 1, 2, 1, 0, 0, 0, 2]
    assert {m.signal.value for m in batched[2]} == {"pdq", "md5"}
    assert Matcher(follower).match_many(Session(engine), []) == []


def test_a_banked_clip_matches_a_compilation_that_holds_it(
    engine: Engine, follower: IndexFollower, shared_data: Path
) -> None:
    from redress.signals import read_vpdq_text

    def clip(name: str, first: int = 0) -> tuple[VpdqFrameIn, ...]:
        # Meta's reference hashes of every frame, one a second (30 fps) kept.
        text = (shared_data / "vpdq" / "hashes" / f"{name}.txt").read_text()
        frames = read_vpdq_text(text)[::30]
        return tuple(VpdqFrameIn(first + n, f.pdq, float(first + n)) for n, f in enumerate(frames))

    victim = clip("pattern-hd-no-bar")  # 7 s
    short = clip("doorknob-hd-no-bar")  # 4 s: too short to stand for itself inside others
    with Session(engine) as s:
        BankService(s).create("v")
        BankService(s).add("v", [EntryIn(SignalKind.VPDQ, frames=f) for f in (victim, short)])
        s.commit()
    follower.poll()
    other = clip("chair-19-sd-bar")  # 19 s of another scene
    compilation = other + clip("pattern-hd-no-bar", len(other))
    with Session(engine) as s:
        matcher = Matcher(follower)
        (hit,) = matcher.match(s, MediaQuery(kind="video", vpdq=compilation))
        assert hit.signal is SignalKind.VPDQ
        assert hit.entry_share == 1.0
        assert hit.query_share is not None
        assert hit.query_share < 0.8  # Meta's rule alone would miss it
        # The short clip needs Meta's rule; the other scene alone matches nothing.
        spliced = other + clip("doorknob-hd-no-bar", len(other))
        assert matcher.match(s, MediaQuery(kind="video", vpdq=spliced)) == []
        assert matcher.match(s, MediaQuery(kind="video", vpdq=other)) == []
    assert frame_sets_match(FrameShare(0.2, 0.9, 3), CLIP_MIN_FRAMES, 0.8)
    assert not frame_sets_match(FrameShare(0.2, 0.9, 3), CLIP_MIN_FRAMES - 1, 0.8)


def test_a_letterboxed_video_seen_before_its_original_was_banked_is_found_later(
    engine: Engine, follower: IndexFollower, seen: SeenFollower, shared_data: Path
) -> None:
    from redress.config import Settings
    from redress.signals import hash_file
    from redress.store.media import entries_for_files, hash_options, query_for_signals

    # Meta's samples: a copy inside grey bars is scanned (and kept in the seen-media
    # history, both readings), then the original it was cut from is banked.
    videos = shared_data / "vpdq" / "videos"
    settings = Settings()
    copy = hash_file(videos / "pattern-sd-grey-bar.mp4", hash_options(settings, robust="query"))
    other = hash_file(videos / "chair-22-sd-grey-bar.mp4", hash_options(settings, robust="query"))
    assert copy.vpdq_trimmed
    with Session(engine) as s:
        m = Matcher(follower)
        seen_copy = m.scan(s, query_for_signals(copy), SightingIn(chat="a")).item_id
        m.scan(s, query_for_signals(other), SightingIn(chat="a"))
        s.commit()
    with Session(engine) as s:
        retro = RetroMatcher(seen)
        BankService(s, retro=retro).create("later")
        original = entries_for_files([videos / "pattern-hd-no-bar.mp4"], settings)
        BankService(s, retro=retro).add("later", [e for e in original if e.kind is SignalKind.VPDQ])
        s.commit()
        rows = s.execute(select(Match.item_id, Match.signal_type, Match.retroactive)).all()
    # Found by its reading without the bars, once; the other clip in the same bars is not.
    assert rows == [(seen_copy, "vpdq", True)]
