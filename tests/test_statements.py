"""School statements against the payment files and the ledger's own folds, to the penny.

The history is the demo LA (backdated band change, a move between schools, transfers with
protection, a cushion, a backdated cessation and a correction), paid for three terms, on
both backends.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pypdf
import pytest

from topup_ledger.cli import main
from topup_ledger.cli.statements import statement_cmd, statements_cmd
from topup_ledger.domain import events as ev
from topup_ledger.domain.calendar import with_default_terms
from topup_ledger.domain.entitlement import dues
from topup_ledger.io.payment_files import write_files_for_run
from topup_ledger.services.payment_run import RunResult, pay
from topup_ledger.services.recording import Ledger
from topup_ledger.statements import Statement, statement_for, write_period, write_statement
from topup_ledger.statements.render import CSV_COLUMNS, render_csv, render_html, render_pdf
from topup_ledger.storage.known import Known, read_known
from topup_ledger.storage.store import EventStore

for command in (statement_cmd, statements_cmd):
    if command.name not in main.commands:  # until cli.py registers them
        main.add_command(command)

PERIODS = ["2025-26/autumn", "2025-26/spring", "2025-26/summer"]
KINDS = ["regular", "arrears", "clawback", "protection", "cushion"]
SCHOOL_ROWS = [("100001", "Oakfield Primary", "mainstream"), ("100002", "Riverside Academy", "mainstream"),
               ("100003", "Beacon Special School", "special"),
               ("100004", "Hillside Resource Base", "resourced")]
SCHOOLS = [urn for urn, _, _ in SCHOOL_ROWS]
TARIFFS = {"2025-26": {"A": 160000, "B": 310000, "C": 500000, "D": 700000, "E": 1000000},
           "2026-27": {"A": 165000, "B": 320000, "C": 515000, "D": 720000, "E": 1030000}}


def build_history(ledger: Ledger) -> list[RunResult]:
    """A small LA paid for 2025-26: plans on hours and bands, transfers to bands (one
    protected), a cushion, a band change recorded late, a move between schools, then a
    backdated cessation and a correction of a review date."""
    for urn, name, setting in SCHOOL_ROWS:
        ledger.add_school(urn, name, setting)
    for year, bands in TARIFFS.items():
        ledger.set_tariff(year, bands, reason="approved by the Schools Forum")
        ledger.set_rate(year, 1181 if year == "2025-26" else 1215, Decimal(38), 600000)
    ledger.issue_plan("EHCP-0001", "PR-7F3A", "100001", date(2025, 9, 1), hours=Decimal("27.5"))
    ledger.issue_plan("EHCP-0002", "PR-2B9C", "100001", date(2025, 9, 1), hours=Decimal("32.5"))
    ledger.issue_plan("EHCP-0003", "PR-91DE", "100002", date(2025, 9, 1), band="C")
    ledger.issue_plan("EHCP-0004", "PR-4C21", "100003", date(2025, 9, 1), band="E")
    ledger.issue_plan("EHCP-0005", "PR-08AB", "100004", date(2025, 10, 6), band="B")
    ledger.issue_plan("FFI-0006", "PR-5E5E", "100002", date(2025, 9, 1), hours=Decimal("25"),
                      kind="non-statutory")
    runs = [pay(ledger, "2025-26/autumn")]
    ledger.transfer("EHCP-0001", "B", date(2025, 11, 3), protect_until=date(2026, 3, 31))
    ledger.transfer("EHCP-0002", "D", date(2026, 1, 5))
    ledger.set_cushion("100001", date(2026, 4, 1), date(2027, 3, 31), Decimal(50),
                       "first year of banded funding", year="2025-26")
    ledger.change_band("EHCP-0003", "D", date(2025, 11, 1), "annual-review")  # recorded late
    ledger.move("EHCP-0005", "100002", date(2026, 2, 2))
    runs.append(pay(ledger, "2025-26/spring"))
    ledger.cease("FFI-0006", date(2026, 3, 1), "needs met without top-up")  # backdated
    plan = ledger.plan("EHCP-0003")
    ledger.correct("EHCP-0003", plan.facts[1].id, "the review set band D from 1 October",
                   effective=date(2025, 10, 1))
    runs.append(pay(ledger, "2025-26/summer"))
    return runs


@pytest.fixture
def history(ledger: Ledger, tmp_path: Path) -> Iterator[tuple[Ledger, Path]]:
    """The small LA paid for 2025-26, with each run's payment files in ``tmp_path/payments``."""
    runs = build_history(ledger)
    for run in runs:
        write_files_for_run(ledger.store, run.run_id, tmp_path / "payments")
    yield ledger, tmp_path / "payments"


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        return list(csv.DictReader(handle))


