"""Building the bot's parts from Settings, at the edge (CLI, bench).

Until the pipeline domain is merged, the sink is the in-process
:class:`~redress.connectors.embedded.EmbeddedSink` loaded from a PDQ hash
list; the integrator replaces :func:`embedded_sink` with the pipeline's sink.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from redress.config import Settings
from redress.connectors.embedded import EmbeddedSink
from redress.connectors.telegram.client import CLOUD_API_URL
from redress.errors import ConfigurationError
from redress.index import BruteForceIndex
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


def sessions_for(settings: Settings) -> sessionmaker[Session]:
    """Migrate the database to the newest schema and return a session factory for it."""
    url = settings.effective_database_url
    upgrade(url)
    return sessionmaker(make_engine(url), expire_on_commit=False)


def embedded_sink(settings: Settings, hashes: Path | None) -> EmbeddedSink:
    """The stand-in pipeline: PDQ hash list (``HEX[,label]`` lines) -> brute-force index."""
    evidence = settings.home / "evidence" / "telegram"
    lines: list[str] = []
    if hashes is not None:
        try:
            lines = hashes.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ConfigurationError(f"cannot read hash list {hashes}: {exc.strerror}") from exc
    return EmbeddedSink.from_hash_lines(
        BruteForceIndex(),
        lines,
        evidence,
        threshold=settings.pdq_threshold,
        quality_min=settings.pdq_quality_min,
    )
