"""The statement as a page: A4 portrait with nothing clipped, a running header and page
number on every PDF page, a tagged PDF, tables that fit a desktop and a phone screen, and
colours with enough contrast.

The ledger is a generated LA (two academic years of termly runs: transfers to bands with
protection, band changes, moves, cessations, corrections, tariff revisions) replayed on each
backend; the statement is its largest school's for the last period.
"""

from __future__ import annotations

import html
import io
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pdfplumber
import pypdf
import pytest

from conftest import BACKENDS, new_location
from test_statements_browser import run_browser
from topup_ledger.io.import_csv import read_table
from topup_ledger.services.generator import generate
from topup_ledger.services.importer import Import
from topup_ledger.services.payment_run import pay
from topup_ledger.services.recording import Ledger
from topup_ledger.statements import Statement, statement_for
from topup_ledger.statements.chart import CURRENT, EARLIER
from topup_ledger.statements.render import render_html, render_pdf
from topup_ledger.storage.store import EventStore

MM = 72 / 25.4  # points in a millimetre
A4 = (210 * MM, 297 * MM)
SIDE_MARGIN = 12 * MM  # the stylesheet's @page margin left and right
EDGE = 5 * MM  # nothing printed nearer the paper's edge than this (headers and footers too)


def replay(store: EventStore, folder: Path, plans: int, schools: int, years: int) -> str:
    """Import a generated LA batch by batch and pay each run, as the demo does; returns the
    last run's period."""
    la = generate(plans=plans, schools=schools, years=years, seed=11)
    la.write(folder)
    now = [datetime(2025, 8, 1, tzinfo=UTC)]
    ledger = Ledger(store, clock=lambda: now[0])
    for batch in la.batches:
        now[0] = datetime.combine(batch.run.on - timedelta(days=1), time(16), tzinfo=UTC)
        job = Import(ledger)
        for kind, _ in batch.files():
            result = job.stage_table(read_table(folder / batch.folder / f"{kind}.csv"), kind)
            assert not result.rejected
        job.commit()
        now[0] = datetime.combine(batch.run.on, time(9), tzinfo=UTC)
        pay(ledger, batch.run.period)
    return la.runs[-1].period


