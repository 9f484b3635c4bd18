"""The one hash-set definition (static/portal/hashset.json), read by Python and JavaScript."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from redress.config import Settings
from redress.signals.robust import reference_kinds, reference_threshold
from redress.signals.types import PdqHash
from redress.web.errors import HashSetInvalidError
from redress.web.hashset import (
    load_hash_set_spec,
    parse_hash_set_spec,
    parse_image_hash_set,
    parse_video_hash_set,
    portal_static_dir,
)

if TYPE_CHECKING:
    from playwright.sync_api import Page

PDQ = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"


def good_image() -> dict[str, Any]:
    return {
        "md5": "d35c785545392755e7e4164457657269",
        "sha256": "b5b0799616df52d475a3968dc7e54f1d0724c912244ffa6175bc786375dd7298",
        "pdq": PDQ,
        "quality": 100,
        "dihedral": [PDQ] * 8,
        "robust": [
            {"kind": 0, "pdq": PDQ, "quality": 100},
            {"kind": 60, "pdq": PDQ, "quality": 90},
        ],
    }


def good_video() -> dict[str, Any]:
    return {
        "md5": "d35c785545392755e7e4164457657269",
        "vpdq": [{"frame": 0, "quality": 100, "pdq": PDQ, "ts": 0.0}],
    }


# Broken hash sets and the problems both implementations must report, word for word.
BROKEN: list[tuple[str, Any, list[str]]] = [
    (
        "image",
        {**good_image(), "pdq": PDQ.upper()},
        ["image.pdq: expected 64 lowercase hex digits"],
    ),
    ("image", {**good_image(), "md5": "abc"}, ["image.md5: expected 32 lowercase hex digits"]),
    ("image", {**good_image(), "quality": 101}, ["image.quality: 101 is outside 0..100"]),
    ("image", {**good_image(), "quality": 7.5}, ["image.quality: expected an integer"]),
    ("image", {**good_image(), "quality": "100"}, ["image.quality: expected an integer"]),
    (
        "image",
        {**good_image(), "dihedral": [PDQ] * 7},
        ["image.dihedral: expected 8 entries, got 7"],
    ),
    (
        "image",
        {**good_image(), "dihedral": [PDQ] * 7 + ["zz"]},
        ["image.dihedral[7]: expected 64 lowercase hex digits"],
    ),
    ("image", {k: v for k, v in good_image().items() if k != "sha256"}, ["image.sha256: missing"]),
    (
        "image",
        {**good_image(), "thumbnail": "data:image/jpeg;base64,AAAA"},
        ["image.thumbnail: not part of the hash set"],
    ),
    (
        "image",
        {**good_image(), "robust": [{"kind": 0, "pdq": PDQ, "quality": 100}] * 65},
        ["image.robust: expected at most 64 entries, got 65"],
    ),
    (
        "image",
        {**good_image(), "robust": [{"kind": 63, "pdq": PDQ, "quality": 100}]},
        ["image.robust[0].kind: 63 is outside 0..62"],
    ),
    (
        "image",
        {**good_image(), "robust": [{"kind": 1, "pdq": PDQ, "quality": 100, "threshold": 99}]},
        ["image.robust[0].threshold: not part of the hash set"],
    ),
    ("video", {**good_video(), "vpdq": {}}, ["video.vpdq: expected a list"]),
    (
        "video",
        {**good_video(), "vpdq": [{"frame": -1, "quality": 100, "pdq": PDQ, "ts": 0}]},
        ["video.vpdq[0].frame: -1 is outside 0..inf"],
    ),
    (
        "video",
        {**good_video(), "vpdq": [{"frame": 0, "quality": 100, "pdq": PDQ}]},
        ["video.vpdq[0].ts: missing"],
    ),
    ("video", [], ["video: expected an object"]),
]


def test_the_definition_ships_with_the_portal_assets() -> None:
    static = portal_static_dir()
    assert {"hashset.json", "hashing.js", "pdq.js", "worker.js", "md5.js", "exif.js"} <= {
        p.name for p in static.iterdir()
    }
    spec = load_hash_set_spec()
    assert set(spec.image) == {"md5", "sha256", "pdq", "quality", "dihedral", "robust"}
    # The browser and the server name the same reference kinds in the same order.
    assert spec.image["robust"].order == reference_kinds()
    assert set(spec.video) == {"md5", "vpdq"}
    assert spec.dihedral_order[0] == "original"
    assert len(spec.dihedral_order) == 8


def test_the_quality_floor_is_the_servers() -> None:
    assert load_hash_set_spec().pdq_min_quality == Settings().pdq_quality_min


def test_good_hash_sets_parse_to_typed_values() -> None:
    spec = load_hash_set_spec()
    image = parse_image_hash_set(good_image(), spec)
    assert image.pdq == PdqHash.from_hex(PDQ, 100)
    assert len(image.dihedral) == 8
    # The radii come from the kinds, never from the client.
    assert [(h.kind, h.threshold) for h in image.robust] == [
        ("dihedral/original", 31),
        (reference_kinds()[60], reference_threshold(reference_kinds()[60])),
    ]
    video = parse_video_hash_set(good_video(), spec)
    assert video.vpdq[0].pdq.quality == 100
    assert video.vpdq[0].ts == 0.0


@pytest.mark.parametrize(("kind", "record", "problems"), BROKEN)
def test_broken_hash_sets_are_refused_with_the_reason(
    kind: str, record: Any, problems: list[str]
) -> None:
    spec = load_hash_set_spec()
    assert spec.problems(kind, record) == problems  # type: ignore[arg-type]
    parse = parse_image_hash_set if kind == "image" else parse_video_hash_set
    with pytest.raises(HashSetInvalidError) as caught:
        parse(record, spec)
    assert caught.value.code == "bad_hash_set"
    assert problems[0] in caught.value.message


def test_a_robust_set_naming_a_kind_twice_is_refused() -> None:
    twice = {**good_image(), "robust": [{"kind": 3, "pdq": PDQ, "quality": 100}] * 2}
    with pytest.raises(HashSetInvalidError, match="repeats a kind"):
        parse_image_hash_set(twice, load_hash_set_spec())


def test_an_unknown_rule_type_in_the_definition_is_refused() -> None:
    raw = json.loads((portal_static_dir() / "hashset.json").read_text(encoding="utf-8"))
    raw["image"]["pdq"]["type"] = "colour"
    with pytest.raises(HashSetInvalidError, match=r"image\.pdq"):
        parse_hash_set_spec(json.dumps(raw))


def test_the_browser_reports_the_same_problems_as_the_server(harness_page: Page) -> None:
    cases = [(kind, record) for kind, record, _ in BROKEN] + [
        ("image", good_image()),
        ("video", good_video()),
    ]
    from_js = harness_page.evaluate(
        """async (cases) => {
          const { checkHashSet } = await import("/static/portal/hashing.js");
          return cases.map(([kind, record]) => checkHashSet(kind, record));
        }""",
        cases,
    )
    spec = load_hash_set_spec()
    assert from_js == [spec.problems(kind, record) for kind, record in cases]
