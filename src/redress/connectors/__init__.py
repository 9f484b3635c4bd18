"""Connectors bring media from outside platforms (Telegram, ...) into the pipeline.

A connector knows nothing of the index or the database of banks: it turns what
the platform delivers into :class:`~redress.connectors.interfaces.IncomingMedia`,
hands it to a :class:`~redress.connectors.interfaces.MediaSink` and carries out
the :class:`~redress.connectors.interfaces.Decision` it gets back.
"""

from redress.connectors.interfaces import (
    ActionKind,
    BatchMediaSink,
    Connector,
    Decision,
    IncomingMedia,
    MediaKind,
    MediaOrigin,
    MediaSink,
    MessageFacts,
    Outcome,
    Person,
    TooLarge,
    UserReport,
)

__all__ = [
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
