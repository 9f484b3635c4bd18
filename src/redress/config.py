"""One typed settings object, read from ``REDRESS_*`` environment variables.

Defaults live here and only here. Build it once at the edge (CLI, app factory,
worker) and pass it down; library code never imports a settings global.
Every field is documented in docs/configuration.md (a test enforces it).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Redress configuration. Environment variables are the field names with ``REDRESS_``."""

    model_config = SettingsConfigDict(env_prefix="REDRESS_", frozen=True, extra="ignore")

    home: Path = Field(
        default=Path("~/.redress"),
        description="Where the embedded database, keys and evidence live.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the database; default: SQLite file redress.db in home.",
    )
    broker_url: str | None = Field(
        default=None,
        description="Celery broker (redis://...). Set it to run scans on `redress worker`s.",
    )
    pdq_threshold: int = Field(
        default=31,
        ge=0,
        le=128,
        description="Default PDQ match distance (inclusive) for new banks.",
    )
    pdq_quality_min: int = Field(
        default=50,
        ge=0,
        le=100,
        description="PDQ hashes below this quality are reported as not reliably hashable.",
    )
    robust_hash_sets: bool = Field(
        default=True,
        description=(
            "Robust reference sets (docs/robustness.md): bank pictures the server holds with"
            " their reference set (flips, crops, halves, small rotations)."
        ),
    )
    robust_query_sets: bool = Field(
        default=False,
        description=(
            "Robust query sets (docs/robustness.md): also match each scanned image with its"
            " query set (borders trimmed, the photo inside a screenshot or meme, halves)."
            " Off by default: it costs several times the scan's own (fast-path) hashing."
        ),
    )
    verify_features: bool = Field(
        default=False,
        description=(
            'Local-feature verification (docs/robustness.md, "Verification"): keep ORB'
            " keypoints (not pixels) of pictures banked from files on the server, and"
            " confirm scanned images whose hashes came near such a picture; a confirmed"
            " near miss goes to review. Needs OpenCV (the verify extra)."
        ),
    )
    max_image_pixels: int = Field(
        default=100_000_000,
        ge=1,
        description="Images with more pixels are refused as possible decompression bombs.",
    )
    max_video_seconds: float = Field(
        default=4 * 3600.0,
        gt=0,
        description="Videos longer than this are refused rather than hashed.",
    )
    max_file_bytes: int = Field(
        default=2 * 1024**3,
        ge=1,
        description="Files larger than this are refused before decoding.",
    )
    evidence_dir: Path | None = Field(
        default=None,
        description="Where encrypted evidence blobs are written; default: evidence/ in home.",
    )
    evidence_master_key: SecretStr | None = Field(
        default=None,
        description=(
            "Base64 of a 32-byte master key that wraps evidence item keys; when unset, "
            "the key file keys/evidence-master.key in home is used (created on first use)."
        ),
    )
    evidence_previous_master_keys: SecretStr | None = Field(
        default=None,
        description=(
            "Comma-separated base64 master keys that may still wrap some items; "
            "read only to unwrap them during `redress evidence rotate-master-key`."
        ),
    )
    evidence_checkpoint_interval: int = Field(
        default=1000,
        ge=1,
        description="Sign a ledger checkpoint every this many entries.",
    )
    evidence_log_origin: str | None = Field(
        default=None,
        description=(
            "Checkpoint origin line and signing key name; default: "
            "redress.evidence/ followed by the first 16 hex digits of the key fingerprint."
        ),
    )
    evidence_tsa_url: str | None = Field(
        default=None,
        description="RFC 3161 time-stamping authority URL; when set, checkpoints are timestamped.",
    )
    evidence_tsa_ca_file: Path | None = Field(
        default=None,
        description="PEM file with the TSA's root (and intermediate) certificates, for packages.",
    )
    evidence_tsa_timeout: float = Field(
        default=10.0,
        gt=0,
        description="Seconds to wait for the time-stamping authority.",
    )

    telegram_bot_token: SecretStr | None = Field(
        default=None,
        description="Telegram bot token from @BotFather (never logged). Or use the token file.",
    )
    telegram_bot_token_file: Path | None = Field(
        default=None,
        description="A file holding the Telegram bot token (e.g. a Docker/Kubernetes secret).",
    )
    telegram_api_url: str = Field(
        default="https://api.telegram.org",
        description="Bot API server; point it at a self-hosted telegram-bot-api to fetch > 20 MB.",
    )
    telegram_file_limit_bytes: int | None = Field(
        default=None,
        ge=1,
        description="Largest file the bot downloads; default 20 MB cloud, 2000 MB self-hosted.",
    )
    telegram_webhook_url: str | None = Field(
        default=None,
        description="Public HTTPS URL Telegram posts updates to; unset: long polling.",
    )
    telegram_webhook_secret: SecretStr | None = Field(
        default=None,
        description="Secret Telegram sends in the X-Telegram-Bot-Api-Secret-Token header.",
    )
    telegram_portal_url: str = Field(
        default="http://localhost:8080/protect",
        description="The victim portal URL the bot's /start message points to.",
    )
    telegram_poll_timeout: int = Field(
        default=30,
        ge=0,
        le=50,
        description="Long-polling timeout of getUpdates, in seconds.",
    )
    telegram_fetches: int = Field(
        default=8,
        ge=1,
        le=64,
        description="Files the bot downloads at once (getFile + download) within a batch.",
    )
    telegram_scan_batch: int = Field(
        default=32,
        ge=1,
        le=256,
        description="Media the bot hands to the pipeline in one scan (one accept transaction).",
    )

    api_max_body_bytes: int = Field(
        default=64 * 1024**2,
        ge=1024,
        description="Largest request body the API accepts; bigger ones get 413.",
    )
    api_rate_per_second: float = Field(
        default=200.0,
        gt=0,
        description="Default per-API-key request rate (token bucket refill per second).",
    )
    api_rate_burst: int = Field(
        default=400,
        ge=1,
        description="Default per-API-key burst (token bucket size).",
    )
    api_key_cache_seconds: float = Field(
        default=1.0,
        ge=0,
        description="How long a verified API key is trusted without a database read (0: never).",
    )
    api_batch_max: int = Field(
        default=1000,
        ge=1,
        description="Most items one POST /api/v1/scan/batch may carry.",
    )
    api_callback_private: bool = Field(
        default=False,
        description=(
            "Accept scan callback URLs on loopback, private or link-local addresses"
            " (off: refused as bad_callback_url, so an API key cannot aim webhooks"
            " at the server's own network)."
        ),
    )
    queue_size: int = Field(
        default=1000,
        ge=1,
        description="Bound of the scan queue; when full the API answers 503 with Retry-After.",
    )
    serve_processes: int = Field(
        default=1,
        ge=1,
        le=64,
        description=(
            "API processes `redress serve` runs (uvicorn workers), to use more than one"
            " core. On SQLite they share the file through a write gate and, with no"
            " broker, rate limits through a shared bucket file in the home."
        ),
    )
    pipeline_threads: int = Field(
        default=2,
        ge=1,
        description="Threads that process queued media in the embedded (no broker) mode.",
    )
    pipeline_batch: int = Field(
        default=32,
        ge=1,
        description=(
            "Most queued items one embedded worker thread leases and decides together "
            "(one transaction for the leases and one for the decisions)."
        ),
    )
    policy_path: Path | None = Field(
        default=None,
        description="TOML policy file (docs/pipeline.md); default: policy.toml in home if present.",
    )
    scan_max_attempts: int = Field(
        default=3,
        ge=1,
        description="Attempts before a queued item that keeps failing becomes a dead letter.",
    )
    scan_lease_seconds: float = Field(
        default=120.0,
        gt=0,
        description="How long a worker holds a queued item before another may take it over.",
    )
    broker_batch: int = Field(
        default=16,
        ge=1,
        description=(
            "Most accepted items the API process publishes in one Celery task (gathered "
            "for at most 20 ms); a worker leases and decides them together."
        ),
    )
    broker_visibility_timeout: float = Field(
        default=3600.0,
        gt=0,
        description="Seconds before Redis re-delivers a task whose worker died without acking.",
    )
    broker_sweep_seconds: float = Field(
        default=30.0,
        gt=0,
        description=(
            "How often each worker re-publishes queued items whose task the broker lost "
            "(a Redis restart without persistence), when the broker's queue is empty."
        ),
    )
    webhook_timeout: float = Field(
        default=10.0,
        gt=0,
        description="Seconds to wait for a webhook receiver to answer.",
    )

    portal_protects: str = Field(
        default="",
        description="What the victim portal says this deployment protects (platforms, groups); "
        "empty: a translated general phrase.",
    )
    portal_under18_url: str = Field(
        default="https://takeitdown.ncmec.org/",
        description="Where the portal sends people whose pictures were taken under 18.",
    )
    portal_max_hashes: int = Field(
        default=5000,
        ge=1,
        description="Most hashes (PDQ, dihedral, MD5, SHA-256, vPDQ frames) one portal case holds.",
    )
    portal_case_rate_per_hour: float = Field(
        default=10.0,
        gt=0,
        description="Portal cases one client IP may create per hour (token-bucket refill).",
    )
    portal_case_burst: int = Field(
        default=5,
        ge=1,
        description="Portal cases one client IP may create at once (token-bucket size).",
    )
    portal_pin_max_failures: int = Field(
        default=5,
        ge=1,
        description="Wrong PINs in a row after which a case's status page locks.",
    )
    portal_pin_lock_seconds: int = Field(
        default=900,
        ge=1,
        description="How long a case's status page stays locked after too many wrong PINs.",
    )

    review_lease_seconds: int = Field(
        default=900,
        gt=0,
        description="Seconds a moderator holds a review item before another may take it.",
    )
    review_exposure_soft_limit: int = Field(
        default=40,
        ge=1,
        description="Media reveals per moderator per day after which the console warns.",
    )
    review_login_max_failures: int = Field(
        default=5,
        ge=1,
        description="Failed console logins in a row before the account is locked.",
    )
    review_lockout_seconds: int = Field(
        default=900,
        gt=0,
        description="Seconds a console account stays locked after too many failed logins.",
    )
    review_session_hours: float = Field(
        default=12.0,
        gt=0,
        description="Hours a console session lasts before the moderator logs in again.",
    )
    review_cookie_secure: bool = Field(
        default=False,
        description="Mark the console's session cookie Secure (set it when served behind TLS).",
    )
    review_takedown_hours: float = Field(
        default=48.0,
        gt=0,
        description="Hours to act on an item matching a victim's case (TAKE IT DOWN Act notice).",
    )
    review_deadline_hours: float = Field(
        default=168.0,
        gt=0,
        description="Hours to decide any other review item.",
    )
    review_cluster_distance: int = Field(
        default=31,
        ge=0,
        le=256,
        description="PDQ distance within which review items are copies of one image (a cluster).",
    )

    notice_deadline_hours: dict[str, float] = Field(
        default_factory=lambda: {"US": 48.0, "EU": 48.0},
        description="Hours to act on a valid notice, by jurisdiction code (JSON object, e.g. "
        '{"US": 48, "EU": 48, "DE": 24}); others get notice_default_hours.',
    )
    notice_default_hours: float = Field(
        default=48.0,
        gt=0,
        description="Hours to act on a notice from a jurisdiction not in notice_deadline_hours.",
    )
    notice_trusted_hours: float = Field(
        default=24.0,
        gt=0,
        description="Target hours for a trusted flagger's notice (DSA Art. 22), so it is served "
        "first; never later than the jurisdiction's deadline.",
    )
    notice_reminder_hours: float = Field(
        default=12.0,
        gt=0,
        description="Remind the escalation contact when this many hours are left on a notice.",
    )
    notice_escalation_hours: float = Field(
        default=4.0,
        gt=0,
        description="Escalate (raise priority, e-mail the escalation contact) this many hours "
        "before a notice's deadline.",
    )
    notice_escalation_email: str | None = Field(
        default=None,
        description="Who gets notice reminders, escalations and breach reports by e-mail.",
    )
    notice_form_rate_per_hour: float = Field(
        default=20.0,
        gt=0,
        description="Notices one client IP may send through the public form per hour.",
    )
    notice_form_burst: int = Field(
        default=5,
        ge=1,
        description="Notices one client IP may send through the public form at once.",
    )
    notice_resend_hours: float = Field(
        default=24.0,
        gt=0,
        description="Re-send an outbound takedown notice this often until the content is gone.",
    )
    notice_outbound_legal_basis: str = Field(
        default="US TAKE IT DOWN Act (2025) and EU Digital Services Act Art. 16: non-consensual "
        "intimate imagery",
        description="Legal basis written into outbound takedown notices unless one is given.",
    )
    statement_legal_ground: str = Field(
        default="Non-consensual sharing of intimate images (national criminal law)",
        description="Legal ground in statements of reasons when no TAKE IT DOWN notice applies.",
    )
    statement_territorial_scope: list[str] = Field(
        default_factory=list,
        description="EU/EEA country codes a decision applies in, for statements of reasons "
        '(JSON list, e.g. ["DE", "FR"]); empty: not stated.',
    )
    smtp_host: str | None = Field(
        default=None,
        description="SMTP server for notice acknowledgements, outcomes and outbound notices; "
        "unset: no e-mail is sent.",
    )
    smtp_port: int = Field(default=25, ge=1, le=65535, description="SMTP server port.")
    smtp_from: str = Field(
        default="redress@localhost", description="From address of the e-mails Redress sends."
    )
    smtp_username: str | None = Field(default=None, description="SMTP login name, if any.")
    smtp_password: SecretStr | None = Field(default=None, description="SMTP password, if any.")
    smtp_starttls: bool = Field(default=False, description="Use STARTTLS on the SMTP connection.")
    smtp_timeout: float = Field(
        default=10.0, gt=0, description="Seconds to wait for the SMTP server."
    )

    @field_validator("home")
    @classmethod
    def _expand_home(cls, value: Path) -> Path:
        return value.expanduser()

    @property
    def effective_policy_path(self) -> Path:
        """The policy file in force: the configured one or policy.toml in home."""
        return self.policy_path if self.policy_path is not None else self.home / "policy.toml"

    @property
    def effective_database_url(self) -> str:
        """The database URL in force: the configured one or the embedded SQLite file."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.home / 'redress.db'}"

    @property
    def effective_evidence_dir(self) -> Path:
        """Where evidence blobs live: the configured folder or evidence/ in home."""
        return (self.evidence_dir or self.home / "evidence").expanduser()
