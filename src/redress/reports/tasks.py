"""The notices worker step: one run of the clock, each part in its own transaction.

``redress notices tick`` runs it once (cron, a systemd timer, or a loop with
``--every``); tests run it with an injected clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from redress.reports.interfaces import Clock, ContentProbe, Mailer, TickReport
from redress.reports.outbound import OutboundConfig, OutboundService
from redress.reports.service import NoticeConfig, NoticeService
from redress.reports.statements import StatementConfig, StatementService
from redress.reports.store import NoticeStore


@dataclass(frozen=True)
class NoticeWorker:
    """Builds the reports services per transaction and runs the clock."""

    sessions: sessionmaker[Session]
    settings: Any
    clock: Clock
    mailer: Mailer | None = None
    probe: ContentProbe | None = None
    seen_index: Any = None

    def notices(self, session: Session) -> NoticeService:
        """The notice service on ``session``."""
        return NoticeService(
            NoticeStore(session),
            NoticeConfig.from_settings(self.settings),
            clock=self.clock,
            mailer=self.mailer,
            seen_index=self.seen_index,
        )

    def statements(self, session: Session) -> StatementService:
        """The statement service on ``session``."""
        return StatementService(
            NoticeStore(session), StatementConfig.from_settings(self.settings), clock=self.clock
        )

    def outbound(self, session: Session) -> OutboundService:
        """The outbound notice service on ``session``."""
        return OutboundService(
            NoticeStore(session),
            OutboundConfig.from_settings(self.settings),
            clock=self.clock,
            mailer=self.mailer,
            probe=self.probe,
        )

    def tick(self) -> TickReport:
        """Close decided notices, remind, escalate, record breaches, answer senders;
        write statements for new removals; send due outbound notices."""
        with self.sessions.begin() as session:
            done = self.notices(session).run_clock()
        with self.sessions.begin() as session:
            created = self.statements(session).sync()
        with self.sessions.begin() as session:
            sent, failed = self.outbound(session).send_due()
        return TickReport(
            statements_created=created,
            notices_closed=tuple(done["closed"]),
            reminded=tuple(done["reminded"]),
            escalated=tuple(done["escalated"]),
            breached=tuple(done["breached"]),
            outbound_sent=tuple(sent),
            outbound_failed=tuple(failed),
        )
