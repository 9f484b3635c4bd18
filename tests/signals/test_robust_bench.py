"""`redress bench robustness` runs end to end and reports plain PDQ beside Redress (no timing)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from redress.signals.robust_bench import EXTRA_FAMILIES


def run_bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "redress", "bench", "robustness", *args],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        check=False,
    )


@pytest.mark.slow
def test_bench_robustness_reports_both_matchers_per_family(redress_home: Path) -> None:
    pytest.importorskip("skimage")
    result = run_bench("--json", "--originals", "6", "--seed", "7", "--repeat", "2")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["originals"] == 6
    assert report["copies"] == 6 * len(report["families"])
    assert report["cross_pairs"] == report["copies"] * 5
    assert {"crop90", "screenshot", "meme", "flip", "rotate5"} <= set(report["families"])
    assert report["hashes_per_original"]["plain"] == 1
    assert report["hashes_per_original"]["redress_max"] <= 64
    cost = report["query_cpu_seconds"]
    assert cost["ratio"] > 0
    assert cost["repeat"] == 2
    # Timed on the scan's own path: the query set includes the scan's plain PDQ.
    assert cost["redress"] > cost["redress_plain_scan"] > 0
    assert cost["ratio_to_redress_plain_scan"] > 1
    assert set(report["splits"]) == {"tuning", "held_out", "all"}
    every = report["splits"]["all"]
    assert set(every["families"]) == set(report["families"])
    # The robust sets find at least what plain PDQ finds, and more on re-shared edits.
    assert every["recall_hashable"]["redress"] > every["recall_hashable"]["plain"]
    assert every["families"]["recompress"]["redress"] >= every["families"]["recompress"]["plain"]
    assert every["false_matches"]["redress"] <= every["false_matches"]["plain"]
    # A second overall figure covers exactly the families: every family has
    # one copy of each original, so it is the mean of the families it covers.
    listed = [f for f in report["families"] if f not in EXTRA_FAMILIES]
    assert "crop-free" in report["families"]
    assert "crop-free" not in listed
    for method in ("plain", "redress"):
        mean = sum(every["families"][f][method] for f in listed) / len(listed)
        assert every["recall_hashable_issue_families"][method] == pytest.approx(mean, abs=0.002)
    # With OpenCV (the dev extras), near misses are verified against the originals'
    # features: never fewer copies found, never a different photograph matched.
    assert report["verification"]["available"]
    verified = every["verified"]
    assert verified["recall_hashable"] >= every["recall_hashable"]["redress"]
    assert verified["false_matches"] == 0
    assert all(rates["verified"] >= rates["redress"] for rates in every["families"].values())

    text = run_bench("--originals", "4", "--seed", "7")
    assert text.returncode == 0, text.stderr
    assert "plain PDQ" in text.stdout
    assert "[held_out]" in text.stdout
    assert "screenshot" in text.stdout
    assert "fastest of 3 runs" in text.stdout
    assert "+ verification" in text.stdout


@pytest.mark.slow
def test_bench_robustness_runs_on_a_folder_of_the_operators_own_pictures(
    redress_home: Path, tmp_path: Path
) -> None:
    pytest.importorskip("skimage")
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(3)
    for n in range(3):
        noise = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
        Image.fromarray(noise).resize((400, 300), Image.Resampling.BICUBIC).save(
            tmp_path / f"photo{n}.png"
        )
    (tmp_path / "notes.txt").write_text("not a picture")
    result = run_bench("--json", "--pictures", str(tmp_path), "--repeat", "1")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["originals"] == 3
    assert report["copies"] == 3 * len(report["families"])
    assert report["pictures"] == str(tmp_path)
    assert len(report["skipped"]) == 1
    assert report["skipped"][0].startswith("notes.txt: ")
    # Pictures nobody tuned on are all held out.
    assert report["splits"]["held_out"]["originals"] == 3
    assert report["splits"]["tuning"]["originals"] == 0
    assert report["splits"]["all"]["families"]["recompress"]["redress"] == 1.0

    lonely = tmp_path / "lonely"
    lonely.mkdir()
    Image.open(tmp_path / "photo0.png").save(lonely / "only.png")
    refused = run_bench("--pictures", str(lonely))
    assert refused.returncode != 0
    assert "at least 2" in refused.stderr + refused.stdout
    assert "Traceback" not in refused.stderr
