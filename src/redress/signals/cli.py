"""Command-line commands of the signals domain (``redress hash``, ``redress bench hash``)."""

from __future__ import annotations

import enum
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from redress.signals.errors import HashError
from redress.signals.options import HashOptions
from redress.signals.service import MediaSignals, hash_file


class Compat(enum.StrEnum):
    """Hash the way another system does, bit for bit."""

    HMA = "hma"


def register(app: typer.Typer, bench: typer.Typer) -> None:
    """Add this domain's commands to the root app and the bench group."""
    app.command("hash")(hash_command)
    bench.command("hash")(bench_hash_command)
    bench.command("robustness")(bench_robustness_command)


def hash_command(
    ctx: typer.Context,
    paths: Annotated[
        list[Path], typer.Argument(help="Files or folders (folders are walked recursively).")
    ],
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per file, one per line.")
    ] = False,
    compat: Annotated[
        Compat | None,
        typer.Option(
            "--compat",
            help="hma: hash exactly as Hasher-Matcher-Actioner (no EXIF orientation, full decode).",
        ),
    ] = None,
    exact: Annotated[
        bool, typer.Option("--exact", help="Decode images at full resolution (no fast path).")
    ] = False,
    seconds_per_hash: Annotated[
        float,
        typer.Option(
            "--seconds-per-hash",
            min=0.0,
            help="vPDQ: seconds between frame hashes; 0 = every frame.",
        ),
    ] = 1.0,
    dihedral: Annotated[
        bool, typer.Option("--dihedral", help="Also print the 8 rotation/flip hashes of images.")
    ] = False,
) -> None:
    """Hash images and videos: PDQ, vPDQ, MD5 and SHA-256. Exits 1 if any file failed."""
    from redress.cli import cli_state

    settings = cli_state(ctx).settings
    options = HashOptions.from_settings(
        settings,
        compat_hma=compat is Compat.HMA,
        exact=exact,
        seconds_per_hash=seconds_per_hash,
        dihedral=dihedral,
    )
    files = list(_expand(paths))
    failed = 0
    with _Progress(len(files)) as advance:
        for path in files:
            record = _hash_one(path, options)
            if "error" in record:
                failed += 1
            typer.echo(json.dumps(record) if as_json else _line(record))
            advance()
    if failed:
        raise typer.Exit(1)


def bench_hash_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
    count: Annotated[
        int, typer.Option("--count", min=1, help="Telegram-like images to generate.")
    ] = 40,
    repeat: Annotated[
        int,
        typer.Option("--repeat", min=1, help="Tries per image and per video; the best counts."),
    ] = 2,
    video: Annotated[
        bool, typer.Option("--video/--no-video", help="Also time vPDQ on sample videos.")
    ] = True,
    videos: Annotated[
        Path | None,
        typer.Option(
            "--videos",
            help="Folder of videos to time (default: ../shared/data/vpdq/videos, else a"
            " generated 10 s 720p clip).",
        ),
    ] = None,
) -> None:
    """Images/s of Meta's PDQ hasher (the anchor) vs Redress exact and fast, one core; video s/s."""
    import tempfile

    from redress.signals.bench import (
        default_sample_videos,
        render_report,
        run_hash_bench,
        synthetic_video,
    )

    with tempfile.TemporaryDirectory(prefix="redress-bench-video-") as scratch:
        clips: list[Path] = []
        if video:
            if videos is not None:
                clips = sorted(p for p in videos.rglob("*") if p.is_file())
            else:
                clips = default_sample_videos() or [synthetic_video(Path(scratch))]
        report = run_hash_bench(count=count, repeat=repeat, videos=clips)
    typer.echo(json.dumps(report, indent=2) if as_json else render_report(report))


def bench_robustness_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    originals: Annotated[
        int, typer.Option("--originals", min=4, help="Protected pictures to generate.")
    ] = 60,
    seed: Annotated[int, typer.Option("--seed", help="Seed for tiles and edits.")] = 2026,
    repeat: Annotated[
        int,
        typer.Option(
            "--repeat", min=1, help="Times each copy is hashed; its fastest run is the CPU figure."
        ),
    ] = 3,
    pictures: Annotated[
        Path | None,
        typer.Option(
            "--pictures",
            help="A folder of your own pictures to use as the originals (--originals is"
            " then ignored); all are reported as held out.",
        ),
    ] = None,
) -> None:
    """Recall per edit family and false matches: plain PDQ vs Redress's robust hash sets."""
    from redress.signals.robust_bench import render_robustness_report, run_robustness_bench

    report = run_robustness_bench(
        originals=originals, seed=seed, repeat=repeat, pictures_dir=pictures
    )
    typer.echo(json.dumps(report, indent=2) if as_json else render_robustness_report(report))


def _hash_one(path: Path, options: HashOptions) -> dict[str, Any]:
    name = str(path)
    try:
        signals: MediaSignals = hash_file(path, options)
    except HashError as exc:
        return {"path": name, "error": {"code": exc.code, "message": exc.message}}
    except Exception as exc:  # noqa: BLE001 - one odd file must not stop a batch
        return {
            "path": name,
            "error": {"code": "internal_error", "message": f"{type(exc).__name__}: {exc}"},
        }
    return signals.to_json(name)


def _expand(paths: list[Path]) -> Iterator[Path]:
    """Files as given; folders walked recursively in name order, hidden entries skipped."""
    for path in paths:
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                relative = child.relative_to(path).parts
                if child.is_file() and not any(part.startswith(".") for part in relative):
                    yield child
        else:
            yield path


def _line(record: dict[str, Any]) -> str:
    if "error" in record:
        error = record["error"]
        return f"{record['path']}  ERROR {error['code']}: {error['message']}"
    parts = [record["path"], record["kind"]]
    if record["pdq"]:
        parts.append(f"pdq={record['pdq']} q={record['quality']}")
    if record["kind"] == "video":
        parts.append(f"vpdq={len(record['vpdq'])} frames")
    if not record["hashable"]:
        parts.append(f"NOT HASHABLE ({record['reason']})")
    parts.append(f"sha256={record['sha256']}")
    return "  ".join(parts)


class _Progress:
    """A Rich progress bar on standard error when it is a terminal; nothing when piped."""

    def __init__(self, total: int) -> None:
        self._total = total
        self._bar: Any = None

    def __enter__(self) -> Any:
        if not sys.stderr.isatty() or self._total < 2:
            return lambda: None
        from rich.console import Console
        from rich.progress import Progress

        self._bar = Progress(console=Console(stderr=True), transient=True)
        self._bar.__enter__()
        task = self._bar.add_task("hashing", total=self._total)
        return lambda: self._bar.advance(task)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)
