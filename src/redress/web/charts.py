"""Small server-rendered SVG charts for the review dashboard (no JavaScript, no CDN)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

from markupsafe import Markup

PALETTE = ("#2f6f8f", "#d9822b", "#5b8c3a", "#a23b72", "#6b5b95", "#c0392b", "#7f8c8d")


def bar_chart(values: Mapping[str, int], *, title: str, width: int = 420) -> Markup:
    """Horizontal bars, one per key, labelled with its count."""
    rows = list(values.items())
    height = 28 * max(1, len(rows)) + 30
    top = max([v for _, v in rows] + [1])
    parts = [
        f'<svg class="chart" role="img" aria-label="{escape(title)}" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}">',
        f"<title>{escape(title)}</title>",
    ]
    for n, (label, value) in enumerate(rows):
        y = 20 + 28 * n
        w = int((width - 190) * value / top)
        colour = PALETTE[n % len(PALETTE)]
        parts.append(f'<text x="0" y="{y + 14}" class="label">{escape(label)}</text>')
        parts.append(f'<rect x="140" y="{y}" width="{w}" height="18" fill="{colour}"/>')
        parts.append(f'<text x="{146 + w}" y="{y + 14}" class="value">{value}</text>')
    if not rows:
        parts.append('<text x="0" y="30" class="label">nothing yet</text>')
    parts.append("</svg>")
    # Every label above went through html.escape; the rest is our own markup.
    return Markup("".join(parts))  # noqa: S704


def stacked_days(
    series: Mapping[str, Mapping[str, int]], days: Sequence[str], *, title: str, width: int = 640
) -> Markup:
    """Stacked columns per day, one colour per series, with a legend."""
    height = 240
    plot_h = 150
    names = sorted(series)[: len(PALETTE)]
    totals = [sum(series[s].get(d, 0) for s in names) for d in days]
    top = max([*totals, 1])
    step = (width - 40) / max(1, len(days))
    parts = [
        f'<svg class="chart" role="img" aria-label="{escape(title)}" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}">',
        f"<title>{escape(title)}</title>",
        f'<line x1="30" y1="{plot_h + 10}" x2="{width}" y2="{plot_h + 10}" class="axis"/>',
        f'<text x="0" y="20" class="value">{top}</text>',
    ]
    for i, day in enumerate(days):
        x = 34 + i * step
        y: float = plot_h + 10
        for n, name in enumerate(names):
            count = series[name].get(day, 0)
            if not count:
                continue
            h = plot_h * count / top
            y -= h
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{step * 0.7:.1f}" height="{h:.1f}" '
                f'fill="{PALETTE[n]}"><title>{escape(name)} {escape(day)}: {count}</title></rect>'
            )
        if i % 2 == 0:
            parts.append(
                f'<text x="{x:.1f}" y="{plot_h + 26}" class="tick">{escape(day[5:])}</text>'
            )
    for n, name in enumerate(names):
        x = 34 + 150 * (n % 4)
        y = plot_h + 44 + 16 * (n // 4)
        parts.append(f'<rect x="{x}" y="{y - 10}" width="10" height="10" fill="{PALETTE[n]}"/>')
        parts.append(f'<text x="{x + 14}" y="{y}" class="tick">{escape(name[:22])}</text>')
    parts.append("</svg>")
    # Every label above went through html.escape; the rest is our own markup.
    return Markup("".join(parts))  # noqa: S704
