"""A victim's withdrawal erases the evidence captured for her case, and only hers."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from cli_support import run_redress
from redress.actions.interfaces import ActionTarget
from redress.config import Settings
from redress.connectors.telegram.fakeapi import jpeg
from redress.evidence.cases import EvidenceErasure, item_ids_for_case_number
from redress.evidence.errors import EvidenceDeletedError
from redress.evidence.service import EvidenceService, build_evidence_service
from redress.evidence.store import SqlEvidenceStore
from redress.pipeline.container import build_pipeline
from redress.pipeline.models import ScanItem
from redress.pipeline.service import MediaSubmission, ScanContext
from redress.signals import HashOptions, hash_bytes
from redress.store.db import make_engine
from redress.store.errors import CaseNotFoundError
from redress.store.interfaces import CaseStatus, case_key
from redress.store.media import entries_for_signals
from redress.store.migrate import upgrade
from redress.store.service import CaseService

REPO = Path(__file__).resolve().parents[2]
HERS = jpeg(256, 256, 11)
OTHER = jpeg(256, 256, 12)


@dataclass
class Cases:
    engine: Engine
    settings: Settings
    numbers: dict[str, str]
    pins: dict[str, str]
    items: dict[str, str]  # case name -> evidence item captured by the pipeline

    def evidence(self, session: Session) -> EvidenceService:
        return build_evidence_service(SqlEvidenceStore(session), self.settings)


@pytest.fixture
def cases(database_url: str, tmp_path: Path) -> Iterator[Cases]:
    settings = Settings(home=tmp_path / "home", database_url=database_url)
    upgrade(database_url)
    engine = make_engine(database_url)
    options = HashOptions.from_settings(settings)
    numbers, pins = {}, {}
    with Session(engine) as session, session.begin():
        for name, image in (("hers", HERS), ("other", OTHER)):
            created = CaseService(session).create(entries_for_signals(hash_bytes(image, options)))
            numbers[name], pins[name] = created.case.case_number, created.pin
    pipeline = build_pipeline(settings, embedded_queue=False)
    items = {}
    try:
        for name, image in (("hers", HERS), ("other", OTHER)):
            with pipeline.sessions.begin() as session:
                item, _ = pipeline.service.accept(
                    session,
                    MediaSubmission(
                        data=image,
                        context=ScanContext(
                            source="telegram", target=ActionTarget("telegram", "-100", name)
                        ),
                    ),
                    key=None,
                    idempotency_key=None,
                )
            pipeline.runner.process(item.id)
            with pipeline.sessions() as session:  # the scan item names its evidence
                row = session.get(ScanItem, item.id)
                assert row is not None
                assert row.evidence_item_id is not None
                items[name] = row.evidence_item_id
    finally:
        pipeline.close()
    yield Cases(engine, settings, numbers, pins, items)
    engine.dispose()


def test_evidence_names_the_case_by_the_stores_case_key(cases: Cases) -> None:
    with Session(cases.engine) as session:
        service = cases.evidence(session)
        hers = CaseService(session).get(cases.numbers["hers"])
        assert service.item(cases.items["hers"]).case_id == case_key(hers.id)
        assert item_ids_for_case_number(service, session, cases.numbers["hers"]) == [
            cases.items["hers"]
        ]
        with pytest.raises(CaseNotFoundError):
            item_ids_for_case_number(service, session, "RC-0000-0000-0000")


def test_withdrawal_erases_her_evidence_and_leaves_the_other_case_alone(cases: Cases) -> None:
    with Session(cases.engine) as session, session.begin():
        erasure = EvidenceErasure(cases.evidence(session))
        CaseService(session, closures=[erasure]).withdraw(cases.numbers["hers"], cases.pins["hers"])
        assert len(erasure.erased) == 1
    with Session(cases.engine) as session, session.begin():
        service = cases.evidence(session)
        hers = service.item(cases.items["hers"])
        assert hers.status == "deleted"
        with pytest.raises(EvidenceDeletedError):
            service.open(hers.id, "test", "after withdrawal")
        [tombstone] = [
            e for e in service.ledger.entries_for_item(hers.id) if e.kind == "evidence:item:deleted"
        ]
        facts = json.loads(tombstone.body)
        assert facts["actor"] == "victim"
        assert cases.numbers["hers"] in facts["facts"]["reason"]
        assert service.open(cases.items["other"], "test", "still here").content == OTHER


def test_deleting_a_case_erases_its_evidence(cases: Cases) -> None:
    with Session(cases.engine) as session, session.begin():
        erasure = EvidenceErasure(cases.evidence(session))
        CaseService(session, closures=[erasure], actor="admin").set_status(
            cases.numbers["other"], CaseStatus.DELETED
        )
    with Session(cases.engine) as session:
        assert cases.evidence(session).item(cases.items["other"]).status == "deleted"
        assert cases.evidence(session).item(cases.items["hers"]).status == "active"


def redress(home: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REDRESS_")}
    env.update(REDRESS_HOME=str(home), PYTHONPATH=str(REPO / "src"))
    return run_redress(*args, env=env, stdin=stdin)


def test_cli_export_by_case_number_then_withdraw_erases(tmp_path: Path) -> None:
    home = tmp_path / "home"
    photo = tmp_path / "hers.jpg"
    photo.write_bytes(HERS)
    created = redress(home, "case", "create", str(photo), "--json")
    assert created.returncode == 0, created.stderr
    case = json.loads(created.stdout)
    captured = redress(
        home, "evidence", "capture", str(photo), "--operator", "helpline", "--case",
        case["case_number"],
    )  # fmt: skip
    assert captured.returncode == 0, captured.stderr
    item = json.loads(captured.stdout)["item"]
    exported = redress(
        home, "evidence", "export", "--case", case["case_number"], "--to", str(tmp_path / "p.zip")
    )
    assert exported.returncode == 0, exported.stderr
    assert "1 items" in exported.stdout
    unknown = redress(home, "evidence", "export", "--case", "RC-0000-0000-0000", "--to", "x.zip")
    assert unknown.returncode == 2
    assert "Traceback" not in unknown.stderr

    withdrawn = redress(home, "case", "withdraw", case["case_number"], stdin=f"{case['pin']}\n")
    assert withdrawn.returncode == 0, withdrawn.stderr
    assert "erased 1 evidence items" in withdrawn.stdout
    opened = redress(
        home, "evidence", "open", item, "--out", str(tmp_path / "o.jpg"), "--purpose", "court"
    )
    assert opened.returncode == 2
    assert "deleted" in opened.stderr
