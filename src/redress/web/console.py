"""The review console's web routes under ``/review`` (server-rendered, Jinja2).

Every route goes through :func:`viewer_for` with the roles it allows, so nothing
is reachable without a session and the right role; every POST checks the
session's CSRF token. Each request runs in one transaction (committed here, at
the edge); the outbox actions a decision queued are performed after the commit.
"""

from __future__ import annotations

import datetime as dt
import io
import secrets
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from redress.errors import RedressError
from redress.review.errors import (
    AccountLockedError,
    BadReviewInputError,
    CsrfError,
    LoginFailedError,
    NotLoggedInError,
    RoleForbiddenError,
)
from redress.review.interfaces import (
    CONFIRM_ACTIONS,
    REASON_CODES,
    DecisionRequest,
    Outcome,
    QueueFilter,
    Role,
    Viewer,
)
from redress.review.service import (
    AUDIT_READERS,
    DECIDERS,
    QUEUE_READERS,
    REPORT_READERS,
    ReviewConfig,
    ReviewService,
)
from redress.review.store import ReviewStore
from redress.web.app import app_state
from redress.web.charts import bar_chart, stacked_days

COOKIE = "redress_review"
#: Login attempts per client address: a burst of 10, then one a minute.
LOGIN_BURST = 10
LOGIN_RATE_PER_SECOND = 1 / 60
LOGIN_COOKIE = "redress_review_login"
HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
router = APIRouter(prefix="/review", include_in_schema=False)
ALL = frozenset(Role)
#: Security headers on every console page: no framing, no inline script, no third parties.
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self'; script-src 'self'; style-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


@contextmanager
def _service(request: Request) -> Iterator[ReviewService]:
    """A review service in one transaction (committed on success, rolled back on error)."""
    state = app_state(request)
    try:
        with state.pipeline.sessions.begin() as session:
            yield build_review_service(session, state.settings)
    except CsrfError as exc:
        # The refused request was rolled back; its audit row gets its own transaction.
        with state.pipeline.sessions.begin() as session:
            build_review_service(session, state.settings).audit_csrf(exc.actor, request.url.path)
        raise


def build_review_service(session: Session, settings: Any) -> ReviewService:
    """The review service for one request, wired to the evidence ledger and store."""
    from redress.evidence.service import build_evidence_service
    from redress.evidence.store import SqlEvidenceStore

    evidence = build_evidence_service(SqlEvidenceStore(session), settings)

    def opener(item_id: str, actor: str, purpose: str) -> bytes:
        return evidence.open(item_id, actor, purpose).content

    def exporter(ids: Any, destination: Path, actor: str) -> object:
        return evidence.export(list(ids), destination, actor)

    return ReviewService(
        ReviewStore(session),
        ReviewConfig.from_settings(settings),
        ledger=evidence,  # type: ignore[arg-type]
        opener=opener,
        exporter=exporter,
    )


def _viewer(service: ReviewService, request: Request, roles: frozenset[Role]) -> Viewer:
    viewer = service.viewer(request.cookies.get(COOKIE))
    if viewer.role not in roles:
        raise RoleForbiddenError(f"the {viewer.role.value} role may not open this page")
    return viewer


def _check_csrf(viewer: Viewer, sent: str | None) -> None:
    if not sent or not secrets.compare_digest(sent, viewer.csrf_token):
        error = CsrfError(
            "this form is out of date or was not sent by the console; reload the page"
        )
        error.actor = viewer.email
        raise error


def _page(
    request: Request,
    name: str,
    context: Mapping[str, Any],
    status_code: int = 200,
) -> HTMLResponse:
    response = templates.TemplateResponse(request, name, dict(context), status_code=status_code)
    response.headers.update(HEADERS)
    return response


def _error(request: Request, exc: RedressError, viewer: Viewer | None = None) -> Response:
    if isinstance(exc, NotLoggedInError) and request.method == "GET":
        return RedirectResponse("/review/login", status_code=303)
    return _page(
        request,
        "review/error.html",
        {"viewer": viewer, "code": exc.code, "message": exc.message},
        status_code=exc.status_code,
    )


async def _form(request: Request) -> dict[str, list[str]]:
    form = await request.form()
    out: dict[str, list[str]] = {}
    for key, value in form.multi_items():
        if isinstance(value, str):
            out.setdefault(key, []).append(value)
    return out


