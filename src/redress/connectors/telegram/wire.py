"""Typed views of the Bot API objects the bot reads (Update, Message, media, origin).

Only the fields Redress uses are read; every other field is kept in the raw JSON
that travels with the media as evidence. Anything that is not shaped as the
Bot API documents raises :class:`MalformedUpdateError`, so one bad update is
recorded and skipped while the rest continue.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from redress.connectors.interfaces import MediaKind, Person
from redress.connectors.telegram.errors import MalformedUpdateError

# Update fields that carry a Message, and whether that message is an edit.
MESSAGE_FIELDS: dict[str, bool] = {
    "message": False,
    "edited_message": True,
    "channel_post": False,
    "edited_channel_post": True,
}
ALLOWED_UPDATES = tuple(MESSAGE_FIELDS)


@dataclass(frozen=True, slots=True)
class MediaRef:
    """One downloadable media item inside a message."""

    kind: MediaKind
    file_id: str
    file_unique_id: str
    file_size: int | None
    mime_type: str | None = None
    file_name: str | None = None


@dataclass(frozen=True, slots=True)
class Chat:
    """A ``Chat``: id, type ("private", "group", "supergroup", "channel"), title, username."""

    id: int
    type: str
    title: str | None
    username: str | None


@dataclass(frozen=True, slots=True)
class Message:
    """The parts of a ``Message`` the bot acts on."""

    message_id: int
    chat: Chat
    date: dt.datetime
    sender: Person | None
    edit_date: dt.datetime | None
    text: str | None
    caption: str | None
    media_group_id: str | None
    has_protected_content: bool
    forward_origin: str | None
    forward_date: dt.datetime | None
    media: tuple[MediaRef, ...]
    reply_to: Message | None
    raw: dict[str, Any]

    @property
    def link(self) -> str | None:
        """``https://t.me/<username>/<id>`` or ``https://t.me/c/<internal id>/<id>``."""
        return message_link(self.chat.id, self.chat.type, self.chat.username, self.message_id)

    @property
    def command(self) -> str | None:
        """The bot command the text starts with (``/report``), without any ``@botname``."""
        if not self.text or not self.text.startswith("/"):
            return None
        word = self.text.split(maxsplit=1)[0]
        return word.split("@", 1)[0].lower()


