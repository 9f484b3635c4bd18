"""docs/threat-model.md is checked by tests: every test it names exists, every
threat row names at least one test, and every actor has its section."""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "threat-model.md"
REFERENCE = re.compile(r"`(tests/[\w/]+\.py)::(\w+)`")
ACTORS = (
    "Abusive uploader",
    "Malicious hash submitter",
    "Curious insider",
    "Compromised moderator account",
    "Outside attacker",
)


def _tests_in(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test")
    }


def test_every_test_the_threat_model_names_exists() -> None:
    references = REFERENCE.findall(DOC.read_text(encoding="utf-8"))
    assert len(references) > 40
    missing = []
    for file, name in references:
        path = REPO / file
        if not path.is_file() or name not in _tests_in(path):
            missing.append(f"{file}::{name}")
    assert not missing, f"docs/threat-model.md names tests that do not exist: {missing}"


def test_every_threat_row_names_a_test() -> None:
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## Threats, controls and their tests", 1)[1].split("\n## ", 1)[0]
    rows = [
        line
        for line in section.splitlines()
        if line.startswith("| ") and not line.startswith("| threat") and "---" not in line
    ]
    assert len(rows) > 25
    untested = [row[:80] for row in rows if not REFERENCE.search(row)]
    assert not untested, f"threats without a test: {untested}"


def test_every_actor_has_its_threats() -> None:
    text = DOC.read_text(encoding="utf-8")
    for actor in ACTORS:
        assert f"### {actor}\n" in text, actor
        assert f"**{actor}**" in text, actor
