"""pipeline: the evidence item captured for a scan item

Revision ID: b7e2f4c1d0a9
Revises: c0ffee8a0008
Create Date: 2026-11-25 02:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "b7e2f4c1d0a9"
down_revision = "c0ffee8a0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("scan_items") as batch:
        batch.add_column(sa.Column("evidence_item_id", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("scan_items") as batch:
        batch.drop_column("evidence_item_id")
