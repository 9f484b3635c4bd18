"""The victim portal at ``/protect``: server-rendered pages, no login.

- ``GET /protect``: what happens to her pictures, and the form that hashes
  them in her browser (``static/portal/portal.js`` with ``PortalHasher``).
- ``POST /protect/api/cases``: JSON hash sets only; answers the case number
  and PIN once.
- ``GET|POST /protect/status``: case number + PIN; counts of matches and
  removals. ``POST /protect/withdraw``: withdraw the case.

Every portal response carries a Content-Security-Policy restricted to this
origin; the only cookie is the language choice. Hashes and PINs are never
logged.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jinja2
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from redress.config import Settings
from redress.errors import InvalidInputError
from redress.pipeline.matching import StoreMatcher
from redress.pipeline.ratelimit import RateLimiter, host_buckets
from redress.store.interfaces import CaseStatus
from redress.store.service import CaseService, RetroMatcher
from redress.store.sync import SeenFollower
from redress.web.app import app_state
from redress.web.errors import error_responses
from redress.web.hashset import HashSetSpec, load_hash_set_spec, portal_static_dir
from redress.web.i18n import (
    LANGUAGES,
    Language,
    choose_language,
    format_count,
    format_when,
    language,
    load_translations,
)
from redress.web.portal_service import CaseReport, PinCheck, PortalLimits, PortalService

PORTAL_STATE_KEY = "portal"
LANG_COOKIE = "redress_lang"
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "media-src 'self' blob:; worker-src 'self'; connect-src 'self'; font-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# PIN forms per client IP (on top of the per-case lock): 20 at once, then one every 30 s.
PIN_FORM_RATE = 1 / 30
PIN_FORM_BURST = 20

router = APIRouter()


@dataclass
class RetroSlot:
    """The app's retroactive matcher, built on the first case (it follows the seen-media
    history incrementally, so it is kept for the app's life)."""

    _lock: threading.Lock = field(default_factory=threading.Lock)
    _retro: RetroMatcher | None = None

    def get(self, engine: Any, quality_min: int) -> RetroMatcher:
        """The matcher, built once for ``engine``."""
        with self._lock:
            if self._retro is None:
                from redress.index import MihIndex

                self._retro = RetroMatcher(SeenFollower(engine, MihIndex, quality_min=quality_min))
            return self._retro


@dataclass(frozen=True)
class PortalContext:
    """What the portal builds once per app: templates per language, limits, buckets."""

    settings: Settings
    environments: Mapping[str, jinja2.Environment]
    spec: HashSetSpec
    limits: PortalLimits
    buckets: RateLimiter
    retro: RetroSlot


def build_environments() -> dict[str, jinja2.Environment]:
    """One Jinja2 environment per language, with its catalog installed."""
    environments: dict[str, jinja2.Environment] = {}
    for lang in LANGUAGES:
        env = jinja2.Environment(
            loader=jinja2.PackageLoader("redress.web", "templates"),
            autoescape=True,
            extensions=["jinja2.ext.i18n"],
            undefined=jinja2.StrictUndefined,
        )
        env.install_gettext_translations(load_translations(lang.code), newstyle=True)  # type: ignore[attr-defined]
        environments[lang.code] = env
    return environments


