"""Victim portal: wrong-PIN lock-out per case.

Revision ID: b7c3d9e1f402
Revises: 5a1e0c7d9b21
Create Date: 2026-11-25 02:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "b7c3d9e1f402"
down_revision = "5a1e0c7d9b21"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "portal_pin_lock",
        sa.Column(
            "case_id",
            sa.Integer(),
            sa.ForeignKey("victim_case.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_failure_at", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("portal_pin_lock")