@dataclass(frozen=True, slots=True)
class Update:
    """An ``Update``: its id and the message it carries (None for other update kinds)."""

    update_id: int
    kind: str
    message: Message | None
    is_edit: bool
    raw: dict[str, Any]

    def raw_json(self) -> str:
        """The update exactly as received, as compact JSON text."""
        return json.dumps(self.raw, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def message_link(chat_id: int, chat_type: str, username: str | None, message_id: int) -> str | None:
    """The t.me link of a message, or None where Telegram has none (basic groups, private)."""
    if username:
        return f"https://t.me/{username}/{message_id}"
    text = str(chat_id)
    if chat_type in {"supergroup", "channel"} and text.startswith("-100"):
        return f"https://t.me/c/{text[4:]}/{message_id}"
    return None


def _int(obj: dict[str, Any], name: str, where: str) -> int:
    value = obj.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise MalformedUpdateError(f"{where}.{name} must be an integer; got {type(value).__name__}")
    return value


def _str(obj: dict[str, Any], name: str) -> str | None:
    value = obj.get(name)
    return value if isinstance(value, str) else None


def _dict(obj: dict[str, Any], name: str, where: str) -> dict[str, Any] | None:
    value = obj.get(name)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise MalformedUpdateError(f"{where}.{name} must be an object")
    return value


def _time(seconds: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.UTC)


def person(user: dict[str, Any], where: str = "from") -> Person:
    """A ``User`` as a :class:`Person`."""
    name = " ".join(p for p in (_str(user, "first_name"), _str(user, "last_name")) if p)
    return Person(
        id=_int(user, "id", where),
        name=name or str(user.get("id")),
        username=_str(user, "username"),
        is_bot=bool(user.get("is_bot", False)),
        language_code=_str(user, "language_code"),
    )


def _chat_person(chat: dict[str, Any], where: str) -> Person:
    return Person(
        id=_int(chat, "id", where),
        name=_str(chat, "title") or _str(chat, "username") or str(chat.get("id")),
        username=_str(chat, "username"),
    )


def describe_origin(origin: dict[str, Any]) -> str:
    """A readable, lossless-enough summary of a ``MessageOrigin`` (raw JSON keeps the rest)."""
    kind = _str(origin, "type")
    if kind == "user":
        who = person(_dict(origin, "sender_user", "forward_origin") or {}, "forward_origin")
        handle = f" @{who.username}" if who.username else ""
        return f"user {who.id} ({who.name}{handle})"
    if kind == "hidden_user":
        return f"hidden user ({_str(origin, 'sender_user_name') or '?'})"
    if kind == "chat":
        chat = _chat_person(_dict(origin, "sender_chat", "forward_origin") or {}, "sender_chat")
        return f"chat {chat.id} ({chat.name})"
    if kind == "channel":
        chat = _chat_person(_dict(origin, "chat", "forward_origin") or {}, "chat")
        msg = origin.get("message_id")
        link = f" https://t.me/{chat.username}/{msg}" if chat.username else ""
        return f"channel {chat.id} ({chat.name}) message {msg}{link}"
    raise MalformedUpdateError(f"unknown forward_origin type {kind!r}")


def _media(msg: dict[str, Any]) -> tuple[MediaRef, ...]:
    found: list[MediaRef] = []

    def ref(obj: dict[str, Any], kind: MediaKind, where: str) -> MediaRef:
        file_id, unique = _str(obj, "file_id"), _str(obj, "file_unique_id")
        if not file_id or not unique:
            raise MalformedUpdateError(f"message.{where} lacks file_id/file_unique_id")
        size = obj.get("file_size")
        return MediaRef(
            kind=kind,
            file_id=file_id,
            file_unique_id=unique,
            file_size=size if isinstance(size, int) else None,
            mime_type=_str(obj, "mime_type"),
            file_name=_str(obj, "file_name"),
        )

    photo = msg.get("photo")
    if photo is not None:
        if not isinstance(photo, list) or not photo or not all(isinstance(p, dict) for p in photo):
            raise MalformedUpdateError("message.photo must be a non-empty array of PhotoSize")
        # The largest size: Telegram lists them smallest first, but compare to be sure.
        largest = max(photo, key=lambda p: (p.get("width", 0) or 0) * (p.get("height", 0) or 0))
        found.append(ref(largest, MediaKind.PHOTO, "photo"))
    # An animation message also carries a "document" describing the same file.
    for name, kind in (
        ("video", MediaKind.VIDEO),
        ("animation", MediaKind.ANIMATION),
        ("video_note", MediaKind.VIDEO_NOTE),
    ):
        obj = _dict(msg, name, "message")
        if obj is not None:
            found.append(ref(obj, kind, name))
    document = _dict(msg, "document", "message")
    if document is not None and "animation" not in msg:
        mime = _str(document, "mime_type") or ""
        if mime.startswith(("image/", "video/")):
            found.append(ref(document, MediaKind.DOCUMENT, "document"))
    sticker = _dict(msg, "sticker", "message")
    if sticker is not None and not sticker.get("is_animated") and not sticker.get("is_video"):
        found.append(ref(sticker, MediaKind.STICKER, "sticker"))  # a static WebP image
    return tuple(found)


def parse_message(msg: dict[str, Any], where: str = "message", depth: int = 0) -> Message:
    """Parse a ``Message`` object."""
    chat_obj = _dict(msg, "chat", where)
    if chat_obj is None:
        raise MalformedUpdateError(f"{where}.chat is missing")
    chat = Chat(
        id=_int(chat_obj, "id", f"{where}.chat"),
        type=_str(chat_obj, "type") or "unknown",
        title=_str(chat_obj, "title") or _str(chat_obj, "first_name"),
        username=_str(chat_obj, "username"),
    )
    sender_obj = _dict(msg, "from", where)
    sender_chat = _dict(msg, "sender_chat", where)
    if sender_obj is not None:
        sender: Person | None = person(sender_obj, f"{where}.from")
    elif sender_chat is not None:
        sender = _chat_person(sender_chat, f"{where}.sender_chat")
    else:
        sender = None
    origin_obj = _dict(msg, "forward_origin", where)
    edit = msg.get("edit_date")
    reply_obj = _dict(msg, "reply_to_message", where)
    reply = None
    if reply_obj is not None and depth == 0:
        reply = parse_message(reply_obj, f"{where}.reply_to_message", depth + 1)
    return Message(
        message_id=_int(msg, "message_id", where),
        chat=chat,
        date=_time(_int(msg, "date", where)),
        sender=sender,
        edit_date=_time(edit) if isinstance(edit, int) else None,
        text=_str(msg, "text"),
        caption=_str(msg, "caption"),
        media_group_id=_str(msg, "media_group_id"),
        has_protected_content=bool(msg.get("has_protected_content", False)),
        forward_origin=describe_origin(origin_obj) if origin_obj is not None else None,
        forward_date=(
            _time(origin_obj["date"])
            if origin_obj is not None and isinstance(origin_obj.get("date"), int)
            else None
        ),
        media=_media(msg),
        reply_to=reply,
        raw=msg,
    )


def parse_update(raw: Any) -> Update:
    """Parse an ``Update``. Kinds other than (edited) messages and posts have no message."""
    if not isinstance(raw, dict):
        raise MalformedUpdateError("an update must be a JSON object")
    update_id = _int(raw, "update_id", "update")
    for name, is_edit in MESSAGE_FIELDS.items():
        if name in raw:
            obj = _dict(raw, name, "update")
            if obj is None:
                raise MalformedUpdateError(f"update.{name} is null")
            return Update(update_id, name, parse_message(obj, name), is_edit, raw)
    kind = next((k for k in raw if k != "update_id"), "empty")
    return Update(update_id, kind, None, False, raw)
