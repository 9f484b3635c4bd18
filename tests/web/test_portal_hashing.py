"""The portal's in-browser hashing (static/portal/*.js) in a real headless Chromium.

Every figure here is computed twice: by the JavaScript in the browser and on
the server's path (Pillow + Meta's C++ PDQ through ``pdqhash``, PyAV for
video, ``hashlib``), and the two must agree as Meta's own builds agree.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import av
import numpy as np
import pdqhash
import pytest
from PIL import Image, ImageOps

from redress.config import Settings
from redress.signals.robust import reference_hash_set
from redress.web.browser import PortalSite, hash_in_page
from redress.web.hashset import load_hash_set_spec, parse_image_hash_set, parse_video_hash_set

if TYPE_CHECKING:
    from collections.abc import Callable

    from playwright.sync_api import Browser, Page

    RecordProperty = Callable[[str, object], None]

MAX_BROWSER_DISTANCE = 10  # what Meta's own WebAssembly build achieves
DIH = "reg-test-input/dih"
EXIF = "reg-test-input/exif-rotn"
VIDEO = "vpdq/videos/chair-19-sd-bar.mp4"


def distance(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


def bits_hex(bits: np.ndarray) -> str:
    return np.packbits(bits.astype(np.uint8)).tobytes().hex()


def server_pdq(pixels: np.ndarray) -> tuple[str, int]:
    bits, quality = pdqhash.compute(np.ascontiguousarray(pixels))
    return bits_hex(bits), int(quality)


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def reference(shared_data: Path) -> list[dict[str, str]]:
    return read_csv(shared_data / "pdq" / "expected-pdqhash.csv")


@pytest.fixture(scope="module")
def reference_run(
    chromium: Browser, portal_site: PortalSite, shared_data: Path, reference: list[dict[str, str]]
) -> dict[str, dict[str, Any]]:
    """Every reference image hashed once in the browser, EXIF NOT applied (as the CSV was)."""
    page = chromium.new_page()
    page.goto(portal_site.url + "/")
    paths = [shared_data / "pdq" / row["path"] for row in reference]
    outcome = hash_in_page(page, paths, options={"applyExif": False})
    page.close()
    return {row["path"]: result for row, result in zip(reference, outcome["results"], strict=True)}


def test_browser_pdq_is_within_10_bits_of_metas_cpp_for_every_reference_image(
    reference: list[dict[str, str]],
    reference_run: dict[str, dict[str, Any]],
    record_property: RecordProperty,
) -> None:
    distances = {
        row["path"]: distance(reference_run[row["path"]]["hashes"]["pdq"], row["pdq_hex"])
        for row in reference
    }
    mean = sum(distances.values()) / len(distances)
    record_property("pdq_images", len(distances))
    record_property("pdq_mean_distance", mean)
    record_property("pdq_max_distance", max(distances.values()))
    worst = max(distances.values())
    print(f"browser PDQ vs Meta C++: {len(distances)} images, mean {mean:.2f}, max {worst}")
    assert len(distances) == 49
    assert {p: d for p, d in distances.items() if d > MAX_BROWSER_DISTANCE} == {}


def test_browser_pdq_is_at_least_as_close_to_cpp_as_metas_webassembly_build(
    shared_data: Path, reference: list[dict[str, str]], reference_run: dict[str, dict[str, Any]]
) -> None:
    cpp = {row["path"]: row["pdq_hex"] for row in reference}
    wasm = read_csv(shared_data / "pdq" / "expected-browser-pdq.csv")
    assert len(wasm) == 15
    for row in wasm:
        ours = reference_run[row["path"]]["hashes"]["pdq"]
        assert distance(ours, row["pdq_hex"]) <= MAX_BROWSER_DISTANCE, row["path"]
        assert distance(ours, cpp[row["path"]]) <= distance(row["pdq_hex"], cpp[row["path"]])


def test_quality_is_metas_and_low_quality_images_are_flagged_not_dropped(
    reference: list[dict[str, str]], reference_run: dict[str, dict[str, Any]]
) -> None:
    spec = load_hash_set_spec()
    flagged = set()
    for row in reference:
        result = reference_run[row["path"]]
        assert result["hashes"]["quality"] == int(row["quality"]), row["path"]
        codes = [flag["code"] for flag in result["flags"]]
        if int(row["quality"]) < spec.pdq_min_quality:
            flagged.add(row["path"])
            assert codes == ["low_quality"]
            assert "too plain, small or blurred" in result["flags"][0]["message"]
        else:
            assert "low_quality" not in codes
    assert flagged == {
        "misc-images/small.jpg",
        "reg-test-input/labelme-subset/q0003.jpg",
        "reg-test-input/labelme-subset/q0004.jpg",
    }


def test_md5_and_sha256_equal_hashlib_on_the_file_bytes(
    shared_data: Path, reference: list[dict[str, str]], reference_run: dict[str, dict[str, Any]]
) -> None:
    for row in reference:
        raw = (shared_data / "pdq" / row["path"]).read_bytes()
        hashes = reference_run[row["path"]]["hashes"]
        assert hashes["md5"] == hashlib.md5(raw, usedforsecurity=False).hexdigest() == row["md5"]
        assert hashes["sha256"] == hashlib.sha256(raw).hexdigest() == row["sha256"]


def test_every_image_result_is_exactly_the_shared_hash_set(
    reference_run: dict[str, dict[str, Any]],
) -> None:
    spec = load_hash_set_spec()
    assert spec.pdq_min_quality == Settings().pdq_quality_min
    for path, result in reference_run.items():
        assert set(result["hashes"]) == set(spec.image), path
        assert spec.problems("image", result["hashes"]) == [], path
        parsed = parse_image_hash_set(result["hashes"], spec)
        assert parsed.dihedral[0] == parsed.pdq


@pytest.mark.parametrize(
    "path",
    [
        f"{DIH}/bridge-1-original.jpg",
        "reg-test-input/pen-and-coaster.png",
        "misc-images/c.png",
        "reg-test-input/labelme-subset/q0122.jpg",
        "bridge-mods/shrink-a-lot.jpg",
        "misc-images/wee.jpg",
    ],
)
def test_dihedral_variants_equal_pdqhash_compute_dihedral(
    shared_data: Path, reference_run: dict[str, dict[str, Any]], path: str
) -> None:
    with Image.open(shared_data / "pdq" / path) as image:
        pixels = np.asarray(image.convert("RGB"))
    expected, _quality = pdqhash.compute_dihedral(pixels)
    ours = reference_run[path]["hashes"]["dihedral"]
    gaps = [distance(a, bits_hex(b)) for a, b in zip(ours, expected, strict=True)]
    assert max(gaps) <= MAX_BROWSER_DISTANCE, gaps


def test_dihedral_names_match_the_rotated_and_flipped_files(
    reference_run: dict[str, dict[str, Any]],
) -> None:
    names = load_hash_set_spec().dihedral_order
    variants = dict(
        zip(names, reference_run[f"{DIH}/bridge-1-original.jpg"]["hashes"]["dihedral"], strict=True)
    )
    files = {
        "rotate90": "bridge-2-rotate-90.jpg",
        "rotate180": "bridge-3-rotate-180.jpg",
        "rotate270": "bridge-4-rotate-270.jpg",
        "flipx": "bridge-5-flipx.jpg",
        "flipy": "bridge-6-flipy.jpg",
        "flipplus1": "bridge-7-flip-plus-1.jpg",
        "flipminus1": "bridge-8-flip-minus-1.jpg",
    }
    for name, file in files.items():
        transformed = reference_run[f"{DIH}/{file}"]["hashes"]["pdq"]
        assert distance(variants[name], transformed) <= MAX_BROWSER_DISTANCE, name
        assert distance(variants["original"], transformed) > 31, name


def test_exif_orientation_is_applied_like_the_servers_exif_transpose(
    harness_page: Page, shared_data: Path, reference_run: dict[str, dict[str, Any]]
) -> None:
    # exif-rotn-{1,3,6,8} are four separate phone shots of one desk, each stored
    # with its own Orientation tag: upright, each must hash as the server's
    # EXIF-aware path (Pillow exif_transpose + Meta's PDQ) hashes it.
    orientations = (1, 3, 6, 8)
    paths = [shared_data / "pdq" / EXIF / f"exif-rotn-{n}.jpg" for n in orientations]
    results = hash_in_page(harness_page, paths)["results"]
    assert [r["orientation"] for r in results] == list(orientations)
    assert all(r["exifApplied"] for r in results)
    assert [(r["width"], r["height"]) for r in results] == [
        (4032, 3024),
        (4032, 3024),
        (3024, 4032),
        (3024, 4032),
    ]
    for path, result in zip(paths, results, strict=True):
        with Image.open(path) as image:
            upright = np.asarray(ImageOps.exif_transpose(image).convert("RGB"))
        assert distance(result["hashes"]["pdq"], server_pdq(upright)[0]) <= MAX_BROWSER_DISTANCE
    # Hashed as stored (HMA's way), the turned ones come out differently.
    for n, result in zip(orientations[1:], results[1:], strict=True):
        stored = reference_run[f"{EXIF}/exif-rotn-{n}.jpg"]["hashes"]["pdq"]
        assert distance(stored, result["hashes"]["pdq"]) > 31


# How to store pixels so that a viewer applying Orientation N shows the upright
# picture: the inverse of the turn the viewer applies for N.
_STORE_FOR_ORIENTATION = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


def test_one_photo_saved_in_all_eight_orientations_hashes_alike_with_exif_applied(
    harness_page: Page, shared_data: Path, tmp_path: Path
) -> None:
    with Image.open(shared_data / "pdq" / DIH / "bridge-1-original.jpg") as source:
        upright = source.convert("RGB")
    paths = []
    for orientation, turn in _STORE_FOR_ORIENTATION.items():
        stored = upright if turn is None else upright.transpose(turn)
        exif = Image.Exif()
        exif[0x0112] = orientation
        path = tmp_path / f"orientation-{orientation}.jpg"
        stored.save(path, quality=95, exif=exif.tobytes())
        with Image.open(path) as check:  # the files say what we think they say
            assert ImageOps.exif_transpose(check).size == upright.size
        paths.append(path)
    applied = hash_in_page(harness_page, paths)["results"]
    ignored = hash_in_page(harness_page, paths, options={"applyExif": False})["results"]
    assert [r["orientation"] for r in applied] == list(_STORE_FOR_ORIENTATION)
    first = applied[0]["hashes"]["pdq"]
    assert max(distance(first, r["hashes"]["pdq"]) for r in applied) <= MAX_BROWSER_DISTANCE
    assert min(distance(first, r["hashes"]["pdq"]) for r in ignored[1:]) > 31


def test_pdq_js_on_given_pixels_is_bit_identical_to_metas_cpp(harness_page: Page) -> None:
    rng = np.random.default_rng(9)
    cases = []
    for height, width in [(5, 5), (7, 300), (64, 64), (65, 129), (300, 13), (240, 320), (1, 50)]:
        smooth = Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)).resize(
            (width, height), Image.Resampling.BICUBIC
        )
        noisy = np.clip(
            np.asarray(smooth, np.int16) + rng.integers(-20, 21, (height, width, 3)), 0, 255
        )
        cases.append(noisy.astype(np.uint8))
    payload = []
    for pixels in cases:
        height, width = pixels.shape[:2]
        rgba = np.dstack([pixels, np.full((height, width), 255, np.uint8)])
        bgra = rgba[..., [2, 1, 0, 3]]
        payload.append(
            {
                "width": width,
                "height": height,
                "rgba": base64.b64encode(rgba.tobytes()).decode(),
                "bgra": base64.b64encode(np.ascontiguousarray(bgra).tobytes()).decode(),
            }
        )
    results = harness_page.evaluate(
        """async (cases) => {
          const { pdqFromImageData } = await import("/static/portal/pdq.js");
          const bytes = (b64) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
          return cases.map(({ width, height, rgba, bgra }) => [
            pdqFromImageData({ data: bytes(rgba), width, height }),
            pdqFromImageData({ data: bytes(bgra), width, height }, { order: "bgra" }),
          ]);
        }""",
        payload,
    )
    for pixels, (from_rgba, from_bgra) in zip(cases, results, strict=True):
        assert from_rgba == from_bgra
        if min(pixels.shape[:2]) < 5:
            assert from_rgba["pdq"] == "0" * 64
            assert from_rgba["quality"] == 0
            continue
        expected, quality = server_pdq(pixels)
        assert from_rgba["pdq"] == expected, pixels.shape
        assert from_rgba["quality"] == quality
        dihedral, _ = pdqhash.compute_dihedral(np.ascontiguousarray(pixels))
        assert from_rgba["dihedral"] == [bits_hex(b) for b in dihedral]


def test_the_canvas_fallback_reads_the_same_pixels(harness_page: Page, shared_data: Path) -> None:
    paths = [
        shared_data / "pdq" / p
        for p in (
            "bridge-mods/blur-a-little.jpg",
            "misc-images/modes/RGB.jpg",
            "reg-test-input/labelme-subset/q0122.jpg",
        )
    ]
    fast = hash_in_page(harness_page, paths)["results"]
    slow = hash_in_page(harness_page, paths, options={"readVia": "canvas"})["results"]
    assert [r["readVia"] for r in fast] == ["videoframe"] * 3
    assert [r["readVia"] for r in slow] == ["canvas"] * 3
    assert [r["hashes"] for r in fast] == [r["hashes"] for r in slow]


def test_very_large_photos_are_scaled_down_and_stay_near(
    harness_page: Page, shared_data: Path, record_property: RecordProperty
) -> None:
    path = shared_data / "pdq" / EXIF / "exif-rotn-1.jpg"
    full = hash_in_page(harness_page, [path], options={"maxPixels": 0})["results"][0]
    scaled = hash_in_page(harness_page, [path], options={"maxPixels": 2_000_000})["results"][0]
    assert (full["width"], full["height"]) == (4032, 3024)
    assert scaled["width"] * scaled["height"] <= 2_000_000
    assert (scaled["sourceWidth"], scaled["sourceHeight"]) == (4032, 3024)
    assert [f["code"] for f in scaled["flags"]] == ["scaled_down"]
    gap = distance(full["hashes"]["pdq"], scaled["hashes"]["pdq"])
    record_property("scaled_2mp_distance", gap)
    assert gap <= MAX_BROWSER_DISTANCE
    assert scaled["hashes"]["sha256"] == full["hashes"]["sha256"]


def _png(pixels: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


def test_flat_and_tiny_images_are_flagged_low_quality_and_still_hashed(
    harness_page: Page, tmp_path: Path
) -> None:
    flat = tmp_path / "flat-grey.png"
    flat.write_bytes(_png(np.full((200, 300, 3), 128, np.uint8)))
    tiny = tmp_path / "tiny.png"
    tiny.write_bytes(_png(np.zeros((3, 3, 3), np.uint8)))
    spec = load_hash_set_spec()
    for result in hash_in_page(harness_page, [flat, tiny])["results"]:
        assert result["hashes"]["quality"] == 0
        assert [f["code"] for f in result["flags"]] == ["low_quality"]
        assert spec.problems("image", result["hashes"]) == []


def test_a_bad_file_fails_alone_and_the_batch_carries_on(
    harness_page: Page, tmp_path: Path, shared_data: Path
) -> None:
    junk = tmp_path / "broken.jpg"
    junk.write_bytes(b"\xff\xd8\xff\xe0 this is not really a JPEG " * 40)
    notes = tmp_path / "notes.txt"
    notes.write_text("not a picture", encoding="utf-8")
    good = shared_data / "pdq" / "bridge-mods" / "aaa-orig.jpg"
    results = hash_in_page(harness_page, [junk, notes, good])["results"]
    assert results[0]["error"]["code"] == "undecodable_image"
    assert results[1]["error"]["code"] == "unsupported_file"
    assert "error" not in results[2]
    assert results[2]["hashes"]["pdq"] == server_pdq(np.asarray(Image.open(good).convert("RGB")))[0]


def server_vpdq_at_1fps(path: Path) -> list[tuple[float, str, int]]:
    """The server's vPDQ: PyAV decoding, one frame per second from frame 0, Meta's PDQ."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        step = max(1, round(float(stream.average_rate or 1)))
        frames = []
        for index, frame in enumerate(container.decode(stream)):
            if index % step == 0:
                pdq, quality = server_pdq(frame.to_ndarray(format="rgb24"))
                frames.append((float(frame.time or 0.0), pdq, quality))
    return frames


