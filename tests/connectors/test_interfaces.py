"""The connector seam: pinned public surface and the item identity used for idempotency."""

from __future__ import annotations

import datetime as dt

import redress.connectors
import redress.connectors.telegram
from redress.connectors import IncomingMedia, MediaKind, MediaOrigin, MessageFacts, TooLarge


def test_public_surface_is_pinned() -> None:
    assert sorted(redress.connectors.__all__) == [
        "ActionKind",
        "BatchMediaSink",
        "Connector",
        "Decision",
        "IncomingMedia",
        "MediaKind",
        "MediaOrigin",
        "MediaSink",
        "MessageFacts",
        "Outcome",
        "Person",
        "TooLarge",
        "UserReport",
    ]
    assert sorted(redress.connectors.telegram.__all__) == [
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


def test_media_key_distinguishes_edits_and_files() -> None:
    when = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    facts = MessageFacts("telegram", -100, "G", "supergroup", 5, None, None, when)
    edited = MessageFacts("telegram", -100, "G", "supergroup", 5, None, None, when, edit_date=when)
    big = TooLarge(None, 1, "x")
    a = IncomingMedia(MediaKind.PHOTO, MediaOrigin.ARRIVAL, facts, b"x", platform_file_id="A")
    b = IncomingMedia(MediaKind.PHOTO, MediaOrigin.EDIT, edited, big, platform_file_id="A")
    c = IncomingMedia(MediaKind.PHOTO, MediaOrigin.ARRIVAL, facts, b"y", platform_file_id="B")
    assert len({a.key, b.key, c.key}) == 3
    assert a.key == "telegram:-100:5:0:A"
