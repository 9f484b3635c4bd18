"""The OpenAPI document is served and committed, and the two are the same."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from web_support import Api

pytestmark = pytest.mark.anyio
COMMITTED = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


async def test_served_document_equals_the_committed_one(api: Api) -> None:
    response = await api.client.get("/openapi.json")
    assert response.status_code == 200
    committed = json.loads(COMMITTED.read_text(encoding="utf-8"))
    assert response.json() == committed, "regenerate with: redress openapi > docs/openapi.json"


async def test_every_operation_documents_its_errors_with_the_envelope(api: Api) -> None:
    document = (await api.client.get("/openapi.json")).json()
    envelope = {"$ref": "#/components/schemas/ErrorEnvelope"}
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            errors = {
                code: r for code, r in operation["responses"].items() if code.startswith(("4", "5"))
            }
            if path.startswith("/api/"):
                assert {"401", "403", "429"} <= set(errors), (method, path)
            for code, response in errors.items():
                schema = response["content"]["application/json"]["schema"]
                assert schema == envelope, (method, path, code)


async def test_scan_documents_both_bodies(api: Api) -> None:
    document = (await api.client.get("/openapi.json")).json()
    body = document["paths"]["/api/v1/scan"]["post"]["requestBody"]["content"]
    assert set(body) == {"application/json", "multipart/form-data"}
    assert "ScanHashesIn" in document["components"]["schemas"]
