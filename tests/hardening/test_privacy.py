"""Privacy: what Redress writes to its logs, and what an uploader can learn.

One test runs the representative flows with every logger at DEBUG (SQL logging
included) and searches the captured records for the secrets of those flows:
hashes (PDQ hex, MD5, SHA-256), the case PIN, the victim's contact, the image's
bytes, the API token, the console's session and CSRF tokens. Another checks
that a scan answer never carries a distance or a near miss, so an uploader
cannot use Redress to tune an evasion; a third that the scan endpoints are
rate limited.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from hardening_support import PASSWORD, Site, fast_settings, running_site
from PIL import Image

from console_support import log_in
from redress.pipeline.keys import Scope
from redress.review.interfaces import Role
from redress.signals import HashOptions, hash_bytes
from redress.signals.robust import reference_kinds

pytestmark = pytest.mark.anyio
THRESHOLD = 31  # REDRESS_PDQ_THRESHOLD's default
STRANGER = hashlib.sha256(b"a stranger's photo").hexdigest()


def photo() -> bytes:
    """A photo-like JPEG (a gradient with texture), distinctive enough to match by PDQ."""
    image = Image.effect_mandelbrot((160, 120), (-2.0, -1.2, 1.0, 1.2), 60).convert("RGB")
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


def hash_set(data: bytes) -> dict[str, Any]:
    """The hash set the portal computes in the browser for ``data``."""
    signals = hash_bytes(data, HashOptions(dihedral=True))
    reference = hash_bytes(data, HashOptions(robust="reference")).robust
    kinds = reference_kinds()
    assert signals.pdq is not None
    return {
        "md5": signals.md5,
        "sha256": signals.sha256,
        "pdq": signals.pdq.hex,
        "quality": signals.pdq.quality,
        "dihedral": [h.hex for h in signals.dihedral],
        "robust": [
            {"kind": kinds.index(h.kind), "pdq": h.pdq.hex, "quality": h.quality} for h in reference
        ],
    }


def flip(hex_hash: str, count: int) -> str:
    """``hex_hash`` with its first ``count`` bits inverted: a hash ``count`` bits away."""
    value = int(hex_hash, 16) ^ (((1 << count) - 1) << (256 - count))
    return f"{value:064x}"


@pytest.fixture
async def site(redress_home: Path, sqlite_url: str) -> AsyncIterator[Site]:
    async with running_site(fast_settings(redress_home, sqlite_url)) as running:
        yield running


def _logged(caplog: pytest.LogCaptureFixture) -> str:
    """Everything the captured records would print: messages, arguments, tracebacks."""
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    parts = []
    for record in caplog.records:
        parts.append(formatter.format(record))
        parts.append(repr(record.args))
    return "\n".join(parts)


async def test_representative_flows_log_no_hash_pin_contact_bytes_or_token(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger,
    caplog.set_level(
        logging.DEBUG, logger="sqlalchemy"
    )  # SQL statements included (WARN by default)
    data = photo()
    signals = hash_bytes(data, HashOptions())
    assert signals.pdq is not None
    pdq = signals.pdq.hex
    contact = "victim.contact@example.org"

    # The victim opens a case from hashes computed in her browser.
    case = await site.client.post(
        "/protect/api/cases",
        json={
            "files": [{"kind": "image", "hashes": hash_set(data)}],
            "declarations": {"depicted": True, "adult": True},
            "contact": contact,
        },
    )
    assert case.status_code == 201, case.text
    case_number, pin = case.json()["case_number"], case.json()["pin"]
    # She follows it with her PIN.
    status = await site.client.post(
        "/protect/status", data={"case_number": case_number, "pin": pin}
    )
    assert status.status_code == 200
    # A platform scans a copy, by hashes and by upload: both match her case.
    token = site.key(Scope.SCAN)
    headers = {"Authorization": f"Bearer {token}"}
    by_hash = await site.client.post("/api/v1/scan", headers=headers, json={"pdq": [pdq]})
    assert by_hash.json()["matches"], by_hash.text
    upload = await site.client.post(
        "/api/v1/scan",
        headers=headers,
        files={"file": ("copy.jpg", data, "image/jpeg")},
        data={"platform": "telegram", "chat_id": "-100777", "message_id": "5"},
    )
    assert upload.status_code == 202
    queue = site.state.pipeline.queue
    assert hasattr(queue, "drain")
    assert queue.drain()
    job = (await site.client.get(upload.headers["location"], headers=headers)).json()
    assert job["matches"], job
    # A moderator reviews the item and confirms it.
    site.user(Role.MODERATOR)
    await log_in(site.client, "moderator@example.org", PASSWORD)
    session = site.client.cookies.get("redress_review")
    assert session
    queue_page = await site.client.get("/review/")
    item = re.search(r'href="/review/items/(\d+)"', queue_page.text)
    assert item is not None, queue_page.text[:500]
    item_page = await site.client.get(f"/review/items/{item.group(1)}")
    form = {
        name: re.search(rf'name="{name}" value="([^"]+)"', item_page.text)
        for name in ("csrf_token", "cluster_id", "version")
    }
    assert all(form.values()), item_page.text[:500]
    fields = {name: found.group(1) for name, found in form.items() if found}
    decided = await site.client.post(
        f"/review/items/{item.group(1)}/decide",
        data={
            **fields,
            "outcome": "confirmed",
            "reason_code": "ncii_match",
            "actions": "delete_message",
        },
    )
    assert decided.status_code == 303, decided.text[:500]

    logged = _logged(caplog)
    assert any(r.name.startswith("sqlalchemy.engine") for r in caplog.records)  # SQL was logged
    secrets = {
        "PDQ hash": pdq,
        "MD5": signals.md5,
        "SHA-256": signals.sha256,
        "PIN": pin,
        "contact": contact,
        "API token": token,
        "session token": session,
        "CSRF token": fields["csrf_token"],
        "image bytes (hex)": data[100:132].hex(),
        "image bytes (base64)": base64.b64encode(data[99:150]).decode()[4:40],
        "image bytes (repr)": repr(data[200:216])[2:-1],
    }
    for what, secret in secrets.items():
        assert secret.lower() not in logged.lower(), f"the {what} appears in the logs"
    sha = hashlib.sha256(data).hexdigest()
    assert sha not in logged


async def test_uploaders_never_see_distances_or_near_misses(site: Site) -> None:
    """A scan answer says only "matched bank X by signal Y": the same for a copy 0 or 31
    bits away, and the same for a near miss 32 bits away as for a stranger's photo."""
    hashes = hash_set(photo())
    victim = hashes["pdq"]
    created = await site.client.post(
        "/protect/api/cases",
        json={
            "files": [{"kind": "image", "hashes": hashes}],
            "declarations": {"depicted": True, "adult": True},
        },
    )
    assert created.status_code == 201, created.text
    headers = {"Authorization": f"Bearer {site.key(Scope.SCAN)}"}

    async def scan(pdq: str) -> dict[str, Any]:
        answer = await site.client.post("/api/v1/scan", headers=headers, json={"pdq": [pdq]})
        assert answer.status_code == 200
        body: dict[str, Any] = answer.json()
        text = json.dumps(body).lower()
        for word in ("distance", "near", "threshold", "score", "candidate", "entry"):
            assert word not in text, (word, body)
        body.pop("id")
        return body

    exact, edge = await scan(victim), await scan(flip(victim, THRESHOLD))
    assert exact == edge
    assert [m["bank"] for m in exact["matches"]] == ["victim-cases"]
    assert all(set(m) == {"bank", "signal"} for m in exact["matches"])
    near_miss, stranger = await scan(flip(victim, THRESHOLD + 1)), await scan(STRANGER)
    assert near_miss == stranger
    assert near_miss["matches"] == []
    batch = await site.client.post(
        "/api/v1/scan/batch",
        headers=headers,
        json={"items": [{"pdq": [flip(victim, THRESHOLD + 1)]}, {"pdq": [victim]}]},
    )
    assert "distance" not in batch.text


async def test_scan_endpoints_are_rate_limited_per_key(redress_home: Path, sqlite_url: str) -> None:
    settings = fast_settings(redress_home, sqlite_url, api_rate_per_second=0.001, api_rate_burst=3)
    async with running_site(settings) as site:
        first, second = site.key(Scope.SCAN), site.key(Scope.SCAN)
        body = {"pdq": [hashlib.sha256(b"x").hexdigest()]}
        for path, payload in (("/api/v1/scan", body), ("/api/v1/scan/batch", {"items": [body]})):
            key = site.key(Scope.SCAN)
            answers = [
                await site.client.post(
                    path, headers={"Authorization": f"Bearer {key}"}, json=payload
                )
                for _ in range(4)
            ]
            assert [a.status_code for a in answers] == [200, 200, 200, 429], path
            assert answers[-1].json()["error"] == "rate_limited"
            assert float(answers[-1].headers["retry-after"]) > 0
        # One key's empty bucket does not stop another key.
        for token in (first, second):
            answer = await site.client.post(
                "/api/v1/scan", headers={"Authorization": f"Bearer {token}"}, json=body
            )
            assert answer.status_code == 200