@pytest.fixture(scope="module", params=BACKENDS)
def statements(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[list[Statement]]:
    """Every school's statement for every period paid."""
    folder = tmp_path_factory.mktemp("layout")
    location = new_location(request.param, folder)
    store = EventStore(location, create=True)
    try:
        replay(store, folder / "input", plans=260, schools=8, years=2)
        paid = {(r.fact.school, r.fact.period)
                for _, r in store.recorded(types=("payment.school_paid",))}
        found = [statement_for(store, urn, period) for urn, period in sorted(paid)]
    finally:
        store.close()
    yield found


@pytest.fixture(scope="module")
def largest(statements: list[Statement]) -> Statement:
    """The statement of the school with the most children, for the last period paid."""
    last = max(s.period_start for s in statements)
    return max((s for s in statements if s.period_start == last),
               key=lambda s: (len(s.children), len(s.lines)))


def test_the_largest_schools_pdf_fits_a4_portrait_and_is_tagged(largest: Statement) -> None:
    s = largest
    assert len(s.children) >= 25 and s.changes  # a realistic page count, not one page
    pdf = render_pdf(s)
    with pdfplumber.open(io.BytesIO(pdf)) as doc:
        pages = doc.pages
        assert len(pages) >= 3
        totals_seen = []
        for number, page in enumerate(pages, 1):
            assert (round(page.width, 1), round(page.height, 1)) == (round(A4[0], 1), round(A4[1], 1))
            for char in page.chars:
                where = (number, char["text"], round(char["x0"]), round(char["top"]))
                assert char["x0"] >= SIDE_MARGIN - 0.5, where
                assert char["x1"] <= A4[0] - SIDE_MARGIN + 0.5, where
                assert char["top"] >= EDGE and char["bottom"] <= A4[1] - EDGE, where
            text = page.extract_text()
            # the running header and the page number on every page
            assert f"{s.school_name} · URN {s.school} · {s.period}" in text.splitlines()[0], number
            assert f"Page {number} of {len(pages)}" in text, number
            # a page with rows of the children or the lines table carries its header again
            if " a year × " in text:
                assert "How this period's amount is worked" in text, number
            if re.search(r"(band|hours) \S+, \d+ days", text):
                assert "Why, and the events it rests on" in text, number
            totals_seen.append(text)
    words = re.sub(r"\s+", " ", " ".join(totals_seen))
    for child in s.children:  # the Total column is on the page for every child
        assert money(child.total) in words, child.plan

    reader = pypdf.PdfReader(io.BytesIO(pdf))
    root = reader.trailer["/Root"]
    assert bool(root["/MarkInfo"]["/Marked"])  # a tagged PDF
    assert "/StructTreeRoot" in root
    assert root["/Lang"] == "en-GB"
    assert b'pdfuaid:part="1"' in root["/Metadata"].get_object().get_data()  # declares PDF/UA-1
    assert root["/ViewerPreferences"]["/DisplayDocTitle"]  # a title, shown as the window's


def money(pence: int) -> str:
    sign = "−" if pence < 0 else ""
    return f"{sign}£{abs(pence) // 100:,}.{abs(pence) % 100:02d}"


# Headless Chromium will not make a window narrower than 500 px, so the statement is laid out
# in a frame of the width under test (srcdoc: the frame is the page's own origin, so the
# page can measure inside it) and the measurements are written into the page's DOM.
FRAME = """<!DOCTYPE html><html><body style="margin:0">
<iframe id="statement" style="border:0;width:{width}px;height:900px" srcdoc="{html}"></iframe>
<script>
document.getElementById("statement").addEventListener("load", () => {{
  const doc = document.getElementById("statement").contentDocument;
  const width = doc.documentElement.clientWidth;
  const tables = [...doc.querySelectorAll("table")].map(t => ({{
    id: t.id, right: t.getBoundingClientRect().right, scroll: t.scrollWidth, client: t.clientWidth}}));
  const out = document.createElement("pre");
  out.id = "measured";
  out.textContent = JSON.stringify({{width, page: doc.documentElement.scrollWidth, tables}});
  document.body.appendChild(out);
}});
</script></body></html>"""


@pytest.mark.parametrize("width", [1280, 375])
def test_no_table_is_wider_than_the_screen(largest: Statement, tmp_path: Path, width: int) -> None:
    page = tmp_path / "frame.html"
    page.write_text(FRAME.format(width=width, html=html.escape(render_html(largest), quote=True)))
    dom = run_browser(tmp_path, f"--window-size={width + 100},1000", "--virtual-time-budget=10000",
                      "--dump-dom", page.resolve().as_uri()).stdout
    found = re.search(r'<pre id="measured">(.*?)</pre>', dom, re.S)
    assert found, dom[-2000:]
    measured = json.loads(html.unescape(found.group(1)))
    assert measured["width"] == width
    assert {t["id"] for t in measured["tables"]} >= {"totals", "children", "lines"}
    for table in measured["tables"]:
        assert table["right"] <= width, table
        assert table["scroll"] <= table["client"] + 1, table
    assert measured["page"] <= width  # nothing makes the page scroll sideways


def contrast(a: str, b: str) -> float:
    """WCAG 2.1 contrast ratio of two #rrggbb colours."""
    def luminance(colour: str) -> float:
        colour = colour.lstrip("#")
        if len(colour) == 3:
            colour = "".join(c * 2 for c in colour)
        channels = [int(colour[i:i + 2], 16) / 255 for i in (0, 2, 4)]
        lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_text_and_bars_have_enough_contrast() -> None:
    """Every text colour the stylesheet uses on every background it uses: at least 4.5:1;
    the chart's bars and the change cards' coloured edges against white: at least 3:1."""
    css = (Path(__file__).parents[1] / "src/topup_ledger/statements/templates/statement.css").read_text()
    colours = dict(re.findall(r"--([a-z]+):\s*(#[0-9a-f]{3,6})", css))
    texts = [colours[n] for n in ("ink", "muted", "red", "blue", "green")] + ["#fff"]
    backgrounds = ["#fff", colours["band"], "#fff7bf"]
    for text in texts:
        for background in backgrounds:
            if text == "#fff":
                continue
            assert contrast(text, background) >= 4.5, (text, background)
    assert contrast("#fff", colours["blue"]) >= 4.5  # the total box
    assert contrast("#fff", colours["ink"]) >= 4.5  # the change tags
    for bar in (CURRENT, EARLIER, colours["red"], colours["green"], colours["orange"], colours["blue"]):
        assert contrast(bar, "#fff") >= 3, bar
    assert contrast(colours["muted"], "#fff") >= 4.5  # the page header and footer
    hex_in_css = set(re.findall(r"#[0-9a-f]{6}\b", css))
    assert hex_in_css <= {*colours.values(), "#fff7bf", "#505a5f"}, hex_in_css - set(colours.values())


# Sums a person can check by hand.

CALC = re.compile(r'<span class="calc" data-component="(base|protection)">.*?<span class="sum">'
                  r"(−?£[\d,]+\.\d+) a year × (\d+)/(\d+) × (\d+)/(\d+) days</span> = "
                  r"(−?£[\d,]+\.\d\d)</span>", re.S)
CARRY = re.compile(r'<span class="note" data-carry="(base|protection)">[^<]*?, ([+−]£0\.0\d)</span>')
ROW = re.compile(r'<tr data-plan="([^"]+)">(.*?)</tr>', re.S)
CELL = re.compile(r'<td data-label="([^"]+)" class="num[^"]*">(?:<strong>)?(−?£[\d,]+\.\d\d)')


def pence(text: str) -> Fraction:
    """'£18,307.00' or '−£0.01' or '£12,229.255' (an exact annual value) → pence."""
    sign = -1 if text.startswith(("−", "+−")) else 1
    return sign * Fraction(Decimal(text.lstrip("+−£").replace(",", ""))) * 100


def half_up(amount: Fraction) -> int:
    return int(amount + Fraction(1, 2)) if amount >= 0 else -int(-amount + Fraction(1, 2))


def test_every_childs_amount_is_found_again_from_the_figures_printed_beside_it(
        statements: list[Statement]) -> None:
    """From the page alone: each working's annual value × share × days ÷ period days, rounded
    half up, is the amount printed after it; a child's workings added and rounded, plus the
    penny of rounding with the year so far the page prints (never more than a penny), are its
    'This period' and 'Protection' amounts. A protection amount without a working is the
    rounding penny the page explains in words."""
    checked = protected = carried = 0
    for s in statements:
        page = render_html(s)
        rows = {plan: body for plan, body in ROW.findall(page)}
        for child in s.children:
            body = rows[child.plan]
            printed = {label: pence(amount) for label, amount in CELL.findall(body)}
            exact = {"base": Fraction(0), "protection": Fraction(0)}
            for component, annual, n, d, days, period_days, shown in CALC.findall(body):
                portion = pence(annual) * Fraction(int(n), int(d)) * int(days) / int(period_days)
                assert half_up(portion) == pence(shown), (s.school, child.plan)
                assert int(period_days) == s.period_days
                exact[component] += portion
            carry = {component: pence(amount) for component, amount in CARRY.findall(body)}
            assert all(abs(c) <= 1 for c in carry.values())
            if child.days:
                assert exact["base"] or not printed["This period"], (s.school, child.plan)
                assert half_up(exact["base"]) + carry.get("base", 0) == printed["This period"]
                if exact["protection"]:
                    protected += 1
                    assert (half_up(exact["protection"]) + carry.get("protection", 0)
                            == printed["Protection"])
                elif printed["Protection"]:
                    assert abs(printed["Protection"]) == 1
                    assert "is rounding, not protection for this period" in body
                checked += 1
                carried += bool(carry)
            assert printed["This period"] == child.this_period
            assert printed["Total"] == child.total
    assert checked > 300 and protected > 0  # a realistic ledger: many lines, some protected
