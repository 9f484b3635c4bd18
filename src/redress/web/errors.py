"""Errors of the web layer, and the one JSON envelope every error is answered with.

``{"ok": false, "error": "<code>", "detail": "<message>", "status": N}`` for a
``RedressError`` (its code and status), Starlette's 404/405, a request that
fails validation (422 ``validation_error``) and anything unexpected (500
``internal_error``, with the traceback only in the log).

Hierarchy (this module)::

    RedressError
    ├── InvalidInputError
    │   ├── HashSetInvalidError       400  a submitted hash set breaks hashset.json
    │   ├── DeclarationMissingError   400  a portal case without both declarations
    │   └── TooManyHashesError        413  a portal case over REDRESS_PORTAL_MAX_HASHES
    └── BrowserUnavailableError       500  headless Chromium or Playwright is missing
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from redress.errors import InvalidInputError, RedressError
from redress.pipeline.errors import QueueFullError, RateLimitedError

log = logging.getLogger(__name__)


class HashSetInvalidError(InvalidInputError):
    """A hash set (what the portal sends for one file) does not follow hashset.json."""

    code = "bad_hash_set"
    status_code = 400


class DeclarationMissingError(InvalidInputError):
    """A portal case needs both declarations: she is the person shown, and an adult."""

    code = "declaration_required"
    status_code = 400


class TooManyHashesError(InvalidInputError):
    """A portal case carries more hashes than ``REDRESS_PORTAL_MAX_HASHES``."""

    code = "too_many_hashes"
    status_code = 413


class BrowserUnavailableError(RedressError):
    """`redress bench portal` needs Playwright and a Chromium executable."""

    code = "browser_unavailable"
    status_code = 500


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media",
    422: "validation_error",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}


class ErrorEnvelope(BaseModel):
    """The body of every error response."""

    ok: bool = False
    error: str
    detail: str
    status: int


def envelope(
    code: str, detail: str, status: int, headers: dict[str, str] | None = None
) -> JSONResponse:
    """A JSON error response in the one envelope."""
    body = {"ok": False, "error": code, "detail": detail, "status": status}
    return JSONResponse(body, status_code=status, headers=headers)


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` a route declares for its errors (the envelope model each)."""
    return {
        s: {"model": ErrorEnvelope, "description": _HTTP_CODES.get(s, "error")} for s in statuses
    }


def redress_error_response(exc: RedressError) -> JSONResponse:
    """Render a RedressError, with Retry-After where the error carries one."""
    headers: dict[str, str] | None = None
    if isinstance(exc, RateLimitedError | QueueFullError):
        headers = {"Retry-After": str(max(1, round(exc.retry_after + 0.499)))}
    if exc.status_code == 401:
        headers = {**(headers or {}), "WWW-Authenticate": "Bearer"}
    return envelope(exc.code, exc.message, exc.status_code, headers)


def _validation_detail(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:10]:
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        parts.append(f"{where}: {err.get('msg', 'invalid')}" if where else str(err.get("msg")))
    return "; ".join(parts) or "invalid request"


def _database_down(exc: BaseException) -> bool:
    """True for a lost, refused or busy database connection; False for a bad query or a
    missing table (those are bugs: 500)."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if not isinstance(exc, OperationalError):
        return False
    orig = exc.orig
    if hasattr(orig, "sqlstate"):  # psycopg: no SQLSTATE when the connection failed
        state: str | None = getattr(orig, "sqlstate", None)
        return state is None or state.startswith("08") or state in ("57P01", "57P02", "57P03")
    return "database is locked" in str(orig)  # SQLite's busy timeout ran out


def install_error_handlers(app: FastAPI) -> None:
    """Make every error, expected or not, answer in the envelope."""

    async def on_redress(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RedressError)
        return redress_error_response(exc)

    async def on_http(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        detail = exc.detail if isinstance(exc.detail, str) else code
        headers = dict(exc.headers) if exc.headers else None
        return envelope(code, detail, exc.status_code, headers)

    async def on_validation(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return envelope("validation_error", _validation_detail(exc), 422)

    async def on_database(request: Request, exc: Exception) -> JSONResponse:
        if not _database_down(exc):
            return await on_unexpected(request, exc)
        # A restart or failover: pool_pre_ping reconnects on the next request, and the
        # transaction rolled back, so the client may simply retry.
        log.warning("database unavailable on %s %s: %s", request.method, request.url.path, exc)
        return envelope(
            "database_unavailable",
            "the database is unavailable; nothing was saved; retry later",
            503,
            {"Retry-After": "2"},
        )

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return envelope("internal_error", "an internal error occurred; it has been logged", 500)

    app.add_exception_handler(RedressError, on_redress)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(RequestValidationError, on_validation)
    # Registered by class (not under Exception), so Starlette answers without re-raising.
    app.add_exception_handler(DBAPIError, on_database)
    app.add_exception_handler(Exception, on_unexpected)
