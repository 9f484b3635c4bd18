"""The Bot API client: envelope, error translation, retries, limits, token hygiene."""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest

from redress.connectors.telegram.client import BotApiClient, RetryPolicy, TelegramFile
from redress.connectors.telegram.errors import (
    BotApiBadRequestError,
    BotApiForbiddenError,
    BotApiNetworkError,
    BotApiUnauthorizedError,
    FileTooBigError,
    MalformedUpdateError,
    RateLimitedError,
)
from redress.connectors.telegram.ratelimit import SendLimiter, SendLimits

from .conftest import Sleeps
from .fake_bot_api import FakeBotApi, chat, jpeg, user

pytestmark = pytest.mark.anyio
GROUP = chat(-1002222222222, "G")


class FlakyTransport(httpx.AsyncBaseTransport):
    """Fails the first ``failures`` requests with a connection error, then passes through."""

    def __init__(self, inner: httpx.AsyncBaseTransport, failures: int) -> None:
        self.inner = inner
        self.failures = failures
        self.attempts = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise httpx.ConnectError(f"connection refused to {request.url}", request=request)
        return await self.inner.handle_async_request(request)


async def test_result_is_unwrapped_from_the_envelope(api: BotApiClient, fake: FakeBotApi) -> None:
    me = await api.get_me()
    assert me["username"] == "redress_guard_bot"
    assert me["is_bot"] is True


async def test_errors_are_translated_with_code_and_description(
    api: BotApiClient, fake: FakeBotApi
) -> None:
    fake.add_chat(GROUP)
    with pytest.raises(BotApiBadRequestError) as bad:
        await api.delete_message(GROUP["id"], 999)
    assert bad.value.error_code == 400
    assert bad.value.description == "Bad Request: message to delete not found"
    assert bad.value.code == "telegram_bad_request"
    fake.blocked.add(5)
    with pytest.raises(BotApiForbiddenError, match="bot was blocked by the user"):
        await api.send_message(5, "hi")
    big = fake.add_file(b"x", "videos", "mp4", size=21 * 1024 * 1024)
    with pytest.raises(FileTooBigError, match="file is too big"):
        await api.get_file(big.file_id)


async def test_429_waits_retry_after_and_gives_up_after_bounded_attempts(
    http: httpx.AsyncClient, fake: FakeBotApi, sleeps: Sleeps
) -> None:
    api = BotApiClient(http, fake.token, sleep=sleeps, retry=RetryPolicy(max_attempts=3))
    try:
        fake.rate_limit("getMe", retry_after=3, times=2)
        assert (await api.get_me())["id"] == fake.bot["id"]
        assert sleeps == [3, 3]
        fake.rate_limit("getMe", retry_after=4, times=3)
        with pytest.raises(RateLimitedError) as limited:
            await api.get_me()
        assert limited.value.retry_after == 4
        fake.rate_limit("getMe", retry_after=100_000)  # longer than anyone should wait inline
        with pytest.raises(RateLimitedError):
            await api.get_me()
    finally:
        api.close()


async def test_network_errors_back_off_exponentially_then_succeed(
    fake: FakeBotApi, sleeps: Sleeps
) -> None:
    flaky = FlakyTransport(httpx.ASGITransport(app=fake.app), failures=3)
    async with httpx.AsyncClient(transport=flaky) as http:
        api = BotApiClient(http, fake.token, sleep=sleeps)
        try:
            assert (await api.get_me())["id"] == fake.bot["id"]
        finally:
            api.close()
    assert sleeps == [0.5, 1.0, 2.0]