class SecurityHeadersMiddleware:
    """Adds the portal's CSP and privacy headers to its pages and static files."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not path.startswith(("/protect", "/static/portal", "/notice")):
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [
                    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
                    (b"referrer-policy", b"no-referrer"),
                    (b"x-content-type-options", b"nosniff"),
                    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
                ]
                if path.startswith(("/protect", "/notice")):
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def install(app: FastAPI, settings: Settings) -> None:
    """Add the portal to ``app``: its routes, static files and headers."""
    context = PortalContext(
        settings=settings,
        environments=build_environments(),
        spec=load_hash_set_spec(),
        limits=PortalLimits(
            max_hashes=settings.portal_max_hashes,
            pin_max_failures=settings.portal_pin_max_failures,
            pin_lock_seconds=settings.portal_pin_lock_seconds,
            pdq_quality_min=settings.pdq_quality_min,
        ),
        # Shared by this host's serve processes: a PIN is not guessed N times faster.
        buckets=host_buckets(settings),
        retro=RetroSlot(),
    )
    setattr(app.state, PORTAL_STATE_KEY, context)
    app.include_router(router)
    app.mount("/static/portal", StaticFiles(directory=portal_static_dir()), name="portal-static")
    app.add_middleware(SecurityHeadersMiddleware)


def _context(request: Request) -> PortalContext:
    context: PortalContext = getattr(request.app.state, PORTAL_STATE_KEY)
    return context


def _language(request: Request) -> Language:
    return choose_language(
        request.query_params.get("lang"),
        request.cookies.get(LANG_COOKIE),
        request.headers.get("accept-language"),
    )


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def render(request: Request, template: str, status_code: int = 200, **values: Any) -> HTMLResponse:
    """Render a portal page in the visitor's language (and remember an explicit choice)."""
    context = _context(request)
    lang = _language(request)
    env = context.environments[lang.code]
    values.setdefault("withdrawn_now", False)
    values.setdefault("pin", "")
    html = env.get_template(template).render(
        lang=lang,
        languages=LANGUAGES,
        path=request.url.path,
        protects=context.settings.portal_protects,
        under18_url=context.settings.portal_under18_url,
        max_hashes=format_count(context.limits.max_hashes, lang),
        max_hashes_raw=context.limits.max_hashes,
        when=lambda value: format_when(value, lang),
        count=lambda value: format_count(value, lang),
        **values,
    )
    response = HTMLResponse(html, status_code=status_code)
    chosen = language(request.query_params.get("lang"))
    if chosen is not None and request.cookies.get(LANG_COOKIE) != chosen.code:
        # The only cookie the portal sets: the language she picked.
        response.set_cookie(
            LANG_COOKIE, chosen.code, max_age=365 * 86400, httponly=True, samesite="strict"
        )
    return response


@router.get("/protect", response_class=HTMLResponse, include_in_schema=False)
async def protect_page(request: Request) -> Response:
    """The explanation and the case-creation form."""
    return render(request, "portal/index.html")


@router.get("/protect/status", response_class=HTMLResponse, include_in_schema=False)
async def status_form(request: Request) -> Response:
    """The case number + PIN form."""
    return render(request, "portal/status.html", report=None, problem=None, case_number="")


async def _form(request: Request) -> dict[str, str]:
    form = await request.form()
    return {key: value for key, value in form.items() if isinstance(value, str)}


def _pin_problem(check: PinCheck, lang: Language) -> dict[str, Any]:
    if check.locked_until is not None:
        return {"kind": "locked", "until": format_when(check.locked_until, lang)}
    return {"kind": "wrong", "left": check.failures_left}


def _refused(request: Request, check: PinCheck, case_number: str) -> Response:
    """The status page after a wrong PIN or an unknown case (alike), or while locked."""
    return render(
        request,
        "portal/status.html",
        status_code=429 if check.locked_until is not None else 403,
        report=None,
        problem=_pin_problem(check, _language(request)),
        case_number=case_number,
    )


@router.post("/protect/status", response_class=HTMLResponse, include_in_schema=False)
async def status_page(request: Request) -> Response:
    """Her case's status, after the case number and PIN."""
    context = _context(request)
    form = await _form(request)
    context.buckets.take(f"portal-pin:{_client(request)}", PIN_FORM_RATE, PIN_FORM_BURST)
    case_number = form.get("case_number", "")[:64]
    check, report = await run_in_threadpool(
        _open_case, request, case_number, form.get("pin", "")[:64]
    )
    if report is None:
        return _refused(request, check, case_number)
    return render(
        request,
        "portal/status.html",
        report=report,
        problem=None,
        case_number=report.case.case_number,
        pin=form.get("pin", ""),
    )


def _service(
    request: Request, session: Any, actor: str = "victim", retro: RetroMatcher | None = None
) -> PortalService:
    context = _context(request)
    cases = CaseService(
        session, actor=actor, default_threshold=context.settings.pdq_threshold, retro=retro
    )
    return PortalService(session, cases, context.limits)


def _open_case(request: Request, case_number: str, pin: str) -> tuple[PinCheck, CaseReport | None]:
    sessions = app_state(request).pipeline.sessions
    with sessions.begin() as session:
        service = _service(request, session)
        check = service.check_pin(case_number, pin)
        report = service.report(check.case) if check.case is not None else None
    return check, report


