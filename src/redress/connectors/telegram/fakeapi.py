"""A local Bot API server (ASGI) for tests and ``redress bench telegram``.

It implements the methods the bot uses with the JSON the Bot API documents:
the ``{"ok": ..., "result": ...}`` envelope, error objects with ``error_code``,
``description`` and ``parameters`` (``retry_after`` on 429), Update / Message
/ PhotoSize / File / ChatMember objects with their documented field names,
and file downloads from ``/file/bot<token>/<file_path>``. It holds chats,
members and the bot's admin rights, files, and a queue of updates.

It is not a product component: nothing in Redress talks to it except through
an ``httpx.AsyncClient(transport=httpx.ASGITransport(app=fake.app))``.
"""

from __future__ import annotations

import io
import itertools
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from PIL import Image
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

CLOUD_LIMIT = 20 * 1024 * 1024
Json = dict[str, Any]


def user(
    user_id: int,
    first_name: str,
    *,
    username: str | None = None,
    language_code: str | None = None,
    last_name: str | None = None,
) -> Json:
    """A ``User`` object."""
    obj: Json = {"id": user_id, "is_bot": False, "first_name": first_name}
    if last_name:
        obj["last_name"] = last_name
    if username:
        obj["username"] = username
    if language_code:
        obj["language_code"] = language_code
    return obj


def chat(
    chat_id: int, title: str, *, kind: str = "supergroup", username: str | None = None
) -> Json:
    """A ``Chat`` object for a group, supergroup or channel."""
    obj: Json = {"id": chat_id, "type": kind, "title": title}
    if username:
        obj["username"] = username
    return obj


def private_chat(person: Json) -> Json:
    """The ``Chat`` of a private conversation with ``person``."""
    obj: Json = {"id": person["id"], "type": "private", "first_name": person["first_name"]}
    if "username" in person:
        obj["username"] = person["username"]
    return obj


