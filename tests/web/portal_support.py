"""Helpers of the portal tests: hash sets as the browser sends them, computed here."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

from redress.signals import HashOptions, hash_file
from redress.signals.robust import reference_kinds

PORTAL_IMAGES = (
    "bridge-mods/aaa-orig.jpg",
    "reg-test-input/labelme-subset/q0003.jpg",
    "reg-test-input/labelme-subset/q0291.jpg",
)


def image_hash_set(path: Path) -> dict[str, Any]:
    """The hash set the portal sends for ``path`` (md5, sha256, pdq, quality, dihedral, robust)."""
    signals = hash_file(path, HashOptions(dihedral=True))
    reference = hash_file(path, HashOptions(robust="reference")).robust
    kinds = reference_kinds()
    assert signals.pdq is not None
    return {
        "md5": signals.md5,
        "sha256": signals.sha256,
        "pdq": signals.pdq.hex,
        "quality": signals.pdq.quality,
        "dihedral": [h.hex for h in signals.dihedral],
        "robust": [
            {"kind": kinds.index(h.kind), "pdq": h.pdq.hex, "quality": h.quality} for h in reference
        ],
    }


def scan_body(path: Path) -> dict[str, Any]:
    """JSON for ``POST /api/v1/scan`` with the server's own hashes of ``path``."""
    signals = hash_file(path, HashOptions())
    assert signals.pdq is not None
    return {"pdq": [{"hash": signals.pdq.hex, "quality": signals.pdq.quality}]}


def case_body(paths: list[Path], **extra: Any) -> dict[str, Any]:
    """A case-creation body for ``paths`` with both declarations made."""
    body: dict[str, Any] = {
        "files": [{"kind": "image", "hashes": image_hash_set(p)} for p in paths],
        "declarations": {"depicted": True, "adult": True},
        "contact": None,
        "lang": "en",
    }
    body.update(extra)
    return body


def visible_text(page: str) -> str:
    """A page's human-readable text (tags and scripts removed), plus the messages its
    script shows (the translated JSON block)."""
    block = re.search(
        r'<script type="application/json" id="portal-messages">(.*?)</script>', page, re.S
    )
    messages = list(json.loads(block.group(1)).values()) if block else []
    body = re.sub(r"<script.*?</script>", " ", page, flags=re.S)
    body = re.sub(r"<[^>]+>", " ", body)
    return html.unescape(body) + " " + " ".join(messages)
