"""Notices on the web: the public form at ``/notice`` and the notice API.

- ``GET /notice``: the form (TAKE IT DOWN Act request or DSA Art. 16 notice), in
  English or Chinese like the victim portal; no login.
- ``POST /notice``: checks the form's CSRF token (a double-submit cookie) and the
  per-address rate limit, then stores the notice, starts its clock and puts the
  content and its copies in review. A form missing fields comes back with each
  one named.
- ``POST /api/v1/notices`` (scope ``notice``; keys with ``trusted_flagger`` are
  trusted flaggers), ``GET /api/v1/notices/{reference}`` (the key that sent it, or
  ``review``), ``GET /api/v1/statements`` and ``GET /api/v1/reports/transparency``
  (``review``).

The acknowledgement e-mail goes out after the notice committed.
"""

from __future__ import annotations

import datetime as dt
import secrets
import threading
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from redress.pipeline.keys import KeyInfo, Scope
from redress.reports.errors import NoticeIncompleteError, NoticeNotFoundError
from redress.reports.interfaces import NoticeIn, NoticeRead, Sender
from redress.reports.mail import mailer_from_settings
from redress.reports.service import NoticeConfig, NoticeService
from redress.reports.statements import StatementConfig, StatementService, to_csv
from redress.reports.store import NoticeStore
from redress.reports.transparency import TransparencyService, parse_day, render
from redress.web.app import AppState, app_state
from redress.web.errors import error_responses

NOTICE_STATE_KEY = "notice"
CSRF_COOKIE = "redress_notice_csrf"
router = APIRouter()


@dataclass
class SeenSlot:
    """The seen-media PDQ index notices search for near-identical copies, built on the
    first notice and brought up to date before each one."""

    _lock: threading.Lock = field(default_factory=threading.Lock)
    _follower: Any = None

    def index(self, engine: Any, quality_min: int) -> Any:
        """The index, caught up with every hash seen so far."""
        from redress.index import MihIndex
        from redress.store.sync import SeenFollower

        with self._lock:
            if self._follower is None:
                self._follower = SeenFollower(engine, MihIndex, quality_min=quality_min)
            self._follower.catch_up()
            return self._follower.images


def install(app: FastAPI) -> None:
    """Add the notice form and API to ``app``."""
    setattr(app.state, NOTICE_STATE_KEY, SeenSlot())
    app.include_router(router)


def _service(request: Request, session: Any) -> NoticeService:
    state = app_state(request)
    slot: SeenSlot = getattr(request.app.state, NOTICE_STATE_KEY)
    return NoticeService(
        NoticeStore(session),
        NoticeConfig.from_settings(state.settings),
        mailer=mailer_from_settings(state.settings),
        seen_index=slot.index(state.pipeline.engine, state.settings.pdq_quality_min),
    )


def submit_notice(request: Request, notice: NoticeIn, sender: Sender) -> NoticeRead:
    """Store a notice in one transaction, then acknowledge it (after the commit)."""
    sessions = app_state(request).pipeline.sessions
    with sessions.begin() as session:
        read = _service(request, session).submit(notice, sender)
    with sessions.begin() as session:
        _service(request, session).acknowledge(read.reference)
    return read


# -- the public form ------------------------------------------------------------------------------

FIELDS = (
    "regime",
    "locations",
    "explanation",
    "signature",
    "non_consent",
    "good_faith",
    "sender_name",
    "sender_email",
    "jurisdiction",
)


def _form_page(
    request: Request, status_code: int, problems: dict[str, str], values: dict[str, str]
) -> Response:
    from redress.web.portal import render as render_page

    token = secrets.token_urlsafe(32)
    response = render_page(
        request,
        "notice/form.html",
        status_code=status_code,
        csrf=token,
        problems=problems,
        values=values,
        reference=None,
    )
    response.set_cookie(
        CSRF_COOKIE, token, max_age=3600, path="/notice", httponly=True, samesite="strict"
    )
    return response


@router.get("/notice", response_class=HTMLResponse, include_in_schema=False)
async def notice_form(request: Request) -> Response:
    """The public notice form."""
    return _form_page(request, 200, {}, {"regime": request.query_params.get("regime", "")})


