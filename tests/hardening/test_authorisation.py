"""The authorisation matrix: every route of the app, against every kind of caller.

``RULES`` says, for each route, who may use it. The test enumerates
``app.routes`` (mounts included), so a route added without a rule fails the
suite with its method and path named; then it sends each route a request as
each principal and checks that exactly the allowed principals get through.

"Refused" means an authorisation answer: 401/403 with one of ``REFUSALS``'
codes, or a console page's redirect to the login form. Anything else (200, a
validation error, a wrong PIN, a failed login) means the request reached the
route's own logic. The walk sends no valid payloads, so nothing is decided.

To add a route: add one line to ``RULES`` (use the helpers ``PUBLIC``,
``api(...)``, ``console(...)``), with a ``sample`` URL if the path has
parameters.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi.routing import APIRoute
from hardening_support import Principal, Site, fast_settings, running_site
from starlette.routing import BaseRoute, Mount, Route

from redress.pipeline.keys import Scope
from redress.review.interfaces import Role

pytestmark = pytest.mark.anyio

ANONYMOUS = "anonymous"
KEY_SCOPES = tuple(f"key:{scope.value}" for scope in Scope)
REVOKED = "key:revoked"
EXPIRED = "key:expired"
CONSOLE_ROLES = tuple(f"console:{role.value}" for role in Role)
NO_CSRF = "console:admin-without-csrf"
EVERYONE = frozenset({ANONYMOUS, *KEY_SCOPES, REVOKED, EXPIRED, *CONSOLE_ROLES, NO_CSRF})
#: The codes that mean "not allowed" (docs/errors.md).
REFUSALS = {
    "unauthenticated",
    "bad_api_key",
    "api_key_revoked",
    "api_key_expired",
    "forbidden",
    "not_logged_in",
    "role_forbidden",
    "csrf_failed",
    "telegram_bad_webhook_secret",
}


@dataclass(frozen=True)
class Rule:
    """Who may use one route, and a concrete URL to call it with."""

    allowed: frozenset[str]
    sample: str | None = None


PUBLIC = frozenset(EVERYONE)


def api(*scopes: Scope) -> frozenset[str]:
    """An API route: keys with one of ``scopes`` (admin keys may do everything)."""
    return frozenset({f"key:{s.value}" for s in scopes} | {"key:admin"})


def console(*roles: Role, form: bool) -> frozenset[str]:
    """A console route: sessions of ``roles``; a form (POST) also needs the CSRF token."""
    allowed = {f"console:{r.value}" for r in roles}
    if not form and Role.ADMIN in roles:
        allowed.add(NO_CSRF)
    return frozenset(allowed)


DECIDERS = (Role.ADMIN, Role.MODERATOR)
QUEUE_READERS = (Role.ADMIN, Role.MODERATOR, Role.ADVOCATE)
ITEM = "/review/items/1"

#: (method, path as the router declares it) -> rule.
RULES: dict[tuple[str, str], Rule] = {
    # operations: counts only, never content (docs/api.md)
    ("GET", "/healthz"): Rule(PUBLIC),
    ("GET", "/readyz"): Rule(PUBLIC),
    ("GET", "/metrics"): Rule(PUBLIC),
    ("GET", "/openapi.json"): Rule(PUBLIC),
    # REST API
    ("POST", "/api/v1/scan"): Rule(api(Scope.SCAN)),
    ("POST", "/api/v1/scan/batch"): Rule(api(Scope.SCAN)),
    ("GET", "/api/v1/jobs/{job_id}"): Rule(
        api(Scope.SCAN, Scope.REVIEW), sample="/api/v1/jobs/nope"
    ),
    ("GET", "/api/v1/dead-letters"): Rule(api(Scope.ADMIN)),
    # victim portal: public, rate-limited; a case is reached only with its PIN
    ("GET", "/protect"): Rule(PUBLIC),
    ("GET", "/protect/status"): Rule(PUBLIC),
    ("POST", "/protect/status"): Rule(PUBLIC),
    ("POST", "/protect/withdraw"): Rule(PUBLIC),
    ("POST", "/protect/api/cases"): Rule(PUBLIC),
    ("MOUNT", "/static/portal"): Rule(PUBLIC, sample="/static/portal/portal.css"),
    # review console
    ("GET", "/review/login"): Rule(PUBLIC),
    ("POST", "/review/login"): Rule(PUBLIC - {NO_CSRF}),
    ("POST", "/review/logout"): Rule(console(*Role, form=True)),
    ("GET", "/review/"): Rule(console(*QUEUE_READERS, form=False)),
    ("GET", "/review/items/{item_id}"): Rule(console(*QUEUE_READERS, form=False), sample=ITEM),
    ("GET", "/review/items/{item_id}/media"): Rule(
        console(*QUEUE_READERS, form=False), sample=ITEM + "/media"
    ),
    ("POST", "/review/items/{item_id}/reveal"): Rule(
        console(*QUEUE_READERS, form=True), sample=ITEM + "/reveal"
    ),
    ("POST", "/review/items/{item_id}/decide"): Rule(
        console(*DECIDERS, form=True), sample=ITEM + "/decide"
    ),
    ("POST", "/review/bulk"): Rule(console(*DECIDERS, form=True)),
    ("GET", "/review/appeals"): Rule(console(*DECIDERS, Role.AUDITOR, form=False)),
    ("POST", "/review/clusters/{cluster_id}/appeal"): Rule(
        console(*DECIDERS, form=True), sample="/review/clusters/1/appeal"
    ),
    ("GET", "/review/dashboard"): Rule(console(*DECIDERS, Role.AUDITOR, form=False)),
    ("GET", "/review/audit"): Rule(console(Role.ADMIN, Role.AUDITOR, form=False)),
    ("GET", "/review/users"): Rule(console(Role.ADMIN, form=False)),
    ("POST", "/review/users"): Rule(console(Role.ADMIN, form=True)),
    ("MOUNT", "/review/static"): Rule(PUBLIC, sample="/review/static/console.css"),
    # Notices and transparency (#10): the form is public (CSRF by its own cookie,
    # per-address rate limit); the API needs the notice scope, reports the review scope.
    ("GET", "/notice"): Rule(PUBLIC),
    ("POST", "/notice"): Rule(PUBLIC),
    ("POST", "/api/v1/notices"): Rule(api(Scope.NOTICE)),
    ("GET", "/api/v1/notices/{reference}"): Rule(
        api(Scope.NOTICE, Scope.REVIEW), sample="/api/v1/notices/N-NOPE"
    ),
    ("GET", "/api/v1/statements"): Rule(api(Scope.REVIEW)),
    ("GET", "/api/v1/reports/transparency"): Rule(api(Scope.REVIEW)),
    ("GET", "/review/notices"): Rule(console(*DECIDERS, Role.AUDITOR, form=False)),
    ("GET", "/review/transparency"): Rule(console(*DECIDERS, Role.AUDITOR, form=False)),
    ("GET", "/review/transparency.csv"): Rule(console(*DECIDERS, Role.AUDITOR, form=False)),
    ("GET", "/review/transparency.json"): Rule(console(*DECIDERS, Role.AUDITOR, form=False)),
}


def app_routes(routes: Sequence[BaseRoute], prefix: str = "") -> set[tuple[str, str]]:
    """Every (method, path) the app serves; mounts as ("MOUNT", prefix)."""
    found: set[tuple[str, str]] = set()
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:  # FastAPI's record of an include_router()
            context = getattr(route, "include_context", None)
            found |= app_routes(included.routes, prefix + getattr(context, "prefix", ""))
        elif isinstance(route, Mount):
            found.add(("MOUNT", prefix + route.path))
        elif isinstance(route, APIRoute | Route):
            for method in route.methods or ():
                if method != "HEAD":
                    found.add((method, prefix + route.path))
        else:  # a websocket or another kind of route needs its own rule type
            found.add((type(route).__name__, prefix + str(getattr(route, "path", "?"))))
    return found


@pytest.fixture
async def site(redress_home: Path, sqlite_url: str) -> AsyncIterator[Site]:
    async with running_site(fast_settings(redress_home, sqlite_url)) as running:
        revoked = running.key(Scope.SCAN, Scope.ADMIN)
        running.revoke(revoked)
        expired = running.key(Scope.SCAN, Scope.ADMIN)
        running.expire(expired)
        running.principals = [
            Principal(ANONYMOUS),
            *(Principal(f"key:{s.value}", token=running.key(s)) for s in Scope),
            Principal(REVOKED, token=revoked),
            Principal(EXPIRED, token=expired),
        ]
        for role in Role:
            running.user(role)
            running.principals.append(Principal(f"console:{role.value}", role=role))
        running.principals.append(Principal(NO_CSRF, role=Role.ADMIN, csrf=False))
        yield running


def test_every_rule_names_known_principals() -> None:
    for route, rule in RULES.items():
        assert rule.allowed <= EVERYONE, (route, rule.allowed - EVERYONE)


async def test_every_route_has_a_rule(site: Site) -> None:
    served = app_routes(site.app.routes)
    missing = sorted(served - set(RULES))
    assert not missing, (
        "routes without an authorisation rule: "
        + ", ".join(f"{method} {path}" for method, path in missing)
        + " (add them to RULES in tests/hardening/test_authorisation.py)"
    )
    stale = sorted(set(RULES) - served)
    assert not stale, f"rules for routes the app no longer serves: {stale}"


async def _send(site: Site, principal: Principal, method: str, url: str) -> httpx.Response:
    headers: dict[str, str] = {}
    data: dict[str, str] = {}
    cookies: dict[str, str] = {}
    if principal.token is not None:
        headers["Authorization"] = f"Bearer {principal.token}"
    if principal.role is not None:
        session, csrf = site.session_of(principal.role)
        cookies["redress_review"] = session
        if principal.csrf:
            data["csrf_token"] = csrf
            headers["X-CSRF-Token"] = csrf
    if url == "/review/login" and method == "POST" and principal.csrf:
        # The login form's double-submit token, as a browser that loaded the form has it.
        page = await site.client.get("/review/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token is not None
        data["csrf_token"] = token.group(1)
        cookies["redress_review_login"] = page.cookies["redress_review_login"]
        data.update(email="nobody@example.org", password="not the password at all")
    if url.startswith("/protect/") and method == "POST":
        data.update(case_number=site.case_number, pin=site.pin)
    if cookies:
        headers["Cookie"] = "; ".join(f"{name}={value}" for name, value in cookies.items())
    # A fresh client per request: nothing carries over from another principal's answers.
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=site.app), base_url="http://redress.test"
    ) as client:
        if method == "GET":
            return await client.get(url, headers=headers)
        if url.startswith(("/api/", "/protect/api/")):
            headers["Content-Type"] = "application/json"
            return await client.request(method, url, headers=headers, content=b"{}")
        return await client.request(method, url, headers=headers, data=data)


def refusal(method: str, answer: httpx.Response) -> str | None:
    """The authorisation code that refused the request, or None if it got through.

    A console page (GET) without a session redirects to the login form; a form
    (POST) without one answers 401 (a finished logout also redirects there)."""
    location = answer.headers.get("location")
    if method == "GET" and answer.status_code in (302, 303) and location == "/review/login":
        return "not_logged_in"
    if answer.status_code not in (401, 403):
        return None
    if answer.headers.get("content-type", "").startswith("application/json"):
        code = answer.json().get("error")
    else:
        found = re.search(r'data-code="([^"]+)"', answer.text)
        code = found.group(1) if found else None
    return code if code in REFUSALS else None


async def test_each_principal_reaches_exactly_its_routes(site: Site) -> None:
    # Logging out ends the session, so it goes last.
    order = sorted(RULES, key=lambda route: route == ("POST", "/review/logout"))
    wrong: list[str] = []
    for method, path in order:
        rule = RULES[(method, path)]
        url = rule.sample or path
        for principal in site.principals:
            sent = "GET" if method == "MOUNT" else method
            answer = await _send(site, principal, sent, url)
            assert answer.status_code < 500, (method, path, principal.name, answer.text[:300])
            refused = refusal(sent, answer)
            if (refused is None) != (principal.name in rule.allowed):
                wrong.append(
                    f"{method} {path} as {principal.name}: {answer.status_code}"
                    f" {refused or 'allowed'}, expected"
                    f" {'allowed' if principal.name in rule.allowed else 'refused'}"
                )
    assert not wrong, "authorisation differs from RULES:\n" + "\n".join(wrong)


async def test_api_keys_never_open_the_console_nor_sessions_the_api(site: Site) -> None:
    """A console cookie sent to the API, or a key sent to the console, grants nothing."""
    admin_key = next(p for p in site.principals if p.name == "key:admin")
    page = await site.client.get(
        "/review/users", headers={"Authorization": f"Bearer {admin_key.token}"}
    )
    assert page.status_code == 303
    assert page.headers["location"] == "/review/login"
    session, _ = site.session_of(Role.ADMIN)
    answer = await site.client.get(
        "/api/v1/dead-letters", headers={"Cookie": f"redress_review={session}"}
    )
    assert answer.status_code == 401
    assert answer.json()["error"] == "unauthenticated"


async def test_review_keys_read_any_job_and_other_scan_keys_none(site: Site) -> None:
    """Jobs are read by the key that submitted them and by review keys (docs/api.md)."""
    submitter = next(p for p in site.principals if p.name == "key:scan")
    scan = await site.client.post(
        "/api/v1/scan",
        headers={"Authorization": f"Bearer {submitter.token}"},
        json={"md5": "d41d8cd98f00b204e9800998ecf8427e"},
    )
    job = f"/api/v1/jobs/{scan.json()['id']}"
    readers = {
        "submitter": submitter.token,
        "review": next(p for p in site.principals if p.name == "key:review").token,
        "another scan key": site.key(Scope.SCAN),
        "curate": next(p for p in site.principals if p.name == "key:curate").token,
    }
    seen = {
        who: (await site.client.get(job, headers={"Authorization": f"Bearer {token}"})).status_code
        for who, token in readers.items()
    }
    assert seen == {"submitter": 200, "review": 200, "another scan key": 404, "curate": 403}
