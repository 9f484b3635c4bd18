"""All SQL of the reports domain (notices, statements, outbound notices, report reads).

Only flushes; the edge commits.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from redress.pipeline.models import ScanAction, ScanItem
from redress.reports.models import Notice, NoticeItem, OutboundNotice, StatementOfReasons
from redress.review.models import ReviewAppeal, ReviewCluster, ReviewDecision, ReviewItem
from redress.store.models import AuditEvent, SeenHash, SeenItem, Sighting

#: Outbox kinds that remove or restrict, each of which needs a statement of reasons.
RESTRICTING_ACTIONS = ("delete_message", "restrict_user", "block_reupload")


class NoticeStore:
    """Queries over ``notice``, ``notice_item``, ``statement_of_reasons``,
    ``outbound_notice`` and the reads they need from the store, pipeline and review."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, row: Any) -> None:
        """Insert a row and flush (so it has its ID)."""
        self.session.add(row)
        self.session.flush()

    def audit(self, at: dt.datetime, actor: str, action: str, target: str, details: Any) -> None:
        """Append to the store's append-only audit log."""
        self.session.add(
            AuditEvent(
                at=at, actor=actor[:200], action=action, target=target[:200], details=details
            )
        )
        self.session.flush()

    # -- inbound notices -------------------------------------------------------------------------

    def notice(self, reference: str) -> Notice | None:
        """One notice by its reference."""
        return self.session.scalars(select(Notice).where(Notice.reference == reference)).first()

    def notices(self, *, status: str | None = None, limit: int = 500) -> list[Notice]:
        """Notices, most urgent (earliest due) first."""
        query = select(Notice).order_by(Notice.due_at, Notice.id).limit(limit)
        if status is not None:
            query = query.where(Notice.status == status)
        return list(self.session.scalars(query))

    def notices_to_answer(self) -> list[Notice]:
        """Notices whose acknowledgement or outcome e-mail has not gone out yet."""
        return list(
            self.session.scalars(
                select(Notice)
                .where(
                    or_(
                        Notice.acknowledged_at.is_(None),
                        and_(Notice.status == "closed", Notice.outcome_sent_at.is_(None)),
                    )
                )
                .order_by(Notice.id)
            )
        )

    def scan_item_by_key(self, scope: str, key: str) -> ScanItem | None:
        """The pipeline item created under an idempotency key."""
        return self.session.scalars(
            select(ScanItem).where(
                ScanItem.idempotency_scope == scope, ScanItem.idempotency_key == key
            )
        ).first()

    def add_scan_item_once(self, scan: ScanItem) -> ScanItem:
        """Insert a pipeline item under its idempotency key, or return the row a
        concurrent notice naming the same sighting inserted first."""
        try:
            with self.session.begin_nested():
                self.session.add(scan)
                self.session.flush()
        except IntegrityError:
            existing = self.scan_item_by_key(scan.idempotency_scope, scan.idempotency_key or "")
            if existing is None:
                raise
            return existing
        return scan

    def notice_items(self, notice_id: int) -> list[NoticeItem]:
        """The items a notice put in review."""
        return list(
            self.session.scalars(
                select(NoticeItem).where(NoticeItem.notice_id == notice_id).order_by(NoticeItem.id)
            )
        )

    def notices_of_items(self, scan_item_ids: Sequence[str]) -> dict[str, Notice]:
        """The (first) notice behind each of these pipeline items."""
        if not scan_item_ids:
            return {}
        rows = self.session.execute(
            select(NoticeItem.scan_item_id, Notice)
            .join(Notice, Notice.id == NoticeItem.notice_id)
            .where(NoticeItem.scan_item_id.in_(list(scan_item_ids)))
            .order_by(Notice.id)
        )
        found: dict[str, Notice] = {}
        for scan_id, notice in rows:
            found.setdefault(scan_id, notice)
        return found

    def relations(self, scan_item_ids: Sequence[str]) -> dict[str, str]:
        """How each pipeline item relates to its notice (located, identical, near, ...)."""
        if not scan_item_ids:
            return {}
        rows = self.session.execute(
            select(NoticeItem.scan_item_id, NoticeItem.relation).where(
                NoticeItem.scan_item_id.in_(list(scan_item_ids))
            )
        )
        return {str(scan_id): str(relation) for scan_id, relation in rows}

    # -- locating content ------------------------------------------------------------------------

    def sightings_at(self, platform: str, chats: Sequence[str], message_id: str) -> list[Sighting]:
        """Sightings of any item in one message."""
        return list(
            self.session.scalars(
                select(Sighting).where(
                    Sighting.platform == platform,
                    Sighting.chat.in_(list(chats)),
                    Sighting.message_id == message_id,
                )
            )
        )

    def sightings_of(self, item_ids: Sequence[int]) -> list[Sighting]:
        """Every sighting of these seen items."""
        if not item_ids:
            return []
        return list(
            self.session.scalars(
                select(Sighting)
                .where(Sighting.item_id.in_(list(item_ids)))
                .order_by(Sighting.item_id, Sighting.id)
            )
        )

    def seen_item(self, item_id: int) -> SeenItem | None:
        """One seen item."""
        return self.session.get(SeenItem, item_id)

    def seen_by_sha256(self, sha256: bytes) -> list[int]:
        """Seen items with exactly these bytes."""
        return list(self.session.scalars(select(SeenItem.id).where(SeenItem.sha256 == sha256)))

    def pdq_of(self, item_id: int, quality_min: int) -> list[bytes]:
        """The image PDQ hashes of a seen item (quality at least ``quality_min``)."""
        return list(
            self.session.scalars(
                select(SeenHash.value).where(
                    SeenHash.item_id == item_id,
                    SeenHash.role == "pdq",
                    SeenHash.quality >= quality_min,
                )
            )
        )

    # -- review ----------------------------------------------------------------------------------

    def review_items(self, scan_item_ids: Sequence[str]) -> dict[str, ReviewItem]:
        """Review items by pipeline item ID."""
        if not scan_item_ids:
            return {}
        rows = self.session.scalars(
            select(ReviewItem).where(ReviewItem.scan_item_id.in_(list(scan_item_ids)))
        )
        return {row.scan_item_id: row for row in rows}

    def cluster(self, cluster_id: int) -> ReviewCluster | None:
        """One review cluster."""
        return self.session.get(ReviewCluster, cluster_id)

    def latest_reason(self, cluster_id: int) -> str | None:
        """The reason code of a cluster's latest decision."""
        return self.session.scalar(
            select(ReviewDecision.reason_code)
            .where(ReviewDecision.cluster_id == cluster_id)
            .order_by(ReviewDecision.id.desc())
            .limit(1)
        )

    def scan_item(self, scan_item_id: str) -> ScanItem | None:
        """One pipeline item."""
        return self.session.get(ScanItem, scan_item_id)

    # -- statements ------------------------------------------------------------------------------

    def actions_without_statement(self, limit: int = 1000) -> list[ScanAction]:
        """Removal and restriction actions (not failed) that have no statement yet."""
        have = select(StatementOfReasons.id).where(
            and_(
                StatementOfReasons.scan_item_id == ScanAction.item_id,
                StatementOfReasons.action_kind == ScanAction.kind,
            )
        )
        return list(
            self.session.scalars(
                select(ScanAction)
                .where(
                    ScanAction.kind.in_(RESTRICTING_ACTIONS),
                    ScanAction.status != "failed",
                    ~have.exists(),
                )
                .order_by(ScanAction.created_at, ScanAction.id)
                .limit(limit)
            )
        )

    def statements(
        self, start: dt.datetime | None = None, end: dt.datetime | None = None
    ) -> list[StatementOfReasons]:
        """Statements created in ``[start, end)``, oldest first."""
        query = select(StatementOfReasons).order_by(StatementOfReasons.id)
        if start is not None:
            query = query.where(StatementOfReasons.created_at >= start)
        if end is not None:
            query = query.where(StatementOfReasons.created_at < end)
        return list(self.session.scalars(query))

    def undelivered_statements(self, limit: int = 100) -> list[StatementOfReasons]:
        """Statements still to be sent to the affected user."""
        return list(
            self.session.scalars(
                select(StatementOfReasons)
                .where(StatementOfReasons.delivery == "pending")
                .order_by(StatementOfReasons.id)
                .limit(limit)
            )
        )

    def statement(self, statement_id: int) -> StatementOfReasons | None:
        """One statement."""
        return self.session.get(StatementOfReasons, statement_id)

    # -- outbound --------------------------------------------------------------------------------

    def outbound(self, reference: str) -> OutboundNotice | None:
        """One outbound notice by reference."""
        return self.session.scalars(
            select(OutboundNotice).where(OutboundNotice.reference == reference)
        ).first()

    def outbound_due(self, now: dt.datetime) -> list[OutboundNotice]:
        """Open outbound notices whose next send is due (never sent, or resend time reached)."""
        return list(
            self.session.scalars(
                select(OutboundNotice)
                .where(
                    OutboundNotice.status == "open",
                    OutboundNotice.abuse_contact.is_not(None),
                    or_(
                        OutboundNotice.next_send_at.is_(None),
                        OutboundNotice.next_send_at <= now,
                    ),
                )
                .order_by(OutboundNotice.id)
            )
        )

    def outbound_all(self) -> list[OutboundNotice]:
        """Every outbound notice, oldest first."""
        return list(self.session.scalars(select(OutboundNotice).order_by(OutboundNotice.id)))

    # -- reports ---------------------------------------------------------------------------------

    def notices_received(self, start: dt.datetime, end: dt.datetime) -> list[Notice]:
        """Notices received in ``[start, end)``."""
        return list(
            self.session.scalars(
                select(Notice)
                .where(Notice.received_at >= start, Notice.received_at < end)
                .order_by(Notice.id)
            )
        )

    def notices_closed(self, start: dt.datetime, end: dt.datetime) -> list[Notice]:
        """Notices closed in ``[start, end)``."""
        return list(
            self.session.scalars(
                select(Notice)
                .where(Notice.closed_at >= start, Notice.closed_at < end)
                .order_by(Notice.id)
            )
        )

    def notices_breached(self, start: dt.datetime, end: dt.datetime) -> list[Notice]:
        """Notices whose deadline passed in ``[start, end)`` and that were breached."""
        return list(
            self.session.scalars(
                select(Notice)
                .where(Notice.breached_at.is_not(None), Notice.due_at >= start, Notice.due_at < end)
                .order_by(Notice.id)
            )
        )

    def appeals(self, start: dt.datetime, end: dt.datetime) -> list[ReviewAppeal]:
        """Appeals opened in ``[start, end)``."""
        return list(
            self.session.scalars(
                select(ReviewAppeal)
                .where(ReviewAppeal.opened_at >= start, ReviewAppeal.opened_at < end)
                .order_by(ReviewAppeal.id)
            )
        )
