"""Command-line commands of the Telegram connectors: thin, over the bot and the importer."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn

from redress.cli import cli_state
from redress.connectors.interfaces import ActionKind
from redress.connectors.telegram.errors import ExportError
from redress.connectors.telegram.export import ExportImporter, ExportRecordKind, ImportTally
from redress.connectors.telegram.store import GroupSettings, RecordKind, TelegramStore
from redress.errors import InvalidInputError

telegram_app = typer.Typer(help="The Telegram group-guard bot.", no_args_is_help=True)
group_app = typer.Typer(help="Per-group settings of the bot.", no_args_is_help=True)
telegram_app.add_typer(group_app, name="group")

_ERRORS = {ExportRecordKind.UNREADABLE, ExportRecordKind.UNSAFE_PATH}


def register(app: typer.Typer, bench: typer.Typer) -> None:
    """Add ``telegram ...``, ``import telegram-export`` and ``bench telegram``."""
    app.add_typer(telegram_app, name="telegram")
    import_app = next((g.typer_instance for g in app.registered_groups if g.name == "import"), None)
    if import_app is None:
        import_app = typer.Typer(help="Import media from other systems.", no_args_is_help=True)
        app.add_typer(import_app, name="import")
    import_app.command("telegram-export")(import_telegram_export)
    bench.command("telegram")(bench_telegram)


@telegram_app.command("run")
def run(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Webhook mode: address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Webhook mode: port to listen on.")] = 8443,
) -> None:
    """Guard every group the bot is in: long polling, or a webhook when one is configured."""
    from redress.connectors.telegram.bot import GroupGuard, GuardOptions
    from redress.connectors.telegram.client import BotApiClient
    from redress.connectors.telegram.runtime import bot_token, pipeline_sink, sessions_for
    from redress.connectors.telegram.webhook import create_webhook_app
    from redress.connectors.telegram.wire import ALLOWED_UPDATES
    from redress.pipeline.container import settle_heap

    settings = cli_state(ctx).settings
    token = bot_token(settings)
    sessions = sessions_for(settings)  # migrates an embedded database first
    sink, pipeline = pipeline_sink(settings)
    options = GuardOptions(
        portal_url=settings.telegram_portal_url,
        poll_timeout=settings.telegram_poll_timeout,
        fetches=settings.telegram_fetches,
        scan_batch=settings.telegram_scan_batch,
    )

    async def main() -> None:
        timeout = httpx.Timeout(settings.telegram_poll_timeout + 15.0, connect=10.0)
        async with httpx.AsyncClient(timeout=timeout) as http:
            api = BotApiClient(
                http,
                token,
                base_url=settings.telegram_api_url,
                file_limit=settings.telegram_file_limit_bytes,
            )
            guard = GroupGuard(api, sink, sessions, options)
            bot_id = await guard.start()
            settle_heap()  # a long-running process from here on (docs/operations.md)
            if settings.telegram_webhook_url:
                import uvicorn

                secret = settings.telegram_webhook_secret
                app = create_webhook_app(guard, secret.get_secret_value() if secret else "")
                await api.set_webhook(
                    settings.telegram_webhook_url,
                    secret_token=secret.get_secret_value() if secret else None,
                    allowed_updates=ALLOWED_UPDATES,
                )
                typer.echo(f"telegram bot {bot_id}: webhook mode on {host}:{port}", err=True)
                config = uvicorn.Config(app, host=host, port=port, log_level="warning")
                await uvicorn.Server(config).serve()
            else:
                typer.echo(f"telegram bot {bot_id}: long polling", err=True)
                await guard.run()

    try:
        asyncio.run(main())
    finally:
        sink.close()
        pipeline.close()


def _actions(values: list[str]) -> tuple[ActionKind, ...]:
    try:
        return tuple(ActionKind(v) for v in values)
    except ValueError as exc:
        allowed = ", ".join(a.value for a in ActionKind)
        raise InvalidInputError(f"unknown outcome; use one of: {allowed}") from exc


@group_app.command("set")
def group_set(
    ctx: typer.Context,
    chat_id: Annotated[int, typer.Option("--chat", help="The group's id, e.g. -1001234567890.")],
    title: Annotated[str | None, typer.Option(help="A name for people.")] = None,
    bank: Annotated[
        list[str] | None, typer.Option(help="Bank to check (repeat); none: all.")
    ] = None,
    outcome: Annotated[
        list[str] | None,
        typer.Option(
            help="Allowed action (repeat): delete_message, ban_sender, restrict_sender, post_notice"
        ),
    ] = None,
    notice: Annotated[str | None, typer.Option(help="Notice text posted after a removal.")] = None,
    language: Annotated[str, typer.Option(help="en or zh: the default notice's language.")] = "en",
    disable: Annotated[bool, typer.Option("--disable", help="Stop scanning this group.")] = False,
) -> None:
    """Create or replace one group's settings."""
    from redress.connectors.telegram.runtime import sessions_for
    from redress.connectors.telegram.store import DEFAULT_OUTCOMES

    if language not in {"en", "zh"}:
        raise InvalidInputError("language is en or zh")
    settings = GroupSettings(
        chat_id=chat_id,
        title=title,
        enabled=not disable,
        banks=tuple(bank or ()),
        outcomes=_actions(outcome) if outcome else DEFAULT_OUTCOMES,
        notice_text=notice,
        language=language,
    )
    sessions = sessions_for(cli_state(ctx).settings)
    with sessions.begin() as session:
        TelegramStore(session).put_group(settings)
    typer.echo(json.dumps(_group_json(settings), ensure_ascii=False))


