"""Fixtures: a migrated database, the fake Bot API, a real hashing sink, a guard."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker

from redress.connectors.embedded import EmbeddedSink, pdq_of_image
from redress.connectors.telegram.bot import GroupGuard, GuardOptions
from redress.connectors.telegram.client import BotApiClient
from redress.connectors.telegram.ratelimit import SendLimiter
from redress.index import BruteForceIndex
from redress.store.db import make_engine
from redress.store.migrate import upgrade

from .fake_bot_api import FakeBotApi, jpeg

KNOWN_SEEDS = (1, 2, 3)  # images "protected" by a victim: in the bank


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def sessions(sqlite_url: str) -> Iterator[sessionmaker[Session]]:
    upgrade(sqlite_url)
    engine = make_engine(sqlite_url)
    try:
        yield sessionmaker(engine, expire_on_commit=False)
    finally:
        engine.dispose()


@pytest.fixture
def fake() -> FakeBotApi:
    return FakeBotApi()


@pytest.fixture
def sink(tmp_path: Path) -> EmbeddedSink:
    index = BruteForceIndex()
    labels = {}
    for seed in KNOWN_SEEDS:
        bits, _quality = pdq_of_image(jpeg(256, 256, seed))
        index.add(seed, [bits])
        labels[seed] = f"victim-bank/image-{seed}"
    return EmbeddedSink(index, labels, tmp_path / "evidence")


class Sleeps(list[float]):
    """Records requested sleeps instead of spending wall-clock time; moves a fake clock."""

    now = 1000.0

    def clock(self) -> float:
        return self.now

    async def __call__(self, seconds: float) -> None:
        self.append(seconds)
        self.now += seconds


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
async def http(fake: FakeBotApi) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=fake.app)) as client:
        yield client


@pytest.fixture
def api(http: httpx.AsyncClient, fake: FakeBotApi, sleeps: Sleeps) -> Iterator[BotApiClient]:
    limiter = SendLimiter(clock=sleeps.clock, sleep=sleeps)
    client = BotApiClient(http, fake.token, sleep=sleeps, limiter=limiter)
    yield client
    client.close()


@pytest.fixture
def guard(api: BotApiClient, sink: EmbeddedSink, sessions: sessionmaker[Session]) -> GroupGuard:
    return GroupGuard(
        api, sink, sessions, GuardOptions(portal_url="https://redress.example/protect")
    )
