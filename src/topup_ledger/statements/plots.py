"""Charts for the finance report, drawn by matplotlib as SVG text inlined in the page (no
files fetched, text kept as text so it reads and prints sharply). Colours are at least 3:1
against white (WCAG 1.4.11); every chart has its data table beneath it and alt text."""

from __future__ import annotations

import io
import re
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")  # no display: drawn to SVG only

import matplotlib.pyplot as plt
from matplotlib.ticker import FuncFormatter

# Each at least 3:1 against white: 5.2, 6.2, 6.9, 7.0 and 6.0 to 1.
KIND_COLOURS = {"regular": "#1d70b8", "arrears": "#00703c", "clawback": "#aa2a16",
                "protection": "#6f3c97", "cushion": "#8f4700"}
DUE, PAID = "#505a5f", "#1d70b8"
BAND_COLOURS = ("#1d70b8", "#00703c", "#aa2a16", "#6f3c97", "#8f4700", "#0b0c0c", "#005a8c",
                "#505a5f", "#3d6b1a", "#912b88")
plt.rcParams.update({"svg.fonttype": "none", "font.family": "DejaVu Sans", "font.size": 9,
                     "axes.spines.top": False, "axes.spines.right": False,
                     "svg.hashsalt": "topup-ledger"})  # the same chart, the same bytes


def _pounds_axis(value: float, _: object) -> str:
    pounds = value / 100
    if abs(pounds) >= 1_000_000:
        return f"£{pounds / 1_000_000:,.1f}m"
    if abs(pounds) >= 1_000:
        return f"£{pounds / 1_000:,.0f}k"
    return f"£{pounds:,.0f}"


def _svg(figure: plt.Figure) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(figure)
    text = buffer.getvalue()
    text = text[text.index("<svg"):]  # drop the XML declaration and doctype
    text = re.sub(r"<metadata>.*?</metadata>\s*", "", text, flags=re.S)  # licence RDF: not ours
    # scale with the page: the width and height become the viewBox's aspect only
    return re.sub(r'<svg([^>]*?) width="[^"]+" height="[^"]+"', r'<svg\1 class="plot" aria-hidden="true"',
                  text, count=1)


def stacked_by_period(periods: Sequence[str], series: dict[str, Sequence[int]],
                      words: dict[str, str]) -> str:
    """Bars per period: positive kinds stacked up, negative (claw-back) down."""
    figure, axes = plt.subplots(figsize=(7.2, 3.2))
    up = [0] * len(periods)
    down = [0] * len(periods)
    x = range(len(periods))
    for kind, values in series.items():
        bottoms = [down[i] if v < 0 else up[i] for i, v in enumerate(values)]
        axes.bar(x, values, bottom=bottoms, color=KIND_COLOURS[kind], label=words[kind], width=0.62)
        for i, v in enumerate(values):
            if v < 0:
                down[i] += v
            else:
                up[i] += v
    axes.axhline(0, color="#0b0c0c", linewidth=0.8)
    axes.set_xticks(list(x), [p.replace("/", "\n") for p in periods])
    axes.yaxis.set_major_formatter(FuncFormatter(_pounds_axis))
    axes.legend(ncols=3, frameon=False, loc="upper left", bbox_to_anchor=(0, -0.22))
    return _svg(figure)


def paired_by_period(periods: Sequence[str], due: Sequence[int], paid: Sequence[int]) -> str:
    figure, axes = plt.subplots(figsize=(7.2, 3.0))
    x = list(range(len(periods)))
    axes.bar([i - 0.2 for i in x], due, width=0.38, color=DUE, label="due as known now")
    axes.bar([i + 0.2 for i in x], paid, width=0.38, color=PAID, label="paid")
    axes.set_xticks(x, [p.replace("/", "\n") for p in periods])
    axes.yaxis.set_major_formatter(FuncFormatter(_pounds_axis))
    axes.legend(frameon=False, ncols=2, loc="upper left", bbox_to_anchor=(0, -0.22))
    return _svg(figure)


