"""Helpers of the reports tests: a real pipeline over a fresh database, a controllable
clock, a local SMTP server (aiosmtpd) and moderators."""

from __future__ import annotations

import datetime as dt
import hashlib
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from typing import Any

from aiosmtpd.controller import Controller
from argon2 import PasswordHasher
from sqlalchemy.orm import Session

from redress.actions.interfaces import ActionTarget
from redress.config import Settings
from redress.index import MihIndex
from redress.pipeline.container import PipelineContainer, build_pipeline
from redress.pipeline.interfaces import MatchQuery
from redress.pipeline.service import HashSubmission, ScanContext
from redress.reports.interfaces import NoticeIn, Regime, Sender
from redress.reports.mail import SmtpMailer
from redress.reports.service import NoticeConfig, NoticeService
from redress.reports.statements import StatementConfig, StatementService
from redress.reports.store import NoticeStore
from redress.review.interfaces import Role, Viewer
from redress.review.service import ReviewConfig, ReviewService
from redress.review.store import ReviewStore
from redress.signals.types import PdqHash
from redress.store.migrate import upgrade
from redress.store.sync import SeenFollower

IMAGE = bytes(range(32))
OTHER = bytes(range(200, 232))
PASSWORD = "correct horse battery staple"
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
START = dt.datetime(2026, 6, 1, 9, 0, tzinfo=dt.UTC)


def flip(bits: bytes, count: int) -> bytes:
    """``bits`` with its first ``count`` bits inverted (a copy ``count`` bits away)."""
    value = int.from_bytes(bits, "big") ^ (((1 << count) - 1) << (256 - count))
    return value.to_bytes(32, "big")


class Inbox:
    """What the local SMTP server received."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"

    def to(self, address: str) -> list[Message]:
        return [m for m in self.messages if m["To"] == address]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def smtp_server() -> Iterator[tuple[Inbox, int]]:
    """A real SMTP server on loopback (aiosmtpd) for the duration of a test."""
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


@dataclass
class World:
    """A pipeline over a fresh database, a clock the test moves, and a mailer."""

    settings: Settings
    pipeline: PipelineContainer
    mailer: SmtpMailer | None
    now: dt.datetime = START
    scanned: dict[str, str] = field(default_factory=dict)

    def clock(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)

    def seen_index(self) -> MihIndex:
        follower = SeenFollower(self.pipeline.engine, MihIndex, quality_min=50)
        follower.catch_up()
        index = follower.images
        assert isinstance(index, MihIndex)
        return index

    def notices(self, session: Session) -> NoticeService:
        return NoticeService(
            NoticeStore(session),
            NoticeConfig.from_settings(self.settings),
            clock=self.clock,
            mailer=self.mailer,
            seen_index=self.seen_index(),
        )

    def statements(self, session: Session) -> StatementService:
        return StatementService(
            NoticeStore(session), StatementConfig.from_settings(self.settings), clock=self.clock
        )

    def review(self, session: Session) -> ReviewService:
        return ReviewService(
            ReviewStore(session),
            ReviewConfig.from_settings(self.settings),
            clock=self.clock,
            passwords=FAST_HASHER,
        )

    def scan(self, bits: bytes, chat: str, message: str, sender: str = "77") -> str:
        """Scan an image's hashes as seen in a Telegram message (SHA-256 from the bits)."""
        with self.pipeline.sessions.begin() as session:
            result = self.pipeline.service.scan_hashes(
                session,
                HashSubmission(
                    MatchQuery(pdq=(PdqHash(bits, 100),), sha256=hashlib.sha256(bits).hexdigest()),
                    ScanContext(
                        source="telegram", target=ActionTarget("telegram", chat, message, sender)
                    ),
                ),
                key=None,
            )
        self.scanned[f"{chat}/{message}"] = result.item_id
        return result.item_id

    def submit(self, notice: NoticeIn, sender: Sender | None = None) -> str:
        with self.pipeline.sessions.begin() as session:
            read = self.notices(session).submit(notice, sender or Sender("form"))
        return read.reference

    def moderator(self, email: str = "mod@example.org") -> Viewer:
        with self.pipeline.sessions.begin() as session:
            self.review(session).create_user(email, Role.MODERATOR, PASSWORD)
        with self.pipeline.sessions.begin() as session:
            return self.review(session).login(email, PASSWORD).viewer


def take_it_down(*locations: str, email: str = "sender@example.org") -> NoticeIn:
    """A complete TAKE IT DOWN Act request."""
    return NoticeIn(
        regime=Regime.TAKE_IT_DOWN.value,
        locations=locations,
        signature="Jane Doe",
        non_consent=True,
        sender_email=email,
        sender_name="Jane Doe",
    )


def dsa(*locations: str, email: str = "flagger@example.org") -> NoticeIn:
    """A complete DSA Art. 16 notice."""
    return NoticeIn(
        regime=Regime.DSA.value,
        locations=locations,
        explanation="Intimate image shared without consent (hidden camera).",
        good_faith=True,
        sender_name="Helpline e.V.",
        sender_email=email,
    )


@contextmanager
def world(settings: Settings, mailer: SmtpMailer | None = None) -> Iterator[World]:
    upgrade(settings.effective_database_url)
    pipeline = build_pipeline(settings, embedded_queue=False)
    try:
        yield World(settings, pipeline, mailer)
    finally:
        pipeline.close()
