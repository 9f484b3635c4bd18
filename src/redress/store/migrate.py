"""Run Alembic migrations programmatically (the CLI, tests and the app factory use this)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(url: str) -> Config:
    """An Alembic config pointing at the packaged migrations and ``url``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.set_main_option(
        "file_template",
        "%%(year)d_%%(month).2d_%%(day).2d_%%(hour).2d%%(minute).2d-%%(rev)s_%%(slug)s",
    )
    return config


def upgrade(url: str, revision: str = "heads") -> None:
    """Bring the database at ``url`` up to ``revision`` (default: the newest)."""
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str = "base") -> None:
    """Take the database at ``url`` down to ``revision`` (default: empty)."""
    command.downgrade(alembic_config(url), revision)


def current(url: str) -> tuple[str, ...]:
    """The revisions the database at ``url`` is at (empty when it has no schema)."""
    from alembic.runtime.migration import MigrationContext

    from redress.store.db import make_engine

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return tuple(sorted(MigrationContext.configure(conn).get_current_heads()))
    finally:
        engine.dispose()


def heads() -> tuple[str, ...]:
    """The newest revisions this version of Redress ships."""
    from alembic.script import ScriptDirectory

    return tuple(sorted(ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads()))


def ensure_schema(url: str) -> None:
    """Make sure the schema is current before a command touches the database.

    The embedded SQLite database is upgraded automatically (one admin, one
    file, nothing else to coordinate). PostgreSQL is shared by many
    processes, so Redress never migrates it behind an operator's back: it
    raises :class:`~redress.store.errors.DatabaseNotReadyError` asking for
    ``redress db upgrade``.
    """
    from redress.store.errors import DatabaseNotReadyError

    if current(url) == heads():
        return
    if url.startswith("sqlite"):
        upgrade(url)
        return
    raise DatabaseNotReadyError(
        "the PostgreSQL schema is missing or older than this Redress; run `redress db upgrade`"
    )
