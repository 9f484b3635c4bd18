"""Fixtures shared by every domain's tests.

Real services only: SQLite files in a temporary folder, and the PostgreSQL and
Redis servers named by ``REDRESS_TEST_POSTGRES_URL`` / ``REDRESS_TEST_REDIS_URL``
(default: the local ones). When a server is absent its tests skip with the
reason, unless ``REDRESS_REQUIRE_SERVICES=1`` (set by .ci/run), which turns
those skips into failures.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
POSTGRES_ADMIN_URL = os.environ.get(
    "REDRESS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("REDRESS_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
REQUIRE_SERVICES = os.environ.get("REDRESS_REQUIRE_SERVICES") == "1"


def _service_missing(reason: str) -> None:
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (REDRESS_REQUIRE_SERVICES=1 forbids skipping)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``: Meta's reference media and hashes (never copied into the repo)."""
    path = Path(os.environ.get("REDRESS_SHARED_DATA", REPO.parent / "shared" / "data"))
    if not path.is_dir():
        _service_missing(f"reference data not found at {path}; set REDRESS_SHARED_DATA")
    return path


@pytest.fixture
def redress_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh REDRESS_HOME for one test, with every other REDRESS_ variable cleared."""
    for name in list(os.environ):
        if name.startswith("REDRESS_") and not name.startswith(("REDRESS_TEST_", "REDRESS_REQ")):
            monkeypatch.delenv(name)
    home = tmp_path / "home"
    monkeypatch.setenv("REDRESS_HOME", str(home))
    return home


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """URL of a new, empty SQLite database file."""
    return f"sqlite:///{tmp_path / 'redress.db'}"


@pytest.fixture(scope="session")
def _postgres_template() -> Iterator[str | None]:
    """A PostgreSQL database migrated to head once per test run (None without a server).

    ``CREATE DATABASE ... TEMPLATE`` copies it in a fraction of the time Alembic takes
    to build the schema again, and every migrating test found a fresh database
    this way; the migrations themselves are tested from empty databases
    (``@pytest.mark.unmigrated``), up and down.
    """
    sqlalchemy = pytest.importorskip("sqlalchemy")
    admin = sqlalchemy.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"redress_template_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except sqlalchemy.exc.OperationalError:
        admin.dispose()
        yield None  # each test that asks for PostgreSQL reports the missing server
        return
    from redress.store.migrate import upgrade

    try:
        upgrade(f"{POSTGRES_ADMIN_URL.rsplit('/', 1)[0]}/{name}")
        yield name
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture
def postgres_url(request: pytest.FixtureRequest, _postgres_template: str | None) -> Iterator[str]:
    """URL of a throwaway PostgreSQL database, dropped afterwards: migrated to head,
    or empty for a test marked ``unmigrated``."""
    sqlalchemy = pytest.importorskip("sqlalchemy")
    admin = sqlalchemy.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"redress_test_{uuid.uuid4().hex[:12]}"
    empty = request.node.get_closest_marker("unmigrated") is not None
    template = "" if empty or _postgres_template is None else f' TEMPLATE "{_postgres_template}"'
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"{template}')
    except sqlalchemy.exc.OperationalError as exc:
        admin.dispose()
        _service_missing(f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL}: {exc.orig}")
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each store test runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'redress.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def redis_url() -> Iterator[str]:
    """URL of the test Redis database (flushed before and after)."""
    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.exceptions.ConnectionError as exc:
        _service_missing(f"Redis not reachable at {REDIS_URL}: {exc}")
    client.flushdb()
    try:
        yield REDIS_URL
    finally:
        client.flushdb()
        client.close()
