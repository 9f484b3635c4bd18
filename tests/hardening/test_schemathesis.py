"""Schemathesis against the served OpenAPI document: every operation, generated
requests (valid and not), sent in-process to the running app with a valid key.

Checks: no 5xx, documented status codes, content types, headers and response
bodies that match their schemas (the error envelope included).
``REDRESS_FUZZ_EXAMPLES`` sets the examples per operation.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from fuzz_support import fuzz
from hardening_support import Served
from hypothesis import given
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from redress.config import Settings
from redress.pipeline.container import PipelineParts
from redress.pipeline.keys import ApiKeyService, Scope
from redress.web.app import AppState, create_app

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Served, str]]:
    home = tmp_path_factory.mktemp("schemathesis")
    settings = Settings(
        home=home / "home",
        database_url=f"sqlite:///{home / 'redress.db'}",
        pipeline_threads=1,
        queue_size=1000,
        api_rate_per_second=100_000.0,
        api_rate_burst=100_000,
        portal_case_burst=100_000,
    )
    # Webhooks go to a recording receiver (the network seam), never out of the test.
    receiver = httpx.Client(transport=httpx.MockTransport(_receive))
    running = Served(create_app(settings, PipelineParts(http=receiver)))
    try:
        state: AppState = running.app.state.redress
        with state.pipeline.sessions.begin() as session:
            token = ApiKeyService(session).create("schemathesis", frozenset(Scope)).token
        yield running, token
    finally:
        running.close()
        receiver.close()


DELIVERED: list[str] = []


def _receive(request: httpx.Request) -> httpx.Response:
    DELIVERED.append(str(request.url))
    return httpx.Response(204)


def _schema(served: Served) -> Any:
    return schemathesis.openapi.from_dict(served.app.openapi())


def _part(value: object) -> str | bytes:
    return value if isinstance(value, str | bytes) else json.dumps(value)


def _send(served: Served, kwargs: dict[str, Any]) -> httpx.Response:
    """Send schemathesis' requests-style arguments through the in-process httpx client."""
    headers = {k: v for k, v in kwargs["headers"].items() if k.lower() != "connection"}
    request: dict[str, Any] = {
        "headers": headers,
        "params": kwargs.get("params") or None,
        "cookies": None,
    }
    if kwargs.get("cookies"):
        headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in kwargs["cookies"].items())
    if kwargs.get("files") is not None:
        headers.pop("Content-Type", None)  # httpx writes the multipart boundary
        request["files"] = [
            (name, (filename, _part(content)) if filename else (None, _part(content)))
            for name, (filename, content, *_) in kwargs["files"]
        ]
        if kwargs.get("data"):
            request["data"] = {k: _part(v) for k, v in kwargs["data"].items()}
    elif "json" in kwargs:
        request["content"] = json.dumps(kwargs["json"]).encode()
        headers.setdefault("Content-Type", "application/json")
    elif kwargs.get("data") is not None:
        data = kwargs["data"]
        request["content" if isinstance(data, str | bytes) else "data"] = data
    path = httpx.URL(kwargs["url"]).raw_path.decode()
    response = served.request(kwargs["method"], path, **{k: v for k, v in request.items() if v})
    response.request.read()  # schemathesis reads the request body it sent
    return response


def test_every_operation_is_covered(served: tuple[Served, str]) -> None:
    labels = {op.ok().label for op in _schema(served[0]).get_all_operations()}
    assert "POST /api/v1/scan" in labels
    assert "POST /protect/api/cases" in labels
    assert len(labels) >= 8


@fuzz(share=2.0)
@given(data=st.data())
def test_generated_requests_get_documented_answers(
    served: tuple[Served, str], data: st.DataObject
) -> None:
    running, token = served
    operations = [op.ok() for op in _schema(running).get_all_operations()]
    operation = data.draw(st.sampled_from(sorted(operations, key=lambda o: o.label)))
    case = data.draw(operation.as_strategy())
    kwargs = case.as_transport_kwargs(
        base_url="http://redress.test", headers={"Authorization": f"Bearer {token}"}
    )
    response = _send(running, kwargs)
    case.validate_response(response, checks=CHECKS)
    for url in DELIVERED:  # no webhook was ever aimed at the server's own network
        host = httpx.URL(url).host
        assert host != "localhost", url
        with contextlib.suppress(ValueError):
            assert ipaddress.ip_address(host).is_global, url


def test_the_served_document_is_the_committed_one(served: tuple[Served, str]) -> None:
    committed = json.loads(Path("docs/openapi.json").read_text(encoding="utf-8"))
    assert served[0].app.openapi() == committed
