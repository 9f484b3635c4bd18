"""Webhook mode: the secret header is checked; updates go through the same guard."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker

from redress.connectors.telegram.bot import GroupGuard
from redress.connectors.telegram.errors import WebhookSecretError
from redress.connectors.telegram.store import RecordKind, TelegramStore
from redress.connectors.telegram.webhook import SECRET_HEADER, create_webhook_app

from .fake_bot_api import FakeBotApi, chat, jpeg, user

pytestmark = pytest.mark.anyio
GROUP = chat(-1001111111111, "Webhook group", username="publicgroup")
BOB = user(42, "Bob")


async def test_webhook_requires_the_secret_and_handles_updates(
    fake: FakeBotApi, guard: GroupGuard, sessions: sessionmaker[Session]
) -> None:
    fake.add_chat(GROUP)
    await guard.api.set_webhook(
        "https://guard.example/telegram/webhook", secret_token="s3cr3t-_token"
    )
    assert fake.webhook == {
        "url": "https://guard.example/telegram/webhook",
        "secret_token": "s3cr3t-_token",
    }
    app = create_webhook_app(guard, "s3cr3t-_token")
    update = {
        "update_id": 1,
        "message": fake.message(GROUP, BOB, photo=fake.photo_sizes(jpeg(256, 256, 1))),
    }
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="https://guard.example"
    ) as client:
        refused = await client.post("/telegram/webhook", json=update)
        wrong = await client.post(
            "/telegram/webhook", json=update, headers={SECRET_HEADER: "guess"}
        )
        accepted = await client.post(
            "/telegram/webhook", json=update, headers={SECRET_HEADER: "s3cr3t-_token"}
        )
        garbage = await client.post(
            "/telegram/webhook", content=b"{not json", headers={SECRET_HEADER: "s3cr3t-_token"}
        )
    assert refused.status_code == wrong.status_code == 403
    assert refused.json()["error"] == "WebhookSecretError"
    assert accepted.status_code == 200
    assert "scanned" in accepted.json()["records"]
    assert garbage.status_code == 200  # recorded, not re-sent forever
    with sessions() as session:
        store = TelegramStore(session)
        [scan] = store.records([RecordKind.SCANNED])
        assert scan.detail["link"] == f"https://t.me/publicgroup/{update['message']['message_id']}"
        assert len(store.records([RecordKind.MALFORMED])) == 1
    assert fake.called("deleteMessage")


async def test_webhook_mode_without_a_secret_is_refused(guard: GroupGuard) -> None:
    with pytest.raises(WebhookSecretError):
        create_webhook_app(guard, "")


async def test_polling_while_a_webhook_is_set_is_a_conflict(
    fake: FakeBotApi, guard: GroupGuard
) -> None:
    from redress.connectors.telegram.errors import BotApiConflictError

    await guard.api.set_webhook("https://guard.example/hook", secret_token="x")
    with pytest.raises(BotApiConflictError):
        await guard.poll_once()
    await guard.api.delete_webhook()
    assert await guard.poll_once() == 0
