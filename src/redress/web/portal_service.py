"""Rules of the victim portal: cases from hash sets, PIN lock-out, what a victim may see.

The portal never receives a picture: a case is built from the hash sets the
browser computed (checked against ``hashset.json``), stored through the
store's :class:`~redress.store.service.CaseService` in the victim-cases bank,
whose matches the policy always sends to human review.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from redress.actions.interfaces import ActionKind
from redress.signals.types import SignalKind
from redress.store.errors import CaseNotFoundError, WrongPinError
from redress.store.interfaces import CaseCreated, CaseRead, EntryIn, VpdqFrameIn
from redress.store.models import Match
from redress.store.robust import robust_entry
from redress.store.service import CaseService
from redress.web.errors import DeclarationMissingError, HashSetInvalidError, TooManyHashesError
from redress.web.hashset import (
    HashSetSpec,
    ImageHashSet,
    VideoHashSet,
    parse_image_hash_set,
    parse_video_hash_set,
)
from redress.web.models import PinLock

REMOVAL_ACTIONS: frozenset[str] = frozenset({ActionKind.DELETE_MESSAGE.value})


@dataclass(frozen=True, slots=True)
class PortalLimits:
    """The portal's abuse limits (from the settings)."""

    max_hashes: int = 5000
    pin_max_failures: int = 5
    pin_lock_seconds: int = 900
    pdq_quality_min: int = 50


@dataclass(frozen=True, slots=True)
class PinCheck:
    """The answer to a case number and PIN: the case, or why not."""

    case: CaseRead | None
    locked_until: dt.datetime | None = None
    failures_left: int | None = None


@dataclass(frozen=True, slots=True)
class CaseReport:
    """What the victim sees about her case: counts and dates only, never content."""

    case: CaseRead
    entries: int
    matches: int
    items_matched: int
    last_match_at: dt.datetime | None
    removed: int
    last_removed_at: dt.datetime | None
    actions_pending: int


def hash_count(files: Sequence[ImageHashSet | VideoHashSet]) -> int:
    """How many hashes the files carry (what the per-case cap counts).

    An image's robust reference set is not counted: it is derived from the
    same picture and bounded per image (at most 64, hashset.json), so the cap
    keeps meaning "about how many pictures".
    """
    total = 0
    for item in files:
        if isinstance(item, ImageHashSet):
            total += len(item.dihedral) + 2
        else:
            total += len(item.vpdq) + 1
    return total


def parse_files(raw: Sequence[object], spec: HashSetSpec) -> list[ImageHashSet | VideoHashSet]:
    """Check each submitted ``{"kind": ..., "hashes": {...}}`` against ``spec`` and type it."""
    parsed: list[ImageHashSet | VideoHashSet] = []
    for position, item in enumerate(raw):
        if not isinstance(item, dict) or item.get("kind") not in ("image", "video"):
            raise HashSetInvalidError(f"file {position}: kind must be image or video")
        if item["kind"] == "image":
            parsed.append(parse_image_hash_set(item.get("hashes"), spec))
        else:
            parsed.append(parse_video_hash_set(item.get("hashes"), spec))
    if not parsed:
        raise HashSetInvalidError("a case needs at least one file's hashes")
    return parsed


def entries_for(item: ImageHashSet | VideoHashSet, quality_min: int) -> list[EntryIn]:
    """The bank entries that protect one file.

    An image: its robust reference set as one pdq-set (flips, crops, halves;
    docs/robustness.md), or, when the browser sent none, its eight dihedral
    PDQ hashes as one pdq-set when its quality is good enough; and always its
    MD5 and SHA-256 (exact copies). A video: its vPDQ frames and its MD5.
    """
    if isinstance(item, ImageHashSet):
        entries: list[EntryIn] = []
        # The robust reference set computed in the browser, each member
        # quality-gated here too; its radii come from the kinds, never the
        # client. It holds the eight flips (of the real pixels), so it takes
        # the place of the dihedral set: one entry per picture, one match.
        reference = robust_entry([h for h in item.robust if h.quality >= quality_min], {})
        if reference is not None:
            entries.append(reference)
        elif item.pdq.quality >= quality_min:
            entries.append(
                EntryIn(SignalKind.PDQ_SET, hashes=item.dihedral, quality=item.pdq.quality)
            )
        entries.append(EntryIn(SignalKind.MD5, bytes.fromhex(item.md5)))
        entries.append(EntryIn(SignalKind.SHA256, bytes.fromhex(item.sha256)))
        return entries
    video: list[EntryIn] = []
    frames = tuple(VpdqFrameIn(f.frame, f.pdq, f.ts) for f in item.vpdq)
    if frames:
        video.append(EntryIn(SignalKind.VPDQ, frames=frames))
    video.append(EntryIn(SignalKind.MD5, bytes.fromhex(item.md5)))
    return video


