"""`redress bench evidence` runs and reports each figure beside its anchor (small sizes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_bench_json_has_figures_and_anchors(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REDRESS_")}
    env.update(REDRESS_HOME=str(tmp_path), PYTHONPATH=str(REPO / "src"))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "redress",
            "bench",
            "evidence",
            "--json",
            "--appends",
            "1200",
            "--proof-size",
            "2000",
            "--items",
            "3",
            "--item-bytes",
            "2000",
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    appends = figures["appends"]
    assert appends["entries"] == 1200  # three interleaved rounds of 400
    assert appends["checkpoints_signed"] == 1  # at 1,000
    assert appends["ratio_to_anchor"] > 0
    assert appends["target_per_s"] == 2000
    proofs = figures["proofs"]
    assert [p["entries"] for p in proofs] == [1000, 2000]
    assert all(p["all_verified"] for p in proofs)
    # O(log n): a proof never needs more hashes than ceil(log2 n).
    assert all(p["inclusion_hashes_mean"] <= p["log2_entries"] + 1 for p in proofs)
    package = figures["package"]
    assert package["verified"] is True
    assert package["export_ratio"] > 0
    assert package["verify_ratio"] > 0
    assert figures["machine"]["cores"] >= 1
