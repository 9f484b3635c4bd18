"""hash_file / hash_bytes: digests, records, limits and every kind of bad input."""

from __future__ import annotations

import hashlib
import struct
import zlib
from pathlib import Path

import av
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from redress.signals import HashError, HashOptions, MediaSignals, hash_bytes, hash_file
from redress.signals.service import image_hashes
from signals.media import encode, make_audio, make_video

OPTIONS = HashOptions()


def error_code(data: bytes, options: HashOptions = OPTIONS) -> str:
    with pytest.raises(HashError) as caught:
        hash_bytes(data, options)
    assert caught.value.message
    return caught.value.code


def png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares width x height RGB pixels: a decompression bomb."""

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


def test_digests_are_of_the_exact_bytes(shared_data: Path) -> None:
    path = shared_data / "pdq" / "bridge-mods" / "aaa-orig.jpg"
    data = path.read_bytes()
    from_file = hash_file(path, OPTIONS)
    from_bytes = hash_bytes(data, OPTIONS)
    assert from_file == from_bytes
    assert from_file.sha256 == hashlib.sha256(data).hexdigest()
    assert from_file.md5 == hashlib.md5(data).hexdigest()
    assert from_file.size == len(data)
    assert (from_file.kind, from_file.media_type) == ("image", "image/jpeg")
    assert (from_file.width, from_file.height) == (1600, 1004)


def test_video_digests_are_streamed_from_disk(shared_data: Path) -> None:
    path = shared_data / "vpdq" / "videos" / "doorknob-hd-no-bar.mp4"
    signals = hash_file(path, OPTIONS)
    data = path.read_bytes()
    assert signals.sha256 == hashlib.sha256(data).hexdigest()
    assert signals.md5 == hashlib.md5(data).hexdigest()
    assert signals.pdq is None
    assert signals == hash_bytes(data, OPTIONS)


def test_image_record_has_the_cli_contract_fields(shared_data: Path) -> None:
    record = hash_file(shared_data / "pdq" / "bridge-mods" / "aaa-orig.jpg", OPTIONS).to_json(
        "a.jpg"
    )
    assert list(record)[:7] == ["path", "kind", "sha256", "md5", "size", "media_type", "pdq"]
    assert record["quality"] == 100
    assert record["hashable"] is True
    assert "vpdq" not in record
    assert "reason" not in record
    assert len(record["pdq"]) == 64


def test_video_record_lists_frames(shared_data: Path) -> None:
    signals = hash_file(shared_data / "vpdq" / "videos" / "doorknob-hd-no-bar.mp4", OPTIONS)
    record = signals.to_json("v.mp4")
    assert record["kind"] == "video"
    assert record["pdq"] is None
    assert record["frame_count"] == 120
    assert record["duration"] == pytest.approx(4.0)
    assert [f["frame"] for f in record["vpdq"]] == [0, 30, 60, 90]
    assert set(record["vpdq"][0]) == {"frame", "quality", "pdq", "ts"}


def test_type_comes_from_the_bytes_not_the_name(tmp_path: Path, bridge_png: bytes) -> None:
    disguised = tmp_path / "photo.jpg"
    disguised.write_bytes(bridge_png)
    signals = hash_file(disguised, OPTIONS)
    assert signals.media_type == "image/png"
    text = tmp_path / "notes.jpg"
    text.write_text("this is not a picture\n", encoding="utf-8")
    with pytest.raises(HashError) as caught:
        hash_file(text, OPTIONS)
    assert caught.value.code == "unsupported_type"
    assert caught.value.status_code == 415


def test_zero_byte_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    with pytest.raises(HashError) as caught:
        hash_file(empty, OPTIONS)
    assert caught.value.code == "empty_file"
    assert error_code(b"") == "empty_file"


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(HashError) as caught:
        hash_file(tmp_path / "absent.jpg", OPTIONS)
    assert caught.value.code == "not_found"
    with pytest.raises(HashError) as caught:
        hash_file(tmp_path, OPTIONS)
    assert caught.value.code == "unreadable"


@pytest.mark.parametrize("options", [HashOptions(), HashOptions(exact=True)])
def test_truncated_jpeg(shared_data: Path, options: HashOptions) -> None:
    data = (shared_data / "pdq" / "bridge-mods" / "aaa-orig.jpg").read_bytes()
    assert error_code(data[: len(data) // 2], options) == "truncated"
    assert error_code(data[:300], options) == "truncated"


def test_truncated_and_corrupt_png(bridge_png: bytes) -> None:
    assert error_code(bridge_png[: len(bridge_png) // 2]) == "truncated"
    corrupt = bytearray(bridge_png)
    for index in range(200, 400):
        corrupt[index] ^= 0x55
    assert error_code(bytes(corrupt)) == "corrupt"
    header_only = bridge_png[:8] + b"\x00" * 40
    assert error_code(header_only) == "corrupt"


def test_truncated_webp_gif_bmp_tiff(bridge: Image.Image) -> None:
    small = bridge.resize((400, 251))
    for fmt, image in (
        ("WEBP", small),
        ("GIF", small.convert("P")),
        ("BMP", small),
        ("TIFF", small),
    ):
        data = encode(image, fmt)
        assert error_code(data[: len(data) // 3]) == "truncated", fmt


def test_decompression_bomb_is_refused_before_decoding() -> None:
    # Past Pillow's own hard limit (2 x 89 Mpx)...
    assert error_code(png_declaring(100_000, 100_000)) == "too_many_pixels"
    # ...and past Redress's configured limit, whatever Pillow's is.
    assert error_code(png_declaring(12_000, 10_000)) == "too_many_pixels"
    small = HashOptions(max_image_pixels=10_000)
    assert error_code(png_declaring(200, 200), small) == "too_many_pixels"


def test_file_over_the_byte_limit(bridge_png: bytes, tmp_path: Path) -> None:
    options = HashOptions(max_file_bytes=1000)
    assert error_code(bridge_png, options) == "too_large"
    path = tmp_path / "big.png"
    path.write_bytes(bridge_png)
    with pytest.raises(HashError) as caught:
        hash_file(path, options)
    assert caught.value.code == "too_large"
    assert caught.value.status_code == 413


def test_video_over_the_length_limit(tmp_path: Path) -> None:
    video = make_video(tmp_path / "long.mp4", frames=30, fps=6)  # 5 seconds
    with pytest.raises(HashError) as caught:
        hash_file(video, HashOptions(max_video_seconds=2))
    assert caught.value.code == "too_long"
    assert len(hash_file(video, HashOptions(max_video_seconds=10)).vpdq) == 5


def test_video_over_the_pixel_limit(tmp_path: Path) -> None:
    video = make_video(tmp_path / "wide.mp4", frames=2, size=(320, 240))
    with pytest.raises(HashError) as caught:
        hash_file(video, HashOptions(max_image_pixels=320 * 240 - 1))
    assert caught.value.code == "too_many_pixels"


def test_audio_only_file(tmp_path: Path) -> None:
    audio = make_audio(tmp_path / "voice.m4a")
    with pytest.raises(HashError) as caught:
        hash_file(audio, OPTIONS)
    assert caught.value.code == "audio_only"
    assert "audio" in caught.value.message


def test_zero_frame_video(tmp_path: Path) -> None:
    path = tmp_path / "empty.mp4"
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height = 64, 64
        stream.pix_fmt = "yuv420p"
        container.start_encoding()
    with pytest.raises(HashError) as caught:
        hash_file(path, OPTIONS)
    assert caught.value.code == "no_video_frames"


def test_truncated_and_corrupt_video(tmp_path: Path) -> None:
    data = make_video(tmp_path / "clip.mp4", frames=12).read_bytes()
    assert error_code(data[: len(data) // 2]) == "truncated"
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(HashError) as caught:
        hash_file(cut, OPTIONS)
    assert caught.value.code == "truncated"
    # Scramble the inside of the index box ("moov"), keeping every box length intact.
    start = data.index(b"moov") + 4
    end = start - 8 + int.from_bytes(data[start - 8 : start - 4], "big")
    scrambled = bytearray(data)
    for index in range(start, end):
        scrambled[index] ^= 0x55
    # With its index unreadable FFmpeg sees no stream at all, or fails outright.
    assert error_code(bytes(scrambled)) in {"corrupt", "no_video_frames"}


def test_quality_minimum_comes_from_options(shared_data: Path) -> None:
    path = shared_data / "pdq" / "reg-test-input" / "labelme-subset" / "q0122.jpg"
    assert hash_file(path, HashOptions()).hashable
    strict = hash_file(path, HashOptions(quality_min=100))
    assert strict.hashable  # quality 100 reaches even the strictest minimum
    low = shared_data / "pdq" / "reg-test-input" / "labelme-subset" / "q0004.jpg"
    assert not hash_file(low, HashOptions(compat_hma=True)).hashable
    assert hash_file(low, HashOptions(compat_hma=True, quality_min=0)).hashable


def test_media_signals_is_frozen(bridge_png: bytes) -> None:
    signals: MediaSignals = hash_bytes(bridge_png, OPTIONS)
    with pytest.raises(AttributeError):
        signals.md5 = "x"  # type: ignore[misc]


KNOWN_FAILURES = {
    "empty_file",
    "truncated",
    "corrupt",
    "unsupported_type",
    "too_many_pixels",
    "no_video_frames",
    "audio_only",
}


def outcome(data: bytes) -> str:
    """``"hashed"`` or the error code: anything else (a crash) fails the test."""
    try:
        signals = hash_bytes(data, OPTIONS)
    except HashError as exc:
        return exc.code
    assert signals.pdq is not None or signals.vpdq
    return "hashed"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_arbitrary_bytes_give_a_hash_or_a_hash_error(data: bytes) -> None:
    assert outcome(data) in KNOWN_FAILURES | {"hashed"}


@pytest.fixture(scope="module")
def damageable(bridge: Image.Image, tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    """Small real files of each family to damage: stills, an animated GIF, an MP4."""
    small = bridge.resize((160, 100))
    video = make_video(tmp_path_factory.mktemp("fuzz") / "v.mp4", frames=4, size=(64, 48))
    frames = [small.rotate(angle) for angle in (0, 3, 6)]
    animated = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)
    return [
        encode(small, "PNG"),
        encode(small, "JPEG", quality=80),
        encode(small.convert("CMYK"), "JPEG"),
        encode(small.convert("P"), "GIF"),
        animated,
        encode(small, "WEBP"),
        encode(small, "TIFF"),
        encode(small, "BMP"),
        encode(small, "AVIF"),
        encode(small, "HEIF"),
        video.read_bytes(),
    ]


@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_damaged_real_media_gives_a_hash_or_a_hash_error(
    damageable: list[bytes], data: st.DataObject
) -> None:
    sample = bytearray(data.draw(st.sampled_from(damageable)))
    # Positions are drawn independently of the sample's length (MP4 bytes
    # carry a creation time), so replayed examples stay valid across runs.
    for _ in range(data.draw(st.integers(1, 8))):
        index = data.draw(st.integers(0, 2**20)) % len(sample)
        sample[index] = data.draw(st.integers(0, 255))
    cut = 1 + data.draw(st.integers(0, 2**20)) % len(sample)
    assert outcome(bytes(sample[:cut])) in KNOWN_FAILURES | {"hashed"}


def test_image_hashes_are_the_scans_and_refuse_what_a_scan_refuses(
    shared_data: Path, tmp_path: Path
) -> None:
    # The robustness bench times and matches through image_hashes: it must be
    # exactly the scan's hash and query set, and refuse bad input the same way.
    data = (shared_data / "pdq" / "bridge-mods" / "aaa-orig.jpg").read_bytes()
    query = HashOptions(robust="query")
    pdq, robust = image_hashes(data, query)
    scanned = hash_bytes(data, query)
    assert (pdq, robust) == (scanned.pdq, scanned.robust)
    assert len(robust) > 1
    assert image_hashes(data, OPTIONS) == (hash_bytes(data, OPTIONS).pdq, ())

    def refusal(bad: bytes) -> str:
        with pytest.raises(HashError) as caught:
            image_hashes(bad, query)
        assert caught.value.message
        return caught.value.code

    assert refusal(b"") == "empty_file"
    assert refusal(data[: len(data) // 2]) == "truncated"
    assert refusal(png_declaring(12_000, 10_000)) == "too_many_pixels"
    video = tmp_path / "clip.mp4"
    make_video(video, frames=4)
    assert refusal(video.read_bytes()) == "unsupported_type"
