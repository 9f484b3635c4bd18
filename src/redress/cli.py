"""The ``redress`` command line: a thin layer over the domain services.

Each domain contributes its commands through a ``register(app, bench)``
function in its own ``cli.py``; this module only builds the root, the shared
``bench`` group and the error boundary that keeps tracebacks away from users.
"""

from __future__ import annotations

import datetime as dt
import importlib
import sys
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

import typer
from pydantic import ValidationError

from redress import __version__
from redress.config import Settings
from redress.errors import RedressError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

app = typer.Typer(
    name="redress",
    help="Find re-shared intimate images, get them removed, and keep evidence that holds up.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
bench_app = typer.Typer(
    help="Benchmarks: each figure is printed beside the anchor measured in the same run.",
    no_args_is_help=True,
)
app.add_typer(bench_app, name="bench")


@dataclass(frozen=True)
class CliState:
    """What every command gets from the root callback."""

    settings: Settings


def cli_state(ctx: typer.Context) -> CliState:
    """Return the state the root callback stored on the click context."""
    state = ctx.find_root().obj
    if not isinstance(state, CliState):  # pragma: no cover - only if wired wrongly
        raise RuntimeError("redress CLI state missing")
    return state


def command_sessions(ctx: typer.Context) -> sessionmaker[Session]:
    """Sessions on the configured database for one command line.

    The schema is checked first (:func:`~redress.store.migrate.ensure_schema`: the
    embedded SQLite file is upgraded, PostgreSQL only ever by ``redress db upgrade``),
    and the engine is disposed when the command ends (its pooled connections closed,
    not left to the garbage collector).
    """
    from sqlalchemy.orm import sessionmaker

    from redress.store.db import make_engine
    from redress.store.migrate import ensure_schema

    url = cli_state(ctx).settings.effective_database_url
    ensure_schema(url)
    engine = make_engine(url)
    ctx.find_root().call_on_close(engine.dispose)
    return sessionmaker(engine, expire_on_commit=False)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"redress {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """Build the settings once, from the environment, for every subcommand."""
    try:
        ctx.obj = CliState(settings=Settings())
    except ValidationError as exc:
        raise RedressError(f"invalid REDRESS_* setting: {exc}", code="configuration_error") from exc


# Each domain's CLI module and the top-level commands it registers. A command line
# imports only the domain it names (the telegram bot, the web app and the reports
# service together take about a second to import); `bench`, `--help` and anything
# unknown import them all. tests/test_cli.py checks this table against the commands.
DOMAIN_COMMANDS: dict[str, frozenset[str]] = {
    "redress.signals.cli": frozenset({"hash"}),
    "redress.index.cli": frozenset(),
    "redress.store.cli": frozenset({"scan", "db", "backup", "bank", "case"}),
    "redress.evidence.cli": frozenset({"evidence"}),
    "redress.pipeline.cli": frozenset({"worker", "apikey"}),
    "redress.web.cli": frozenset({"serve", "openapi"}),
    "redress.connectors.telegram.cli": frozenset({"telegram", "import"}),
    "redress.review.cli": frozenset({"user", "review"}),
    "redress.reports.cli": frozenset({"notices", "report"}),
}


def domains_for(args: Sequence[str]) -> list[str]:
    """The domain CLI modules a command line needs: the one that owns its command, or
    every one (for ``bench``, help, or a command no domain claims)."""
    command = next((arg for arg in args if not arg.startswith("-")), None)
    if command is None and "--version" in args:
        return []
    owners = [module for module, names in DOMAIN_COMMANDS.items() if command in names]
    return owners if len(owners) == 1 else list(DOMAIN_COMMANDS)


def _register_domains(modules: Sequence[str] | None = None) -> None:
    """Let the given domain CLI modules (all by default) add their commands."""
    for module in DOMAIN_COMMANDS if modules is None else modules:
        # Imported here so each command line loads only what it runs.
        importlib.import_module(module).register(app, bench_app)


def _crash_report(exc: BaseException) -> str | None:
    """Write the traceback to a file under REDRESS_HOME; return its path (None if impossible)."""
    try:
        home = Settings().home
    except ValidationError:
        return None
    try:
        logs = home / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
        path = logs / f"crash-{stamp}.log"
        path.write_text("".join(traceback.format_exception(exc)), encoding="utf-8")
        return str(path)
    except OSError:
        return None


def database_failure(exc: BaseException) -> RedressError | None:
    """The clear error for a database that cannot be reached or refuses this account
    (SQLAlchemy's ``OperationalError``), or None for any other failure."""
    from sqlalchemy.exc import OperationalError

    from redress.store.errors import DatabaseUnavailableError

    if not isinstance(exc, OperationalError):
        return None
    reason = str(exc.orig if exc.orig is not None else exc).strip().splitlines()
    return DatabaseUnavailableError(
        f"the database cannot be used ({reason[0] if reason else type(exc).__name__});"
        " check REDRESS_DATABASE_URL, that the server runs and that this account may use it"
    )


def run(args: Sequence[str] | None = None) -> int:
    """Run one command line (``sys.argv`` by default) behind the error boundary and
    return its exit status: 2 for a :class:`RedressError`, 70 for an unexpected failure
    (traceback written to ``REDRESS_HOME/logs/``), never a traceback on the terminal."""
    try:
        app(args=None if args is None else list(args), prog_name="redress")
    except SystemExit as done:  # click's standalone mode always ends this way
        code = done.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except RedressError as exc:
        typer.echo(f"redress: error [{exc.code}]: {exc.message}", err=True)
        return 2
    except KeyboardInterrupt:
        typer.echo("redress: interrupted", err=True)
        return 130
    except Exception as exc:  # noqa: BLE001 - the last line of defence for users
        failure = database_failure(exc)
        if failure is not None:
            typer.echo(f"redress: error [{failure.code}]: {failure.message}", err=True)
            return 2
        where = _crash_report(exc)
        detail = f" (details in {where})" if where else ""
        typer.echo(f"redress: internal error: {type(exc).__name__}: {exc}{detail}", err=True)
        return 70
    return 0


def main() -> None:
    """Entry point of the ``redress`` console script: never shows a traceback to a user."""
    try:
        _register_domains(domains_for(sys.argv[1:]))
    except Exception as exc:  # noqa: BLE001 - a broken install, not a user's mistake
        # Typically a compiled extension (PDQ, the index) missing from a source tree
        # that was never built: say so, keep the traceback for the report.
        where = _crash_report(exc)
        detail = f" (details in {where})" if where else ""
        typer.echo(
            f"redress: internal error: its commands could not be loaded: "
            f"{type(exc).__name__}: {exc}; reinstall with `pip install .`, which builds "
            f"the compiled extensions{detail}",
            err=True,
        )
        sys.exit(70)
    sys.exit(run())
