"""The group-guard bot against the fake Bot API, with a sink that really hashes and matches."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker

from redress.config import Settings
from redress.connectors.interfaces import (
    ActionKind,
    Decision,
    IncomingMedia,
    MediaOrigin,
    UserReport,
)
from redress.connectors.sink import PipelineSink, handoff_actioners
from redress.connectors.telegram.bot import GroupGuard, GuardOptions
from redress.connectors.telegram.client import BotApiClient
from redress.connectors.telegram.ratelimit import SendLimiter
from redress.connectors.telegram.store import GroupSettings, RecordKind, RecordRead, TelegramStore
from redress.errors import RedressError
from redress.evidence.service import build_evidence_service
from redress.evidence.store import SqlEvidenceStore
from redress.pipeline.container import PipelineParts, build_pipeline
from redress.signals import HashOptions, SignalKind, hash_bytes
from redress.store.interfaces import BankPurpose
from redress.store.media import entries_for_signals
from redress.store.service import BankService

from .conftest import BAN_SEED, Sleeps
from .fake_bot_api import FakeBotApi, chat, jpeg, private_chat, user, webp

pytestmark = pytest.mark.anyio

GROUP = chat(-1001234567890, "Guarded group")
ALICE = user(501, "Alice", username="alice", language_code="en")
MALLORY = user(666, "Mallory", username="mallory")


def records(sessions: sessionmaker[Session], *kinds: RecordKind) -> list[RecordRead]:
    with sessions() as session:
        return TelegramStore(session).records(kinds)


def setup_group(fake: FakeBotApi, **rights: bool) -> None:
    fake.add_chat(GROUP, **rights)
    fake.add_member(GROUP["id"], ALICE)
    fake.add_member(GROUP["id"], MALLORY)


class EvidenceFirst:
    """ASGI wrapper of the fake Bot API: at each deleteMessage, looks in the evidence
    store for the message being deleted (what Telegram would destroy)."""

    def __init__(self, app: Any, sessions: sessionmaker[Session], settings: Settings) -> None:
        self.app = app
        self.sessions = sessions
        self.settings = settings
        self.found: list[tuple[int, list[bytes]]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].endswith("/deleteMessage"):
            body = b""
            more = True
            while more:
                message = await receive()
                body += message.get("body", b"")
                more = message.get("more_body", False)
            params = json.loads(body or b"{}")
            with self.sessions() as session:
                service = build_evidence_service(SqlEvidenceStore(session), self.settings)
                items = service.items_for_message(
                    "telegram", str(params["chat_id"]), str(params["message_id"])
                )
                contents = [service.open(i.id, "test", "before delete").content for i in items]
            self.found.append((int(params["message_id"]), contents))

            async def replay() -> dict[str, Any]:
                return {"type": "http.request", "body": body, "more_body": False}

            await self.app(scope, replay, send)
            return
        await self.app(scope, receive, send)


async def test_known_photo_is_preserved_then_deleted_and_a_notice_posted(
    fake: FakeBotApi,
    sink: PipelineSink,
    sessions: sessionmaker[Session],
    settings: Settings,
    sleeps: Sleeps,
) -> None:
    setup_group(fake)
    msg = fake.message(
        GROUP, MALLORY, photo=fake.photo_sizes(jpeg(256, 256, seed=2)), caption="her name is ..."
    )
    fake.push("message", msg)
    innocent = fake.message(GROUP, ALICE, photo=fake.photo_sizes(jpeg(256, 256, seed=40)))
    fake.push("message", innocent)
    watcher = EvidenceFirst(fake.app, sessions, settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=watcher)) as http:
        limiter = SendLimiter(clock=sleeps.clock, sleep=sleeps)
        api = BotApiClient(http, fake.token, sleep=sleeps, limiter=limiter)
        guard = GroupGuard(api, sink, sessions, GuardOptions(portal_url="https://x/protect"))
        assert await guard.poll_once() == 2
        api.close()

    # When deleteMessage arrived, the photo's original bytes were already evidence.
    assert watcher.found == [(msg["message_id"], [jpeg(256, 256, 2)])]
    assert (GROUP["id"], msg["message_id"]) not in fake.messages  # deleted
    assert (GROUP["id"], innocent["message_id"]) in fake.messages  # left alone
    scanned = records(sessions, RecordKind.SCANNED)
    assert [r.detail["outcome"] for r in scanned] == ["act", "ignore"]
    assert scanned[1].detail["evidence_ref"] is None  # nothing kept of the innocent photo
    hit = scanned[0]
    assert hit.detail["matches"][0].startswith("victim-bank/")
    assert hit.detail["matches"][0].endswith("@0")
    assert hit.detail["caption"] == "her name is ..."
    assert hit.detail["link"] == f"https://t.me/c/1234567890/{msg['message_id']}"
    # The largest PhotoSize was fetched, not the thumbnail.
    assert fake.called("getFile")[0]["file_id"] == msg["photo"][-1]["file_id"]
    # The evidence item and its capture ledger entry, with the message facts.
    with sessions() as session:
        service = build_evidence_service(SqlEvidenceStore(session), settings)
        item = service.item(hit.detail["evidence_ref"])
        kinds = [e.kind for e in service.ledger.entries_for_item(item.id)]
        record = json.loads(service.open(item.id, "test", "check").record)
    assert item.chat_id == str(GROUP["id"])
    assert item.message_id == str(msg["message_id"])
    assert kinds[:2] == ["evidence:item:captured", "pipeline:scan:decided"]
    message = record["evidence"]["message"]
    assert message["message_link"] == hit.detail["link"]
    assert message["sender_id"] == str(MALLORY["id"])
    assert message["caption"] == "her name is ..."
    assert record["trigger"]["bank"] == "victim-bank"
    actions = [r.detail["action"] for r in records(sessions, RecordKind.ACTION)]
    assert actions == ["delete_message", "post_notice"]
    assert "removed" in fake.sent[-1]["text"]


async def test_a_bank_whose_policy_restricts_the_user_bans_the_sender(
    fake: FakeBotApi, guard: GroupGuard
) -> None:
    setup_group(fake)
    fake.push("message", fake.message(GROUP, MALLORY, photo=fake.photo_sizes(jpeg(256, 256, 1))))
    await guard.poll_once()
    assert fake.members[(GROUP["id"], MALLORY["id"])]["status"] != "kicked"
    fake.push("message", fake.message(GROUP, MALLORY, photo=fake.photo_sizes(jpeg(256, 256, 7))))
    await guard.poll_once()
    assert fake.members[(GROUP["id"], MALLORY["id"])]["status"] == "kicked"
    assert len(fake.called("banChatMember")) == 1


async def test_album_items_are_each_scanned_and_grouped_with_one_notice(
    fake: FakeBotApi, guard: GroupGuard, sessions: sessionmaker[Session]
) -> None:
    setup_group(fake)
    album = "13578642907531"
    for seed in (1, 50, 2):
        fake.push(
            "message",
            fake.message(
                GROUP, ALICE, photo=fake.photo_sizes(jpeg(256, 256, seed)), media_group_id=album
            ),
        )
    await guard.poll_once()
    scanned = records(sessions, RecordKind.SCANNED)
    assert [r.media_group_id for r in scanned] == [album] * 3
    assert [r.detail["outcome"] for r in scanned] == ["act", "ignore", "act"]
    assert len(fake.called("deleteMessage")) == 2
    assert len(fake.called("sendMessage")) == 1  # one notice for the album


async def test_forward_keeps_the_origin(
    fake: FakeBotApi, guard: GroupGuard, sessions: sessionmaker[Session]
) -> None:
    setup_group(fake)
    origin = {
        "type": "channel",
        "date": 1700000000,
        "chat": {"id": -1009876543210, "type": "channel", "title": "Leaks", "username": "leaks"},
        "message_id": 77,
    }
    fake.push(
        "message",
        fake.message(
            GROUP, ALICE, photo=fake.photo_sizes(jpeg(256, 256, 3)), forward_origin=origin
        ),
    )
    await guard.poll_once()
    [scan] = records(sessions, RecordKind.SCANNED)
    assert scan.detail["forward_origin"] == (
        "channel -1009876543210 (Leaks) message 77 https://t.me/leaks/77"
    )


async def test_edited_message_rescans_the_new_media_once(
    fake: FakeBotApi, guard: GroupGuard, sessions: sessionmaker[Session]
) -> None:
    setup_group(fake)
    original = fake.message(GROUP, ALICE, photo=fake.photo_sizes(jpeg(256, 256, 60)))
    fake.push("message", original)
    edited = dict(
        original, photo=fake.photo_sizes(jpeg(256, 256, 1)), edit_date=original["date"] + 30
    )
    fake.push("edited_message", edited)
    fake.push("edited_message", edited)  # Telegram may deliver an edit twice
    await guard.poll_once()
    scanned = records(sessions, RecordKind.SCANNED)
    assert [(r.detail["origin"], r.detail["outcome"]) for r in scanned] == [
        (str(MediaOrigin.ARRIVAL), "ignore"),
        (str(MediaOrigin.EDIT), "act"),
    ]
    assert len(records(sessions, RecordKind.DUPLICATE)) == 1
    assert len(fake.called("deleteMessage")) == 1


async def test_oversize_file_is_a_too_large_record_not_a_crash(
    fake: FakeBotApi, guard: GroupGuard, sessions: sessionmaker[Session]
) -> None:
    setup_group(fake)
    # The message says 25 MB; so does getFile's refusal ("Bad Request: file is too big").
    video = fake.video(b"\x00" * 1024, size=25 * 1024 * 1024)
    fake.push("message", fake.message(GROUP, ALICE, video=video))
    unsized = dict(fake.video(b"\x00" * 1024, size=30 * 1024 * 1024))
    unsized.pop("file_size")  # the size is optional in Video: getFile must refuse it
    fake.push("message", fake.message(GROUP, ALICE, video=unsized))
    fake.push("message", fake.message(GROUP, ALICE, photo=fake.photo_sizes(jpeg(256, 256, 1))))
    await guard.poll_once()
    too_large = records(sessions, RecordKind.TOO_LARGE)
    assert [r.detail["size"] for r in too_large] == [25 * 1024 * 1024, None]
    assert all("20 MB" in r.detail["reason"] for r in too_large)
    assert len(fake.called("getFile")) == 2  # the first was refused before asking
    scanned = records(sessions, RecordKind.SCANNED)
    assert [r.detail["outcome"] for r in scanned] == ["review", "review", "act"]


async def test_self_hosted_server_lifts_the_limit(
    fake: FakeBotApi, http: object, sink: PipelineSink, sessions: sessionmaker[Session]
) -> None:
    import httpx

    assert isinstance(http, httpx.AsyncClient)
    fake.file_limit = None
    setup_group(fake)
    big = jpeg(256, 256, 2) + b"\x00" * (21 * 1024 * 1024)  # trailing bytes: a 21 MB JPEG
    fake.push(
        "message", fake.message(GROUP, ALICE, document=fake.document(big, "image/jpeg", "x.jpg"))
    )
    api = BotApiClient(http, fake.token, base_url="http://bot-api.local:8081")
    try:
        guard = GroupGuard(api, sink, sessions, GuardOptions(portal_url="https://x/protect"))
        await guard.poll_once()
    finally:
        api.close()
    assert records(sessions, RecordKind.TOO_LARGE) == []
    assert [r.detail["outcome"] for r in records(sessions, RecordKind.SCANNED)] == ["act"]


async def test_bot_not_admin_records_an_alert_and_carries_on(
    fake: FakeBotApi, guard: GroupGuard, sessions: sessionmaker[Session]
) -> None:
    setup_group(fake, bot_admin=False)
    first = fake.message(GROUP, MALLORY, photo=fake.photo_sizes(jpeg(256, 256, 1)))
    fake.push("message", first)
    fake.push("message", fake.message(GROUP, ALICE, photo=fake.photo_sizes(jpeg(256, 256, 2))))
    assert await guard.poll_once() == 2
    alerts = [
        r for r in records(sessions, RecordKind.ALERT) if r.detail["action"] == "delete_message"
    ]
    assert len(alerts) == 2
    assert alerts[0].detail["error"].endswith("Bad Request: message can't be deleted")
    assert "admin" in alerts[0].detail["hint"]
    assert (GROUP["id"], first["message_id"]) in fake.messages  # still there: nothing crashed
    [rights] = [
        r for r in records(sessions, RecordKind.ALERT) if r.detail["action"] == "check_rights"
    ]
    assert rights.detail["error"] == (
        "the bot is member without can_delete_messages, can_restrict_members"
    )
    assert len(fake.called("getChatMember")) == 1  # checked once per group
    assert guard.offset == fake.updates[-1]["update_id"] + 1


async def test_message_already_gone_is_recorded(
    fake: FakeBotApi, guard: GroupGuard, sessions: sessionmaker[Session]
) -> None:
    setup_group(fake)
    msg = fake.message(GROUP, MALLORY, photo=fake.photo_sizes(jpeg(256, 256, 1)))
    fake.messages.discard((GROUP["id"], msg["message_id"]))  # self-destructed meanwhile
    fake.push("message", msg)
    await guard.poll_once()
    [alert] = [
        r for r in records(sessions, RecordKind.ALERT) if r.detail["action"] == "delete_message"
    ]
    assert "message to delete not found" in alert.detail["error"]


async def test_group_settings_choose_outcomes_and_notice(
    fake: FakeBotApi, guard: GroupGuard, sessions: sessionmaker[Session]
) -> None:
    setup_group(fake)
    with sessions.begin() as session:
        TelegramStore(session).put_group(
            GroupSettings(
                chat_id=GROUP["id"],
                outcomes=(ActionKind.POST_NOTICE,),
                notice_text="已删除",
                language="zh",
            )
        )
    fake.push("message", fake.message(GROUP, MALLORY, photo=fake.photo_sizes(jpeg(256, 256, 1))))
    await guard.poll_once()
    assert fake.called("deleteMessage") == []
    assert fake.sent[-1]["text"] == "已删除"


async def test_disabled_group_is_not_scanned(
    fake: FakeBotApi, guard: GroupGuard, sessions: sessionmaker[Session]
) -> None:
    setup_group(fake)
    with sessions.begin() as session:
        TelegramStore(session).put_group(GroupSettings(chat_id=GROUP["id"], enabled=False))
    fake.push("message", fake.message(GROUP, MALLORY, photo=fake.photo_sizes(jpeg(256, 256, 1))))
    await guard.poll_once()
    assert fake.called("getFile") == []
    assert records(sessions, RecordKind.SKIPPED)[0].detail["reason"] == "group disabled"


async def test_every_media_kind_is_scanned(
    fake: FakeBotApi, guard: GroupGuard, sessions: sessionmaker[Session]
) -> None:
    setup_group(fake)
    image = jpeg(256, 256, 1)
    fake.push("message", fake.message(GROUP, ALICE, sticker=fake.sticker(webp(256, 256, 1))))
    fake.push("message", fake.message(GROUP, ALICE, sticker=fake.sticker(b"tgs", is_animated=True)))
    fake.push(
        "message", fake.message(GROUP, ALICE, document=fake.document(image, "image/jpeg", "a.jpg"))
    )
    fake.push(
        "message",
        fake.message(GROUP, ALICE, document=fake.document(b"%PDF", "application/pdf", "a.pdf")),
    )
    animation = fake.video(b"gif-as-mp4", kind="animation")
    fake.push("message", fake.message(GROUP, ALICE, animation=animation, document=animation))
    fake.push(
        "message", fake.message(GROUP, ALICE, video_note=fake.video(b"round", kind="video_note"))
    )
    fake.push("message", fake.message(GROUP, ALICE, video=fake.video(b"mp4")))
    await guard.poll_once()
    kinds = [(r.detail["kind"], r.detail["outcome"]) for r in records(sessions, RecordKind.SCANNED)]
    assert kinds == [("sticker", "act"), ("document", "act")]
    # Those "videos" are a few junk bytes: the pipeline cannot decode them, and says so.
    failed = [r.detail["code"] for r in records(sessions, RecordKind.SCAN_FAILED)]
    assert len(failed) == 3
    assert all(code for code in failed)


async def test_a_video_matches_by_vpdq_and_is_preserved_then_deleted(
    fake: FakeBotApi,
    api: BotApiClient,
    sessions: sessionmaker[Session],
    settings: Settings,
    shared_data: Path,
) -> None:
    clip = (shared_data / "vpdq" / "videos" / "chair-22-sd-grey-bar.mp4").read_bytes()
    signals = hash_bytes(clip, HashOptions.from_settings(settings))
    with sessions.begin() as session:  # only the frame hashes: no byte-identical shortcut
        banks = BankService(session)
        banks.create("video-bank", BankPurpose.CONFIRMED_VIOLATIONS)
        entries = [e for e in entries_for_signals(signals) if e.kind is SignalKind.VPDQ]
        assert len(entries) == 1
        banks.add("video-bank", entries)
    container = build_pipeline(
        settings, PipelineParts(actioners=handoff_actioners("telegram")), embedded_queue=False
    )
    try:
        sink = PipelineSink(container, connector="telegram-bot")
        guard = GroupGuard(api, sink, sessions, GuardOptions(portal_url="https://x/protect"))
        setup_group(fake)
        msg = fake.message(GROUP, MALLORY, video=fake.video(clip))
        fake.push("message", msg)
        await guard.poll_once()
        sink.close()
    finally:
        container.close()
    [scanned] = records(sessions, RecordKind.SCANNED)
    assert scanned.detail["outcome"] == "act"
    assert scanned.detail["matches"][0].startswith("video-bank/")
    assert (GROUP["id"], msg["message_id"]) not in fake.messages
    with sessions() as session:
        service = build_evidence_service(SqlEvidenceStore(session), settings)
        opened = service.open(scanned.detail["evidence_ref"], "test", "check")
    assert opened.content == clip
    assert json.loads(opened.record)["trigger"]["details"]["signal"] == "vpdq"


async def test_malformed_and_unknown_updates_are_recorded_and_skipped(
    fake: FakeBotApi, guard: GroupGuard, sessions: sessionmaker[Session]
) -> None:
    setup_group(fake)
    fake.push_raw({"message": {"message_id": "seven", "chat": GROUP, "date": 1}})
    fake.push_raw({"message": {"message_id": 8, "date": 1}})  # no chat
    fake.push_raw({"message": {"message_id": 9, "chat": GROUP, "date": 1, "photo": []}})
    fake.push_raw({"poll": {"id": "1", "question": "?"}})
    fake.push("message", fake.message(GROUP, ALICE, dice={"emoji": "🎲", "value": 3}))
    fake.push("message", fake.message(GROUP, ALICE, photo=fake.photo_sizes(jpeg(256, 256, 1))))
    assert await guard.poll_once() == 6
    malformed = records(sessions, RecordKind.MALFORMED)
    assert len(malformed) == 3
    assert "message_id must be an integer" in malformed[0].detail["error"]
    skipped = sorted(r.detail["reason"] for r in records(sessions, RecordKind.SKIPPED))
    assert skipped == ["no media", "update kind 'poll'"]
    assert [r.detail["outcome"] for r in records(sessions, RecordKind.SCANNED)] == ["act"]


async def test_rate_limited_notice_waits_retry_after_then_succeeds(
    fake: FakeBotApi, guard: GroupGuard, sleeps: list[float], sessions: sessionmaker[Session]
) -> None:
    setup_group(fake)
    fake.rate_limit("sendMessage", retry_after=7)
    fake.push("message", fake.message(GROUP, MALLORY, photo=fake.photo_sizes(jpeg(256, 256, 1))))
    await guard.poll_once()
    assert 7 in sleeps
    assert len(fake.called("sendMessage")) == 2
    assert len(fake.sent) == 1
    assert records(sessions, RecordKind.ALERT) == []


async def test_report_files_into_the_sink_and_acknowledges_privately(
    fake: FakeBotApi, guard: GroupGuard, sessions: sessionmaker[Session], settings: Settings
) -> None:
    setup_group(fake)
    fake.started.add(ALICE["id"])
    target = fake.message(
        GROUP, MALLORY, photo=fake.photo_sizes(jpeg(256, 256, 70)), caption="look"
    )
    fake.push("message", fake.message(GROUP, ALICE, text="/report", reply_to_message=target))
    await guard.poll_once()
    [row] = records(sessions, RecordKind.REPORT)
    reference = row.detail["reference"]
    assert reference.startswith("ledger:")
    ack = fake.sent[-1]
    assert ack["chat"]["id"] == ALICE["id"]
    assert reference in ack["text"]
    # The reported photo matched nothing, yet it is preserved, with the report as trigger.
    with sessions() as session:
        service = build_evidence_service(SqlEvidenceStore(session), settings)
        [item] = service.items_for_message("telegram", str(GROUP["id"]), str(target["message_id"]))
        opened = service.open(item.id, "test", "check")
        [filed] = service.ledger.entries([int(reference.removeprefix("ledger:"))])
    assert opened.content == jpeg(256, 256, 70)
    assert json.loads(opened.record)["trigger"]["kind"] == "report"
    assert filed.kind == "telegram:report:filed"
    facts = json.loads(filed.body)["facts"]
    assert facts["reporter_id"] == str(ALICE["id"])
    assert facts["evidence_items"] == [item.id]


async def test_report_ack_to_a_user_who_never_started_the_bot_is_recorded(
    fake: FakeBotApi, guard: GroupGuard, sink: PipelineSink, sessions: sessionmaker[Session]
) -> None:
    setup_group(fake)
    fake.blocked.add(ALICE["id"])
    target = fake.message(GROUP, MALLORY, text="her address is ...")
    fake.push(
        "message",
        fake.message(GROUP, ALICE, text="/report@redress_guard_bot", reply_to_message=target),
    )
    await guard.poll_once()
    [report] = records(sessions, RecordKind.REPORT)
    assert report.detail["reference"].startswith("ledger:")
    [alert] = records(sessions, RecordKind.ALERT)
    assert alert.detail["action"] == "acknowledge_report"
    assert alert.detail["error"].endswith("Forbidden: bot was blocked by the user")


@pytest.mark.parametrize(
    ("language", "expected"),
    [("en", "protect your images"), ("zh-hans", "保护你的照片"), (None, "protect")],
)
async def test_start_explains_the_portal_in_her_language(
    fake: FakeBotApi, guard: GroupGuard, language: str | None, expected: str
) -> None:
    victim = user(777, "V", language_code=language)
    fake.started.add(777)
    fake.push("message", fake.message(private_chat(victim), victim, text="/start"))
    await guard.poll_once()
    [sent] = fake.sent
    assert expected in sent["text"]
    assert "https://redress.example/protect" in sent["text"]


async def test_restart_resumes_at_the_persisted_offset_without_double_processing(
    fake: FakeBotApi,
    api: BotApiClient,
    sink: PipelineSink,
    sessions: sessionmaker[Session],
) -> None:
    setup_group(fake)
    options = GuardOptions(portal_url="https://x/protect")
    first = GroupGuard(api, sink, sessions, options)
    fake.push("message", fake.message(GROUP, ALICE, photo=fake.photo_sizes(jpeg(256, 256, 1))))
    await first.poll_once()
    handled = fake.updates[-1]["update_id"]

    # A new process: same database, and Telegram re-sends the handled update (offset not yet
    # confirmed on its side) followed by a new one.
    fake.updates.appendleft({"update_id": handled - 1, "message": {"junk": True}})
    fake.push("message", fake.message(GROUP, ALICE, photo=fake.photo_sizes(jpeg(256, 256, 2))))
    second = GroupGuard(api, sink, sessions, options)
    await second.start()
    assert second.offset == handled + 1
    await second.poll_once()
    assert fake.called("getUpdates")[-1]["offset"] == handled + 1
    assert len(records(sessions, RecordKind.SCANNED)) == 2
    assert records(sessions, RecordKind.MALFORMED) == []  # the stale update was not re-read
    assert second.offset == fake.updates[-1]["update_id"] + 1


class InterleavingSink:
    """Really hashes (via the embedded sink) but yields to the loop mid-way, logging order."""

    def __init__(self, inner: PipelineSink) -> None:
        self.inner = inner
        self.log: list[tuple[int, int, str]] = []

    async def receive(self, media: IncomingMedia) -> Decision:
        facts = media.message
        self.log.append((facts.chat_id, facts.message_id, "start"))
        for _ in range(3):
            await asyncio.sleep(0)
        decision = await self.inner.receive(media)
        self.log.append((facts.chat_id, facts.message_id, "end"))
        return decision

    async def report(self, report: UserReport) -> str:
        return await self.inner.report(report)


async def test_chats_run_side_by_side_while_each_chat_keeps_its_order(
    fake: FakeBotApi, api: BotApiClient, sink: PipelineSink, sessions: sessionmaker[Session]
) -> None:
    other = chat(-1005555555555, "Other group")
    setup_group(fake)
    fake.add_chat(other)
    for n in range(3):
        for group in (GROUP, other):
            fake.push(
                "message", fake.message(group, ALICE, photo=fake.photo_sizes(jpeg(64, 64, n)))
            )
    logging_sink = InterleavingSink(sink)
    guard = GroupGuard(api, logging_sink, sessions, GuardOptions(portal_url="https://x/protect"))
    await guard.poll_once()
    for group in (GROUP, other):
        mine = [(m, e) for c, m, e in logging_sink.log if c == group["id"]]
        # Within a chat: strictly one after another, in message order.
        assert mine == [
            (1, "start"),
            (1, "end"),
            (2, "start"),
            (2, "end"),
            (3, "start"),
            (3, "end"),
        ]
    first_end = next(i for i, entry in enumerate(logging_sink.log) if entry[2] == "end")
    assert {c for c, _, _ in logging_sink.log[:first_end]} == {GROUP["id"], other["id"]}
    assert len(records(sessions, RecordKind.SCANNED)) == 6


class PolicySink:
    """The embedded sink's real match, with another policy's actions (and evidence or not)."""

    def __init__(
        self, inner: PipelineSink, actions: tuple[ActionKind, ...], evidence: bool
    ) -> None:
        self.inner = inner
        self.actions = actions
        self.evidence = evidence

    async def receive(self, media: IncomingMedia) -> Decision:
        decision = await self.inner.receive(media)
        if decision.outcome.value != "act":
            return decision
        return Decision(
            decision.outcome,
            self.actions,
            decision.evidence_ref if self.evidence else None,
            decision.matches,
        )

    async def report(self, report: UserReport) -> str:
        return await self.inner.report(report)


async def test_no_deletion_without_evidence(
    fake: FakeBotApi, api: BotApiClient, sink: PipelineSink, sessions: sessionmaker[Session]
) -> None:
    setup_group(fake)
    msg = fake.message(GROUP, MALLORY, photo=fake.photo_sizes(jpeg(256, 256, 1)))
    fake.push("message", msg)
    policy = PolicySink(sink, (ActionKind.DELETE_MESSAGE,), evidence=False)
    guard = GroupGuard(api, policy, sessions, GuardOptions(portal_url="https://x/protect"))
    await guard.poll_once()
    assert fake.called("deleteMessage") == []
    assert (GROUP["id"], msg["message_id"]) in fake.messages
    [alert] = records(sessions, RecordKind.ALERT)
    assert alert.detail["code"] == "evidence_missing"


async def test_restrict_instead_of_ban_when_the_policy_says_so(
    fake: FakeBotApi, api: BotApiClient, sink: PipelineSink, sessions: sessionmaker[Session]
) -> None:
    setup_group(fake)
    with sessions.begin() as session:
        TelegramStore(session).put_group(
            GroupSettings(
                chat_id=GROUP["id"],
                outcomes=(ActionKind.DELETE_MESSAGE, ActionKind.RESTRICT_SENDER),
            )
        )
    fake.push("message", fake.message(GROUP, MALLORY, photo=fake.photo_sizes(jpeg(256, 256, 1))))
    policy = PolicySink(
        sink,
        (ActionKind.DELETE_MESSAGE, ActionKind.BAN_SENDER, ActionKind.RESTRICT_SENDER),
        evidence=True,
    )
    guard = GroupGuard(api, policy, sessions, GuardOptions(portal_url="https://x/protect"))
    await guard.poll_once()
    # The ban is not among the group's outcomes: the sender is restricted instead.
    assert fake.called("banChatMember") == []
    assert fake.members[(GROUP["id"], MALLORY["id"])]["status"] == "restricted"
    actions = [r.detail["action"] for r in records(sessions, RecordKind.ACTION)]
    assert actions == ["delete_message", "restrict_sender"]


class Crash(BaseException):
    """The process dying mid-batch (not an error the guard may catch and record)."""


class DyingSink:
    """The real sink until ``survive`` items were scanned; then the process is dead and
    every later call dies too (the other chats' lanes die with it)."""

    def __init__(self, inner: PipelineSink, survive: int) -> None:
        self.inner = inner
        self.survive = survive
        self.in_flight = 0
        self.scanned: list[int] = []

    async def receive(self, media: IncomingMedia) -> Decision:
        if self.survive <= 0:
            raise Crash
        self.survive -= 1
        self.in_flight += 1
        try:
            decision = await self.inner.receive(media)
        finally:
            self.in_flight -= 1
        self.scanned.append(media.message.message_id)
        return decision

    async def settled(self) -> None:
        """Wait until the scans that began before the crash are over (their threads run on)."""
        while self.in_flight:
            await asyncio.sleep(0.01)

    async def report(self, report: UserReport) -> str:
        return await self.inner.report(report)


class DyingBatchSink(DyingSink):
    """The same for a sink that scans batches: the process dies once the first
    ``survive`` items of a batch were scanned."""

    async def receive_many(self, media: list[IncomingMedia]) -> list[Decision | RedressError]:
        if self.survive <= 0:
            raise Crash
        first = media[: self.survive]
        self.survive -= len(first)
        self.in_flight += 1
        try:
            answers = await self.inner.receive_many(first)
        finally:
            self.in_flight -= 1
        self.scanned.extend(m.message.message_id for m in first)
        if len(first) < len(media):
            raise Crash
        return answers


def evidence_count(sessions: sessionmaker[Session], settings: Settings, message_id: int) -> int:
    with sessions() as session:
        service = build_evidence_service(SqlEvidenceStore(session), settings)
        return len(service.items_for_message("telegram", str(GROUP["id"]), str(message_id)))


@pytest.mark.parametrize("sink_kind", [DyingSink, DyingBatchSink])
async def test_a_crash_mid_batch_loses_nothing_and_processes_nothing_twice(
    fake: FakeBotApi,
    api: BotApiClient,
    sink: PipelineSink,
    sessions: sessionmaker[Session],
    settings: Settings,
    sink_kind: type[DyingSink],
) -> None:
    other = chat(-1005555555555, "Other group")
    setup_group(fake)
    fake.add_chat(other)
    pushed = [
        fake.push("message", fake.message(group, ALICE, photo=fake.photo_sizes(jpeg(256, 256, s))))
        for group, s in ((GROUP, 1), (other, 20), (GROUP, 21), (other, 22), (GROUP, 2))
    ]
    options = GuardOptions(portal_url="https://x/protect")
    dying_sink = sink_kind(sink, survive=2)
    dying = GroupGuard(api, dying_sink, sessions, options)
    with pytest.raises(Crash):
        await dying.poll_once()
    await dying_sink.settled()
    # Two items went through the pipeline (scanned, perhaps captured) before the crash, but
    # the guard committed nothing and did nothing irreversible.
    assert len(dying_sink.scanned) == 2
    assert records(sessions) == []
    assert fake.called("deleteMessage") == []

    restarted = GroupGuard(api, sink, sessions, options)
    await restarted.poll_once()  # Telegram re-delivers the whole batch
    await restarted.poll_once()  # confirms it
    scanned = [(r.chat_id, r.message_id) for r in records(sessions, RecordKind.SCANNED)]
    assert sorted(scanned) == sorted(
        (u["message"]["chat"]["id"], u["message"]["message_id"]) for u in pushed
    )
    assert records(sessions, RecordKind.DUPLICATE) == []
    known = [pushed[0]["message"]["message_id"], pushed[4]["message"]["message_id"]]
    for message_id in known:  # each known photo captured once, deleted once
        assert evidence_count(sessions, settings, message_id) == 1
        assert (GROUP["id"], message_id) not in fake.messages
    assert sorted(c["message_id"] for c in fake.called("deleteMessage")) == sorted(known)
    actions = [(r.message_id, r.detail["action"]) for r in records(sessions, RecordKind.ACTION)]
    assert sorted(actions) == sorted(
        (m, a) for m in known for a in ("delete_message", "post_notice")
    )


class DyingApi(BotApiClient):
    """The Bot API client of a process that dies when it gets to banning someone."""

    async def ban_chat_member(
        self, chat_id: int, user_id: int, *, revoke_messages: bool = False
    ) -> bool:
        raise Crash


async def test_a_crash_between_decision_and_actions_resumes_the_actions_once(
    fake: FakeBotApi,
    http: httpx.AsyncClient,
    api: BotApiClient,
    sink: PipelineSink,
    sessions: sessionmaker[Session],
    sleeps: Sleeps,
) -> None:
    setup_group(fake)
    banned = fake.push(
        "message", fake.message(GROUP, MALLORY, photo=fake.photo_sizes(jpeg(256, 256, BAN_SEED)))
    )["message"]["message_id"]
    known = fake.push(
        "message", fake.message(GROUP, ALICE, photo=fake.photo_sizes(jpeg(256, 256, 1)))
    )["message"]["message_id"]
    options = GuardOptions(portal_url="https://x/protect")
    dying_api = DyingApi(http, fake.token, sleep=sleeps, limiter=SendLimiter(sleep=sleeps))
    dying = GroupGuard(dying_api, sink, sessions, options)
    with pytest.raises(Crash):
        await dying.poll_once()
    dying_api.close()
    # The decisions and the offset are committed, with the actions still to do in a journal;
    # the first deletion happened before the crash but was not recorded.
    assert len(records(sessions, RecordKind.SCANNED)) == 2
    assert records(sessions, RecordKind.ACTION) == []
    with sessions() as session:
        assert len(TelegramStore(session).journals()) == 1
    assert [c["message_id"] for c in fake.called("deleteMessage")] == [banned]

    restarted = GroupGuard(api, sink, sessions, options)
    await restarted.start()  # carries out the journal
    await restarted.poll_once()
    assert len(records(sessions, RecordKind.SCANNED)) == 2  # nothing re-scanned
    with sessions() as session:
        assert TelegramStore(session).journals() == []
    actions = records(sessions, RecordKind.ACTION)
    assert sorted((r.message_id, r.detail["action"]) for r in actions) == sorted(
        [
            (banned, "delete_message"),
            (banned, "ban_sender"),
            (banned, "post_notice"),
            (known, "delete_message"),
            (known, "post_notice"),
        ]
    )
    assert all(r.detail.get("resumed") for r in actions)
    assert records(sessions, RecordKind.ALERT) == []
    assert [c["user_id"] for c in fake.called("banChatMember")] == [MALLORY["id"]]
    assert (GROUP["id"], banned) not in fake.messages
    assert (GROUP["id"], known) not in fake.messages
    assert len(fake.called("sendMessage")) == 2


class PeekingSink:
    """The real sink, one item at a time; after each scan notes which files the bot has
    asked for so far."""

    def __init__(self, inner: PipelineSink, fake: FakeBotApi) -> None:
        self.inner = inner
        self.fake = fake
        self.asked: list[tuple[int, int]] = []

    async def receive(self, media: IncomingMedia) -> Decision:
        decision = await self.inner.receive(media)
        self.asked.append((media.message.message_id, len(self.fake.called("getFile"))))
        return decision

    async def report(self, report: UserReport) -> str:
        return await self.inner.report(report)


class PeekingBatchSink(PeekingSink):
    """The same, scanning batches: after each batch notes its messages and the files asked."""

    def __init__(self, inner: PipelineSink, fake: FakeBotApi) -> None:
        super().__init__(inner, fake)
        self.batches: list[tuple[list[int], int]] = []

    async def receive_many(self, media: list[IncomingMedia]) -> list[Decision | RedressError]:
        answers = await self.inner.receive_many(media)
        ids = [m.message.message_id for m in media]
        self.batches.append((ids, len(self.fake.called("getFile"))))
        return answers


async def test_the_next_message_of_a_chat_downloads_while_this_one_is_scanned(
    fake: FakeBotApi, api: BotApiClient, sink: PipelineSink, sessions: sessionmaker[Session]
) -> None:
    setup_group(fake)
    pushed = [
        fake.push("message", fake.message(GROUP, ALICE, photo=fake.photo_sizes(jpeg(64, 64, n))))
        for n in range(3)
    ]
    peeking = PeekingSink(sink, fake)
    options = GuardOptions(portal_url="https://x/protect", scan_batch=1)
    guard = GroupGuard(api, peeking, sessions, options)
    await guard.poll_once()
    # One file per message; by the time a message's scan ends, the next one's was asked for.
    ids = [u["message"]["message_id"] for u in pushed]
    assert peeking.asked == [(ids[0], 2), (ids[1], 3), (ids[2], 3)]
    assert len(records(sessions, RecordKind.SCANNED)) == 3


async def test_a_batch_is_scanned_in_slices_while_the_next_slice_downloads(
    fake: FakeBotApi, api: BotApiClient, sink: PipelineSink, sessions: sessionmaker[Session]
) -> None:
    setup_group(fake)
    other = chat(-1005555555555, "Other group")
    fake.add_chat(other)
    pushed = [
        fake.push(
            "message",
            fake.message((GROUP, other)[n % 2], ALICE, photo=fake.photo_sizes(jpeg(64, 64, n))),
        )
        for n in range(5)
    ]
    peeking = PeekingBatchSink(sink, fake)
    options = GuardOptions(portal_url="https://x/protect", scan_batch=2)
    guard = GroupGuard(api, peeking, sessions, options)
    assert await guard.poll_once() == 5
    ids = [u["message"]["message_id"] for u in pushed]
    # Slices of two media in update order (both chats in one slice); when a slice's scan
    # ends, the next slice's files have been asked for, and no further.
    assert peeking.batches == [(ids[0:2], 4), (ids[2:4], 5), (ids[4:5], 5)]
    assert peeking.asked == []  # never one by one
    scanned = records(sessions, RecordKind.SCANNED)
    assert sorted((r.chat_id, r.message_id) for r in scanned) == sorted(
        (u["message"]["chat"]["id"], u["message"]["message_id"]) for u in pushed
    )


class CountingDownloads:
    """ASGI wrapper of the fake Bot API: file downloads take a moment; counts how many
    are in flight at once."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.in_flight = 0
        self.most = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/file/"):
            await self.app(scope, receive, send)
            return
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        try:
            for _ in range(5):  # let the other downloads start, if the guard allows them
                await asyncio.sleep(0)
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1


async def test_downloads_run_side_by_side_within_the_bound(
    fake: FakeBotApi, sink: PipelineSink, sessions: sessionmaker[Session], sleeps: Sleeps
) -> None:
    setup_group(fake)
    for n in range(12):
        fake.push("message", fake.message(GROUP, ALICE, photo=fake.photo_sizes(jpeg(64, 64, n))))
    counting = CountingDownloads(fake.app)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=counting)) as http:
        api = BotApiClient(http, fake.token, sleep=sleeps, limiter=SendLimiter(sleep=sleeps))
        options = GuardOptions(portal_url="https://x/protect", fetches=3)
        guard = GroupGuard(api, sink, sessions, options)
        assert await guard.poll_once() == 12
        api.close()
    assert counting.most == 3  # one chat's messages download side by side, three at most
    assert len(records(sessions, RecordKind.SCANNED)) == 12


class GarbledDeletes:
    """ASGI wrapper of the fake Bot API: deleteMessage answers an HTML page (a broken proxy)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].endswith("/deleteMessage"):
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"text/html")],
                }
            )
            await send({"type": "http.response.body", "body": b"<html>gateway</html>"})
            return
        await self.app(scope, receive, send)


