"""API keys with scopes: created once (the token is shown once), stored as SHA-256,
revocable and expiring."""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import secrets
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from redress.errors import InvalidInputError, NotFoundError
from redress.pipeline.errors import AuthenticationError, ScopeError
from redress.pipeline.models import ApiKey

TOKEN_PREFIX = "rdk_"  # noqa: S105 - a public marker, not a secret


class Scope(enum.StrEnum):
    """What a key may do. ``admin`` includes every other scope."""

    SCAN = "scan"
    CURATE = "curate"
    REVIEW = "review"
    NOTICE = "notice"  # send notices (TAKE IT DOWN Act, DSA Art. 16)
    # A trusted flagger (DSA Art. 22): its notices jump the queue. Never implied by admin.
    TRUSTED_FLAGGER = "trusted_flagger"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """An API key as the rest of Redress sees it (never the token)."""

    id: int
    name: str
    prefix: str
    scopes: frozenset[Scope]
    webhook_secret: bytes
    created_at: dt.datetime
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None
    rate_per_second: float | None
    rate_burst: int | None

    def allows(self, scope: Scope) -> bool:
        """Whether this key carries ``scope`` (admin carries all)."""
        return scope in self.scopes or Scope.ADMIN in self.scopes


@dataclass(frozen=True, slots=True)
class CreatedKey:
    """A new key: ``token`` is shown to its owner once and never stored."""

    info: KeyInfo
    token: str


def token_sha256(token: str) -> str:
    """The stored form of a token."""
    return hashlib.sha256(token.encode()).hexdigest()


def parse_scopes(values: Iterable[str]) -> frozenset[Scope]:
    """Scopes from strings (comma- or space-separated allowed), with a clear error."""
    scopes: set[Scope] = set()
    for value in values:
        for part in value.replace(",", " ").split():
            try:
                scopes.add(Scope(part.strip().lower()))
            except ValueError as exc:
                known = ", ".join(s.value for s in Scope)
                raise InvalidInputError(
                    f"unknown scope {part!r}; known: {known}", code="bad_scope"
                ) from exc
    if not scopes:
        raise InvalidInputError("a key needs at least one scope", code="bad_scope")
    return frozenset(scopes)


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    # SQLite returns naive datetimes; every time Redress writes is UTC.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


def _info(row: ApiKey) -> KeyInfo:
    return KeyInfo(
        id=row.id,
        name=row.name,
        prefix=row.prefix,
        scopes=frozenset(Scope(s) for s in row.scopes.split()),
        webhook_secret=row.webhook_secret.encode(),
        created_at=_utc(row.created_at) or row.created_at,
        expires_at=_utc(row.expires_at),
        revoked_at=_utc(row.revoked_at),
        rate_per_second=row.rate_per_second,
        rate_burst=row.rate_burst,
    )


