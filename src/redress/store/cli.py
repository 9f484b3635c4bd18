"""Command-line commands of the store domain: ``db``, ``bank``, ``case``, ``bench store``.

Each command is the edge: it opens the engine from the settings, builds the
services with a session, and commits (or the importer commits per chunk).
The embedded SQLite database is upgraded on first use; PostgreSQL must be
upgraded with ``redress db upgrade`` (see :func:`redress.store.migrate.ensure_schema`).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn
from rich.table import Table
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from redress.config import Settings
from redress.errors import RedressError
from redress.index import MihIndex
from redress.signals.types import SignalKind
from redress.store import migrate
from redress.store.db import make_engine
from redress.store.errors import BadHashError, ImportRejectedError
from redress.store.exchange import (
    BankImporter,
    ExchangeFormat,
    export_bank,
    parse_hex,
    parse_vpdq_lines,
    signal_kind,
)
from redress.store.interfaces import (
    BankPurpose,
    BankRead,
    CaseRead,
    CaseStatus,
    EntryIn,
    EntrySource,
    VpdqFrameIn,
)
from redress.store.service import DEFAULT_CASE_BANK, BankService, CaseService, RetroMatcher
from redress.store.sync import SeenFollower

if TYPE_CHECKING:
    from redress.evidence.cases import EvidenceErasure

bank_app = typer.Typer(
    help="Banks of known hashes: create, fill, import, export.", no_args_is_help=True
)
case_app = typer.Typer(
    help="Victim cases: case number + PIN, status, withdrawal.", no_args_is_help=True
)
db_app = typer.Typer(help="The database schema (Alembic migrations).", no_args_is_help=True)
backup_app = typer.Typer(
    help="Back up and restore the database (SQLite), keys, evidence and policy.",
    no_args_is_help=True,
)

_err = Console(stderr=True)


def _settings(ctx: typer.Context) -> Settings:
    from redress.cli import cli_state

    return cli_state(ctx).settings


@contextmanager
def _engine(ctx: typer.Context) -> Iterator[tuple[Engine, Settings]]:
    settings = _settings(ctx)
    url = settings.effective_database_url
    migrate.ensure_schema(url)
    engine = make_engine(url)
    try:
        yield engine, settings
    finally:
        engine.dispose()


def _retro(engine: Engine, settings: Settings) -> RetroMatcher:
    return RetroMatcher(SeenFollower(engine, MihIndex, quality_min=settings.pdq_quality_min))


def _echo_json(value: object) -> None:
    typer.echo(json.dumps(value, sort_keys=True))


# --- db -----------------------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context, revision: str = typer.Argument("heads")) -> None:
    """Bring the database schema up to date."""
    url = _settings(ctx).effective_database_url
    migrate.upgrade(url, revision)
    typer.echo(f"database at {', '.join(migrate.current(url)) or 'base'}")


@db_app.command("downgrade")
def db_downgrade(ctx: typer.Context, revision: str = typer.Argument(...)) -> None:
    """Take the database schema down to REVISION (``base`` removes every table)."""
    url = _settings(ctx).effective_database_url
    migrate.downgrade(url, revision)
    typer.echo(f"database at {', '.join(migrate.current(url)) or 'base'}")


@db_app.command("current")
def db_current(ctx: typer.Context) -> None:
    """Show the schema revision of the database and whether it is current."""
    url = _settings(ctx).effective_database_url
    now, newest = migrate.current(url), migrate.heads()
    typer.echo(f"database: {', '.join(now) or 'base (empty)'}")
    typer.echo(f"newest:   {', '.join(newest)}")
    typer.echo("up to date" if now == newest else "needs `redress db upgrade`")


# --- bank ---------------------------------------------------------------------------------


def _bank_json(bank: BankRead) -> dict[str, object]:
    return {
        "id": bank.id,
        "name": bank.name,
        "purpose": bank.purpose.value,
        "pdq_threshold": bank.pdq_threshold,
        "outcome_policy": bank.outcome_policy,
        "enabled": bank.enabled,
        "disabled_until": bank.disabled_until.isoformat() if bank.disabled_until else None,
    }


@bank_app.command("create")
def bank_create(
    ctx: typer.Context,
    name: str,
    purpose: Annotated[
        BankPurpose, typer.Option(help="Why the bank exists.")
    ] = BankPurpose.INTERNAL,
    threshold: Annotated[
        int | None, typer.Option(help="PDQ match distance (default: REDRESS_PDQ_THRESHOLD).")
    ] = None,
    policy: Annotated[str | None, typer.Option(help="Default outcome policy name.")] = None,
) -> None:
    """Create a bank."""
    with _engine(ctx) as (engine, settings), Session(engine) as session:
        bank = BankService(session, default_threshold=settings.pdq_threshold).create(
            name, purpose, pdq_threshold=threshold, outcome_policy=policy
        )
        session.commit()
    typer.echo(
        f"created bank {bank.name!r} ({bank.purpose.value}, PDQ threshold {bank.pdq_threshold})"
    )


@bank_app.command("list")
def bank_list(ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List banks."""
    with _engine(ctx) as (engine, _settings), Session(engine) as session:
        banks = BankService(session).list()
    if as_json:
        for bank in banks:
            _echo_json(_bank_json(bank))
        return
    table = Table("name", "purpose", "threshold", "enabled", "policy")
    for bank in banks:
        table.add_row(
            bank.name,
            bank.purpose.value,
            str(bank.pdq_threshold),
            "yes" if bank.enabled else "no",
            bank.outcome_policy or "",
        )
    Console().print(table)


