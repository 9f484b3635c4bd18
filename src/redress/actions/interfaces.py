"""The interface between pipeline outcomes and the things that carry them out.

An outcome of ``act`` asks for actions (delete the message, restrict the
user, block re-uploads, tell the platform by signed webhook, notify the
victim's case). The pipeline records each one as an :class:`ActionRequest`
in its outbox when the item's outcome commits; an :class:`Actioner` for that
kind (a connector such as the Telegram bot, or the webhook actioner here)
performs it afterwards. ``action_id`` is stable for one item and kind, so an
actioner that is asked twice (a retry after a crash) can recognise the repeat.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol


class ActionKind(enum.StrEnum):
    """What an outcome can ask for."""

    DELETE_MESSAGE = "delete_message"
    RESTRICT_USER = "restrict_user"
    BLOCK_REUPLOAD = "block_reupload"
    WEBHOOK = "webhook"
    NOTIFY_CASE = "notify_case"


@dataclass(frozen=True, slots=True)
class ActionTarget:
    """Where the item was seen, as the platform names it (all optional)."""

    platform: str | None = None
    chat_id: str | None = None
    message_id: str | None = None
    user_id: str | None = None


@dataclass(frozen=True, slots=True)
class ActionRequest:
    """One action to perform for one scanned item."""

    action_id: str
    kind: ActionKind
    item_id: str
    source: str
    target: ActionTarget
    reason: str
    case_ids: tuple[str, ...] = ()
    banks: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ActionResult:
    """What an actioner reports: done or not, with a short detail for the audit trail."""

    ok: bool
    detail: str = ""


class Actioner(Protocol):
    """Performs one kind of action. Implementations must tolerate the same
    ``action_id`` twice (delivery is at least once) and never raise for an
    expected failure: they return ``ActionResult(ok=False, detail=...)``."""

    kind: ActionKind

    def perform(self, request: ActionRequest) -> ActionResult:
        """Carry the action out."""
        ...
