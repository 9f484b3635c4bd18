"""The review console: moderators' accounts, the queue, clusters, decisions, appeals,
wellness protections and the audit trail (docs/review.md)."""

from redress.review.interfaces import (
    CONFIRM_ACTIONS,
    REASON_CODES,
    ActionPerformer,
    DecisionRequest,
    DecisionResult,
    ItemView,
    Outcome,
    QueueFilter,
    QueueRow,
    ReviewIntake,
    Role,
    Viewer,
)
from redress.review.service import ReviewConfig, ReviewService
from redress.review.store import ReviewStore

__all__ = [
    "CONFIRM_ACTIONS",
    "REASON_CODES",
    "ActionPerformer",
    "DecisionRequest",
    "DecisionResult",
    "ItemView",
    "Outcome",
    "QueueFilter",
    "QueueRow",
    "ReviewConfig",
    "ReviewIntake",
    "ReviewService",
    "ReviewStore",
    "Role",
    "Viewer",
]