def _group_json(group: GroupSettings) -> dict[str, object]:
    return {
        "chat_id": group.chat_id,
        "title": group.title,
        "enabled": group.enabled,
        "banks": list(group.banks),
        "outcomes": [str(o) for o in group.outcomes],
        "notice_text": group.notice_text,
        "language": group.language,
    }


@group_app.command("list")
def group_list(ctx: typer.Context) -> None:
    """Every configured group, one JSON object per line."""
    from redress.connectors.telegram.runtime import sessions_for

    with sessions_for(cli_state(ctx).settings)() as session:
        for group in TelegramStore(session).groups():
            typer.echo(json.dumps(_group_json(group), ensure_ascii=False))


@telegram_app.command("records")
def records(
    ctx: typer.Context,
    kind: Annotated[list[str] | None, typer.Option(help="Only these kinds (repeat).")] = None,
    chat_id: Annotated[int | None, typer.Option(help="Only this chat.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many.")] = 1000,
) -> None:
    """What the bot recorded (scans, actions, alerts, ...), one JSON object per line."""
    from redress.connectors.telegram.runtime import sessions_for

    try:
        kinds = [RecordKind(k) for k in kind or ()]
    except ValueError as exc:
        raise InvalidInputError(
            f"unknown record kind; use one of: {', '.join(k.value for k in RecordKind)}"
        ) from exc
    with sessions_for(cli_state(ctx).settings)() as session:
        for row in TelegramStore(session).records(kinds, chat_id=chat_id, limit=limit):
            line = {
                "id": row.id,
                "at": row.created_at.isoformat(),
                "kind": str(row.kind),
                "update_id": row.update_id,
                "chat_id": row.chat_id,
                "message_id": row.message_id,
                "media_group_id": row.media_group_id,
                **row.detail,
            }
            typer.echo(json.dumps(line, ensure_ascii=False, default=str))


def import_telegram_export(
    ctx: typer.Context,
    folder: Annotated[Path, typer.Argument(help="The export folder (holding result.json).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print each record as JSON.")] = False,
    show_all: Annotated[
        bool, typer.Option("--all", help="Also report media with no match.")
    ] = False,
    out: Annotated[
        Path | None, typer.Option(help="JSON-lines report (default: under REDRESS_HOME).")
    ] = None,
    username: Annotated[
        list[str] | None,
        typer.Option(help="ID=NAME: a public chat's @username, for t.me links (repeat)."),
    ] = None,
) -> None:
    """Scan every media file of a Telegram Desktop JSON export against the banks; record
    matches with links and preserve each matched item as evidence."""
    from redress.connectors.telegram.runtime import pipeline_sink, prepare_database

    settings = cli_state(ctx).settings
    usernames: dict[int, str] = {}
    for item in username or ():
        key, sep, name = item.partition("=")
        if not sep or not key.lstrip("-").isdigit() or not name:
            raise InvalidInputError(f"--username takes ID=NAME; got {item!r}")
        usernames[int(key)] = name.lstrip("@")
    prepare_database(settings)
    sink, pipeline = pipeline_sink(settings, source="telegram-export", connector="telegram-export")
    importer = ExportImporter(
        sink,
        usernames=usernames,
        max_file_bytes=settings.max_file_bytes,
        scan_batch=settings.telegram_scan_batch,
    )
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    report = out or settings.home / "telegram" / "imports" / f"{stamp}.jsonl"
    report.parent.mkdir(parents=True, exist_ok=True)
    console = Console(stderr=True)
    tally = ImportTally()
    errors = 0

    async def main() -> None:
        nonlocal errors, tally
        with (
            report.open("w", encoding="utf-8") as sink_file,
            Progress(
                TextColumn("[bold]importing[/]"),
                BarColumn(),
                DownloadColumn(),
                TextColumn("{task.fields[messages]} messages, {task.fields[media]} media"),
                TimeElapsedColumn(),
                console=console,
                transient=as_json,
            ) as progress,
        ):
            task = progress.add_task("import", total=None, messages=0, media=0)

            def update(current: ImportTally) -> None:
                nonlocal tally
                tally = current
                progress.update(
                    task,
                    completed=current.bytes_read,
                    total=current.bytes_total,
                    messages=current.messages,
                    media=current.media,
                )

            async for record in importer.run(folder, update):
                errors += record.kind in _ERRORS
                if record.kind is ExportRecordKind.SCANNED and not show_all:
                    continue
                line = record.to_json()
                sink_file.write(line + "\n")
                if as_json:
                    typer.echo(line)

    try:
        asyncio.run(main())
    except ExportError:
        raise
    finally:
        sink.close()
        pipeline.close()
    summary = ", ".join(f"{n} {k}" for k, n in sorted(tally.by_kind.items())) or "no media"
    console.print(f"{tally.messages} messages, {tally.media} media: {summary}; report: {report}")
    if errors:
        raise typer.Exit(1)


