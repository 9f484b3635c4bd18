"""Telegram connectors: the group-guard bot and the Telegram Desktop export importer.

The bot (:class:`GroupGuard`) talks to the Bot API through :class:`BotApiClient`
over an injected ``httpx.AsyncClient``; both connectors hand media to a
:class:`redress.connectors.MediaSink`. See docs/telegram.md.
"""

from redress.connectors.telegram.bot import GroupGuard, GuardOptions, HandleResult
from redress.connectors.telegram.client import BotApiClient, RetryPolicy, TelegramFile
from redress.connectors.telegram.export import (
    ExportImporter,
    ExportRecord,
    ExportRecordKind,
    ImportTally,
)
from redress.connectors.telegram.ratelimit import SendLimiter, SendLimits
from redress.connectors.telegram.store import GroupSettings, RecordKind, TelegramStore
from redress.connectors.telegram.webhook import create_webhook_app

__all__ = [
    "BotApiClient",
    "ExportImporter",
    "ExportRecord",
    "ExportRecordKind",
    "GroupGuard",
    "GroupSettings",
    "GuardOptions",
    "HandleResult",
    "ImportTally",
    "RecordKind",
    "RetryPolicy",
    "SendLimiter",
    "SendLimits",
    "TelegramFile",
    "TelegramStore",
    "create_webhook_app",
]
