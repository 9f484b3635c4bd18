"""``redress bench portal``: the browser's figure beside the server's, same run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from redress.machine import describe_machine
from redress.web.bench_portal import generate_photos


def run_redress(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "redress", *args], capture_output=True, text=True, env=env
    )


def test_generated_photos_are_distinct_jpegs_of_the_asked_size(tmp_path: Path) -> None:
    paths = generate_photos(tmp_path, 7, 320, 240)
    assert len(paths) == 7
    pixels = []
    for path in paths:
        with Image.open(path) as image:
            assert image.format == "JPEG"
            assert image.size == (320, 240)
            pixels.append(np.asarray(image.convert("L"), dtype=np.int16))
    # The 7th reuses the 1st sample picture, turned: still a different photo.
    assert np.abs(pixels[0] - pixels[6]).mean() > 10


def test_bench_portal_reports_the_browser_beside_the_server(
    chromium_path: str, redress_home: Path
) -> None:
    env = dict(os.environ, REDRESS_CHROMIUM=chromium_path)
    result = run_redress(
        "bench", "portal", "--json", "--count", "3", "--width", "800", "--height", "600", env=env
    )
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert figures["bench"] == "portal"
    assert (figures["photos"], figures["width"], figures["height"]) == (3, 800, 600)
    assert figures["browser_seconds"] > 0
    assert figures["anchor_seconds"] > 0
    expected_ratio = figures["browser_seconds"] / figures["anchor_seconds"]
    assert figures["ratio"] == pytest.approx(expected_ratio, rel=0.05)
    assert figures["load_average"] >= 0
    assert "pdqhash" in figures["anchor"]
    assert figures["max_pdq_distance"] <= 10
    assert figures["machine"] == describe_machine()


def test_bench_portal_without_a_browser_is_a_clear_error(
    redress_home: Path, tmp_path: Path
) -> None:
    missing = str(tmp_path / "no-chromium")
    result = run_redress("bench", "portal", "--count", "1", "--chromium", missing)
    assert result.returncode == 2
    assert "browser_unavailable" in result.stderr
    assert missing in result.stderr
    assert "Traceback" not in result.stderr
