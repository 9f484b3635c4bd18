"""``redress bench telegram``: bot throughput against the local fake Bot API, export rate.

Figures and their anchors, measured in the same run:

* ``bot_media_per_s``: photo messages fully handled by :class:`GroupGuard`
  (getUpdates, getFile, download, then the pipeline: accept, hash, match on the
  MIH index, policy, evidence capture for matches, outcome; then actions,
  records, offset) per second, against the fake Bot API served over HTTP on a
  loopback port by a child process (so the bot's HTTP client, its connection
  pool and its CPU time are the real ones). Anchors: the pipeline sink alone on
  the same images, one item at a time and in the bot's slices of 32
  (``receive_many``: the ceiling the connector's overhead is compared with),
  and the issue's target, 100/s. ``cpu_ms_per_message``: the bot process's CPU
  time (every thread) per message, beside the sink alone's;
  ``fake_server_cpu_ms_per_message``: the fake's process, which shares the
  machine's cores with the bot here (Telegram's servers would not). ``in_process_*``:
  the same run with the fake called in process through ``httpx.ASGITransport``
  (the bench's method before the HTTP server; no scheduling of a second
  process, but the fake's CPU time counts as the bot's).
* ``export_messages_per_s`` / ``export_media_per_s``: a generated export
  imported through the same sink. Anchor: ``ijson`` alone parsing the same file.

The bank (random PDQ hashes plus every 10th image, so a tenth of the media
match and are captured as evidence) is created through the store, in SQLite.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import multiprocessing
import os
import socket
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import ijson
import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from redress.config import Settings
from redress.connectors.interfaces import (
    ActionKind,
    IncomingMedia,
    MediaKind,
    MediaOrigin,
    MessageFacts,
)
from redress.connectors.sink import PipelineSink
from redress.connectors.telegram.bot import GroupGuard, GuardOptions
from redress.connectors.telegram.client import CLOUD_API_URL, BotApiClient
from redress.connectors.telegram.export import ExportImporter
from redress.connectors.telegram.fakeapi import FakeBotApi, chat, jpeg, user
from redress.connectors.telegram.runtime import pipeline_sink
from redress.connectors.telegram.store import GroupSettings, RecordKind, TelegramStore
from redress.errors import RedressError
from redress.pipeline.container import PipelineContainer
from redress.signals import HashOptions, SignalKind, hash_bytes
from redress.store.db import make_engine
from redress.store.interfaces import BankPurpose, EntryIn
from redress.store.media import entries_for_signals
from redress.store.migrate import upgrade
from redress.store.service import BankService

TARGET_MEDIA_PER_S = 100.0


@dataclass(frozen=True, slots=True)
class BenchResult:
    """Figures of one run."""

    messages: int
    bot_media_per_s: float
    sink_media_per_s: float
    bot_cpu_ms: float  # CPU milliseconds per message in the bot's process (all its threads)
    sink_cpu_ms: float  # the same for the sink alone
    fake_cpu_ms: float | None  # ... and in the fake Bot API's process (None: no /proc)
    sink_batched_media_per_s: float  # the sink alone, in the bot's slices (receive_many)
    sink_batched_cpu_ms: float
    asgi_media_per_s: float  # the bot with the fake called in process (no HTTP)
    asgi_cpu_ms: float  # ... and its CPU time per message, the fake's included
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
                "anchor_sink_batched_per_s": _sig(self.sink_batched_media_per_s),
                "ratio_to_sink_batched": _sig(self.bot_media_per_s / self.sink_batched_media_per_s),
                "target_per_s": TARGET_MEDIA_PER_S,
                "ratio_to_target": _sig(self.bot_media_per_s / TARGET_MEDIA_PER_S),
                "cpu_ms_per_message": _sig(self.bot_cpu_ms),
                "anchor_sink_alone_cpu_ms_per_message": _sig(self.sink_cpu_ms),
                "cpu_ratio_to_sink_alone": _sig(self.bot_cpu_ms / self.sink_cpu_ms),
                "anchor_sink_batched_cpu_ms_per_message": _sig(self.sink_batched_cpu_ms),
                "cpu_ratio_to_sink_batched": _sig(self.bot_cpu_ms / self.sink_batched_cpu_ms),
                "fake_server_cpu_ms_per_message": (
                    _sig(self.fake_cpu_ms) if self.fake_cpu_ms is not None else None
                ),
                "in_process_media_per_s": _sig(self.asgi_media_per_s),
                "in_process_ratio_to_sink_alone": _sig(
                    self.asgi_media_per_s / self.sink_media_per_s
                ),
                "in_process_cpu_ms_per_message": _sig(self.asgi_cpu_ms),
                "bank_size": self.bank_size,
                "sink": "PipelineSink: the pipeline (signals, store matcher on MihIndex, policy, "
                "evidence) on SQLite",
                "fake_server": "FakeBotApi (Starlette) under uvicorn, a forked child process on "
                "the same cores as the bot, over loopback TCP with Nagle off; it stands in for "
                "Telegram's servers, whose CPU would not be this machine's",
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


def _settings(work: Path, name: str) -> Settings:
    return Settings(home=work / name, database_url=f"sqlite:///{work / name / 'redress.db'}")


def _bank(settings: Settings, images: list[bytes], bank_size: int) -> None:
    """Random PDQ hashes plus every 10th image, in a moderator-confirmed bank (acts)."""
    (settings.home).mkdir(parents=True, exist_ok=True)
    url = settings.effective_database_url
    upgrade(url)
    rng = np.random.default_rng(7)
    random = rng.integers(0, 256, size=(bank_size, 32), dtype=np.uint8)
    options = HashOptions.from_settings(settings)
    engine = make_engine(url)
    try:
        with Session(engine) as session, session.begin():
            banks = BankService(session)
            banks.create("bench", BankPurpose.CONFIRMED_VIOLATIONS)
            banks.add("bench", [EntryIn(SignalKind.PDQ, bytes(row), quality=100) for row in random])
            for data in images[::10]:  # every 10th image is known
                banks.add("bench", entries_for_signals(hash_bytes(data, options)))
    finally:
        engine.dispose()


def _sink(
    settings: Settings, images: list[bytes], bank_size: int
) -> tuple[PipelineSink, PipelineContainer]:
    _bank(settings, images, bank_size)
    return pipeline_sink(settings)


def _scene(images: list[bytes], messages: int) -> tuple[FakeBotApi, list[int]]:
    """The fake Bot API with 10 groups, 50 posters and ``messages`` photo messages queued."""
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
    return fake, [group["id"] for group in groups]


@contextlib.contextmanager
def _served(fake: FakeBotApi) -> Iterator[tuple[str, int]]:
    """Serve the fake Bot API over HTTP on a loopback port, in a child process (Telegram's
    servers are not on the bot's CPU either); yield its base URL and process id."""
    # IPPROTO_TCP named, not left 0: asyncio turns Nagle's algorithm off (TCP_NODELAY) only
    # on sockets whose protocol says TCP, and accepted sockets inherit the listener's. With
    # it on, every small answer (getFile's JSON) waited for the bot's delayed ACK, about
    # 40 ms, on the fake's side of the wire; Telegram's servers do not do that.
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    port = listener.getsockname()[1]
    # fork: the child inherits the queued updates and files; nothing to pickle.
    server = multiprocessing.get_context("fork").Process(
        target=_serve, args=(fake, listener), daemon=True
    )
    server.start()
    listener.close()
    assert server.pid is not None
    try:
        yield f"http://127.0.0.1:{port}", server.pid
    finally:
        server.terminate()
        server.join(10)


def _serve(fake: FakeBotApi, listener: socket.socket) -> None:
    import uvicorn

    config = uvicorn.Config(fake.app, log_level="warning", access_log=False, lifespan="off")
    asyncio.run(uvicorn.Server(config).serve(sockets=[listener]))


async def _bot(
    work: Path, server: FakeBotApi | str, token: str, group_ids: list[int], messages: int,
    bank_size: int, images: list[bytes], server_pid: int | None = None,
) -> tuple[float, float, float | None]:  # fmt: skip
    """Media messages/s through the guard, its CPU seconds per message (this process:
    the guard, the sink, the pipeline; and the fake server when it runs in process), and
    the served fake's CPU seconds per message (when ``server_pid`` is given).

    ``server`` is the URL of the fake served over HTTP, or the fake itself, called in
    process through ``httpx.ASGITransport`` (no sockets, no second process)."""
    settings = _settings(work, f"bot-{'http' if isinstance(server, str) else 'asgi'}")
    sink, pipeline = _sink(settings, images, bank_size)
    engine = make_engine(settings.effective_database_url)
    sessions = sessionmaker(engine, expire_on_commit=False)
    with sessions.begin() as session:  # notices are paced at 20/min per group by design
        for group_id in group_ids:
            TelegramStore(session).put_group(
                GroupSettings(group_id, outcomes=(ActionKind.DELETE_MESSAGE, ActionKind.BAN_SENDER))
            )
    try:
        if isinstance(server, str):
            http = httpx.AsyncClient(timeout=60.0)  # one pool: connections kept and reused
            base_url = server
        else:
            http = httpx.AsyncClient(transport=httpx.ASGITransport(app=server.app))
            base_url = CLOUD_API_URL
        async with http:
            api = BotApiClient(http, token, base_url=base_url)
            guard = GroupGuard(
                api, sink, sessions, GuardOptions(portal_url="https://x/protect", poll_timeout=0)
            )
            await guard.start()
            fake_cpu = _child_cpu_seconds(server_pid)
            start, cpu = time.perf_counter(), time.process_time()
            handled = 0
            while handled < messages:
                handled += await guard.poll_once()
            await guard.poll_once()  # confirms the last offset
            bot_rate = messages / (time.perf_counter() - start)
            bot_cpu = (time.process_time() - cpu) / messages
            fake_after = _child_cpu_seconds(server_pid)
            fake_per_message = (
                (fake_after - fake_cpu) / messages
                if fake_after is not None and fake_cpu is not None
                else None
            )
            api.close()
        with sessions() as session:  # the figure counts only if every message was scanned
            scanned = TelegramStore(session).records([RecordKind.SCANNED], limit=messages + 1)
        if len(scanned) != messages:
            raise RedressError(
                f"the bot scanned {len(scanned)} of {messages} messages", code="bench_failed"
            )
    finally:
        sink.close()
        engine.dispose()
        pipeline.close()
    return bot_rate, bot_cpu, fake_per_message


def _child_cpu_seconds(pid: int | None) -> float | None:
    """CPU seconds used so far by process ``pid`` (every thread), from /proc; None when
    there is no pid or no /proc."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


async def _sink_alone(
    work: Path, images: list[bytes], messages: int, bank_size: int, batch: int = 1
) -> tuple[float, float]:
    """The anchor: the same sink on the same images, no Telegram; one item after another
    (``batch`` 1), or ``batch`` items at a time through ``receive_many``, as the bot does."""
    anchor_sink, anchor = _sink(_settings(work, f"anchor-{batch}"), images, bank_size)
    day = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    media = [
        IncomingMedia(
            MediaKind.PHOTO,
            MediaOrigin.ARRIVAL,
            MessageFacts("telegram", -1, None, "supergroup", n + 1, None, None, day),
            images[n % len(images)],
        )
        for n in range(messages)
    ]
    try:
        start, cpu = time.perf_counter(), time.process_time()
        if batch == 1:
            for item in media:
                await anchor_sink.receive(item)
        else:
            for first in range(0, messages, batch):
                for answer in await anchor_sink.receive_many(media[first : first + batch]):
                    if isinstance(answer, RedressError):
                        raise answer
        sink_rate = messages / (time.perf_counter() - start)
        sink_cpu = (time.process_time() - cpu) / messages
    finally:
        anchor_sink.close()
        anchor.close()
    return sink_rate, sink_cpu


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
    sink, pipeline = _sink(_settings(work, "export"), images, bank_size)
    try:
        start = time.perf_counter()
        async for _record in ExportImporter(sink).run(folder):
            pass
        elapsed = time.perf_counter() - start
    finally:
        sink.close()
        pipeline.close()
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
    fake, group_ids = _scene(images, messages)
    with tempfile.TemporaryDirectory(prefix="redress-bench-telegram-") as tmp:
        work = Path(tmp)
        with _served(fake) as (base_url, server_pid):
            bot_rate, bot_cpu, fake_cpu = asyncio.run(
                _bot(work, base_url, fake.token, group_ids, messages, bank_size, images, server_pid)
            )
        asgi_rate, asgi_cpu, _ = asyncio.run(
            _bot(work, fake, fake.token, group_ids, messages, bank_size, images)
        )
        sink_rate, sink_cpu = asyncio.run(_sink_alone(work, images, messages, bank_size))
        batched_rate, batched_cpu = asyncio.run(
            _sink_alone(work, images, messages, bank_size, GuardOptions("").scan_batch)
        )
        media, export_rate, ijson_rate = asyncio.run(
            _export(work, images, export_messages, bank_size)
        )
    return BenchResult(
        messages=messages,
        bot_media_per_s=bot_rate,
        sink_media_per_s=sink_rate,
        bot_cpu_ms=bot_cpu * 1000,
        asgi_media_per_s=asgi_rate,
        asgi_cpu_ms=asgi_cpu * 1000,
        sink_cpu_ms=sink_cpu * 1000,
        fake_cpu_ms=fake_cpu * 1000 if fake_cpu is not None else None,
        sink_batched_media_per_s=batched_rate,
        sink_batched_cpu_ms=batched_cpu * 1000,
        export_messages=export_messages,
        export_media=media,
        export_messages_per_s=export_rate,
        export_media_per_s=export_rate * media / export_messages,
        ijson_messages_per_s=ijson_rate,
        bank_size=bank_size,
    )
