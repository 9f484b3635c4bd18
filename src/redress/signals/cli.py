"""Command-line commands of the signals domain (``redress hash``, ``redress bench hash``)."""

from __future__ import annotations

import typer


def register(app: typer.Typer, bench: typer.Typer) -> None:
    """Add this domain's commands to the root app and the bench group."""