def bench_telegram(
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
    messages: Annotated[int, typer.Option(help="Photo messages through the bot.")] = 1000,
    export_messages: Annotated[
        int, typer.Option(help="Messages in the generated export.")
    ] = 20_000,
    bank_size: Annotated[int, typer.Option(help="Random PDQ hashes in the bank.")] = 10_000,
) -> None:
    """Bot media messages/s against the local fake Bot API, and export import rate."""
    import os
    import platform

    from redress.connectors.telegram.bench import TARGET_MEDIA_PER_S, run_bench

    bench = run_bench(messages, export_messages, bank_size)
    machine = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }
    if as_json:
        typer.echo(json.dumps({**bench.as_dict(), "machine": machine}))
        return
    typer.echo(
        f"bot, fake Bot API over loopback HTTP: {bench.bot_media_per_s:.1f} media messages/s "
        f"(target {TARGET_MEDIA_PER_S:.0f}/s, "
        f"ratio {bench.bot_media_per_s / TARGET_MEDIA_PER_S:.2f}; "
        f"sink alone one by one {bench.sink_media_per_s:.1f}/s, "
        f"ratio {bench.bot_media_per_s / bench.sink_media_per_s:.2f}; "
        f"sink alone in slices {bench.sink_batched_media_per_s:.1f}/s, "
        f"ratio {bench.bot_media_per_s / bench.sink_batched_media_per_s:.2f})"
    )
    fake_cpu = f"{bench.fake_cpu_ms:.2f}" if bench.fake_cpu_ms is not None else "unknown"
    typer.echo(
        f"bot process CPU {bench.bot_cpu_ms:.2f} ms/message "
        f"(sink alone one by one {bench.sink_cpu_ms:.2f}, "
        f"ratio {bench.bot_cpu_ms / bench.sink_cpu_ms:.2f}; "
        f"in slices {bench.sink_batched_cpu_ms:.2f}, "
        f"ratio {bench.bot_cpu_ms / bench.sink_batched_cpu_ms:.2f}); "
        f"the fake Bot API's process {fake_cpu} ms/message on the same cores "
        "(Telegram's servers would not use this machine's CPU)"
    )
    typer.echo(
        f"bot, fake Bot API in process: {bench.asgi_media_per_s:.1f} media messages/s "
        f"(ratio {bench.asgi_media_per_s / bench.sink_media_per_s:.2f} to the sink alone "
        f"one by one, {bench.asgi_media_per_s / bench.sink_batched_media_per_s:.2f} in slices); "
        f"CPU {bench.asgi_cpu_ms:.2f} ms/message, the fake's included"
    )
    typer.echo(
        f"export: {bench.export_messages_per_s:.1f} messages/s, "
        f"{bench.export_media_per_s:.1f} media/s "
        f"(sink alone {bench.sink_media_per_s:.1f} media/s, "
        f"ratio {bench.export_media_per_s / bench.sink_media_per_s:.2f}) "
        f"(ijson parse alone {bench.ijson_messages_per_s:.1f} messages/s, "
        f"ratio {bench.export_messages_per_s / bench.ijson_messages_per_s:.4f})"
    )
    typer.echo(f"machine: {machine}")
