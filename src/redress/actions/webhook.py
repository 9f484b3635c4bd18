"""Signed webhooks: HMAC-SHA256 over the timestamp and the body.

Every webhook Redress sends carries three headers:

- ``Redress-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>``, where the
  HMAC key is the receiver's webhook secret and the message is
  ``f"{t}.".encode() + body`` (the exact bytes of the body);
- ``Redress-Delivery: <id>``: unique per logical delivery and repeated on a
  retry, so a receiver can drop a repeat;
- ``Redress-Event: <event name>``.

A receiver calls :func:`verify_signature`: it recomputes the HMAC, compares in
constant time, and refuses a timestamp more than ``tolerance`` seconds
(default 300) from its own clock. Together with remembering delivery IDs for
that window, this stops replays: an old request cannot be re-sent because
its timestamp is signed, and a fresh replay within the window repeats a
delivery ID already seen.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any

import httpx

from redress.actions.errors import WebhookSignatureError
from redress.actions.interfaces import ActionResult

SIGNATURE_HEADER = "Redress-Signature"
DELIVERY_HEADER = "Redress-Delivery"
EVENT_HEADER = "Redress-Event"
DEFAULT_TOLERANCE_SECONDS = 300


def sign(secret: bytes, body: bytes, timestamp: int) -> str:
    """The ``Redress-Signature`` header value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify_signature(
    secret: bytes,
    body: bytes,
    header: str | None,
    *,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> int:
    """Check a received webhook; return its signed timestamp.

    Raises :class:`WebhookSignatureError` when the header is missing or
    malformed, the timestamp is outside ``tolerance`` seconds of ``now``, or
    no ``v1`` signature matches.
    """
    if not header:
        raise WebhookSignatureError(f"missing {SIGNATURE_HEADER} header")
    parts: dict[str, list[str]] = {}
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            raise WebhookSignatureError(f"malformed {SIGNATURE_HEADER} header")
        parts.setdefault(key, []).append(value)
    try:
        timestamp = int(parts["t"][0])
    except (KeyError, ValueError) as exc:
        raise WebhookSignatureError("signature header has no valid timestamp") from exc
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise WebhookSignatureError(
            f"signature timestamp is {int(current - timestamp)} s from now; "
            f"more than the {tolerance} s allowed (a replay or a wrong clock)"
        )
    expected = sign(secret, body, timestamp).split("v1=", 1)[1]
    if not any(hmac.compare_digest(expected, given) for given in parts.get("v1", [])):
        raise WebhookSignatureError("webhook signature does not match")
    return timestamp


@dataclass(frozen=True, slots=True)
class WebhookDelivery:
    """One webhook to send: where, with which secret, what."""

    url: str
    secret: bytes
    event: str
    delivery_id: str
    payload: dict[str, Any]


class WebhookSender:
    """Sends signed webhooks over an injected ``httpx.Client``."""

    def __init__(self, client: httpx.Client) -> None:
        self._client = client

    def send(self, delivery: WebhookDelivery, *, now: float | None = None) -> ActionResult:
        """POST the signed payload; a 2xx answer is success. Never raises for network errors."""
        body = json.dumps(delivery.payload, sort_keys=True, separators=(",", ":")).encode()
        timestamp = int(time.time() if now is None else now)
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(delivery.secret, body, timestamp),
            DELIVERY_HEADER: delivery.delivery_id,
            EVENT_HEADER: delivery.event,
        }
        try:
            response = self._client.post(delivery.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return ActionResult(ok=False, detail=f"{type(exc).__name__}: {exc}")
        if response.is_success:
            return ActionResult(ok=True, detail=f"HTTP {response.status_code}")
        return ActionResult(ok=False, detail=f"HTTP {response.status_code}")
