"""``redress serve`` and ``redress openapi``: the web app from the command line."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from redress.cli import cli_state
from redress.config import Settings


def register(app: typer.Typer, bench: typer.Typer) -> None:
    """Add the web commands to the root app."""

    @app.command()
    def serve(
        ctx: typer.Context,
        host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
        port: Annotated[int, typer.Option(help="TCP port.")] = 8080,
        log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
    ) -> None:
        """Serve the REST API (and, with no broker configured, process scans in-process)."""
        import uvicorn

        from redress.pipeline.policy import load_policy
        from redress.web.app import create_app

        settings = cli_state(ctx).settings
        # Fail here, as a clear CLI error, rather than inside the server's startup.
        load_policy(settings.effective_policy_path)
        uvicorn.run(create_app(settings), host=host, port=port, log_level=log_level)

    @app.command()
    def openapi(ctx: typer.Context) -> None:
        """Print the OpenAPI document (docs/openapi.json is this output)."""
        typer.echo(openapi_json(cli_state(ctx).settings))


def openapi_json(settings: Settings) -> str:
    """The OpenAPI document as committed in docs/openapi.json."""
    from redress.web.app import create_app

    return json.dumps(create_app(settings).openapi(), indent=2, sort_keys=True) + "\n"
