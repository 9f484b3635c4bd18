"""The fake Bot API server the Telegram tests drive the bot against.

The server itself lives in ``redress.connectors.telegram.fakeapi`` because
``redress bench telegram`` runs against it too; this module is the tests' door
to it, plus media made with Pillow for the scenarios.
"""

from __future__ import annotations

import io

from PIL import Image

from redress.connectors.telegram.fakeapi import (
    FakeBotApi,
    StoredFile,
    chat,
    jpeg,
    private_chat,
    user,
)

__all__ = [
    "FakeBotApi",
    "StoredFile",
    "chat",
    "jpeg",
    "png",
    "private_chat",
    "user",
    "webp",
]


def png(width: int, height: int, seed: int = 0) -> bytes:
    """A PNG made from the same pattern as :func:`jpeg`."""
    image = Image.open(io.BytesIO(jpeg(width, height, seed)))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def webp(width: int, height: int, seed: int = 0) -> bytes:
    """A static WebP sticker made from the same pattern as :func:`jpeg`."""
    image = Image.open(io.BytesIO(jpeg(width, height, seed)))
    out = io.BytesIO()
    image.save(out, "WEBP", quality=95)
    return out.getvalue()
