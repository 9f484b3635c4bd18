"""evidence: ledger entries, Merkle nodes, head, checkpoints and items

Revision ID: e5d1c0a7b2f3
Revises: af7ca76b5d5e
Create Date: 2026-11-25 01:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "e5d1c0a7b2f3"
down_revision: str | Sequence[str] | None = "af7ca76b5d5e"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "evidence_ledger_entries",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=False,
            nullable=False,
        ),
        sa.Column("kind", sa.String(length=100), nullable=False),
        sa.Column("item_id", sa.String(length=32), nullable=True),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("leaf_hash", sa.LargeBinary(length=32), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_evidence_ledger_entries")),
    )
    op.create_index(
        op.f("ix_evidence_ledger_entries_item_id"), "evidence_ledger_entries", ["item_id"]
    )
    op.create_table(
        "evidence_ledger_nodes",
        sa.Column("level", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("index", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hash", sa.LargeBinary(length=32), nullable=False),
        sa.PrimaryKeyConstraint("level", "index", name=op.f("pk_evidence_ledger_nodes")),
        sqlite_with_rowid=False,
    )
    head = op.create_table(
        "evidence_ledger_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("frontier", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evidence_ledger_head")),
    )
    # The one row every appender locks; it exists from the start so no writer races to create it.
    op.bulk_insert(head, [{"id": 1, "size": 0, "frontier": b""}])
    op.create_table(
        "evidence_checkpoints",
        sa.Column("size", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("root", sa.LargeBinary(length=32), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("timestamp_token", sa.LargeBinary(), nullable=True),
        sa.Column("tsa_chain_pem", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("size", name=op.f("pk_evidence_checkpoints")),
    )
    op.create_table(
        "evidence_items",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("capture_seq", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("case_id", sa.String(length=100), nullable=True),
        sa.Column("platform", sa.String(length=50), nullable=True),
        sa.Column("chat_id", sa.String(length=100), nullable=True),
        sa.Column("message_id", sa.String(length=100), nullable=True),
        sa.Column("media_type", sa.String(length=200), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("sha512", sa.String(length=128), nullable=False),
        sa.Column("captured_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("connector", sa.String(length=100), nullable=False),
        sa.Column("operator", sa.String(length=200), nullable=False),
        sa.Column("trigger_kind", sa.String(length=20), nullable=False),
        sa.Column("master_key_id", sa.String(length=32), nullable=True),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=True),
        sa.Column("record_ciphertext", sa.LargeBinary(), nullable=True),
        sa.Column("blob_name", sa.String(length=200), nullable=False),
        sa.Column("deleted_seq", sa.BigInteger(), nullable=True),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evidence_items")),
        sa.UniqueConstraint("capture_seq", name=op.f("uq_evidence_items_capture_seq")),
    )
    op.create_index(op.f("ix_evidence_items_status"), "evidence_items", ["status"])
    op.create_index(op.f("ix_evidence_items_case_id"), "evidence_items", ["case_id"])
    op.create_index(op.f("ix_evidence_items_sha256"), "evidence_items", ["sha256"])
    op.create_index(
        "ix_evidence_items_message", "evidence_items", ["platform", "chat_id", "message_id"]
    )


def downgrade() -> None:
    op.drop_table("evidence_items")
    op.drop_table("evidence_checkpoints")
    op.drop_table("evidence_ledger_head")
    op.drop_table("evidence_ledger_nodes")
    op.drop_table("evidence_ledger_entries")
