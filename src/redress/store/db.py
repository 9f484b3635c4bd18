"""Engine construction and the declarative base all domain tables share.

SQLite is the embedded default (WAL, foreign keys on, a busy timeout so two
processes can share the file); PostgreSQL is the scale-out store. Stores only
``flush()``: the edge (CLI command, request, worker task) owns the transaction.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
from contextlib import AbstractContextManager
from pathlib import Path
from types import TracebackType
from typing import Any

from sqlalchemy import Engine, MetaData, create_engine, event
from sqlalchemy.orm import DeclarativeBase

from redress.errors import ConfigurationError

# Stable constraint names so that Alembic migrations are reproducible on both backends.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of every Redress table."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class _NoResultRows(logging.Filter):
    """Drops SQLAlchemy's DEBUG records of result rows: rows hold hashes, contact details
    and PIN digests, and logs are not the place for them."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (isinstance(record.msg, str) and record.msg.startswith("Row "))


def _hide_result_rows() -> None:
    # Idempotent: one filter on SQLAlchemy's engine logger, whatever the log level.
    logger = logging.getLogger("sqlalchemy.engine.Engine")
    if not any(isinstance(f, _NoResultRows) for f in logger.filters):
        logger.addFilter(_NoResultRows())


class SqliteWriteGate:
    """Lets one write transaction at a time into a SQLite file, across threads and
    processes: a re-entrant thread lock, then an exclusive ``flock`` on a file beside
    the database (``<file>-writes``) for the outermost holder.

    SQLite serialises writers itself, but a writer that finds the file locked sleeps
    in its busy handler (1-100 ms steps) and is not queued; waiting on the gate
    instead wakes the next writer as soon as the last one commits. Several
    ``redress serve`` processes on one file take turns this way.
    """

    def __init__(self, lock_path: Path) -> None:
        self.lock_path = lock_path
        self._thread_lock = threading.RLock()
        self._depth = 0
        self._fd: int | None = None

    def __enter__(self) -> SqliteWriteGate:
        self._thread_lock.acquire()
        if self._depth == 0:
            try:
                if self._fd is None:
                    self._fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
                fcntl.flock(self._fd, fcntl.LOCK_EX)  # releases the GIL while it waits
            except BaseException:
                self._thread_lock.release()
                raise
        self._depth += 1
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._depth -= 1
        if self._depth == 0 and self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._thread_lock.release()

    def close(self) -> None:
        """Close the lock file (after the last write; the gate opens it again if used)."""
        with self._thread_lock:
            if self._fd is not None and self._depth == 0:
                os.close(self._fd)
                self._fd = None


def write_gate(engine: Engine) -> AbstractContextManager[Any]:
    """What to hold around each write transaction on ``engine``: a
    :class:`SqliteWriteGate` for a SQLite file, a thread lock for an in-memory SQLite
    database, nothing on PostgreSQL (its row locks are enough)."""
    if engine.dialect.name != "sqlite":
        return contextlib.nullcontext()
    database = engine.url.database
    if not database or database == ":memory:":
        return threading.RLock()
    return SqliteWriteGate(Path(database).expanduser().with_name(Path(database).name + "-writes"))


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine for ``url`` with Redress's per-backend settings.

    For a SQLite file the parent directory is created. Unknown schemes raise
    :class:`ConfigurationError` rather than a driver traceback. Statement
    parameters (hashes, contact details, PIN digests) are never written to logs
    or into error messages, even with SQL logging on.
    """
    kwargs.setdefault("hide_parameters", True)
    _hide_result_rows()
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[1] if ":///" in url else ""
        if path and path != ":memory:":
            Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if url.startswith("postgresql"):
        return create_engine(url, pool_pre_ping=True, **kwargs)
    raise ConfigurationError(
        f"unsupported database URL scheme in {url.split(':', 1)[0]!r}; "
        "use sqlite:///PATH or postgresql+psycopg://..."
    )