async def test_an_action_answered_with_garbage_is_an_alert_and_the_batch_completes(
    fake: FakeBotApi, sink: PipelineSink, sessions: sessionmaker[Session], sleeps: Sleeps
) -> None:
    setup_group(fake)
    fake.push("message", fake.message(GROUP, MALLORY, photo=fake.photo_sizes(jpeg(256, 256, 1))))
    fake.push("message", fake.message(GROUP, ALICE, photo=fake.photo_sizes(jpeg(256, 256, 50))))
    transport = httpx.ASGITransport(app=GarbledDeletes(fake.app))
    async with httpx.AsyncClient(transport=transport) as http:
        api = BotApiClient(http, fake.token, sleep=sleeps, limiter=SendLimiter(sleep=sleeps))
        guard = GroupGuard(api, sink, sessions, GuardOptions(portal_url="https://x/protect"))
        assert await guard.poll_once() == 2
        api.close()
    [alert] = [
        r for r in records(sessions, RecordKind.ALERT) if r.detail["action"] == "delete_message"
    ]
    assert alert.detail["code"] == "telegram_malformed_update"
    assert "not understood" in alert.detail["hint"]
    assert len(records(sessions, RecordKind.SCANNED)) == 2
    assert guard.offset == fake.updates[-1]["update_id"] + 1
    with sessions() as session:
        assert TelegramStore(session).journals() == []
