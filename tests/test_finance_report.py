"""`topup report finance`: the charts' data tables hold the run totals the ledger recorded and
the payment files carry, each chart is an inline SVG with alt text, and a PDF is made from
the same page."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pdfplumber

from test_statements import KINDS, PERIODS, build_history, money, payment_file_rows
from topup_ledger.domain import events as ev
from topup_ledger.io.payment_files import write_files_for_run
from topup_ledger.services.recording import Ledger

MM = 72 / 25.4
KIND_COLUMNS = ["Regular (this period)", "Arrears (earlier periods)", "Claw-back (earlier periods)",
                "Protection", "Transitional cushion"]


def table(page: str, chart: str) -> tuple[list[str], dict[str, list[str]]]:
    """A chart's data table: its column names and its rows by their first cell."""
    found = re.search(rf'<table class="data" id="table-{chart}">(.*?)</table>', page, re.S)
    assert found, chart
    body = found.group(1)
    columns = [html.unescape(c) for c in re.findall(r'<th scope="col"[^>]*>(.*?)</th>', body)]
    rows = {}
    for row in re.findall(r"<tr><th scope=\"row\">(.*?)</tr>", body, re.S):
        first, _, rest = row.partition("</th>")
        rows[html.unescape(first)] = [html.unescape(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", rest)]
    return columns, rows


def test_the_charts_tables_hold_what_the_runs_recorded(cli, ledger: Ledger, tmp_path: Path) -> None:
    for run in build_history(ledger):
        write_files_for_run(ledger.store, run.run_id, tmp_path / "payments")
    schools = payment_file_rows(tmp_path / "payments", "payments")
    lines = payment_file_rows(tmp_path / "payments", "payment-lines")
    recorded = {}
    for _, r in ledger.store.recorded(types=(ev.PaymentRunRecorded.TYPE,)):
        recorded[r.fact.period] = recorded.get(r.fact.period, 0) + r.fact.total

    result = cli("report", "finance", "2025-26/summer", "--out", str(tmp_path / "report"))
    page_path = tmp_path / "report" / "finance-2025-26-summer.html"
    pdf = tmp_path / "report" / "finance-2025-26-summer.pdf"
    assert f"wrote {page_path}" in result.output and pdf.read_bytes().startswith(b"%PDF")
    page = page_path.read_text()

    columns, rows = table(page, "paid-by-period")
    assert columns == ["Period", *KIND_COLUMNS, "Total"]
    assert list(rows) == PERIODS
    for period in PERIODS:
        in_files = [r for r in schools if r["period"] == period]
        expected = [sum(int(r[f"{kind}_pence"]) for r in in_files) for kind in KINDS]
        assert rows[period] == [*map(money, expected), money(recorded[period])]
        assert sum(expected) == recorded[period]  # the files and the runs' records agree

    columns, rows = table(page, "paid-against-due")
    for period in PERIODS:  # everything paid for a period, by whichever run paid it
        paid_for = sum(int(r["amount_pence"]) for r in lines if r["for_period"] == period)
        due, paid, outstanding = rows[period]
        assert paid == money(paid_for) and due == money(paid_for) and outstanding == "£0.00"

    # every chart: an inline SVG (no image fetched) inside an element with alt text
    for chart in ("paid-by-period", "paid-against-due", "band-mix", "prior-against-band",
                  "band-calibration"):
        block = re.search(rf'<section class="chart-block" [^>]*id="{chart}">(.*?)</section>', page, re.S)
        assert block, chart
        assert re.search(r'<div role="img" aria-label="[^"]{40,}"><svg', block.group(1)), chart
    assert "<img" not in page and "http://" not in page.replace("http://www.w3.org", "")
    assert 'id="cost-neutrality"' in page and 'id="recoveries-outstanding"' in page

    # the PDF: A4, nothing past the side margins (12 mm) or nearer an edge than 5 mm
    with pdfplumber.open(pdf) as doc:
        for page_ in doc.pages:
            for char in page_.chars:
                assert char["x0"] >= 12 * MM - 0.5 and char["x1"] <= 198 * MM + 0.5, char["text"]
                assert char["top"] >= 5 * MM and char["bottom"] <= 292 * MM

    # band mix for summer: Oakfield's two plans on B and D, Riverside's C→D and B (moved in),
    # Beacon's E, all on bands by then
    _, mix = table(page, "band-mix")
    assert mix["special"][-1] == "1" and mix["mainstream"][-1] == "4"


def test_an_unknown_period_is_refused(cli, ledger: Ledger, tmp_path: Path) -> None:
    build_history(ledger)
    result = cli("report", "finance", "2025-26/winter", "--out", str(tmp_path), ok=False)
    assert result.exit_code != 0 and "2025-26/winter is not a period" in result.output
    assert not list(tmp_path.glob("finance-*"))
