"""reports: inbound notices, notice items, statements of reasons, outbound notices

Revision ID: d5a7c0de1010
Revises: b7e2f4c1d0a9
Create Date: 2026-11-25 03:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

TS = sa.DateTime(timezone=True)

revision = "d5a7c0de1010"
down_revision = "b7e2f4c1d0a9"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notice",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("reference", sa.String(length=32), nullable=False),
        sa.Column("regime", sa.String(length=16), nullable=False),
        sa.Column("jurisdiction", sa.String(length=8), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("trusted", sa.Boolean(), nullable=False),
        sa.Column(
            "api_key_id",
            sa.Integer(),
            sa.ForeignKey("api_keys.id", ondelete="SET NULL"),
            nullable=True,
        ),
        sa.Column("locations", sa.JSON(), nullable=False),
        sa.Column("explanation", sa.Text(), nullable=False),
        sa.Column("signature", sa.String(length=300), nullable=False),
        sa.Column("good_faith", sa.Boolean(), nullable=False),
        sa.Column("sender_name", sa.String(length=300), nullable=True),
        sa.Column("sender_email", sa.String(length=254), nullable=False),
        sa.Column("locale", sa.String(length=16), nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("due_at", TS, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("outcome", sa.String(length=24), nullable=True),
        sa.Column("closed_at", TS, nullable=True),
        sa.Column("reminded_at", TS, nullable=True),
        sa.Column("escalated_at", TS, nullable=True),
        sa.Column("breached_at", TS, nullable=True),
        sa.Column("acknowledged_at", TS, nullable=True),
        sa.Column("outcome_sent_at", TS, nullable=True),
        sa.UniqueConstraint("reference"),
    )
    op.create_index("ix_notice_status_due", "notice", ["status", "due_at"])
    op.create_index("ix_notice_received_at", "notice", ["received_at"])
    op.create_table(
        "notice_item",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "notice_id",
            sa.Integer(),
            sa.ForeignKey("notice.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "scan_item_id",
            sa.String(length=32),
            sa.ForeignKey("scan_items.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("location", sa.Text(), nullable=False),
        sa.Column("relation", sa.String(length=16), nullable=False),
        sa.Column("distance", sa.Integer(), nullable=True),
        sa.UniqueConstraint("notice_id", "scan_item_id"),
    )
    op.create_index("ix_notice_item_notice_id", "notice_item", ["notice_id"])
    op.create_index("ix_notice_item_scan_item_id", "notice_item", ["scan_item_id"])
    op.create_table(
        "statement_of_reasons",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("puid", sa.String(length=64), nullable=False),
        sa.Column(
            "scan_item_id",
            sa.String(length=32),
            sa.ForeignKey("scan_items.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("action_kind", sa.String(length=32), nullable=False),
        sa.Column(
            "notice_id",
            sa.Integer(),
            sa.ForeignKey("notice.id", ondelete="SET NULL"),
            nullable=True,
        ),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("application_date", TS, nullable=False),
        sa.Column("decision_visibility", sa.String(length=64), nullable=True),
        sa.Column("decision_account", sa.String(length=64), nullable=True),
        sa.Column("decision_ground", sa.String(length=64), nullable=False),
        sa.Column("illegal_content_legal_ground", sa.String(length=500), nullable=False),
        sa.Column("illegal_content_explanation", sa.Text(), nullable=False),
        sa.Column("content_type", sa.JSON(), nullable=False),
        sa.Column("category", sa.String(length=64), nullable=False),
        sa.Column("territorial_scope", sa.JSON(), nullable=False),
        sa.Column("decision_facts", sa.Text(), nullable=False),
        sa.Column("source_type", sa.String(length=32), nullable=False),
        sa.Column("automated_detection", sa.Boolean(), nullable=False),
        sa.Column("automated_decision", sa.Boolean(), nullable=False),
        sa.Column("url", sa.String(length=500), nullable=False),
        sa.Column("affected_platform", sa.String(length=50), nullable=True),
        sa.Column("affected_chat", sa.String(length=200), nullable=True),
        sa.Column("affected_user", sa.String(length=200), nullable=True),
        sa.Column("delivery", sa.String(length=16), nullable=False),
        sa.Column("delivered_at", TS, nullable=True),
        sa.Column("delivery_detail", sa.Text(), nullable=True),
        sa.UniqueConstraint("puid"),
        sa.UniqueConstraint("scan_item_id", "action_kind"),
    )
    op.create_index(
        "ix_statement_of_reasons_scan_item_id", "statement_of_reasons", ["scan_item_id"]
    )
    op.create_index("ix_statement_of_reasons_created_at", "statement_of_reasons", ["created_at"])
    op.create_table(
        "outbound_notice",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("reference", sa.String(length=32), nullable=False),
        sa.Column(
            "scan_item_id",
            sa.String(length=32),
            sa.ForeignKey("scan_items.id", ondelete="SET NULL"),
            nullable=True,
        ),
        sa.Column("platform", sa.String(length=100), nullable=False),
        sa.Column("abuse_contact", sa.String(length=254), nullable=True),
        sa.Column("location", sa.Text(), nullable=False),
        sa.Column("legal_basis", sa.Text(), nullable=False),
        sa.Column("evidence_reference", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("created_by", sa.String(length=254), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("sends", sa.Integer(), nullable=False),
        sa.Column("first_sent_at", TS, nullable=True),
        sa.Column("last_sent_at", TS, nullable=True),
        sa.Column("next_send_at", TS, nullable=True),
        sa.Column("gone_at", TS, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.UniqueConstraint("reference"),
    )
    op.create_index("ix_outbound_notice_status_next", "outbound_notice", ["status", "next_send_at"])
    op.create_index("ix_outbound_notice_platform", "outbound_notice", ["platform"])


def downgrade() -> None:
    op.drop_table("outbound_notice")
    op.drop_table("statement_of_reasons")
    op.drop_table("notice_item")
    op.drop_table("notice")