def _withdraw(request: Request, case_number: str, pin: str) -> tuple[PinCheck, CaseReport | None]:
    sessions = app_state(request).pipeline.sessions
    with sessions.begin() as session:
        service = _service(request, session)
        check = service.check_pin(case_number, pin)
        if check.case is None:
            return check, None
        case = check.case
        if not case.status.closed:
            case = service.cases.set_status(case.case_number, CaseStatus.WITHDRAWN, actor="victim")
        report = service.report(case)
    _follow_now(request)
    return check, report


def _follow_now(request: Request) -> None:
    """Bring this process's index up to date at once (others follow within a second)."""
    matcher = app_state(request).pipeline.service.matcher
    if isinstance(matcher, StoreMatcher):
        matcher.follower.poll()


@router.post("/protect/withdraw", response_class=HTMLResponse, include_in_schema=False)
async def withdraw_case(request: Request) -> Response:
    """Withdraw her case: its hashes stop matching."""
    context = _context(request)
    form = await _form(request)
    context.buckets.take(f"portal-pin:{_client(request)}", PIN_FORM_RATE, PIN_FORM_BURST)
    case_number = form.get("case_number", "")[:64]
    if form.get("confirm") != "yes":
        check, report = await run_in_threadpool(
            _open_case, request, case_number, form.get("pin", "")[:64]
        )
        problem = (
            {"kind": "confirm"} if report is not None else _pin_problem(check, _language(request))
        )
        return render(
            request,
            "portal/status.html",
            status_code=400 if report is not None else 403,
            report=report,
            problem=problem,
            case_number=case_number,
            pin=form.get("pin", "") if report is not None else "",
        )
    check, report = await run_in_threadpool(
        _withdraw, request, case_number, form.get("pin", "")[:64]
    )
    if report is None:
        return _refused(request, check, case_number)
    return render(
        request,
        "portal/status.html",
        report=report,
        problem=None,
        case_number=report.case.case_number,
        pin=form.get("pin", ""),
        withdrawn_now=True,
    )


@router.post(
    "/protect/api/cases",
    status_code=201,
    responses=error_responses(400, 413, 422, 429),
    summary="Open a victim case from hash sets computed in the browser",
)
async def create_case(request: Request) -> JSONResponse:
    """Take ``{"files": [{"kind": "image"|"video", "hashes": {...}}], "declarations":
    {"depicted": true, "adult": true}, "contact": "...", "lang": "en"}``; answer the case
    number and PIN (shown once: only a hash of the PIN is kept)."""
    context = _context(request)
    context.buckets.take(
        f"portal-case:{_client(request)}",
        context.settings.portal_case_rate_per_hour / 3600.0,
        context.settings.portal_case_burst,
    )
    try:
        body = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInputError("the body must be JSON") from exc
    if not isinstance(body, dict) or not isinstance(body.get("files"), list):
        raise InvalidInputError("the body must be an object with a files list")
    declarations = body.get("declarations")
    declarations = declarations if isinstance(declarations, dict) else {}
    contact = body.get("contact")
    lang = language(body.get("lang") if isinstance(body.get("lang"), str) else None)
    locale = (lang or _language(request)).locale
    from redress.web.portal_service import parse_files

    files = parse_files(body["files"], context.spec)

    def create() -> tuple[str, str, str]:
        pipeline = app_state(request).pipeline
        # Her pictures may have been seen already: the new entries are searched in the
        # seen-media history and those matches recorded at once (retroactive matching).
        retro = context.retro.get(pipeline.engine, context.settings.pdq_quality_min)
        with pipeline.sessions.begin() as session:
            created = _service(request, session, actor="portal", retro=retro).create(
                files,
                depicted=declarations.get("depicted") is True,
                adult=declarations.get("adult") is True,
                contact=contact if isinstance(contact, str) else None,
                locale=locale,
            )
        _follow_now(request)
        return created.case.case_number, created.pin, created.case.status.value

    case_number, pin, status = await run_in_threadpool(create)
    return JSONResponse(
        {"ok": True, "case_number": case_number, "pin": pin, "status": status, "files": len(files)},
        status_code=201,
        headers={"Cache-Control": "no-store"},
    )
