"""Helpers of the API tests: a running app with a client, keys, banks and hashes."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI

from redress.config import Settings
from redress.pipeline.container import PipelineParts
from redress.pipeline.keys import ApiKeyService, Scope
from redress.pipeline.matching import StoreMatcher
from redress.signals.types import PdqHash, SignalKind
from redress.store.interfaces import BankPurpose, EntryIn
from redress.store.service import BankService
from redress.web.app import AppState, create_app


@dataclass
class Api:
    """A running app and a client for it."""

    app: FastAPI
    client: httpx.AsyncClient

    @property
    def state(self) -> AppState:
        state: AppState = self.app.state.redress
        return state

    def key(self, *scopes: Scope, name: str = "platform", **options: Any) -> str:
        with self.state.pipeline.sessions.begin() as session:
            created = ApiKeyService(session).create(
                name, frozenset(scopes or {Scope.SCAN}), **options
            )
        return created.token

    def auth(self, *scopes: Scope, **options: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key(*scopes, **options)}"}

    def bank(self, name: str, purpose: BankPurpose, entries: Sequence[EntryIn]) -> None:
        with self.state.pipeline.sessions.begin() as session:
            service = BankService(session)
            service.create(name, purpose)
            service.add(name, entries)
        matcher = self.state.pipeline.service.matcher
        assert isinstance(matcher, StoreMatcher)
        matcher.follower.poll()  # see the new entries now rather than within 0.2 s

    def expire_key(self, token: str) -> None:
        from redress.pipeline.keys import token_sha256
        from redress.pipeline.models import ApiKey

        with self.state.pipeline.sessions.begin() as session:
            row = session.query(ApiKey).filter_by(token_sha256=token_sha256(token)).one()
            row.expires_at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)


@asynccontextmanager
async def serving(settings: Settings, parts: PipelineParts | None = None) -> AsyncIterator[Api]:
    app = create_app(settings, parts)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://redress.test") as client:
            yield Api(app, client)


def pdq_entry(bits: bytes) -> EntryIn:
    return EntryIn(kind=SignalKind.PDQ, value=bits, quality=100)


def flip(bits: bytes, count: int) -> bytes:
    """``bits`` with its first ``count`` bits inverted (a hash ``count`` bits away)."""
    value = int.from_bytes(bits, "big") ^ (((1 << count) - 1) << (256 - count))
    return value.to_bytes(32, "big")


VICTIM_HASH = PdqHash(bytes(range(32)))
CONFIRMED_HASH = PdqHash(bytes(range(100, 132)))
