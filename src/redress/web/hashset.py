"""The hash set the matcher needs for one victim file, defined once.

The definition lives in ``static/portal/hashset.json``, next to the portal's
JavaScript, which reads the same file: the browser computes exactly these
fields, and the server checks what it receives against them. Only these
fields ever leave the victim's device.

The JSON uses a deliberately tiny rule language that both sides interpret
the same way (``hex``, ``integer``, ``number``, ``array``, ``object``; every
field required, no extra fields), so a problem reads identically in the
browser and on the server.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Literal, cast

from redress.errors import InvalidInputError
from redress.signals.robust import DerivedHash, reference_from_members
from redress.signals.types import PdqHash
from redress.web.errors import HashSetInvalidError

RuleType = Literal["hex", "integer", "number", "array", "object"]
Kind = Literal["image", "video"]
_RULE_TYPES: frozenset[str] = frozenset({"hex", "integer", "number", "array", "object"})
_LOWER_HEX = frozenset("0123456789abcdef")


def portal_static_dir() -> Path:
    """Folder of the portal's static assets (pdq.js, hashing.js, worker.js, hashset.json)."""
    return Path(str(resources.files("redress.web") / "static" / "portal"))


@dataclass(frozen=True, slots=True)
class FieldRule:
    """One field's rule from hashset.json."""

    type: RuleType
    length: int | None = None
    max_length: int | None = None
    minimum: float | None = None
    maximum: float | None = None
    items: FieldRule | None = None
    fields: Mapping[str, FieldRule] = field(default_factory=dict)
    order: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class HashSetSpec:
    """hashset.json, parsed: what the portal sends per image and per video."""

    version: int
    pdq_min_quality: int
    vpdq_seconds_per_hash: float
    image: Mapping[str, FieldRule]
    video: Mapping[str, FieldRule]

    @property
    def dihedral_order(self) -> tuple[str, ...]:
        """Names of the eight dihedral PDQ variants, in the order they are sent."""
        return self.image["dihedral"].order

    def problems(self, kind: Kind, hashes: object) -> list[str]:
        """Every way ``hashes`` (decoded JSON) breaks the rules for ``kind``; empty if none."""
        found: list[str] = []
        _check_fields(hashes, self.image if kind == "image" else self.video, kind, found)
        return found


def _rule(raw: object, where: str) -> FieldRule:
    if not isinstance(raw, dict) or raw.get("type") not in _RULE_TYPES:
        raise HashSetInvalidError(f"hashset.json: {where} has no known rule type")
    kind = cast(RuleType, raw["type"])
    items = _rule(raw["items"], f"{where}[]") if "items" in raw else None
    fields = {name: _rule(sub, f"{where}.{name}") for name, sub in raw.get("fields", {}).items()}
    return FieldRule(
        type=kind,
        length=raw.get("length"),
        max_length=raw.get("max_length"),
        minimum=raw.get("minimum"),
        maximum=raw.get("maximum"),
        items=items,
        fields=fields,
        order=tuple(raw.get("order", ())),
    )


def parse_hash_set_spec(text: str) -> HashSetSpec:
    """Parse the text of hashset.json."""
    raw = json.loads(text)
    return HashSetSpec(
        version=int(raw["version"]),
        pdq_min_quality=int(raw["pdq_min_quality"]),
        vpdq_seconds_per_hash=float(raw["vpdq_seconds_per_hash"]),
        image={name: _rule(rule, f"image.{name}") for name, rule in raw["image"].items()},
        video={name: _rule(rule, f"video.{name}") for name, rule in raw["video"].items()},
    )


def load_hash_set_spec() -> HashSetSpec:
    """The hash-set definition the portal's JavaScript also reads."""
    return parse_hash_set_spec((portal_static_dir() / "hashset.json").read_text(encoding="utf-8"))


def _number_text(value: float) -> str:
    # Written as JavaScript writes numbers, so messages match the browser's.
    return str(int(value)) if float(value).is_integer() else repr(value)


