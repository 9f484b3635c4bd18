"""`redress apikey create/list/revoke` and `redress worker` without a broker."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from sqlalchemy.orm import Session

from cli_support import run_redress
from redress.pipeline.keys import ApiKeyService
from redress.store.db import make_engine


def redress(*args: str) -> subprocess.CompletedProcess[str]:
    return run_redress(*args)


def test_create_list_revoke(redress_home: Path) -> None:
    created = redress(
        "apikey", "create", "--scope", "scan", "--scope", "review", "--name", "tg", "--json"
    )
    assert created.returncode == 0, created.stderr
    key = json.loads(created.stdout)
    assert key["scopes"] == ["review", "scan"]
    assert key["token"].startswith("rdk_")
    assert len(key["webhook_secret"]) == 64
    engine = make_engine(f"sqlite:///{redress_home / 'redress.db'}")
    with Session(engine) as session:
        assert ApiKeyService(session).authenticate(key["token"]).name == "tg"
    listed = redress("apikey", "list", "--json")
    assert key["token"] not in listed.stdout
    assert json.loads(listed.stdout)["prefix"] == key["prefix"]
    revoked = redress("apikey", "revoke", key["prefix"])
    assert revoked.returncode == 0
    assert json.loads(redress("apikey", "list", "--json").stdout)["revoked_at"] is not None
    engine.dispose()


def test_token_is_printed_once_in_text_form(redress_home: Path) -> None:
    created = redress("apikey", "create", "--scope", "admin", "--expires-days", "30")
    assert created.returncode == 0
    assert created.stdout.startswith("token:          rdk_")
    assert "keeps only a digest" in created.stderr


def test_bad_scope_is_a_clear_error(redress_home: Path) -> None:
    result = redress("apikey", "create", "--scope", "root")
    assert result.returncode == 2
    assert "bad_scope" in result.stderr
    assert "Traceback" not in result.stderr


def test_revoking_an_unknown_key(redress_home: Path) -> None:
    result = redress("apikey", "revoke", "rdk_missing")
    assert result.returncode == 2
    assert "key_not_found" in result.stderr


def test_worker_needs_a_broker(redress_home: Path) -> None:
    result = redress("worker")
    assert result.returncode == 2
    assert "REDRESS_BROKER_URL" in result.stderr