def payment_file_rows(folder: Path, prefix: str) -> list[dict[str, str]]:
    rows = []
    for path in sorted(folder.glob(f"{prefix}-*.csv")):
        rows.extend(read_csv(path))
    return rows


def html_text(html: str) -> str:
    """The page's text with tags dropped and spaces collapsed, as a reader sees it."""
    text = re.sub(r"<style.*?</style>", " ", html, flags=re.S)
    text = re.sub(r"<[^>]+>", " ", text)
    return re.sub(r"\s+", " ", text.replace("&#39;", "'").replace("&amp;", "&"))


def money(pence: int) -> str:
    sign = "−" if pence < 0 else ""
    return f"{sign}£{abs(pence) // 100:,}.{abs(pence) % 100:02d}"


# Every figure equals the payment files and the ledger's folds.


def test_every_figure_equals_the_payment_files(history: tuple[Ledger, Path]) -> None:
    ledger, files = history
    schools = payment_file_rows(files, "payments")
    lines = payment_file_rows(files, "payment-lines")
    for period in PERIODS:
        for urn in SCHOOLS:
            s = statement_for(ledger.store, urn, period)
            rows = [r for r in schools if r["school_urn"] == urn and r["period"] == period]
            assert s.nothing_paid == (not rows)
            for kind in KINDS:
                in_file = sum(int(r[f"{kind}_pence"]) for r in rows)
                assert getattr(s.totals, kind) == in_file, (urn, period, kind)
            assert s.totals.total == sum(int(r["total_pence"]) for r in rows)
            # the lines, field by field, in the payment line file's order
            file_lines = [r for r in lines if r["school_urn"] == urn and r["period"] == period]
            assert [(x.run_id, x.plan, x.pupil, x.kind, x.for_period, x.amount, x.basis,
                     x.band_or_hours, x.days, x.reason, " ".join(x.caused_by)) for x in s.lines] == [
                (r["run_id"], r["plan_ref"], r["pupil_ref"], r["line_kind"], r["for_period"],
                 int(r["amount_pence"]), r["basis"], r["band_or_hours"], int(r["days"]), r["reason"],
                 r["caused_by"]) for r in file_lines]
            # the statement's CSV is those same lines, with the seal
            exported = list(csv.DictReader(io.StringIO(render_csv(s).removeprefix("\ufeff"))))
            assert [{k: v for k, v in r.items() if k != "seal"} for r in exported] == [
                {k: v for k, v in r.items() if k in CSV_COLUMNS} for r in file_lines]
            assert {r["seal"] for r in exported} <= {r["seal"] for r in rows}
            # one row per child plus the school's cushion add up to the total
            assert sum(c.total for c in s.children) + s.cushion == s.totals.total
            # year to date: the runs of the academic year up to this period
            upto = PERIODS[: PERIODS.index(period) + 1]
            ytd_rows = [r for r in schools if r["school_urn"] == urn and r["period"] in upto]
            assert s.year_to_date.total == sum(int(r["total_pence"]) for r in ytd_rows)
            for kind in KINDS:
                assert getattr(s.year_to_date, kind) == sum(int(r[f"{kind}_pence"]) for r in ytd_rows)
            # the chart's bars: what each period's runs paid the school
            for bar in s.chart:
                assert bar.amount == sum(int(r["total_pence"]) for r in schools
                                         if r["school_urn"] == urn and r["period"] == bar.period)
            assert [b.period for b in s.chart if b.current] == ([period] if s.chart else [])
            # the seal printed is the run's
            if rows:
                assert s.seal == rows[-1]["seal"] and s.run_id == rows[-1]["run_id"]


