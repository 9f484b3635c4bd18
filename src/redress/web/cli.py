"""The web layer from the command line: ``redress serve``, ``redress openapi`` and
``redress bench portal``."""

from __future__ import annotations

import json
import os
import socket
from typing import TYPE_CHECKING, Annotated

import typer

from redress.cli import cli_state
from redress.config import Settings
from redress.web.bench_portal import run_portal_bench

if TYPE_CHECKING:
    import uvicorn


def bench_portal(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    count: Annotated[int, typer.Option(min=1, help="How many photos.")] = 20,
    width: Annotated[int, typer.Option(min=16, help="Photo width in pixels.")] = 4000,
    height: Annotated[int, typer.Option(min=16, help="Photo height in pixels.")] = 3000,
    workers: Annotated[
        int | None,
        typer.Option(min=1, help="Web Workers (default: the browser's core count, max 4)."),
    ] = None,
    chromium: Annotated[
        str | None,
        typer.Option(help="Chromium executable (default: $REDRESS_CHROMIUM or /usr/bin/chromium)."),
    ] = None,
) -> None:
    """Time the victim portal's in-browser hashing of phone photos, beside the server's hasher."""
    result = run_portal_bench(
        count=count, width=width, height=height, workers=workers, chromium=chromium
    )
    if as_json:
        typer.echo(json.dumps(result.as_dict()))
        return
    typer.echo(
        f"portal: {result.photos} photos {result.width}x{result.height} "
        f"({result.total_megabytes} MB JPEG), Chromium {result.chromium}, "
        f"{result.browser_workers} workers"
    )
    typer.echo(
        f"  browser (PDQ+8 dihedral, MD5, SHA-256): {result.browser_seconds:.2f} s "
        f"({result.browser_ms_per_photo:.0f} ms/photo); target <= {result.target_seconds:g} s: "
        f"{'met' if result.within_target else 'NOT met'}"
    )
    if result.browser_cpu_seconds is not None:
        typer.echo(f"  browser CPU time (all its processes): {result.browser_cpu_seconds:.2f} s")
    typer.echo(
        f"  anchor ({result.anchor}): {result.anchor_seconds:.2f} s "
        f"(CPU {result.anchor_cpu_seconds:.2f} s)"
    )
    typer.echo(
        f"  ratio browser/anchor: {result.ratio:.2f}x; "
        f"max PDQ distance browser vs anchor: {result.max_pdq_distance} bits"
    )
    typer.echo(f"  machine: {result.machine}; load average at start {result.load_average}")


def tcp_listener(config: uvicorn.Config) -> socket.socket:
    """uvicorn's listening socket for its worker processes, marked as TCP.

    uvicorn binds it with protocol 0; accepted connections inherit that, and asyncio
    turns Nagle's algorithm off (TCP_NODELAY) only on sockets that say IPPROTO_TCP,
    so every keep-alive request after a connection's first would wait about 40 ms
    for the client's delayed ACK (uvicorn issue 3149).
    """
    bound = config.bind_socket()
    if bound.family not in (socket.AF_INET, socket.AF_INET6):
        return bound
    return socket.socket(bound.family, bound.type, socket.IPPROTO_TCP, fileno=bound.detach())


def register(app: typer.Typer, bench: typer.Typer) -> None:
    """Add the web commands to the root app and the bench group."""
    bench.command("portal")(bench_portal)

    @app.command()
    def serve(
        ctx: typer.Context,
        host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
        port: Annotated[int, typer.Option(help="TCP port.")] = 8080,
        log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
        processes: Annotated[
            int | None,
            typer.Option(
                min=1,
                max=64,
                help="API processes (default: REDRESS_SERVE_PROCESSES, else 1).",
            ),
        ] = None,
    ) -> None:
        """Serve the REST API (and, with no broker configured, process scans in-process)."""
        import uvicorn
        from uvicorn.supervisors import Multiprocess

        from redress.pipeline.policy import load_policy
        from redress.store.migrate import upgrade
        from redress.web.app import create_app

        settings = cli_state(ctx).settings
        # Fail here, as a clear CLI error, rather than inside the server's startup.
        load_policy(settings.effective_policy_path)
        count = processes if processes is not None else settings.serve_processes
        if count == 1:
            app = create_app(settings, settle=True)
            uvicorn.run(app, host=host, port=port, log_level=log_level)
            return
        # Migrate once, here: the worker processes start together and must not race.
        upgrade(settings.effective_database_url)
        os.environ["REDRESS_SERVE_PROCESSES"] = str(count)  # read by each worker's settings
        config = uvicorn.Config(
            "redress.web.app:serving_app",
            factory=True,
            workers=count,
            host=host,
            port=port,
            log_level=log_level,
        )
        Multiprocess(config, sockets=[tcp_listener(config)]).run()

    @app.command()
    def openapi(ctx: typer.Context) -> None:
        """Print the OpenAPI document (docs/openapi.json is this output)."""
        typer.echo(openapi_json(cli_state(ctx).settings))


def openapi_json(settings: Settings) -> str:
    """The OpenAPI document as committed in docs/openapi.json."""
    from redress.web.app import create_app

    return json.dumps(create_app(settings).openapi(), indent=2, sort_keys=True) + "\n"