@router.post("/notice", response_class=HTMLResponse, include_in_schema=False)
async def notice_post(request: Request) -> Response:
    """Take a notice from the form: CSRF, rate limit, validation naming each field."""
    from redress.web.portal import render as render_page

    form = await request.form()
    values = {k: v for k, v in form.items() if isinstance(v, str) and k in FIELDS}
    sent = form.get("csrf_token")
    expected = request.cookies.get(CSRF_COOKIE) or ""
    if not isinstance(sent, str) or not expected or not secrets.compare_digest(sent, expected):
        return _form_page(request, 403, {"csrf": "expired"}, values)
    state = app_state(request)
    client = request.client.host if request.client else "unknown"
    await run_in_threadpool(
        state.pipeline.limiter.take,
        f"notice-form:{client}",
        state.settings.notice_form_rate_per_hour / 3600.0,
        state.settings.notice_form_burst,
    )
    from redress.web.i18n import choose_language

    lang = choose_language(
        request.query_params.get("lang"),
        request.cookies.get("redress_lang"),
        request.headers.get("accept-language"),
    )
    notice = NoticeIn(
        regime=values.get("regime"),
        jurisdiction=values.get("jurisdiction") or None,
        locations=tuple(line for line in values.get("locations", "").splitlines() if line.strip()),
        explanation=values.get("explanation"),
        signature=values.get("signature"),
        good_faith=values.get("good_faith") == "yes",
        non_consent=values.get("non_consent") == "yes",
        sender_name=values.get("sender_name"),
        sender_email=values.get("sender_email"),
        locale=lang.locale,
    )
    try:
        read = await run_in_threadpool(submit_notice, request, notice, Sender("form"))
    except NoticeIncompleteError as exc:
        return _form_page(request, 422, exc.fields, values)
    response = render_page(
        request,
        "notice/form.html",
        status_code=201,
        csrf="",
        problems={},
        values={},
        reference=read.reference,
        due=read.due_at,
    )
    response.delete_cookie(CSRF_COOKIE, path="/notice")
    return response


# -- the API --------------------------------------------------------------------------------------


class NoticeCreate(BaseModel):
    """A notice sent through the API (the same fields as the form)."""

    regime: Literal["take_it_down", "dsa"] | None = Field(
        default=None, description="take_it_down (US TAKE IT DOWN Act) or dsa (EU DSA Art. 16)"
    )
    jurisdiction: str | None = Field(default=None, max_length=8, description="US, EU, DE, ...")
    locations: list[Annotated[str, Field(max_length=2000)]] = Field(
        default_factory=list, max_length=100, description="URLs or message links of the content"
    )
    explanation: str | None = Field(default=None, max_length=10_000)
    signature: str | None = Field(default=None, max_length=300)
    good_faith: bool = False
    non_consent: bool = False
    sender_name: str | None = Field(default=None, max_length=300)
    sender_email: str | None = Field(default=None, max_length=254)


class NoticeItemOut(BaseModel):
    """One item the notice put in review."""

    location: str
    relation: str
    distance: int | None
    review_item_id: int | None
    decided: bool


class NoticeOut(BaseModel):
    """A notice, its clock and its items."""

    reference: str
    regime: str
    jurisdiction: str
    trusted: bool
    received_at: dt.datetime
    due_at: dt.datetime
    status: str
    outcome: str | None
    closed_at: dt.datetime | None
    breached: bool
    items: list[NoticeItemOut]


def notice_out(read: NoticeRead) -> NoticeOut:
    """The API view of a notice."""
    return NoticeOut(
        reference=read.reference,
        regime=read.regime.value,
        jurisdiction=read.jurisdiction,
        trusted=read.trusted,
        received_at=read.received_at,
        due_at=read.due_at,
        status=read.status.value,
        outcome=read.outcome.value if read.outcome else None,
        closed_at=read.closed_at,
        breached=read.breached,
        items=[
            NoticeItemOut(
                location=i.location,
                relation=i.relation.value,
                distance=i.distance,
                review_item_id=i.review_item_id,
                decided=i.decided,
            )
            for i in read.items
        ],
    )


def _auth(scope: Scope, *others: Scope) -> Any:
    from redress.web.api import authenticated

    return Depends(authenticated(scope, *others))


NoticeKey = Annotated[KeyInfo, _auth(Scope.NOTICE)]
ReviewKey = Annotated[KeyInfo, _auth(Scope.REVIEW)]
# Reading a notice: the key that sent it (scope notice) or any review key.
NoticeReaderKey = Annotated[KeyInfo, _auth(Scope.NOTICE, Scope.REVIEW)]


