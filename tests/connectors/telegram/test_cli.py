"""The Telegram commands, run as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from cli_support import run_redress

from .fake_bot_api import jpeg


def redress(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run_redress(*args, env=env)


def test_import_telegram_export_reports_matches_and_problems(
    redress_home: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "ChatExport"
    (folder / "photos").mkdir(parents=True)
    (folder / "photos" / "a.jpg").write_bytes(jpeg(256, 256, 5))
    (folder / "photos" / "b.jpg").write_bytes(jpeg(256, 256, 6))
    messages = [
        {
            "id": 1,
            "type": "message",
            "date_unixtime": "1700000000",
            "from": "M",
            "from_id": "user9",
            "photo": "photos/a.jpg",
            "text": "",
        },
        {
            "id": 2,
            "type": "message",
            "date_unixtime": "1700000001",
            "from": "M",
            "from_id": "user9",
            "photo": "photos/b.jpg",
            "text": "",
        },
        {"id": 3, "type": "message", "date_unixtime": "1700000002", "photo": "../../etc/passwd"},
    ]
    (folder / "result.json").write_text(
        json.dumps({"name": "G", "type": "public_supergroup", "id": 4321, "messages": messages})
    )
    assert redress("bank", "create", "victims", "--purpose", "victim_cases").returncode == 0
    added = redress("bank", "add", "victims", str(folder / "photos" / "a.jpg"))
    assert added.returncode == 0, added.stderr
    report = tmp_path / "report.jsonl"
    result = redress(
        "import",
        "telegram-export",
        str(folder),
        "--json",
        "--out",
        str(report),
        "--username",
        "4321=maskpark",
    )
    assert result.returncode == 1, result.stderr  # the unsafe path is an error; the rest ran
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["message_id"], r["kind"]) for r in lines] == [(1, "match"), (3, "unsafe_path")]
    assert lines[0]["link"] == "https://t.me/maskpark/1"
    assert lines[0]["matches"][0].startswith("victims/")
    assert lines[0]["outcome"] == "review"  # a victim-cases bank: a person decides
    assert lines[0]["evidence_ref"]  # preserved on the spot all the same
    assert report.read_text().splitlines() == result.stdout.splitlines()
    assert "3 messages, 3 media" in result.stderr
    assert "Traceback" not in result.stderr


def test_import_of_a_folder_without_an_export_is_a_clear_error(
    redress_home: Path, tmp_path: Path
) -> None:
    result = redress("import", "telegram-export", str(tmp_path))
    assert result.returncode == 2
    assert "telegram_export_error" in result.stderr
    assert "Traceback" not in result.stderr


def test_run_without_a_token_says_how_to_give_one(redress_home: Path) -> None:
    result = redress("telegram", "run")
    assert result.returncode == 2
    assert "REDRESS_TELEGRAM_BOT_TOKEN" in result.stderr


def test_a_malformed_token_is_refused_without_showing_it(
    redress_home: Path, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("123456:secret part/with slash\n")
    env = dict(os.environ, REDRESS_TELEGRAM_BOT_TOKEN_FILE=str(token_file))
    result = redress("telegram", "run", env=env)
    assert result.returncode == 2
    assert "secret part" not in result.stderr + result.stdout
    assert "not shown" in result.stderr


def test_group_settings_round_trip(redress_home: Path) -> None:
    set_result = redress(
        "telegram",
        "group",
        "set",
        "--chat",
        "-1001234567890",
        "--bank",
        "victims",
        "--outcome",
        "delete_message",
        "--notice",
        "已删除",
        "--language",
        "zh",
    )
    assert set_result.returncode == 0, set_result.stderr
    listed = [json.loads(line) for line in redress("telegram", "group", "list").stdout.splitlines()]
    assert listed == [
        {
            "chat_id": -1001234567890,
            "title": None,
            "enabled": True,
            "banks": ["victims"],
            "outcomes": ["delete_message"],
            "notice_text": "已删除",
            "language": "zh",
        }
    ]
    bad = redress("telegram", "group", "set", "--chat", "-1", "--outcome", "nuke")
    assert bad.returncode == 2
    assert "invalid_input" in bad.stderr


def test_bench_prints_figures_beside_anchors(redress_home: Path) -> None:
    result = redress(
        "bench",
        "telegram",
        "--json",
        "--messages",
        "20",
        "--export-messages",
        "200",
        "--bank-size",
        "100",
    )
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert figures["bot"]["media_messages"] == 20
    assert figures["bot"]["media_per_s"] > 0
    assert figures["bot"]["ratio_to_sink_alone"] > 0
    assert figures["export"]["media"] == 40
    assert figures["export"]["ratio_to_ijson_parse"] > 0
    assert figures["machine"]["cpus"] >= 1
