"""Transparency reports (DSA Art. 15 style): notices received by source and type,
actions by type and basis, automated and human decisions, median and 90th-percentile
time to act, breaches, appeals and reversals, overall and per calendar month.

Figures are computed from the raw records (notices, statements of reasons, appeals)
and rendered as JSON, CSV (one row per period, metric and key) or a self-contained
HTML page with inline SVG charts (no script, no external assets).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from html import escape

from redress.reports.errors import BadReportInputError
from redress.reports.store import NoticeStore

FORMATS = ("html", "csv", "json")
STYLE = (
    "body{font-family:sans-serif;max-width:60em;margin:2em auto}"
    "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .6em;"
    "text-align:right}th:first-child,td:first-child{text-align:left}"
)


@dataclass(frozen=True, slots=True)
class Figures:
    """The figures of one period."""

    period: str
    start: dt.datetime
    end: dt.datetime
    notices_by_source: Mapping[str, int]
    notices_by_type: Mapping[str, int]
    notices_closed: int
    actions_by_type: Mapping[str, int]
    actions_by_basis: Mapping[str, int]
    automated_decisions: int
    human_decisions: int
    median_hours_to_act: float | None
    p90_hours_to_act: float | None
    breaches: int
    appeals: int
    reversals: int


@dataclass(frozen=True, slots=True)
class TransparencyReport:
    """The whole reporting period and each calendar month in it."""

    total: Figures
    months: tuple[Figures, ...]


def percentile(values: Sequence[float], share: float) -> float | None:
    """Nearest-rank percentile (the value below which ``share`` of the values lie)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def parse_day(text: str, name: str) -> dt.datetime:
    """A ``YYYY-MM-DD`` date as midnight UTC."""
    try:
        return dt.datetime.combine(dt.date.fromisoformat(text), dt.time(), tzinfo=dt.UTC)
    except ValueError:
        raise BadReportInputError(f"{name} must be a date like 2026-01-31, not {text!r}") from None


def months_between(start: dt.datetime, end: dt.datetime) -> list[tuple[dt.datetime, dt.datetime]]:
    """Calendar months overlapping ``[start, end)``, clipped to it."""
    out = []
    cursor = start
    while cursor < end:
        following = (cursor.replace(day=1) + dt.timedelta(days=32)).replace(day=1)
        out.append((cursor, min(following, end)))
        cursor = following
    return out


class TransparencyService:
    """Computes the report from the database."""

    def __init__(self, store: NoticeStore) -> None:
        self.store = store

    def report(self, start: dt.datetime, end: dt.datetime) -> TransparencyReport:
        """Figures for ``[start, end)`` and for each month in it."""
        if end <= start:
            raise BadReportInputError("--to must be after --from")
        if (end - start).days > 3660:
            raise BadReportInputError("a report covers at most ten years")
        months = tuple(
            self.figures(a, b, a.strftime("%Y-%m")) for a, b in months_between(start, end)
        )
        return TransparencyReport(self.figures(start, end, "total"), months)

    def figures(self, start: dt.datetime, end: dt.datetime, label: str) -> Figures:
        """The figures of one period."""
        received = self.store.notices_received(start, end)
        closed = [n for n in self.store.notices_closed(start, end) if n.outcome == "removed"]
        hours = [
            (n.closed_at - n.received_at).total_seconds() / 3600
            for n in closed
            if n.closed_at is not None
        ]
        statements = self.store.statements(start, end)
        appeals = self.store.appeals(start, end)
        return Figures(
            period=label,
            start=start,
            end=end,
            notices_by_source=dict(
                Counter(
                    "trusted_flagger" if n.trusted else n.channel for n in received
                ).most_common()
            ),
            notices_by_type=dict(Counter(n.regime for n in received).most_common()),
            notices_closed=len(self.store.notices_closed(start, end)),
            actions_by_type=dict(Counter(s.action_kind for s in statements).most_common()),
            actions_by_basis=dict(
                Counter(f"{s.source_type}:{s.category}" for s in statements).most_common()
            ),
            automated_decisions=sum(1 for s in statements if s.automated_decision),
            human_decisions=sum(1 for s in statements if not s.automated_decision),
            median_hours_to_act=statistics.median(hours) if hours else None,
            p90_hours_to_act=percentile(hours, 0.9),
            breaches=len(self.store.notices_breached(start, end)),
            appeals=len(appeals),
            reversals=sum(1 for a in appeals if a.status == "overturned"),
        )


