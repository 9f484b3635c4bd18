"""Private PostgreSQL and Redis servers that a fault-injection test may kill and restart.

The machine's shared servers are never touched: each server here has its own data
folder and port, and belongs to the test that started it. PostgreSQL is started with
``initdb`` and ``pg_ctl`` from the machine's installation (as the ``postgres`` user
when the test runs as root, since ``initdb`` refuses root); Redis runs in the
foreground as a child process with persistence off, so a restart loses every queued
message (the worst case the pipeline must survive).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path


class ServerUnavailableError(Exception):
    """The private server cannot be started on this machine (the reason is the message)."""


def free_port() -> int:
    """A TCP port on loopback that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_port(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing answers on port {port} after {timeout} s")


def _postgres_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb is None:
        raise ServerUnavailableError("initdb and pg_ctl are not installed (PostgreSQL server)")
    return Path(initdb).parent


class PrivatePostgres:
    """A PostgreSQL cluster of its own in a temporary folder, on a free port."""

    def __init__(self) -> None:
        self.bin = _postgres_bin()
        self.user: str | None = None
        if os.geteuid() == 0:  # initdb refuses to run as root
            try:
                pwd.getpwnam("postgres")
            except KeyError as exc:
                raise ServerUnavailableError("running as root and no 'postgres' user") from exc
            self.user = "postgres"
        # In /tmp (world-traversable), not under pytest's root-only temporary folder.
        self.root = Path(tempfile.mkdtemp(prefix="redress-faults-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "--no-sync")

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self.bin / tool), *args]
        if self.user is not None:
            command = ["runuser", "-u", self.user, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            why = done.stderr.strip() or done.stdout.strip()
            raise ServerUnavailableError(f"{tool} failed: {why}")

    def url(self, database: str = "postgres") -> str:
        """SQLAlchemy URL of ``database`` on this server."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c full_page_writes=off -c max_connections=200"
        )
        self._run(
            "pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.root / "log"), "-w",
            "start",
        )  # fmt: skip

    def crash(self) -> None:
        """Stop at once, as a crash would (``immediate``: recovery runs at the next start)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def close(self) -> None:
        """Stop the server (if running) and remove its folder."""
        with contextlib.suppress(ServerUnavailableError):
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


class PrivateRedis:
    """A ``redress-server`` child process without persistence, on a free port."""

    def __init__(self, root: Path) -> None:
        executable = shutil.which("redis-server")
        if executable is None:
            raise ServerUnavailableError("redis-server is not installed")
        self.executable = executable
        self.root = root
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The broker URL (database 0 of this private server)."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start the server and wait until it answers."""
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / "redis.log").open("ab") as log:
            self.process = subprocess.Popen(
                [
                    self.executable,
                    "--port", str(self.port), "--bind", "127.0.0.1",
                    "--save", "", "--appendonly", "no", "--daemonize", "no",
                    "--dir", str(self.root),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        _wait_port(self.port, 30)

    def crash(self) -> None:
        """SIGKILL the server: every message it held is gone."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def close(self) -> None:
        """Stop the server."""
        self.crash()