def test_each_childs_figures_equal_paid_and_due_as_the_ledger_folds_them(
        history: tuple[Ledger, Path]) -> None:
    """Per child, this period's amounts equal what read_known (the fold payment runs and
    projections use) says was paid to the school for the period after the run, and the
    plan's due as known then (paid equals due after a run)."""
    ledger, _ = history
    for period in PERIODS:
        for urn in SCHOOLS:
            s = statement_for(ledger.store, urn, period)
            if s.nothing_paid:
                continue
            known = read_known(ledger.store, upto=end_of_run(ledger.store, s.runs[-1].run_id))
            calendar = with_default_terms(known.calendars, s.period_start, s.period_end)
            year = [p for p in calendar.periods if p.year == s.academic_year and p.start <= s.period_start]
            plans = {p.ref: p for p in known.plans()}
            assert {c.plan for c in s.children} <= set(plans)
            for child in s.children:
                paid = known.paid[child.plan].amounts
                assert child.this_period == paid.get((period, urn, "base"), 0)
                assert child.protection == paid.get((period, urn, "protection"), 0)
                due = dues(plans[child.plan], year, known.terms).get(period, {})
                assert child.this_period == due.get((urn, "base"), 0)
                assert child.protection == due.get((urn, "protection"), 0)
                assert plans[child.plan].issued.pupil == child.pupil
            # every plan paid at this school for the period has its row
            paid_here = {ref for ref, p in known.paid.items()
                         if any(k[0] == period and k[1] == urn and v for k, v in p.amounts.items())}
            assert paid_here <= {c.plan for c in s.children}
            cushion_now = sum(x.amount for x in s.lines if not x.plan and x.for_period == period)
            assert cushion_now == known.cushion_paid[urn].amounts.get((period, urn, "cushion"), 0)


def end_of_run(store: EventStore, run_id: str) -> int:
    """The position of a run's last SchoolPaid (its record comes first in its batch)."""
    return max(p for p, r in store.recorded(types=(ev.SchoolPaid.TYPE,)) if r.fact.run_id == run_id)


# What changed, and why.


def test_changes_since_the_last_statement_say_what_when_why_and_how_much(
        history: tuple[Ledger, Path]) -> None:
    ledger, _ = history
    store = ledger.store
    s = statement_for(store, "100002", "2025-26/spring")
    assert s.changes_since is not None and s.changes_since.run_id == "2025-26-autumn-r1"
    by_kind = {c.kind: c for c in s.changes}
    band = by_kind["band-change"]
    assert (band.plan, band.pupil, band.reason) == ("EHCP-0003", "PR-91DE", "annual review")
    assert band.effective == "1 November 2025"
    assert band.recorded_at is not None and band.recorded_at > s.changes_since.recorded_at
    assert "£5,000.00 a year on band C" in band.before and "£7,000.00 a year on band D" in band.after
    # the arrears it caused for autumn: 2 of 4 months at (7000 - 5000) a year → £333.33
    assert [(m.kind, m.for_period, m.amount) for m in band.lines if m.kind == "arrears"] == [
        ("arrears", "2025-26/autumn", 33333)]
    moved_in = by_kind["moved-in"]
    assert moved_in.pupil == "PR-08AB" and "Hillside Resource Base" in moved_in.what
    text = html_text(render_html(s))
    for words in ["Band change", "Band changed from band C to band D", "1 November 2025",
                  "annual review", "+£333.33", "Moved in", "PR-08AB"]:
        assert words in text

    out = statement_for(store, "100004", "2025-26/spring")
    assert [(c.kind, c.pupil) for c in out.changes] == [("moved-out", "PR-08AB")]
    assert "moved from this school to Riverside Academy" in out.changes[0].what

    transfers = statement_for(store, "100001", "2025-26/spring")
    kinds = [c.kind for c in transfers.changes]
    assert kinds.count("transfer") == 2 and "cushion" in kinds
    first = next(c for c in transfers.changes if c.plan == "EHCP-0001")
    # the prior hours-based amount beside the band amount
    assert first.before.startswith("£6,341.45 a year on 27.5 hours a week")
    assert first.after.startswith("£3,100.00 a year on band B")
    assert "protected until 31 March 2026" in first.what
    text = html_text(render_html(transfers))
    assert "£6,341.45 a year" in text and "£3,100.00 a year" in text

    summer = statement_for(store, "100002", "2025-26/summer")
    kinds = {c.kind: c for c in summer.changes}
    assert kinds["ceased"].reason == "needs met without top-up"
    assert [m.amount for m in kinds["ceased"].lines] == [-44946]
    correction = kinds["correction"]
    assert "it said from 1 November 2025; it should have said from 1 October 2025" in correction.what
    assert correction.reason == "the review set band D from 1 October"
    assert sum(m.amount for m in correction.lines if m.kind == "arrears") == 16940
    text = html_text(render_html(summer))
    assert "Correction of an earlier record" in text and "Plan ceased" in text


