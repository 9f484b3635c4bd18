"""Fuzzing the media parsers with damaged real files (Meta's reference media).

Every place that decodes bytes from outside is driven with mutated real JPEG,
PNG, GIF, WebP, TIFF and MP4 files: hashing (API uploads, Telegram, exports and
``redress hash`` all go through ``hash_bytes``), the API's upload check, and
the review console's preview. Each answers a result or one of the documented
errors; nothing else escapes. Sizes are bounded, so time and memory are too.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from fuzz_support import assert_documented, fuzz, mutated
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from redress.errors import RedressError
from redress.signals import HashOptions, hash_bytes
from redress.web.api import _check_media
from redress.web.console import _thumbnail

# Small limits keep each example cheap; the code paths are the production ones.
OPTIONS = HashOptions(max_video_seconds=30, max_image_pixels=20_000_000)
STILLS = (
    "pdq/misc-images/small.jpg",
    "pdq/reg-test-input/labelme-subset/q0003.jpg",
    "pdq/bridge-mods/square-128x128.jpg",
    "pdq/misc-images/modes/1.png",
    "pdq/misc-images/modes/I.webp",
)
VIDEO = "vpdq/videos/test-padded-dimensions.mp4"


def _encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **params)
    return out.getvalue()


@pytest.fixture(scope="module")
def stills(shared_data: Path) -> list[bytes]:
    """Real stills, plus GIF (still and animated) and TIFF made from a real photo."""
    files = [(shared_data / name).read_bytes() for name in STILLS]
    with Image.open(io.BytesIO(files[2])) as photo:
        photo.load()
        frames = [photo.rotate(angle) for angle in (0, 5)]
        files += [
            _encode(photo.convert("P"), "GIF"),
            _encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=80),
            _encode(photo, "TIFF"),
            _encode(photo, "TIFF", compression="tiff_deflate"),
        ]
    return files


@pytest.fixture(scope="module")
def video(shared_data: Path) -> bytes:
    return (shared_data / VIDEO).read_bytes()


def hashed_or_documented(data: bytes) -> None:
    try:
        signals = hash_bytes(data, OPTIONS)
    except Exception as exc:  # noqa: BLE001 - the property under test
        assert_documented(exc)
        return
    assert signals.pdq is not None or signals.vpdq or signals.kind in {"image", "video"}


@fuzz()
@given(data=st.data())
def test_damaged_real_stills_hash_or_fail_with_a_documented_code(
    stills: list[bytes], data: st.DataObject
) -> None:
    hashed_or_documented(data.draw(mutated(stills)))


@fuzz(share=0.25)
@given(data=st.data())
def test_damaged_real_video_hashes_or_fails_with_a_documented_code(
    video: bytes, data: st.DataObject
) -> None:
    hashed_or_documented(data.draw(mutated([video])))


@fuzz()
@given(data=st.data())
def test_the_upload_check_refuses_only_with_unsupported_media(
    stills: list[bytes], video: bytes, data: st.DataObject
) -> None:
    sample = data.draw(st.one_of(mutated([*stills, video[:4096]]), st.binary(max_size=600)))
    try:
        _check_media(sample, "upload.bin")
    except RedressError as exc:
        refused = exc.code
    else:
        refused = "unsupported_media"  # accepted: hashing decides later
    assert refused == "unsupported_media"


@fuzz()
@given(data=st.data())
def test_console_previews_never_fail_the_page(stills: list[bytes], data: st.DataObject) -> None:
    preview = _thumbnail(data.draw(mutated(stills)), revealed=False, max_pixels=20_000_000)
    if preview is not None:
        with Image.open(io.BytesIO(preview)) as image:
            assert image.format == "PNG"
            assert max(image.size) <= 480
