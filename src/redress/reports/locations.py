"""Reading the content locations a notice gives (what Redress can find in its history)."""

from __future__ import annotations

import re
from dataclasses import dataclass

_PRIVATE = re.compile(r"^https?://(?:www\.)?t(?:elegram)?\.me/c/(\d+)/(\d+)(?:[/?#].*)?$")
_PUBLIC = re.compile(
    r"^https?://(?:www\.)?t(?:elegram)?\.me/([A-Za-z0-9_]{4,64})/(\d+)(?:[/?#].*)?$"
)
_PLAIN = re.compile(r"^telegram:(-?\d+|@?[A-Za-z0-9_]{4,64}):(\d+)$")


@dataclass(frozen=True, slots=True)
class MessageLocation:
    """A message on a platform: the chat as Redress records it (and its aliases)."""

    platform: str
    chats: tuple[str, ...]
    message_id: str


def parse_location(text: str) -> MessageLocation | None:
    """A Telegram message link (``https://t.me/c/123/45``, ``https://t.me/name/45``) or
    ``telegram:CHAT:MESSAGE``, as the chat IDs sightings record; None for any other URL."""
    value = text.strip()
    if match := _PRIVATE.match(value):
        chat, message = match.groups()
        return MessageLocation("telegram", (f"-100{chat}", chat), message)
    if match := _PUBLIC.match(value):
        name, message = match.groups()
        return MessageLocation("telegram", (f"@{name}", name), message)
    if match := _PLAIN.match(value):
        chat, message = match.groups()
        aliases: tuple[str, ...] = (chat,)
        if chat.startswith("-100"):
            aliases = (chat, chat.removeprefix("-100"))
        elif chat.startswith("@"):
            aliases = (chat, chat[1:])
        return MessageLocation("telegram", aliases, message)
    return None


def is_location(text: str) -> bool:
    """Whether ``text`` is something a moderator can open: an http(s) URL or a
    ``telegram:CHAT:MESSAGE`` reference."""
    value = text.strip()
    if parse_location(value) is not None:
        return True
    return bool(re.match(r"^https?://[^\s/]+\.[^\s]+$", value)) and len(value) <= 2000


def message_link(platform: str | None, chat: str | None, message_id: str | None) -> str | None:
    """The public link of a Telegram message, when it has one."""
    if platform != "telegram" or not chat or not message_id:
        return None
    if chat.startswith("@"):
        return f"https://t.me/{chat[1:]}/{message_id}"
    return f"https://t.me/c/{chat.removeprefix('-100')}/{message_id}"
