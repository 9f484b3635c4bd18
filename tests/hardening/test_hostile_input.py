"""Hostile files and requests at every entry point, each refused with a clear code.

Decompression bombs, polyglots, frame floods and oversized rows reach Redress
through the API, the review console, the bank importer and the hashing CLI;
webhooks aimed at the server's own network come in through ``callback_url``.
(Zip bombs and zip slip in evidence packages, and ``../`` media paths in
Telegram exports, are proven in tests/evidence/test_verify.py and
tests/connectors/telegram/test_export.py; the threat model lists them.)
"""

from __future__ import annotations

import io
import struct
import tracemalloc
import zlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hardening_support import Site, fast_settings, running_site
from PIL import Image

from redress.errors import RedressError
from redress.pipeline.keys import Scope
from redress.signals import HashError, HashOptions, hash_bytes, hash_file
from redress.store.errors import ImportProblem
from redress.store.exchange import RecordBlock, parse_hma_csv, parse_hma_csv_blocks
from redress.web.api import check_callback_url
from redress.web.console import _thumbnail

pytestmark = pytest.mark.anyio


def png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares width x height pixels: a decompression bomb."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 4096))
        + chunk(b"IEND", b"")
    )


def jpeg(colour: tuple[int, int, int] = (200, 40, 90)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), colour).save(out, "JPEG")
    return out.getvalue()


BOMB = png_declaring(100_000, 100_000)  # 10^10 pixels declared, 4 KiB of data


@pytest.fixture
async def site(redress_home: Path, sqlite_url: str) -> AsyncIterator[Site]:
    async with running_site(fast_settings(redress_home, sqlite_url)) as running:
        yield running


async def test_an_uploaded_bomb_is_accepted_then_dead_lettered_as_too_many_pixels(
    site: Site,
) -> None:
    headers = {"Authorization": f"Bearer {site.key(Scope.SCAN)}"}
    answer = await site.client.post(
        "/api/v1/scan", headers=headers, files={"file": ("bomb.png", BOMB, "image/png")}
    )
    assert answer.status_code == 202
    queue = site.state.pipeline.queue
    assert hasattr(queue, "drain")
    assert queue.drain()
    job = (await site.client.get(answer.headers["location"], headers=headers)).json()
    assert job["status"] == "dead"
    assert job["error"]["code"] == "too_many_pixels"


def test_console_previews_refuse_a_bomb_without_decoding_it() -> None:
    tracemalloc.start()
    try:
        assert _thumbnail(BOMB, revealed=True, max_pixels=100_000_000) is None
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20 * 1024 * 1024  # 10^10 RGB pixels would be 30 GB


def test_the_hash_cli_path_refuses_a_bomb(tmp_path: Path) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(BOMB)
    with pytest.raises(HashError) as caught:
        hash_file(path, HashOptions())
    assert caught.value.code == "too_many_pixels"


def test_a_polyglot_is_hashed_as_its_image_and_previewed_re_encoded() -> None:
    """A JPEG with an HTML page and a zip appended: hashed as the picture it shows,
    its exact bytes still fingerprinted, and the console never serves the original bytes."""
    picture = jpeg()
    payload = b"<html><script>alert(document.cookie)</script></html>PK\x05\x06" + bytes(18)
    polyglot = picture + payload
    plain, mixed = hash_bytes(picture, HashOptions()), hash_bytes(polyglot, HashOptions())
    assert mixed.kind == "image"
    assert mixed.pdq == plain.pdq
    assert mixed.sha256 != plain.sha256
    preview = _thumbnail(polyglot, revealed=True, max_pixels=100_000_000)
    assert preview is not None
    assert preview.startswith(b"\x89PNG")
    assert b"<script>" not in preview


