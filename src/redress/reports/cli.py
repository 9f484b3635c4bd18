"""``redress notices ...`` and ``redress report transparency``: thin commands over the
reports services (each command is one edge: it commits)."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from redress.cli import cli_state, command_sessions
from redress.reports.errors import BadReportInputError
from redress.reports.interfaces import NoticeIn, NoticeStatus, Sender
from redress.reports.mail import mailer_from_settings
from redress.reports.store import NoticeStore
from redress.reports.tasks import NoticeWorker
from redress.reports.transparency import FORMATS, TransparencyService, parse_day, render

notices_app = typer.Typer(
    help="Inbound notices (TAKE IT DOWN Act, DSA), their clock, statements of reasons and "
    "outbound takedown notices.",
    no_args_is_help=True,
)
outbound_app = typer.Typer(help="Takedown notices to hosting platforms.", no_args_is_help=True)
report_app = typer.Typer(help="Reports.", no_args_is_help=True)
notices_app.add_typer(outbound_app, name="outbound")


def register(app: typer.Typer, bench: typer.Typer) -> None:
    """Add ``notices ...`` and ``report transparency``."""
    app.add_typer(notices_app, name="notices")
    app.add_typer(report_app, name="report")


def _clock(at: str | None) -> Any:
    if at is None:
        return lambda: dt.datetime.now(dt.UTC)
    try:
        fixed = dt.datetime.fromisoformat(at)
    except ValueError:
        raise BadReportInputError(f"--at must be an ISO time, not {at!r}") from None
    if fixed.tzinfo is None:
        fixed = fixed.replace(tzinfo=dt.UTC)
    return lambda: fixed


def _worker(ctx: typer.Context, at: str | None = None, probe: bool = False) -> NoticeWorker:
    from redress.index import MihIndex
    from redress.store.sync import SeenFollower

    settings = cli_state(ctx).settings
    sessions = command_sessions(ctx)
    engine = sessions.kw["bind"]
    follower = SeenFollower(engine, MihIndex, quality_min=settings.pdq_quality_min)
    follower.catch_up()
    content_probe = None
    if probe:
        import httpx

        from redress.reports.outbound import HttpContentProbe

        content_probe = HttpContentProbe(httpx.Client(timeout=10.0))
    return NoticeWorker(
        sessions,
        settings,
        _clock(at),
        mailer=mailer_from_settings(settings),
        probe=content_probe,
        seen_index=follower.images,
    )


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: _plain(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return value


@notices_app.command("tick")
def tick(
    ctx: typer.Context,
    at: Annotated[
        str | None, typer.Option(help="Run the clock as of this UTC time (ISO 8601).")
    ] = None,
    probe: Annotated[
        bool, typer.Option(help="Check outbound locations over HTTP (404/410: gone).")
    ] = False,
    every: Annotated[
        float | None,
        typer.Option(help="Keep running: one tick every this many seconds (a worker)."),
    ] = None,
) -> None:
    """Run the clock once: close decided notices, remind, escalate, record breaches,
    answer senders, write statements of reasons and send due outbound notices."""
    import time

    if every is not None and (every <= 0 or at is not None):
        raise BadReportInputError("--every takes a positive number of seconds, without --at")
    worker = _worker(ctx, at, probe)
    while True:
        typer.echo(json.dumps(_plain(worker.tick())))
        if every is None:
            return
        time.sleep(every)


@notices_app.command("submit")
def submit(
    ctx: typer.Context,
    regime: Annotated[str, typer.Option(help="take_it_down or dsa.")],
    location: Annotated[list[str], typer.Option(help="Where the content is (repeatable).")],
    email: Annotated[str, typer.Option(help="The sender's e-mail (for the answer).")],
    signature: Annotated[str | None, typer.Option(help="TAKE IT DOWN: the signature.")] = None,
    name: Annotated[str | None, typer.Option(help="The sender's name.")] = None,
    explanation: Annotated[str | None, typer.Option(help="DSA: why it is illegal.")] = None,
    jurisdiction: Annotated[str | None, typer.Option(help="US, EU, DE, ...")] = None,
    non_consent: Annotated[
        bool, typer.Option(help="TAKE IT DOWN: shared without consent, in good faith.")
    ] = False,
    good_faith: Annotated[bool, typer.Option(help="DSA: accurate and complete.")] = False,
    trusted: Annotated[bool, typer.Option(help="Sent by a trusted flagger (Art. 22).")] = False,
) -> None:
    """Record a notice received another way (post, phone, a helpline's own form)."""
    worker = _worker(ctx)
    notice = NoticeIn(
        regime=regime,
        jurisdiction=jurisdiction,
        locations=tuple(location),
        explanation=explanation,
        signature=signature,
        good_faith=good_faith,
        non_consent=non_consent,
        sender_name=name,
        sender_email=email,
    )
    with worker.sessions.begin() as session:
        read = worker.notices(session).submit(notice, Sender("cli", trusted=trusted))
    with worker.sessions.begin() as session:
        worker.notices(session).acknowledge(read.reference)
    typer.echo(json.dumps(_plain(read)))


@notices_app.command("list")
def list_notices(
    ctx: typer.Context,
    status: Annotated[NoticeStatus | None, typer.Option(help="open or closed.")] = None,
) -> None:
    """Notices, earliest due first (one JSON object per line)."""
    worker = _worker(ctx)
    with worker.sessions.begin() as session:
        for read in worker.notices(session).notices(status):
            typer.echo(json.dumps(_plain(read)))


@notices_app.command("statements")
def statements(
    ctx: typer.Context,
    start: Annotated[str | None, typer.Option("--from", help="First day (YYYY-MM-DD).")] = None,
    end: Annotated[str | None, typer.Option("--to", help="Day after the last.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="json or csv.")] = "json",
    out: Annotated[Path | None, typer.Option(help="Write here instead of stdout.")] = None,
) -> None:
    """Statements of reasons in the DSA Transparency Database schema (no personal data)."""
    from redress.reports.statements import to_csv

    if fmt not in ("json", "csv"):
        raise BadReportInputError(f"--format must be json or csv, not {fmt!r}")
    worker = _worker(ctx)
    with worker.sessions.begin() as session:
        service = worker.statements(session)
        service.sync()
        records = service.export(
            parse_day(start, "--from") if start else None, parse_day(end, "--to") if end else None
        )
    text = json.dumps(records, indent=2) if fmt == "json" else to_csv(records)
    if out is not None:
        out.write_text(text, encoding="utf-8")
    else:
        typer.echo(text)


@notices_app.command("deliver-statements")
def deliver(ctx: typer.Context) -> None:
    """Send pending statements of reasons to affected Telegram users (the bot's sendMessage)."""
    import httpx

    from redress.connectors.telegram.client import BotApiClient
    from redress.connectors.telegram.runtime import bot_token
    from redress.connectors.telegram.statements import TelegramStatementSender
    from redress.reports.statements import deliver_statements

    settings = cli_state(ctx).settings
    worker = _worker(ctx)
    token = bot_token(settings)

    async def main() -> int:
        async with httpx.AsyncClient(timeout=30.0) as http:
            client = BotApiClient(http, token, base_url=settings.telegram_api_url)
            try:
                return await deliver_statements(
                    worker.sessions, worker.statements, TelegramStatementSender(client)
                )
            finally:
                client.close()

    typer.echo(json.dumps({"sent": asyncio.run(main())}))


@outbound_app.command("create")
def outbound_create(
    ctx: typer.Context,
    item: Annotated[str, typer.Argument(help="The matched scan item ID.")],
    platform: Annotated[str, typer.Option(help="The hosting platform's name.")],
    to: Annotated[str | None, typer.Option(help="Its abuse contact e-mail.")] = None,
    legal_basis: Annotated[str | None, typer.Option(help="Instead of the default.")] = None,
    location: Annotated[str | None, typer.Option(help="Instead of the item's own.")] = None,
    actor: Annotated[str, typer.Option(help="Who asks (for the audit log).")] = "cli",
) -> None:
    """Create a takedown notice from a match; the next tick sends it (with --to)."""
    worker = _worker(ctx)
    with worker.sessions.begin() as session:
        read = worker.outbound(session).create(
            item,
            platform=platform,
            abuse_contact=to,
            actor=actor,
            legal_basis=legal_basis,
            location=location,
        )
    typer.echo(json.dumps(_plain(read)))


@outbound_app.command("export")
def outbound_export(
    ctx: typer.Context,
    reference: Annotated[str, typer.Argument(help="The takedown notice reference.")],
    folder: Annotated[Path, typer.Option("--dir", help="Where to write the .eml file.")],
) -> None:
    """Write a takedown notice to a file (to send by other means)."""
    worker = _worker(ctx)
    with worker.sessions.begin() as session:
        path = worker.outbound(session).export(reference, folder)
    typer.echo(str(path))


@outbound_app.command("gone")
def outbound_gone(
    ctx: typer.Context,
    reference: Annotated[str, typer.Argument(help="The takedown notice reference.")],
    actor: Annotated[str, typer.Option(help="Who confirmed it.")] = "cli",
) -> None:
    """Confirm the content is gone: no more re-sends."""
    worker = _worker(ctx)
    with worker.sessions.begin() as session:
        read = worker.outbound(session).confirm_gone(reference, actor)
    typer.echo(json.dumps(_plain(read)))


@outbound_app.command("list")
def outbound_list(ctx: typer.Context) -> None:
    """Every takedown notice (one JSON object per line)."""
    worker = _worker(ctx)
    with worker.sessions.begin() as session:
        for read in worker.outbound(session).notices():
            typer.echo(json.dumps(_plain(read)))


@outbound_app.command("times")
def outbound_times(ctx: typer.Context) -> None:
    """Each platform's response time (first notice to content gone)."""
    worker = _worker(ctx)
    with worker.sessions.begin() as session:
        for row in worker.outbound(session).response_times():
            typer.echo(json.dumps(_plain(row)))


@report_app.command("transparency")
def transparency(
    ctx: typer.Context,
    start: Annotated[str, typer.Option("--from", help="First day (YYYY-MM-DD), UTC.")],
    end: Annotated[str, typer.Option("--to", help="Day after the last (YYYY-MM-DD), UTC.")],
    fmt: Annotated[str, typer.Option("--format", help="html, csv or json.")] = "html",
    out: Annotated[Path | None, typer.Option(help="Write here instead of stdout.")] = None,
) -> None:
    """Notices, actions, automated and human decisions, time to act, breaches, appeals and
    reversals, overall and per month (DSA Art. 15 style)."""
    if fmt not in FORMATS:
        raise BadReportInputError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    first, after = parse_day(start, "--from"), parse_day(end, "--to")
    worker = _worker(ctx)
    with worker.sessions.begin() as session:
        worker.statements(session).sync()
    with worker.sessions.begin() as session:
        text = render(TransparencyService(NoticeStore(session)).report(first, after), fmt)
    if out is not None:
        out.write_text(text, encoding="utf-8")
    else:
        typer.echo(text)
