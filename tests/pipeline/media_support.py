"""Pictures generated for pipeline tests (never copied from anywhere)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw


def photo(seed: int, size: tuple[int, int] = (160, 120), fmt: str = "JPEG") -> bytes:
    """A distinct, detailed picture (PDQ quality well above 50)."""
    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    freq = rng.uniform(0.02, 0.08, 3)
    base = np.stack(
        [127 + 120 * np.sin(xx * f + yy * f * rng.uniform(0.3, 1.5)) for f in freq], axis=-1
    )
    image = Image.fromarray(base.astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(12):
        x0, y0 = int(rng.integers(0, w - 20)), int(rng.integers(0, h - 20))
        box = (x0, y0, x0 + int(rng.integers(10, 80)), y0 + int(rng.integers(10, 60)))
        draw.ellipse(box, fill=tuple(int(c) for c in rng.integers(0, 256, 3)))
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()