def _check_value(value: object, rule: FieldRule, path: str, found: list[str]) -> None:
    if rule.type == "hex":
        if not (
            isinstance(value, str) and len(value) == rule.length and _LOWER_HEX.issuperset(value)
        ):
            found.append(f"{path}: expected {rule.length} lowercase hex digits")
    elif rule.type in ("integer", "number"):
        numeric = isinstance(value, int | float) and not isinstance(value, bool)
        if not numeric or not math.isfinite(cast(float, value)):
            found.append(
                f"{path}: expected {'an integer' if rule.type == 'integer' else 'a number'}"
            )
            return
        number = cast(float, value)
        if rule.type == "integer" and not float(number).is_integer():
            found.append(f"{path}: expected an integer")
        elif (rule.minimum is not None and number < rule.minimum) or (
            rule.maximum is not None and number > rule.maximum
        ):
            low = "-inf" if rule.minimum is None else _number_text(rule.minimum)
            high = "inf" if rule.maximum is None else _number_text(rule.maximum)
            found.append(f"{path}: {_number_text(number)} is outside {low}..{high}")
    elif rule.type == "array":
        if not isinstance(value, list):
            found.append(f"{path}: expected a list")
            return
        if rule.length is not None and len(value) != rule.length:
            found.append(f"{path}: expected {rule.length} entries, got {len(value)}")
        if rule.max_length is not None and len(value) > rule.max_length:
            found.append(f"{path}: expected at most {rule.max_length} entries, got {len(value)}")
        if rule.items is not None:
            for index, item in enumerate(value):
                _check_value(item, rule.items, f"{path}[{index}]", found)
    else:
        _check_fields(value, rule.fields, path, found)


def _check_fields(
    value: object, fields: Mapping[str, FieldRule], path: str, found: list[str]
) -> None:
    if not isinstance(value, dict):
        found.append(f"{path}: expected an object")
        return
    for name, rule in fields.items():
        if name not in value:
            found.append(f"{path}.{name}: missing")
        else:
            _check_value(value[name], rule, f"{path}.{name}", found)
    found.extend(f"{path}.{name}: not part of the hash set" for name in value if name not in fields)


@dataclass(frozen=True, slots=True)
class ImageHashSet:
    """What the portal sends for one image. ``pdq.quality`` is PDQ's quality."""

    md5: str
    sha256: str
    pdq: PdqHash
    dihedral: tuple[PdqHash, ...]
    # The robust reference set (docs/robustness.md), radii set here from the kinds.
    robust: tuple[DerivedHash, ...] = ()


@dataclass(frozen=True, slots=True)
class VpdqFrame:
    """One sampled video frame: its ordinal, its time in seconds and its PDQ hash."""

    frame: int
    ts: float
    pdq: PdqHash


@dataclass(frozen=True, slots=True)
class VideoHashSet:
    """What the portal sends for one video."""

    md5: str
    vpdq: tuple[VpdqFrame, ...]


def _require(spec: HashSetSpec, kind: Kind, data: object) -> dict[str, object]:
    problems = spec.problems(kind, data)
    if problems:
        raise HashSetInvalidError(f"the {kind} hash set is not valid: " + "; ".join(problems))
    return cast(dict[str, object], data)


def parse_image_hash_set(data: object, spec: HashSetSpec) -> ImageHashSet:
    """Check decoded JSON from the portal against ``spec`` and type it."""
    record = _require(spec, "image", data)
    quality = cast(int, record["quality"])
    return ImageHashSet(
        md5=cast(str, record["md5"]),
        sha256=cast(str, record["sha256"]),
        pdq=PdqHash.from_hex(cast(str, record["pdq"]), quality),
        dihedral=tuple(
            PdqHash.from_hex(text, quality) for text in cast(list[str], record["dihedral"])
        ),
        robust=_robust_set(cast(list[dict[str, object]], record["robust"]), spec),
    )


def _robust_set(items: list[dict[str, object]], spec: HashSetSpec) -> tuple[DerivedHash, ...]:
    """The submitted reference set, typed; each kind at most once, radii from the kind."""
    order = spec.image["robust"].order
    kinds = [order[cast(int, item["kind"])] for item in items]
    if len(set(kinds)) != len(kinds):
        raise HashSetInvalidError("the image hash set is not valid: image.robust repeats a kind")
    hashes = [
        PdqHash.from_hex(cast(str, item["pdq"]), cast(int, item["quality"])) for item in items
    ]
    try:
        return reference_from_members(kinds, hashes)
    except InvalidInputError as exc:
        raise HashSetInvalidError(f"the image hash set is not valid: {exc.message}") from exc


def parse_video_hash_set(data: object, spec: HashSetSpec) -> VideoHashSet:
    """Check decoded JSON from the portal against ``spec`` and type it."""
    record = _require(spec, "video", data)
    frames = cast(list[dict[str, object]], record["vpdq"])
    return VideoHashSet(
        md5=cast(str, record["md5"]),
        vpdq=tuple(
            VpdqFrame(
                frame=int(cast(int, f["frame"])),
                ts=float(cast(float, f["ts"])),
                pdq=PdqHash.from_hex(cast(str, f["pdq"]), int(cast(int, f["quality"]))),
            )
            for f in frames
        ),
    )
