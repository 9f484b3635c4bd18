"""The command line's authorisation matrix: what each command needs to run.

The CLI has no login: its authority is the host account's, through what the
installation gives it — the database named by ``REDRESS_DATABASE_URL`` (its
credentials) and the key files under ``REDRESS_HOME/keys``. ``COMMANDS`` gives
every command one of these needs. The test walks the Typer app, so a command
added without a rule fails the suite with its name; then it runs each command
as two principals:

- the *operator*: the installation's own home and database. The command runs
  (exit 0) or refuses with a clear error (exit 2), never a crash;
- an *outsider*: an account that cannot use the database (the server refuses
  the connection). A ``DATABASE`` command refuses with ``database_unavailable``
  and writes nothing; a ``NOTHING`` command (it reads only its arguments) runs.

Servers (``SERVICE``) and benchmarks are named but not run: who may call a
server is the route matrix's business (test_authorisation.py).
"""

from __future__ import annotations

import enum
import io
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import click
import pytest
import typer.main
from PIL import Image

from redress import cli


class Need(enum.Enum):
    NOTHING = "reads only its arguments"
    DATABASE = "the installation's database"
    SERVICE = "a long-running server: not run here"
    BENCHMARK = "a benchmark with its own throwaway data: not run here"


@dataclass(frozen=True)
class Rule:
    need: Need
    args: tuple[str, ...] = ()
    run_as_operator: bool = True  # False: it would destroy data or call the network


PDQ = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"
ITEM = "0" * 32
PICTURE = "{picture}"  # replaced by a small PNG's path
TMP = "{tmp}"  # replaced by a fresh folder's path

COMMANDS: dict[str, Rule] = {
    "hash": Rule(Need.NOTHING, (PICTURE,)),
    "openapi": Rule(Need.NOTHING),
    "scan": Rule(Need.DATABASE, (PICTURE,)),
    "worker": Rule(Need.SERVICE),
    "serve": Rule(Need.SERVICE),
    "db upgrade": Rule(Need.DATABASE),
    "db downgrade": Rule(Need.DATABASE, ("base",), run_as_operator=False),
    "db current": Rule(Need.DATABASE),
    "bank create": Rule(Need.DATABASE, ("matrix",)),
    "bank list": Rule(Need.DATABASE),
    "bank add": Rule(Need.DATABASE, ("matrix", "--pdq", PDQ)),
    "bank remove": Rule(Need.DATABASE, ("matrix", "1")),
    "bank enable": Rule(Need.DATABASE, ("matrix",)),
    "bank disable": Rule(Need.DATABASE, ("matrix",)),
    "bank import": Rule(
        Need.DATABASE, ("matrix", f"{TMP}/in.txt", "--format", "vpdq", "--create", "internal")
    ),
    "bank export": Rule(Need.DATABASE, ("matrix", "--format", "hma-csv", "--output", f"{TMP}/o")),
    "bank stats": Rule(Need.DATABASE, ("matrix",)),
    "case create": Rule(Need.DATABASE, ("--pdq", PDQ)),
    "case status": Rule(Need.DATABASE, ("RC-NONE",)),
    "case withdraw": Rule(Need.DATABASE, ("RC-NONE", "--pin", "123456")),
    "evidence key": Rule(Need.DATABASE),
    "evidence capture": Rule(Need.DATABASE, (PICTURE, "--operator", "matrix")),
    "evidence show": Rule(Need.DATABASE, (ITEM,)),
    "evidence open": Rule(
        Need.DATABASE, (ITEM, "--out", f"{TMP}/open", "--purpose", "authorisation matrix")
    ),
    "evidence export": Rule(Need.DATABASE, (ITEM, "--to", f"{TMP}/package.zip")),
    "evidence verify": Rule(Need.NOTHING, (f"{TMP}/none.zip", "--key-fingerprint", "0" * 64)),
    "evidence delete": Rule(Need.DATABASE, (ITEM, "--reason", "matrix", "--yes")),
    "evidence rotate-master-key": Rule(Need.DATABASE),
    "evidence checkpoint": Rule(Need.DATABASE),
    "evidence timestamp": Rule(Need.DATABASE, run_as_operator=False),  # calls the TSA
    "evidence recipient-key": Rule(Need.NOTHING, ("--out", f"{TMP}/recipient")),
    "apikey create": Rule(Need.DATABASE, ("--scope", "scan", "--name", "matrix")),
    "apikey list": Rule(Need.DATABASE),
    "apikey revoke": Rule(Need.DATABASE, ("rdk_none",)),
    "telegram run": Rule(Need.SERVICE),
    "telegram records": Rule(Need.DATABASE),
    "telegram group set": Rule(Need.DATABASE, ("--chat", "-100123")),
    "telegram group list": Rule(Need.DATABASE),
    "import telegram-export": Rule(Need.DATABASE, (TMP,)),
    "user create": Rule(
        Need.DATABASE, ("matrix@example.org", "--role", "auditor", "--password-stdin")
    ),
    "user list": Rule(Need.DATABASE),
    "review import": Rule(Need.DATABASE),
    "evidence audit": Rule(Need.DATABASE),
    # On PostgreSQL a backup holds REDRESS_HOME's keys, blobs and policy (the database
    # itself is pg_dump's): the host account's file permissions guard it, not the database.
    "backup create": Rule(Need.NOTHING, (f"{TMP}/backup",)),
    "backup restore": Rule(Need.NOTHING, (f"{TMP}/backup",), run_as_operator=False),
    "notices submit": Rule(
        Need.DATABASE,
        ("--regime", "dsa", "--location", "https://t.me/c/1/2", "--email", "a@example.org"),
    ),
    "notices tick": Rule(Need.DATABASE),
    "notices list": Rule(Need.DATABASE),
    "notices statements": Rule(Need.DATABASE),
    # Sends through Telegram with the bot token: the network.
    "notices deliver-statements": Rule(Need.DATABASE, run_as_operator=False),
    "notices outbound create": Rule(Need.DATABASE, (ITEM, "--platform", "example")),
    "notices outbound export": Rule(Need.DATABASE, ("T-NONE", "--dir", TMP)),
    "notices outbound gone": Rule(Need.DATABASE, ("T-NONE",)),
    "notices outbound list": Rule(Need.DATABASE),
    "notices outbound times": Rule(Need.DATABASE),
    "report transparency": Rule(Need.DATABASE, ("--from", "2026-01-01", "--to", "2026-02-01")),
}


