"""`redress telegram run` end to end: a real process long-polling a real (local) HTTP server."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from sqlalchemy.orm import Session

from redress.connectors.telegram.store import RecordKind, TelegramStore
from redress.store.db import make_engine

from .fake_bot_api import FakeBotApi, chat, jpeg, user

GROUP = chat(-1003333333333, "Real group")
MALLORY = user(66, "Mallory")


@pytest.fixture
def served(fake: FakeBotApi) -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(fake.app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join()


def scanned(home: Path) -> list[int]:
    engine = make_engine(f"sqlite:///{home / 'redress.db'}")
    try:
        with Session(engine) as session:
            rows = TelegramStore(session).records([RecordKind.SCANNED])
            return [r.message_id or 0 for r in rows]
    except Exception:  # noqa: BLE001 - the bot may not have created the tables yet
        return []
    finally:
        engine.dispose()


def run_until(env: dict[str, str], home: Path, count: int) -> subprocess.CompletedProcess[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "redress", "telegram", "run"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        while len(scanned(home)) < count:
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_run_polls_scans_acts_and_resumes_after_a_restart(
    fake: FakeBotApi, served: str, redress_home: Path, tmp_path: Path
) -> None:
    fake.add_chat(GROUP)
    fake.add_member(GROUP["id"], MALLORY)
    known = tmp_path / "known.jpg"
    known.write_bytes(jpeg(256, 256, 1))
    env = dict(
        os.environ,
        REDRESS_TELEGRAM_BOT_TOKEN=fake.token,
        REDRESS_TELEGRAM_API_URL=served,
        REDRESS_TELEGRAM_POLL_TIMEOUT="0",
    )
    for command in (
        ["bank", "create", "known", "--purpose", "confirmed_violations"],
        ["bank", "add", "known", str(known)],
    ):
        made = subprocess.run(
            [sys.executable, "-m", "redress", *command], env=env, capture_output=True, text=True
        )
        assert made.returncode == 0, made.stderr
    first = fake.message(GROUP, MALLORY, photo=fake.photo_sizes(jpeg(256, 256, 1)))
    pushed = fake.push("message", first)
    result = run_until(env, redress_home, 1)
    assert fake.token not in result.stdout + result.stderr
    assert (GROUP["id"], first["message_id"]) not in fake.messages  # deleted
    assert fake.called("deleteWebhook")

    second = fake.message(GROUP, MALLORY, photo=fake.photo_sizes(jpeg(256, 256, 9)))
    fake.push("message", second)
    run_until(env, redress_home, 2)
    assert scanned(redress_home) == [first["message_id"], second["message_id"]]
    offsets = [call.get("offset") for call in fake.called("getUpdates")]
    assert offsets[0] is None
    assert pushed["update_id"] + 1 in offsets  # the restart resumed after update 1
