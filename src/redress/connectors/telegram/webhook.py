"""Webhook mode: Telegram POSTs each Update to a route of ours.

The route accepts a request only with the ``X-Telegram-Bot-Api-Secret-Token``
header equal to the secret given to setWebhook (compared in constant time).
Every accepted update is handled by the same :class:`GroupGuard` as in long
polling; it answers 200 even for a malformed update (which is recorded),
because any other status makes Telegram re-send it forever.
"""

from __future__ import annotations

import hmac
import json

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from redress.connectors.telegram.bot import GroupGuard
from redress.connectors.telegram.errors import WebhookSecretError

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name
WEBHOOK_PATH = "/telegram/webhook"


def create_webhook_app(guard: GroupGuard, secret_token: str, path: str = WEBHOOK_PATH) -> FastAPI:
    """An ASGI app with the webhook route and ``GET /healthz``."""
    if not secret_token:
        raise WebhookSecretError(
            "webhook mode needs a secret token (REDRESS_TELEGRAM_WEBHOOK_SECRET)"
        )
    expected = secret_token.encode()
    app = FastAPI(title="Redress Telegram webhook", openapi_url=None, docs_url=None)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post(path)
    async def webhook(request: Request) -> JSONResponse:
        given = request.headers.get(SECRET_HEADER, "").encode()
        if not hmac.compare_digest(given, expected):
            error = WebhookSecretError("missing or wrong secret token header")
            return JSONResponse(
                {
                    "ok": False,
                    "error": type(error).__name__,
                    "detail": error.message,
                    "status": 403,
                },
                status_code=error.status_code,
            )
        body = await request.body()
        try:
            update = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError):
            update = {"unparsable_body": body[:2000].decode("utf-8", "replace")}
        result = await guard.handle(update)
        return JSONResponse({"ok": True, "records": [str(kind) for kind in result.records]})

    return app