async def test_network_errors_are_bounded_and_never_show_the_token(
    fake: FakeBotApi, sleeps: Sleeps, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    flaky = FlakyTransport(httpx.ASGITransport(app=fake.app), failures=100)
    async with httpx.AsyncClient(transport=flaky) as http:
        api = BotApiClient(http, fake.token, sleep=sleeps, retry=RetryPolicy(max_attempts=4))
        try:
            with pytest.raises(BotApiNetworkError) as failed:
                await api.get_me()
        finally:
            api.close()
    assert flaky.attempts == 4
    assert fake.token not in str(failed.value)
    assert "<redacted>" in str(failed.value)
    assert fake.token not in repr(api)


async def test_server_errors_are_retried(
    fake: FakeBotApi, api: BotApiClient, sleeps: Sleeps
) -> None:
    fake.fail("getMe", 502, "Bad Gateway", times=2)
    assert (await api.get_me())["id"] == fake.bot["id"]
    assert sleeps == [0.5, 1.0]


async def test_wrong_token_is_unauthorized_and_the_token_stays_out_of_logs(
    http: httpx.AsyncClient, fake: FakeBotApi, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "999:very-secret-wrong-token"
    api = BotApiClient(http, secret)
    try:
        with pytest.raises(BotApiUnauthorizedError):
            await api.get_me()
    finally:
        api.close()
    assert "HTTP Request" in caplog.text  # httpx did log the request ...
    assert secret not in caplog.text  # ... with the token redacted
    assert "bot<redacted>/getMe" in caplog.text


def test_a_token_with_a_slash_is_refused_early() -> None:
    with pytest.raises(MalformedUpdateError):
        BotApiClient(httpx.AsyncClient(), "12/../../etc")


async def test_download_streams_and_refuses_beyond_the_limit(
    http: httpx.AsyncClient, fake: FakeBotApi
) -> None:
    data = jpeg(64, 64)
    stored = fake.add_file(data, "photos", "jpg")
    api = BotApiClient(http, fake.token, file_limit=len(data) - 1)
    try:
        file = await api.get_file(stored.file_id)
        assert file.file_path == stored.file_path
        # getFile said nothing about the size: the limit is enforced while streaming.
        unsized = TelegramFile(file.file_id, file.file_unique_id, None, file.file_path)
        with pytest.raises(FileTooBigError):
            await api.download(unsized)
    finally:
        api.close()
    api = BotApiClient(http, fake.token)
    try:
        assert await api.download(await api.get_file(stored.file_id)) == data
    finally:
        api.close()


async def test_moderation_methods_change_the_fake_state(
    api: BotApiClient, fake: FakeBotApi
) -> None:
    fake.add_chat(GROUP)
    mallory = user(66, "M")
    fake.add_member(GROUP["id"], mallory)
    member = await api.get_chat_member(GROUP["id"], fake.bot["id"])
    assert member["status"] == "administrator"
    assert member["can_delete_messages"] is True
    assert await api.restrict_chat_member(GROUP["id"], 66)
    assert (await api.get_chat_member(GROUP["id"], 66))["status"] == "restricted"
    assert (await api.get_chat_member(GROUP["id"], 66))["can_send_messages"] is False
    assert await api.ban_chat_member(GROUP["id"], 66)
    assert (await api.get_chat_member(GROUP["id"], 66))["status"] == "kicked"


async def test_send_limits_pace_a_group_at_20_per_minute(sleeps: Sleeps) -> None:
    limiter = SendLimiter(SendLimits(), clock=sleeps.clock, sleep=sleeps)
    for _ in range(20):
        assert await limiter.acquire(-100) == 0  # a burst of 20 is allowed
    waited = await limiter.acquire(-100)
    assert waited == pytest.approx(3.0)  # the 21st waits for one token at 20/min
    assert await limiter.acquire(-200) == 0  # another group has its own bucket


async def test_send_limits_cap_the_global_rate_at_30_per_second(sleeps: Sleeps) -> None:
    limiter = SendLimiter(SendLimits(), clock=sleeps.clock, sleep=sleeps)
    start = sleeps.now
    for chat_id in range(-1, -91, -1):  # 90 different groups
        await limiter.acquire(chat_id)
    assert sleeps.now - start == pytest.approx(2.0)  # 30 burst, then 30/s for 60 more


async def test_a_group_waiting_for_its_send_budget_does_not_hold_up_other_chats() -> None:
    now = [1000.0]
    asked: list[float] = []
    release = asyncio.Event()

    async def sleep(seconds: float) -> None:  # waits until the test lets time pass
        asked.append(seconds)
        await release.wait()
        now[0] += seconds

    limiter = SendLimiter(SendLimits(), clock=lambda: now[0], sleep=sleep)
    for _ in range(20):
        await limiter.acquire(-100)  # the group's minute budget is spent
    waiting = asyncio.create_task(limiter.acquire(-100))
    other = asyncio.create_task(limiter.acquire(-200))
    for _ in range(10):
        await asyncio.sleep(0)
    assert asked == [pytest.approx(3.0)]
    assert not waiting.done()
    assert other.done()  # another group sends at once
    assert other.result() == 0
    release.set()
    assert await waiting == pytest.approx(3.0)
