"""`redress bench pipeline` runs end to end at a tiny size and reports every figure."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_bench_pipeline_json(redress_home: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "redress", "bench", "pipeline", "--json", "--lookups", "40",
         "--media", "6", "--bank-size", "300", "--no-celery"],
        capture_output=True,
        text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    figures = report["figures"]
    assert set(figures) >= {"lookup_single", "lookup_batch", "anchor_single", "media_embedded"}
    assert figures["lookup_single"]["items"] == 40
    assert figures["media_embedded"]["items"] == 6
    assert all(f["per_second"] > 0 for f in figures.values())
    assert "lookup_single_vs_faiss_single" in report["ratios"]
    # CPU time per item is reported beside each timed figure, and the machine's load.
    assert figures["lookup_batch"]["cpu_ms_per_item"] > 0
    assert figures["media_embedded"]["cpu_ms_per_item"] > 0
    assert len(report["load_average"]["start"]) == 3
