"""``redress user create`` / ``redress user list`` and ``redress review import``."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from sqlalchemy.orm import Session

from redress.cli import cli_state, command_sessions
from redress.config import Settings
from redress.review.interfaces import Role
from redress.review.service import ReviewConfig, ReviewService
from redress.review.store import ReviewStore


def _service(session: Session, settings: Settings) -> ReviewService:
    return ReviewService(ReviewStore(session), ReviewConfig.from_settings(settings))


def register(app: typer.Typer, bench: typer.Typer) -> None:
    """Add the review console's commands."""
    user = typer.Typer(help="Review console accounts.", no_args_is_help=True)
    app.add_typer(user, name="user")

    @user.command("create")
    def create(
        ctx: typer.Context,
        email: Annotated[str, typer.Argument(help="The account's e-mail (its login).")],
        role: Annotated[Role, typer.Option(help="admin, moderator, advocate or auditor.")],
        case: Annotated[
            list[str] | None, typer.Option("--case", help="An advocate's case number (repeatable).")
        ] = None,
        password_stdin: Annotated[
            bool, typer.Option("--password-stdin", help="Read the password from stdin.")
        ] = False,
    ) -> None:
        """Create a console account (the first admin bootstraps the console)."""
        settings = cli_state(ctx).settings
        if password_stdin:
            password = sys.stdin.readline().rstrip("\n")
        else:
            password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
        with command_sessions(ctx).begin() as session:
            made = _service(session, settings).create_user(email, role, password, cases=case or [])
        typer.echo(f"created {made.role.value} {made.email}")

    @user.command("list")
    def list_users(
        ctx: typer.Context,
        as_json: Annotated[
            bool, typer.Option("--json", help="One JSON object per account.")
        ] = False,
    ) -> None:
        """List console accounts (never their password hashes)."""
        settings = cli_state(ctx).settings
        with command_sessions(ctx)() as session:
            users = _service(session, settings).users()
        for u in users:
            if as_json:
                typer.echo(
                    json.dumps({"email": u.email, "role": u.role.value, "cases": list(u.case_ids)})
                )
            else:
                typer.echo(f"{u.email}\t{u.role.value}")

    review = typer.Typer(help="The review queue.", no_args_is_help=True)
    app.add_typer(review, name="review")

    @review.command("import")
    def import_items(ctx: typer.Context) -> None:
        """Bring the pipeline's 'review' items into the queue (the console also does this)."""
        settings = cli_state(ctx).settings
        with command_sessions(ctx).begin() as session:
            follow = _service(session, settings).import_pending()
        typer.echo(f"imported; {len(follow)} copies followed an earlier decision")
