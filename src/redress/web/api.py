"""Routes of the REST API: thin handlers over the pipeline's services.

Every handler that touches the database runs its work in a thread with one
transaction that the handler (the edge) opens and commits; services only flush.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import ValidationError
from sqlalchemy import select, text
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from redress import __version__
from redress.errors import InvalidInputError, RedressError
from redress.pipeline.errors import (
    JobNotFoundError,
    QueueFullError,
    UnsupportedMediaError,
)
from redress.pipeline.keys import ApiKeyService, KeyInfo, Scope, require_scope
from redress.pipeline.models import ScanItem
from redress.pipeline.ratelimit import HostTokenBuckets, LocalTokenBuckets
from redress.pipeline.service import (
    HashSubmission,
    MediaSubmission,
    ScanContext,
    ScanResult,
    scan_result,
)
from redress.pipeline.store import DEAD, ScanStore
from redress.signals.errors import HashError
from redress.signals.sniff import SNIFF_BYTES, sniff
from redress.web.app import AppState, app_state
from redress.web.errors import envelope, error_responses
from redress.web.schemas import (
    BatchIn,
    BatchItemOut,
    BatchOut,
    DeadLetterOut,
    HealthOut,
    ReadyOut,
    ScanHashesIn,
    ScanOut,
    TargetIn,
    scan_out,
    to_context,
    to_query,
)

router = APIRouter()
bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer rdk_...`")
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=255,
        description="Resubmitting with the same key returns the first item; never a second action.",
    ),
]
AUTH_ERRORS = (401, 403, 429)


def _verify(state: AppState, token: str | None) -> KeyInfo:
    with state.pipeline.sessions() as session:
        key = ApiKeyService(session).authenticate(token)
    if token:
        state.pipeline.keys.put(token, key)
    return key


def authenticated(scope: Scope, *others: Scope) -> Callable[..., Awaitable[KeyInfo]]:
    """A dependency: the caller's API key, checked for ``scope`` (or one of ``others``)
    and its rate limit."""

    async def dependency(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> KeyInfo:
        state = app_state(request)
        token = credentials.credentials if credentials is not None else None
        key = state.pipeline.keys.get(token)
        if key is None:
            key = await run_in_threadpool(_verify, state, token)
        require_scope(key, scope, *others)
        settings = state.settings
        limiter = state.pipeline.limiter
        args = (
            f"key:{key.id}",
            key.rate_per_second or settings.api_rate_per_second,
            key.rate_burst or settings.api_rate_burst,
        )
        if isinstance(limiter, (LocalTokenBuckets, HostTokenBuckets)):  # microseconds
            limiter.take(*args)
        else:  # a network round trip: keep it off the event loop
            await run_in_threadpool(limiter.take, *args)
        return key

    return dependency


ScanKey = Annotated[KeyInfo, Depends(authenticated(Scope.SCAN))]
AdminKey = Annotated[KeyInfo, Depends(authenticated(Scope.ADMIN))]
#: Jobs are read by the key that submitted them and by review keys (docs/api.md).
JobReaderKey = Annotated[KeyInfo, Depends(authenticated(Scope.SCAN, Scope.REVIEW))]


# -- health, readiness, metrics -------------------------------------------------------------


@router.get("/healthz", response_model=HealthOut, tags=["operations"])
async def healthz() -> dict[str, Any]:
    """Liveness: the process answers."""
    return {"ok": True, "version": __version__}


@router.get("/readyz", response_model=ReadyOut, tags=["operations"], responses=error_responses(503))
def readyz(request: Request) -> Any:
    """Readiness: the database, the index (matcher) and the queue or broker all answer."""
    state = app_state(request)
    checks: dict[str, str] = {}
    try:
        with state.pipeline.sessions() as session:
            session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - readiness reports any failure
        checks["database"] = f"error: {type(exc).__name__}"
    try:
        state.pipeline.service.matcher.check()
        checks["index"] = "ok"
    except Exception as exc:  # noqa: BLE001
        checks["index"] = f"error: {type(exc).__name__}"
    try:
        state.pipeline.queue.check()
        checks["broker" if state.settings.broker_url else "queue"] = "ok"
    except Exception as exc:  # noqa: BLE001
        checks["broker" if state.settings.broker_url else "queue"] = f"error: {type(exc).__name__}"
    failed = [name for name, value in checks.items() if value != "ok"]
    if failed:
        return envelope("not_ready", "not ready: " + ", ".join(failed), 503)
    return {"ok": True, "checks": checks}


@router.get(
    "/metrics",
    tags=["operations"],
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
)
def metrics(request: Request) -> Response:
    """Prometheus metrics: queue depth, throughput, latency histograms, outcomes, matches."""
    body = app_state(request).metrics.render()
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")


# -- scanning -------------------------------------------------------------------------------

_SCAN_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/ScanHashesIn"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "caption": {"type": "string"},
                        "reporters": {"type": "integer", "minimum": 0},
                        "platform": {"type": "string"},
                        "chat_id": {"type": "string"},
                        "message_id": {"type": "string"},
                        "user_id": {"type": "string"},
                        "banks": {"type": "string", "description": "comma-separated"},
                        "callback_url": {"type": "string", "format": "uri"},
                    },
                }
            },
        },
    }
}
_SCAN_ERRORS = error_responses(400, 401, 403, 404, 413, 415, 422, 429, 503)


def _parse_json(model: type[Any], body: bytes) -> Any:
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        from fastapi.exceptions import RequestValidationError

        raise RequestValidationError(exc.errors(include_url=False)) from exc


def _scan_hashes(
    state: AppState, body: ScanHashesIn, key: KeyInfo, idempotency_key: str | None
) -> ScanResult:
    query = to_query(body)
    context = to_context(
        key.name,
        caption=body.caption,
        reporters=body.reporters,
        target=body.target,
        banks=body.banks,
    )
    submission = HashSubmission(query=query, context=context)
    (result,) = _scan_hashes_many(
        state, [(submission, idempotency_key or body.idempotency_key)], key
    )
    if isinstance(result, RedressError):
        raise result
    state.metrics.observe_result(result)
    return result


def _scan_hashes_many(
    state: AppState, submissions: Sequence[tuple[HashSubmission, str | None]], key: KeyInfo
) -> list[ScanResult | RedressError]:
    """Scan under the write gate. With several serve processes on one SQLite file, match
    and decide in a read first and hold the gate for the inserts only, so that the
    other processes wait for less. In one process the whole scan holds it: scans one
    after another cost less than scans interleaved under the interpreter lock."""
    service, pipeline = state.pipeline.service, state.pipeline
    if not pipeline.match_before_gate:
        with pipeline.writes, pipeline.sessions.begin() as session:
            return service.scan_hashes_many(session, submissions, key=key)
    with pipeline.sessions.begin() as session:
        plan = service.plan_hash_scans(session, submissions, key=key)
    with pipeline.writes, pipeline.sessions.begin() as session:
        return service.write_hash_scans(session, plan)


def _accept_media(
    state: AppState, submission: MediaSubmission, key: KeyInfo, idempotency_key: str | None
) -> ScanResult:
    if not state.pipeline.queue.has_room():
        raise QueueFullError("the scan queue is full; retry later", retry_after=2.0)
    with state.pipeline.writes, state.pipeline.sessions.begin() as session:
        item, created = state.pipeline.service.accept(
            session, submission, key=key, idempotency_key=idempotency_key
        )
        result = scan_result(item, created=created)
    # The item is durable now; a queue that fills in the meantime is caught by the sweep.
    if created:
        with contextlib.suppress(QueueFullError):
            state.pipeline.queue.submit(item.id)
    return result


def _check_media(data: bytes, filename: str | None) -> None:
    """Refuse an upload that is not an image or video before it is queued."""
    label = f"upload {filename!r}" if filename else "the upload"
    try:
        kind = sniff(data[:SNIFF_BYTES]).kind
    except HashError as exc:  # empty or not a recognised format
        raise UnsupportedMediaError(f"{label}: {exc.message}") from exc
    if kind == "audio":
        raise UnsupportedMediaError(f"{label} is audio; send an image or a video")


def check_callback_url(url: str, *, allow_private: bool) -> None:
    """Refuse a callback URL that is not http(s), has no host, or (unless ``allow_private``)
    names a loopback, private, link-local or reserved address: an API key must not be able
    to aim the server's webhooks at the server's own network (SSRF)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError as exc:
        raise InvalidInputError(
            f"callback_url is not a URL: {exc}", code="bad_callback_url"
        ) from exc
    if parts.scheme not in ("http", "https") or not host:
        raise InvalidInputError("callback_url must be an http(s) URL", code="bad_callback_url")
    if allow_private:
        return
    host = host.rstrip(".")  # "localhost." and "127.0.0.1." resolve like the undotted names
    if host == "localhost" or host.endswith((".localhost", ".local", ".internal")):
        raise InvalidInputError(
            f"callback_url names the local host or network ({host})", code="bad_callback_url"
        )
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(host)
    except ValueError:
        try:  # the legacy spellings resolvers accept: 2130706433, 0x7f.1, 127.1
            address = ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return  # a DNS name; egress filtering covers names that resolve inward
    if not address.is_global:
        raise InvalidInputError(
            f"callback_url points at a non-public address ({address}); set"
            " REDRESS_API_CALLBACK_PRIVATE=true to allow it",
            code="bad_callback_url",
        )


