"""What the pipeline needs from the other domains, as narrow Protocols.

The pipeline runs hash -> match -> policy -> outcome. It reaches the signals
domain through :class:`Hasher`, the store's matcher through :class:`Matcher`
(answering with the store's ``MatchResult``, whose banks carry the store's
``BankPurpose``) and optional plug-in signals (a nudity classifier) through
:class:`MediaClassifier`. Results cross the boundary as frozen dataclasses
defined here or as objects that structurally satisfy :class:`MediaDigest`
(``redress.signals.MediaSignals`` does).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy.orm import Session

from redress.actions.interfaces import ActionTarget
from redress.signals.robust import DerivedHash
from redress.signals.types import PdqHash
from redress.signals.verify import ScannedPicture
from redress.store.interfaces import MatchResult


class Outcome(enum.StrEnum):
    """What happens to a scanned item. Ordered: ``act`` > ``review`` > ``ignore``."""

    IGNORE = "ignore"
    REVIEW = "review"
    ACT = "act"

    @property
    def rank(self) -> int:
        """0 for ignore, 1 for review, 2 for act (used to take the strongest outcome)."""
        return _RANK[self]


_RANK = {Outcome.IGNORE: 0, Outcome.REVIEW: 1, Outcome.ACT: 2}


class VpdqFrameLike(Protocol):
    """One vPDQ frame hash, as ``redress.signals.VpdqFrame`` provides it."""

    @property
    def frame(self) -> int: ...
    @property
    def quality(self) -> int: ...
    @property
    def pdq(self) -> PdqHash: ...
    @property
    def ts(self) -> float: ...


class MediaDigest(Protocol):
    """The hashes of one media item (``redress.signals.MediaSignals`` satisfies this)."""

    @property
    def kind(self) -> str: ...
    @property
    def sha256(self) -> str: ...
    @property
    def md5(self) -> str: ...
    @property
    def size(self) -> int: ...
    @property
    def pdq(self) -> PdqHash | None: ...
    @property
    def hashable(self) -> bool: ...
    @property
    def vpdq(self) -> Sequence[VpdqFrameLike]: ...
    @property
    def vpdq_trimmed(self) -> Sequence[VpdqFrameLike]: ...
    @property
    def robust(self) -> Sequence[DerivedHash]: ...


class Hasher(Protocol):
    """Media bytes in, hashes out. Raises a ``RedressError`` for bytes it cannot decode."""

    def hash_bytes(self, data: bytes, name: str | None = None) -> MediaDigest:
        """Hash one media item held in memory."""
        ...

    def picture(self, data: bytes, digest: MediaDigest) -> ScannedPicture | None:
        """The item's picture for verifying near misses (``None``: not an image, or
        verification is off)."""
        ...


@dataclass(frozen=True, slots=True)
class VpdqQueryFrame:
    """One frame of a video query (the matcher compares frame sets)."""

    pdq: PdqHash
    quality: int
    ts: float = 0.0


@dataclass(frozen=True, slots=True)
class MatchQuery:
    """Everything the matcher may look up for one item; any part may be empty."""

    pdq: tuple[PdqHash, ...] = ()
    md5: str | None = None
    sha256: str | None = None
    vpdq: tuple[VpdqQueryFrame, ...] = ()
    # The same frames without the video's letterbox bars: matched as an alternative.
    vpdq_trimmed: tuple[VpdqQueryFrame, ...] = ()
    banks: tuple[str, ...] = ()  # restrict to these banks; empty means all
    # The image's robust query set (docs/robustness.md), each hash with its radius.
    robust: tuple[DerivedHash, ...] = ()
    # The image itself, decoded only if a near miss needs verifying (docs/robustness.md).
    picture: ScannedPicture | None = field(default=None, repr=False, compare=False)

    @property
    def empty(self) -> bool:
        """True when there is nothing to look up."""
        return not (self.pdq or self.md5 or self.sha256 or self.vpdq or self.robust)


class Matcher(Protocol):
    """Looks a query up in the banks; implemented over the store's matcher."""

    def match(
        self,
        session: Session,
        query: MatchQuery,
        target: ActionTarget | None = None,
        *,
        record: bool = True,
    ) -> Sequence[MatchResult]:
        """Entries within each bank's threshold (never near misses), nearest first; with
        ``record`` the item is added to the seen-media history with where it was seen."""
        ...

    def match_many(
        self,
        session: Session,
        queries: Sequence[MatchQuery],
        targets: Sequence[ActionTarget | None],
        record: Sequence[bool],
    ) -> list[Sequence[MatchResult]]:
        """:meth:`match` for a batch (``targets`` and ``record`` hold one value per
        query): the same answers, in the queries' order, for fewer index searches and
        database round trips."""
        ...

    def find_many(
        self, session: Session, queries: Sequence[MatchQuery]
    ) -> list[Sequence[MatchResult]]:
        """The first half of :meth:`match_many`: the answers, reading only (so it can
        run outside the write transaction that records them)."""
        ...

    def record_many(
        self,
        session: Session,
        queries: Sequence[MatchQuery],
        targets: Sequence[ActionTarget | None],
        record: Sequence[bool],
        answers: Sequence[Sequence[MatchResult]],
    ) -> None:
        """The second half of :meth:`match_many`: record the queries marked in
        ``record``, with their sightings and the ``answers`` :meth:`find_many` gave."""
        ...

    def bank_exists(self, session: Session, name: str) -> bool:
        """Whether a bank with this name exists (to reject unknown banks up front)."""
        ...

    def check(self) -> None:
        """Raise if the matcher cannot answer now (readiness: the index is loaded)."""
        ...


@dataclass(frozen=True, slots=True)
class ClassifierScore:
    """What a plug-in media classifier says about an item: a label and a 0-1 score."""

    label: str
    score: float


class MediaClassifier(Protocol):
    """A plug-in signal (e.g. a nudity classifier) for media that matched nothing.

    It can only raise review priority, never cause removal: the policy treats
    its score as a reason to send an item to review, nothing more. No model
    ships with Redress; see docs/pipeline.md for how to plug one in.
    """

    name: str

    def classify(self, data: bytes, digest: MediaDigest) -> ClassifierScore:
        """Score one item's bytes."""
        ...