def match_share(query: list[str], target: list[str], threshold: int = 31) -> float:
    unique = set(query)
    return sum(any(distance(q, t) <= threshold for t in target) for q in unique) / len(unique)


def test_video_frames_land_near_the_servers_vpdq(
    harness_page: Page, shared_data: Path, record_property: RecordProperty
) -> None:
    path = shared_data / VIDEO
    playable = harness_page.evaluate(
        """() => document.createElement("video").canPlayType('video/mp4; codecs="avc1.64001F"')"""
    )
    result = hash_in_page(harness_page, [path])["results"][0]
    if playable == "":
        # A Chromium built without H.264 (no proprietary codecs): a clear, documented error.
        assert result["error"]["code"] == "undecodable_video"
        return
    assert "error" not in result, result.get("error")
    spec = load_hash_set_spec()
    parsed = parse_video_hash_set(result["hashes"], spec)
    assert parsed.md5 == hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()

    server = server_vpdq_at_1fps(path)
    ours = result["hashes"]["vpdq"]
    assert [f["ts"] for f in ours] == [float(k) for k in range(len(server))]
    assert [round(t) for t, _, _ in server] == list(range(len(server)))
    gaps = [distance(f["pdq"], pdq) for f, (_, pdq, _) in zip(ours, server, strict=True)]
    record_property("vpdq_mean_distance", sum(gaps) / len(gaps))
    record_property("vpdq_max_distance", max(gaps))
    assert max(gaps) <= 16, gaps
    # Matched the way vPDQ matches: both directions, quality >= 50 frames, distance <= 31.
    mine = [f["pdq"] for f in ours if f["quality"] >= spec.pdq_min_quality]
    theirs = [pdq for _, pdq, quality in server if quality >= spec.pdq_min_quality]
    assert match_share(mine, theirs) >= 0.8
    assert match_share(theirs, mine) >= 0.8
    # And Meta's own reference hashes of the same frames.
    meta = {}
    for line in (shared_data / "vpdq" / "hashes" / "chair-19-sd-bar.txt").read_text().splitlines():
        number, _quality, pdq, _ts = line.split(",")
        meta[int(number)] = pdq
    assert max(distance(f["pdq"], meta[30 * f["frame"]]) for f in ours) <= 16
    assert not math.isnan(result["duration"])


