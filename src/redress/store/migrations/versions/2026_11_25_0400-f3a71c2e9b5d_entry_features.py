"""store: local features of bank entries banked from pixels (verification of near misses)

Revision ID: f3a71c2e9b5d
Revises: d5a7c0de1010
Create Date: 2026-11-25 04:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "f3a71c2e9b5d"
down_revision = "d5a7c0de1010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "entry_feature",
        sa.Column(
            "entry_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            sa.ForeignKey("bank_entry.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("entry_feature")
