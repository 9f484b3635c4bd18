"""`redress bench videos`: generated clips and re-shared copies, Meta's rule vs Redress."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytest.importorskip("skimage")


def test_the_video_bench_reports_both_rules_per_family() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "redress", "bench", "videos", "--originals", "3", "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["originals"] == 3
    assert report["copies"] == 3 * len(report["families"])
    families = report["families"]
    # Copies that keep the frames as they were match by Meta's rule already.
    assert families["recompress"]["meta"] == families["recompress"]["redress"] == 1.0
    assert families["excerpt"]["meta"] == 1.0
    # Bars, canvases and compilations defeat it; Redress finds them.
    for family in ("letterbox", "canvas", "compilation"):
        assert families[family]["meta"] == 0.0
        assert families[family]["redress"] > 0.5
    assert families["letterbox"]["bars_found"] == 1.0
    # A square-cut copy matches the original's banked square crop, and only Redress
    # banks one.
    assert families["square"]["meta"] == 0.0
    assert families["square"]["redress"] == 1.0
    assert report["false_matches"] == {"meta": 0, "redress": 0}
    assert report["hashing_cpu_seconds"]["ratio"] > 1.0
