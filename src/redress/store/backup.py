"""``redress backup create|restore``: one command to back up and restore a deployment.

A backup is a folder:

    MANIFEST.json        format, time, Redress version, database kind, SHA-256 of every file
    redress.db           the SQLite database (SQLite deployments only), a consistent snapshot
                         taken with SQLite's online backup API while Redress keeps running
    keys/                REDRESS_HOME/keys: the evidence master key and ledger signing key
    evidence/blobs/      the encrypted evidence blobs
    policy.toml          the policy file, when there is one

The database is copied first and the blobs after: a blob is written before the
transaction that records its item commits, so every item in the snapshot finds its
blob. On PostgreSQL the database is not in the folder: dump it with ``pg_dump``
first, then run ``create`` for the files (docs/operations.md).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from redress import __version__
from redress.config import Settings
from redress.store.errors import BackupError

FORMAT = "redress-backup/1"
MANIFEST = "MANIFEST.json"
SQLITE_FILE = "redress.db"


@dataclass(frozen=True)
class BackupManifest:
    """What a backup holds."""

    format: str
    created_at: str
    redress_version: str
    database: str  # "sqlite", or "postgresql" (the database itself is not in the folder)
    files: dict[str, str]  # relative path -> SHA-256

    def to_json(self) -> str:
        """The manifest file's text."""
        return json.dumps(
            {
                "format": self.format,
                "created_at": self.created_at,
                "redress_version": self.redress_version,
                "database": self.database,
                "files": self.files,
            },
            indent=2,
            sort_keys=True,
        )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _sqlite_path(url: str) -> Path | None:
    if not url.startswith("sqlite"):
        return None
    path = url.split(":///", 1)[1] if ":///" in url else ""
    if not path or path == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up")
    return Path(path).expanduser()


def _copy_tree(source: Path, target: Path) -> None:
    """Copy regular files (not the temporary files of a blob being written), keeping
    owner-only permissions."""
    for path in sorted(source.rglob("*")):
        if not path.is_file() or path.name.endswith(".tmp"):
            continue
        destination = target / path.relative_to(source)
        destination.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        shutil.copyfile(path, destination)
        os.chmod(destination, 0o600)


def create_backup(settings: Settings, destination: Path) -> BackupManifest:
    """Back up the database (SQLite), keys, evidence blobs and policy into ``destination``
    (a new or empty folder) while Redress keeps running."""
    if destination.exists() and (not destination.is_dir() or any(destination.iterdir())):
        raise BackupError(f"{destination} is not an empty folder; give a new one")
    destination.mkdir(parents=True, exist_ok=True, mode=0o700)
    database = _sqlite_path(settings.effective_database_url)
    if database is not None:
        if not database.exists():
            raise BackupError(f"there is no database at {database} to back up")
        # The online backup API copies a consistent snapshot page by page, while other
        # processes keep reading and writing (WAL); a plain file copy could tear.
        source = sqlite3.connect(database, timeout=30)
        target = sqlite3.connect(destination / SQLITE_FILE)
        try:
            with target:
                source.backup(target)
        finally:
            target.close()
            source.close()
        os.chmod(destination / SQLITE_FILE, 0o600)
    # After the database: every item in the snapshot already has its blob on disk.
    keys = settings.home / "keys"
    if keys.is_dir():
        _copy_tree(keys, destination / "keys")
    blobs = settings.effective_evidence_dir / "blobs"
    if blobs.is_dir():
        _copy_tree(blobs, destination / "evidence" / "blobs")
    policy = settings.effective_policy_path
    if policy.is_file():
        shutil.copyfile(policy, destination / "policy.toml")
    files = {
        path.relative_to(destination).as_posix(): _sha256(path)
        for path in sorted(destination.rglob("*"))
        if path.is_file()
    }
    manifest = BackupManifest(
        format=FORMAT,
        created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        redress_version=__version__,
        database="sqlite" if database is not None else "postgresql",
        files=files,
    )
    (destination / MANIFEST).write_text(manifest.to_json() + "\n")
    return manifest


def read_manifest(source: Path) -> BackupManifest:
    """Read a backup's manifest and check every file against it."""
    try:
        data = json.loads((source / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise BackupError(f"{source} has no readable {MANIFEST}: {exc}") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise BackupError(f"{source / MANIFEST} is not a {FORMAT} manifest")
    files = data.get("files")
    if not isinstance(files, dict):
        raise BackupError(f"{source / MANIFEST} lists no files")
    for name, digest in files.items():
        path = source / name
        if ".." in Path(name).parts or Path(name).is_absolute():
            raise BackupError(f"the manifest names a file outside the backup: {name!r}")
        if not path.is_file():
            raise BackupError(f"{name} is missing from the backup")
        if _sha256(path) != digest:
            raise BackupError(f"{name} does not match its SHA-256 in the manifest")
    return BackupManifest(
        format=FORMAT,
        created_at=str(data.get("created_at")),
        redress_version=str(data.get("redress_version")),
        database=str(data.get("database")),
        files={str(k): str(v) for k, v in files.items()},
    )


def restore_backup(source: Path, settings: Settings, *, force: bool = False) -> BackupManifest:
    """Restore a backup into the configured home (and SQLite database), after checking
    every file against the manifest. Refuses a home that already holds data unless
    ``force``."""
    manifest = read_manifest(source)
    database = _sqlite_path(settings.effective_database_url)
    if manifest.database == "sqlite" and database is None:
        raise BackupError(
            "this backup holds a SQLite database, but REDRESS_DATABASE_URL names another one"
        )
    keys = settings.home / "keys"
    blobs = settings.effective_evidence_dir / "blobs"
    occupied = [
        p
        for p in (database if manifest.database == "sqlite" else None, keys, blobs)
        if p is not None and p.exists() and (p.is_file() or any(p.iterdir()))
    ]
    if occupied and not force:
        raise BackupError(
            f"{occupied[0]} already exists; restore into a fresh home, or pass --force"
        )
    if manifest.database == "sqlite" and database is not None:
        database.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        for stale in (database.with_name(database.name + s) for s in ("-wal", "-shm")):
            stale.unlink(missing_ok=True)  # a WAL of another database must not be replayed
        partial = database.with_name(database.name + ".restoring")
        shutil.copyfile(source / SQLITE_FILE, partial)
        os.chmod(partial, 0o600)
        os.replace(partial, database)
    if (source / "keys").is_dir():
        keys.mkdir(parents=True, exist_ok=True, mode=0o700)
        _copy_tree(source / "keys", keys)
    if (source / "evidence" / "blobs").is_dir():
        _copy_tree(source / "evidence" / "blobs", blobs)
    if (source / "policy.toml").is_file():
        policy = settings.effective_policy_path
        policy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / "policy.toml", policy)
    return manifest
