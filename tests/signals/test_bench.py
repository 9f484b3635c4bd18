"""`redress bench hash` runs end to end and reports figures beside its anchor (no timing)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from signals.media import make_video


@pytest.mark.slow
def test_bench_hash_reports_anchor_ratios_and_video_floor(
    tmp_path: Path, redress_home: Path
) -> None:
    pytest.importorskip("threatexchange")
    pytest.importorskip("skimage")
    clips = tmp_path / "clips"
    clips.mkdir()
    make_video(clips / "a.mp4", frames=12, fps=6, size=(160, 96))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "redress",
            "bench",
            "hash",
            "--json",
            "--count",
            "3",
            "--repeat",
            "1",
            "--videos",
            str(clips),
        ],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    images = report["images"]
    assert set(images) == {"anchor", "exact", "fast"}
    assert images["anchor"]["ratio_vs_anchor"] == 1.0
    for figures in images.values():
        assert figures["images_per_s"] > 0
    ratio = images["fast"]["images_per_s"] / images["anchor"]["images_per_s"]
    assert images["fast"]["ratio_vs_anchor"] == pytest.approx(ratio, rel=0.02)
    # Exact mode is Meta's hash bit for bit on these (EXIF-free) inputs.
    assert report["fast_vs_exact"]["exact_equals_anchor"] == 3
    assert report["fast_vs_exact"]["share_within_8_bits"] == 1.0
    video = report["video"]
    assert video["videos"] == 1
    assert video["frames"] == 12
    assert video["decode_only"]["share_of_decode_floor"] == 1.0
    assert video["default"]["video_s_per_s"] > 0
    assert report["machine"]["cpu"]

    text = subprocess.run(
        [
            sys.executable,
            "-m",
            "redress",
            "bench",
            "hash",
            "--count",
            "2",
            "--repeat",
            "1",
            "--no-video",
        ],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        check=False,
    )
    assert text.returncode == 0, text.stderr
    assert "vs anchor" in text.stdout
    assert "threatexchange" in text.stdout