def _plain(figures: Figures) -> dict[str, object]:
    data = asdict(figures)
    data["start"] = figures.start.date().isoformat()
    data["end"] = figures.end.date().isoformat()
    return data


def to_json(report: TransparencyReport) -> str:
    """The report as JSON: ``{"total": {...}, "months": [...]}``."""
    return json.dumps(
        {"total": _plain(report.total), "months": [_plain(m) for m in report.months]},
        indent=2,
        sort_keys=True,
    )


def to_csv(report: TransparencyReport) -> str:
    """The report as CSV rows ``period,metric,key,value``."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["period", "metric", "key", "value"])
    for figures in (report.total, *report.months):
        for metric, value in asdict(figures).items():
            if metric in ("period", "start", "end"):
                continue
            if isinstance(value, Mapping):
                for key, count in value.items():
                    writer.writerow([figures.period, metric, key, count])
            else:
                writer.writerow([figures.period, metric, "", "" if value is None else value])
    return out.getvalue()


def _bars(values: Mapping[str, int], title: str) -> str:
    rows = list(values.items())
    width, height = 460, 28 * max(1, len(rows)) + 24
    top = max([v for _, v in rows] + [1])
    parts = [
        f'<svg role="img" aria-label="{escape(title)}" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    for n, (label, value) in enumerate(rows):
        y = 12 + 28 * n
        w = int((width - 230) * value / top)
        parts.append(f'<text x="0" y="{y + 14}" font-size="12">{escape(str(label))}</text>')
        parts.append(f'<rect x="180" y="{y}" width="{w}" height="18" fill="#2f6f8f"/>')
        parts.append(f'<text x="{186 + w}" y="{y + 14}" font-size="12">{value}</text>')
    if not rows:
        parts.append('<text x="0" y="20" font-size="12">none</text>')
    parts.append("</svg>")
    return "".join(parts)


def _hours(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f} h"


def to_html(report: TransparencyReport, title: str = "Transparency report") -> str:
    """A self-contained HTML page: tables and inline SVG charts, no script."""
    t = report.total
    head = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>"
    )
    summary = [
        ("Notices received", sum(t.notices_by_source.values())),
        ("Notices closed", t.notices_closed),
        ("Removals and restrictions", sum(t.actions_by_type.values())),
        ("Automated decisions", t.automated_decisions),
        ("Human decisions", t.human_decisions),
        ("Median time to act", _hours(t.median_hours_to_act)),
        ("90th percentile time to act", _hours(t.p90_hours_to_act)),
        ("Deadline breaches", t.breaches),
        ("Appeals", t.appeals),
        ("Reversals on appeal", t.reversals),
    ]
    rows = "".join(f"<tr><th>{escape(k)}</th><td>{escape(str(v))}</td></tr>" for k, v in summary)
    month_rows = "".join(
        f"<tr><td>{m.period}</td><td>{sum(m.notices_by_source.values())}</td>"
        f"<td>{sum(m.actions_by_type.values())}</td><td>{_hours(m.median_hours_to_act)}</td>"
        f"<td>{_hours(m.p90_hours_to_act)}</td><td>{m.breaches}</td><td>{m.appeals}</td>"
        f"<td>{m.reversals}</td></tr>"
        for m in report.months
    )
    charts = "".join(
        f"<h2>{escape(name)}</h2>{_bars(values, name)}"
        for name, values in (
            ("Notices by source", t.notices_by_source),
            ("Notices by type", t.notices_by_type),
            ("Actions by type", t.actions_by_type),
            ("Actions by basis", t.actions_by_basis),
            (
                "Automated and human decisions",
                {"automated": t.automated_decisions, "human": t.human_decisions},
            ),
        )
    )
    return (
        f"{head}<h1>{escape(title)}</h1>"
        f"<p>{t.start.date().isoformat()} to {t.end.date().isoformat()} (end exclusive), UTC.</p>"
        f"<table>{rows}</table>{charts}<h2>Per month</h2><table><tr><th>month</th>"
        "<th>notices</th><th>actions</th><th>median</th><th>p90</th><th>breaches</th>"
        f"<th>appeals</th><th>reversals</th></tr>{month_rows}</table></body></html>"
    )


def render(report: TransparencyReport, fmt: str) -> str:
    """The report in ``fmt`` (html, csv or json)."""
    if fmt == "json":
        return to_json(report)
    if fmt == "csv":
        return to_csv(report)
    if fmt == "html":
        return to_html(report)
    raise BadReportInputError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
