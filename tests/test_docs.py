"""Docs are part of the feature: these tests keep them true."""

from __future__ import annotations

from pathlib import Path

from redress.config import Settings

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_every_setting_is_documented() -> None:
    page = (DOCS / "configuration.md").read_text(encoding="utf-8")
    missing = [
        f"REDRESS_{name.upper()}"
        for name in Settings.model_fields
        if f"`REDRESS_{name.upper()}`" not in page
    ]
    assert missing == []


def test_every_documented_setting_exists() -> None:
    page = (DOCS / "configuration.md").read_text(encoding="utf-8")
    documented = {
        line.split("`")[1] for line in page.splitlines() if line.startswith("| `REDRESS_")
    }
    known = {f"REDRESS_{name.upper()}" for name in Settings.model_fields}
    assert documented - known == set()
