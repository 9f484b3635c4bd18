"""Helpers of the review tests: a real pipeline that sends items to review, and people."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from argon2 import PasswordHasher
from sqlalchemy.orm import Session

from redress.actions.interfaces import ActionTarget
from redress.config import Settings
from redress.pipeline.container import PipelineContainer, build_pipeline
from redress.pipeline.interfaces import MatchQuery
from redress.pipeline.service import HashSubmission, ScanContext
from redress.review.interfaces import Role, Viewer
from redress.review.service import ReviewConfig, ReviewService
from redress.review.store import ReviewStore
from redress.signals.types import PdqHash, SignalKind
from redress.store.interfaces import EntryIn
from redress.store.migrate import upgrade
from redress.store.service import CaseService

VICTIM = bytes(range(32))
OTHER = bytes(range(200, 232))
PASSWORD = "correct horse battery staple"
# Cheap argon2 parameters keep the tests quick; production uses the library defaults.
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


def flip(bits: bytes, count: int) -> bytes:
    """``bits`` with its first ``count`` bits inverted (a copy ``count`` bits away)."""
    value = int.from_bytes(bits, "big") ^ (((1 << count) - 1) << (256 - count))
    return value.to_bytes(32, "big")


@dataclass
class Console:
    """A pipeline over a fresh database, with a victim's case and a way to scan."""

    settings: Settings
    pipeline: PipelineContainer
    case_number: str
    clock_now: dt.datetime

    def clock(self) -> dt.datetime:
        return self.clock_now

    def advance(self, **delta: float) -> None:
        self.clock_now += dt.timedelta(**delta)

    @contextmanager
    def service(self) -> Iterator[ReviewService]:
        with self.pipeline.sessions.begin() as session:
            yield self.build(session)

    def build(self, session: Session) -> ReviewService:
        return ReviewService(
            ReviewStore(session),
            ReviewConfig.from_settings(self.settings),
            clock=self.clock,
            passwords=FAST_HASHER,
        )

    def scan(
        self,
        bits: bytes,
        *,
        chat: str = "-1001",
        message: str = "1",
        sender: str = "77",
        caption: str | None = None,
    ) -> str:
        """Scan a hash seen in a Telegram message; returns the pipeline item ID."""
        with self.pipeline.sessions.begin() as session:
            result = self.pipeline.service.scan_hashes(
                session,
                HashSubmission(
                    MatchQuery(pdq=(PdqHash(bits, 100),)),
                    ScanContext(
                        source="telegram",
                        caption=caption,
                        target=ActionTarget("telegram", chat, message, sender),
                    ),
                ),
                key=None,
            )
        return result.item_id

    def user(self, email: str, role: Role, cases: tuple[str, ...] = ()) -> Viewer:
        with self.service() as service:
            service.create_user(email, role, PASSWORD, cases=cases)
        with self.service() as service:
            return service.login(email, PASSWORD).viewer


@contextmanager
def console(settings: Settings) -> Iterator[Console]:
    upgrade(settings.effective_database_url)
    pipeline = build_pipeline(settings, embedded_queue=False)
    try:
        with pipeline.sessions.begin() as session:
            created = CaseService(session).create(
                [EntryIn(kind=SignalKind.PDQ, value=VICTIM, quality=100)],
                contact="victim@example.org",
            )
        matcher = pipeline.service.matcher
        follower = getattr(matcher, "follower", None)
        if follower is not None:
            follower.poll()
        yield Console(settings, pipeline, created.case.case_number, dt.datetime.now(dt.UTC))
    finally:
        pipeline.close()
