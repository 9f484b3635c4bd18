"""API keys: shown once, stored hashed, scoped, revocable, expiring (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from redress.errors import InvalidInputError, NotFoundError
from redress.pipeline.errors import AuthenticationError, ScopeError
from redress.pipeline.keys import ApiKeyService, Scope, parse_scopes, require_scope
from redress.pipeline.models import ApiKey
from redress.store.db import make_engine
from redress.store.migrate import upgrade


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    upgrade(database_url)
    eng = make_engine(database_url)
    yield eng
    eng.dispose()


def test_token_is_shown_once_and_stored_only_as_a_digest(engine: Engine) -> None:
    with Session(engine) as session, session.begin():
        created = ApiKeyService(session).create("platform", frozenset({Scope.SCAN}))
    with Session(engine) as session:
        stored = session.scalars(select(ApiKey)).one()
        assert created.token.startswith("rdk_")
        assert created.token not in (stored.token_sha256, stored.prefix, stored.name)
        assert len(stored.token_sha256) == 64
        assert ApiKeyService(session).authenticate(created.token).name == "platform"


def test_wrong_revoked_and_expired_keys_are_refused(engine: Engine) -> None:
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    with Session(engine) as session, session.begin():
        service = ApiKeyService(session)
        short = service.create(
            "short", frozenset({Scope.SCAN}), expires_in=dt.timedelta(days=1), now=now
        )
        revoked = service.create("gone", frozenset({Scope.SCAN}), now=now)
        service.revoke(revoked.info.prefix, now=now)
    with Session(engine) as session:
        service = ApiKeyService(session)
        assert service.authenticate(short.token, now=now + dt.timedelta(hours=23)).name == "short"
        codes = []
        for token, at in [
            (None, now),
            ("rdk_not-a-key", now),
            (short.token, now + dt.timedelta(days=1)),
            (revoked.token, now),
        ]:
            with pytest.raises(AuthenticationError) as err:
                service.authenticate(token, now=at)
            assert err.value.status_code == 401
            codes.append(err.value.code)
        assert codes == ["unauthenticated", "bad_api_key", "api_key_expired", "api_key_revoked"]


def test_scopes(engine: Engine) -> None:
    with Session(engine) as session, session.begin():
        service = ApiKeyService(session)
        scan = service.create("s", frozenset({Scope.SCAN})).info
        admin = service.create("a", frozenset({Scope.ADMIN})).info
    require_scope(scan, Scope.SCAN)
    with pytest.raises(ScopeError):
        require_scope(scan, Scope.CURATE)
    for scope in Scope:
        require_scope(admin, scope)


def test_parse_scopes() -> None:
    assert parse_scopes(["scan,review", "curate"]) == {Scope.SCAN, Scope.REVIEW, Scope.CURATE}
    with pytest.raises(InvalidInputError, match="unknown scope 'root'"):
        parse_scopes(["root"])
    with pytest.raises(InvalidInputError, match="at least one scope"):
        parse_scopes([""])


def test_revoking_an_unknown_key(engine: Engine) -> None:
    with Session(engine) as session, pytest.raises(NotFoundError):
        ApiKeyService(session).revoke("rdk_nothing")


def test_list_shows_no_tokens(engine: Engine) -> None:
    with Session(engine) as session, session.begin():
        ApiKeyService(session).create("one", frozenset({Scope.REVIEW}), rate_per_second=5)
    with Session(engine) as session:
        (info,) = ApiKeyService(session).list()
    assert info.scopes == {Scope.REVIEW}
    assert info.rate_per_second == 5
    assert not hasattr(info, "token")


def test_verified_keys_cache_and_its_limits(engine: Engine) -> None:
    from redress.pipeline.keys import VerifiedKeys

    now = dt.datetime.now(dt.UTC)
    with Session(engine) as session, session.begin():
        created = ApiKeyService(session).create(
            "c", frozenset({Scope.SCAN}), expires_in=dt.timedelta(hours=1), now=now
        )
    cache = VerifiedKeys(ttl=60)
    assert cache.get(created.token) is None
    cache.put(created.token, created.info)
    assert cache.get(created.token) == created.info
    assert cache.get("rdk_other") is None
    # Expiry is checked on every use, cached or not.
    assert cache.get(created.token, now=now + dt.timedelta(hours=2)) is None
    disabled = VerifiedKeys(ttl=0)
    disabled.put(created.token, created.info)
    assert disabled.get(created.token) is None
