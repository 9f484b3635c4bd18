"""`redress serve` in a real uvicorn process, and `redress openapi`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import uvicorn
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cli_support import run_redress
from redress.pipeline.models import ScanItem
from redress.store.db import make_engine
from redress.web.cli import tcp_listener

COMMITTED = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_serve(port: int, *options: str) -> subprocess.Popen[str]:
    """`redress serve` on ``port`` in a child process, its output captured."""
    return subprocess.Popen(
        [sys.executable, "-m", "redress", "serve", "--port", str(port), *options],
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_serve_answers_healthz_and_stops_cleanly(redress_home: Path) -> None:
    port = free_port()
    process = start_serve(port, "--log-level", "warning")
    try:
        body = None
        # Wait for the server to come up (startup runs migrations); this is not a speed test.
        for _ in range(600):
            if process.poll() is not None:
                break
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1.0)
            except httpx.TransportError:
                time.sleep(0.1)
                continue
            body = response.json()
            break
        assert body is not None, process.stderr.read() if process.stderr else ""
        assert body["ok"] is True
        ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5.0)
        assert ready.status_code == 200
        assert (redress_home / "redress.db").exists()
    finally:
        process.send_signal(signal.SIGTERM)
        _out, err = process.communicate(timeout=60)
    # uvicorn shuts down gracefully, then re-raises SIGTERM so the exit status tells why.
    assert process.returncode in (0, -signal.SIGTERM), err
    assert "Traceback" not in err


def test_openapi_command_prints_the_committed_document(redress_home: Path) -> None:
    result = run_redress("openapi")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == json.loads(COMMITTED.read_text(encoding="utf-8"))


def test_serve_with_a_bad_policy_is_a_clear_error(redress_home: Path) -> None:
    redress_home.mkdir(parents=True, exist_ok=True)
    (redress_home / "policy.toml").write_text('[defaults]\nexact = "delete"\n', encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "redress", "serve", "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "bad_policy" in result.stderr
    assert "Traceback" not in result.stderr


def _spawned_workers(parent: int) -> int:
    """uvicorn worker processes (multiprocessing's spawn) whose parent is ``parent``."""
    count = 0
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (entry / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == parent and b"spawn_main" in cmdline:
            count += 1
    return count


def test_serve_in_two_processes_shares_the_database_and_one_rate_limit(
    redress_home: Path,
) -> None:
    created = run_redress(
        "apikey", "create", "--scope", "scan", "--rate", "0.001", "--burst", "12", "--json"
    )
    assert created.returncode == 0, created.stderr
    token = json.loads(created.stdout)["token"]
    port = free_port()
    process = start_serve(port, "--processes", "2")
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(1200):  # startup: migrations, then two processes build the pipeline
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/readyz", timeout=1.0).status_code == 200:
                    break
            time.sleep(0.1)
        assert _spawned_workers(process.pid) == 2
        statuses = []
        for n in range(30):
            # A new connection each time, so the kernel hands them to both processes.
            response = httpx.post(
                f"{url}/api/v1/scan",
                json={"md5": f"{n:032x}"},
                headers={"Authorization": f"Bearer {token}"},
                timeout=30.0,
            )
            statuses.append(response.status_code)
        # One bucket of 12 for the key, whichever process answered.
        assert statuses.count(200) == 12
        assert statuses.count(429) == 18
    finally:
        process.send_signal(signal.SIGTERM)
        _out, err = process.communicate(timeout=60)
    assert "Traceback" not in err
    engine = make_engine(f"sqlite:///{redress_home / 'redress.db'}")
    with Session(engine) as session:
        stored = session.scalar(select(func.count()).select_from(ScanItem))
    engine.dispose()
    assert stored == 12  # every accepted scan was written once, by one process or the other


class _NodelayProbe(asyncio.Protocol):
    """Reports whether the server side of an accepted connection has Nagle turned off."""

    def __init__(self, seen: asyncio.Future[int]) -> None:
        self.seen = seen

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        sock = transport.get_extra_info("socket")
        self.seen.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        transport.close()


def test_the_listener_of_several_processes_sends_small_answers_at_once() -> None:
    # With Nagle's algorithm on, each keep-alive answer waits ~40 ms for a delayed ACK.
    config = uvicorn.Config(
        "redress.web.app:serving_app", factory=True, workers=2, port=free_port()
    )
    listener = tcp_listener(config)

    async def nodelay_of_an_accepted_connection() -> int:
        seen: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        server = await asyncio.get_running_loop().create_server(
            lambda: _NodelayProbe(seen), sock=listener
        )
        _reader, writer = await asyncio.open_connection(*listener.getsockname()[:2])
        try:
            return await asyncio.wait_for(seen, 30)
        finally:
            writer.close()
            server.close()
            await server.wait_closed()

    assert listener.proto == socket.IPPROTO_TCP
    assert asyncio.run(nodelay_of_an_accepted_connection()) == 1
