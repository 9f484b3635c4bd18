"""All SQL of the review console. Only flushes; the edge commits."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from redress.pipeline.models import ScanAction, ScanItem, ScanMedia
from redress.review.models import (
    ReviewAdvocateCase,
    ReviewAppeal,
    ReviewAudit,
    ReviewCluster,
    ReviewDecision,
    ReviewItem,
    ReviewSession,
    ReviewUser,
)
from redress.store.models import VictimCase

OPEN = "open"
DECIDED = "decided"


class ReviewStore:
    """Queries over the ``review_*`` tables (and reads of the pipeline's scan items)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    # -- users and sessions ----------------------------------------------------------------------

    def user_by_email(self, email: str) -> ReviewUser | None:
        """The account with this e-mail (case-insensitive), if any."""
        return self.session.scalars(
            select(ReviewUser).where(func.lower(ReviewUser.email) == email.lower())
        ).first()

    def user(self, user_id: int) -> ReviewUser | None:
        """One account by ID."""
        return self.session.get(ReviewUser, user_id)

    def users(self) -> list[ReviewUser]:
        """Every account, by e-mail."""
        return list(self.session.scalars(select(ReviewUser).order_by(ReviewUser.email)))

    def add(self, row: object) -> None:
        """Insert a row and flush."""
        self.session.add(row)
        self.session.flush()

    def case_ids(self, user_id: int) -> list[int]:
        """Victim cases assigned to an advocate."""
        return list(
            self.session.scalars(
                select(ReviewAdvocateCase.case_id).where(ReviewAdvocateCase.user_id == user_id)
            )
        )

    def case_ids_by_number(self, numbers: Sequence[str]) -> dict[str, int]:
        """Victim case IDs by case number."""
        rows = self.session.execute(
            select(VictimCase.case_number, VictimCase.id).where(
                VictimCase.case_number.in_(list(numbers))
            )
        )
        return {str(number): int(case_id) for number, case_id in rows}

    def cases(self, case_ids: Sequence[int]) -> dict[int, VictimCase]:
        """Victim cases by ID."""
        rows = self.session.scalars(select(VictimCase).where(VictimCase.id.in_(list(case_ids))))
        return {row.id: row for row in rows}

    def session_row(self, token_sha256: str) -> ReviewSession | None:
        """A login session by the SHA-256 of its token."""
        return self.session.get(ReviewSession, token_sha256)

    def delete(self, row: object) -> None:
        """Delete a row and flush."""
        self.session.delete(row)
        self.session.flush()

    # -- intake ----------------------------------------------------------------------------------

    def unimported_review_items(self, limit: int = 1000) -> list[ScanItem]:
        """Pipeline items with outcome ``review`` that have no review item yet, oldest first."""
        imported = select(ReviewItem.scan_item_id)
        return list(
            self.session.scalars(
                select(ScanItem)
                .where(ScanItem.outcome == "review", ScanItem.id.not_in(imported))
                .order_by(ScanItem.created_at, ScanItem.id)
                .limit(limit)
            )
        )

    def scan_item(self, scan_item_id: str) -> ScanItem | None:
        """The pipeline's row for a review item."""
        return self.session.get(ScanItem, scan_item_id)

    def scan_items(self, ids: Sequence[str]) -> dict[str, ScanItem]:
        """Pipeline rows by ID."""
        rows = self.session.scalars(select(ScanItem).where(ScanItem.id.in_(list(ids))))
        return {row.id: row for row in rows}

    def spooled_media(self, scan_item_id: str) -> bytes | None:
        """Media bytes still spooled by the pipeline, if any."""
        return self.session.scalars(
            select(ScanMedia.data).where(ScanMedia.item_id == scan_item_id)
        ).first()

    def clusters_with_pdq(self) -> list[tuple[int, str]]:
        """Every cluster's representative PDQ hash (for the cluster index)."""
        rows = self.session.execute(
            select(ReviewCluster.id, ReviewCluster.pdq).where(ReviewCluster.pdq.is_not(None))
        )
        return [(cid, pdq) for cid, pdq in rows if pdq is not None]

    def cluster_by_sha256(self, sha256: str) -> ReviewCluster | None:
        """A cluster holding a byte-identical copy."""
        return self.session.scalars(
            select(ReviewCluster).where(ReviewCluster.sha256 == sha256).order_by(ReviewCluster.id)
        ).first()

    def cluster(self, cluster_id: int, *, lock: bool = False) -> ReviewCluster | None:
        """One cluster (``lock`` takes a row lock on PostgreSQL)."""
        query = select(ReviewCluster).where(ReviewCluster.id == cluster_id)
        if lock:
            query = query.with_for_update()
        return self.session.scalars(query).first()

    # -- queue -----------------------------------------------------------------------------------

    def item(self, item_id: int) -> ReviewItem | None:
        """One review item."""
        return self.session.get(ReviewItem, item_id)

    def open_items(self) -> list[ReviewItem]:
        """Open items, by deadline then priority (highest first)."""
        return list(
            self.session.scalars(
                select(ReviewItem)
                .where(ReviewItem.status == OPEN)
                .order_by(ReviewItem.deadline, ReviewItem.priority.desc(), ReviewItem.id)
            )
        )

    def cluster_items(self, cluster_id: int) -> list[ReviewItem]:
        """Every copy in a cluster, oldest first."""
        return list(
            self.session.scalars(
                select(ReviewItem)
                .where(ReviewItem.cluster_id == cluster_id)
                .order_by(ReviewItem.created_at, ReviewItem.id)
            )
        )

    def lease_cluster(
        self, cluster_id: int, user_id: int, now: dt.datetime, until: dt.datetime
    ) -> None:
        """Lease the cluster's open items to ``user_id`` where free, expired or already
        theirs (one conditional UPDATE, atomic on both backends)."""
        self.session.execute(
            update(ReviewItem)
            .where(
                ReviewItem.cluster_id == cluster_id,
                ReviewItem.status == OPEN,
                or_(
                    ReviewItem.leased_by.is_(None),
                    ReviewItem.leased_by == user_id,
                    ReviewItem.leased_until < now,
                ),
            )
            .values(leased_by=user_id, leased_until=until, version=ReviewItem.version + 1)
            .execution_options(synchronize_session="fetch")
        )
        self.session.flush()

    def release_cluster(self, cluster_id: int, user_id: int) -> None:
        """Give up a lease."""
        self.session.execute(
            update(ReviewItem)
            .where(ReviewItem.cluster_id == cluster_id, ReviewItem.leased_by == user_id)
            .values(leased_by=None, leased_until=None)
            .execution_options(synchronize_session="fetch")
        )

    def decide_open_items(self, cluster_id: int, now: dt.datetime) -> list[ReviewItem]:
        """Mark the cluster's open items decided and return them."""
        items = [i for i in self.cluster_items(cluster_id) if i.status == OPEN]
        for item in items:
            item.status = DECIDED
            item.decided_at = now
            item.leased_by = None
            item.leased_until = None
        self.session.flush()
        return items

    def reopen_items(self, cluster_id: int) -> None:
        """Put a cluster's items back in the queue (an appeal)."""
        for item in self.cluster_items(cluster_id):
            item.status = OPEN
            item.decided_at = None
            item.version += 1
        self.session.flush()

    # -- decisions and appeals -------------------------------------------------------------------

    def decisions(self, cluster_id: int) -> list[ReviewDecision]:
        """A cluster's decisions, oldest first."""
        return list(
            self.session.scalars(
                select(ReviewDecision)
                .where(ReviewDecision.cluster_id == cluster_id)
                .order_by(ReviewDecision.at, ReviewDecision.id)
            )
        )

    def not_violation_actions(self) -> list[list[str]]:
        """The feedback recorded by every 'not a violation' decision."""
        return [
            list(actions)
            for actions in self.session.scalars(
                select(ReviewDecision.actions).where(ReviewDecision.outcome == "not_violation")
            )
        ]

    def open_appeal(self, cluster_id: int) -> ReviewAppeal | None:
        """The cluster's open appeal, if any."""
        return self.session.scalars(
            select(ReviewAppeal).where(
                ReviewAppeal.cluster_id == cluster_id, ReviewAppeal.status == OPEN
            )
        ).first()

    def appeals(self) -> list[ReviewAppeal]:
        """Every appeal, newest first."""
        return list(self.session.scalars(select(ReviewAppeal).order_by(ReviewAppeal.id.desc())))

    def existing_action_ids(self, scan_item_ids: Sequence[str]) -> set[str]:
        """Outbox rows already there for these items."""
        return set(
            self.session.scalars(
                select(ScanAction.id).where(ScanAction.item_id.in_(list(scan_item_ids)))
            )
        )

    def actions_of(self, scan_item_ids: Sequence[str]) -> list[ScanAction]:
        """Outbox rows of these items."""
        return list(
            self.session.scalars(
                select(ScanAction)
                .where(ScanAction.item_id.in_(list(scan_item_ids)))
                .order_by(ScanAction.id)
            )
        )

    # -- audit -----------------------------------------------------------------------------------

    def audit(
        self, at: dt.datetime, actor: str, action: str, target: str, details: dict[str, Any]
    ) -> None:
        """Append one audit event."""
        self.session.add(
            ReviewAudit(at=at, actor=actor, action=action, target=target, details=details)
        )
        self.session.flush()

    def audit_events(self, *, action: str | None = None, limit: int = 200) -> list[ReviewAudit]:
        """Newest audit events first."""
        query = select(ReviewAudit).order_by(ReviewAudit.id.desc()).limit(limit)
        if action is not None:
            query = query.where(ReviewAudit.action == action)
        return list(self.session.scalars(query))

    def count_audit(self, actor: str, action: str, since: dt.datetime) -> int:
        """How many ``action`` events ``actor`` caused since ``since``."""
        return int(
            self.session.scalar(
                select(func.count()).where(
                    ReviewAudit.actor == actor,
                    ReviewAudit.action == action,
                    ReviewAudit.at >= since,
                )
            )
            or 0
        )

    def revealed(self, actor: str, target: str, since: dt.datetime) -> bool:
        """Whether ``actor`` revealed ``target`` since ``since``."""
        return (
            self.session.scalar(
                select(ReviewAudit.id)
                .where(
                    ReviewAudit.actor == actor,
                    ReviewAudit.action == "review:media:revealed",
                    ReviewAudit.target == target,
                    ReviewAudit.at >= since,
                )
                .limit(1)
            )
            is not None
        )

    # -- dashboard -------------------------------------------------------------------------------

    def all_items(self, since: dt.datetime | None = None) -> list[ReviewItem]:
        """Every review item (created since ``since``)."""
        query = select(ReviewItem)
        if since is not None:
            query = query.where(ReviewItem.created_at >= since)
        return list(self.session.scalars(query))

    def decision_counts(self) -> dict[str, int]:
        """Decisions by outcome."""
        rows = self.session.execute(
            select(ReviewDecision.outcome, func.count()).group_by(ReviewDecision.outcome)
        )
        return {str(outcome): int(n) for outcome, n in rows}
