"""HashOptions: limits from settings, overrides, validation."""

from __future__ import annotations

import math

import pytest

from redress.config import Settings
from redress.errors import InvalidInputError
from redress.signals import HashOptions


def test_options_from_settings_take_limits_and_overrides() -> None:
    settings = Settings(max_image_pixels=1234, max_video_seconds=5.0, pdq_quality_min=60)
    options = HashOptions.from_settings(settings, exact=True, seconds_per_hash=0)
    assert options.max_image_pixels == 1234
    assert options.max_video_seconds == 5.0
    assert options.max_file_bytes == settings.max_file_bytes
    assert options.quality_min == 60
    assert (options.exact, options.seconds_per_hash, options.compat_hma) == (True, 0, False)
    with pytest.raises(TypeError):
        HashOptions.from_settings(settings, colour=True)


@pytest.mark.parametrize(
    "bad",
    [
        {"seconds_per_hash": -1.0},
        {"seconds_per_hash": math.nan},
        {"max_image_pixels": 0},
        {"max_video_seconds": 0.0},
        {"quality_min": 101},
    ],
)
def test_impossible_options_are_refused(bad: dict[str, float]) -> None:
    with pytest.raises(InvalidInputError):
        HashOptions(**bad)  # type: ignore[arg-type]


def test_compat_implies_full_resolution_decode() -> None:
    assert HashOptions(compat_hma=True).decode_exact
    assert HashOptions(exact=True).decode_exact
    assert not HashOptions().decode_exact
