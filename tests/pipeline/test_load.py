"""A few seconds of `redress bench load` (the generator itself; the 10-minute run is a
documented procedure, docs/benchmarks.md "Load", never a test with a clock in it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from redress.pipeline.load import MemorySample, memory_slope


def test_memory_slope_is_the_least_squares_fit_per_minute() -> None:
    flat = [MemorySample(t, 100.0) for t in range(0, 120, 5)]
    assert memory_slope(flat) == 0.0
    growing = [MemorySample(t, 100.0 + t / 60 * 3) for t in range(0, 120, 5)]
    assert memory_slope(growing) == pytest.approx(3.0)
    assert memory_slope(growing[:2]) == 0.0  # too few samples to say


@pytest.mark.slow
def test_a_short_load_run_reports_every_stream_without_errors(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REDRESS_")}
    env["REDRESS_HOME"] = str(tmp_path / "unused")
    done = subprocess.run(
        [
            *(sys.executable, "-m", "redress", "bench", "load", "--json"),
            *("--duration", "4", "--lookup-rate", "40", "--lookup-batch", "10"),
            *("--media-rate", "4"),
            *("--bank-size", "500", "--sample-seconds", "1"),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    lookups, media = report["streams"]
    assert lookups["name"] == "hash lookups"
    assert media["name"] == "media uploads"
    # Lookups go as batch requests of 10 hashes, counted in hashes: 4 requests/s.
    assert (lookups["per_request"], media["per_request"]) == (10, 1)
    assert lookups["due"] <= 4 * 4 + 1
    assert lookups["achieved_per_s"] > lookups["ok"]
    for stream in (lookups, media):
        assert stream["due"] > 0
        assert stream["sent"] == stream["due"] - stream["not_sent"]
        assert stream["errors"] == 0, stream["error_samples"]
        assert stream["ok"] + stream["refused"] == stream["sent"]
        assert stream["p95_ms"] is not None
    assert len(report["samples"]) >= 3
    assert report["rss_end_mib"] > 0
    assert report["machine"]


@pytest.mark.slow
@pytest.mark.postgres
def test_a_short_load_run_on_postgres_redis_and_workers_processes_what_it_accepts(
    tmp_path: Path, postgres_url: str, redis_url: str
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REDRESS_")}
    env |= {
        "REDRESS_HOME": str(tmp_path / "home"),
        "REDRESS_DATABASE_URL": postgres_url,
        "REDRESS_BROKER_URL": redis_url,
    }
    command = [
        *(sys.executable, "-m", "redress", "bench", "load", "--json", "--use-settings"),
        *("--duration", "4", "--lookup-rate", "40", "--lookup-batch", "10"),
        *("--media-rate", "4", "--bank-size", "500", "--sample-seconds", "1"),
    ]
    refused = subprocess.run(
        [*command[:-2], "--workers", "1"],
        env={**env, "REDRESS_BROKER_URL": "", "COLUMNS": "200"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert refused.returncode == 2
    assert "--workers needs --use-settings and REDRESS_BROKER_URL" in refused.stderr
    done = subprocess.run(
        [*command, "--workers", "1"], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert (report["database"], report["workers"]) == ("postgresql", 1)
    lookups, media = report["streams"]
    for stream in (lookups, media):
        assert stream["errors"] == 0, stream["error_samples"]
    # The workers, not the server, decided the uploads (the server has no queue of its own).
    assert media["ok"] > 0
    assert report["workers_cpu_s"] > 0
    assert 0 < report["media_processed"] <= media["ok"]


def test_the_loopback_pool_reuses_connections_and_honours_connection_close() -> None:
    import asyncio

    from redress.pipeline.load import LoopbackPool

    connections: list[int] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                break
            length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
            body = await reader.readexactly(length)
            close = body == b"bye"
            writer.write(
                b"HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n"
                + (b"Connection: close\r\n" if close else b"")
                + b"\r\nok"
            )
            await writer.drain()
            if close:
                break
        writer.close()
        await writer.wait_closed()

    def request(body: bytes) -> bytes:
        return b"POST / HTTP/1.1\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)

    async def scenario() -> list[tuple[int, bytes]]:
        server = await asyncio.start_server(answer, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        pool = LoopbackPool("127.0.0.1", port)
        out = []
        for body in (b"a", b"b", b"bye", b"c"):
            got = await pool.send(request(body))
            out.append((got.status, got.body))
        await pool.aclose()
        server.close()
        await server.wait_closed()
        return out

    assert asyncio.run(scenario()) == [(202, b"ok")] * 4
    # One connection for a, b and bye (closed by the server on request), one for c.
    assert len(connections) == 2
