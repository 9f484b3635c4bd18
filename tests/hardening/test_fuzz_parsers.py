"""Fuzzing the parsers of outside text: hashes, hash lists, Telegram updates and
exports, and the portal's and API's request bodies (through the running app).

Property: each answers a value or one of the documented errors (docs/errors.md);
a hash-list parser reports a bad row as a row problem and carries on; the API
never answers 5xx and always answers the one envelope.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fuzz_support import CODES, JSON, MD5, PDQ, assert_documented, damaged_json, fuzz, mutated
from hardening_support import Served
from hypothesis import given
from hypothesis import strategies as st

from redress.config import Settings
from redress.connectors.interfaces import Decision, IncomingMedia, Outcome, UserReport
from redress.connectors.telegram.export import ExportImporter
from redress.connectors.telegram.wire import parse_update
from redress.pipeline.keys import ApiKeyService, Scope
from redress.signals.types import SignalKind, parse_pdq_hex
from redress.signals.vpdq import read_vpdq_text
from redress.store.errors import ImportProblem
from redress.store.exchange import (
    ParsedRecord,
    parse_hex,
    parse_hma_csv,
    parse_stopncii,
    parse_vpdq_file,
)
from redress.web.app import AppState, create_app


def _text(data: bytes) -> io.StringIO:
    # How the importer reads files: UTF-8 with bad bytes replaced, newlines kept.
    return io.StringIO(data.decode("utf-8", errors="replace"), newline="")


def _rows(parsed: Iterator[Any]) -> None:
    for item in parsed:
        if isinstance(item, ImportProblem):
            assert item.code in CODES | {
                "bad_record",
                "bad_json",
                "bad_document",
                "bad_vpdq_line",
                "bad_pdq_quality",
                "empty_vpdq",
            }, item.code
        else:
            assert isinstance(item, ParsedRecord)


def _parses_or_documented(parse: Any, *args: Any) -> None:
    try:
        result = parse(*args)
        if isinstance(result, Iterator):
            _rows(result)
    except Exception as exc:  # noqa: BLE001 - the property under test
        assert_documented(exc)


# -- hashes and hash lists ------------------------------------------------------------------------


@fuzz()
@given(
    st.one_of(st.text(max_size=80), st.sampled_from([PDQ, " " + PDQ, PDQ + "\n", PDQ[:63] + "g"]))
)
def test_pdq_hex_parses_or_is_bad_pdq_hash(text: str) -> None:
    _parses_or_documented(parse_pdq_hex, text)
    for kind in SignalKind:
        try:
            parse_hex(text, kind)
        except KeyError:
            continue  # a kind that is not hex-encoded (no length to check)
        except Exception as exc:  # noqa: BLE001
            assert_documented(exc)


@pytest.fixture(scope="module")
def hash_lists(shared_data: Path) -> list[bytes]:
    """Real hash files (Meta's expected PDQ CSV, vPDQ text) and StopNCII/HMA documents."""
    csv_lines = (shared_data / "pdq" / "expected-pdqhash.csv").read_bytes().splitlines()[:12]
    hma = b"\n".join(
        line.split(b",")[1] + b",id-" + str(n).encode() + b",1700000000,tag"
        for n, line in enumerate(csv_lines[1:])
    )
    vpdq = (shared_data / "vpdq" / "hashes" / "chair-19-sd-bar-128x128.txt").read_bytes()[:2000]
    record = {
        "signalType": "ImagePDQ",
        "hashValue": PDQ,
        "caseNumbers": {"c1": "Active"},
        "hashStatus": "Active",
    }
    stopncii = json.dumps(
        {"count": 2, "hashRecords": [record, dict(record, signalType="VideoMD5", hashValue=MD5)]}
    )
    jsonl = "\n".join(json.dumps(dict(record, hashValue=PDQ[:-2] + f"{n:02x}")) for n in range(4))
    return [hma, b"\n".join(csv_lines), vpdq, stopncii.encode(), jsonl.encode()]


@fuzz()
@given(data=st.data())
def test_hash_list_parsers_report_bad_rows_and_carry_on(
    hash_lists: list[bytes], data: st.DataObject
) -> None:
    sample = data.draw(st.one_of(mutated(hash_lists), st.binary(max_size=400)))
    _parses_or_documented(parse_hma_csv, _text(sample))
    _parses_or_documented(parse_hma_csv, _text(sample), SignalKind.PDQ)
    _parses_or_documented(parse_stopncii, _text(sample))
    _parses_or_documented(parse_vpdq_file, _text(sample), "fuzz.txt")
    _parses_or_documented(read_vpdq_text, sample.decode("utf-8", errors="replace"))


# -- Telegram ------------------------------------------------------------------------------------

UPDATE: dict[str, Any] = {
    "update_id": 10,
    "message": {
        "message_id": 77,
        "date": 1764000000,
        "chat": {"id": -1001234, "type": "supergroup", "title": "g", "username": "grp"},
        "from": {"id": 42, "is_bot": False, "first_name": "A", "username": "a"},
        "caption": "look",
        "photo": [
            {"file_id": "f", "file_unique_id": "u", "width": 90, "height": 90, "file_size": 900}
        ],
        "forward_origin": {
            "type": "user",
            "date": 1,
            "sender_user": {"id": 5, "is_bot": False, "first_name": "B"},
        },
        "reply_to_message": {
            "message_id": 76,
            "date": 1764000000,
            "chat": {"id": -1001234, "type": "supergroup"},
            "text": "/report",
        },
    },
}


@fuzz()
@given(st.one_of(damaged_json(UPDATE), JSON))
def test_telegram_updates_parse_or_are_malformed(raw: Any) -> None:
    _parses_or_documented(parse_update, raw)


class _Sink:
    """Takes whatever the importer hands it (the importer is under test, not hashing)."""

    async def receive(self, media: IncomingMedia) -> Decision:
        assert isinstance(media.content, bytes)
        return Decision(Outcome.IGNORE, reason="fuzz")

    async def report(self, report: UserReport) -> str:
        raise AssertionError("an export has no reports")


EXPORT: dict[str, Any] = {
    "name": "Group",
    "type": "private_supergroup",
    "id": 1234,
    "messages": [
        {
            "id": 1,
            "type": "message",
            "date": "2026-11-01T10:00:00",
            "date_unixtime": "1761991200",
            "from": "A",
            "from_id": "user42",
            "photo": "photos/p.jpg",
            "width": 8,
            "height": 8,
            "text": "hi",
        },
        {
            "id": 2,
            "type": "message",
            "date": "2026-11-01T10:01:00",
            "from": "B",
            "from_id": "user43",
            "file": "../../outside.jpg",
            "mime_type": "image/jpeg",
            "text": [{"type": "plain", "text": "x"}],
        },
        {"id": 3, "type": "service", "date": "2026-11-01T10:02:00", "action": "join"},
    ],
}


@fuzz(share=0.5)
@given(data=st.data())
def test_telegram_exports_import_or_fail_with_export_errors(
    tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    folder = tmp_path_factory.mktemp("export")
    (folder / "photos").mkdir()
    (folder / "photos" / "p.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"x" * 64 + b"\xff\xd9")
    (folder.parent / "outside.jpg").write_bytes(b"secret")
    if data.draw(st.booleans()):
        body = json.dumps(data.draw(damaged_json(EXPORT))).encode()
    else:
        body = data.draw(mutated([json.dumps(EXPORT).encode()]))
    (folder / "result.json").write_bytes(body)

    async def run() -> None:
        async for record in ExportImporter(_Sink()).run(folder):
            assert record.kind.value  # every media item gets a record

    try:
        asyncio.run(run())
    except Exception as exc:  # noqa: BLE001
        failure: BaseException | None = exc
    else:
        failure = None
    if failure is not None:
        assert_documented(failure)
        assert getattr(failure, "code", "").startswith("telegram_export"), failure


# -- request bodies through the app --------------------------------------------------------------


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Served, str]]:
    home = tmp_path_factory.mktemp("fuzz-api")
    settings = Settings(
        home=home / "home",
        database_url=f"sqlite:///{home / 'redress.db'}",
        pipeline_threads=1,
        api_rate_per_second=10_000.0,
        api_rate_burst=10_000,
        portal_case_burst=100_000,
    )
    served = Served(create_app(settings))
    try:
        state: AppState = served.app.state.redress
        with state.pipeline.sessions.begin() as session:
            token = ApiKeyService(session).create("fuzz", frozenset({Scope.SCAN})).token
        yield served, token
    finally:
        served.close()


SCAN_BODY = {
    "pdq": [PDQ, {"hash": PDQ, "quality": 90}],
    "md5": MD5,
    "vpdq": [{"pdq": PDQ, "quality": 100, "ts": 0.5}],
    "caption": "her number 138 1234 5678",
    "target": {"platform": "telegram", "chat_id": "-100", "message_id": "7"},
    "reporters": 2,
}
PORTAL_BODY = {
    "files": [{"kind": "image", "hashes": {"pdq": [{"hash": PDQ, "quality": 100}], "md5": MD5}}],
    "declarations": {"depicted": True, "adult": True},
    "contact": "me@example.org",
    "lang": "en",
}


def _envelope(answer: Any) -> None:
    assert answer.status_code < 500, answer.text[:300]
    if answer.status_code >= 400:
        body = answer.json()
        assert body["ok"] is False
        assert body["error"] in CODES, body
        assert body["status"] == answer.status_code


def _body(draw: st.DrawFn, shape: dict[str, Any]) -> bytes:
    choice = draw(st.integers(0, 2))
    if choice == 0:
        return json.dumps(draw(damaged_json(shape))).encode()
    if choice == 1:
        return draw(mutated([json.dumps(shape).encode()]))
    return json.dumps(draw(JSON)).encode()


@fuzz()
@given(data=st.data())
def test_api_scan_bodies_get_an_answer_or_the_envelope(
    client: tuple[Served, str], data: st.DataObject
) -> None:
    running, token = client
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    body = _body(data.draw, SCAN_BODY)
    _envelope(running.post("/api/v1/scan", content=body, headers=headers))
    batch = b'{"items": [' + body + b"]}"
    _envelope(running.post("/api/v1/scan/batch", content=batch, headers=headers))


@fuzz()
@given(data=st.data())
def test_portal_case_bodies_get_a_case_or_the_envelope(
    client: tuple[Served, str], data: st.DataObject
) -> None:
    running, _ = client
    answer = running.post(
        "/protect/api/cases",
        content=_body(data.draw, PORTAL_BODY),
        headers={"Content-Type": "application/json"},
    )
    _envelope(answer)
    if answer.status_code == 201:
        assert set(answer.json()) == {"ok", "case_number", "pin", "status", "files"}


@fuzz()
@given(
    st.dictionaries(
        st.sampled_from(["case_number", "pin", "confirm", "lang", "x"]),
        st.text(max_size=100),
        max_size=5,
    )
)
def test_portal_forms_answer_a_page(client: tuple[Served, str], form: dict[str, str]) -> None:
    running, _ = client
    for path in ("/protect/status", "/protect/withdraw"):
        answer = running.post(path, data=form)
        assert answer.status_code < 500, answer.text[:300]
