"""`topup report finance`: the charts' data tables hold the run totals the ledger recorded and
the payment files carry, each chart is an inline SVG with alt text, and a PDF is made from
the same page."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pdfplumber

from test_finance import upton_paid_for_autumn
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


def test_the_full_cost_table_is_the_hours_vs_band_overall_line(cli, ledger: Ledger, tmp_path: Path) -> None:
    """Cost neutrality on the full cost: the page's "All settings" row holds the hours-vs-band
    reconciliation's overall line at the default prices (the latest priced year), and its
    settings add up to it (the cushion counted in its school's setting)."""
    build_history(ledger)
    cli("report", "finance", "2025-26/summer", "--out", str(tmp_path / "report"), "--no-pdf")
    page = (tmp_path / "report" / "finance-2025-26-summer.html").read_text()
    found = json.loads(cli("reconcile", "hours-vs-band", "--out", str(tmp_path / "hv"), "--json").output)
    [overall] = [r for r in found["rows"] if r["level"] == "overall"]
    assert overall["plans"] > 0 and overall["prices_year"]
    columns, rows = table(page, "cost-neutrality")
    assert columns == ["Settings", "Plans", "Prior cost", "Band", "Protection", "Cushion",
                       "Full cost", "Difference", "Difference %"]
    full = overall["band_cost_pence"] + overall["protection_cost_pence"] + overall["cushion_cost_pence"]
    assert full == overall["full_cost_pence"] and overall["full_cost_pence"] > 0
    assert rows["All settings"] == [
        str(overall["plans"]), *map(money, [overall["prior_cost_pence"], overall["band_cost_pence"],
                                            overall["protection_cost_pence"],
                                            overall["cushion_cost_pence"], full,
                                            full - overall["prior_cost_pence"]]),
        overall["full_difference_percent"].replace("-", "−") + "%"]
    settings = [r for name, r in rows.items() if name != "All settings"]
    assert settings, "a row per setting"
    for column in range(1, 7):
        assert sum(pence(r[column]) for r in settings) == pence(rows["All settings"][column])
    assert re.search(r'id="cost-neutrality">.*?<div role="img" aria-label="[^"]{40,}"><svg', page, re.S)
    assert f"at {overall['prices_year']} prices" in page


def pence(shown: str) -> int:
    """£1,234.56 or −£1,234.56 → pence."""
    sign = -1 if shown.startswith("−") else 1
    pounds_, _, p = shown.lstrip("−£").replace(",", "").partition(".")
    return sign * (int(pounds_) * 100 + int(p))


def recovery_ledger(cli) -> None:
    """Upton Academy (tests/test_finance.py's worked recovery): P2 on band A from 1 Sep 2025 is
    paid its autumn share 1600 × 4/12 = £533.33, then ceases from 1 Sep; P6 on A starts 1 Jan
    2026. Spring: P6's 1600 × 3/12 = £400.00 less P2's autumn clawed back £533.33 = −£133.33:
    paid nothing, £133.33 carried forward, owed since the spring run."""
    upton_paid_for_autumn(cli, Path("runs"))
    cli("pay", "2025-26/spring", "--out", "runs")


UPTON = "100002"


def test_the_recoveries_table_is_what_topup_recoveries_lists(cli, ledger: Ledger, tmp_path: Path,
                                                             monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    recovery_ledger(cli)
    owed = json.loads(cli("recoveries", "--json").output)
    assert [(o["school_urn"], o["owed_pence"], o["since_run"]) for o in owed] == [
        (UPTON, 13333, "2025-26-spring-r1")]
    cli("report", "finance", "2025-26/spring", "--out", "spring", "--no-pdf")
    page = (tmp_path / "spring" / "finance-2025-26-spring.html").read_text()
    columns, rows = table(page, "recoveries-outstanding")
    assert columns == ["School", "Name", "Owes", "Since run", "Since", "Carried", "Recovered"]
    assert rows == {o["school_urn"]: [o["school_name"], money(o["owed_pence"]), o["since_run"],
                                      o["since"], money(o["carried_pence"]),
                                      money(o["recovered_pence"])] for o in owed}
    assert rows[UPTON][:2] == ["Upton Academy", "£133.33"]
    assert re.search(r'id="recoveries-outstanding">.*?aria-label="[^"]*'
                     r'Upton Academy \(100002\), £133\.33[^"]*"><svg', page, re.S)

    # Summer: P6's 1600 × 5/12 = £666.67 less the £133.33 owed: the debt is cleared. The
    # summer page owes nothing; the spring page, as of spring's last run, still shows it.
    cli("pay", "2025-26/summer", "--out", "runs")
    assert json.loads(cli("recoveries", "--json").output) == []
    cli("report", "finance", "2025-26/summer", "--out", "summer", "--no-pdf")
    summer = (tmp_path / "summer" / "finance-2025-26-summer.html").read_text()
    assert 'id="table-recoveries-outstanding"' not in summer
    assert "No school owes anything" in summer
    cli("report", "finance", "2025-26/spring", "--out", "again", "--no-pdf")
    _, again = table((tmp_path / "again" / "finance-2025-26-spring.html").read_text(),
                     "recoveries-outstanding")
    assert again == rows


def test_paid_vs_due_shows_what_each_school_still_owes(cli, ledger: Ledger, tmp_path: Path,
                                                      monkeypatch) -> None:
    """After the spring run Upton owes £133.33 (recovery_ledger); paid-vs-due says so in its
    JSON (the rows of topup recoveries) and its text, and after summer it owes nothing."""
    monkeypatch.chdir(tmp_path)
    recovery_ledger(cli)
    found = json.loads(cli("reconcile", "paid-vs-due", "--out", "r", "--json").output)
    assert found["recoveries_outstanding"] == json.loads(cli("recoveries", "--json").output)
    assert [(o["school_urn"], o["owed_pence"]) for o in found["recoveries_outstanding"]] == [
        (UPTON, 13333)]
    text = cli("reconcile", "paid-vs-due", "--out", "r").output
    assert "recoveries outstanding: £133.33 owed by 1 school" in text
    assert "2025-26-spring-r1" in text
    # --school filters them like the rows
    other = json.loads(cli("reconcile", "paid-vs-due", "--out", "r", "--school", UPTON, "--json").output)
    assert other["recoveries_outstanding"] == found["recoveries_outstanding"]
    cli("pay", "2025-26/summer", "--out", "runs")
    found = json.loads(cli("reconcile", "paid-vs-due", "--out", "r", "--json").output)
    assert found["recoveries_outstanding"] == []
    assert "recoveries outstanding: none" in cli("reconcile", "paid-vs-due", "--out", "r").output