def _one(form: Mapping[str, list[str]], name: str) -> str | None:
    values = form.get(name) or []
    return values[0] if values else None


def _int(form: Mapping[str, list[str]], name: str) -> int:
    value = _one(form, name)
    try:
        return int(value or "")
    except ValueError:
        raise BadReviewInputError(f"the form field {name!r} must be a number") from None


def _after_commit(request: Request, scan_ids: list[str]) -> None:
    runner = app_state(request).pipeline.runner
    for scan_id in dict.fromkeys(scan_ids):
        runner.after_commit(scan_id)


def _import(request: Request) -> None:
    """Bring the pipeline's new review items into the queue, then run the actions of
    copies that followed an earlier decision."""
    try:
        with _service(request) as service:
            follow = service.import_pending()
    except IntegrityError:
        return  # a concurrent request imported the same items first; nothing is lost
    _after_commit(request, follow)


def static_files() -> StaticFiles:
    """The console's own CSS and JavaScript (no third-party assets)."""
    return StaticFiles(directory=str(HERE / "static" / "review"))


# -- login ------------------------------------------------------------------------------------


@router.get("/login")
def login_page(request: Request) -> Response:
    """The login form (with a double-submit CSRF token, as there is no session yet)."""
    token = secrets.token_urlsafe(32)
    response = _page(request, "review/login.html", {"viewer": None, "csrf": token, "error": None})
    _set_cookie(request, response, LOGIN_COOKIE, token, max_age=3600)
    return response


def _set_cookie(
    request: Request, response: Response, name: str, value: str, max_age: int | None
) -> None:
    settings = app_state(request).settings
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/review",
        httponly=True,
        samesite="strict",
        secure=bool(settings.review_cookie_secure),
    )


@router.post("/login")
async def login(request: Request) -> Response:
    """Check the password; on success set the session cookie and go to the start page."""
    form = await _form(request)
    sent = _one(form, "csrf_token") or ""
    expected = request.cookies.get(LOGIN_COOKIE) or ""
    if not expected or not secrets.compare_digest(sent, expected):
        return _error(request, CsrfError("the login form expired; reload the page"))
    email = _one(form, "email") or ""
    password = _one(form, "password") or ""
    client = request.client.host if request.client else "unknown"

    def work() -> Any:
        # Per address, across accounts (password spraying); the per-account lock-out
        # is in the service.
        app_state(request).pipeline.limiter.take(
            f"review-login:{client}", LOGIN_RATE_PER_SECOND, LOGIN_BURST
        )
        with _service(request) as service:
            try:
                return service.login(email, password)
            except (LoginFailedError, AccountLockedError) as exc:
                return exc  # committed: the failure counts toward the lock-out

    try:
        result = await run_in_threadpool(work)
        if isinstance(result, RedressError):
            raise result
    except RedressError as exc:
        token = secrets.token_urlsafe(32)
        response = _page(
            request,
            "review/login.html",
            {"viewer": None, "csrf": token, "error": exc.message},
            status_code=exc.status_code,
        )
        _set_cookie(request, response, LOGIN_COOKIE, token, max_age=3600)
        return response
    start = {
        Role.AUDITOR: "/review/dashboard",
    }.get(result.viewer.role, "/review/")
    redirect = RedirectResponse(start, status_code=303)
    hours = app_state(request).settings.review_session_hours
    _set_cookie(request, redirect, COOKIE, result.token, max_age=int(hours * 3600))
    redirect.delete_cookie(LOGIN_COOKIE, path="/review")
    return redirect


@router.post("/logout")
async def logout(request: Request) -> Response:
    """End the session."""
    form = await _form(request)

    def work() -> None:
        with _service(request) as service:
            viewer = _viewer(service, request, ALL)
            _check_csrf(viewer, _one(form, "csrf_token"))
            service.logout(request.cookies.get(COOKIE) or "")

    try:
        await run_in_threadpool(work)
    except RedressError as exc:
        return _error(request, exc)
    response = RedirectResponse("/review/login", status_code=303)
    response.delete_cookie(COOKIE, path="/review")
    return response


# -- queue ------------------------------------------------------------------------------------