@router.post(
    "/api/v1/notices",
    tags=["notices"],
    status_code=201,
    response_model=NoticeOut,
    responses=error_responses(400, 401, 403, 422, 429),
)
async def create_notice(request: Request, body: NoticeCreate, key: NoticeKey) -> Any:
    """Send a notice: a 48-hour clock (per jurisdiction) starts and the content and every
    copy Redress has seen go to review. A notice missing fields gets 422
    ``notice_incomplete`` naming each. Keys with the ``trusted_flagger`` scope are
    trusted flaggers (DSA Art. 22): their notices come first."""
    notice = NoticeIn(
        regime=body.regime,
        jurisdiction=body.jurisdiction,
        locations=tuple(body.locations),
        explanation=body.explanation,
        signature=body.signature,
        good_faith=body.good_faith,
        non_consent=body.non_consent,
        sender_name=body.sender_name,
        sender_email=body.sender_email,
    )
    sender = Sender("api", api_key_id=key.id, trusted=Scope.TRUSTED_FLAGGER in key.scopes)
    read = await run_in_threadpool(submit_notice, request, notice, sender)
    return JSONResponse(notice_out(read).model_dump(mode="json"), status_code=201)


def _read_notice(state: AppState, request: Request, reference: str, key: KeyInfo) -> NoticeOut:
    with state.pipeline.sessions() as session:
        store = NoticeStore(session)
        row = store.notice(reference[:32])
        mine = row is not None and row.api_key_id == key.id
        if row is None or not (mine or key.allows(Scope.REVIEW)):
            raise NoticeNotFoundError(f"no notice {reference!r}")
        return notice_out(_service(request, session).read(row.reference))


@router.get(
    "/api/v1/notices/{reference}",
    tags=["notices"],
    response_model=NoticeOut,
    responses=error_responses(401, 403, 404, 429),
)
def get_notice(request: Request, reference: str, key: NoticeReaderKey) -> Any:
    """A notice's clock, outcome and items (the key that sent it, or a review key)."""
    return _read_notice(app_state(request), request, reference, key)


def _period(start: str | None, end: str | None) -> tuple[dt.datetime | None, dt.datetime | None]:
    return (
        parse_day(start, "from") if start else None,
        parse_day(end, "to") if end else None,
    )


@router.get(
    "/api/v1/statements",
    tags=["notices"],
    responses={
        **error_responses(400, 401, 403, 429),
        200: {
            "description": "statements in the DSA Transparency Database schema",
            "content": {"application/json": {}, "text/csv": {}},
        },
    },
)
def statements(
    request: Request,
    key: ReviewKey,
    start: Annotated[str | None, Query(alias="from", description="YYYY-MM-DD")] = None,
    end: Annotated[str | None, Query(alias="to", description="YYYY-MM-DD, exclusive")] = None,
    fmt: Annotated[Literal["json", "csv"], Query(alias="format")] = "json",
) -> Response:
    """Statements of reasons in the DSA Transparency Database's schema (no personal data)."""
    state = app_state(request)
    first, after = _period(start, end)
    with state.pipeline.sessions.begin() as session:
        service = StatementService(
            NoticeStore(session),
            StatementConfig.from_settings(state.settings),
            clock=lambda: dt.datetime.now(dt.UTC),
        )
        service.sync()
        records = service.export(first, after)
    if fmt == "csv":
        return PlainTextResponse(to_csv(records), media_type="text/csv")
    return JSONResponse(records)


@router.get(
    "/api/v1/reports/transparency",
    tags=["notices"],
    responses={
        **error_responses(400, 401, 403, 429),
        200: {
            "description": "the transparency report",
            "content": {"application/json": {}, "text/csv": {}, "text/html": {}},
        },
    },
)
def transparency(
    request: Request,
    key: ReviewKey,
    start: Annotated[str, Query(alias="from", description="YYYY-MM-DD")],
    end: Annotated[str, Query(alias="to", description="YYYY-MM-DD, exclusive")],
    fmt: Annotated[Literal["json", "csv", "html"], Query(alias="format")] = "json",
) -> Response:
    """Notices, actions, automated and human decisions, time to act, breaches, appeals and
    reversals, overall and per month."""
    state = app_state(request)
    first, after = parse_day(start, "from"), parse_day(end, "to")
    with state.pipeline.sessions() as session:
        text = render(TransparencyService(NoticeStore(session)).report(first, after), fmt)
    media = {"json": "application/json", "csv": "text/csv", "html": "text/html"}[fmt]
    return Response(text, media_type=media)