def test_every_line_links_to_the_change_that_caused_it(history: tuple[Ledger, Path]) -> None:
    ledger, _ = history
    s = statement_for(ledger.store, "100002", "2025-26/summer")
    html = render_html(s)
    ids = {c.id for c in s.changes}
    for line in s.lines:
        for event_id in line.caused_by:
            anchor = re.sub(r"[^A-Za-z0-9_-]", "-", event_id)
            if event_id in ids:
                assert f'href="#ev-{anchor}"' in html and f'id="ev-{anchor}"' in html


def test_a_tariff_revision_is_a_change_with_the_money_it_moved(ledger: Ledger) -> None:
    build_history(ledger)
    ledger.set_tariff("2025-26", {"D": 720000}, reason="Schools Forum revised band D")
    # the revision applies to the whole financial year: arrears for every band D plan
    run = pay(ledger, "2025-26/summer")
    assert run.supplementary
    s = statement_for(ledger.store, "100001", "2025-26/summer")
    assert [r.run_id for r in s.runs] == ["2025-26-summer-r1", "2025-26-summer-r2"]
    revision = next(c for c in s.changes if c.kind == "tariff-revision")
    assert "band D £7,000.00 → £7,200.00" in revision.what
    assert revision.reason == "Schools Forum revised band D"
    assert revision.effective.startswith("financial year 2025-26")
    assert revision.money == sum(line.amount for p in run.school_paid if p.school == "100001"
                                 for line in p.lines) != 0
    assert s.seal == run.seal and s.run_id == run.run_id


# Nothing paid, unknown school or period.


def test_a_school_with_nothing_paid_says_so_plainly(history: tuple[Ledger, Path]) -> None:
    ledger, _ = history
    s = statement_for(ledger.store, "100004", "2025-26/summer")
    assert s.nothing_paid and s.totals.total == 0 and not s.lines and not s.children
    text = html_text(render_html(s))
    assert ("Nothing was paid to Hillside Resource Base for 2025-26/summer: the payment run for "
            "this period (2025-26-summer-r1) had no top-up for this school.") in text
    assert s.year_to_date.total > 0  # it was paid earlier in the year, and the page says how much
    assert money(s.year_to_date.total) in text
    assert s.seal  # the period's run is still witnessed


def test_a_period_with_no_run_says_so_plainly(history: tuple[Ledger, Path]) -> None:
    ledger, _ = history
    s = statement_for(ledger.store, "100001", "2026-27/autumn")
    assert s.nothing_paid and not s.seal
    text = html_text(render_html(s))
    assert "no payment run for this period has been recorded yet" in text
    assert render_csv(s).count("\n") == 1  # the header only


def test_cli_writes_each_format_and_refuses_unknown_school_or_period(cli, ledger: Ledger,
                                                                    tmp_path: Path) -> None:
    build_history(ledger)
    out = tmp_path / "out"
    for fmt in ("html", "pdf", "csv"):
        result = cli("statement", "100002", "2025-26/summer", "--format", fmt, "--out", str(out))
        assert "£4,053.28" in result.output and f"statement-100002-2025-26-summer.{fmt}" in result.output
        assert (out / f"statement-100002-2025-26-summer.{fmt}").stat().st_size > 100
    result = cli("statement", "100002", "2025-26/summer", "--out", str(out), "--json")
    report = json.loads(result.output)
    assert report["totals_pence"]["total"] == 405328
    assert re.fullmatch(r"[0-9a-f]{64}@\d+", report["seal"]) and report["run_id"] == "2025-26-summer-r1"

    result = cli("statement", "100004", "2025-26/summer", "--out", str(out))
    assert "Nothing was paid to Hillside Resource Base for 2025-26/summer" in result.output

    for args, words in [(("999999", "2025-26/summer"), "school 999999 is not in the ledger"),
                        (("100001", "2025-26/winter"), "2025-26/winter is not a period"),
                        (("100001", "summer"), "'summer' is not a period id"),
                        (("100001", "2025-27/autumn"), "2025-27")]:
        result = cli("statement", *args, "--out", str(out), ok=False)
        assert result.exit_code != 0, args
        assert words in result.output, result.output