@router.get("/")
def queue(
    request: Request,
    bank: str | None = None,
    source: str | None = None,
    chat: str | None = None,
    priority: str | None = None,
) -> Response:
    """The queue: open clusters by deadline then priority, with countdowns."""
    viewer: Viewer | None = None
    try:
        with _service(request) as service:
            viewer = _viewer(service, request, QUEUE_READERS)
        _import(request)
        with _service(request) as service:
            try:
                min_priority = int(priority) if priority else None
            except ValueError:
                raise BadReviewInputError("priority must be a number") from None
            filters = QueueFilter(bank or None, source or None, chat or None, min_priority)
            rows = service.queue(viewer, filters)
            everything = service.queue(viewer)
            exposure = service.exposure(viewer)
    except RedressError as exc:
        return _error(request, exc, viewer)
    return _page(
        request,
        "review/queue.html",
        {
            "viewer": viewer,
            "rows": rows,
            "filters": filters,
            "banks": sorted({r.bank for r in everything if r.bank}),
            "sources": sorted({r.source for r in everything}),
            "chats": sorted({r.chat for r in everything if r.chat}),
            "now": dt.datetime.now(dt.UTC),
            "exposure": exposure,
            "reasons": REASON_CODES,
            "can_decide": viewer.role in DECIDERS,
            "confirm_actions": CONFIRM_ACTIONS,
        },
    )


# -- item -------------------------------------------------------------------------------------


@router.get("/items/{item_id}")
def item_page(request: Request, item_id: str) -> Response:
    """One item: blurred media, what matched, sightings, caption, decisions."""
    viewer: Viewer | None = None
    try:
        with _service(request) as service:
            viewer = _viewer(service, request, QUEUE_READERS)
            number = _parse_id(item_id)
            view = service.item_view(viewer, number)
            exposure = service.exposure(viewer)
            revealed = service.revealed(viewer, number)
    except RedressError as exc:
        return _error(request, exc, viewer)
    return _page(
        request,
        "review/item.html",
        {
            "viewer": viewer,
            "view": view,
            "exposure": exposure,
            "revealed": revealed,
            "now": dt.datetime.now(dt.UTC),
            "reasons": REASON_CODES,
            "outcomes": list(Outcome),
            "confirm_actions": CONFIRM_ACTIONS,
            "can_decide": viewer.role in DECIDERS,
        },
    )


