"""Errors of the Telegram connectors. Foreign failures are translated here, at the seam.

Hierarchy::

    RedressError
    └── TelegramError                    502  telegram_error
        ├── BotApiError                  502  telegram_api_error   (ok: false)
        │   ├── BotApiBadRequestError    400  telegram_bad_request  (error_code 400)
        │   │   └── FileTooBigError      413  telegram_file_too_big ("file is too big")
        │   ├── BotApiUnauthorizedError  401  telegram_unauthorized (bad token)
        │   ├── BotApiForbiddenError     403  telegram_forbidden    (blocked, not admin)
        │   ├── BotApiConflictError      409  telegram_conflict     (webhook vs getUpdates)
        │   └── RateLimitedError         429  telegram_rate_limited (retry_after spent)
        ├── BotApiNetworkError           503  telegram_network_error
        ├── MalformedUpdateError         400  telegram_malformed_update
        ├── WebhookSecretError           403  telegram_bad_webhook_secret
        └── ExportError                  400  telegram_export_error
            └── ExportPathError          400  telegram_export_unsafe_path

No message, repr or chained cause produced here contains the bot token:
URLs are redacted before they are put into a message.
"""

from __future__ import annotations

from redress.errors import RedressError


class TelegramError(RedressError):
    """Base of every Telegram connector error."""

    code = "telegram_error"
    status_code = 502


class BotApiError(TelegramError):
    """The Bot API answered ``{"ok": false, ...}``."""

    code = "telegram_api_error"
    status_code = 502

    def __init__(
        self,
        method: str,
        error_code: int,
        description: str,
        *,
        retry_after: float | None = None,
        migrate_to_chat_id: int | None = None,
    ) -> None:
        super().__init__(f"Bot API {method} failed ({error_code}): {description}")
        self.method = method
        self.error_code = error_code
        self.description = description
        self.retry_after = retry_after
        self.migrate_to_chat_id = migrate_to_chat_id


class BotApiBadRequestError(BotApiError):
    """400: e.g. "Bad Request: message to delete not found" / "message can't be deleted"."""

    code = "telegram_bad_request"
    status_code = 400


class FileTooBigError(BotApiBadRequestError):
    """400 "Bad Request: file is too big": getFile refuses files over 20 MB on the cloud API."""

    code = "telegram_file_too_big"
    status_code = 413


class BotApiUnauthorizedError(BotApiError):
    """401: the token is wrong or revoked."""

    code = "telegram_unauthorized"
    status_code = 401


class BotApiForbiddenError(BotApiError):
    """403: the bot was blocked, kicked, or lacks admin rights."""

    code = "telegram_forbidden"
    status_code = 403


class BotApiConflictError(BotApiError):
    """409: e.g. getUpdates while a webhook is set, or two pollers on one token."""

    code = "telegram_conflict"
    status_code = 409


class RateLimitedError(BotApiError):
    """429 that persisted through every retry the client was allowed."""

    code = "telegram_rate_limited"
    status_code = 429


class BotApiNetworkError(TelegramError):
    """The Bot API could not be reached (connection, timeout, 5xx) after bounded retries."""

    code = "telegram_network_error"
    status_code = 503


class MalformedUpdateError(TelegramError):
    """An update or message object does not have the shape the Bot API documents."""

    code = "telegram_malformed_update"
    status_code = 400


class WebhookSecretError(TelegramError):
    """A webhook request without the right X-Telegram-Bot-Api-Secret-Token header."""

    code = "telegram_bad_webhook_secret"
    status_code = 403


class ExportError(TelegramError):
    """A Telegram Desktop export folder that cannot be read."""

    code = "telegram_export_error"
    status_code = 400


class ExportPathError(ExportError):
    """A media path in an export that points outside the export folder."""

    code = "telegram_export_unsafe_path"
    status_code = 400


_BY_STATUS: dict[int, type[BotApiError]] = {
    400: BotApiBadRequestError,
    401: BotApiUnauthorizedError,
    403: BotApiForbiddenError,
    409: BotApiConflictError,
    429: RateLimitedError,
}


def api_error(
    method: str,
    error_code: int,
    description: str,
    *,
    retry_after: float | None = None,
    migrate_to_chat_id: int | None = None,
) -> BotApiError:
    """The :class:`BotApiError` subclass for an ``ok: false`` envelope."""
    cls: type[BotApiError] = _BY_STATUS.get(error_code, BotApiError)
    if error_code == 400 and "file is too big" in description.lower():
        cls = FileTooBigError
    return cls(
        method,
        error_code,
        description,
        retry_after=retry_after,
        migrate_to_chat_id=migrate_to_chat_id,
    )
