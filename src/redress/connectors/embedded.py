"""An in-process :class:`MediaSink` that really hashes and matches: the stand-in pipeline.

Until the pipeline domain (hash -> match -> policy -> outcome, with the evidence
service) is merged, ``redress telegram run``, ``redress import telegram-export``
and ``redress bench telegram`` use this sink. It is small but real:

* images (photos, static stickers, image documents) are decoded with Pillow
  (EXIF orientation applied, palette/CMYK converted to RGB) and hashed with
  Meta's PDQ (``pdqhash``); hashes below the quality floor are not matched;
* every hash is searched in a :class:`~redress.index.PdqIndex` (brute force);
* evidence is captured before the decision is returned: the original bytes,
  their SHA-256 and the message facts are written under ``evidence_dir``
  (content-addressed, written atomically), and the decision names it;
* policy: a match -> act (delete + notice); a sender's second match -> ban too;
  video is not matched here (vPDQ lives in the pipeline) and goes to review
  only when it could not be fetched at all.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import io
import json
import os
import tempfile
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pdqhash
from PIL import Image, ImageOps, UnidentifiedImageError

from redress.connectors.interfaces import (
    ActionKind,
    Decision,
    IncomingMedia,
    MediaKind,
    Outcome,
    TooLarge,
    UserReport,
)
from redress.errors import InvalidInputError
from redress.index.interfaces import PdqIndex
from redress.signals.types import parse_pdq_hex

_IMAGE_KINDS = frozenset({MediaKind.PHOTO, MediaKind.STICKER})


class UnreadableMediaError(InvalidInputError):
    """Bytes that do not decode as the image they claim to be."""

    code = "unreadable_media"


def pdq_of_image(data: bytes, max_pixels: int = 100_000_000) -> tuple[bytes, int]:
    """PDQ hash (32 bytes, Meta's bit order) and quality of an encoded image."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.width * image.height > max_pixels:
                raise UnreadableMediaError(
                    f"image of {image.width}x{image.height} pixels exceeds {max_pixels}"
                )
            upright = ImageOps.exif_transpose(image).convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise UnreadableMediaError(f"cannot decode image: {exc}") from exc
    bits, quality = pdqhash.compute(np.asarray(upright, dtype=np.uint8))
    return np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes(), int(quality)


def _is_image(media: IncomingMedia) -> bool:
    if media.kind in _IMAGE_KINDS:
        return True
    return media.kind is MediaKind.DOCUMENT and (media.mime_type or "").startswith("image/")


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class EmbeddedSink:
    """Hash, match, capture evidence, decide: in process, against one PDQ index."""

    def __init__(
        self,
        index: PdqIndex,
        labels: Mapping[int, str],
        evidence_dir: Path,
        *,
        threshold: int = 31,
        quality_min: int = 50,
    ) -> None:
        self.index = index
        self.labels = dict(labels)
        self.evidence_dir = evidence_dir
        self.threshold = threshold
        self.quality_min = quality_min
        self._matches_by_sender: Counter[tuple[int, int]] = Counter()
        self.reports: list[UserReport] = []

    @classmethod
    def from_hash_lines(
        cls, index: PdqIndex, lines: Iterable[str], evidence_dir: Path, **kwargs: Any
    ) -> EmbeddedSink:
        """Load ``PDQHEX[,label]`` lines (``#`` comments allowed) into ``index``."""
        labels: dict[int, str] = {}
        for number, line in enumerate(lines, start=1):
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            hex_part, _, label = text.partition(",")
            index.add(number, [parse_pdq_hex(hex_part)])
            labels[number] = label.strip() or f"entry-{number}"
        return cls(index, labels, evidence_dir, **kwargs)

    def _capture(self, media: IncomingMedia, data: bytes, what: str) -> str:
        digest = hashlib.sha256(data).hexdigest()
        folder = self.evidence_dir / digest[:2] / digest
        item = folder / "original"
        if not item.exists():
            _atomic_write(item, data)
        facts = dataclasses.asdict(media.message)
        record = {
            "sha256": digest,
            "what": what,
            "kind": str(media.kind),
            "origin": str(media.origin),
            "platform_file_id": media.platform_file_id,
            "message": facts,
        }
        name = f"{media.message.chat_id}_{media.message.message_id}_{what}.json"
        _atomic_write(folder / name, json.dumps(record, default=str, indent=1).encode())
        return f"sha256:{digest}"

    async def receive(self, media: IncomingMedia) -> Decision:
        """Hash and match one item; capture evidence for a match before deciding."""
        if isinstance(media.content, TooLarge):
            return Decision(Outcome.REVIEW, reason=f"not fetched: {media.content.reason}")
        if not _is_image(media):
            return Decision(Outcome.IGNORE, reason="video is matched by the pipeline (vPDQ)")
        # In a worker thread: Pillow's decoding releases the GIL, so chats overlap.
        bits, quality = await asyncio.to_thread(pdq_of_image, media.content)
        if quality < self.quality_min:
            return Decision(Outcome.IGNORE, reason=f"not hashable reliably (quality {quality})")
        hits = self.index.search(bits, self.threshold)
        if not hits:
            return Decision(Outcome.IGNORE, reason="no match")
        evidence = self._capture(media, media.content, "match")
        actions = [ActionKind.DELETE_MESSAGE, ActionKind.POST_NOTICE]
        sender = media.message.sender
        if sender is not None and sender.id is not None:
            key = (media.message.chat_id, sender.id)
            self._matches_by_sender[key] += 1
            if self._matches_by_sender[key] >= 2:  # ban on the second confirmed match
                actions.append(ActionKind.BAN_SENDER)
        matches = tuple(
            f"{self.labels.get(hit.entry_id, hit.entry_id)}@{hit.distance}" for hit in hits
        )
        return Decision(Outcome.ACT, tuple(actions), evidence, matches, reason="pdq match")

    async def report(self, report: UserReport) -> str:
        """Keep the report (and capture each reported item) for review; return its reference."""
        for media in report.media:
            if isinstance(media.content, bytes):
                self._capture(media, media.content, "report")
        self.reports.append(report)
        return f"R-{len(self.reports)}"
