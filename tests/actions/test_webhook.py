"""Signed webhooks: signing, verification, replay window, and delivery to a receiver."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

import httpx
import pytest

from redress.actions import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    WebhookDelivery,
    WebhookSender,
    WebhookSignatureError,
    sign,
    verify_signature,
)

SECRET = b"s3cret-shared-with-the-platform"
BODY = b'{"event":"scan.completed","job":{"id":"abc"}}'


def test_a_signed_body_verifies() -> None:
    header = sign(SECRET, BODY, 1_700_000_000)
    assert verify_signature(SECRET, BODY, header, now=1_700_000_010) == 1_700_000_000


@pytest.mark.parametrize(
    ("secret", "body", "now", "message"),
    [
        (b"wrong", BODY, 1_700_000_000, "does not match"),
        (SECRET, BODY + b" ", 1_700_000_000, "does not match"),
        (SECRET, BODY, 1_700_000_301, "more than the 300 s"),
        (SECRET, BODY, 1_699_999_699, "more than the 300 s"),
    ],
)
def test_tampering_and_replays_are_refused(
    secret: bytes, body: bytes, now: int, message: str
) -> None:
    header = sign(SECRET, BODY, 1_700_000_000)
    with pytest.raises(WebhookSignatureError, match=message):
        verify_signature(secret, body, header, now=now)


@pytest.mark.parametrize("header", [None, "", "garbage", "t=notanumber,v1=00", "v1=abc"])
def test_malformed_headers_are_refused(header: str | None) -> None:
    with pytest.raises(WebhookSignatureError) as err:
        verify_signature(SECRET, BODY, header, now=1_700_000_000)
    assert err.value.code == "bad_webhook_signature"


def test_a_resigned_timestamp_does_not_verify() -> None:
    # Moving the timestamp forward without the secret breaks the signature.
    header = sign(SECRET, BODY, 1_700_000_000).replace("t=1700000000", "t=1700000500")
    with pytest.raises(WebhookSignatureError, match="does not match"):
        verify_signature(SECRET, BODY, header, now=1_700_000_500)


class Receiver:
    """A WSGI webhook receiver that verifies like a platform would and drops repeats."""

    def __init__(self, status: str = "204 No Content") -> None:
        self.status = status
        self.accepted: list[dict[str, Any]] = []
        self.refused: list[str] = []
        self.deliveries: set[str] = set()

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        try:
            verify_signature(SECRET, body, environ.get("HTTP_REDRESS_SIGNATURE"))
        except WebhookSignatureError as exc:
            self.refused.append(exc.code)
            start_response("401 Unauthorized", [])
            return [b""]
        delivery = environ["HTTP_REDRESS_DELIVERY"]
        if delivery not in self.deliveries:
            self.deliveries.add(delivery)
            self.accepted.append(
                {"event": environ["HTTP_REDRESS_EVENT"], "payload": json.loads(body)}
            )
        start_response(self.status, [])
        return [b""]


def test_sender_delivers_a_verifiable_webhook() -> None:
    receiver = Receiver()
    with httpx.Client(transport=httpx.WSGITransport(app=receiver)) as client:
        result = WebhookSender(client).send(
            WebhookDelivery("http://platform.test/hook", SECRET, "scan.completed", "d1", {"a": 1})
        )
    assert result.ok
    assert receiver.accepted == [{"event": "scan.completed", "payload": {"a": 1}}]


def test_a_repeated_delivery_is_recognisable() -> None:
    receiver = Receiver()
    delivery = WebhookDelivery("http://platform.test/hook", SECRET, "e", "same-id", {"a": 1})
    with httpx.Client(transport=httpx.WSGITransport(app=receiver)) as client:
        sender = WebhookSender(client)
        assert sender.send(delivery).ok
        assert sender.send(delivery).ok
    assert len(receiver.accepted) == 1


def test_wrong_secret_is_refused_by_the_receiver() -> None:
    receiver = Receiver()
    with httpx.Client(transport=httpx.WSGITransport(app=receiver)) as client:
        result = WebhookSender(client).send(
            WebhookDelivery("http://platform.test/hook", b"other", "e", "d", {})
        )
    assert not result.ok
    assert result.detail == "HTTP 401"
    assert receiver.refused == ["bad_webhook_signature"]


def test_network_failure_is_a_result_not_an_exception() -> None:
    with httpx.Client(timeout=0.5) as client:
        result = WebhookSender(client).send(
            WebhookDelivery("http://127.0.0.1:9/hook", SECRET, "e", "d", {})
        )
    assert not result.ok
    assert "ConnectError" in result.detail


def test_headers_are_named_as_documented() -> None:
    assert (SIGNATURE_HEADER, DELIVERY_HEADER, EVENT_HEADER) == (
        "Redress-Signature",
        "Redress-Delivery",
        "Redress-Event",
    )
