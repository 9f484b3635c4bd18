"""RFC 8785 JSON Canonicalization Scheme (JCS) for the values Redress writes.

Ledger entries are hashed byte for byte, so the same facts must always give the
same bytes. JCS fixes that: object members sorted by their UTF-16 code units,
no insignificant whitespace, strings escaped exactly as ECMAScript's
``JSON.stringify`` does, and numbers printed as ECMAScript prints an IEEE 754
double. Integers beyond 2**53 cannot survive that round trip and are refused,
as are NaN and the infinities (they have no JSON form).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import TypeAlias

from redress.evidence.errors import CanonicalJsonError

JsonValue: TypeAlias = (
    "bool | int | float | str | Sequence[JsonValue] | Mapping[str, JsonValue] | None"
)
"""What may appear in a ledger entry or a capture record."""

MAX_SAFE_INTEGER = 2**53 - 1


def canonical_json(value: JsonValue) -> bytes:
    """Serialise ``value`` as RFC 8785 canonical JSON, UTF-8 encoded."""
    if _plain(value):
        # Without floats, and with keys below U+D800 (where code-point order and
        # UTF-16 order agree), the C encoder already writes exactly JCS.
        text = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    else:
        parts: list[str] = []
        _write(value, parts)
        text = "".join(parts)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise CanonicalJsonError("a string holds a lone UTF-16 surrogate") from exc


def _plain(value: JsonValue) -> bool:
    """True when ``value`` has no floats, no unsafe integers and only low-plane keys."""
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return True
    if kind is int:
        if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:  # type: ignore[operator]
            return True
        raise CanonicalJsonError(
            f"integer {value} is outside the IEEE 754 safe range; write it as a string"
        )
    if isinstance(value, Mapping):
        for key, item in value.items():
            if type(key) is not str or not (key.isascii() or max(key) < "\ud800"):
                return False
            if not _plain(item):
                return False
        return True
    if kind is list or kind is tuple:
        return all(_plain(item) for item in value)  # type: ignore[union-attr]
    return False  # floats, int subclasses and anything unusual take the careful path


def _write(value: JsonValue, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            raise CanonicalJsonError(
                f"integer {value} is outside the IEEE 754 safe range; write it as a string"
            )
        out.append(str(value))
    elif isinstance(value, float):
        out.append(format_number(value))
    elif isinstance(value, str):
        out.append(_string(value))
    elif isinstance(value, Mapping):
        keys = list(value)
        for key in keys:
            if not isinstance(key, str):
                raise CanonicalJsonError(f"object key {key!r} is not a string")
        out.append("{")
        # RFC 8785 3.2.3: sort by UTF-16 code units, not by code points.
        for i, key in enumerate(sorted(keys, key=lambda k: k.encode("utf-16-be", "surrogatepass"))):
            if i:
                out.append(",")
            out.append(_string(key))
            out.append(":")
            _write(value[key], out)
        out.append("}")
    elif isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _write(item, out)
        out.append("]")
    else:
        raise CanonicalJsonError(f"a {type(value).__name__} has no JSON form")


def _string(value: str) -> str:
    # Python's escaper matches ECMAScript's for ensure_ascii=False: \b \t \n \f \r,
    # other controls as lower-case \u00xx, everything else literal.
    return json.dumps(value, ensure_ascii=False)


def format_number(value: float) -> str:
    """Print a double as ECMAScript's Number.prototype.toString does (RFC 8785 3.2.2.3)."""
    if math.isnan(value) or math.isinf(value):
        raise CanonicalJsonError("NaN and Infinity have no JSON form")
    if value == 0:
        return "0"  # also for -0.0
    sign = "-" if value < 0 else ""
    # repr() gives the shortest digit string that round-trips, as ECMAScript requires.
    text = repr(abs(value))
    mantissa, _, exp_text = text.partition("e")
    exponent = int(exp_text) if exp_text else 0
    whole, _, fraction = mantissa.partition(".")
    digits = whole + fraction
    point = len(whole) + exponent
    stripped = digits.lstrip("0")
    point -= len(digits) - len(stripped)
    digits = stripped.rstrip("0") or "0"
    k, n = len(digits), point
    if k <= n <= 21:
        body = digits + "0" * (n - k)
    elif 0 < n <= 21:
        body = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        body = "0." + "0" * (-n) + digits
    else:
        e = n - 1
        exp = f"e{'+' if e >= 0 else '-'}{abs(e)}"
        body = (digits if k == 1 else digits[0] + "." + digits[1:]) + exp
    return sign + body
