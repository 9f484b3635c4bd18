"""Errors of the pipeline, its API keys and its queue.

Hierarchy (all under :class:`redress.errors.RedressError`)::

    RedressError
    ├── InvalidInputError                       400
    │   ├── BadPolicyError           bad_policy             a policy file that cannot work
    │   └── IdempotencyConflictError idempotency_conflict   422: same key, different request
    ├── NotFoundError                           404
    │   ├── UnknownBankError         unknown_bank           a scan names a bank that does not exist
    │   └── JobNotFoundError         job_not_found          no such job (or not yours)
    ├── AuthenticationError          unauthenticated  401   missing, wrong, expired or revoked key
    ├── ScopeError                   forbidden        403   the key lacks the scope
    ├── RateLimitedError             rate_limited     429   the key's token bucket is empty
    ├── PayloadTooLargeError         payload_too_large 413  the request body is over the limit
    ├── UnsupportedMediaError        unsupported_media 415  an upload that is not an image or video
    └── QueueFullError               queue_full       503   the embedded queue is full; retry later
        └── BrokerUnavailableError   broker_unavailable 503 Redis does not answer; retry later
"""

from __future__ import annotations

from redress.errors import InvalidInputError, NotFoundError, RedressError


class BadPolicyError(InvalidInputError):
    """A policy file that cannot be parsed or names an unknown outcome or action."""

    code = "bad_policy"


class IdempotencyConflictError(InvalidInputError):
    """An Idempotency-Key reused with a different request body."""

    code = "idempotency_conflict"
    status_code = 422


class UnknownBankError(NotFoundError):
    """A scan restricted to a bank that does not exist."""

    code = "unknown_bank"


class JobNotFoundError(NotFoundError):
    """No scan job with this ID is visible to the caller."""

    code = "job_not_found"


class AuthenticationError(RedressError):
    """No API key, or one that is unknown, expired or revoked."""

    code = "unauthenticated"
    status_code = 401


class ScopeError(RedressError):
    """The API key is valid but lacks the scope the route needs."""

    code = "forbidden"
    status_code = 403


class RateLimitedError(RedressError):
    """The key's token bucket is empty; ``retry_after`` says when one token is back."""

    code = "rate_limited"
    status_code = 429

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PayloadTooLargeError(RedressError):
    """A request body larger than the configured limit."""

    code = "payload_too_large"
    status_code = 413


class UnsupportedMediaError(RedressError):
    """An upload whose bytes are not a recognised image or video format."""

    code = "unsupported_media"
    status_code = 415


class QueueFullError(RedressError):
    """Back-pressure: the embedded queue is full; ``retry_after`` seconds is a fair wait."""

    code = "queue_full"
    status_code = 503

    def __init__(self, message: str, *, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class BrokerUnavailableError(QueueFullError):
    """The broker (Redis) does not answer, so nothing new is accepted until it is back;
    items already accepted are safe in the database."""

    code = "broker_unavailable"
