"""A small Bot API client over an injected ``httpx.AsyncClient``.

It speaks the documented wire format directly: ``POST {base}/bot<token>/<method>``
with a JSON body, answered by ``{"ok": true, "result": ...}`` or
``{"ok": false, "error_code": N, "description": "...", "parameters":
{"retry_after": S, "migrate_to_chat_id": ID}}``; files come from
``{base}/file/bot<token>/<file_path>``.

* 429 waits ``parameters.retry_after`` seconds and retries (bounded).
* Connection errors, timeouts and 5xx retry with exponential back-off (bounded).
* Other ``ok: false`` answers become :mod:`redress.connectors.telegram.errors`.
* ``sendMessage`` passes through a :class:`SendLimiter` (global + per chat).
* The token never appears in a message, log line or repr: every URL is
  redacted before it is shown, and a logging filter redacts httpx's own
  request log lines while the client is open.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from redress.connectors.telegram.errors import (
    BotApiError,
    BotApiNetworkError,
    FileTooBigError,
    MalformedUpdateError,
    api_error,
)
from redress.connectors.telegram.ratelimit import SendLimiter

CLOUD_API_URL = "https://api.telegram.org"
CLOUD_FILE_LIMIT = 20 * 1024 * 1024  # getFile serves at most 20 MB from the cloud Bot API
LOCAL_FILE_LIMIT = 2000 * 1024 * 1024  # a self-hosted Bot API server serves up to 2000 MB

Sleep = Callable[[float], Awaitable[None]]
JsonObject = dict[str, Any]

_log = logging.getLogger(__name__)


class _TokenRedactor(logging.Filter):
    """Rewrites log records that mention the token (httpx logs every request URL)."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self._token = token

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self._token in message:
            record.msg = message.replace(self._token, "<redacted>")
            record.args = None
        return True


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how long to retry."""

    max_attempts: int = 5
    backoff_base: float = 0.5  # seconds; doubled per attempt
    backoff_max: float = 30.0
    max_retry_after: float = 300.0  # a longer 429 wait is not waited out: it raises


@dataclass(frozen=True, slots=True)
class TelegramFile:
    """A ``File`` object from getFile."""

    file_id: str
    file_unique_id: str
    file_size: int | None
    file_path: str | None


class BotApiClient:
    """Calls Bot API methods; one instance per bot token."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        token: str,
        *,
        base_url: str = CLOUD_API_URL,
        file_limit: int | None = None,
        retry: RetryPolicy | None = None,
        limiter: SendLimiter | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if not token or "/" in token or any(c.isspace() for c in token):
            raise MalformedUpdateError("a bot token is one word like 123456:ABC-DEF...")
        self._http = http
        self._token = token
        self.base_url = base_url.rstrip("/")
        self.is_cloud = self.base_url == CLOUD_API_URL
        self.file_limit = file_limit or (CLOUD_FILE_LIMIT if self.is_cloud else LOCAL_FILE_LIMIT)
        self.retry = retry or RetryPolicy()
        self.limiter = limiter or SendLimiter(sleep=sleep)
        self._sleep = sleep
        self._redactor = _TokenRedactor(token)
        for name in ("httpx", "httpcore"):
            logging.getLogger(name).addFilter(self._redactor)

    def __repr__(self) -> str:
        return f"BotApiClient(base_url={self.base_url!r}, token=<redacted>)"

    def close(self) -> None:
        """Remove the log filter (the httpx client belongs to the caller)."""
        for name in ("httpx", "httpcore"):
            logging.getLogger(name).removeFilter(self._redactor)

    def redact(self, text: str) -> str:
        """``text`` with the token replaced."""
        return text.replace(self._token, "<redacted>")

    # -- the envelope ---------------------------------------------------------

    async def call(self, method: str, params: JsonObject | None = None) -> Any:
        """Call ``method`` with JSON ``params``; return ``result`` or raise a Telegram error."""
        url = f"{self.base_url}/bot{self._token}/{method}"
        body = {k: v for k, v in (params or {}).items() if v is not None}
        attempt = 0
        while True:
            attempt += 1
            try:
                response = await self._http.post(url, json=body)
            except httpx.TransportError as exc:
                if attempt >= self.retry.max_attempts:
                    raise BotApiNetworkError(
                        f"Bot API {method} unreachable after {attempt} attempts: "
                        f"{type(exc).__name__}: {self.redact(str(exc))}"
                    ) from exc
                await self._sleep(self._backoff(attempt))
                continue
            envelope = self._envelope(method, response)
            if envelope.get("ok") is True:
                if "result" not in envelope:
                    raise MalformedUpdateError(f"Bot API {method} answered ok without a result")
                return envelope["result"]
            error = self._error(method, response.status_code, envelope)
            if error.error_code == 429 and attempt < self.retry.max_attempts:
                wait = error.retry_after if error.retry_after is not None else 1.0
                if wait <= self.retry.max_retry_after:
                    _log.info("Bot API %s rate-limited; waiting %.1fs", method, wait)
                    await self._sleep(wait)
                    continue
            if error.error_code >= 500 and attempt < self.retry.max_attempts:
                await self._sleep(self._backoff(attempt))
                continue
            if error.error_code >= 500:
                raise BotApiNetworkError(str(error)) from error
            raise error

    def _backoff(self, attempt: int) -> float:
        return float(min(self.retry.backoff_max, self.retry.backoff_base * 2 ** (attempt - 1)))

    def _envelope(self, method: str, response: httpx.Response) -> JsonObject:
        try:
            envelope = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            if response.status_code >= 500:
                return {"ok": False, "error_code": response.status_code, "description": "no body"}
            raise MalformedUpdateError(
                f"Bot API {method} answered HTTP {response.status_code} without JSON"
            ) from exc
        if not isinstance(envelope, dict) or "ok" not in envelope:
            raise MalformedUpdateError(f"Bot API {method} answered without the ok envelope")
        return envelope

    def _error(self, method: str, status: int, envelope: JsonObject) -> BotApiError:
        code = envelope.get("error_code", status)
        description = str(envelope.get("description", "unknown error"))
        params = envelope.get("parameters") or {}
        retry_after = params.get("retry_after") if isinstance(params, dict) else None
        migrate = params.get("migrate_to_chat_id") if isinstance(params, dict) else None
        return api_error(
            method,
            int(code) if isinstance(code, int) else status,
            self.redact(description),
            retry_after=float(retry_after) if isinstance(retry_after, int | float) else None,
            migrate_to_chat_id=int(migrate) if isinstance(migrate, int) else None,
        )

    # -- methods --------------------------------------------------------------

    async def get_me(self) -> JsonObject:
        """``getMe``: the bot's own User object."""
        result: JsonObject = await self.call("getMe")
        return result

    async def get_updates(
        self,
        offset: int | None = None,
        timeout: int = 0,
        allowed_updates: Sequence[str] | None = None,
        limit: int = 100,
    ) -> list[JsonObject]:
        """``getUpdates`` (long polling: ``timeout`` seconds); a list of raw Update objects."""
        result = await self.call(
            "getUpdates",
            {
                "offset": offset,
                "timeout": timeout,
                "limit": limit,
                "allowed_updates": list(allowed_updates) if allowed_updates is not None else None,
            },
        )
        if not isinstance(result, list):
            raise MalformedUpdateError("getUpdates result is not a list")
        return result

    async def set_webhook(
        self,
        url: str,
        *,
        secret_token: str | None = None,
        allowed_updates: Sequence[str] | None = None,
        drop_pending_updates: bool = False,
    ) -> bool:
        """``setWebhook``: Telegram will POST updates to ``url`` with the secret header."""
        return bool(
            await self.call(
                "setWebhook",
                {
                    "url": url,
                    "secret_token": secret_token,
                    "allowed_updates": list(allowed_updates) if allowed_updates else None,
                    "drop_pending_updates": drop_pending_updates or None,
                },
            )
        )

    async def delete_webhook(self, drop_pending_updates: bool = False) -> bool:
        """``deleteWebhook``: needed before getUpdates works again."""
        return bool(
            await self.call("deleteWebhook", {"drop_pending_updates": drop_pending_updates or None})
        )

    async def get_file(self, file_id: str) -> TelegramFile:
        """``getFile``: a File whose ``file_path`` can be downloaded for about an hour."""
        result = await self.call("getFile", {"file_id": file_id})
        if not isinstance(result, dict) or "file_id" not in result:
            raise MalformedUpdateError("getFile result is not a File object")
        size = result.get("file_size")
        return TelegramFile(
            file_id=str(result["file_id"]),
            file_unique_id=str(result.get("file_unique_id", "")),
            file_size=size if isinstance(size, int) else None,
            file_path=result.get("file_path"),
        )

    async def download(self, file: TelegramFile) -> bytes:
        """Fetch a file's bytes from ``/file/bot<token>/<file_path>``, refusing over the limit.

        A self-hosted server in ``--local`` mode answers getFile with an absolute
        path on its own disk; such paths are downloaded the same way only if the
        server also serves them, so run Redress beside it and read the path directly.
        """
        if not file.file_path:
            raise MalformedUpdateError("getFile gave no file_path; the file cannot be downloaded")
        if file.file_size is not None and file.file_size > self.file_limit:
            raise FileTooBigError(
                "download", 400, f"file of {file.file_size} bytes exceeds {self.file_limit}"
            )
        url = f"{self.base_url}/file/bot{self._token}/{file.file_path.lstrip('/')}"
        attempt = 0
        while True:
            attempt += 1
            try:
                return await self._fetch(url)
            except httpx.TransportError as exc:
                if attempt >= self.retry.max_attempts:
                    raise BotApiNetworkError(
                        f"file download failed after {attempt} attempts: {type(exc).__name__}"
                    ) from exc
                await self._sleep(self._backoff(attempt))

    async def _fetch(self, url: str) -> bytes:
        async with self._http.stream("GET", url) as response:
            if response.status_code != 200:
                body = await response.aread()
                try:
                    envelope = json.loads(body)
                    description = str(envelope.get("description", "download failed"))
                except (ValueError, AttributeError):
                    description = f"HTTP {response.status_code}"
                raise api_error("download", response.status_code, self.redact(description))
            chunks: list[bytes] = []
            total = 0
            async for chunk in response.aiter_bytes():
                total += len(chunk)
                if total > self.file_limit:  # never buffer more than the limit
                    raise FileTooBigError(
                        "download", 400, f"file exceeds the {self.file_limit}-byte limit"
                    )
                chunks.append(chunk)
            return b"".join(chunks)

    async def delete_message(self, chat_id: int, message_id: int) -> bool:
        """``deleteMessage``."""
        return bool(
            await self.call("deleteMessage", {"chat_id": chat_id, "message_id": message_id})
        )

    async def ban_chat_member(
        self, chat_id: int, user_id: int, *, revoke_messages: bool = False
    ) -> bool:
        """``banChatMember`` (``revoke_messages`` deletes all of their messages in the group)."""
        return bool(
            await self.call(
                "banChatMember",
                {"chat_id": chat_id, "user_id": user_id, "revoke_messages": revoke_messages},
            )
        )

    async def restrict_chat_member(
        self, chat_id: int, user_id: int, *, until_date: int | None = None
    ) -> bool:
        """``restrictChatMember`` with every send permission off (read-only)."""
        permissions = {
            "can_send_messages": False,
            "can_send_audios": False,
            "can_send_documents": False,
            "can_send_photos": False,
            "can_send_videos": False,
            "can_send_video_notes": False,
            "can_send_voice_notes": False,
            "can_send_polls": False,
            "can_send_other_messages": False,
            "can_add_web_page_previews": False,
        }
        return bool(
            await self.call(
                "restrictChatMember",
                {
                    "chat_id": chat_id,
                    "user_id": user_id,
                    "permissions": permissions,
                    "until_date": until_date,
                },
            )
        )

    async def send_message(
        self, chat_id: int, text: str, *, reply_to_message_id: int | None = None
    ) -> JsonObject:
        """``sendMessage``, after waiting for the global and per-chat send budget."""
        await self.limiter.acquire(chat_id)
        params: JsonObject = {"chat_id": chat_id, "text": text}
        if reply_to_message_id is not None:
            params["reply_parameters"] = {
                "message_id": reply_to_message_id,
                "allow_sending_without_reply": True,
            }
        result: JsonObject = await self.call("sendMessage", params)
        return result

    async def get_chat_member(self, chat_id: int, user_id: int) -> JsonObject:
        """``getChatMember``: a ChatMember (``status``; rights such as can_delete_messages)."""
        result: JsonObject = await self.call(
            "getChatMember", {"chat_id": chat_id, "user_id": user_id}
        )
        return result