def test_statements_for_a_period_write_every_school_paid_and_an_index(cli, ledger: Ledger,
                                                                      tmp_path: Path) -> None:
    build_history(ledger)
    out = tmp_path / "summer"
    result = cli("statements", "2025-26/summer", "--out", str(out), "--format", "html",
                 "--format", "csv")
    assert "3 statements for 2025-26/summer (£13,683.86 in all)" in result.output
    index = (out / "index.html").read_text()
    for urn in ("100001", "100002", "100003"):
        assert f'href="statement-{urn}-2025-26-summer.html"' in index
        assert (out / f"statement-{urn}-2025-26-summer.csv").exists()
    assert "100004" not in index  # not paid in the period: no statement
    assert "£13,683.86" in html_text(index)

    empty = tmp_path / "next"
    result = cli("statements", "2026-27/autumn", "--out", str(empty))
    assert "no school was paid for 2026-27/autumn" in result.output
    assert "No school was paid for 2026-27/autumn" in html_text((empty / "index.html").read_text())
    result = cli("statements", "2025-26/winter", "--out", str(empty), ok=False)
    assert result.exit_code != 0 and "2025-26/winter is not a period" in result.output


# As known at a time.


def recorded(store: EventStore) -> list[tuple[int, object]]:
    return [(position, r) for position, r in store.recorded()]


def test_as_of_uses_only_what_was_recorded_by_then(history: tuple[Ledger, Path]) -> None:
    ledger, _ = history
    store = ledger.store
    events = recorded(store)
    ceased = next(r for _, r in events if isinstance(r.fact, ev.PlanCeased))
    spring = next(r for _, r in events
                  if isinstance(r.fact, ev.PaymentRunRecorded) and r.fact.period == "2025-26/spring")
    # after the cessation was recorded, before the correction and the summer run
    s = statement_for(store, "100002", "2025-26/summer", as_of=ceased.recorded_at)
    assert s.nothing_paid and "as known at that time" in html_text(render_html(s))
    assert s.position == next(p for p, r in events if r is ceased or r.id == ceased.id)
    assert [c.kind for c in s.changes] == ["ceased"]  # the correction was not known yet
    assert s.year_to_date.total == statement_for(store, "100002", "2025-26/spring").year_to_date.total
    # at the spring run's recorded time the spring statement is what it is now
    then = statement_for(store, "100002", "2025-26/spring", as_of=spring.recorded_at)
    now = statement_for(store, "100002", "2025-26/spring")
    assert then.totals == now.totals and then.lines == now.lines and then.seal == now.seal
    assert [c.id for c in then.changes] == [c.id for c in now.changes]
    # a moment before the spring run: nothing paid for spring yet
    before = statement_for(store, "100002", "2025-26/spring",
                           as_of=spring.recorded_at - timedelta(microseconds=1))
    assert before.nothing_paid and before.position < then.position


def test_as_of_on_the_command_line(cli, ledger: Ledger, clock, tmp_path: Path) -> None:
    build_history(ledger)
    spring = next(r for _, r in ledger.store.recorded()
                  if isinstance(r.fact, ev.PaymentRunRecorded) and r.fact.period == "2025-26/spring")
    moment = spring.recorded_at.isoformat()
    result = cli("statement", "100002", "2025-26/summer", "--as-of", moment, "--out", str(tmp_path),
                 "--json")
    report = json.loads(result.output)
    assert report["nothing_paid"] and report["as_of"] == moment
    assert Path(report["files"][0]).name.startswith("statement-100002-2025-26-summer-as-of-")
    result = cli("statement", "100002", "2025-26/summer", "--as-of", "2000-01-01", "--out",
                 str(tmp_path), ok=False)
    assert result.exit_code != 0
    assert "school 100002 is not in the ledger as known at 2000-01-01" in result.output
    result = cli("statement", "100002", "2025-26/summer", "--as-of", "soon", ok=False)
    assert result.exit_code != 0 and "'soon' is not a time" in result.output


