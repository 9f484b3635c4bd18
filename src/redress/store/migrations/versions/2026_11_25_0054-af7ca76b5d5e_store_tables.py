"""Store tables: banks, entries, victim cases, seen media, matches, audit log, change log.

Revision ID: af7ca76b5d5e
Revises:
Create Date: 2026-11-25 00:54:29.783574
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "af7ca76b5d5e"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("store",)
depends_on: str | Sequence[str] | None = None


# The audit log is append-only: the database itself refuses UPDATE and DELETE.
_PG_FUNCTION = """
CREATE FUNCTION audit_event_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit_event is append-only';
END;
$$ LANGUAGE plpgsql
"""


def _append_only_up() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_FUNCTION)
        op.execute(
            "CREATE TRIGGER audit_event_append_only BEFORE UPDATE OR DELETE ON audit_event "
            "FOR EACH ROW EXECUTE FUNCTION audit_event_append_only()"
        )
    else:
        for event in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_event_no_{event.lower()} BEFORE {event} ON audit_event "
                "BEGIN SELECT RAISE(ABORT, 'audit_event is append-only'); END"
            )


def _append_only_down() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_event_append_only ON audit_event")
        op.execute("DROP FUNCTION IF EXISTS audit_event_append_only()")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_event_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_event_no_delete")


def upgrade() -> None:
    op.create_table(
        "audit_event",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=200), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_event")),
    )
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_event_action"), ["action"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_event_at"), ["at"], unique=False)

    op.create_table(
        "bank",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("pdq_threshold", sa.SmallInteger(), nullable=False),
        sa.Column("outcome_policy", sa.String(length=100), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("disabled_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bank")),
        sa.UniqueConstraint("name", name=op.f("uq_bank_name")),
    )
    op.create_table(
        "index_change",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("op", sa.String(length=8), nullable=False),
        sa.Column("entry_id", sa.BigInteger(), nullable=True),
        sa.Column("entry_id_end", sa.BigInteger(), nullable=True),
        sa.Column("bank_id", sa.Integer(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_index_change")),
    )
    op.create_table(
        "seen_item",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("item_key", sa.String(length=80), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("sha256", sa.LargeBinary(), nullable=True),
        sa.Column("md5", sa.LargeBinary(), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("media_type", sa.String(length=100), nullable=True),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_seen_item")),
        sa.UniqueConstraint("item_key", name=op.f("uq_seen_item_item_key")),
    )
    with op.batch_alter_table("seen_item", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_seen_item_md5"), ["md5"], unique=False)
        batch_op.create_index(batch_op.f("ix_seen_item_sha256"), ["sha256"], unique=False)

    op.create_table(
        "bank_entry",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("bank_id", sa.Integer(), nullable=False),
        sa.Column("signal_type", sa.String(length=16), nullable=False),
        sa.Column("value", sa.LargeBinary(), nullable=False),
        sa.Column("quality", sa.SmallInteger(), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("external_id", sa.String(length=200), nullable=True),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bank_entry")),
        sa.UniqueConstraint(
            "signal_type", "value", "bank_id", name=op.f("uq_bank_entry_signal_type_value_bank_id")
        ),
    )
    op.create_table(
        "import_checkpoint",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("bank_id", sa.Integer(), nullable=False),
        sa.Column("file_digest", sa.String(length=64), nullable=False),
        sa.Column("format", sa.String(length=16), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("counters", sa.JSON(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["bank_id"],
            ["bank.id"],
            name=op.f("fk_import_checkpoint_bank_id_bank"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_checkpoint")),
        sa.UniqueConstraint(
            "bank_id",
            "file_digest",
            "format",
            name=op.f("uq_import_checkpoint_bank_id_file_digest_format"),
        ),
    )
    op.create_table(
        "seen_hash",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("item_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("role", sa.String(length=8), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("value", sa.LargeBinary(), nullable=False),
        sa.Column("quality", sa.SmallInteger(), nullable=False),
        sa.Column("ts", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["seen_item.id"],
            name=op.f("fk_seen_hash_item_id_seen_item"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_seen_hash")),
    )
    with op.batch_alter_table("seen_hash", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_seen_hash_item_id"), ["item_id"], unique=False)

    op.create_table(
        "sighting",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("item_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("platform", sa.String(length=50), nullable=True),
        sa.Column("chat", sa.String(length=200), nullable=True),
        sa.Column("message_id", sa.String(length=100), nullable=True),
        sa.Column("sender", sa.String(length=200), nullable=True),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["seen_item.id"],
            name=op.f("fk_sighting_item_id_seen_item"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sighting")),
    )
    with op.batch_alter_table("sighting", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sighting_item_id"), ["item_id"], unique=False)

    op.create_table(
        "victim_case",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_number", sa.String(length=32), nullable=False),
        sa.Column("pin_hash", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("locale", sa.String(length=16), nullable=False),
        sa.Column("contact", sa.String(length=300), nullable=True),
        sa.Column("bank_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["bank_id"], ["bank.id"], name=op.f("fk_victim_case_bank_id_bank")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_victim_case")),
        sa.UniqueConstraint("case_number", name=op.f("uq_victim_case_case_number")),
    )
    op.create_table(
        "case_entry",
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("entry_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["victim_case.id"],
            name=op.f("fk_case_entry_case_id_victim_case"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["bank_entry.id"],
            name=op.f("fk_case_entry_entry_id_bank_entry"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("case_id", "entry_id", name=op.f("pk_case_entry")),
    )
    with op.batch_alter_table("case_entry", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_case_entry_entry_id"), ["entry_id"], unique=False)

    op.create_table(
        "entry_hash",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("entry_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("value", sa.LargeBinary(), nullable=False),
        sa.Column("quality", sa.SmallInteger(), nullable=False),
        sa.Column("ts", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["bank_entry.id"],
            name=op.f("fk_entry_hash_entry_id_bank_entry"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_entry_hash")),
    )
    with op.batch_alter_table("entry_hash", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_entry_hash_entry_id"), ["entry_id"], unique=False)

    op.create_table(
        "match",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("item_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("entry_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("signal_type", sa.String(length=16), nullable=False),
        sa.Column("distance", sa.SmallInteger(), nullable=False),
        sa.Column("query_share", sa.Float(), nullable=True),
        sa.Column("retroactive", sa.Boolean(), nullable=False),
        sa.Column("matched_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["bank_entry.id"],
            name=op.f("fk_match_entry_id_bank_entry"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["seen_item.id"],
            name=op.f("fk_match_item_id_seen_item"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_match")),
        sa.UniqueConstraint("item_id", "entry_id", name=op.f("uq_match_item_id_entry_id")),
    )
    with op.batch_alter_table("match", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_match_entry_id"), ["entry_id"], unique=False)
    _append_only_up()


def downgrade() -> None:
    _append_only_down()
    with op.batch_alter_table("match", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_match_entry_id"))

    op.drop_table("match")
    with op.batch_alter_table("entry_hash", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_entry_hash_entry_id"))

    op.drop_table("entry_hash")
    with op.batch_alter_table("case_entry", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_case_entry_entry_id"))

    op.drop_table("case_entry")
    op.drop_table("victim_case")
    with op.batch_alter_table("sighting", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sighting_item_id"))

    op.drop_table("sighting")
    with op.batch_alter_table("seen_hash", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_seen_hash_item_id"))

    op.drop_table("seen_hash")
    op.drop_table("import_checkpoint")
    op.drop_table("bank_entry")
    with op.batch_alter_table("seen_item", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_seen_item_sha256"))
        batch_op.drop_index(batch_op.f("ix_seen_item_md5"))

    op.drop_table("seen_item")
    op.drop_table("index_change")
    op.drop_table("bank")
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_event_at"))
        batch_op.drop_index(batch_op.f("ix_audit_event_action"))

    op.drop_table("audit_event")
