"""Tables of the review console: users, sessions, clusters, items, decisions, appeals,
reveals and the console's audit log."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from redress.store.db import Base
from redress.store.models import UtcDateTime


class ReviewUser(Base):
    """A console account: e-mail, role and an argon2 password hash (never the password)."""

    __tablename__ = "review_user"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(200))
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class ReviewAdvocateCase(Base):
    """Which victim cases an advocate is assigned to (she sees only these)."""

    __tablename__ = "review_advocate_case"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("review_user.id", ondelete="CASCADE"), primary_key=True
    )
    case_id: Mapped[int] = mapped_column(
        ForeignKey("victim_case.id", ondelete="CASCADE"), primary_key=True
    )


class ReviewSession(Base):
    """A server-side login session; the cookie holds the token, the table its SHA-256."""

    __tablename__ = "review_session"

    token_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("review_user.id", ondelete="CASCADE"))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class ReviewCluster(Base):
    """Copies of one image (within the PDQ cluster distance): decided once, together."""

    __tablename__ = "review_cluster"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    pdq: Mapped[str | None] = mapped_column(String(64))
    sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(16))  # open, decided
    outcome: Mapped[str | None] = mapped_column(String(24))
    actions: Mapped[list[str]] = mapped_column(JSON, default=list)
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("review_user.id"))
    decided_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class ReviewItem(Base):
    """One scan item that the pipeline sent to review (one per ``scan_items`` row)."""

    __tablename__ = "review_item"
    __table_args__ = (Index("ix_review_item_status_deadline", "status", "deadline"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    scan_item_id: Mapped[str] = mapped_column(
        ForeignKey("scan_items.id", ondelete="CASCADE"), unique=True
    )
    cluster_id: Mapped[int] = mapped_column(ForeignKey("review_cluster.id"), index=True)
    status: Mapped[str] = mapped_column(String(16))  # open, decided
    bank: Mapped[str | None] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(64))
    chat: Mapped[str | None] = mapped_column(String(200))
    priority: Mapped[int] = mapped_column(Integer)
    deadline: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    decided_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    leased_by: Mapped[int | None] = mapped_column(ForeignKey("review_user.id"))
    leased_until: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    version: Mapped[int] = mapped_column(Integer, default=0)


class ReviewDecision(Base):
    """A decision on a cluster (the latest one stands; appeals add more)."""

    __tablename__ = "review_decision"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    cluster_id: Mapped[int] = mapped_column(ForeignKey("review_cluster.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("review_user.id"))
    outcome: Mapped[str] = mapped_column(String(24))
    reason_code: Mapped[str] = mapped_column(String(48))
    note: Mapped[str | None] = mapped_column(Text)
    actions: Mapped[list[str]] = mapped_column(JSON, default=list)
    appeal_id: Mapped[int | None] = mapped_column(Integer)
    at: Mapped[dt.datetime] = mapped_column(UtcDateTime, index=True)


class ReviewAppeal(Base):
    """An affected user's appeal against a cluster's decision."""

    __tablename__ = "review_appeal"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    cluster_id: Mapped[int] = mapped_column(ForeignKey("review_cluster.id"), index=True)
    appellant: Mapped[str] = mapped_column(String(200))
    statement: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))  # open, upheld, overturned
    original_decider: Mapped[int | None] = mapped_column(ForeignKey("review_user.id"))
    opened_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)


class ReviewAudit(Base):
    """The console's append-only audit log: logins, reveals, decisions, appeals."""

    __tablename__ = "review_audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(UtcDateTime, index=True)
    actor: Mapped[str] = mapped_column(String(254))
    action: Mapped[str] = mapped_column(String(48), index=True)
    target: Mapped[str] = mapped_column(String(200))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
