"""Building the bot's parts from Settings, at the edge (CLI, bench).

The sink is :class:`~redress.connectors.sink.PipelineSink`: the pipeline built
from the same settings (banks from the store, the MIH index following the
database, the policy file, the evidence service).
"""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from redress.config import Settings
from redress.connectors.sink import PipelineSink, handoff_actioners
from redress.connectors.telegram.client import CLOUD_API_URL
from redress.errors import ConfigurationError
from redress.pipeline.container import PipelineContainer, PipelineParts, build_pipeline
from redress.store.db import make_engine
from redress.store.migrate import upgrade


def bot_token(settings: Settings) -> str:
    """The token from REDRESS_TELEGRAM_BOT_TOKEN or the token file; never echoed in errors."""
    if settings.telegram_bot_token is not None:
        token = settings.telegram_bot_token.get_secret_value().strip()
    elif settings.telegram_bot_token_file is not None:
        path = settings.telegram_bot_token_file.expanduser()
        try:
            token = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigurationError(
                f"cannot read the bot token file {path}: {exc.strerror}"
            ) from exc
    else:
        raise ConfigurationError(
            "no bot token: set REDRESS_TELEGRAM_BOT_TOKEN or REDRESS_TELEGRAM_BOT_TOKEN_FILE"
        )
    if not token or ":" not in token or any(c.isspace() or c == "/" for c in token):
        raise ConfigurationError("the bot token is not shaped like 123456:ABC... (not shown)")
    return token


def file_limit(settings: Settings) -> int | None:
    """The configured download limit (None: the client's default for the API URL)."""
    return settings.telegram_file_limit_bytes


def is_cloud(settings: Settings) -> bool:
    """Whether the bot talks to Telegram's cloud Bot API (20 MB downloads)."""
    return settings.telegram_api_url.rstrip("/") == CLOUD_API_URL


def prepare_database(settings: Settings) -> str:
    """Migrate the database to the newest schema; return its URL."""
    url = settings.effective_database_url
    upgrade(url)
    return url


def sessions_for(settings: Settings) -> sessionmaker[Session]:
    """Migrate the database to the newest schema and return a session factory for it."""
    return sessionmaker(make_engine(prepare_database(settings)), expire_on_commit=False)


def pipeline_sink(
    settings: Settings, *, source: str = "telegram", connector: str = "telegram-bot"
) -> tuple[PipelineSink, PipelineContainer]:
    """The pipeline's sink for a connector, and the container to close when done.

    The connector carries out deletions and bans itself, after the sink answered,
    so those outbox actions are marked as handed to it."""
    container = build_pipeline(
        settings, PipelineParts(actioners=handoff_actioners(source)), embedded_queue=False
    )
    return PipelineSink(container, source=source, connector=connector), container
