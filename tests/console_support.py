"""Logging in to the review console the way a browser does (the form's CSRF token first)."""

from __future__ import annotations

import re

import httpx


async def log_in(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    """Fetch the login form, then post it with its CSRF token; the answer (303 on success)."""
    page = await client.get("/review/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert csrf is not None
    return await client.post(
        "/review/login",
        data={"csrf_token": csrf.group(1), "email": email, "password": password},
    )