def _form_str(form: Any, name: str) -> str | None:
    value = form.get(name)
    return value if isinstance(value, str) and value != "" else None


def _form_context(form: Any, key: KeyInfo, *, allow_private: bool) -> ScanContext:
    reporters_text = _form_str(form, "reporters") or "0"
    try:
        reporters = int(reporters_text)
    except ValueError as exc:
        raise InvalidInputError("reporters must be an integer", code="invalid_input") from exc
    if reporters < 0:
        raise InvalidInputError("reporters must be 0 or more", code="invalid_input")
    target = TargetIn(
        platform=_form_str(form, "platform"),
        chat_id=_form_str(form, "chat_id"),
        message_id=_form_str(form, "message_id"),
        user_id=_form_str(form, "user_id"),
    )
    callback = _form_str(form, "callback_url")
    if callback is not None:
        check_callback_url(callback, allow_private=allow_private)
    banks = [b.strip() for b in (_form_str(form, "banks") or "").split(",") if b.strip()]
    return to_context(
        key.name,
        caption=_form_str(form, "caption"),
        reporters=reporters,
        target=target,
        banks=banks,
        callback_url=callback,
    )


def _job_response(result: ScanResult) -> JSONResponse:
    headers = {"Location": f"/api/v1/jobs/{result.item_id}"}
    if not result.created:
        headers["Idempotent-Replayed"] = "true"
    status = 202 if result.status == "queued" else 200
    return JSONResponse(scan_out(result), status_code=status, headers=headers)