def jpeg(width: int, height: int, seed: int = 0) -> bytes:
    """A deterministic, detailed JPEG (enough structure for a high-quality PDQ hash)."""
    image = Image.new("RGB", (width, height))
    pixels = [
        (
            (x * 7 + y * 3 + seed * 37) % 256,
            ((x // 8) * 31 + (y // 8) * 17 + seed * 11) % 256,
            ((x ^ y) * 5 + seed * 3) % 256,
        )
        for y in range(height)
        for x in range(width)
    ]
    image.putdata(pixels)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


@dataclass
class StoredFile:
    """A file the server can serve."""

    file_id: str
    file_unique_id: str
    data: bytes
    file_path: str
    size: int  # what the server reports; may exceed len(data) to simulate huge files


@dataclass
class FakeBotApi:
    """State and routes of the fake server. ``app`` is the ASGI application."""

    token: str = "123456:TEST-token_value"  # noqa: S105 - a fake server's fake token
    bot: Json = field(
        default_factory=lambda: {
            "id": 123456,
            "is_bot": True,
            "first_name": "Redress Guard",
            "username": "redress_guard_bot",
        }
    )
    file_limit: int | None = CLOUD_LIMIT  # None: a self-hosted server in --local mode
    chats: dict[int, Json] = field(default_factory=dict)
    members: dict[tuple[int, int], Json] = field(default_factory=dict)
    messages: set[tuple[int, int]] = field(default_factory=set)
    files: dict[str, StoredFile] = field(default_factory=dict)
    updates: deque[Json] = field(default_factory=deque)
    started: set[int] = field(default_factory=set)  # users who opened a private chat
    blocked: set[int] = field(default_factory=set)  # users who blocked the bot
    sent: list[Json] = field(default_factory=list)
    calls: list[tuple[str, Json]] = field(default_factory=list)
    webhook: Json | None = None
    rate_limits: dict[str, deque[int]] = field(default_factory=dict)
    failures: dict[str, deque[tuple[int, str]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._update_ids = itertools.count(1000)
        self._message_ids: dict[int, itertools.count[int]] = {}
        self._file_ids = itertools.count(1)
        self.app = Starlette(
            routes=[
                Route("/bot{token}/{method}", self._method, methods=["GET", "POST"]),
                Route("/file/bot{token}/{path:path}", self._file, methods=["GET"]),
            ]
        )

    # -- setting the scene -------------------------------------------------------

    def add_chat(self, obj: Json, *, bot_admin: bool = True, can_delete: bool = True) -> Json:
        """Add a group with the bot in it, as an admin (with rights) or a plain member."""
        self.chats[obj["id"]] = obj
        if bot_admin:
            member: Json = {
                "status": "administrator",
                "user": self.bot,
                "can_be_edited": False,
                "is_anonymous": False,
                "can_manage_chat": True,
                "can_delete_messages": can_delete,
                "can_manage_video_chats": False,
                "can_restrict_members": True,
                "can_promote_members": False,
                "can_change_info": False,
                "can_invite_users": True,
                "can_post_stories": False,
                "can_edit_stories": False,
                "can_delete_stories": False,
            }
        else:
            member = {"status": "member", "user": self.bot}
        self.members[(obj["id"], self.bot["id"])] = member
        return obj

    def add_member(self, chat_id: int, person: Json) -> None:
        """Make ``person`` a member of the chat."""
        self.members[(chat_id, person["id"])] = {"status": "member", "user": person}

    def add_file(
        self, data: bytes, folder: str, ext: str, *, size: int | None = None
    ) -> StoredFile:
        """Store bytes; ``size`` can claim more than ``len(data)`` to simulate a huge file."""
        n = next(self._file_ids)
        stored = StoredFile(
            file_id=f"AgACAgIAAxkBAAI{n:08d}",
            file_unique_id=f"AQAD{n:06d}",
            data=data,
            file_path=f"{folder}/file_{n}.{ext}",
            size=size if size is not None else len(data),
        )
        self.files[stored.file_id] = stored
        return stored

    def _file_object(self, stored: StoredFile, **extra: Any) -> Json:
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": stored.size,
            **extra,
        }

    def photo_sizes(self, data: bytes, *, size: int | None = None) -> list[Json]:
        """PhotoSize array, smallest first: a 90 px thumbnail and the full image."""
        image = Image.open(io.BytesIO(data))
        width, height = image.size
        thumb = image.copy()
        thumb.thumbnail((90, 90))
        out = io.BytesIO()
        thumb.convert("RGB").save(out, "JPEG")
        small = self.add_file(out.getvalue(), "photos", "jpg")
        full = self.add_file(data, "photos", "jpg", size=size)
        return [
            self._file_object(small, width=thumb.size[0], height=thumb.size[1]),
            self._file_object(full, width=width, height=height),
        ]

    def video(self, data: bytes, *, size: int | None = None, kind: str = "video") -> Json:
        """A Video (or Animation / VideoNote with ``kind``) object for stored bytes."""
        stored = self.add_file(
            data, "videos" if kind != "animation" else "animations", "mp4", size=size
        )
        if kind == "video_note":
            return self._file_object(stored, length=240, duration=3)
        return self._file_object(
            stored, width=320, height=240, duration=3, mime_type="video/mp4", file_name="clip.mp4"
        )

    def document(self, data: bytes, mime_type: str, file_name: str) -> Json:
        """A Document object."""
        stored = self.add_file(data, "documents", file_name.rsplit(".", 1)[-1])
        return self._file_object(stored, file_name=file_name, mime_type=mime_type)

    def sticker(self, data: bytes, *, is_animated: bool = False, is_video: bool = False) -> Json:
        """A Sticker object (static WebP unless animated/video)."""
        stored = self.add_file(data, "stickers", "webp")
        return self._file_object(
            stored,
            type="regular",
            width=512,
            height=512,
            is_animated=is_animated,
            is_video=is_video,
            emoji="🙂",
        )

    def message(self, chat_obj: Json, sender: Json | None, **content: Any) -> Json:
        """A Message in ``chat_obj`` from ``sender``, with ``content`` fields (photo=..., ...)."""
        ids = self._message_ids.setdefault(chat_obj["id"], itertools.count(1))
        message_id = content.pop("message_id", None) or next(ids)
        msg: Json = {"message_id": message_id, "date": int(time.time()), "chat": chat_obj}
        if sender is not None:
            msg["from"] = sender
        msg.update(content)
        self.messages.add((chat_obj["id"], message_id))
        return msg

    def push(self, kind: str, obj: Any) -> Json:
        """Queue an update of ``kind`` ("message", "edited_message", ...)."""
        update = {"update_id": next(self._update_ids), kind: obj}
        self.updates.append(update)
        return update

    def push_raw(self, update: Json) -> Json:
        """Queue an arbitrary (possibly malformed) update; gives it an update_id if it has none."""
        update.setdefault("update_id", next(self._update_ids))
        self.updates.append(update)
        return update

    def rate_limit(self, method: str, retry_after: int, times: int = 1) -> None:
        """Answer the next ``times`` calls of ``method`` with 429 and ``retry_after``."""
        self.rate_limits.setdefault(method, deque()).extend([retry_after] * times)

    def fail(self, method: str, status: int, description: str, times: int = 1) -> None:
        """Answer the next ``times`` calls of ``method`` with this error."""
        self.failures.setdefault(method, deque()).extend([(status, description)] * times)

    def called(self, method: str) -> list[Json]:
        """The parameters of every call of ``method``."""
        return [params for name, params in self.calls if name == method]

    # -- wire ---------------------------------------------------------------------

    @staticmethod
    def _ok(result: Any) -> JSONResponse:
        return JSONResponse({"ok": True, "result": result})

    @staticmethod
    def _error(status: int, description: str, parameters: Json | None = None) -> JSONResponse:
        body: Json = {"ok": False, "error_code": status, "description": description}
        if parameters:
            body["parameters"] = parameters
        return JSONResponse(body, status_code=status)

    async def _params(self, request: Request) -> Json:
        params: Json = dict(request.query_params)
        if request.method == "POST":
            kind = request.headers.get("content-type", "")
            if kind.startswith("application/json"):
                body = await request.json()
                if isinstance(body, dict):
                    params.update(body)
            elif kind:
                form = await request.form()
                params.update({k: v for k, v in form.items() if isinstance(v, str)})
        return params

    async def _method(self, request: Request) -> Response:
        if request.path_params["token"] != self.token:
            return self._error(401, "Unauthorized")
        method = request.path_params["method"]
        params = await self._params(request)
        self.calls.append((method, params))
        waits = self.rate_limits.get(method)
        if waits:
            wait = waits.popleft()
            return self._error(429, f"Too Many Requests: retry after {wait}", {"retry_after": wait})
        failures = self.failures.get(method)
        if failures:
            status, description = failures.popleft()
            return self._error(status, description)
        snake = "".join(f"_{c.lower()}" if c.isupper() else c for c in method)
        handler = getattr(self, f"_m_{snake}", None)
        if handler is None:
            return self._error(404, "Not Found")
        result: Response = handler(params)
        return result

    def _m_get_me(self, params: Json) -> Response:
        return self._ok(self.bot)

    def _m_get_updates(self, params: Json) -> Response:
        if self.webhook is not None:
            return self._error(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset = int(params.get("offset") or 0)
        limit = int(params.get("limit") or 100)
        while self.updates and offset and self.updates[0]["update_id"] < offset:
            self.updates.popleft()  # confirmed by the offset
        return self._ok(list(itertools.islice(self.updates, 0, limit)))

    def _m_set_webhook(self, params: Json) -> Response:
        url = params.get("url") or ""
        if url and not str(url).startswith("https://"):
            return self._error(
                400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook"
            )
        self.webhook = {"url": url, "secret_token": params.get("secret_token")} if url else None
        return self._ok(True)

    def _m_delete_webhook(self, params: Json) -> Response:
        self.webhook = None
        if params.get("drop_pending_updates"):
            self.updates.clear()
        return self._ok(True)

    def _m_get_file(self, params: Json) -> Response:
        stored = self.files.get(str(params.get("file_id")))
        if stored is None:
            return self._error(400, "Bad Request: invalid file_id")
        if self.file_limit is not None and stored.size > self.file_limit:
            return self._error(400, "Bad Request: file is too big")
        return self._ok(self._file_object(stored, file_path=stored.file_path))

    async def _file(self, request: Request) -> Response:
        if request.path_params["token"] != self.token:
            return self._error(401, "Unauthorized")
        path = request.path_params["path"]
        for stored in self.files.values():
            if stored.file_path == path:
                return Response(stored.data, media_type="application/octet-stream")
        return self._error(404, "Not Found")

    def _bot_member(self, chat_id: int) -> Json | None:
        return self.members.get((chat_id, self.bot["id"]))

    def _chat_check(self, chat_id: int) -> Response | None:
        if chat_id not in self.chats:
            return self._error(400, "Bad Request: chat not found")
        member = self._bot_member(chat_id)
        if member is None or member["status"] in {"left", "kicked"}:
            kind = self.chats[chat_id]["type"]
            return self._error(403, f"Forbidden: bot is not a member of the {kind} chat")
        return None

    def _m_delete_message(self, params: Json) -> Response:
        chat_id, message_id = int(params["chat_id"]), int(params["message_id"])
        problem = self._chat_check(chat_id)
        if problem is not None:
            return problem
        if (chat_id, message_id) not in self.messages:
            return self._error(400, "Bad Request: message to delete not found")
        member = self._bot_member(chat_id) or {}
        if member.get("status") != "administrator" or not member.get("can_delete_messages"):
            return self._error(400, "Bad Request: message can't be deleted")
        self.messages.discard((chat_id, message_id))
        return self._ok(True)

    def _restrict(self, params: Json, status: str) -> Response:
        chat_id, user_id = int(params["chat_id"]), int(params["user_id"])
        problem = self._chat_check(chat_id)
        if problem is not None:
            return problem
        member = self._bot_member(chat_id) or {}
        if member.get("status") != "administrator" or not member.get("can_restrict_members"):
            return self._error(
                400, "Bad Request: not enough rights to restrict/unrestrict chat member"
            )
        target = self.members.get((chat_id, user_id))
        if target is None:
            return self._error(400, "Bad Request: user not found")
        entry: Json = {"status": status, "user": target["user"], "until_date": 0}
        if status == "restricted":
            entry.update({"is_member": True, **params.get("permissions", {})})
        self.members[(chat_id, user_id)] = entry
        return self._ok(True)

    def _m_ban_chat_member(self, params: Json) -> Response:
        return self._restrict(params, "kicked")

    def _m_restrict_chat_member(self, params: Json) -> Response:
        return self._restrict(params, "restricted")

    def _m_send_message(self, params: Json) -> Response:
        chat_id = int(params["chat_id"])
        text = str(params.get("text") or "")
        if not text:
            return self._error(400, "Bad Request: message text is empty")
        if chat_id > 0:
            if chat_id in self.blocked:
                return self._error(403, "Forbidden: bot was blocked by the user")
            if chat_id not in self.started:
                return self._error(403, "Forbidden: bot can't initiate conversation with a user")
            target = {"id": chat_id, "type": "private", "first_name": str(chat_id)}
        else:
            problem = self._chat_check(chat_id)
            if problem is not None:
                return problem
            target = self.chats[chat_id]
        msg = self.message(target, self.bot, text=text)
        self.sent.append(msg)
        return self._ok(msg)

    def _m_get_chat_member(self, params: Json) -> Response:
        chat_id, user_id = int(params["chat_id"]), int(params["user_id"])
        if chat_id not in self.chats:
            return self._error(400, "Bad Request: chat not found")
        member = self.members.get((chat_id, user_id))
        if member is None:
            return self._error(400, "Bad Request: user not found")
        return self._ok(member)