def _parse_id(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise BadReviewInputError(f"{value!r} is not an item number") from None


@router.get("/items/{item_id}/media")
def item_media(request: Request, item_id: str) -> Response:
    """A thumbnail of the item's media: greyscale and blurred on the server until the
    viewer has revealed it (so the bytes cannot be read around the page's blur)."""
    try:
        with _service(request) as service:
            viewer = _viewer(service, request, QUEUE_READERS)
            number = _parse_id(item_id)
            data = service.media(viewer, number)
            revealed = service.revealed(viewer, number)
    except RedressError as exc:
        return _error(request, exc)
    if not data:
        return Response(status_code=404, headers=HEADERS)
    thumb = _thumbnail(data, revealed, app_state(request).settings.max_image_pixels)
    if thumb is not None:
        return Response(thumb, media_type="image/png", headers=HEADERS)
    video = _video_type(data)
    if video is not None and revealed:
        # A video plays (muted, by the page) only once revealed; before, nothing is sent.
        return Response(data, media_type=video, headers=HEADERS)
    return Response(status_code=404, headers=HEADERS)


def _video_type(data: bytes) -> str | None:
    from redress.signals.sniff import sniff

    try:
        found = sniff(data[:4096])
    except RedressError:
        return None
    return found.media_type if found.kind == "video" else None


def _thumbnail(data: bytes, revealed: bool, max_pixels: int) -> bytes | None:
    """A PNG preview of an image (None for a video or anything that cannot be shown).

    The header is checked first, as the hashing path does: a file declaring more
    than ``max_pixels`` pixels (a decompression bomb) gets no preview and is never
    decoded, and a damaged file gets none either rather than failing the page."""
    from PIL import ImageFilter

    from redress.signals.pdq import DECODER_ERRORS, open_image
    from redress.signals.sniff import SNIFF_BYTES, sniff

    try:
        found = sniff(data[:SNIFF_BYTES])
        if found.kind != "image":
            return None
        decoded = open_image(data, found, max_pixels)
        with warnings.catch_warnings(), decoded.image as image:
            warnings.simplefilter("ignore")  # corrupt EXIF and the like: a preview is enough
            image.thumbnail((480, 480))
            picture = image.convert("RGB")
    except RedressError:
        return None  # not an image, too many pixels, or a header that cannot be read
    except DECODER_ERRORS:
        return None  # damaged pixel data
    if not revealed:
        picture = picture.convert("L").filter(ImageFilter.GaussianBlur(16))
    out = io.BytesIO()
    picture.save(out, format="PNG")
    return out.getvalue()


@router.post("/items/{item_id}/reveal")
async def reveal(request: Request, item_id: str) -> Response:
    """Record a reveal (audit log) and answer the viewer's exposure today."""
    form = await _form(request)
    sent = _one(form, "csrf_token") or request.headers.get("x-csrf-token")

    def work() -> Any:
        with _service(request) as service:
            viewer = _viewer(service, request, QUEUE_READERS)
            _check_csrf(viewer, sent)
            return service.reveal(viewer, _parse_id(item_id))

    try:
        exposure = await run_in_threadpool(work)
    except RedressError as exc:
        if request.headers.get("x-csrf-token") is not None:
            return JSONResponse(
                {"ok": False, "error": exc.code, "detail": exc.message}, status_code=exc.status_code
            )
        return _error(request, exc)
    if request.headers.get("x-csrf-token") is not None:
        return JSONResponse(
            {
                "ok": True,
                "today": exposure.today,
                "soft_limit": exposure.soft_limit,
                "over": exposure.over,
            },
            headers=HEADERS,
        )
    return RedirectResponse(f"/review/items/{item_id}", status_code=303)


def _decision(form: Mapping[str, list[str]], item_id: int) -> DecisionRequest:
    outcome_text = _one(form, "outcome") or ""
    try:
        outcome = Outcome(outcome_text)
    except ValueError:
        raise BadReviewInputError(f"{outcome_text!r} is not a decision") from None
    return DecisionRequest(
        cluster_id=_int(form, "cluster_id"),
        item_id=item_id,
        version=_int(form, "version"),
        outcome=outcome,
        reason_code=_one(form, "reason_code") or "",
        # The form carries every outcome's fields; only the chosen outcome's count.
        actions=tuple(form.get("actions") or ()) if outcome is Outcome.CONFIRMED else (),
        note=(_one(form, "note") or "").strip()[:2000] or None,
        escalate_to=(_one(form, "escalate_to") or None) if outcome is Outcome.ESCALATED else None,
        disable_entries=outcome is Outcome.NOT_VIOLATION and _one(form, "disable_entries") == "1",
    )


@router.post("/items/{item_id}/decide")
async def decide(request: Request, item_id: str) -> Response:
    """Decide the item's cluster; its copies' actions run after the commit."""
    form = await _form(request)

    def work() -> Any:
        with _service(request) as service:
            viewer = _viewer(service, request, DECIDERS)
            _check_csrf(viewer, _one(form, "csrf_token"))
            return service.decide(viewer, _decision(form, _parse_id(item_id)))

    try:
        result = await run_in_threadpool(work)
    except RedressError as exc:
        return _error(request, exc)
    if result.queued_actions:
        await run_in_threadpool(_after_commit, request, list(result.scan_item_ids))
    return RedirectResponse(
        f"/review/?decided={result.cluster_id}&outcome={result.outcome.value}", status_code=303
    )


@router.post("/bulk")
async def bulk(request: Request) -> Response:
    """One decision for every selected cluster (all or nothing)."""
    form = await _form(request)

    def work() -> Any:
        with _service(request) as service:
            viewer = _viewer(service, request, DECIDERS)
            _check_csrf(viewer, _one(form, "csrf_token"))
            picked = [_parse_id(v) for v in form.get("item_ids") or []]
            if not picked:
                raise BadReviewInputError("select one or more clusters first")
            outcome_text = _one(form, "outcome") or ""
            try:
                outcome = Outcome(outcome_text)
            except ValueError:
                raise BadReviewInputError(f"{outcome_text!r} is not a decision") from None
            requests = [
                DecisionRequest(
                    cluster_id=0,
                    item_id=i,
                    version=0,
                    outcome=outcome,
                    reason_code=_one(form, "reason_code") or "",
                    actions=tuple(form.get("actions") or ())
                    if outcome is Outcome.CONFIRMED
                    else (),
                    escalate_to=_one(form, "escalate_to") or None,
                )
                for i in picked
            ]
            return service.bulk_decide(viewer, requests)

    try:
        results = await run_in_threadpool(work)
    except RedressError as exc:
        return _error(request, exc)
    scan_ids = [s for r in results if r.queued_actions for s in r.scan_item_ids]
    await run_in_threadpool(_after_commit, request, scan_ids)
    return RedirectResponse(f"/review/?bulk={len(results)}", status_code=303)


# -- appeals ----------------------------------------------------------------------------------


@router.get("/appeals")
def appeals_page(request: Request) -> Response:
    """Appeals and their outcomes."""
    viewer: Viewer | None = None
    try:
        with _service(request) as service:
            viewer = _viewer(service, request, DECIDERS | {Role.AUDITOR})
            rows = service.appeals(viewer)
    except RedressError as exc:
        return _error(request, exc, viewer)
    return _page(request, "review/appeals.html", {"viewer": viewer, "appeals": rows})


@router.post("/clusters/{cluster_id}/appeal")
async def appeal(request: Request, cluster_id: str) -> Response:
    """Record an affected user's appeal: the cluster goes back to the queue."""
    form = await _form(request)

    def work() -> int:
        with _service(request) as service:
            viewer = _viewer(service, request, DECIDERS)
            _check_csrf(viewer, _one(form, "csrf_token"))
            return service.appeal(
                viewer,
                _parse_id(cluster_id),
                _one(form, "appellant") or "",
                _one(form, "statement") or "",
            )

    try:
        await run_in_threadpool(work)
    except RedressError as exc:
        return _error(request, exc)
    return RedirectResponse("/review/appeals", status_code=303)


# -- reports ----------------------------------------------------------------------------------


@router.get("/dashboard")
def dashboard(request: Request) -> Response:
    """Open items, breaches, time to decision, outcomes, matches over time."""
    viewer: Viewer | None = None
    try:
        with _service(request) as service:
            viewer = _viewer(service, request, REPORT_READERS)
        _import(request)
        with _service(request) as service:
            board = service.dashboard(viewer)
    except RedressError as exc:
        return _error(request, exc, viewer)
    return _page(
        request,
        "review/dashboard.html",
        {
            "viewer": viewer,
            "board": board,
            "duration": duration,
            "outcomes": bar_chart(board.by_outcome, title="Decisions by outcome"),
            "banks": stacked_days(board.by_bank_day, board.days, title="Matches by bank per day"),
            "chats": stacked_days(board.by_chat_day, board.days, title="Matches by group per day"),
        },
    )


def duration(seconds: float | None) -> str:
    """A time to decision as people read it: minutes under an hour, else hours."""
    if seconds is None:
        return "—"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


@router.get("/audit")
def audit(request: Request, action: str | None = None) -> Response:
    """The console's audit log (logins, reveals, decisions, appeals)."""
    viewer: Viewer | None = None
    try:
        with _service(request) as service:
            viewer = _viewer(service, request, AUDIT_READERS)
            rows = service.audit_log(viewer, action or None)
    except RedressError as exc:
        return _error(request, exc, viewer)
    return _page(request, "review/audit.html", {"viewer": viewer, "rows": rows})


# -- admin ------------------------------------------------------------------------------------


@router.get("/users")
def users_page(request: Request) -> Response:
    """Accounts (admins only)."""
    viewer: Viewer | None = None
    try:
        with _service(request) as service:
            viewer = _viewer(service, request, frozenset({Role.ADMIN}))
            rows = service.users()
    except RedressError as exc:
        return _error(request, exc, viewer)
    return _page(
        request, "review/users.html", {"viewer": viewer, "users": rows, "roles": list(Role)}
    )


@router.post("/users")
async def create_user(request: Request) -> Response:
    """Create an account (admins only)."""
    form = await _form(request)

    def work() -> None:
        with _service(request) as service:
            viewer = _viewer(service, request, frozenset({Role.ADMIN}))
            _check_csrf(viewer, _one(form, "csrf_token"))
            role_text = _one(form, "role") or ""
            try:
                role = Role(role_text)
            except ValueError:
                raise BadReviewInputError(f"{role_text!r} is not a role") from None
            cases = [c.strip() for c in (_one(form, "cases") or "").split(",") if c.strip()]
            service.create_user(
                _one(form, "email") or "",
                role,
                _one(form, "password") or "",
                cases=cases,
                actor=viewer.email,
            )

    try:
        await run_in_threadpool(work)
    except RedressError as exc:
        return _error(request, exc)
    return RedirectResponse("/review/users", status_code=303)


# -- notices and transparency -----------------------------------------------------------------


def _hours(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f} h"


@router.get("/notices")
def notices_page(request: Request) -> Response:
    """Inbound notices with their deadlines (moderators, admins, auditors)."""
    from redress.reports.service import NoticeConfig, NoticeService
    from redress.reports.store import NoticeStore

    viewer: Viewer | None = None
    try:
        with _service(request) as service:
            viewer = _viewer(service, request, REPORT_READERS)
            settings = app_state(request).settings
            rows = NoticeService(
                NoticeStore(service.store.session), NoticeConfig.from_settings(settings)
            ).notices()
    except RedressError as exc:
        return _error(request, exc, viewer)
    return _page(request, "review/notices.html", {"viewer": viewer, "notices": rows})


def _report_period(start: str | None, end: str | None) -> tuple[dt.datetime, dt.datetime]:
    from redress.reports.transparency import parse_day

    today = dt.datetime.now(dt.UTC).date()
    after = (
        parse_day(end, "to")
        if end
        else dt.datetime.combine(
            (today.replace(day=1) + dt.timedelta(days=32)).replace(day=1), dt.time(), tzinfo=dt.UTC
        )
    )
    first = parse_day(start, "from") if start else after.replace(year=after.year - 1)
    return first, after


@router.get("/transparency")
def transparency_page(request: Request) -> Response:
    """The transparency report (DSA Art. 15 figures) with charts (no script)."""
    from redress.reports.store import NoticeStore
    from redress.reports.transparency import TransparencyService

    viewer: Viewer | None = None
    try:
        with _service(request) as service:
            viewer = _viewer(service, request, REPORT_READERS)
            first, after = _report_period(
                request.query_params.get("from"), request.query_params.get("to")
            )
            report = TransparencyService(NoticeStore(service.store.session)).report(first, after)
    except RedressError as exc:
        return _error(request, exc, viewer)
    t = report.total
    charts = {
        "source": bar_chart(t.notices_by_source, title="Notices by source"),
        "type": bar_chart(t.notices_by_type, title="Notices by type"),
        "actions": bar_chart(t.actions_by_type, title="Actions by type"),
        "basis": bar_chart(t.actions_by_basis, title="Actions by basis"),
    }
    return _page(
        request,
        "review/transparency.html",
        {
            "viewer": viewer,
            "report": report,
            "charts": charts,
            "hours": _hours,
            "start": first.date().isoformat(),
            "end": after.date().isoformat(),
        },
    )


def _transparency_export(request: Request, fmt: str) -> Response:
    """The transparency report as CSV or JSON."""
    from redress.reports.store import NoticeStore
    from redress.reports.transparency import TransparencyService, render

    viewer: Viewer | None = None
    try:
        with _service(request) as service:
            viewer = _viewer(service, request, REPORT_READERS)
            first, after = _report_period(
                request.query_params.get("from"), request.query_params.get("to")
            )
            report = TransparencyService(NoticeStore(service.store.session)).report(first, after)
    except RedressError as exc:
        return _error(request, exc, viewer)
    media = "text/csv" if fmt == "csv" else "application/json"
    response = Response(render(report, fmt), media_type=media)
    response.headers.update(HEADERS)
    return response


@router.get("/transparency.csv")
def transparency_csv(request: Request) -> Response:
    """The transparency report as CSV (period, metric, key, value)."""
    return _transparency_export(request, "csv")


@router.get("/transparency.json")
def transparency_json(request: Request) -> Response:
    """The transparency report as JSON."""
    return _transparency_export(request, "json")