@router.post(
    "/api/v1/scan",
    tags=["scan"],
    response_model=ScanOut,
    openapi_extra=_SCAN_BODY,
    responses={
        **_SCAN_ERRORS,
        202: {"model": ScanOut, "description": "media accepted; poll the job or await the webhook"},
    },
)
async def scan(request: Request, key: ScanKey, idempotency_key: IdempotencyKey = None) -> Any:
    """Scan one item: JSON hashes are looked up synchronously (200 with the outcome); a
    multipart ``file`` is stored durably and queued (202 with a job to poll)."""
    state = app_state(request)
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        async with request.form(max_files=1, max_fields=32) as form:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise InvalidInputError("a multipart scan needs a `file` part", code="missing_file")
            data = await upload.read()
            _check_media(data, upload.filename)
            submission = MediaSubmission(
                data=data,
                filename=upload.filename,
                context=_form_context(form, key, allow_private=state.settings.api_callback_private),
            )
        result = await run_in_threadpool(_accept_media, state, submission, key, idempotency_key)
        return _job_response(result)
    if content_type.startswith("application/json") or not content_type:
        body = _parse_json(ScanHashesIn, await request.body())
        result = await run_in_threadpool(_scan_hashes, state, body, key, idempotency_key)
        headers = {} if result.created else {"Idempotent-Replayed": "true"}
        return JSONResponse(scan_out(result), headers=headers)
    raise UnsupportedMediaError(
        f"send application/json hashes or a multipart/form-data file, not {content_type!r}",
        code="unsupported_content_type",
    )


def _batch_hashes(state: AppState, body: BatchIn, key: KeyInfo) -> list[BatchItemOut]:
    # Malformed items are answered at once; the rest are scanned and written together.
    out: list[BatchItemOut | None] = []
    valid: list[tuple[HashSubmission, str | None]] = []
    for item in body.items:
        try:
            query = to_query(item)
        except RedressError as exc:
            out.append(_batch_error(exc))
            continue
        context = to_context(
            key.name,
            caption=item.caption,
            reporters=item.reporters,
            target=item.target,
            banks=item.banks,
        )
        valid.append((HashSubmission(query=query, context=context), item.idempotency_key))
        out.append(None)
    answers = _scan_hashes_many(state, valid, key)
    results = iter(answers)
    final: list[BatchItemOut] = []
    for slot in out:
        if slot is not None:
            final.append(slot)
            continue
        answer = next(results)
        if isinstance(answer, RedressError):
            final.append(_batch_error(answer))
        else:
            state.metrics.observe_result(answer)
            final.append(BatchItemOut(ok=True, result=ScanOut(**scan_out(answer)), status=200))
    return final


