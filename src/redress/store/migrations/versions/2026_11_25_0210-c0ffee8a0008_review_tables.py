"""review: console users, sessions, clusters, items, decisions, appeals, audit

Revision ID: c0ffee8a0008
Revises: b7c3d9e1f402
Create Date: 2026-11-25 02:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "c0ffee8a0008"
down_revision = "b7c3d9e1f402"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "review_user",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("failed_logins", sa.Integer(), nullable=False),
        sa.Column("locked_until", TS, nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_user")),
        sa.UniqueConstraint("email", name=op.f("uq_review_user_email")),
    )
    op.create_table(
        "review_advocate_case",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["review_user.id"],
            name=op.f("fk_review_advocate_case_user_id_review_user"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["victim_case.id"],
            name=op.f("fk_review_advocate_case_case_id_victim_case"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "case_id", name=op.f("pk_review_advocate_case")),
    )
    op.create_table(
        "review_session",
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["review_user.id"],
            name=op.f("fk_review_session_user_id_review_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token_sha256", name=op.f("pk_review_session")),
    )
    op.create_table(
        "review_cluster",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("pdq", sa.String(length=64), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("outcome", sa.String(length=24), nullable=True),
        sa.Column("actions", sa.JSON(), nullable=False),
        sa.Column("decided_by", sa.Integer(), nullable=True),
        sa.Column("decided_at", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["decided_by"],
            ["review_user.id"],
            name=op.f("fk_review_cluster_decided_by_review_user"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_cluster")),
    )
    op.create_index(op.f("ix_review_cluster_sha256"), "review_cluster", ["sha256"])
    op.create_table(
        "review_item",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("scan_item_id", sa.String(length=32), nullable=False),
        sa.Column("cluster_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("bank", sa.String(length=200), nullable=True),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("chat", sa.String(length=200), nullable=True),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("deadline", TS, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("decided_at", TS, nullable=True),
        sa.Column("leased_by", sa.Integer(), nullable=True),
        sa.Column("leased_until", TS, nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["scan_item_id"],
            ["scan_items.id"],
            name=op.f("fk_review_item_scan_item_id_scan_items"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["cluster_id"],
            ["review_cluster.id"],
            name=op.f("fk_review_item_cluster_id_review_cluster"),
        ),
        sa.ForeignKeyConstraint(
            ["leased_by"], ["review_user.id"], name=op.f("fk_review_item_leased_by_review_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_item")),
        sa.UniqueConstraint("scan_item_id", name=op.f("uq_review_item_scan_item_id")),
    )
    op.create_index(op.f("ix_review_item_cluster_id"), "review_item", ["cluster_id"])
    op.create_index("ix_review_item_status_deadline", "review_item", ["status", "deadline"])
    op.create_table(
        "review_decision",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("cluster_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=24), nullable=False),
        sa.Column("reason_code", sa.String(length=48), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("actions", sa.JSON(), nullable=False),
        sa.Column("appeal_id", sa.Integer(), nullable=True),
        sa.Column("at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["cluster_id"],
            ["review_cluster.id"],
            name=op.f("fk_review_decision_cluster_id_review_cluster"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["review_user.id"], name=op.f("fk_review_decision_user_id_review_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_decision")),
    )
    op.create_index(op.f("ix_review_decision_cluster_id"), "review_decision", ["cluster_id"])
    op.create_index(op.f("ix_review_decision_at"), "review_decision", ["at"])
    op.create_table(
        "review_appeal",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("cluster_id", sa.Integer(), nullable=False),
        sa.Column("appellant", sa.String(length=200), nullable=False),
        sa.Column("statement", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("original_decider", sa.Integer(), nullable=True),
        sa.Column("opened_at", TS, nullable=False),
        sa.Column("closed_at", TS, nullable=True),
        sa.ForeignKeyConstraint(
            ["cluster_id"],
            ["review_cluster.id"],
            name=op.f("fk_review_appeal_cluster_id_review_cluster"),
        ),
        sa.ForeignKeyConstraint(
            ["original_decider"],
            ["review_user.id"],
            name=op.f("fk_review_appeal_original_decider_review_user"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_appeal")),
    )
    op.create_index(op.f("ix_review_appeal_cluster_id"), "review_appeal", ["cluster_id"])
    op.create_table(
        "review_audit",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("actor", sa.String(length=254), nullable=False),
        sa.Column("action", sa.String(length=48), nullable=False),
        sa.Column("target", sa.String(length=200), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_audit")),
    )
    op.create_index(op.f("ix_review_audit_at"), "review_audit", ["at"])
    op.create_index(op.f("ix_review_audit_action"), "review_audit", ["action"])


def downgrade() -> None:
    for name in (
        "review_audit",
        "review_appeal",
        "review_decision",
        "review_item",
        "review_cluster",
        "review_session",
        "review_advocate_case",
        "review_user",
    ):
        op.drop_table(name)
