"""Helpers of the hardening tests: a running app with API keys of every kind and
console users of every role, and the principals the authorisation matrix walks."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from argon2 import PasswordHasher
from fastapi import FastAPI

from redress.config import Settings
from redress.pipeline.keys import ApiKeyService, Scope, token_sha256
from redress.pipeline.models import ApiKey
from redress.review.interfaces import Role
from redress.review.service import ReviewConfig, ReviewService
from redress.review.store import ReviewStore
from redress.signals.types import SignalKind
from redress.store.interfaces import EntryIn
from redress.store.service import CaseService
from redress.web.app import AppState, create_app

PASSWORD = "correct horse battery staple"
# Cheap argon2 parameters keep the tests quick; production uses the library defaults.
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
VICTIM = bytes(range(32))


@dataclass(frozen=True)
class Principal:
    """Who sends a request: an API key, a console session, or nobody."""

    name: str
    token: str | None = None  # an API key
    role: Role | None = None  # a console user's role
    csrf: bool = True  # whether the console principal sends its CSRF token


@dataclass
class Site:
    """A running app, its state, a victim's case (number and PIN) and a client."""

    app: FastAPI
    client: httpx.AsyncClient
    case_number: str
    pin: str
    principals: list[Principal] = field(default_factory=list)

    @property
    def state(self) -> AppState:
        state: AppState = self.app.state.redress
        return state

    def key(self, *scopes: Scope, name: str = "platform") -> str:
        with self.state.pipeline.sessions.begin() as session:
            return ApiKeyService(session).create(name, frozenset(scopes)).token

    def revoke(self, token: str) -> None:
        with self.state.pipeline.sessions.begin() as session:
            service = ApiKeyService(session)
            prefix = next(k.prefix for k in service.list() if token.startswith(k.prefix))
            service.revoke(prefix)

    def expire(self, token: str) -> None:
        with self.state.pipeline.sessions.begin() as session:
            row = session.query(ApiKey).filter_by(token_sha256=token_sha256(token)).one()
            row.expires_at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)

    def review_service(self, session: object) -> ReviewService:
        return ReviewService(
            ReviewStore(session),  # type: ignore[arg-type]
            ReviewConfig.from_settings(self.state.settings),
            passwords=FAST_HASHER,
        )

    def user(self, role: Role) -> str:
        email = f"{role.value}@example.org"
        cases = (self.case_number,) if role is Role.ADVOCATE else ()
        with self.state.pipeline.sessions.begin() as session:
            self.review_service(session).create_user(email, role, PASSWORD, cases=cases)
        return email

    def session_of(self, role: Role) -> tuple[str, str]:
        """A fresh console session for the role's user: (cookie token, CSRF token)."""
        with self.state.pipeline.sessions.begin() as session:
            result = self.review_service(session).login(f"{role.value}@example.org", PASSWORD)
        return result.token, result.viewer.csrf_token


@asynccontextmanager
async def running_site(settings: Settings) -> AsyncIterator[Site]:
    """The whole app, in-process, with a victim's case already open."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        state: AppState = app.state.redress
        with state.pipeline.sessions.begin() as session:
            created = CaseService(session).create(
                [EntryIn(kind=SignalKind.PDQ, value=VICTIM, quality=100)], contact="v@example.org"
            )
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://redress.test") as client:
            yield Site(app, client, created.case.case_number, created.pin)


def fast_settings(home: object, database_url: str, **extra: object) -> Settings:
    """Settings for one test: one pipeline thread, rate limits out of the way."""
    values: dict[str, object] = {
        "home": home,
        "database_url": database_url,
        "pipeline_threads": 1,
        "queue_size": 20,
        "api_rate_per_second": 10_000.0,
        "api_rate_burst": 10_000,
        "portal_case_burst": 1_000,
    }
    values.update(extra)
    return Settings(**values)  # type: ignore[arg-type]


class Served:
    """The app with its lifespan running on a private event loop, answered in-process
    through a synchronous facade (hypothesis drives plain functions)."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.runner = asyncio.Runner()
        self.stack = AsyncExitStack()
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://redress.test"
        )
        self.runner.run(self._start())

    async def _start(self) -> None:
        await self.stack.enter_async_context(self.app.router.lifespan_context(self.app))
        await self.stack.enter_async_context(self.client)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.runner.run(self.client.post(path, **kwargs))

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.runner.run(self.client.request(method, path, **kwargs))

    def close(self) -> None:
        self.runner.run(self.stack.aclose())
        self.runner.close()