def _batch_error(exc: RedressError) -> BatchItemOut:
    return BatchItemOut(ok=False, error=exc.code, detail=exc.message, status=exc.status_code)


@router.post(
    "/api/v1/scan/batch",
    tags=["scan"],
    response_model=BatchOut,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/BatchIn"}},
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["files"],
                        "properties": {
                            "files": {
                                "type": "array",
                                "items": {"type": "string", "format": "binary"},
                            },
                            "callback_url": {"type": "string", "format": "uri"},
                        },
                    }
                },
            },
        }
    },
    responses=_SCAN_ERRORS,
)
async def scan_batch(request: Request, key: ScanKey) -> Any:
    """Scan many items: JSON ``{"items": [...]}`` of hash scans (each answered on its own,
    with its own ``idempotency_key``), or multipart ``files`` (each queued as a job). A bad
    item gets its own error; the others carry on."""
    state = app_state(request)
    limit = state.settings.api_batch_max
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        async with request.form(max_files=limit, max_fields=limit + 32) as form:
            context = _form_context(form, key, allow_private=state.settings.api_callback_private)
            results: list[BatchItemOut] = []
            uploads = [u for u in form.getlist("files") if isinstance(u, UploadFile)]
            if not uploads:
                raise InvalidInputError(
                    "a multipart batch needs `files` parts", code="missing_file"
                )
            for upload in uploads:
                data = await upload.read()
                try:
                    _check_media(data, upload.filename)
                    job = await run_in_threadpool(
                        _accept_media,
                        state,
                        MediaSubmission(data=data, filename=upload.filename, context=context),
                        key,
                        None,
                    )
                    results.append(
                        BatchItemOut(ok=True, result=ScanOut(**scan_out(job)), status=202)
                    )
                except RedressError as exc:
                    results.append(
                        BatchItemOut(
                            ok=False, error=exc.code, detail=exc.message, status=exc.status_code
                        )
                    )
            return BatchOut(results=results)
    body: BatchIn = _parse_json(BatchIn, await request.body())
    if len(body.items) > limit:
        raise InvalidInputError(
            f"a batch may carry at most {limit} items; got {len(body.items)}",
            code="batch_too_large",
        )
    return BatchOut(results=await run_in_threadpool(_batch_hashes, state, body, key))


@router.get(
    "/api/v1/jobs/{job_id}",
    tags=["scan"],
    response_model=ScanOut,
    responses=error_responses(401, 403, 404, 429),
)
def get_job(request: Request, job_id: str, key: JobReaderKey) -> Any:
    """The state of a scan job (visible to the key that submitted it, and to review and
    admin keys)."""
    state = app_state(request)
    with state.pipeline.sessions() as session:
        item = ScanStore(session).get(job_id) if len(job_id) <= 64 else None
        visible = item is not None and (
            item.api_key_id == key.id or key.allows(Scope.REVIEW) or key.allows(Scope.ADMIN)
        )
        if item is None or not visible:
            raise JobNotFoundError(f"no job {job_id!r}")
        return scan_out(scan_result(item))


@router.get(
    "/api/v1/dead-letters",
    tags=["operations"],
    response_model=list[DeadLetterOut],
    responses=error_responses(401, 403, 429),
)
def dead_letters(request: Request, key: AdminKey, limit: int = 100) -> Any:
    """Items that could not be processed, with the reason (admin scope)."""
    state = app_state(request)
    with state.pipeline.sessions() as session:
        rows = session.scalars(
            select(ScanItem)
            .where(ScanItem.status == DEAD)
            .order_by(ScanItem.finished_at.desc())
            .limit(max(1, min(limit, 1000)))
        )
        return [
            DeadLetterOut(
                id=row.id,
                mode=row.mode,
                source=row.source,
                attempts=row.attempts,
                error=row.error_code,
                detail=row.error_detail,
            )
            for row in rows
        ]