def _hash_options(
    pdq: list[str], md5: list[str], sha256: list[str], vpdq: list[Path]
) -> list[EntryIn]:
    entries = [EntryIn(SignalKind.PDQ, parse_hex(h, SignalKind.PDQ), 100) for h in pdq]
    entries += [EntryIn(SignalKind.MD5, parse_hex(h, SignalKind.MD5)) for h in md5]
    entries += [EntryIn(SignalKind.SHA256, parse_hex(h, SignalKind.SHA256)) for h in sha256]
    for path in vpdq:
        frames: list[VpdqFrameIn] = []
        with path.open(encoding="utf-8") as f:
            for item in parse_vpdq_lines(f):
                if not isinstance(item, tuple):
                    raise BadHashError(f"{path}: {item}")
                frames.append(item[1])
        entries.append(EntryIn(SignalKind.VPDQ, frames=tuple(frames), metadata={"file": path.name}))
    return entries


PdqOpt = Annotated[list[str], typer.Option("--pdq", help="A PDQ hash (64 hex digits); repeatable.")]
Md5Opt = Annotated[list[str], typer.Option("--md5", help="An MD5 (32 hex digits); repeatable.")]
ShaOpt = Annotated[list[str], typer.Option("--sha256", help="A SHA-256 (64 hex); repeatable.")]
VpdqOpt = Annotated[list[Path], typer.Option("--vpdq", help="A vPDQ text file; repeatable.")]


@bank_app.command("add")
def bank_add(
    ctx: typer.Context,
    name: str,
    paths: Annotated[list[Path] | None, typer.Argument(help="Media files to hash and add.")] = None,
    pdq: PdqOpt = [],  # noqa: B006 - typer reads the default, never mutates it
    md5: Md5Opt = [],  # noqa: B006
    sha256: ShaOpt = [],  # noqa: B006
    vpdq: VpdqOpt = [],  # noqa: B006
    note: Annotated[str | None, typer.Option(help="A note kept with each entry.")] = None,
) -> None:
    """Add hashes (or media files, hashed here) to a bank; they are matched against history."""
    entries = _hash_options(pdq, md5, sha256, vpdq)
    entries += _hash_files(ctx, paths or [])
    if note:
        entries = [
            EntryIn(e.kind, e.value, e.quality, e.hashes, e.frames, e.external_id, note, e.metadata)
            for e in entries
        ]
    if not entries:
        raise BadHashError("nothing to add: give media files or --pdq/--md5/--sha256/--vpdq")
    with _engine(ctx) as (engine, settings), Session(engine) as session:
        result = BankService(session, retro=_retro(engine, settings)).add(
            name, entries, EntrySource.MODERATOR
        )
        session.commit()
    typer.echo(
        f"added {len(result.added)} entr{'y' if len(result.added) == 1 else 'ies'}"
        f" to {name!r} ({result.duplicates} already there): {list(result.added)}"
    )


def _hash_files(ctx: typer.Context, paths: list[Path]) -> list[EntryIn]:
    if not paths:
        return []
    from redress.store.media import entries_for_files

    return entries_for_files(paths, _settings(ctx))