class ApiKeyStore:
    """All SQL about API keys. Only flushes; the caller commits."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, row: ApiKey) -> ApiKey:
        """Insert a key row."""
        self._session.add(row)
        self._session.flush()
        return row

    def by_digest(self, digest: str) -> ApiKey | None:
        """The key whose token hashes to ``digest``."""
        return self._session.scalars(select(ApiKey).where(ApiKey.token_sha256 == digest)).first()

    def by_prefix(self, prefix: str) -> ApiKey | None:
        """The key shown as ``prefix``."""
        return self._session.scalars(select(ApiKey).where(ApiKey.prefix == prefix)).first()

    def all(self) -> list[ApiKey]:
        """Every key, oldest first."""
        return list(self._session.scalars(select(ApiKey).order_by(ApiKey.id)))


class ApiKeyService:
    """Create, list, revoke and authenticate API keys."""

    def __init__(self, session: Session) -> None:
        self._store = ApiKeyStore(session)

    def create(
        self,
        name: str,
        scopes: frozenset[Scope],
        *,
        expires_in: dt.timedelta | None = None,
        rate_per_second: float | None = None,
        rate_burst: int | None = None,
        now: dt.datetime | None = None,
    ) -> CreatedKey:
        """Make a key; the returned token is the only time it is visible."""
        if not scopes:
            raise InvalidInputError("a key needs at least one scope", code="bad_scope")
        if rate_per_second is not None and rate_per_second <= 0:
            raise InvalidInputError("rate limit must be positive", code="invalid_input")
        created = now or dt.datetime.now(dt.UTC)
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        row = self._store.add(
            ApiKey(
                name=name,
                prefix=token[:12],
                token_sha256=token_sha256(token),
                scopes=" ".join(sorted(s.value for s in scopes)),
                webhook_secret=secrets.token_hex(32),
                created_at=created,
                expires_at=created + expires_in if expires_in is not None else None,
                revoked_at=None,
                rate_per_second=rate_per_second,
                rate_burst=rate_burst,
            )
        )
        return CreatedKey(info=_info(row), token=token)

    def list(self) -> list[KeyInfo]:
        """Every key (without tokens)."""
        return [_info(row) for row in self._store.all()]

    def revoke(self, prefix: str, *, now: dt.datetime | None = None) -> KeyInfo:
        """Revoke the key shown as ``prefix``; it stops working at once."""
        row = self._store.by_prefix(prefix)
        if row is None:
            raise NotFoundError(f"no API key {prefix!r}", code="key_not_found")
        if row.revoked_at is None:
            row.revoked_at = now or dt.datetime.now(dt.UTC)
        return _info(row)

    def authenticate(self, token: str | None, *, now: dt.datetime | None = None) -> KeyInfo:
        """The key for a presented token; :class:`AuthenticationError` if it is missing,
        unknown, revoked or expired."""
        if not token:
            raise AuthenticationError("an API key is required: Authorization: Bearer <key>")
        row = self._store.by_digest(token_sha256(token))
        if row is None:
            raise AuthenticationError("unknown API key", code="bad_api_key")
        info = _info(row)
        current = now or dt.datetime.now(dt.UTC)
        if info.revoked_at is not None:
            raise AuthenticationError("this API key was revoked", code="api_key_revoked")
        if info.expires_at is not None and info.expires_at <= current:
            raise AuthenticationError("this API key has expired", code="api_key_expired")
        return info


def require_scope(key: KeyInfo, scope: Scope, *others: Scope) -> None:
    """Raise :class:`ScopeError` unless ``key`` carries ``scope`` or one of ``others``."""
    wanted = (scope, *others)
    if not any(key.allows(s) for s in wanted):
        names = " or ".join(repr(s.value) for s in wanted)
        raise ScopeError(f"this API key lacks the {names} scope")


class VerifiedKeys:
    """Keys verified in the last ``ttl`` seconds, so that a busy client costs no database
    read per request. A revocation takes effect within ``ttl`` (0 disables the cache);
    expiry is checked on every use."""

    def __init__(self, ttl: float, max_size: int = 10_000) -> None:
        self.ttl = ttl
        self.max_size = max_size
        self._keys: dict[str, tuple[KeyInfo, float]] = {}
        self._lock = threading.Lock()

    def get(self, token: str | None, *, now: dt.datetime | None = None) -> KeyInfo | None:
        """The cached key for ``token``, or None (not cached, stale or expired)."""
        if not token or self.ttl <= 0:
            return None
        digest = token_sha256(token)
        with self._lock:
            cached = self._keys.get(digest)
        if cached is None or cached[1] < time.monotonic():
            return None
        info = cached[0]
        current = now or dt.datetime.now(dt.UTC)
        if info.expires_at is not None and info.expires_at <= current:
            return None
        return info

    def put(self, token: str, info: KeyInfo) -> None:
        """Remember a key just verified against the database."""
        if self.ttl <= 0:
            return
        with self._lock:
            if len(self._keys) >= self.max_size:
                self._keys.clear()
            self._keys[token_sha256(token)] = (info, time.monotonic() + self.ttl)