def test_an_hma_csv_row_over_the_field_limit_is_a_row_problem_and_the_file_carries_on() -> None:
    digest = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"
    text = "a" * 200_000 + ",huge\n" + digest + ",ok,1700000000,tag\n"
    rows = list(parse_hma_csv(io.StringIO(text, newline="")))
    assert isinstance(rows[0], ImportProblem)
    assert rows[0].code == "bad_record"
    assert len(rows) == 2
    assert not isinstance(rows[1], ImportProblem)
    assert rows[1].value.hex() == digest
    # The importer's bulk parser reports the same row and keeps the next one.
    blocks = list(parse_hma_csv_blocks(io.StringIO(text, newline="")))
    assert [(p.line, p.code) for p in blocks if isinstance(p, ImportProblem)] == [(1, "bad_record")]
    kept = [
        (line, value)
        for b in blocks
        if not isinstance(b, ImportProblem)
        for line, value in (
            zip(b.lines, b.hex_values, strict=True)
            if isinstance(b, RecordBlock)
            else [(b.line, b.value.hex())]
        )
    ]
    assert kept == [(2, digest)]


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost/hook",
        "http://LOCALHOST./hook",
        "http://127.0.0.1./hook",
        "http://127.0.0.1:8080/hook",
        "http://2130706433/hook",  # 127.0.0.1 spelt as one number
        "http://0x7f.1/hook",
        "http://10.0.0.5/hook",
        "http://192.168.1.1/hook",
        "http://169.254.169.254/latest/meta-data/",  # cloud metadata
        "http://[::1]/hook",
        "http://[fd00::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://0.0.0.0/hook",
        "http://printer.local/hook",
        "ftp://platform.example/hook",
        "http:///no-host",
    ],
)
def test_callback_urls_aimed_at_the_servers_network_are_refused(url: str) -> None:
    with pytest.raises(RedressError) as caught:
        check_callback_url(url, allow_private=False)
    assert caught.value.code == "bad_callback_url"


def test_public_callback_urls_pass_and_the_operator_may_allow_private_ones() -> None:
    check_callback_url("https://platform.example/redress-hook", allow_private=False)
    check_callback_url("https://8.8.8.8/hook", allow_private=False)
    check_callback_url("http://127.0.0.1:9000/hook", allow_private=True)


async def test_the_api_refuses_an_inward_callback_before_accepting_the_upload(
    site: Site,
) -> None:
    headers = {"Authorization": f"Bearer {site.key(Scope.SCAN)}"}
    answer = await site.client.post(
        "/api/v1/scan",
        headers=headers,
        files={"file": ("a.jpg", jpeg(), "image/jpeg")},
        data={"callback_url": "http://169.254.169.254/latest/meta-data/"},
    )
    assert answer.status_code == 400
    assert answer.json()["error"] == "bad_callback_url"
    assert site.state.pipeline.queue.depth() == 0


def _flood(path: Path, frames: int, fps: int) -> Path:
    """An H.264 MP4 packing many frames into a moment (timestamps barely advance)."""
    import av
    import numpy as np

    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = 32, 32
        stream.pix_fmt = "yuv420p"
        stream.codec_context.options = {"preset": "ultrafast", "tune": "zerolatency"}
        for index in range(frames):
            array = np.full((32, 32, 3), index * 4 % 256, dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def test_a_frame_flood_stops_the_decoder_at_the_length_limits_worth_of_frames(
    tmp_path: Path,
) -> None:
    video = _flood(tmp_path / "flood.mp4", frames=60, fps=3000)  # 60 frames in 0.02 s
    with pytest.raises(HashError) as caught:
        hash_file(video, HashOptions(max_video_seconds=0.1))  # at most 24 frames
    assert caught.value.code == "too_long"
    assert "frames" in caught.value.message
    assert hash_file(video, HashOptions(max_video_seconds=1)).vpdq  # 240 frames allowed


def test_extracting_a_package_never_writes_outside_the_target(tmp_path: Path) -> None:
    """An item ID shaped like a path ("../../<32 hex>") is refused before anything is
    written, even in a package whose checks all held (its signer chose the IDs)."""
    from redress.evidence import verify

    bag = tmp_path / "bag"
    (bag / "data" / "items").mkdir(parents=True)
    (bag / "data" / "items" / "content.jpg").write_bytes(b"bytes")
    (bag / "data" / "items" / "record.json").write_bytes(b"{}")
    target = tmp_path / "out" / "inner"
    escape = "../../" + "a" * 32
    index = {
        "items": [
            {
                "item": escape,
                "content": "data/items/content.jpg",
                "record": "data/items/record.json",
            }
        ]
    }
    with pytest.raises(verify._AbortError) as caught:
        verify._extract_items(bag, index, None, target)
    assert caught.value.failure.code == "package_invalid"
    assert not (tmp_path / ("a" * 32)).exists()
    assert not target.exists()