@bank_app.command("remove")
def bank_remove(ctx: typer.Context, name: str, entry_ids: list[int]) -> None:
    """Remove entries from a bank (recorded, not forgotten); they stop matching."""
    with _engine(ctx) as (engine, _settings), Session(engine) as session:
        removed = BankService(session).remove(name, entry_ids)
        session.commit()
    typer.echo(f"removed {len(removed)} entr{'y' if len(removed) == 1 else 'ies'} from {name!r}")


@bank_app.command("enable")
def bank_enable(ctx: typer.Context, name: str) -> None:
    """Switch matching against a bank on."""
    with _engine(ctx) as (engine, _settings), Session(engine) as session:
        BankService(session).set_enabled(name, True)
        session.commit()
    typer.echo(f"bank {name!r} enabled")


@bank_app.command("disable")
def bank_disable(
    ctx: typer.Context,
    name: str,
    until: Annotated[
        datetime | None, typer.Option(help="Only until this time (UTC unless it says otherwise).")
    ] = None,
) -> None:
    """Switch matching against a bank off (for good, or until a time)."""
    with _engine(ctx) as (engine, _settings), Session(engine) as session:
        if until is None:
            BankService(session).set_enabled(name, False)
        else:
            BankService(session).disable_until(name, until)
        session.commit()
    typer.echo(f"bank {name!r} disabled" + (f" until {until.isoformat()}" if until else ""))


