"""Shared pieces of the fuzz tests: the example budget, byte mutation, documented codes.

``REDRESS_FUZZ_EXAMPLES`` sets how many examples each fuzz test draws (default
40, so the suite stays quick); a long run is e.g.
``REDRESS_FUZZ_EXAMPLES=5000 pytest tests/hardening -k fuzz``. Inputs are
bounded in size, so time and memory are bounded; there is no wall-clock
deadline (the machine is shared).
"""

from __future__ import annotations

import copy
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from redress.errors import RedressError

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = int(os.environ.get("REDRESS_FUZZ_EXAMPLES", "40"))


def fuzz(share: float = 1.0) -> settings:
    """Hypothesis settings for one fuzz test: ``share`` of the example budget."""
    return settings(
        max_examples=max(5, int(EXAMPLES * share)),
        deadline=None,
        # No example database: the inputs (packages, keys, pictures) are made afresh each
        # run, so a replayed example from an earlier run draws differently and hypothesis
        # calls the strategy flaky. Findings become explicit regression tests instead.
        database=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.function_scoped_fixture,
            HealthCheck.data_too_large,
        ],
    )


def documented_codes() -> frozenset[str]:
    """Every error code docs/errors.md lists (first column of its tables)."""
    text = (REPO / "docs" / "errors.md").read_text(encoding="utf-8")
    return frozenset(re.findall(r"^\| `([a-z0-9_]+)` \|", text, flags=re.MULTILINE))


CODES = documented_codes()


def assert_documented(exc: BaseException) -> None:
    """``exc`` is a Redress error with a code docs/errors.md lists and a message."""
    assert isinstance(exc, RedressError), f"undocumented failure {type(exc).__name__}: {exc}"
    assert exc.code in CODES, f"code {exc.code!r} is not in docs/errors.md ({exc.message})"
    assert exc.message


@dataclass(frozen=True)
class Mutation:
    """A few bytes changed, a run inserted or deleted, and a cut, at positions taken
    modulo the sample's length: the same recipe applies to any sample, so what
    hypothesis draws never depends on the bytes it damages."""

    changes: tuple[tuple[int, int], ...]
    insert: tuple[int, bytes] | None
    delete: tuple[int, int] | None
    cut: int | None

    def apply(self, data: bytes) -> bytes:
        """``data`` damaged by this recipe."""
        sample = bytearray(data)
        for index, value in self.changes:
            if sample:
                sample[index % len(sample)] = value
        if self.insert is not None:
            at, run = self.insert
            at %= max(1, len(sample))
            sample[at:at] = run
        if self.delete is not None:
            at, length = self.delete
            at %= max(1, len(sample))
            del sample[at : at + length]
        if self.cut is not None:
            return bytes(sample[: 1 + self.cut % max(1, len(sample))])
        return bytes(sample)


_POSITION = st.integers(0, 2**24)
MUTATIONS = st.builds(
    Mutation,
    changes=st.lists(st.tuples(_POSITION, st.integers(0, 255)), max_size=8).map(tuple),
    insert=st.none() | st.tuples(_POSITION, st.binary(min_size=1, max_size=64)),
    delete=st.none() | st.tuples(_POSITION, st.integers(1, 256)),
    cut=st.none() | _POSITION,
)


def mutated(samples: list[bytes]) -> st.SearchStrategy[bytes]:
    """One of ``samples`` damaged by a :class:`Mutation`."""
    return st.tuples(st.sampled_from(samples), MUTATIONS).map(lambda pair: pair[1].apply(pair[0]))


PDQ = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"
MD5 = "d35c785545392755e7e4164457657269"
JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=80),
    st.sampled_from([PDQ, MD5, PDQ.upper(), PDQ[:-1], "../x", "", "0" * 64, "image", "video"]),
)
JSON = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=6)
    ),
    max_leaves=30,
)


@st.composite
def damaged_json(draw: st.DrawFn, document: Any) -> Any:
    """``document`` with a few values replaced by arbitrary JSON (or keys removed)."""
    doc = copy.deepcopy(document)
    for _ in range(draw(st.integers(1, 4))):
        node = doc
        while isinstance(node, dict | list) and node and draw(st.booleans()):
            key = draw(
                st.sampled_from(sorted(node) if isinstance(node, dict) else range(len(node)))
            )
            child = node[key]
            if not isinstance(child, dict | list) or not child:
                if draw(st.booleans()):
                    node[key] = draw(JSON)
                elif isinstance(node, dict):
                    del node[key]
                break
            node = child
        else:
            if isinstance(node, dict):
                node[
                    draw(
                        st.sampled_from(
                            ["photo", "video", "document", "chat", "date", "from", "text"]
                        )
                    )
                ] = draw(JSON)
    return doc
