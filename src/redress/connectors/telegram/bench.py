"""``redress bench telegram``: bot throughput against the local fake Bot API, export rate.

Figures and their anchors, measured in the same run:

* ``bot_media_per_s``: photo messages fully handled by :class:`GroupGuard`
  (getUpdates, getFile, download, hash, match, evidence, actions, records,
  offset) per second. Anchors: the sink alone on the same images (the ceiling
  the connector's overhead is compared with) and the issue's target, 100/s.
* ``export_messages_per_s`` / ``export_media_per_s``: a generated export
  imported through the same sink. Anchor: ``ijson`` alone parsing the same file.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import ijson
import numpy as np
from sqlalchemy.orm import sessionmaker

from redress.connectors.embedded import EmbeddedSink, pdq_of_image
from redress.connectors.interfaces import (
    ActionKind,
    IncomingMedia,
    MediaKind,
    MediaOrigin,
    MessageFacts,
)
from redress.connectors.telegram.bot import GroupGuard, GuardOptions
from redress.connectors.telegram.client import BotApiClient
from redress.connectors.telegram.export import ExportImporter
from redress.connectors.telegram.fakeapi import FakeBotApi, chat, jpeg, user
from redress.connectors.telegram.store import GroupSettings, TelegramStore
from redress.index import BruteForceIndex
from redress.store.db import make_engine
from redress.store.migrate import upgrade

TARGET_MEDIA_PER_S = 100.0


@dataclass(frozen=True, slots=True)
class BenchResult:
    """Figures of one run."""

    messages: int
    bot_media_per_s: float
    sink_media_per_s: float
    export_messages: int
    export_media: int
    export_messages_per_s: float
    export_media_per_s: float
    ijson_messages_per_s: float
    bank_size: int

    def as_dict(self) -> dict[str, object]:
        """The figures with their anchors and ratios."""
        return {
            "bot": {
                "media_messages": self.messages,
                "media_per_s": _sig(self.bot_media_per_s),
                "anchor_sink_alone_per_s": _sig(self.sink_media_per_s),
                "ratio_to_sink_alone": _sig(self.bot_media_per_s / self.sink_media_per_s),
                "target_per_s": TARGET_MEDIA_PER_S,
                "ratio_to_target": _sig(self.bot_media_per_s / TARGET_MEDIA_PER_S),
                "bank_size": self.bank_size,
                "sink": "in-process EmbeddedSink (PDQ + brute-force index), pipeline not merged",
            },
            "export": {
                "messages": self.export_messages,
                "media": self.export_media,
                "messages_per_s": _sig(self.export_messages_per_s),
                "media_per_s": _sig(self.export_media_per_s),
                "anchor_sink_alone_media_per_s": _sig(self.sink_media_per_s),
                "media_ratio_to_sink_alone": _sig(self.export_media_per_s / self.sink_media_per_s),
                "anchor_ijson_parse_messages_per_s": _sig(self.ijson_messages_per_s),
                "ratio_to_ijson_parse": _sig(
                    self.export_messages_per_s / self.ijson_messages_per_s
                ),
            },
        }


def _sig(value: float) -> float:
    """Four significant figures: small ratios stay readable instead of rounding to 0."""
    return float(f"{value:.4g}")


def _sink(images: list[bytes], evidence: Path, bank_size: int) -> EmbeddedSink:
    rng = np.random.default_rng(7)
    index = BruteForceIndex()
    labels = {entry: f"bench/random-{entry}" for entry in range(1, bank_size + 1)}
    index.add_many(
        np.arange(1, bank_size + 1, dtype=np.int64),
        rng.integers(0, 256, size=(bank_size, 32), dtype=np.uint8),
    )
    for n, data in enumerate(images[::10], start=bank_size + 1):  # every 10th image is known
        index.add(n, [pdq_of_image(data)[0]])
        labels[n] = f"bench/known-{n}"
    return EmbeddedSink(index, labels, evidence)


async def _bot(
    work: Path, images: list[bytes], messages: int, bank_size: int
) -> tuple[float, float]:
    fake = FakeBotApi()
    groups = [fake.add_chat(chat(-1001000000000 - g, f"group {g}")) for g in range(10)]
    posters = [user(1000 + u, f"user {u}") for u in range(50)]
    for group in groups:
        for poster in posters:
            fake.add_member(group["id"], poster)
    sizes = [fake.photo_sizes(data) for data in images]
    for n in range(messages):
        group = groups[n % len(groups)]
        fake.push(
            "message", fake.message(group, posters[n % len(posters)], photo=sizes[n % len(sizes)])
        )
    url = f"sqlite:///{work / 'bench.db'}"
    upgrade(url)
    engine = make_engine(url)
    sessions = sessionmaker(engine, expire_on_commit=False)
    with sessions.begin() as session:  # notices are paced at 20/min per group by design
        for group in groups:
            TelegramStore(session).put_group(
                GroupSettings(
                    group["id"], outcomes=(ActionKind.DELETE_MESSAGE, ActionKind.BAN_SENDER)
                )
            )
    sink = _sink(images, work / "evidence-bot", bank_size)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=fake.app)) as http:
            api = BotApiClient(http, fake.token)
            guard = GroupGuard(
                api, sink, sessions, GuardOptions(portal_url="https://x/protect", poll_timeout=0)
            )
            start = time.perf_counter()
            handled = 0
            while handled < messages:
                handled += await guard.poll_once()
            await guard.poll_once()  # confirms the last offset
            bot_rate = messages / (time.perf_counter() - start)
            api.close()
    finally:
        engine.dispose()
    # Anchor: the same sink on the same images, no Telegram plumbing.
    anchor_sink = _sink(images, work / "evidence-anchor", bank_size)
    facts = MessageFacts(
        "telegram", -1, None, "supergroup", 1, None, None, dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    )
    start = time.perf_counter()
    for n in range(messages):
        await anchor_sink.receive(
            IncomingMedia(MediaKind.PHOTO, MediaOrigin.ARRIVAL, facts, images[n % len(images)])
        )
    sink_rate = messages / (time.perf_counter() - start)
    return bot_rate, sink_rate


async def _export(
    work: Path, images: list[bytes], messages: int, bank_size: int
) -> tuple[int, float, float]:
    folder = work / "export"
    (folder / "photos").mkdir(parents=True)
    names = []
    for n, data in enumerate(images):
        name = f"photos/photo_{n}@01-01-2024_00-00-00.jpg"
        (folder / name).write_bytes(data)
        names.append(name)
    media = 0
    with (folder / "result.json").open("w") as out:
        out.write('{"name": "Bench", "type": "private_supergroup", "id": 1234, "messages": [')
        for n in range(messages):
            msg: dict[str, object] = {
                "id": n + 1,
                "type": "message",
                "date": "2024-01-01T00:00:00",
                "date_unixtime": str(1704067200 + n),
                "from": "Someone",
                "from_id": f"user{n % 97}",
                "text": "an ordinary message",
                "text_entities": [{"type": "plain", "text": "an ordinary message"}],
            }
            if n % 5 == 0:
                msg["photo"] = names[n % len(names)]
                media += 1
            out.write(("," if n else "") + json.dumps(msg))
        out.write("]}")
    sink = _sink(images, work / "evidence-export", bank_size)
    start = time.perf_counter()
    async for _record in ExportImporter(sink).run(folder):
        pass
    elapsed = time.perf_counter() - start
    start = time.perf_counter()
    with (folder / "result.json").open("rb") as stream:
        parsed = sum(1 for _ in ijson.items(stream, "messages.item"))
    ijson_rate = parsed / (time.perf_counter() - start)
    return media, messages / elapsed, ijson_rate


def run_bench(
    messages: int = 1000, export_messages: int = 20_000, bank_size: int = 10_000
) -> BenchResult:
    """Run both benchmarks in a temporary folder."""
    images = [jpeg(512, 512, seed) for seed in range(40)]
    with tempfile.TemporaryDirectory(prefix="redress-bench-telegram-") as tmp:
        work = Path(tmp)
        bot_rate, sink_rate = asyncio.run(_bot(work, images, messages, bank_size))
        media, export_rate, ijson_rate = asyncio.run(
            _export(work, images, export_messages, bank_size)
        )
    return BenchResult(
        messages=messages,
        bot_media_per_s=bot_rate,
        sink_media_per_s=sink_rate,
        export_messages=export_messages,
        export_media=media,
        export_messages_per_s=export_rate,
        export_media_per_s=export_rate * media / export_messages,
        ijson_messages_per_s=ijson_rate,
        bank_size=bank_size,
    )
