"""Image PDQ: bit-for-bit HMA compatibility, EXIF orientation, colour modes, the fast path."""

from __future__ import annotations

import csv
import io
import random
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pdqhash
import pillow_heif
import pytest
from PIL import Image

from redress.signals import HashOptions, PdqHash, dihedral_hashes, hash_bytes, hash_file
from redress.signals.pdq import box_resize, pdq_from_buffer64, pdq_from_rgb, pdq_of_window
from signals.media import encode

COMPAT = HashOptions(compat_hma=True)
EXACT = HashOptions(exact=True)
FAST = HashOptions()


def expected_rows(shared_data: Path) -> list[dict[str, str]]:
    with (shared_data / "pdq" / "expected-pdqhash.csv").open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_compat_hma_equals_meta_reference_bit_for_bit(shared_data: Path) -> None:
    rows = expected_rows(shared_data)
    assert len(rows) >= 49
    wrong = []
    for row in rows:
        signals = hash_file(shared_data / "pdq" / row["path"], COMPAT)
        assert signals.pdq is not None
        got = (signals.pdq.hex, signals.pdq.quality, signals.md5, signals.sha256)
        want = (row["pdq_hex"], int(row["quality"]), row["md5"], row["sha256"])
        if got != want:
            wrong.append((row["path"], got, want))
    assert wrong == []


def test_compat_hma_equals_threatexchange_hasher(shared_data: Path) -> None:
    hasher = pytest.importorskip("threatexchange.signal_type.pdq.pdq_hasher")
    for name in ("bridge-mods/aaa-orig.jpg", "misc-images/modes/RGBA.png", "misc-images/wee.jpg"):
        path = shared_data / "pdq" / name
        pdq_hex, quality = hasher.pdq_from_file(path)
        signals = hash_file(path, COMPAT)
        assert signals.pdq == PdqHash.from_hex(pdq_hex, quality)


def test_exif_orientation_is_applied_by_default_and_not_in_compat(shared_data: Path) -> None:
    folder = shared_data / "pdq" / "reg-test-input" / "exif-rotn"
    upright = hash_file(folder / "exif-rotn-1.jpg", EXACT).pdq
    assert upright == hash_file(folder / "exif-rotn-1.jpg", COMPAT).pdq
    for tag, quarter_turns in ((3, 2), (6, -1), (8, 1)):
        path = folder / f"exif-rotn-{tag}.jpg"
        with Image.open(path) as image:
            stored = np.asarray(image.convert("RGB"))
        # What a viewer shows: the stored pixels turned as the tag says.
        shown = pdq_from_rgb(np.ascontiguousarray(np.rot90(stored, quarter_turns)))
        exact = hash_file(path, EXACT)
        assert exact.pdq == shown
        assert exact.pdq is not None
        compat = hash_file(path, COMPAT).pdq
        assert compat is not None
        assert exact.pdq.distance(compat) > 60
        assert (exact.width, exact.height) == ((3024, 4032) if tag in (6, 8) else (4032, 3024))
        fast = hash_file(path, FAST).pdq
        assert fast is not None
        assert fast.distance(exact.pdq) <= 8


def test_all_eight_exif_orientations_match_pillow_exif_transpose(bridge: Image.Image) -> None:
    from PIL import ImageOps

    base = bridge.resize((640, 402))
    upright = pdq_from_rgb(np.asarray(base))
    for orientation in range(1, 9):
        # Store pixels so that applying the tag shows the upright picture.
        inverse = {
            1: None,
            2: Image.Transpose.FLIP_LEFT_RIGHT,
            3: Image.Transpose.ROTATE_180,
            4: Image.Transpose.FLIP_TOP_BOTTOM,
            5: Image.Transpose.TRANSPOSE,
            6: Image.Transpose.ROTATE_90,
            7: Image.Transpose.TRANSVERSE,
            8: Image.Transpose.ROTATE_270,
        }[orientation]
        stored = base if inverse is None else base.transpose(inverse)
        exif = Image.Exif()
        exif[0x0112] = orientation
        data = encode(stored, "JPEG", quality=95, exif=exif.tobytes())
        with Image.open(io.BytesIO(data)) as image:
            shown = ImageOps.exif_transpose(image)
            assert shown is not None
            reference = pdq_from_rgb(np.asarray(shown.convert("RGB")))
        exact = hash_bytes(data, EXACT).pdq
        fast = hash_bytes(data, FAST).pdq
        assert exact == reference, orientation
        assert exact is not None
        assert fast is not None
        assert exact.distance(upright) <= 8, orientation
        assert fast.distance(exact) <= 8, orientation


