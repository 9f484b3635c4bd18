"""Actions: what an outcome of ``act`` asks for, and the signed webhook that tells platforms."""

from redress.actions.errors import WebhookSignatureError
from redress.actions.interfaces import (
    Actioner,
    ActionKind,
    ActionRequest,
    ActionResult,
    ActionTarget,
)
from redress.actions.reupload import BLOCKED_BANK, BlockReuploadActioner
from redress.actions.webhook import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    WebhookDelivery,
    WebhookSender,
    sign,
    verify_signature,
)

__all__ = [
    "BLOCKED_BANK",
    "DELIVERY_HEADER",
    "EVENT_HEADER",
    "SIGNATURE_HEADER",
    "ActionKind",
    "ActionRequest",
    "ActionResult",
    "ActionTarget",
    "Actioner",
    "BlockReuploadActioner",
    "WebhookDelivery",
    "WebhookSender",
    "WebhookSignatureError",
    "sign",
    "verify_signature",
]