@bank_app.command("import")
def bank_import(
    ctx: typer.Context,
    name: str,
    file: Path,
    fmt: Annotated[ExchangeFormat, typer.Option("--format", help="File format.")],
    strict: Annotated[
        bool, typer.Option(help="Reject the whole file if any row is malformed.")
    ] = False,
    signal_type: Annotated[str | None, typer.Option(help="hma-csv: the rows' signal type.")] = None,
    chunk_size: Annotated[int, typer.Option(help="Rows per committed chunk.", min=1)] = 50_000,
    create: Annotated[
        BankPurpose | None, typer.Option(help="Create the bank with this purpose if missing.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Import a hash list (resumes an interrupted import of the same file)."""
    if not file.is_file():
        raise BadHashError(f"no such file: {file}")
    kind = signal_kind(signal_type) if signal_type else None
    with _engine(ctx) as (engine, settings):
        if create is not None:
            with Session(engine) as session:
                BankService(session, default_threshold=settings.pdq_threshold).ensure(name, create)
                session.commit()
        importer = BankImporter(engine, retro=_retro(engine, settings), chunk_size=chunk_size)
        source = EntrySource.EXCHANGE if fmt is ExchangeFormat.STOPNCII else EntrySource.IMPORT
        try:
            if sys.stderr.isatty() and not as_json:
                with Progress(
                    TextColumn("importing"),
                    BarColumn(),
                    TransferSpeedColumn(),
                    TimeRemainingColumn(),
                    console=_err,
                ) as bar:
                    task = bar.add_task("import", total=file.stat().st_size)
                    report = importer.run(
                        name,
                        file,
                        fmt,
                        strict=strict,
                        signal_type=kind,
                        source=source,
                        progress=lambda done, _t: bar.update(task, completed=done),
                    )
            else:
                report = importer.run(
                    name, file, fmt, strict=strict, signal_type=kind, source=source
                )
        except ImportRejectedError as exc:
            for problem in exc.problems[:50]:
                typer.echo(f"{file}:{problem.line}: [{problem.code}] {problem.message}", err=True)
            raise
    for problem in report.problems[:50]:
        typer.echo(f"{file}:{problem.line}: [{problem.code}] {problem.message} (skipped)", err=True)
    summary = {
        "bank": report.bank,
        "format": report.format.value,
        "records": report.records,
        "added": report.added,
        "duplicates": report.duplicates,
        "removed": report.removed,
        "skipped": report.problem_count,
        "resumed_at": report.resumed_at,
        "retroactive_matches": report.retro_matches,
    }
    if as_json:
        _echo_json(summary)
    else:
        resumed = f", resumed after record {report.resumed_at}" if report.resumed_at else ""
        typer.echo(
            f"imported {report.records} records into {name!r}: {report.added} added, "
            f"{report.duplicates} duplicates, {report.removed} removed, "
            f"{report.problem_count} malformed rows skipped, {report.retro_matches} "
            f"retroactive matches{resumed}"
        )
    if report.problem_count:
        raise typer.Exit(1)


@bank_app.command("export")
def bank_export(
    ctx: typer.Context,
    name: str,
    fmt: Annotated[ExchangeFormat, typer.Option("--format", help="File format.")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File (vpdq: folder); default stdout.")
    ] = None,
    include_removed: Annotated[
        bool, typer.Option(help="stopncii: removed entries as Withdrawn.")
    ] = False,
) -> None:
    """Export a bank as a hash list."""
    from redress.store.interfaces import AuditAction
    from redress.store.store import SqlAuditLog

    with _engine(ctx) as (engine, _settings), Session(engine) as session:
        if fmt is ExchangeFormat.VPDQ:
            report = export_bank(
                session, name, fmt, output or Path(f"{name}-vpdq"), include_removed=include_removed
            )
        elif output is None:
            report = export_bank(session, name, fmt, sys.stdout, include_removed=include_removed)
        else:
            with output.open("w", encoding="utf-8", newline="") as out:
                report = export_bank(session, name, fmt, out, include_removed=include_removed)
        SqlAuditLog(session).append(
            "cli",
            AuditAction.BANK_EXPORT,
            f"bank:{name}",
            {"format": fmt.value, "written": report.written},
        )
        session.commit()
    skipped = ", ".join(f"{n} {k}" for k, n in sorted(report.skipped.items()))
    typer.echo(
        f"exported {report.written} entries from {name!r}"
        + (f"; not representable in {fmt.value}: {skipped}" if skipped else ""),
        err=True,
    )


@bank_app.command("stats")
def bank_stats(
    ctx: typer.Context, name: str, as_json: Annotated[bool, typer.Option("--json")] = False
) -> None:
    """Entry counts per signal type, removed entries and matches of a bank."""
    with _engine(ctx) as (engine, _settings), Session(engine) as session:
        stats = BankService(session).stats(name)
    data = {
        **_bank_json(stats.bank),
        "active": stats.active,
        "removed": stats.removed,
        "matches": stats.matches,
    }
    if as_json:
        _echo_json(data)
        return
    active = ", ".join(f"{n} {k}" for k, n in sorted(stats.active.items())) or "none"
    typer.echo(f"{name}: active {active}; removed {stats.removed}; matches {stats.matches}")


# --- case ---------------------------------------------------------------------------------


def _case_json(case: CaseRead) -> dict[str, object]:
    return {
        "case_number": case.case_number,
        "status": case.status.value,
        "locale": case.locale,
        "entries": len(case.entry_ids),
        "created_at": case.created_at.isoformat(),
        "updated_at": case.updated_at.isoformat(),
    }


@case_app.command("create")
def case_create(
    ctx: typer.Context,
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Media files to hash (kept local).")
    ] = None,
    pdq: PdqOpt = [],  # noqa: B006
    md5: Md5Opt = [],  # noqa: B006
    sha256: ShaOpt = [],  # noqa: B006
    vpdq: VpdqOpt = [],  # noqa: B006
    bank: Annotated[str, typer.Option(help="The victim-cases bank.")] = DEFAULT_CASE_BANK,
    locale: Annotated[str, typer.Option(help="The victim's language (en, zh-CN).")] = "en",
    contact: Annotated[str | None, typer.Option(help="Optional contact for notifications.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Open a victim case from hashes; prints the case number and PIN ONCE."""
    entries = _hash_options(pdq, md5, sha256, vpdq) + _hash_files(ctx, paths or [])
    if not entries:
        raise BadHashError("a case needs at least one hash: --pdq/--md5/--sha256/--vpdq or files")
    with _engine(ctx) as (engine, settings), Session(engine) as session:
        created = CaseService(
            session, retro=_retro(engine, settings), default_threshold=settings.pdq_threshold
        ).create(entries, bank=bank, locale=locale, contact=contact)
        session.commit()
    if as_json:
        _echo_json({**_case_json(created.case), "pin": created.pin})
    else:
        typer.echo(f"case number: {created.case.case_number}")
        typer.echo(f"PIN:         {created.pin}")
    typer.echo(
        "WARNING: write the PIN down now. It is shown only this once and cannot be "
        "recovered; the case number and PIN are needed to follow or withdraw the case.",
        err=True,
    )


@case_app.command("status")
def case_status(
    ctx: typer.Context,
    case_number: str,
    set_status: Annotated[
        CaseStatus | None, typer.Option("--set", help="Change the status (admin).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Show a case's status, or change it with --set."""
    with _engine(ctx) as (engine, settings), Session(engine) as session:
        erasure = _evidence_erasure(session, settings)
        cases = CaseService(session, actor="admin", closures=[erasure])
        case = cases.set_status(case_number, set_status) if set_status else cases.get(case_number)
        session.commit()
    if erasure.erased:
        typer.echo(f"erased {len(erasure.erased)} evidence items captured for the case", err=True)
    if as_json:
        _echo_json(_case_json(case))
    else:
        typer.echo(f"{case.case_number}: {case.status.value} ({len(case.entry_ids)} hashes)")


@case_app.command("withdraw")
def case_withdraw(
    ctx: typer.Context,
    case_number: str,
    pin: Annotated[str, typer.Option(prompt=True, hide_input=True, help="The case PIN.")],
) -> None:
    """Withdraw a case (the victim's choice); its hashes stop matching within a second."""
    with _engine(ctx) as (engine, settings), Session(engine) as session:
        erasure = _evidence_erasure(session, settings)
        case = CaseService(session, closures=[erasure]).withdraw(case_number, pin)
        session.commit()
    typer.echo(f"{case.case_number}: {case.status.value}; its hashes no longer match")
    typer.echo(
        f"erased {len(erasure.erased)} evidence items captured for the case "
        "(copies already exported in evidence packages cannot be recalled)"
    )


def _evidence_erasure(session: Session, settings: Settings) -> EvidenceErasure:
    """Closing a case erases its evidence in the same transaction (the victim's request)."""
    from redress.evidence.cases import EvidenceErasure
    from redress.evidence.service import build_evidence_service
    from redress.evidence.store import SqlEvidenceStore

    return EvidenceErasure(build_evidence_service(SqlEvidenceStore(session), settings))


def scan(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(help="Media files to scan.")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per file.")] = False,
    dihedral: Annotated[bool, typer.Option(help="Also match flipped/rotated copies.")] = False,
    platform: Annotated[str, typer.Option(help="Where the files were seen (recorded).")] = "cli",
) -> None:
    """Hash files and match them against every enabled bank; recorded for retroactive matching."""
    from redress.signals import hash_file
    from redress.signals.verify import ScannedPicture
    from redress.store.interfaces import SightingIn
    from redress.store.media import hash_options, query_for_signals
    from redress.store.service import Matcher
    from redress.store.sync import IndexFollower

    failed = False
    with _engine(ctx) as (engine, settings):
        follower = IndexFollower(engine, MihIndex, quality_min=settings.pdq_quality_min)
        follower.start()
        matcher = Matcher(follower, quality_min=settings.pdq_quality_min)
        options = hash_options(settings, dihedral=dihedral, robust="query")
        for path in paths:
            try:
                signals = hash_file(path, options)
                # Near misses of pictures banked with local features are verified.
                picture = (
                    ScannedPicture(path.read_bytes(), options) if settings.verify_features else None
                )
                with Session(engine) as session:
                    outcome = matcher.scan(
                        session,
                        query_for_signals(signals, picture),
                        SightingIn(platform=platform, chat=str(path.parent)),
                    )
                    session.commit()
            except RedressError as exc:
                failed = True
                record: dict[str, object] = {
                    "path": str(path),
                    "error": {"code": exc.code, "message": exc.message},
                }
                if as_json:
                    _echo_json(record)
                else:
                    typer.echo(f"{path}: error [{exc.code}] {exc.message}", err=True)
                continue
            matches = [
                {
                    "bank": m.bank_name,
                    "bank_id": m.bank_id,
                    "bank_purpose": m.bank_purpose.value,
                    "entry": m.entry_id,
                    "distance": m.distance,
                    "signal": m.signal.value,
                    "verified": m.verified,
                    "case_ids": list(m.case_ids),
                    **(
                        {"query_share": m.query_share, "entry_share": m.entry_share}
                        if m.query_share is not None
                        else {}
                    ),
                }
                for m in outcome.matches
            ]
            if as_json:
                _echo_json(
                    {
                        "path": str(path),
                        "kind": signals.kind,
                        "sha256": signals.sha256,
                        "md5": signals.md5,
                        "pdq": signals.pdq.hex if signals.pdq else None,
                        "quality": signals.quality,
                        "hashable": signals.hashable,
                        "item": outcome.item_id,
                        "matches": matches,
                    }
                )
            elif matches:
                for m in outcome.matches:
                    typer.echo(
                        f"{path}: MATCH bank {m.bank_name!r} entry {m.entry_id} "
                        f"({m.signal.value}, distance {m.distance}"
                        f"{', verified by local features' if m.verified else ''})"
                    )
            else:
                typer.echo(f"{path}: no match")
    if failed:
        raise typer.Exit(1)


def _bench_store(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    size: Annotated[int, typer.Option(help="Hashes to import and load.", min=1000)] = 100_000,
    cold_size: Annotated[
        int | None, typer.Option(help="Hashes for the cold-start figure (default: --size).")
    ] = None,
    postgres: Annotated[
        str | None, typer.Option(help="PostgreSQL admin URL (a throwaway database is made).")
    ] = None,
    retro_seen: Annotated[
        int | None,
        typer.Option(help="Seen items for the retro-match figure (default: --size; 0 skips it)."),
    ] = None,
    retro_new: Annotated[
        int | None,
        typer.Option(help="New hashes matched against them (default: --size / 10)."),
    ] = None,
) -> None:
    """Import rate, cold start and retroactive matching, on SQLite and PostgreSQL."""
    from redress.store.bench import run_store_bench

    run_store_bench(
        _settings(ctx),
        size=size,
        cold_size=cold_size or size,
        postgres_admin_url=postgres,
        as_json=as_json,
        retro_seen=retro_seen,
        retro_new=retro_new,
    )


@backup_app.command("create")
def backup_create(
    ctx: typer.Context,
    destination: Annotated[Path, typer.Argument(help="A new or empty folder.")],
) -> None:
    """Back up while Redress runs: SQLite snapshot, keys, evidence blobs, policy.

    On PostgreSQL, run pg_dump first (docs/operations.md); this copies the files.
    """
    from redress.store.backup import create_backup

    manifest = create_backup(_settings(ctx), destination)
    typer.echo(f"backed up {len(manifest.files)} files to {destination}")
    if manifest.database != "sqlite":
        typer.echo("the PostgreSQL database is not included: keep the pg_dump taken before this")
    typer.echo("the backup holds the evidence master key: store it encrypted, off this host")


@backup_app.command("restore")
def backup_restore(
    ctx: typer.Context,
    source: Annotated[Path, typer.Argument(help="A folder made by `redress backup create`.")],
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite a home that already holds data.")
    ] = False,
) -> None:
    """Restore into REDRESS_HOME after checking every file, then audit the evidence ledger;
    exits 1 if the audit fails."""
    from redress.evidence.audit import audit_ledger
    from redress.evidence.service import build_evidence_service
    from redress.evidence.store import SqlEvidenceStore
    from redress.store.backup import restore_backup

    settings = _settings(ctx)
    manifest = restore_backup(source, settings, force=force)
    typer.echo(f"restored {len(manifest.files)} files from a backup of {manifest.created_at}")
    if manifest.database != "sqlite":
        typer.echo("restore the PostgreSQL database with pg_restore before starting Redress")
        return
    url = settings.effective_database_url
    migrate.upgrade(url)  # a backup from an older release is brought up to this one
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            report = audit_ledger(build_evidence_service(SqlEvidenceStore(session), settings))
    finally:
        engine.dispose()
    for failure in report.failures:
        typer.echo(f"FAIL  [{failure.code}] {failure.message}")
    if not report.ok:
        typer.echo("LEDGER NOT VERIFIED")
        raise typer.Exit(1)
    typer.echo(
        f"LEDGER VERIFIED: {report.size} entries, {report.items} evidence items "
        f"({report.decrypted} decrypted)"
    )


def _bench_videos(
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    originals: Annotated[
        int, typer.Option("--originals", min=3, help="Original clips to generate.")
    ] = 16,
    seed: Annotated[int, typer.Option("--seed", help="Seed for the clips and edits.")] = 2026,
) -> None:
    """Re-shared video copies (bars, canvases, excerpts, compilations): Meta's vPDQ rule
    vs Redress's matcher, recall per family and false matches."""
    from redress.store.video_bench import render_video_report, run_video_bench

    report = run_video_bench(originals=originals, seed=seed)
    typer.echo(json.dumps(report, indent=2) if as_json else render_video_report(report))


def register(app: typer.Typer, bench: typer.Typer) -> None:
    """Add this domain's commands to the root app and the bench group."""
    app.add_typer(db_app, name="db")
    app.add_typer(backup_app, name="backup")
    app.add_typer(bank_app, name="bank")
    app.add_typer(case_app, name="case")
    app.command("scan")(scan)
    bench.command("store")(_bench_store)
    bench.command("videos")(_bench_videos)
