"""Transparency reports: every figure equals the count the test computes itself from the
raw records; the CLI writes HTML (inline SVG, no script), CSV and JSON."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
import os
import random
import statistics
from collections import Counter
from pathlib import Path

from reports_support import World, dsa, take_it_down
from sqlalchemy import select

from cli_support import run_redress
from redress.reports.interfaces import Sender
from redress.reports.models import Notice, StatementOfReasons
from redress.reports.store import NoticeStore
from redress.reports.tasks import NoticeWorker
from redress.reports.transparency import TransparencyService, to_csv, to_html, to_json
from redress.review.interfaces import DecisionRequest, Outcome, Viewer
from redress.review.models import ReviewAppeal

JUNE = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
AUGUST = dt.datetime(2026, 8, 1, tzinfo=dt.UTC)
REPORT = ("report", "transparency")


def image(n: int) -> bytes:
    return random.Random(n).randbytes(32)


def decide(w: World, viewer: Viewer, reference: str, outcome: Outcome, reason: str) -> None:
    with w.pipeline.sessions.begin() as session:
        read = w.notices(session).read(reference)
        review = w.review(session)
        item = review.lease(viewer, read.items[0].review_item_id or 0)
        review.decide(
            viewer,
            DecisionRequest(
                cluster_id=item.cluster_id,
                item_id=item.id,
                version=item.version,
                outcome=outcome,
                reason_code=reason,
                actions=("delete_message",) if outcome is Outcome.CONFIRMED else (),
            ),
        )


def build_history(w: World) -> None:
    """Two months of notices, decisions, a breach, a late decision and an appeal."""
    worker = NoticeWorker(w.pipeline.sessions, w.settings, w.clock, seen_index=w.seen_index())
    mod = w.moderator("mod@example.org")
    senior = w.moderator("senior@example.org")
    for n in range(5):
        w.scan(image(n), f"-100100{n}", "1", sender=f"9{n}")
    w.now = JUNE + dt.timedelta(hours=9)
    a = w.submit(take_it_down("https://t.me/c/1001000/1"))
    w.advance(hours=3)
    decide(w, mod, a, Outcome.CONFIRMED, "ncii_new")
    worker.tick()
    w.now = JUNE + dt.timedelta(days=1)
    b = w.submit(dsa("https://t.me/c/1001001/1"), Sender("api", trusted=True))
    w.advance(hours=10)
    decide(w, mod, b, Outcome.NOT_VIOLATION, "not_intimate")
    worker.tick()
    w.now = JUNE + dt.timedelta(days=2)
    w.submit(take_it_down("https://t.me/c/1001002/1"))  # never decided: breached
    e = w.submit(dsa("https://t.me/c/1001004/1"), Sender("form"))
    w.advance(hours=20)
    decide(w, mod, e, Outcome.CONFIRMED, "ncii_match")
    w.advance(hours=30)
    worker.tick()
    # The person whose post came down under notice A appeals; another moderator reverses.
    w.now = JUNE + dt.timedelta(days=10)
    with w.pipeline.sessions.begin() as session:
        read = w.notices(session).read(a)
        review = w.review(session)
        cluster = review.store.item(read.items[0].review_item_id or 0).cluster_id  # type: ignore[union-attr]
        review.appeal(mod, cluster, "user 90", "it is me, I posted it myself")
    with w.pipeline.sessions.begin() as session:
        review = w.review(session)
        item = review.lease(senior, read.items[0].review_item_id or 0)
        review.decide(
            senior,
            DecisionRequest(
                cluster_id=item.cluster_id,
                item_id=item.id,
                version=item.version,
                outcome=Outcome.NOT_VIOLATION,
                reason_code="consensual_public",
            ),
        )
    w.now = dt.datetime(2026, 7, 1, 8, tzinfo=dt.UTC)
    d = w.submit(dsa("https://t.me/c/1001003/1"), Sender("api"))
    w.advance(hours=50)
    decide(w, mod, d, Outcome.CONFIRMED, "ncii_new")  # two hours late
    worker.tick()


def expected(w: World, start: dt.datetime, end: dt.datetime) -> dict[str, object]:
    """The figures, computed here from the raw rows."""
    with w.pipeline.sessions() as session:
        notices = list(session.scalars(select(Notice)))
        statements = list(session.scalars(select(StatementOfReasons)))
        appeals = list(session.scalars(select(ReviewAppeal)))
    received = [n for n in notices if start <= n.received_at < end]
    closed = [n for n in notices if n.closed_at and start <= n.closed_at < end]
    acted = sorted(
        (n.closed_at - n.received_at).total_seconds() / 3600
        for n in closed
        if n.outcome == "removed" and n.closed_at
    )
    made = [s for s in statements if start <= s.created_at < end]
    opened = [a for a in appeals if start <= a.opened_at < end]
    return {
        "notices_by_source": dict(
            Counter("trusted_flagger" if n.trusted else n.channel for n in received)
        ),
        "notices_by_type": dict(Counter(n.regime for n in received)),
        "notices_closed": len(closed),
        "actions_by_type": dict(Counter(s.action_kind for s in made)),
        "actions_by_basis": dict(Counter(f"{s.source_type}:{s.category}" for s in made)),
        "automated_decisions": sum(s.automated_decision for s in made),
        "human_decisions": sum(not s.automated_decision for s in made),
        "median_hours_to_act": statistics.median(acted) if acted else None,
        "p90_hours_to_act": acted[math.ceil(0.9 * len(acted)) - 1] if acted else None,
        "breaches": sum(1 for n in notices if n.breached_at and start <= n.due_at < end),
        "appeals": len(opened),
        "reversals": sum(1 for a in opened if a.status == "overturned"),
    }


def test_report_figures_equal_counts_from_the_raw_records(w: World) -> None:
    build_history(w)
    with w.pipeline.sessions() as session:
        report = TransparencyService(NoticeStore(session)).report(JUNE, AUGUST)
    periods = [(report.total, JUNE, AUGUST)] + [(m, m.start, m.end) for m in report.months]
    assert [m.period for m in report.months] == ["2026-06", "2026-07"]
    for figures, start, end in periods:
        want = expected(w, start, end)
        got = {name: getattr(figures, name) for name in want}
        got = {k: dict(v) if isinstance(v, dict) else v for k, v in got.items()}
        assert got == want, figures.period
    # The scenario's own facts, so the comparison above cannot pass on empty data.
    total = report.total
    assert sum(total.notices_by_source.values()) == 5
    assert total.notices_by_source["trusted_flagger"] == 1
    assert total.breaches == 2  # one never decided, one decided late
    assert total.appeals == 1
    assert total.reversals == 1
    assert total.median_hours_to_act == 20
    assert total.human_decisions == 3
    assert report.months[1].breaches == 1


def test_renderings_carry_the_same_figures(w: World) -> None:
    build_history(w)
    with w.pipeline.sessions() as session:
        report = TransparencyService(NoticeStore(session)).report(JUNE, AUGUST)
    data = json.loads(to_json(report))
    assert data["total"]["breaches"] == report.total.breaches
    assert len(data["months"]) == 2
    rows = list(csv.DictReader(io.StringIO(to_csv(report))))
    breaches = {r["period"]: int(r["value"]) for r in rows if r["metric"] == "breaches"}
    assert breaches == {"total": 2, "2026-06": 1, "2026-07": 1}
    html = to_html(report)
    assert "<svg" in html
    assert "<script" not in html
    assert "http" not in html.replace("http://www.w3.org/2000/svg", "")


def test_cli_writes_each_format(w: World, redress_home: Path) -> None:
    build_history(w)
    env = dict(os.environ, REDRESS_HOME=str(redress_home))
    env["REDRESS_DATABASE_URL"] = w.settings.effective_database_url
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2] / "src")
    for fmt in ("json", "csv", "html"):
        result = run_redress(
            *REPORT, "--from", "2026-06-01", "--to", "2026-08-01", "--format", fmt, env=env
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip()
    bad = run_redress(*REPORT, "--from", "2026-13-01", "--to", "2026-08-01", env=env)
    assert bad.returncode == 2
    assert "report_bad_input" in bad.stderr
    assert "Traceback" not in bad.stderr
