"""Fixtures: a migrated database with banks, the fake Bot API, the pipeline's sink, a guard."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker

from redress.config import Settings
from redress.connectors.sink import PipelineSink, handoff_actioners
from redress.connectors.telegram.bot import GroupGuard, GuardOptions
from redress.connectors.telegram.client import BotApiClient
from redress.connectors.telegram.ratelimit import SendLimiter
from redress.pipeline.container import PipelineContainer, PipelineParts, build_pipeline
from redress.signals import HashOptions, hash_bytes
from redress.store.db import make_engine
from redress.store.interfaces import BankPurpose
from redress.store.media import entries_for_signals
from redress.store.migrate import upgrade
from redress.store.service import BankService

from .fake_bot_api import FakeBotApi, jpeg

KNOWN_SEEDS = (1, 2, 3)  # images moderators confirmed: in the bank "victim-bank"
BAN_SEED = 7  # in "ban-bank", whose policy also restricts (bans) the sender
POLICY = """
[banks.ban-bank]
actions = ["delete_message", "restrict_user"]
"""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def settings(sqlite_url: str, tmp_path: Path) -> Settings:
    policy = tmp_path / "policy.toml"
    policy.write_text(POLICY, encoding="utf-8")
    return Settings(home=tmp_path / "home", database_url=sqlite_url, policy_path=policy)


@pytest.fixture
def sessions(settings: Settings) -> Iterator[sessionmaker[Session]]:
    url = settings.effective_database_url
    upgrade(url)
    engine = make_engine(url)
    try:
        yield sessionmaker(engine, expire_on_commit=False)
    finally:
        engine.dispose()


def make_banks(sessions: sessionmaker[Session], settings: Settings) -> None:
    """The banks the tests match against, created through the store."""
    options = HashOptions.from_settings(settings)
    with sessions.begin() as session:
        banks = BankService(session)
        banks.create("victim-bank", BankPurpose.CONFIRMED_VIOLATIONS)
        for seed in KNOWN_SEEDS:
            banks.add("victim-bank", entries_for_signals(hash_bytes(jpeg(256, 256, seed), options)))
        banks.create("ban-bank", BankPurpose.CONFIRMED_VIOLATIONS)
        banks.add("ban-bank", entries_for_signals(hash_bytes(jpeg(256, 256, BAN_SEED), options)))


@pytest.fixture
def pipeline(settings: Settings, sessions: sessionmaker[Session]) -> Iterator[PipelineContainer]:
    make_banks(sessions, settings)
    container = build_pipeline(
        settings, PipelineParts(actioners=handoff_actioners("telegram")), embedded_queue=False
    )
    try:
        yield container
    finally:
        container.close()


@pytest.fixture
def fake() -> FakeBotApi:
    return FakeBotApi()


@pytest.fixture
def sink(pipeline: PipelineContainer) -> Iterator[PipelineSink]:
    sink = PipelineSink(pipeline, source="telegram", connector="telegram-bot")
    yield sink
    sink.close()


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
def guard(api: BotApiClient, sink: PipelineSink, sessions: sessionmaker[Session]) -> GroupGuard:
    return GroupGuard(
        api, sink, sessions, GuardOptions(portal_url="https://redress.example/protect")
    )
