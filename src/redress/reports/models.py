"""Tables of the reports domain: inbound notices and the items they located, statements
of reasons, and outbound takedown notices with their sends."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from redress.store.db import Base
from redress.store.models import UtcDateTime


class Notice(Base):
    """An inbound notice (TAKE IT DOWN Act request or DSA Art. 16 notice) and its clock.

    The sender's name, e-mail and signature are personal data: they are shown to
    moderators and used to answer the sender, never exported or reported.
    """

    __tablename__ = "notice"
    __table_args__ = (Index("ix_notice_status_due", "status", "due_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    reference: Mapped[str] = mapped_column(String(32), unique=True)
    regime: Mapped[str] = mapped_column(String(16))  # take_it_down, dsa
    jurisdiction: Mapped[str] = mapped_column(String(8))
    channel: Mapped[str] = mapped_column(String(8))  # form, api, cli
    trusted: Mapped[bool] = mapped_column(Boolean, default=False)
    api_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id", ondelete="SET NULL"))
    locations: Mapped[list[str]] = mapped_column(JSON, default=list)
    explanation: Mapped[str] = mapped_column(Text)
    signature: Mapped[str] = mapped_column(String(300))
    good_faith: Mapped[bool] = mapped_column(Boolean, default=False)
    sender_name: Mapped[str | None] = mapped_column(String(300))
    sender_email: Mapped[str] = mapped_column(String(254))
    locale: Mapped[str] = mapped_column(String(16))
    received_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, index=True)
    due_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    status: Mapped[str] = mapped_column(String(16))  # open, closed
    outcome: Mapped[str | None] = mapped_column(String(24))  # removed, rejected, not_found
    closed_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    reminded_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    escalated_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    breached_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    outcome_sent_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)


class NoticeItem(Base):
    """A pipeline item a notice put in review: the located content or a copy of it."""

    __tablename__ = "notice_item"
    __table_args__ = (UniqueConstraint("notice_id", "scan_item_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    notice_id: Mapped[int] = mapped_column(ForeignKey("notice.id", ondelete="CASCADE"), index=True)
    scan_item_id: Mapped[str] = mapped_column(
        ForeignKey("scan_items.id", ondelete="CASCADE"), index=True
    )
    location: Mapped[str] = mapped_column(Text)
    relation: Mapped[str] = mapped_column(String(16))  # located, identical, near, unlocated
    distance: Mapped[int | None] = mapped_column(Integer)


class StatementOfReasons(Base):
    """A statement of reasons (DSA Art. 17) for one removal or restriction of one item.

    The columns named after the DSA Transparency Database's fields hold its values;
    ``affected_*`` say whom to tell and are never exported.
    """

    __tablename__ = "statement_of_reasons"
    __table_args__ = (UniqueConstraint("scan_item_id", "action_kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    puid: Mapped[str] = mapped_column(String(64), unique=True)
    scan_item_id: Mapped[str] = mapped_column(
        ForeignKey("scan_items.id", ondelete="CASCADE"), index=True
    )
    action_kind: Mapped[str] = mapped_column(String(32))
    notice_id: Mapped[int | None] = mapped_column(ForeignKey("notice.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, index=True)
    application_date: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    decision_visibility: Mapped[str | None] = mapped_column(String(64))
    decision_account: Mapped[str | None] = mapped_column(String(64))
    decision_ground: Mapped[str] = mapped_column(String(64))
    illegal_content_legal_ground: Mapped[str] = mapped_column(String(500))
    illegal_content_explanation: Mapped[str] = mapped_column(Text)
    content_type: Mapped[list[str]] = mapped_column(JSON, default=list)
    category: Mapped[str] = mapped_column(String(64))
    territorial_scope: Mapped[list[str]] = mapped_column(JSON, default=list)
    decision_facts: Mapped[str] = mapped_column(Text)
    source_type: Mapped[str] = mapped_column(String(32))
    automated_detection: Mapped[bool] = mapped_column(Boolean)
    automated_decision: Mapped[bool] = mapped_column(Boolean)
    url: Mapped[str] = mapped_column(String(500))
    affected_platform: Mapped[str | None] = mapped_column(String(50))
    affected_chat: Mapped[str | None] = mapped_column(String(200))
    affected_user: Mapped[str | None] = mapped_column(String(200))
    delivery: Mapped[str] = mapped_column(String(16))  # pending, sent, failed, no_recipient
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    delivery_detail: Mapped[str | None] = mapped_column(Text)


class OutboundNotice(Base):
    """A takedown notice Redress sends to a hosting platform's abuse contact."""

    __tablename__ = "outbound_notice"
    __table_args__ = (Index("ix_outbound_notice_status_next", "status", "next_send_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    reference: Mapped[str] = mapped_column(String(32), unique=True)
    scan_item_id: Mapped[str | None] = mapped_column(
        ForeignKey("scan_items.id", ondelete="SET NULL")
    )
    platform: Mapped[str] = mapped_column(String(100), index=True)
    abuse_contact: Mapped[str | None] = mapped_column(String(254))
    location: Mapped[str] = mapped_column(Text)
    legal_basis: Mapped[str] = mapped_column(Text)
    evidence_reference: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    created_by: Mapped[str] = mapped_column(String(254))
    status: Mapped[str] = mapped_column(String(16))  # open, gone, withdrawn
    sends: Mapped[int] = mapped_column(Integer, default=0)
    first_sent_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    last_sent_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    next_send_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    gone_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