def band_mix(settings: Sequence[str], bands: Sequence[str], counts: dict[str, dict[str, int]]) -> str:
    """Horizontal bars per setting, split by band, each band's colour at least 3:1 on white
    and the segments parted by white."""
    figure, axes = plt.subplots(figsize=(7.2, 0.5 * max(len(settings), 2) + 1.2))
    left = [0] * len(settings)
    for n, band in enumerate(bands):
        values = [counts[s].get(band, 0) for s in settings]
        colour = BAND_COLOURS[n % len(BAND_COLOURS)]
        axes.barh(list(range(len(settings))), values, left=left, color=colour,
                  label="on hours" if band == "hours" else f"band {band}",
                  edgecolor="white", linewidth=0.6)
        left = [a + b for a, b in zip(left, values, strict=True)]
    axes.set_yticks(list(range(len(settings))), list(settings))
    axes.invert_yaxis()
    axes.set_xlabel("plans at a school in the period")
    axes.legend(ncols=min(len(bands), 8), frameon=False, loc="upper left", bbox_to_anchor=(0, -0.3))
    return _svg(figure)


def prior_against_band(prior: Sequence[int], band: Sequence[int]) -> str:
    figure, axes = plt.subplots(figsize=(7.2, 4.6))
    axes.scatter(prior, band, s=12, color="#1d70b8", alpha=0.75, label="a transferred plan")
    top = max([*prior, *band, 1])
    axes.plot([0, top], [0, top], color="#0b0c0c", linewidth=1, linestyle="--",
              label="band = prior (y = x)")
    axes.set_xlabel("prior hours-based amount a year")
    axes.set_ylabel("band amount a year")
    for axis in (axes.xaxis, axes.yaxis):
        axis.set_major_formatter(FuncFormatter(_pounds_axis))
    axes.legend(frameon=False, loc="upper left")
    return _svg(figure)


def calibration(bands: Sequence[str], rate: Sequence[int], low: Sequence[int],
                median: Sequence[int], high: Sequence[int]) -> str:
    """Per band: the range of prior amounts of the plans placed in it, their median, and the
    band's value."""
    figure, axes = plt.subplots(figsize=(7.2, 3.2))
    x = list(range(len(bands)))
    axes.vlines(x, low, high, color="#505a5f", linewidth=6, label="prior amounts: lowest to highest")
    axes.scatter(x, median, color="#0b0c0c", zorder=3, s=18, label="prior amounts: median")
    axes.scatter(x, rate, color="#aa2a16", marker="D", zorder=4, s=24, label="band value")
    axes.set_xticks(x, [f"band {b}" for b in bands])
    axes.yaxis.set_major_formatter(FuncFormatter(_pounds_axis))
    axes.legend(frameon=False, ncols=3, loc="upper left", bbox_to_anchor=(0, -0.14))
    return _svg(figure)


def full_cost(groups: Sequence[str], prior: Sequence[int], band: Sequence[int],
              protection: Sequence[int], cushion: Sequence[int]) -> str:
    """Per group (all settings, then each setting): the prior cost, and beside it the full
    cost stacked as band, protection and cushion."""
    figure, axes = plt.subplots(figsize=(7.2, 0.8 * max(len(groups), 2) + 1.2))
    y = list(range(len(groups)))
    axes.barh([i - 0.2 for i in y], prior, height=0.38, color=DUE, label="prior (hours)")
    left = [0] * len(groups)
    for values, colour, label in ((band, PAID, "band"),
                                  (protection, KIND_COLOURS["protection"], "protection"),
                                  (cushion, KIND_COLOURS["cushion"], "cushion")):
        axes.barh([i + 0.2 for i in y], values, left=left, height=0.38, color=colour, label=label,
                  edgecolor="white", linewidth=0.6)
        left = [a + b for a, b in zip(left, values, strict=True)]
    axes.set_yticks(y, list(groups))
    axes.invert_yaxis()
    axes.xaxis.set_major_formatter(FuncFormatter(_pounds_axis))
    axes.legend(frameon=False, ncols=4, loc="upper left", bbox_to_anchor=(0, -0.14))
    return _svg(figure)


def owed_by_school(schools: Sequence[str], owed: Sequence[int]) -> str:
    """What each school still owes as a recovery, one bar each."""
    figure, axes = plt.subplots(figsize=(7.2, 0.4 * max(len(schools), 2) + 1.0))
    y = list(range(len(schools)))
    axes.barh(y, owed, height=0.6, color=KIND_COLOURS["clawback"])
    axes.set_yticks(y, list(schools))
    axes.set_ylim(max(len(schools), 2) - 0.5, -0.5)  # first school on top; one bar not a slab
    axes.xaxis.set_major_formatter(FuncFormatter(_pounds_axis))
    axes.set_xlabel("still owed, netted against the school's next payments")
    return _svg(figure)
