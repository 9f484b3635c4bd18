"""The C region search (``_pdq.dense_rectangle``) against a plain NumPy statement of it."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from redress.signals import _pdq


def best_run(fill: npt.NDArray[np.float64]) -> tuple[int, int] | None:
    dense = fill >= 0.5
    if not dense.any():
        return None
    bridged = dense.copy()
    bridged[1:-1] |= dense[:-2] & dense[2:]
    edges = np.diff(np.concatenate([[0], bridged.astype(np.int8), [0]]))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)
    totals = [fill[a:b].sum() for a, b in zip(starts, ends, strict=True)]
    best = int(np.argmax(totals))
    return int(starts[best]), int(ends[best])


def reference(content: npt.NDArray[np.bool_]) -> tuple[int, int, int, int] | None:
    rows, cols = content.shape
    top, bottom, left, right = 0, rows, 0, cols
    for _ in range(3):
        run = best_run(content[:, left:right].mean(axis=1))
        if run is None:
            return None
        rows_run = run
        run = best_run(content[rows_run[0] : rows_run[1]].mean(axis=0))
        if run is None:
            return None
        settled = (rows_run, run) == ((top, bottom), (left, right))
        (top, bottom), (left, right) = rows_run, run
        if settled:
            break
    return top, bottom, left, right


def masks() -> list[npt.NDArray[np.bool_]]:
    rng = np.random.default_rng(11)
    out = []
    for _ in range(300):
        rows, cols = int(rng.integers(16, 161)), int(rng.integers(16, 161))
        mask = rng.random((rows, cols)) < rng.uniform(0.0, 0.3)  # sparse UI noise
        for _ in range(int(rng.integers(0, 3))):  # photos, bars and captions
            top, left = int(rng.integers(0, rows)), int(rng.integers(0, cols))
            bottom = int(rng.integers(top, rows + 1))
            right = int(rng.integers(left, cols + 1))
            mask[top:bottom, left:right] = rng.random((bottom - top, right - left)) < rng.uniform(
                0.4, 1.0
            )
        out.append(mask)
    return out


@pytest.mark.parametrize("number", range(0, 300, 30))
def test_the_c_search_finds_what_the_numpy_statement_finds(number: int) -> None:
    for mask in masks()[number : number + 30]:
        rows, cols = mask.shape
        assert _pdq.dense_rectangle(np.ascontiguousarray(mask), rows, cols) == reference(mask)


def test_a_photo_on_a_canvas_is_its_rectangle_and_an_empty_mask_is_none() -> None:
    mask = np.zeros((120, 80), dtype=bool)
    assert _pdq.dense_rectangle(mask, 120, 80) is None
    mask[30:90, 10:70] = True
    mask[5, :] = True  # a status bar: one line, not a band
    assert _pdq.dense_rectangle(mask, 120, 80) == (30, 90, 10, 70)


def test_a_mask_of_the_wrong_size_is_refused() -> None:
    with pytest.raises(ValueError, match="wrong size"):
        _pdq.dense_rectangle(np.zeros((10, 10), dtype=bool), 10, 11)
