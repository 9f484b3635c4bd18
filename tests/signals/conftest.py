"""Fixtures for the signals tests: Meta's bridge photo, decoded once."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from signals.media import BRIDGE, encode


@pytest.fixture(scope="session")
def bridge(shared_data: Path) -> Image.Image:
    """Meta's bridge photo (1600x1004), decoded once."""
    with Image.open(shared_data / BRIDGE) as image:
        return image.convert("RGB")


@pytest.fixture(scope="session")
def bridge_png(bridge: Image.Image) -> bytes:
    """The bridge photo as PNG bytes."""
    return encode(bridge.resize((400, 251)), "PNG")