def test_a_vp9_webm_made_here_hashes_near_the_servers_vpdq(
    harness_page: Page, shared_data: Path, tmp_path: Path
) -> None:
    """A royalty-free codec every Chromium build decodes, from a video made in the test."""
    with Image.open(shared_data / "pdq" / DIH / "bridge-1-original.jpg") as source:
        scene = np.asarray(source.convert("RGB").resize((960, 600)))
    path = tmp_path / "pan.webm"
    fps = 10
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libvpx-vp9", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 480, 360, "yuv420p"
        for index in range(4 * fps + 5):  # 4.5 s, panning across the photo
            window = np.ascontiguousarray(scene[100 : 100 + 360, 8 * index : 8 * index + 480])
            for packet in stream.encode(av.VideoFrame.from_ndarray(window, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    result = hash_in_page(harness_page, [path])["results"][0]
    assert "error" not in result, result.get("error")
    assert result["type"] == "video/webm"
    server = server_vpdq_at_1fps(path)
    ours = result["hashes"]["vpdq"]
    assert len(ours) == len(server) == 5
    gaps = [distance(f["pdq"], pdq) for f, (_, pdq, _) in zip(ours, server, strict=True)]
    assert max(gaps) <= 16, gaps


def test_heic_photos_hash_like_the_server_or_fail_clearly(
    harness_page: Page, shared_data: Path, tmp_path: Path
) -> None:
    """iPhone HEIC: Chromium on Linux has no HEIC decoder; the failure must say so plainly."""
    pillow_heif = pytest.importorskip("pillow_heif")
    with Image.open(shared_data / "pdq" / DIH / "bridge-1-original.jpg") as source:
        upright = source.convert("RGB")
    path = tmp_path / "photo.heic"
    pillow_heif.from_pillow(upright).save(path, quality=90)
    result = hash_in_page(harness_page, [path])["results"][0]
    if "error" in result:
        assert result["error"]["code"] == "undecodable_image"
        assert result["kind"] == "image"
    else:  # a Chromium with a HEIC decoder: then it must agree with the server
        decoded = np.asarray(pillow_heif.open_heif(path).to_pillow().convert("RGB"))
        assert distance(result["hashes"]["pdq"], server_pdq(decoded)[0]) <= MAX_BROWSER_DISTANCE


def test_md5_js_equals_hashlib_whole_and_in_chunks(harness_page: Page) -> None:
    rng = np.random.default_rng(5)
    blobs = [
        rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        for n in (0, 1, 55, 56, 63, 64, 65, 1000, 100_003)
    ]
    digests = harness_page.evaluate(
        """async (blobs) => {
          const { Md5, md5Hex } = await import("/static/portal/md5.js");
          const bytes = (b64) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
          return blobs.map((b64) => {
            const data = bytes(b64);
            const chunked = new Md5();
            for (let at = 0, size = 1; at < data.length; at += size, size = (size * 7) % 97 + 1) {
              chunked.update(data.subarray(at, at + size));
            }
            return [md5Hex(data), chunked.hex()];
          });
        }""",
        [base64.b64encode(b).decode() for b in blobs],
    )
    for blob, (whole, chunked) in zip(blobs, digests, strict=True):
        expected = hashlib.md5(blob, usedforsecurity=False).hexdigest()
        assert whole == chunked == expected, len(blob)


def test_the_one_call_api_reports_progress_and_keeps_order(
    harness_page: Page, shared_data: Path
) -> None:
    paths = [
        shared_data / "pdq" / "reg-test-input" / "labelme-subset" / name
        for name in ("q0122.jpg", "q0003.jpg", "q0291.jpg")
    ]
    harness_page.set_input_files("#files", [str(p) for p in paths])
    outcome = harness_page.evaluate(
        """async () => {
          const { hashFiles } = await import("/static/portal/hashing.js");
          const progress = [];
          const results = await hashFiles(document.getElementById("files").files, {
            workers: 2,
            onProgress: ({ done, total }) => progress.push([done, total]),
          });
          return { names: results.map((r) => r.name), progress };
        }"""
    )
    assert outcome["names"] == [p.name for p in paths]
    assert outcome["progress"] == [[1, 3], [2, 3], [3, 3]]


def test_the_browsers_robust_reference_set_is_the_servers(harness_page: Page) -> None:
    """robust.js computes the server's reference set (docs/robustness.md) but its rotations."""
    rng = np.random.default_rng(11)
    cases = []
    for width, height in [(900, 700), (420, 1000), (300, 300)]:
        base = Image.fromarray(rng.integers(0, 256, (7, 9, 3), dtype=np.uint8)).resize(
            (width, height), Image.Resampling.BICUBIC
        )
        detail = Image.fromarray(rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)).resize(
            (width, height), Image.Resampling.BICUBIC
        )
        pixels = 0.7 * np.asarray(base, np.float32) + 0.3 * np.asarray(detail, np.float32)
        cases.append(pixels.astype(np.uint8))
    payload = [
        {
            "width": p.shape[1],
            "height": p.shape[0],
            "rgba": base64.b64encode(
                np.dstack([p, np.full(p.shape[:2], 255, np.uint8)]).tobytes()
            ).decode(),
        }
        for p in cases
    ]
    results = harness_page.evaluate(
        """async (cases) => {
          const { referenceSet } = await import("/static/portal/robust.js");
          const bytes = (b64) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
          return cases.map(({ width, height, rgba }) =>
            referenceSet({ data: bytes(rgba), width, height }));
        }""",
        payload,
    )
    for pixels, ours in zip(cases, results, strict=True):
        server = {h.kind: h for h in reference_hash_set(pixels) if not h.kind.startswith("rotate")}
        browser = {h["kind"]: h for h in ours}
        assert len(server) >= 40, pixels.shape  # a detailed picture: most windows hash
        # Same kinds, but for a window whose quality sits at the floor on one side only.
        for kind in set(server) ^ set(browser):
            quality = server[kind].quality if kind in server else browser[kind]["quality"]
            assert abs(quality - 50) <= 3, (pixels.shape, kind)
        assert len(set(server) & set(browser)) >= 0.9 * len(server)
        for kind in set(server) & set(browser):
            gap = distance(browser[kind]["pdq"], server[kind].pdq.hex)
            # The flips are the same pixels (bit for bit); windows are scaled
            # by a box filter on luma rather than on RGB, a rounding apart.
            assert gap <= (0 if kind.startswith("dihedral/") else 6), (pixels.shape, kind, gap)
