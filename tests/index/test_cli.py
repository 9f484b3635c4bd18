"""`redress bench index`: runs end to end and reports every figure beside its anchors."""

from __future__ import annotations

import json

import pytest

from cli_support import run_redress


@pytest.mark.slow
def test_bench_index_json_reports_all_three_structures() -> None:
    pytest.importorskip("faiss")
    pytest.importorskip("skimage")
    result = run_redress("bench", "index", "--size", "3000", "--queries", "200", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    names = [s["name"] for s in report["structures"]]
    assert names[0] == "redress MihIndex"
    assert any("MultiHash" in n for n in names)
    assert any("Flat" in n for n in names)
    assert report["true_hits"] > 0  # planted and real near-duplicates are found
    for structure in report["structures"]:
        assert structure["recall"] == 1.0
        assert structure["single_lookups_per_s"] > 0
    redress = report["structures"][0]
    assert redress["add_visible_ms"] is not None
    assert redress["load_s"] is not None


@pytest.mark.slow
def test_bench_index_table_prints_ratios() -> None:
    pytest.importorskip("faiss")
    pytest.importorskip("skimage")
    result = run_redress("bench", "index", "--size", "2000", "--queries", "100")
    assert result.returncode == 0, result.stderr
    assert "HMA MultiHash" in result.stdout
    assert "lookups/s, batched, all cores" in result.stdout
    assert "x " in result.stdout or result.stdout.rstrip().endswith("x")


def test_bench_index_refuses_a_bad_threshold() -> None:
    result = run_redress("bench", "index", "--size", "10", "--threshold", "300")
    assert result.returncode == 2
    assert "bad_threshold" in result.stderr
    assert "Traceback" not in result.stderr