def test_dihedral_hashes_match_meta_rotated_images(shared_data: Path) -> None:
    folder = shared_data / "pdq" / "reg-test-input" / "dih"
    names = [
        "bridge-1-original",
        "bridge-2-rotate-90",
        "bridge-3-rotate-180",
        "bridge-4-rotate-270",
        "bridge-5-flipx",
        "bridge-6-flipy",
        "bridge-7-flip-plus-1",
        "bridge-8-flip-minus-1",
    ]
    signals = hash_file(folder / f"{names[0]}.jpg", HashOptions(dihedral=True))
    assert len(signals.dihedral) == 8
    assert signals.pdq == signals.dihedral[0]
    for name, rotated in zip(names, signals.dihedral, strict=True):
        actual = hash_file(folder / f"{name}.jpg", COMPAT).pdq
        assert actual is not None
        assert rotated.distance(actual) <= 10, name
    # Different orientations are far apart: the point of indexing all eight.
    assert min(signals.dihedral[0].distance(h) for h in signals.dihedral[1:]) > 60
    assert hash_file(folder / f"{names[0]}.jpg", FAST).dihedral == ()


def test_dihedral_function_agrees_with_pdqhash(bridge: Image.Image) -> None:
    rgb = np.asarray(bridge.resize((320, 200)))
    hashes = dihedral_hashes(rgb)
    vectors, quality = pdqhash.compute_dihedral(rgb)
    assert [h.bits for h in hashes] == [np.packbits(v.astype(np.uint8)).tobytes() for v in vectors]
    assert {h.quality for h in hashes} == {quality}


def meta_pdq(rgb: np.ndarray) -> PdqHash:
    """Meta's C++ PDQ through the ``pdqhash`` package, as threatexchange calls it."""
    vector, quality = pdqhash.compute(np.ascontiguousarray(rgb))
    return PdqHash(np.packbits(np.asarray(vector, dtype=np.uint8)).tobytes(), int(quality))


def test_dct_stage_equals_meta_on_64x64_pictures(bridge: Image.Image) -> None:
    # A 64x64 input skips PDQ's blur, so pdqhash hashes exactly the buffer we pass.
    rng = random.Random(7)
    for _ in range(40):
        left, top = rng.randrange(0, 1200), rng.randrange(0, 700)
        size = rng.randrange(64, 400)
        crop = bridge.crop((left, top, left + size, top + size)).resize((64, 64))
        rgb = np.asarray(crop)
        luma = (rgb[:, :, 0] * 0.299 + rgb[:, :, 1] * 0.587 + rgb[:, :, 2] * 0.114).astype(
            np.float32
        )
        assert pdq_from_buffer64(luma) == meta_pdq(rgb)


