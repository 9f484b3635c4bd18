"""The Telegram Desktop export importer, on exports generated here."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from redress.config import Settings
from redress.connectors.interfaces import Decision, IncomingMedia, Outcome, UserReport
from redress.connectors.sink import PipelineSink
from redress.connectors.telegram.errors import ExportError, ExportPathError
from redress.connectors.telegram.export import (
    ExportImporter,
    ExportRecord,
    ExportRecordKind,
    ImportTally,
    safe_media_path,
)
from redress.evidence.models import EvidenceItemRow
from redress.evidence.service import build_evidence_service
from redress.evidence.store import SqlEvidenceStore
from redress.pipeline.container import PipelineContainer

from .fake_bot_api import jpeg

pytestmark = pytest.mark.anyio
NOT_INCLUDED = "(File not included. Change data exporting settings to download.)"


def message(n: int, **extra: Any) -> dict[str, Any]:
    return {
        "id": n,
        "type": "message",
        "date": "2024-03-01T12:00:00",
        "date_unixtime": str(1709294400 + n),
        "from": "Mallory",
        "from_id": "user666",
        "text": "",
        "text_entities": [],
        **extra,
    }


def photo(folder: Path, n: int, seed: int) -> dict[str, Any]:
    name = f"photos/photo_{n}@01-03-2024_12-00-00.jpg"
    (folder / "photos").mkdir(exist_ok=True)
    (folder / name).write_bytes(jpeg(256, 256, seed))
    return {"photo": name, "width": 256, "height": 256}


def write(folder: Path, data: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "result.json").write_text(json.dumps(data, ensure_ascii=False, indent=1))
    return folder


async def collect(importer: ExportImporter, folder: Path) -> list[ExportRecord]:
    return [record async for record in importer.run(folder)]


async def test_single_chat_export_finds_matches_with_links_dates_and_senders(
    tmp_path: Path, sink: PipelineSink, pipeline: PipelineContainer, settings: Settings
) -> None:
    folder = tmp_path / "ChatExport_2024-03-01"
    folder.mkdir()
    (folder / "video_files").mkdir()
    (folder / "video_files" / "clip.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42")
    messages = [
        {"id": 1, "type": "service", "date": "2024-03-01T11:00:00", "action": "create_group"},
        message(2, text=["see ", {"type": "mention", "text": "@her"}], **photo(folder, 2, seed=1)),
        message(3, text="nothing here"),
        message(4, forwarded_from="Leaks channel", **photo(folder, 4, seed=90)),
        message(5, file="video_files/clip.mp4", media_type="video_file", mime_type="video/mp4"),
        message(6, file="voice_messages/a.ogg", media_type="voice_message", mime_type="audio/ogg"),
    ]
    write(
        folder,
        {"name": "Mask Park", "type": "private_supergroup", "id": 1987654321, "messages": messages},
    )
    records = await collect(ExportImporter(sink), folder)
    assert [(r.message_id, r.kind) for r in records] == [
        (2, ExportRecordKind.MATCH),
        (4, ExportRecordKind.SCANNED),
        (5, ExportRecordKind.UNREADABLE),  # a few bytes of MP4 header: no video to hash
    ]
    hit = records[0]
    assert hit.link == "https://t.me/c/1987654321/2"
    assert hit.chat_id == -1001987654321
    assert hit.sender == "Mallory"
    assert hit.sender_id == "user666"
    assert hit.date == "2024-03-01T12:00:02+00:00"
    assert hit.matches[0].startswith("victim-bank/")
    assert hit.evidence_ref is not None
    assert records[1].forwarded_from == "Leaks channel"
    assert records[1].evidence_ref is None
    # Evidence was captured with the message facts, and its capture is in the ledger.
    with pipeline.sessions() as session:
        service = build_evidence_service(SqlEvidenceStore(session), settings)
        opened = service.open(hit.evidence_ref, "test", "check")
        kinds = [e.kind for e in service.ledger.entries_for_item(hit.evidence_ref)]
    assert opened.content == jpeg(256, 256, 1)
    message_facts = json.loads(opened.record)["evidence"]["message"]
    assert message_facts["message_link"] == "https://t.me/c/1987654321/2"
    assert message_facts["caption"] == "see @her"
    assert kinds[0] == "evidence:item:captured"
    # Importing the same export again answers from the first scan: nothing captured twice.
    again = await collect(ExportImporter(sink), folder)
    assert [r.evidence_ref for r in again] == [r.evidence_ref for r in records]
    with pipeline.sessions() as session:
        assert session.query(EvidenceItemRow).count() == 1


async def test_public_chat_links_use_the_username(tmp_path: Path, sink: PipelineSink) -> None:
    folder = tmp_path / "pub"
    folder.mkdir()
    write(
        folder,
        {
            "name": "P",
            "type": "public_channel",
            "id": 1555,
            "messages": [message(9, **photo(folder, 9, 2))],
        },
    )
    [record] = await collect(ExportImporter(sink, usernames={1555: "maskpark"}), folder)
    assert record.link == "https://t.me/maskpark/9"


async def test_full_account_export_reads_every_chat(tmp_path: Path, sink: PipelineSink) -> None:
    folder = tmp_path / "DataExport_2024-03-01"
    folder.mkdir()
    (folder / "chats" / "chat_01" / "photos").mkdir(parents=True)
    (folder / "chats" / "chat_01" / "photos" / "p.jpg").write_bytes(jpeg(256, 256, 3))
    data = {
        "about": "Here is the data you requested.",
        "personal_information": {"user_id": 1, "first_name": "Me", "about": "x"},
        "contacts": {"about": "", "list": [{"first_name": "A", "last_name": "", "date": "x"}]},
        "chats": {
            "about": "This page lists all chats from this export.",
            "list": [
                {
                    "name": "Friend",
                    "type": "personal_chat",
                    "id": 4242,
                    "messages": [
                        message(1, text="hi"),
                        message(2, photo="chats/chat_01/photos/p.jpg"),
                    ],
                },
                {
                    "name": "Group two",
                    "type": "private_group",
                    "id": 777,
                    "messages": [message(5, **photo(folder, 5, seed=2))],
                },
            ],
        },
        "left_chats": {
            "about": "",
            "list": [
                {
                    "name": "Old",
                    "type": "public_supergroup",
                    "id": 31337,
                    "messages": [message(8, photo=NOT_INCLUDED)],
                }
            ],
        },
    }
    write(folder, data)
    records = await collect(ExportImporter(sink), folder)
    assert [(r.chat_name, r.chat_id, r.kind, r.link) for r in records] == [
        ("Friend", 4242, ExportRecordKind.MATCH, None),
        ("Group two", -777, ExportRecordKind.MATCH, None),
        ("Old", -10031337, ExportRecordKind.MISSING, "https://t.me/c/31337/8"),
    ]


@pytest.mark.parametrize("scan_batch", [32, 1])
async def test_missing_corrupt_and_unsafe_media_are_recorded_and_the_rest_continues(
    tmp_path: Path, sink: PipelineSink, scan_batch: int
) -> None:
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "photos").mkdir()
    (folder / "photos" / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    secret = tmp_path / "secret.jpg"
    secret.write_bytes(jpeg(256, 256, 1))
    (folder / "photos" / "link.jpg").symlink_to(secret)
    messages = [
        message(1, photo=NOT_INCLUDED),
        message(
            2,
            file="(File exceeds maximum size. Change data exporting settings to download.)",
            media_type="video_file",
            mime_type="video/mp4",
        ),
        message(3, photo="photos/gone.jpg"),
        message(4, photo="photos/corrupt.jpg"),
        message(5, photo="../../etc/passwd"),
        message(6, photo="/etc/passwd"),
        message(7, photo="photos/link.jpg"),
        message(8, **photo(folder, 8, seed=2)),
    ]
    write(folder, {"name": "B", "type": "private_supergroup", "id": 12, "messages": messages})
    # One slice for all, or a slice per readable file: the records keep export order.
    records = await collect(ExportImporter(sink, scan_batch=scan_batch), folder)
    assert [r.kind for r in records] == [
        ExportRecordKind.MISSING,
        ExportRecordKind.MISSING,
        ExportRecordKind.MISSING,
        ExportRecordKind.UNREADABLE,
        ExportRecordKind.UNSAFE_PATH,
        ExportRecordKind.UNSAFE_PATH,
        ExportRecordKind.UNSAFE_PATH,
        ExportRecordKind.MATCH,
    ]
    assert records[0].detail == NOT_INCLUDED
    assert "[truncated]" in (records[3].detail or "")  # the signals domain's error code
    assert "refused" in (records[4].detail or "")


def test_safe_media_path_refuses_escapes(tmp_path: Path) -> None:
    assert safe_media_path(tmp_path, "photos/a.jpg") == (tmp_path / "photos" / "a.jpg").resolve()
    for bad in ("../x", "photos/../../x", "/etc/passwd", "C:\\Windows\\x", "..\\..\\x", ""):
        with pytest.raises(ExportPathError):
            safe_media_path(tmp_path, bad)


async def test_not_an_export_is_a_clear_error(tmp_path: Path, sink: PipelineSink) -> None:
    with pytest.raises(ExportError, match=r"no result\.json"):
        await collect(ExportImporter(sink), tmp_path)
    (tmp_path / "result.json").write_text('{"name": "x", "messages": [{"id": 1, ')
    with pytest.raises(ExportError, match="not valid JSON"):
        await collect(ExportImporter(sink), tmp_path)


class CountingSink:
    """Counts what it receives (the memory test measures the importer, not hashing)."""

    def __init__(self) -> None:
        self.received = 0

    async def receive(self, media: IncomingMedia) -> Decision:
        self.received += 1
        assert isinstance(media.content, bytes)
        return Decision(Outcome.IGNORE, reason="counted")

    async def report(self, report: UserReport) -> str:
        raise AssertionError("not used")


async def test_a_large_export_streams_in_small_memory(tmp_path: Path) -> None:
    folder = tmp_path / "large"
    folder.mkdir()
    (folder / "photos").mkdir()
    (folder / "photos" / "p.jpg").write_bytes(jpeg(32, 32))
    with (folder / "result.json").open("w") as out:  # written incrementally too
        out.write('{"name": "Big", "type": "private_supergroup", "id": 99, "messages": [')
        for n in range(20_000):
            extra = {"photo": "photos/p.jpg"} if n % 10 == 0 else {}
            text = "a fairly ordinary message with some words in it " * 12
            out.write(("," if n else "") + json.dumps(message(n, text=text, **extra)))
        out.write("]}")
    size = (folder / "result.json").stat().st_size
    assert size > 14_000_000
    sink = CountingSink()
    tallies: list[ImportTally] = []
    tracemalloc.start()
    try:
        count = 0
        async for _record in ExportImporter(sink).run(folder, tallies.append):
            count += 1
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == sink.received == 2_000
    assert tallies[-1].messages == 20_000
    assert tallies[-1].bytes_read == size
    assert peak < size / 10  # far below the file: it was never loaded whole
