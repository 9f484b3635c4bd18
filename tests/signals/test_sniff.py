"""Format recognition from leading bytes."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from redress.signals.errors import EmptyFileError, UnsupportedMediaError
from redress.signals.sniff import SNIFF_BYTES, declares_more_than, sniff
from signals.media import encode


@pytest.mark.parametrize(
    ("fmt", "name", "media_type"),
    [
        ("JPEG", "JPEG", "image/jpeg"),
        ("PNG", "PNG", "image/png"),
        ("GIF", "GIF", "image/gif"),
        ("WEBP", "WEBP", "image/webp"),
        ("BMP", "BMP", "image/bmp"),
        ("TIFF", "TIFF", "image/tiff"),
    ],
)
def test_image_formats_are_recognised(fmt: str, name: str, media_type: str) -> None:
    data = encode(Image.new("RGB", (16, 16), "red"), fmt)
    found = sniff(data[:SNIFF_BYTES])
    assert (found.kind, found.name, found.media_type) == ("image", name, media_type)


@pytest.mark.parametrize(
    ("head", "kind", "media_type"),
    [
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", "image", "image/heic"),
        (b"\x00\x00\x00\x18ftypmif1\x00\x00\x00\x00mif1heic", "image", "image/heic"),
        (b"\x00\x00\x00\x18ftypavif\x00\x00\x00\x00avifmif1", "image", "image/avif"),
        (b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2", "video", "video/mp4"),
        (b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00qt  ", "video", "video/quicktime"),
        (b"\x00\x00\x00\x08wide\x00\x00\x00\x00mdat", "video", "video/quicktime"),
        (b"\x00\x00\x00\x18ftypM4A \x00\x00\x00\x00M4A mp42", "audio", "audio/mp4"),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01webm", "video", "video/webm"),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01matroska", "video", "video/x-matroska"),
        (b"RIFF\x00\x00\x00\x00AVI LIST", "video", "video/x-msvideo"),
        (b"RIFF\x00\x00\x00\x00WAVEfmt ", "audio", "audio/wav"),
        (b"ID3\x04\x00\x00\x00\x00", "audio", "audio/mpeg"),
    ],
)
def test_containers_are_recognised(head: bytes, kind: str, media_type: str) -> None:
    found = sniff(head)
    assert (found.kind, found.media_type) == (kind, media_type)


@pytest.mark.parametrize(
    "head", [b"hello world", b"%PDF-1.7\n", b"PK\x03\x04zipfile", b"<html><body>", b"\x00" * 64]
)
def test_non_media_is_unsupported(head: bytes) -> None:
    with pytest.raises(UnsupportedMediaError) as caught:
        sniff(head)
    assert caught.value.code == "unsupported_type"


def test_empty_is_its_own_error() -> None:
    with pytest.raises(EmptyFileError):
        sniff(b"")


def test_declared_length_tells_truncated_from_corrupt() -> None:
    data = encode(Image.new("RGB", (64, 64), "blue"), "WEBP")
    fmt = sniff(data)
    assert not declares_more_than(io.BytesIO(data), len(data), fmt)
    assert declares_more_than(io.BytesIO(data[:-10]), len(data) - 10, fmt)
    png = encode(Image.new("RGB", (8, 8)), "PNG")
    assert not declares_more_than(io.BytesIO(png[:20]), 20, sniff(png))
