"""Robust hash sets find re-shared copies plain PDQ misses, without matching other pictures."""

from __future__ import annotations

import io

import numpy as np
import pdqhash
import pytest
from PIL import Image, ImageDraw, ImageOps
from skimage import data

from redress.errors import InvalidInputError
from redress.signals import hash_bytes, robust
from redress.signals.errors import EmptyFileError, UnsupportedMediaError
from redress.signals.options import HashOptions
from redress.signals.robust import (
    PLAIN_THRESHOLD,
    QUALITY_MIN,
    DerivedHash,
    Window,
    content_regions,
    decode_for_query,
    decode_picture,
    match_sets,
    query_hash_set,
    reference_hash_set,
    trim_borders,
)
from redress.signals.sniff import sniff
from redress.signals.types import PdqHash


def photo_like(seed: int, size: tuple[int, int] = (640, 480)) -> Image.Image:
    """A generated picture with photo-like structure: shading, blobs and edges at all scales."""
    rng = np.random.default_rng(seed)
    width, height = size
    canvas = np.zeros((height, width, 3), dtype=np.float32)
    for cells, weight in ((3, 0.5), (8, 0.3), (24, 0.2)):
        noise = rng.uniform(0, 255, (cells, cells, 3)).astype(np.uint8)
        layer = Image.fromarray(noise).resize(size, Image.Resampling.BICUBIC)
        canvas += weight * np.asarray(layer, dtype=np.float32)
    image = Image.fromarray(np.clip(canvas, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(12):
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        r = int(rng.integers(10, 80))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        if rng.random() < 0.5:
            draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)
        else:
            draw.rectangle((x - r, y - r // 2, x + r, y + r // 2), fill=colour)
    return image


def jpeg_round_trip(image: Image.Image, quality: int = 85) -> np.ndarray:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "JPEG", quality=quality)
    with Image.open(io.BytesIO(buffer.getvalue())) as reopened:
        return np.asarray(reopened.convert("RGB"))


def plain_distance(a: np.ndarray, b: np.ndarray) -> int:
    va, _ = pdqhash.compute(np.ascontiguousarray(a))
    vb, _ = pdqhash.compute(np.ascontiguousarray(b))
    return int((np.asarray(va) != np.asarray(vb)).sum())


@pytest.fixture(scope="module")
def original() -> Image.Image:
    return photo_like(7)


@pytest.fixture(scope="module")
def reference(original: Image.Image) -> tuple[DerivedHash, ...]:
    return reference_hash_set(np.asarray(original))


def screenshot_of(image: Image.Image, *, dark: bool) -> Image.Image:
    """A phone screenshot: status bar, app bar, the picture in a bubble, a caption and input bar."""
    background = (16, 16, 20) if dark else (255, 255, 255)
    ink = (230, 230, 230) if dark else (20, 20, 20)
    screen = Image.new("RGB", (720, 1440), background)
    draw = ImageDraw.Draw(screen)
    draw.text((30, 10), "21:47", fill=ink)
    draw.rectangle((0, 60, 720, 150), fill=(82, 136, 193))
    draw.text((120, 95), "Group chat  12,408 members", fill=(255, 255, 255))
    shown = image.resize((560, round(image.height * 560 / image.width)))
    screen.paste(shown, (30, 260))
    draw.text((40, 260 + shown.height + 12), "forwarded 21:45", fill=ink)
    draw.rectangle((0, 1350, 720, 1440), fill=(240, 240, 240))
    return screen


def meme_of(image: Image.Image) -> Image.Image:
    bar = image.height // 4
    canvas = Image.new("RGB", (image.width, image.height + 2 * bar), (255, 255, 255))
    canvas.paste(image, (0, bar))
    draw = ImageDraw.Draw(canvas)
    draw.text((40, bar // 3), "WHEN YOU SEE IT", fill=(0, 0, 0), font_size=bar // 3)
    draw.text((60, image.height + bar + bar // 3), "LOL", fill=(0, 0, 0), font_size=bar // 3)
    return canvas


EDITS = {
    "crop off the top 12%": lambda im: im.crop((0, round(im.height * 0.12), im.width, im.height)),
    "centred crop keeping 80% of the area": lambda im: im.crop(
        (
            round(im.width * 0.053),
            round(im.height * 0.053),
            round(im.width * 0.947),
            round(im.height * 0.947),
        )
    ),
    "15% white border": lambda im: ImageOps.expand(im, border=96, fill=(255, 255, 255)),
    "black letterbox bars": lambda im: ImageOps.expand(im, border=(0, 140), fill=(0, 0, 0)),
    "phone screenshot, light": lambda im: screenshot_of(im, dark=False),
    "phone screenshot, dark": lambda im: screenshot_of(im, dark=True),
    "meme captions": meme_of,
    "mirrored": ImageOps.mirror,
    "mirrored, then screenshotted": lambda im: screenshot_of(ImageOps.mirror(im), dark=True),
    "rotated 5 degrees": lambda im: im.rotate(5, resample=Image.Resampling.BICUBIC),
}


@pytest.mark.parametrize("edit", list(EDITS))
def test_edited_copy_matches_through_the_robust_set_but_not_plain_pdq(
    edit: str, original: Image.Image, reference: tuple[DerivedHash, ...]
) -> None:
    copy = jpeg_round_trip(EDITS[edit](original))
    assert plain_distance(np.asarray(original), copy) > PLAIN_THRESHOLD
    verdict = match_sets(reference, query_hash_set(copy))
    assert verdict.matched, verdict
    assert verdict.best is not None
    assert verdict.best.distance <= verdict.best.threshold


def test_recompressed_copy_matches_on_the_plain_hash(
    original: Image.Image, reference: tuple[DerivedHash, ...]
) -> None:
    copy = jpeg_round_trip(original.resize((480, 360)), quality=70)
    query = query_hash_set(copy)
    assert match_sets(reference, query).matched
    # The plain pair alone decides it, as plain PDQ would.
    plain_pair = match_sets(reference[:1], [h for h in query if h.kind == "whole"])
    assert plain_pair.matched
    assert plain_pair.best is not None
    assert plain_pair.best.reference_kind == "dihedral/original"


def test_scanned_jpeg_is_matched_from_a_reduced_decode_with_the_scan_hash(
    original: Image.Image, reference: tuple[DerivedHash, ...]
) -> None:
    # What a scan does: the fast PDQ of the file is the set's whole hash, and
    # the windows come from a decode reduced in libjpeg (a 1600 px screenshot
    # decodes at half scale).
    buffer = io.BytesIO()
    screenshot_of(original, dark=False).resize((800, 1600)).save(buffer, "JPEG", quality=85)
    data = buffer.getvalue()
    scan = hash_bytes(data, HashOptions(robust="query"))
    assert scan.pdq is not None
    decoded = decode_for_query(data, sniff(data[:64]), HashOptions())
    assert decoded.shape[:2] == (800, 400)
    assert [h.pdq for h in scan.robust if h.kind == "whole"] == [scan.pdq]
    verdict = match_sets(reference, scan.robust)
    assert verdict.matched, verdict
    assert verdict.best is not None
    assert verdict.best.query_kind.startswith("region")


def test_other_pictures_do_not_match(reference: tuple[DerivedHash, ...]) -> None:
    for seed in range(20, 32):
        other = jpeg_round_trip(photo_like(seed))
        assert not match_sets(reference, query_hash_set(other)).matched
        assert not match_sets(
            reference, query_hash_set(screenshot_of(photo_like(seed), dark=True))
        ).matched


def test_neighbouring_tiles_of_one_picture_do_not_match() -> None:
    # Two halves of one scene share colours and texture but are different pictures.
    scene = photo_like(3, size=(1280, 480))
    left, right = scene.crop((0, 0, 640, 480)), scene.crop((640, 0, 1280, 480))
    for edit in ("crop off the top 12%", "15% white border", "phone screenshot, light", "mirrored"):
        copy = jpeg_round_trip(EDITS[edit](right))
        assert not match_sets(reference_hash_set(np.asarray(left)), query_hash_set(copy)).matched


def test_reference_set_is_at_most_64_confident_distinct_hashes(
    reference: tuple[DerivedHash, ...],
) -> None:
    assert 8 < len(reference) <= 64
    kinds = [h.kind for h in reference]
    assert len(set(kinds)) == len(kinds)
    assert kinds[:8] == [
        f"dihedral/{n}"
        for n in (
            "original",
            "rotate90",
            "rotate180",
            "rotate270",
            "flipx",
            "flipy",
            "flipplus1",
            "flipminus1",
        )
    ]
    assert all(h.quality >= QUALITY_MIN for h in reference)
    assert all(h.threshold <= PLAIN_THRESHOLD for h in reference)


def test_dihedral_hashes_are_those_of_the_turned_pictures(
    original: Image.Image, reference: tuple[DerivedHash, ...]
) -> None:
    by_kind = {h.kind: h.pdq for h in reference}
    mirrored, _ = pdqhash.compute(np.asarray(ImageOps.mirror(original)))
    turned, _ = pdqhash.compute(np.asarray(original.rotate(90, expand=True)))
    assert by_kind["dihedral/flipy"].bits == np.packbits(np.asarray(mirrored, np.uint8)).tobytes()
    assert by_kind["dihedral/rotate90"].bits == np.packbits(np.asarray(turned, np.uint8)).tobytes()


@pytest.mark.parametrize(
    "picture",
    [
        np.full((480, 640, 3), 128, dtype=np.uint8),  # flat
        np.asarray(photo_like(5, size=(48, 40))),  # tiny
        np.asarray(photo_like(6, size=(1600, 120))),  # extreme aspect
    ],
    ids=["flat", "tiny", "extreme-aspect"],
)
def test_degenerate_pictures_give_no_confident_derived_hashes(picture: np.ndarray) -> None:
    assert reference_hash_set(picture) == ()
    query = query_hash_set(picture)
    derived = [h for h in query if h.kind != "whole"]
    assert derived == []


def test_flat_query_does_not_match_a_protected_picture(
    reference: tuple[DerivedHash, ...],
) -> None:
    for value in (0, 128, 255):
        flat = np.full((600, 400, 3), value, dtype=np.uint8)
        assert not match_sets(reference, query_hash_set(flat)).matched


def test_trim_borders_finds_the_picture_inside_noisy_bars() -> None:
    photo = photo_like(11, size=(400, 300))
    canvas = Image.new("RGB", (400, 500), (0, 0, 0))
    canvas.paste(photo, (0, 100))
    window = trim_borders(jpeg_round_trip(canvas, quality=70))
    assert window.left == pytest.approx(0.0, abs=0.01)
    assert window.width == pytest.approx(1.0, abs=0.01)
    assert window.top == pytest.approx(0.2, abs=0.01)
    assert window.height == pytest.approx(0.6, abs=0.01)


def test_trim_borders_leaves_a_picture_without_borders_whole() -> None:
    window = trim_borders(np.asarray(photo_like(12)))
    assert window == Window(0.0, 0.0, 1.0, 1.0)


def test_content_regions_find_the_photo_in_a_screenshot() -> None:
    photo = photo_like(13, size=(400, 300))
    screen = screenshot_of(photo, dark=True)
    regions = content_regions(jpeg_round_trip(screen))
    assert regions
    best = regions[0]
    # The photo is shown 560x420 at (30, 260) on a 720x1440 screen.
    assert best.left == pytest.approx(30 / 720, abs=0.015)
    assert best.top == pytest.approx(260 / 1440, abs=0.015)
    assert best.width == pytest.approx(560 / 720, abs=0.02)
    assert best.height == pytest.approx(420 / 1440, abs=0.02)


def test_a_dark_photo_on_a_dark_theme_is_found() -> None:
    # A night photo: nearly every pixel within 28 levels of the dark app
    # theme, so only the tight second search tells the photo from the
    # background (the loose one alone finds nothing but the whole screen).
    dark = Image.fromarray((np.asarray(photo_like(15, size=(400, 300))) // 5).astype(np.uint8))
    shot = jpeg_round_trip(screenshot_of(dark, dark=True))
    best = content_regions(shot)[0]
    assert best.left == pytest.approx(30 / 720, abs=0.015)
    assert best.top == pytest.approx(260 / 1440, abs=0.015)
    assert best.width == pytest.approx(560 / 720, abs=0.02)
    assert best.height == pytest.approx(420 / 1440, abs=0.02)


def night_photo(seed: int) -> Image.Image:
    """A low-light photo: dim shapes 8-20 levels up, sensor grain, a few bright points."""
    rng = np.random.default_rng(seed)
    grain = rng.normal(0, 3, (300, 400, 1))
    pixels = np.asarray(photo_like(seed, size=(400, 300))) / 20 + 8 + grain
    night = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(night)
    for _ in range(25):
        x, y, r = int(rng.integers(0, 400)), int(rng.integers(0, 300)), int(rng.integers(1, 4))
        draw.ellipse((x - r, y - r, x + r, y + r), fill=(235, 235, 220))
    return night


def test_a_grainy_night_photo_on_a_near_black_theme_is_found_and_matched(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The photo's levels straddle the theme's (16, 16, 20): most of its pixels
    # are within 8 levels of it, so only the faint search (3 levels, just above
    # the JPEG shift of a flat background) tells photo from background.
    nights = [night_photo(seed) for seed in range(10, 20)]
    references = [reference_hash_set(np.asarray(night)) for night in nights]
    shots = [jpeg_round_trip(screenshot_of(night, dark=True)) for night in nights]

    def matched() -> int:
        return sum(
            match_sets(reference, query_hash_set(shot)).matched
            for reference, shot in zip(references, shots, strict=True)
        )

    assert matched() >= 9
    located = [content_regions(shot)[0] for shot in shots]
    assert (
        sum(
            region.top == pytest.approx(260 / 1440, abs=0.015)
            and region.height == pytest.approx(300 * 560 / 400 / 1440, abs=0.02)
            for region in located
        )
        >= 9
    )
    # Without the faint search, the region found is the whole screen above the
    # input bar, and not one copy is matched.
    monkeypatch.setattr(robust, "REGION_TOLERANCES", robust.REGION_TOLERANCES[:-1])
    assert matched() == 0


def test_a_sticker_over_one_half_is_matched_through_the_other_half(
    original: Image.Image, reference: tuple[DerivedHash, ...]
) -> None:
    stickered = original.copy()
    draw = ImageDraw.Draw(stickered)
    draw.ellipse((40, 40, 200, 200), fill=(255, 204, 51), outline=(120, 80, 0), width=8)
    draw.ellipse((90, 90, 110, 110), fill=(60, 40, 0))
    query = query_hash_set(jpeg_round_trip(stickered))
    verdict = match_sets(reference, query)
    assert verdict.matched
    assert verdict.best is not None
    assert verdict.best.reference_kind.startswith("half-") or verdict.best.distance <= 28


def sticker(image: Image.Image, centre: tuple[int, int], radius: int) -> Image.Image:
    """``image`` with a round yellow emoji face (outline, eyes, mouth) drawn over it."""
    out = image.copy()
    draw = ImageDraw.Draw(out)
    x, y = centre
    draw.ellipse(
        (x - radius, y - radius, x + radius, y + radius),
        fill=(255, 204, 51),
        outline=(120, 80, 0),
        width=max(1, radius // 10),
    )
    for eye in (x - radius // 3, x + radius // 3):
        draw.ellipse((eye - 6, y - radius // 3, eye + 6, y - radius // 3 + 12), fill=(60, 40, 0))
    draw.arc((x - radius // 2, y, x + radius // 2, y + radius // 2), 20, 160, fill=(60, 40, 0))
    return out


def test_a_sticker_over_the_centre_is_matched_with_the_sticker_covered() -> None:
    # The query's copy with the sticker covered by its surroundings comes back
    # within 31 of the photograph itself.
    photograph = Image.fromarray(data.coffee())
    reference = reference_hash_set(np.asarray(photograph))
    copy = jpeg_round_trip(sticker(photograph, (300, 200), 60))
    query = query_hash_set(copy)
    covered = [h for h in query if h.kind.startswith("uncovered")]
    assert [h.kind for h in covered] == ["uncovered0"]
    assert plain_distance(np.asarray(photograph), copy) > PLAIN_THRESHOLD
    verdict = match_sets(reference, covered)
    assert verdict.matched, verdict
    assert verdict.best is not None
    assert verdict.best.reference_kind == "dihedral/original"


def test_a_corner_crop_of_a_photo_with_a_dark_edge_is_hashed_as_a_crop_of_the_whole() -> None:
    # The moon's dark sky reads as a border to the trim; a copy cropped to a corner
    # between the reference's corner crops (8 % and 12 %) is only met by the
    # query's refined windows of the whole picture, not of the trimmed one.
    photograph = Image.fromarray(data.moon()).convert("RGB")
    reference = reference_hash_set(np.asarray(photograph))
    cut = round(photograph.width * 0.095)
    cropped = photograph.crop((0, cut, photograph.width - cut, photograph.height))
    copy = jpeg_round_trip(Image.fromarray(jpeg_round_trip(cropped, quality=80)))
    query = query_hash_set(copy)
    whole = [h for h in query if h.kind.endswith("-whole")]
    assert whole, "the trim found no border: the premise of this test is gone"
    verdict = match_sets(reference, query)
    assert verdict.matched, verdict
    assert verdict.best is not None
    assert verdict.best.query_kind.endswith("-whole")
    assert not match_sets(reference, [h for h in query if h not in whole]).matched


@pytest.mark.parametrize("name", ["coffee", "camera"])
def test_a_corner_crop_between_reference_cuts_is_found_when_a_photo_was_found_inside(
    name: str,
) -> None:
    # In these plain photographs the region search finds a "photo" (a flat or
    # dark side reads as a canvas). A copy keeping the bottom-right 80 % of the
    # area (10.6 % cut at the top-left, between the reference's 8 % and 12 %
    # corner crops) is only met by the trimmed picture's quarter-step windows.
    photograph = Image.fromarray(getattr(data, name)()).convert("RGB")
    reference = reference_hash_set(np.asarray(photograph))
    keep = 0.8**0.5
    left = round(photograph.width * (1 - keep))
    top = round(photograph.height * (1 - keep))
    cropped = photograph.crop((left, top, photograph.width, photograph.height))
    copy = jpeg_round_trip(Image.fromarray(jpeg_round_trip(cropped, quality=80)))
    query = query_hash_set(copy)
    steps = [h for h in query if h.kind.startswith("step-") and h.kind.endswith("-trimmed")]
    assert steps, "no photo was found inside: the premise of this test is gone"
    verdict = match_sets(reference, query)
    assert verdict.matched, verdict
    assert verdict.best is not None
    assert verdict.best.query_kind in {h.kind for h in steps}
    assert not match_sets(reference, [h for h in query if h not in steps]).matched


@pytest.mark.parametrize("name", ["astronaut", "coffee", "chelsea", "rocket", "camera"])
def test_no_overlay_is_found_in_a_plain_photograph(name: str) -> None:
    # Natural photographs have no flat, saturated, compact blob: their query sets
    # carry no covered copy (which would only cost a hash).
    photograph = np.asarray(Image.fromarray(getattr(data, name)()).convert("RGB"))
    assert [h.kind for h in query_hash_set(photograph) if h.kind.startswith("uncovered")] == []


def test_content_regions_find_nothing_in_a_plain_photo() -> None:
    assert content_regions(np.asarray(photo_like(14))) == ()


def test_match_uses_the_tighter_threshold_of_the_pair() -> None:
    zero = PdqHash(bytes(32), 100)
    near = PdqHash(b"\xff" * 3 + bytes(29), 100)  # 24 bits away
    assert match_sets([DerivedHash("crop", zero, 28)], [DerivedHash("whole", near, 31)]).matched
    verdict = match_sets([DerivedHash("crop", zero, 20)], [DerivedHash("whole", near, 31)])
    assert not verdict.matched
    assert verdict.distance == 24
    assert not match_sets([], [DerivedHash("whole", near, 31)]).matched


def test_decode_picture_applies_exif_orientation_and_refuses_bad_input() -> None:
    image = photo_like(15, size=(320, 200))
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: a viewer turns it 90 degrees clockwise
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90, exif=exif)
    assert decode_picture(buffer.getvalue(), HashOptions()).shape == (320, 200, 3)
    with pytest.raises(EmptyFileError):
        decode_picture(b"", HashOptions())
    with pytest.raises(UnsupportedMediaError):
        decode_picture(b"plain text, not a picture at all", HashOptions())


def test_hash_sets_refuse_arrays_that_are_not_pictures() -> None:
    with pytest.raises(InvalidInputError):
        query_hash_set(np.zeros((10, 10, 3), dtype=np.float32))
    with pytest.raises(InvalidInputError):
        reference_hash_set(np.zeros((10, 10, 3, 2), dtype=np.uint8))
