"""Command-line commands of the index domain."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from redress.index.errors import BadThresholdError


def register(app: typer.Typer, bench: typer.Typer) -> None:
    """Add this domain's commands to the root app and the bench group."""

    @bench.command("index")
    def bench_index(
        size: Annotated[
            int,
            typer.Option(
                "--size", min=1, help="Random hashes to index (10,000,000 for HMA's scale)."
            ),
        ] = 1_000_000,
        threshold: Annotated[
            int, typer.Option("--threshold", help="Match distance in bits (0-256).")
        ] = 31,
        queries: Annotated[
            int, typer.Option("--queries", min=100, help="Lookups timed for Redress.")
        ] = 5_000,
        anchor_queries: Annotated[
            int | None,
            typer.Option(
                "--anchor-queries",
                min=1,
                help="Lookups timed per FAISS anchor (default: scaled to size).",
            ),
        ] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    ) -> None:
        """Exact PDQ search: Redress's MihIndex beside FAISS Flat and HMA's FAISS MultiHash."""
        from redress.index import bench as index_bench

        if not 0 <= threshold <= 256:
            raise BadThresholdError(f"a PDQ threshold is 0-256 bits; got {threshold}")
        report = index_bench.run(
            size,
            threshold,
            queries,
            anchor_queries=anchor_queries,
            progress=None if as_json else lambda line: typer.echo(f"... {line}", err=True),
        )
        typer.echo(json.dumps(report) if as_json else index_bench.format_report(report))