# The page itself.

FETCH = re.compile(r"""(?:src|href|action|poster|data)\s*=\s*["']?\s*(?:https?:)?//"""
                   r"""|url\(\s*["']?\s*(?:https?:)?//|@import""", re.I)


def assert_self_contained(html: str) -> None:
    assert not FETCH.search(html), FETCH.search(html)
    assert "http://" not in html and "https://" not in html
    assert "<script" not in html.lower() and "<link" not in html.lower()
    assert "<img" not in html.lower()  # the chart is inline SVG


def test_html_is_self_contained_and_has_print_rules(history: tuple[Ledger, Path]) -> None:
    ledger, _ = history
    for urn in SCHOOLS:
        html = render_html(statement_for(ledger.store, urn, "2025-26/summer"))
        assert_self_contained(html)
        assert "@media print" in html and "@page" in html
        assert html.startswith("<!DOCTYPE html>") and '<meta charset="utf-8">' in html


def test_pdf_text_carries_the_totals_children_and_seal(history: tuple[Ledger, Path],
                                                       tmp_path: Path) -> None:
    ledger, _ = history
    s = statement_for(ledger.store, "100002", "2025-26/summer")
    path = write_statement(s, tmp_path, ["pdf"])[0]
    assert path.read_bytes().startswith(b"%PDF")
    text = " ".join(page.extract_text() for page in pypdf.PdfReader(path).pages)
    flat = re.sub(r"\s+", " ", text)
    assert f"Total paid for 2025-26/summer {money(s.totals.total)}" in flat
    assert money(s.year_to_date.total) in flat
    for child in s.children:
        assert child.pupil in flat and money(child.total) in flat
    for kind in ("regular", "arrears", "clawback"):
        assert money(getattr(s.totals, kind)) in flat
    seal = re.sub(r"\s+", "", text)
    assert s.seal in seal and s.run_id in flat


def test_pdf_is_made_from_the_same_html(history: tuple[Ledger, Path]) -> None:
    ledger, _ = history
    s = statement_for(ledger.store, "100001", "2025-26/spring")
    pdf = render_pdf(s)
    text = re.sub(r"\s+", " ", " ".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(pdf)).pages))
    for words in ("What changed since your last statement", "Transfer from hours to a band",
                  "£6,341.45 a year", "Every payment line", "Ledger seal"):
        assert words.lower() in text.lower()  # the tags are in capitals on the page


def statement_pupils(s: Statement, rendered: str) -> set[str]:
    return set(re.findall(r"\bPR-[0-9A-F]{4}\b|\bPU-\d{4}\b", rendered))


def test_no_statement_names_another_schools_pupils(history: tuple[Ledger, Path]) -> None:
    ledger, _ = history
    known = read_known(ledger.store)
    for period in PERIODS:
        for urn in SCHOOLS:
            s = statement_for(ledger.store, urn, period)
            allowed = allowed_pupils(ledger.store, urn, known)
            for rendered in (render_html(s), render_csv(s)):
                assert statement_pupils(s, rendered) <= allowed, (urn, period)


def allowed_pupils(store: EventStore, urn: str, known: Known) -> set[str]:
    """Pupils a school may see: those whose plan was ever at it, or that it was ever paid for."""
    pupils = {p.issued.pupil for p in known.plans() if urn in p.schools()}
    for _, r in store.recorded(types=(ev.SchoolPaid.TYPE,)):
        if r.fact.school == urn:
            pupils |= {line.pupil for line in r.fact.lines if line.pupil}
    return pupils


def test_write_period_matches_single_statements(history: tuple[Ledger, Path], tmp_path: Path) -> None:
    """The one-pass fold of every school gives the same statements as a fold for one school."""
    ledger, _ = history
    result = write_period(ledger.store, "2025-26/spring", tmp_path, ["html"])
    assert [s.school for s in result.statements] == SCHOOLS
    for s in result.statements:
        alone = statement_for(ledger.store, s.school, "2025-26/spring")
        assert render_html(alone) == render_html(s)
        assert (tmp_path / f"statement-{s.school}-2025-26-spring.html").read_text() == render_html(s)