def test_median_is_metas_when_dct_values_tie_at_it() -> None:
    # Blocky pictures of a few grey levels give many equal DCT values, often at
    # the median itself: the selection that finds the median must pick the
    # value Meta's full sort picks, or bits flip on exactly these pictures.
    rng = np.random.default_rng(3)
    tied = 0
    for n in range(300):
        block = (8, 16, 32)[n % 3]
        levels = rng.choice(np.array([0, 64, 128, 255], dtype=np.uint8), size=(64 // block,) * 2)
        grey = np.kron(levels, np.ones((block, block), dtype=np.uint8))
        if n % 2:
            grey = np.maximum(grey, grey.T)  # symmetric: more equal coefficients
        rgb = np.ascontiguousarray(np.repeat(grey[:, :, np.newaxis], 3, axis=2))
        ours = pdq_from_rgb(rgb)
        assert ours == meta_pdq(rgb), n
        tied += bin(int(ours.hex, 16)).count("1") < 128
    # Fewer than 128 bits set means values equal to the median were not above it.
    assert tied > 50


def _pictures(bridge: Image.Image) -> list[np.ndarray]:
    rng = np.random.default_rng(11)
    pictures = []
    sizes = [(5, 5), (64, 64), (65, 64), (37, 100), (128, 128), (251, 400), (720, 1280), (997, 641)]
    for rows, cols in sizes:
        pictures.append(rng.integers(0, 256, size=(rows, cols, 3), dtype=np.uint8))
        pictures.append(np.asarray(bridge.resize((cols, rows))))
        flat = np.full((rows, cols, 3), 128, dtype=np.uint8)
        flat[rows // 3 :, : cols // 2] = (20, 200, 90)
        pictures.append(flat)
    return pictures


def test_c_pdq_equals_meta_cpp_bit_for_bit(bridge: Image.Image) -> None:
    # Noise, a photo and flat areas (ties in the DCT), at sizes that exercise
    # every edge case of PDQ's shrinking box windows and the 64x64 shortcut.
    for rgb in _pictures(bridge):
        assert pdq_from_rgb(rgb) == meta_pdq(rgb), rgb.shape
        vectors, quality = pdqhash.compute_dihedral(rgb)
        turned = dihedral_hashes(rgb)
        assert [h.bits for h in turned] == [
            np.packbits(v.astype(np.uint8)).tobytes() for v in vectors
        ], rgb.shape
        assert {h.quality for h in turned} == {quality}
    # Too small to hash: Meta gives quality 0 and all-zero bits.
    assert pdq_from_rgb(np.zeros((4, 90, 3), dtype=np.uint8)) == PdqHash(bytes(32), 0)


def test_c_pdq_reads_grey_rgba_and_views_like_their_rgb(bridge: Image.Image) -> None:
    rgb = np.asarray(bridge.resize((300, 190)))
    grey = np.asarray(bridge.resize((300, 190)).convert("L"))
    assert pdq_from_rgb(grey) == meta_pdq(np.repeat(grey[:, :, np.newaxis], 3, axis=2))
    rgba = np.asarray(bridge.resize((300, 190)).convert("RGBA"))
    assert pdq_from_rgb(rgba) == meta_pdq(rgb)
    turned = np.rot90(rgb)
    assert pdq_from_rgb(turned) == meta_pdq(np.ascontiguousarray(turned))
    with pytest.raises(ValueError, match="8-bit"):
        pdq_from_rgb(rgb.astype(np.float32))  # type: ignore[arg-type]


def test_window_of_a_luma_plane_hashes_like_the_window_cut_out(bridge: Image.Image) -> None:
    # Robust hash sets hash many windows of one plane without copying them;
    # each must be the hash of the window as a picture of its own, mirrored too.
    plane = np.asarray(bridge.resize((384, 256)).convert("L"))
    windows = [(0, 0, 256, 384), (13, 29, 200, 301), (128, 0, 128, 384), (3, 300, 250, 84)]
    for top, left, rows, cols in windows:
        cut = np.ascontiguousarray(plane[top : top + rows, left : left + cols])
        ours = pdq_of_window(plane, top, left, rows, cols)
        exact = pdq_from_rgb(cut)
        # Float32 sums in another order: a bit or two at most, same quality.
        assert ours.distance(exact) <= 2, (top, left, rows, cols)
        assert abs(ours.quality - exact.quality) <= 1
        mirrored = pdq_of_window(plane, top, left, rows, cols, mirrored=True)
        assert mirrored.distance(pdq_from_rgb(np.ascontiguousarray(cut[:, ::-1]))) <= 2
    with pytest.raises(ValueError, match="outside the plane"):
        pdq_of_window(plane, 200, 0, 100, 50)
    with pytest.raises(ValueError, match="luma plane"):
        pdq_of_window(plane[:, ::2], 0, 0, 10, 10)


@pytest.mark.parametrize(
    ("size", "target"),
    [
        ((640, 480), (384, 288)),
        ((540, 1080), (192, 384)),
        ((400, 300), (200, 150)),
        ((9, 7), (3, 3)),
    ],
)
def test_box_resize_is_pillows_box_filter_within_a_level(
    bridge: Image.Image, size: tuple[int, int], target: tuple[int, int]
) -> None:
    # Query sets reduce every luma plane with it; the reference side's windows
    # come from Pillow's box filter, so both must see the same picture.
    grey = bridge.convert("L").resize(size)
    plane = np.asarray(grey)
    ours = box_resize(plane, target[1], target[0]).astype(np.int16)
    pillow = np.asarray(grey.resize(target, Image.Resampling.BOX)).astype(np.int16)
    assert ours.shape == pillow.shape
    assert int(np.abs(ours - pillow).max()) <= 1
    with pytest.raises(ValueError, match="luma plane"):
        box_resize(plane[:, ::2], 10, 10)
    with pytest.raises(ValueError, match="cannot resize"):
        box_resize(plane, 0, 10)


def test_pdq_lets_other_threads_run(bridge: Image.Image) -> None:
    # The pipeline hashes in threads: PDQ must not hold the GIL. With a very long
    # switch interval the main thread keeps the GIL unless the C code releases it,
    # so the counting thread can only advance during the hash if it is released.
    rgb = np.asarray(bridge.resize((3000, 2000)))
    counter = [0]
    stop = threading.Event()

    def count() -> None:
        while not stop.is_set():
            counter[0] += 1
            time.sleep(0)

    interval = sys.getswitchinterval()
    worker = threading.Thread(target=count)
    sys.setswitchinterval(60.0)
    try:
        worker.start()
        before = counter[0]
        pdq_from_rgb(rgb)
        during = counter[0] - before
    finally:
        stop.set()
        sys.setswitchinterval(interval)
        worker.join()
    assert during > 0


@pytest.mark.parametrize(
    ("mode", "fmt"),
    [
        ("P", "PNG"),
        ("L", "PNG"),
        ("LA", "PNG"),
        ("RGBA", "PNG"),
        ("1", "PNG"),
        ("CMYK", "JPEG"),
        ("L", "JPEG"),
        ("RGB", "WEBP"),
        ("RGB", "BMP"),
        ("RGB", "TIFF"),
        ("RGB", "AVIF"),
        ("CMYK", "TIFF"),
        ("P", "GIF"),
    ],
)
def test_colour_modes_and_formats_hash_like_the_rgb_original(
    bridge: Image.Image, mode: str, fmt: str
) -> None:
    base = bridge.resize((480, 301))
    reference = pdq_from_rgb(np.asarray(base))
    data = encode(base.convert(mode), fmt)
    for options in (EXACT, FAST, COMPAT):
        signals = hash_bytes(data, options)
        assert signals.kind == "image"
        assert signals.pdq is not None
        limit = 40 if mode == "1" else 16
        assert signals.pdq.distance(reference) <= limit, (mode, fmt, options)


def test_sixteen_bit_png_is_scaled_not_clipped(bridge: Image.Image) -> None:
    grey8 = np.asarray(bridge.resize((480, 301)).convert("L"))
    grey16 = grey8.astype(np.uint16) * 257
    data = encode(Image.fromarray(grey16), "PNG")
    with Image.open(io.BytesIO(data)) as probe:
        assert probe.mode.startswith("I")
    reference = pdq_from_rgb(np.repeat(grey8[:, :, np.newaxis], 3, axis=2))
    signals = hash_bytes(data, EXACT)
    assert signals.pdq == reference
    assert signals.hashable


def test_transparent_pixels_are_composited_on_white_except_in_compat(
    bridge: Image.Image,
) -> None:
    rgba = np.asarray(bridge.resize((400, 251)).convert("RGBA")).copy()
    rgba[:, 200:, :3] = 0  # hidden black behind...
    rgba[:, 200:, 3] = 0  # ...fully transparent pixels
    data = encode(Image.fromarray(rgba), "PNG")
    shown = rgba[:, :, :3].copy()
    shown[:, 200:] = 255
    assert hash_bytes(data, EXACT).pdq == pdq_from_rgb(shown)
    assert hash_bytes(data, COMPAT).pdq == pdq_from_rgb(np.ascontiguousarray(rgba[:, :, :3]))


def test_heic_iphone_photo_is_hashed(bridge: Image.Image) -> None:
    base = bridge.resize((640, 402))
    heif = pillow_heif.from_pillow(base)
    buffer = io.BytesIO()
    heif.save(buffer, quality=90)
    signals = hash_bytes(buffer.getvalue(), FAST)
    assert signals.media_type == "image/heic"
    assert signals.pdq is not None
    assert signals.pdq.distance(pdq_from_rgb(np.asarray(base))) <= 16


def test_low_quality_image_is_reported_not_hashable(shared_data: Path) -> None:
    signals = hash_file(shared_data / "pdq" / "misc-images" / "small.jpg", COMPAT)
    assert not signals.hashable
    assert signals.unhashable_reason is not None
    assert "quality 0" in signals.unhashable_reason
    record = signals.to_json("small.jpg")
    assert record["hashable"] is False
    assert record["quality"] == 0
    assert "reason" in record


def photo_corpus(shared_data: Path) -> list[bytes]:
    """JPEG photos of many sizes: random crops of real photos, re-encoded like chat apps do."""
    skimage_data = pytest.importorskip("skimage.data")
    sources = [
        Image.open(path).convert("RGB")
        for path in sorted((shared_data / "pdq").rglob("*.jpg"))
        if "misc-images" not in path.parts
    ]
    for name in ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "retina"):
        sources.append(Image.fromarray(getattr(skimage_data, name)()).convert("RGB"))
    rng = random.Random(2026)
    corpus = []
    for image in sources:
        width, height = image.size
        for _ in range(6):
            crop_w = rng.randint(width // 2, width)
            crop_h = rng.randint(height // 2, height)
            left, top = rng.randint(0, width - crop_w), rng.randint(0, height - crop_h)
            crop = image.crop((left, top, left + crop_w, top + crop_h))
            side = rng.choice([720, 1080, 1280, 1600, 2048])
            scale = side / max(crop_w, crop_h)
            crop = crop.resize((round(crop_w * scale), round(crop_h * scale)), Image.LANCZOS)
            corpus.append(encode(crop, "JPEG", quality=rng.choice([75, 87, 95])))
    return corpus


@pytest.mark.slow
def test_fast_path_stays_within_8_bits_of_exact_on_99_percent_of_photos(
    shared_data: Path,
) -> None:
    distances = []
    for data in photo_corpus(shared_data):
        exact = hash_bytes(data, EXACT)
        fast = hash_bytes(data, FAST)
        assert exact.pdq is not None
        assert fast.pdq is not None
        if exact.hashable:  # quality < 50 hashes are not matched on, by definition
            distances.append(exact.pdq.distance(fast.pdq))
    assert len(distances) >= 200
    within = sum(d <= 8 for d in distances) / len(distances)
    assert within >= 0.99, sorted(distances)[-10:]
    assert float(np.mean(distances)) <= 2.0


def test_heic_orientation_is_applied_once(bridge: Image.Image) -> None:
    upright = bridge.resize((640, 402))
    stored = upright.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6  # "turn 90 degrees clockwise to display", as iPhones write
    buffer = io.BytesIO()
    stored.save(buffer, "HEIF", exif=exif.tobytes(), quality=90)
    signals = hash_bytes(buffer.getvalue(), EXACT)
    assert (signals.width, signals.height) == (640, 402)
    assert signals.pdq is not None
    assert signals.pdq.distance(pdq_from_rgb(np.asarray(upright))) <= 8


def test_camera_mpo_jpeg_is_one_photo_on_the_fast_path(bridge: Image.Image) -> None:
    photo = bridge.resize((1280, 803))
    gain_map = photo.resize((320, 200)).convert("L").convert("RGB")
    buffer = io.BytesIO()
    photo.save(buffer, "MPO", save_all=True, append_images=[gain_map], quality=90)
    data = buffer.getvalue()
    with Image.open(io.BytesIO(data)) as probe:
        assert probe.format == "MPO"
        assert getattr(probe, "n_frames", 1) == 2
    fast = hash_bytes(data, FAST)
    exact = hash_bytes(data, EXACT)
    assert fast.kind == exact.kind == "image"
    assert exact.pdq == pdq_from_rgb(np.asarray(Image.open(io.BytesIO(data)).convert("RGB")))
    assert fast.pdq is not None
    assert exact.pdq is not None
    assert fast.pdq.distance(exact.pdq) <= 8