class PortalService:
    """The victim portal's rules over one session (the caller commits)."""

    def __init__(
        self,
        session: Session,
        cases: CaseService,
        limits: PortalLimits,
        *,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.session = session
        self.cases = cases
        self.limits = limits
        self.clock = clock

    def create(
        self,
        files: Sequence[ImageHashSet | VideoHashSet],
        *,
        depicted: bool,
        adult: bool,
        contact: str | None,
        locale: str,
    ) -> CaseCreated:
        """Open a case for ``files``; returns the case number and PIN (shown once)."""
        if not (depicted and adult):
            raise DeclarationMissingError(
                "both declarations are required: you are the person shown, and an adult"
            )
        total = hash_count(files)
        if total > self.limits.max_hashes:
            raise TooManyHashesError(
                f"{total} hashes is more than the {self.limits.max_hashes} one case may hold"
            )
        entries = [e for item in files for e in entries_for(item, self.limits.pdq_quality_min)]
        contact = (contact or "").strip()[:300] or None
        return self.cases.create(entries, locale=locale, contact=contact)

    def check_pin(self, case_number: str, pin: str) -> PinCheck:
        """The case if ``pin`` is right and the case is not locked.

        Wrong PINs are counted per case (in the database, so a restart does not
        reset them); at ``pin_max_failures`` in a row the case locks for
        ``pin_lock_seconds``, refusing even the right PIN. An unknown case
        number answers like a wrong PIN, so numbers cannot be probed.
        """
        number = case_number.strip().upper()
        try:
            case = self.cases.get(number)
        except CaseNotFoundError:
            return PinCheck(None)
        now = self.clock()
        lock = self.session.get(PinLock, case.id)
        if lock is not None and lock.locked_until is not None and lock.locked_until > now:
            return PinCheck(None, locked_until=lock.locked_until)
        try:
            self.cases.verify_pin(number, pin)
        except WrongPinError:
            if lock is None:
                lock = PinLock(case_id=case.id, failures=0)
                self.session.add(lock)
            lock.failures += 1
            lock.last_failure_at = now
            if lock.failures >= self.limits.pin_max_failures:
                lock.failures = 0
                lock.locked_until = now + dt.timedelta(seconds=self.limits.pin_lock_seconds)
                self.session.flush()
                return PinCheck(None, locked_until=lock.locked_until)
            self.session.flush()
            return PinCheck(None, failures_left=self.limits.pin_max_failures - lock.failures)
        if lock is not None:
            lock.failures = 0
            lock.locked_until = None
            self.session.flush()
        return PinCheck(case)

    def report(self, case: CaseRead) -> CaseReport:
        """Counts for the status page: matches recorded and removals done."""
        from redress.pipeline.models import ScanAction, ScanItem

        entry_ids = list(case.entry_ids)
        matches = items = 0
        last_match: dt.datetime | None = None
        if entry_ids:
            row = self.session.execute(
                select(
                    func.count(Match.id),
                    func.count(func.distinct(Match.item_id)),
                    func.max(Match.matched_at),
                ).where(Match.entry_id.in_(entry_ids))
            ).one()
            matches, items, last_match = int(row[0]), int(row[1]), row[2]
        # Scans whose recorded match step names this case, then their actions.
        scan_ids: list[str] = []
        for scan_id, steps in self.session.execute(
            select(ScanItem.id, ScanItem.steps).where(
                ScanItem.outcome.is_not(None), ScanItem.outcome != "ignore"
            )
        ):
            for step in steps or ():
                if step.get("step") == "match" and any(
                    case.id in c.get("cases", ()) for c in step.get("candidates", ())
                ):
                    scan_ids.append(scan_id)
                    break
        removed = pending = 0
        last_removed: dt.datetime | None = None
        if scan_ids:
            for action in self.session.scalars(
                select(ScanAction).where(ScanAction.item_id.in_(scan_ids))
            ):
                if action.kind not in REMOVAL_ACTIONS:
                    continue
                if action.status == "done":
                    removed += 1
                    if action.done_at is not None and (
                        last_removed is None or action.done_at > last_removed
                    ):
                        last_removed = action.done_at
                elif action.status == "pending":
                    pending += 1
        return CaseReport(
            case=case,
            entries=len(entry_ids),
            matches=matches,
            items_matched=items,
            last_match_at=last_match,
            removed=removed,
            last_removed_at=last_removed,
            actions_pending=pending,
        )