def commands() -> dict[str, click.Command]:
    """Every leaf command of ``redress``, by its space-separated name."""
    cli._register_domains()
    found: dict[str, click.Command] = {}

    def walk(command: click.Command, path: list[str]) -> None:
        children = getattr(command, "commands", None)
        if children is None:
            found[" ".join(path)] = command
            return
        for name, child in children.items():
            walk(child, [*path, name])

    walk(typer.main.get_command(cli.app), [])
    return found


@pytest.fixture(scope="module")
def every_command() -> dict[str, click.Command]:
    return commands()


def test_every_command_has_a_rule(every_command: dict[str, click.Command]) -> None:
    missing = sorted(
        name for name in every_command if name not in COMMANDS and not name.startswith("bench ")
    )
    assert not missing, (
        f"commands without an authority rule: {missing}"
        " (add them to COMMANDS in tests/hardening/test_cli_authority.py)"
    )
    assert sorted(set(COMMANDS) - set(every_command)) == []


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    picture = tmp_path / "picture.png"
    Image.new("RGB", (64, 48), (200, 30, 90)).save(picture)
    (tmp_path / "in.txt").write_text("0,100," + PDQ + ",0.000\n")
    return tmp_path


def _args(rule: Rule, folder: Path) -> list[str]:
    return [
        a.replace(PICTURE, str(folder / "picture.png")).replace(TMP, str(folder)) for a in rule.args
    ]


#: Runs one command line as a principal (database URL): (exit status, standard error).
Invoke = Callable[[str, list[str], str], tuple[int, str]]


@pytest.fixture
def as_principal(
    redress_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Invoke:
    def invoke(name: str, args: list[str], database_url: str) -> tuple[int, str]:
        monkeypatch.setenv("REDRESS_DATABASE_URL", database_url)
        monkeypatch.setattr("sys.stdin", io.StringIO("a long enough password for the matrix\n"))
        code = cli.run([*name.split(), *args])
        return code, capsys.readouterr().err

    return invoke


OUTSIDER_DATABASE = "postgresql+psycopg://outsider@127.0.0.1:9/redress"


def test_outsiders_get_nothing_from_database_commands(
    every_command: dict[str, click.Command], folder: Path, as_principal: Invoke, redress_home: Path
) -> None:
    invoke = as_principal
    wrong: list[str] = []
    for name, rule in COMMANDS.items():
        if rule.need not in (Need.DATABASE, Need.NOTHING):
            continue
        code, err = invoke(name, _args(rule, folder), OUTSIDER_DATABASE)
        assert "Traceback" not in err, (name, err)
        if rule.need is Need.DATABASE and (code != 2 or "[database_unavailable]" not in err):
            wrong.append(f"{name}: exit {code}, {err.strip()[:200]!r}")
        if rule.need is Need.NOTHING and code not in (0, 1):  # verify exits 1 on a bad package
            wrong.append(f"{name} needs nothing but failed: exit {code}, {err.strip()[:200]!r}")
    assert not wrong, "\n".join(wrong)
    crashes = (
        list((redress_home / "logs").glob("crash-*")) if (redress_home / "logs").is_dir() else []
    )
    assert crashes == []


def test_the_operator_runs_every_command_without_a_crash(
    every_command: dict[str, click.Command],
    folder: Path,
    as_principal: Invoke,
    redress_home: Path,
    sqlite_url: str,
) -> None:
    invoke = as_principal
    wrong: list[str] = []
    ran = 0
    for name, rule in COMMANDS.items():
        if rule.need in (Need.SERVICE, Need.BENCHMARK) or not rule.run_as_operator:
            continue
        code, err = invoke(name, _args(rule, folder), sqlite_url)
        ran += 1
        if code not in (0, 1, 2) or "internal error" in err or "Traceback" in err:
            wrong.append(f"{name}: exit {code}, {err.strip()[:300]!r}")
    assert not wrong, "\n".join(wrong)
    assert ran >= 30
    assert list(redress_home.glob("logs/crash-*")) == []
    assert os.path.exists(sqlite_url.removeprefix("sqlite:///"))
