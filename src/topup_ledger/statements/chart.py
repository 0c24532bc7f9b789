"""A small bar chart of the school's top-up by period, as inline SVG: no script, no fetch.

Each bar is what the school was paid in that period's runs; the statement's own period is
drawn darker. Amounts are written on the bars, so the chart reads without the axis, and the
same figures are in the SVG's title and description for screen readers.
"""

from __future__ import annotations

from html import escape

from topup_ledger.domain.money import pounds_for_people
from topup_ledger.statements.model import Bar

WIDTH, HEIGHT = 640, 210
CURRENT, EARLIER = "#1d70b8", "#5694ca"  # 5.2:1 and 3.2:1 on white
TOP, BOTTOM, LEFT, RIGHT = 26, 44, 8, 8


def short_money(pence: int) -> str:
    """£12,345.67 → £12.3k on the bars (the tables carry the exact pence)."""
    pounds = abs(pence) / 100
    sign = "−" if pence < 0 else ""
    if pounds >= 1_000_000:
        return f"{sign}£{pounds / 1_000_000:.1f}m"
    if pounds >= 10_000:
        return f"{sign}£{pounds / 1000:.0f}k"
    if pounds >= 1_000:
        return f"{sign}£{pounds / 1000:.1f}k"
    return f"{sign}£{pounds:.0f}"


def bar_chart(bars: list[Bar], title: str) -> str:
    if not bars:
        return ""
    top = max(0, *(b.amount for b in bars))
    bottom = min(0, *(b.amount for b in bars))
    span = (top - bottom) or 1
    plot = HEIGHT - TOP - BOTTOM
    zero_y = TOP + plot * top / span
    slot = (WIDTH - LEFT - RIGHT) / len(bars)
    bar_w = min(70.0, slot * 0.62)
    desc = "; ".join(f"{b.period}: {pounds_for_people(b.amount)}" for b in bars)
    parts = [
        f'<svg class="chart" role="img" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
        f'aria-labelledby="chart-title chart-desc">',
        f'<title id="chart-title">{escape(title)}</title>',
        f'<desc id="chart-desc">{escape(desc)}</desc>',
    ]
    for i, bar in enumerate(bars):
        x = LEFT + slot * i + (slot - bar_w) / 2
        h = plot * abs(bar.amount) / span
        y = zero_y - h if bar.amount >= 0 else zero_y
        # both at least 3:1 against white (WCAG 1.4.11); the current one darker still
        fill = CURRENT if bar.current else EARLIER
        parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{max(h, 0.5):.1f}" '
                     f'fill="{fill}"><title>{escape(bar.period)}: '
                     f'{escape(pounds_for_people(bar.amount))}</title></rect>')
        # a negative bar's amount goes above the zero line: below the bar it would sit on
        # the period's name when the bar reaches the foot of the plot
        label_y = y - 6 if bar.amount >= 0 else zero_y - 6
        weight = ' font-weight="bold"' if bar.current else ""
        parts.append(f'<text x="{x + bar_w / 2:.1f}" y="{label_y:.1f}" text-anchor="middle" '
                     f'font-size="12"{weight}>{escape(short_money(bar.amount))}</text>')
        year, _, name = bar.period.partition("/")
        base_y = HEIGHT - BOTTOM + 16
        parts.append(f'<text x="{x + bar_w / 2:.1f}" y="{base_y:.1f}" text-anchor="middle" '
                     f'font-size="12"{weight}>{escape(name or year)}</text>')
        parts.append(f'<text x="{x + bar_w / 2:.1f}" y="{base_y + 15:.1f}" text-anchor="middle" '
                     f'font-size="11" fill="#505a5f">{escape(year)}</text>')
    parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{zero_y:.1f}" y2="{zero_y:.1f}" '
                 'stroke="#0b0c0c" stroke-width="1"/>')
    parts.append("</svg>")
    return "\n".join(parts)
