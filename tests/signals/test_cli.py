"""`redress hash` end to end, in a subprocess, as users run it."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

from cli_support import run_redress
from signals.media import make_video


def records(stdout: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in stdout.splitlines()]


def test_compat_hma_json_matches_meta_reference(shared_data: Path, redress_home: Path) -> None:
    folder = shared_data / "pdq" / "bridge-mods"
    result = run_redress("hash", "--json", "--compat", "hma", str(folder))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # no progress bar when not on a terminal
    with (shared_data / "pdq" / "expected-pdqhash.csv").open(encoding="utf-8") as handle:
        expected = {row["path"]: row for row in csv.DictReader(handle)}
    got = records(result.stdout)
    assert len(got) == 12
    for record in got:
        row = expected[str(Path(str(record["path"])).relative_to(shared_data / "pdq"))]
        assert record["kind"] == "image"
        assert (record["pdq"], record["quality"]) == (row["pdq_hex"], int(row["quality"]))
        assert (record["md5"], record["sha256"]) == (row["md5"], row["sha256"])


def test_failures_are_reported_per_file_and_exit_1(
    shared_data: Path, tmp_path: Path, redress_home: Path
) -> None:
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "notes.jpg").write_text("not a picture", encoding="utf-8")
    good = shared_data / "pdq" / "bridge-mods" / "aaa-orig.jpg"
    result = run_redress(
        "hash",
        "--json",
        str(tmp_path / "empty.jpg"),
        str(good),
        str(tmp_path / "notes.jpg"),
        str(tmp_path / "missing.png"),
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    got = records(result.stdout)
    assert [r.get("error", {}).get("code") for r in got] == [  # type: ignore[union-attr]
        "empty_file",
        None,
        "unsupported_type",
        "not_found",
    ]
    assert got[1]["pdq"] is not None
    for failure in (got[0], got[2], got[3]):
        assert set(failure) == {"path", "error"}
        assert failure["error"]["message"]  # type: ignore[index]


def test_video_json_with_seconds_per_hash(tmp_path: Path, redress_home: Path) -> None:
    video = make_video(tmp_path / "clip.mp4", frames=12, fps=6)
    result = run_redress("hash", "--json", "--seconds-per-hash", "0.5", str(video))
    assert result.returncode == 0, result.stderr
    (record,) = records(result.stdout)
    assert record["kind"] == "video"
    assert [f["frame"] for f in record["vpdq"]] == [0, 3, 6, 9]  # type: ignore[index]
    assert [f["ts"] for f in record["vpdq"]] == [0.0, 0.5, 1.0, 1.5]  # type: ignore[index]
    every = records(run_redress("hash", "--json", "--seconds-per-hash", "0", str(video)).stdout)
    assert len(every[0]["vpdq"]) == 12  # type: ignore[arg-type]


def test_dihedral_and_exact_flags(shared_data: Path, redress_home: Path) -> None:
    path = shared_data / "pdq" / "reg-test-input" / "dih" / "bridge-1-original.jpg"
    result = run_redress("hash", "--json", "--exact", "--dihedral", str(path))
    assert result.returncode == 0, result.stderr
    (record,) = records(result.stdout)
    assert len(record["dihedral"]) == 8  # type: ignore[arg-type]
    assert record["dihedral"][0] == record["pdq"]  # type: ignore[index]


def test_plain_output_is_one_readable_line_per_file(
    shared_data: Path, tmp_path: Path, redress_home: Path
) -> None:
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 30)
    small = shared_data / "pdq" / "misc-images" / "small.jpg"
    result = run_redress("hash", str(small), str(tmp_path / "bad.png"))
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    assert "image" in lines[0]
    assert "pdq=" in lines[0]
    assert "NOT HASHABLE" in lines[0]
    assert "ERROR corrupt" in lines[1]


def test_bad_option_is_a_usage_error_without_traceback(redress_home: Path) -> None:
    result = run_redress("hash", "--seconds-per-hash", "-1", "x.jpg")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    result = run_redress("hash", "--compat", "photodna", "x.jpg")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_progress_bar_goes_to_a_terminal_stderr_only(shared_data: Path, redress_home: Path) -> None:
    import pty

    folder = shared_data / "pdq" / "bridge-mods"
    leader, follower = pty.openpty()
    try:
        result = subprocess.run(
            [sys.executable, "-m", "redress", "hash", "--json", str(folder)],
            stdout=subprocess.PIPE,
            stderr=follower,
            text=True,
            env=dict(os.environ, COLUMNS="100"),
            check=False,
        )
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal is closed once everything is read
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(leader)
    terminal = b"".join(chunks).decode("utf-8", "replace")
    assert result.returncode == 0
    assert "hashing" in terminal
    assert "hashing" not in result.stdout
    assert len(records(result.stdout)) == 12
