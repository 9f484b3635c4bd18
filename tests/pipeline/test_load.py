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
            *("--duration", "4", "--lookup-rate", "40", "--media-rate", "4"),
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
    for stream in (lookups, media):
        assert stream["due"] > 0
        assert stream["sent"] == stream["due"] - stream["not_sent"]
        assert stream["errors"] == 0, stream["error_samples"]
        assert stream["ok"] + stream["refused"] == stream["sent"]
        assert stream["p95_ms"] is not None
    assert len(report["samples"]) >= 3
    assert report["rss_end_mib"] > 0
    assert report["machine"]
