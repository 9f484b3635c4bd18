"""The root command line: version, help, and the error boundary."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from redress import __version__, cli


def run_redress(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "redress", *args], capture_output=True, text=True, env=env
    )


def test_version_is_printed() -> None:
    result = run_redress("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"redress {__version__}"


def test_bad_setting_is_a_clear_error_not_a_traceback(redress_home: Path) -> None:
    env = dict(os.environ, REDRESS_PDQ_THRESHOLD="lots")
    result = run_redress("bench", "--help", env=env)
    assert result.returncode == 2
    assert "configuration_error" in result.stderr
    assert "REDRESS_" in result.stderr or "pdq_threshold" in result.stderr
    assert "Traceback" not in result.stderr


def test_each_command_line_loads_only_the_domain_it_names() -> None:
    import importlib

    import typer

    from redress import cli

    # The table the root consults must say exactly what each domain registers, or a
    # command would be missing from the command lines that load one domain.
    for module, names in cli.DOMAIN_COMMANDS.items():
        app, bench = typer.Typer(), typer.Typer()
        importlib.import_module(module).register(app, bench)
        registered = {c.name or c.callback.__name__ for c in app.registered_commands if c.callback}
        registered |= {g.name for g in app.registered_groups if g.name}
        assert registered == names, module
    assert cli.domains_for(["bank", "list"]) == ["redress.store.cli"]
    assert cli.domains_for(["--version"]) == []
    assert cli.domains_for(["bench", "hash"]) == list(cli.DOMAIN_COMMANDS)
    assert cli.domains_for(["--help"]) == list(cli.DOMAIN_COMMANDS)
    # What a user sees: a store command works, and its help names no other domain.
    result = run_redress("bank", "--help")
    assert result.returncode == 0, result.stderr
    assert "create" in result.stdout
    full = run_redress("--help")
    assert all(name in full.stdout for names in cli.DOMAIN_COMMANDS.values() for name in names)


def test_a_broken_install_is_a_clear_error_not_a_traceback(
    redress_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # What a source tree without its compiled extensions does: a domain fails to import.
    monkeypatch.setattr(cli, "domains_for", lambda _args: ["redress.index._not_built"])
    monkeypatch.setattr(sys, "argv", ["redress", "scan", "x.jpg"])
    with pytest.raises(SystemExit) as done:
        cli.main()
    assert done.value.code == 70
    err = capsys.readouterr().err
    assert "its commands could not be loaded" in err
    assert "pip install ." in err
    assert "Traceback" not in err
    assert list((redress_home / "logs").glob("crash-*.log"))
