"""``redress apikey ...``, ``redress worker`` and ``redress bench pipeline``."""

from __future__ import annotations

import datetime as dt
import json
import sys
from typing import Annotated

import typer

from redress.cli import cli_state, command_sessions
from redress.errors import ConfigurationError
from redress.pipeline.keys import ApiKeyService, KeyInfo, parse_scopes


def _key_json(info: KeyInfo) -> dict[str, object]:
    return {
        "prefix": info.prefix,
        "name": info.name,
        "scopes": sorted(s.value for s in info.scopes),
        "created_at": info.created_at.isoformat(),
        "expires_at": info.expires_at.isoformat() if info.expires_at else None,
        "revoked_at": info.revoked_at.isoformat() if info.revoked_at else None,
        "rate_per_second": info.rate_per_second,
        "rate_burst": info.rate_burst,
    }


def register(app: typer.Typer, bench: typer.Typer) -> None:
    """Add the pipeline's commands."""
    apikey = typer.Typer(help="API keys: create (shown once), list, revoke.", no_args_is_help=True)
    app.add_typer(apikey, name="apikey")

    @apikey.command("create")
    def create(
        ctx: typer.Context,
        scope: Annotated[
            list[str], typer.Option("--scope", help="scan, curate, review or admin (repeatable).")
        ],
        name: Annotated[str, typer.Option(help="Who the key is for; also its policy source.")] = (
            "default"
        ),
        expires_days: Annotated[
            float | None, typer.Option(help="Days until the key stops working.")
        ] = None,
        rate: Annotated[float | None, typer.Option(help="Requests per second (bucket refill).")] = (
            None
        ),
        burst: Annotated[int | None, typer.Option(help="Bucket size.")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    ) -> None:
        """Create an API key. The token and webhook secret are printed once, never again."""
        scopes = parse_scopes(scope)
        sessions = command_sessions(ctx)
        with sessions.begin() as session:
            created = ApiKeyService(session).create(
                name,
                scopes,
                expires_in=dt.timedelta(days=expires_days) if expires_days is not None else None,
                rate_per_second=rate,
                rate_burst=burst,
            )
        secret = created.info.webhook_secret.decode()
        if as_json:
            typer.echo(
                json.dumps(
                    {**_key_json(created.info), "token": created.token, "webhook_secret": secret}
                )
            )
            return
        typer.echo(f"token:          {created.token}")
        typer.echo(f"webhook secret: {secret}")
        typer.echo(f"prefix:         {created.info.prefix}")
        typer.echo("Store both now: Redress keeps only a digest of the token.", err=True)

    @apikey.command("list")
    def list_keys(
        ctx: typer.Context,
        as_json: Annotated[bool, typer.Option("--json", help="One JSON object per key.")] = False,
    ) -> None:
        """List keys (never their tokens)."""
        sessions = command_sessions(ctx)
        with sessions() as session:
            keys = ApiKeyService(session).list()
        for info in keys:
            if as_json:
                typer.echo(json.dumps(_key_json(info)))
            else:
                state = "revoked" if info.revoked_at else "active"
                scopes = ",".join(sorted(s.value for s in info.scopes))
                typer.echo(f"{info.prefix}  {info.name}  {scopes}  {state}")

    @apikey.command("revoke")
    def revoke(ctx: typer.Context, prefix: str) -> None:
        """Revoke a key by its prefix (``rdk_...``, as `apikey list` shows it)."""
        sessions = command_sessions(ctx)
        with sessions.begin() as session:
            info = ApiKeyService(session).revoke(prefix)
        typer.echo(f"revoked {info.prefix} ({info.name})")

    @app.command()
    def worker(
        ctx: typer.Context,
        concurrency: Annotated[int, typer.Option(help="Worker processes or threads.")] = 2,
        pool: Annotated[str, typer.Option(help="prefork, threads or solo.")] = "prefork",
        loglevel: Annotated[str, typer.Option(help="Celery log level.")] = "INFO",
        supervise: Annotated[
            bool,
            typer.Option(
                help="Run Celery in a child process and start it again if it dies"
                " (--no-supervise: in this process, for a process manager that does that)."
            ),
        ] = True,
    ) -> None:
        """Process queued scans from Redis (needs REDRESS_BROKER_URL)."""
        from redress.pipeline.worker import run_worker, supervise_worker

        settings = cli_state(ctx).settings
        if not settings.broker_url:
            raise ConfigurationError("redress worker needs REDRESS_BROKER_URL (redis://...)")
        if supervise:
            child = [sys.executable, "-m", "redress", "worker", "--no-supervise"]
            child += ["--concurrency", str(concurrency), "--pool", pool, "--loglevel", loglevel]
            raise typer.Exit(supervise_worker(child))
        raise typer.Exit(
            run_worker(settings, concurrency=concurrency, pool=pool, loglevel=loglevel)
        )

    @bench.command("load")
    def bench_load(
        ctx: typer.Context,
        duration: Annotated[float, typer.Option(help="Seconds of load.")] = 600.0,
        lookup_rate: Annotated[float, typer.Option(help="Hash lookups per second.")] = 2000.0,
        lookup_batch: Annotated[
            int,
            typer.Option(
                help="Hashes per lookup request (/api/v1/scan/batch); 1 sends each alone.",
                min=1,
                max=1000,
            ),
        ] = 100,
        media_rate: Annotated[float, typer.Option(help="Media uploads per second.")] = 200.0,
        bank_size: Annotated[int, typer.Option(help="PDQ entries in the bank.")] = 10_000,
        max_inflight: Annotated[
            int, typer.Option(help="Requests outstanding per stream before one is not sent.")
        ] = 256,
        sample_seconds: Annotated[float, typer.Option(help="Seconds between RSS samples.")] = 5.0,
        use_settings: Annotated[
            bool,
            typer.Option(
                "--use-settings",
                help="Load the configured database/broker instead of a temporary SQLite home.",
            ),
        ] = False,
        workers: Annotated[
            int,
            typer.Option(
                help="With --use-settings and a broker: start this many one-process "
                "`redress worker`s for the run (the PostgreSQL + Redis deployment).",
                min=0,
                max=64,
            ),
        ] = 0,
        processes: Annotated[
            int,
            typer.Option(help="`redress serve --processes`: API processes.", min=1, max=64),
        ] = 1,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    ) -> None:
        """Open-loop load on loopback at the target rates: errors, latency, memory slope."""
        from redress.pipeline.load import print_report, run_load

        settings = cli_state(ctx).settings
        if workers and not (use_settings and settings.broker_url):
            raise typer.BadParameter(
                "--workers needs --use-settings and REDRESS_BROKER_URL (Redis)",
                param_hint="--workers",
            )

        report = run_load(
            settings,
            duration=duration,
            lookup_rate=lookup_rate,
            lookup_batch=lookup_batch,
            media_rate=media_rate,
            bank_size=bank_size,
            max_inflight=max_inflight,
            sample_seconds=sample_seconds,
            use_settings=use_settings,
            workers=workers,
            processes=processes,
        )
        if as_json:
            typer.echo(report.to_json())
        else:
            print_report(report)

    @bench.command("pipeline")
    def bench_pipeline(
        ctx: typer.Context,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
        lookups: Annotated[int, typer.Option(help="Hash lookups to time.")] = 1000,
        media: Annotated[int, typer.Option(help="Media items to time.")] = 200,
        bank_size: Annotated[int, typer.Option(help="PDQ entries in the bank.")] = 10_000,
        celery: Annotated[
            bool, typer.Option(help="Also time PostgreSQL + Redis + 2 Celery workers.")
        ] = True,
    ) -> None:
        """End-to-end items/s and p50/p95 latency of the pipeline, beside its anchor."""
        from redress.pipeline.bench import run_bench

        run_bench(
            cli_state(ctx).settings,
            as_json=as_json,
            lookups=lookups,
            media=media,
            bank_size=bank_size,
            celery=celery,
        )
