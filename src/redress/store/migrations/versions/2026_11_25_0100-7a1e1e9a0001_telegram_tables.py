"""Telegram connector tables: group settings, state (update offset), processed messages, records.

Revision ID: 7a1e1e9a0001
Revises: e5d1c0a7b2f3
Create Date: 2026-11-25 01:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "7a1e1e9a0001"
down_revision = "e5d1c0a7b2f3"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "telegram_group",
        sa.Column("chat_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("title", sa.String(length=255), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("banks", sa.JSON(), nullable=False),
        sa.Column("outcomes", sa.JSON(), nullable=False),
        sa.Column("notice_text", sa.Text(), nullable=True),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("chat_id", name=op.f("pk_telegram_group")),
    )
    op.create_table(
        "telegram_state",
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_telegram_state")),
    )
    op.create_table(
        "telegram_processed",
        sa.Column("chat_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("message_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("edit_date", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(
            "chat_id", "message_id", "edit_date", name=op.f("pk_telegram_processed")
        ),
    )
    op.create_table(
        "telegram_record",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("update_id", sa.BigInteger(), nullable=True),
        sa.Column("chat_id", sa.BigInteger(), nullable=True),
        sa.Column("message_id", sa.BigInteger(), nullable=True),
        sa.Column("media_group_id", sa.String(length=64), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_telegram_record")),
    )
    op.create_index(op.f("ix_telegram_record_kind"), "telegram_record", ["kind"], unique=False)
    op.create_index(
        op.f("ix_telegram_record_chat_id"), "telegram_record", ["chat_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_telegram_record_chat_id"), table_name="telegram_record")
    op.drop_index(op.f("ix_telegram_record_kind"), table_name="telegram_record")
    op.drop_table("telegram_record")
    op.drop_table("telegram_processed")
    op.drop_table("telegram_state")
    op.drop_table("telegram_group")
