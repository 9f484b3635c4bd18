"""Pydantic I/O of the REST API and the conversions to the pipeline's types."""

from __future__ import annotations

import string
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from redress.actions.interfaces import ActionTarget
from redress.errors import InvalidInputError
from redress.pipeline.interfaces import MatchQuery, VpdqQueryFrame
from redress.pipeline.service import ScanContext, ScanResult, result_json
from redress.signals.types import PdqHash

_HEX = frozenset(string.hexdigits)


class PdqIn(BaseModel):
    """A PDQ hash with its quality."""

    model_config = ConfigDict(extra="forbid")

    hash: str = Field(description="64 hex digits (Meta's form).")
    quality: int = Field(default=100, description="PDQ quality 0-100.")


class VpdqFrameIn(BaseModel):
    """One vPDQ frame of a video."""

    model_config = ConfigDict(extra="forbid")

    pdq: str = Field(description="64 hex digits.")
    quality: int = 100
    ts: float = 0.0


class TargetIn(BaseModel):
    """Where the item was seen (used by actions such as deleting the message)."""

    model_config = ConfigDict(extra="forbid")

    platform: str | None = Field(default=None, max_length=64)
    chat_id: str | None = Field(default=None, max_length=128)
    message_id: str | None = Field(default=None, max_length=128)
    user_id: str | None = Field(default=None, max_length=128)


class ScanHashesIn(BaseModel):
    """A scan by hashes: any of PDQ, MD5, SHA-256 and vPDQ frames, plus context."""

    model_config = ConfigDict(extra="forbid")

    pdq: list[str | PdqIn] = Field(default_factory=list, max_length=64)
    md5: str | None = None
    sha256: str | None = None
    vpdq: list[VpdqFrameIn] = Field(default_factory=list, max_length=100_000)
    caption: str | None = Field(default=None, max_length=8192)
    reporters: int = Field(default=0, ge=0, le=1_000_000)
    target: TargetIn | None = None
    banks: list[str] = Field(default_factory=list, max_length=100)
    idempotency_key: str | None = Field(
        default=None, max_length=255, description="Per item in a batch (else the header)."
    )


class BatchIn(BaseModel):
    """Several hash scans in one request; each is answered on its own."""

    model_config = ConfigDict(extra="forbid")

    items: list[ScanHashesIn]


class MatchOut(BaseModel):
    """A match as the submitter sees it (no distance: near misses are never shown)."""

    bank: str
    signal: str


class ItemErrorOut(BaseModel):
    """Why an item was dead-lettered."""

    code: str | None
    detail: str | None


class ScanOut(BaseModel):
    """The state and, when done, the outcome of one scanned item."""

    id: str
    status: str = Field(description="queued, done or dead")
    mode: str = Field(description="hashes or media")
    outcome: str | None = Field(description="ignore, review or act")
    priority: int | None
    matches: list[MatchOut]
    actions: list[str]
    personal_details: list[str]
    error: ItemErrorOut | None


class BatchItemOut(BaseModel):
    """One answer of a batch: a result, or an error in the envelope's shape."""

    ok: bool
    result: ScanOut | None = None
    error: str | None = None
    detail: str | None = None
    status: int


class BatchOut(BaseModel):
    """Answers in the order of the items."""

    results: list[BatchItemOut]


class HealthOut(BaseModel):
    """Liveness."""

    ok: bool
    version: str


class ReadyOut(BaseModel):
    """Readiness: each dependency's state."""

    ok: bool
    checks: dict[str, str]


class DeadLetterOut(BaseModel):
    """A dead-lettered item and the reason."""

    id: str
    mode: str
    source: str
    attempts: int
    error: str | None
    detail: str | None


def _hex(value: str | None, length: int, code: str, name: str) -> str | None:
    if value is None:
        return None
    text = value.strip().lower()
    if len(text) != length or not _HEX.issuperset(text):
        raise InvalidInputError(f"{name} must be {length} hex digits", code=code)
    return text


def to_query(body: ScanHashesIn) -> MatchQuery:
    """The match query of a hash scan; malformed hashes raise a specific 400."""
    pdq = tuple(
        PdqHash.from_hex(p) if isinstance(p, str) else PdqHash.from_hex(p.hash, p.quality)
        for p in body.pdq
    )
    frames = tuple(
        VpdqQueryFrame(PdqHash.from_hex(f.pdq, f.quality), f.quality, f.ts) for f in body.vpdq
    )
    query = MatchQuery(
        pdq=pdq,
        md5=_hex(body.md5, 32, "bad_md5", "md5"),
        sha256=_hex(body.sha256, 64, "bad_sha256", "sha256"),
        vpdq=frames,
        banks=tuple(body.banks),
    )
    if query.empty:
        raise InvalidInputError(
            "a hash scan needs at least one of pdq, md5, sha256 or vpdq", code="no_hashes"
        )
    return query


def to_context(
    source: str,
    *,
    caption: str | None,
    reporters: int,
    target: TargetIn | None,
    banks: list[str],
    callback_url: str | None = None,
) -> ScanContext:
    """The pipeline context of an API request (the source is the key's name)."""
    return ScanContext(
        source=source,
        caption=caption,
        reporters=reporters,
        target=ActionTarget(**target.model_dump()) if target is not None else ActionTarget(),
        banks=tuple(banks),
        callback_url=callback_url,
    )


def scan_out(result: ScanResult) -> dict[str, Any]:
    """The JSON body for a result (validated by :class:`ScanOut` in the schema)."""
    return result_json(result)
