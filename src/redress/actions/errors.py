"""Errors of the actions domain.

Hierarchy::

    RedressError
    └── WebhookSignatureError   bad_webhook_signature  401  a webhook whose signature,
                                                             timestamp or format is wrong
"""

from __future__ import annotations

from redress.errors import RedressError


class WebhookSignatureError(RedressError):
    """A received webhook whose signature is missing, malformed, wrong or too old."""

    code = "bad_webhook_signature"
    status_code = 401
