"""The pipeline's collaborators over the real domains: the store's matcher (with its
index follower) and the signals hasher."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from redress.actions.interfaces import ActionTarget
from redress.config import Settings
from redress.errors import ConfigurationError
from redress.index import MihIndex, PdqIndex
from redress.pipeline.interfaces import MatchQuery, MediaDigest
from redress.signals import HashOptions, hash_bytes
from redress.signals.verify import ScannedPicture
from redress.store.errors import BankNotFoundError
from redress.store.interfaces import MatchResult, MediaQuery, SightingIn, VpdqFrameIn
from redress.store.service import Matcher
from redress.store.store import SqlBankStore, SqlSeenStore
from redress.store.sync import IndexFollower


def media_query(query: MatchQuery, kind: str = "image") -> MediaQuery:
    """The store's form of a pipeline query."""
    return MediaQuery(
        kind="video" if query.vpdq else kind,
        sha256=bytes.fromhex(query.sha256) if query.sha256 else None,
        md5=bytes.fromhex(query.md5) if query.md5 else None,
        pdq=query.pdq,
        vpdq=tuple(VpdqFrameIn(n, f.pdq, f.ts) for n, f in enumerate(query.vpdq)),
        robust=query.robust,
        vpdq_trimmed=tuple(VpdqFrameIn(n, f.pdq, f.ts) for n, f in enumerate(query.vpdq_trimmed)),
        picture=query.picture,
    )


def _sighting(target: ActionTarget | None) -> SightingIn | None:
    if target is None or not any(
        (target.platform, target.chat_id, target.message_id, target.user_id)
    ):
        return None
    return SightingIn(
        platform=target.platform,
        chat=target.chat_id,
        message_id=target.message_id,
        sender=target.user_id,
    )


class StoreMatcher:
    """Matches through ``redress.store.service.Matcher`` and records each item (and where
    it was seen) in the seen-media history, for retroactive matching."""

    def __init__(self, matcher: Matcher, follower: IndexFollower, *, follow: bool = True) -> None:
        self.matcher = matcher
        self.follower = follower
        if follow:
            follower.run()

    @classmethod
    def build(
        cls,
        settings: Settings,
        engine: Engine,
        index_factory: Callable[[], PdqIndex] = MihIndex,
    ) -> StoreMatcher:
        """Load the bank index from the database and follow its changes."""
        follower = IndexFollower(engine, index_factory, quality_min=settings.pdq_quality_min)
        follower.start()
        return cls(Matcher(follower, quality_min=settings.pdq_quality_min), follower)

    def match(
        self,
        session: Session,
        query: MatchQuery,
        target: ActionTarget | None = None,
        *,
        record: bool = True,
    ) -> list[MatchResult]:
        """Match; with ``record``, also record the item (and its sighting) in the
        seen-media history."""
        return list(self.match_many(session, [query], [target], [record])[0])

    def match_many(
        self,
        session: Session,
        queries: Sequence[MatchQuery],
        targets: Sequence[ActionTarget | None],
        record: Sequence[bool],
    ) -> list[Sequence[MatchResult]]:
        """:meth:`match` for a batch: one index search and one re-check for all of it,
        and the recorded items (with their sightings and matches) written together."""
        answers = self.find_many(session, queries)
        self.record_many(session, queries, targets, record, answers)
        return answers

    def find_many(
        self, session: Session, queries: Sequence[MatchQuery]
    ) -> list[Sequence[MatchResult]]:
        """What each query matches (reads only: one index search and one re-check)."""
        return list(self.matcher.match_many(session, [media_query(q) for q in queries]))

    def record_many(
        self,
        session: Session,
        queries: Sequence[MatchQuery],
        targets: Sequence[ActionTarget | None],
        record: Sequence[bool],
        answers: Sequence[Sequence[MatchResult]],
    ) -> None:
        """Record the queries marked in ``record`` in the seen-media history, with where
        they were seen and what :meth:`find_many` answered for them."""
        seen = SqlSeenStore(session)
        kept = [
            (media_query(query), target, matches)
            for query, target, wanted, matches in zip(
                queries, targets, record, answers, strict=True
            )
            if wanted
        ]
        if not kept:
            return
        # A few statements for the whole batch, not a handful per item: per-item writes
        # were a third of a scanned photo's CPU.
        item_ids = seen.record_items([(query, _sighting(target)) for query, target, _ in kept])
        seen.record_many_matches(
            [(item_id, m) for item_id, (_, _, ms) in zip(item_ids, kept, strict=True) for m in ms]
        )

    def bank_exists(self, session: Session, name: str) -> bool:
        """Whether the bank exists."""
        try:
            SqlBankStore(session).get_bank(name)
        except BankNotFoundError:
            return False
        return True

    def check(self) -> None:
        """Ready once the index is loaded and its follower thread runs."""
        thread = getattr(self.follower, "_thread", None)
        if thread is not None and not thread.is_alive():
            raise ConfigurationError("the index follower has stopped")

    def close(self) -> None:
        """Stop following the change log."""
        self.follower.stop()


class SignalsHasher:
    """Hashes media with ``redress.signals`` using options from the settings (the fast,
    reduced-scale JPEG decode that scanning uses; never the HMA-compatible mode)."""

    def __init__(self, settings: Settings) -> None:
        # Images also get their robust query set (docs/robustness.md) when turned on: it
        # finds screenshots, borders and stickers, at about 10x the scan's hashing CPU.
        # Videos are also hashed without their letterbox bars: about 8 % more CPU
        # (docs/robustness.md, "Video").
        self.options = HashOptions.from_settings(
            settings, robust="query" if settings.robust_query_sets else "off", letterbox=True
        )
        self.verify = settings.verify_features

    def hash_bytes(self, data: bytes, name: str | None = None) -> MediaDigest:
        """Hash one item held in memory; raises ``HashError`` for bytes it cannot decode."""
        return hash_bytes(data, self.options, name=name)

    def picture(self, data: bytes, digest: MediaDigest) -> ScannedPicture | None:
        """The image for verifying near misses, when the installation keeps features of
        banked pictures (``verify_features``); decoded only if one needs verifying."""
        if not self.verify or digest.kind != "image":
            return None
        return ScannedPicture(data, self.options)
