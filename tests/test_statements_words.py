"""What a school reads on its statement, worked by hand: protection named as such (and the
penny of it that is rounding), a tariff that prices the lines, each amount counted once on
the change cards, the year to date by academic and financial year, one money format, the
seal in a sentence, and every format asked for written.

Hand figures use the default terms (autumn 122 days, 4/12; spring 90, 3/12; summer 153,
5/12) and half-up rounding on the year so far (docs/rules.md §5, §6).
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from pathlib import Path

from test_statements import PERIODS, SCHOOLS, build_history, html_text, money, payment_file_rows
from topup_ledger.io.payment_files import write_files_for_run
from topup_ledger.services.payment_run import pay
from topup_ledger.services.recording import Ledger
from topup_ledger.statements import statement_for
from topup_ledger.statements.render import render_html

BEACON = "100003"


def test_a_penny_of_protection_after_it_ended_is_explained_not_left_bare(ledger: Ledger) -> None:
    """docs/rules.md §6 (as tests/test_money_worked.py works it): band Z worth 1p a year;
    P1, 12.5 h at Beacon (special: no threshold) at £11.81 × 38 weeks, prior 560,975p, moved
    to Z from 1 Sep 2025 and protected for that one day.
    spring  base 1 × 3/12 = 0.25p, rounded alone 0p; on the year so far 0.33 + 0.25 = 0.58p
            → 1p, less 0p for autumn: 1p (+1p of rounding); protection: the total on the year
            so far 1,533.30p → 1,533p, as paid for autumn, less the base's 1p: −1p, and no
            day of spring is protected."""
    ledger.add_school(BEACON, "Beacon Special School", "special")
    for year in ("2025-26", "2026-27"):
        ledger.set_rate(year, 1181, Decimal(38), 600000)
        ledger.set_tariff(year, {"B": 310000, "Z": 1})
    ledger.issue_plan("P1", "PR-0001", BEACON, date(2025, 9, 1), hours=Decimal("12.5"))
    ledger.transfer("P1", "Z", date(2025, 9, 1), protect_until=date(2025, 9, 1))
    pay(ledger, "2025-26/autumn")
    pay(ledger, "2025-26/spring")
    s = statement_for(ledger.store, BEACON, "2025-26/spring")
    [child] = s.children
    assert (child.this_period, child.protection) == (1, -1)
    text = html_text(render_html(s))
    assert "band Z (2025-26 tariff): £0.01 a year × 3/12 × 90/90 days = £0.00" in text
    assert "this period: rounded with the year so far, +£0.01" in text
    assert ("Protection −£0.01 is rounding, not protection for this period: the base and "
            "protection are rounded as one amount over the year, so the year's total comes out "
            "exact to the penny.") in text
    # the autumn statement shows the one protected day as a sum: (560,975 − 1) × 4/12 × 1/122
    autumn = html_text(render_html(statement_for(ledger.store, BEACON, "2025-26/autumn")))
    assert ("protection: prior 12.5 hours × £11.81 × 38 weeks (2025-26 rate) = £5,609.75, less "
            "band Z (2025-26 tariff) £0.01: £5,609.74 a year × 4/12 × 1/122 days = £15.33") in autumn


def test_a_tariff_for_the_periods_year_says_which_lines_it_prices(ledger: Ledger) -> None:
    """Summer 2025-26 (April to August 2026) is priced at the 2026-27 tariff. Published after
    the spring run, it names no line (a plan's first payment for a period names the plan's
    own facts, §9), yet it prices the summer line: E at £10,300 for 2026-27.
    summer  year so far: 1,000,000 × 4/12 + 1,000,000 × 3/12 = 583,333.33…p → 583,333 paid;
            + 1,030,000 × 5/12 = 429,166.66…p → 1,012,500p: the summer line 429,167p."""
    ledger.add_school(BEACON, "Beacon Special School", "special")
    ledger.set_rate("2025-26", 1181, Decimal(38), 600000)
    ledger.set_tariff("2025-26", {"E": 1000000})
    ledger.issue_plan("EHCP-0004", "PR-4C21", BEACON, date(2025, 9, 1), band="E")
    pay(ledger, "2025-26/autumn")
    pay(ledger, "2025-26/spring")
    ledger.set_rate("2026-27", 1215, Decimal(38), 600000)
    ledger.set_tariff("2026-27", {"E": 1030000}, reason="approved by the Schools Forum")
    pay(ledger, "2025-26/summer")
    s = statement_for(ledger.store, BEACON, "2025-26/summer")
    assert [c.this_period for c in s.children] == [429167]
    tariff = next(c for c in s.changes if c.kind == "tariff")
    assert tariff.lines == []
    text = html_text(render_html(s))
    assert ("it moved no money by itself; 1 line of this statement (£4,291.67) is priced from "
            "these band values") in text
    assert "no line of this statement rests on it" not in text
    # the hourly rate prices no line of a school whose plans are all on bands: no card for it
    assert not [c for c in s.changes if c.kind == "rate"]


def test_each_amount_is_counted_once_on_the_change_cards(ledger: Ledger) -> None:
    """A line naming several listed changes counts under the latest of them only: the cards'
    money adds up to the lines that name any listed change, each once."""
    build_history(ledger)
    for period in PERIODS:
        for urn in SCHOOLS:
            s = statement_for(ledger.store, urn, period)
            listed = {c.id for c in s.changes}
            naming = [line for line in s.lines if listed & set(line.caused_by)]
            assert sum(c.money for c in s.changes) == sum(line.amount for line in naming)
            for change in s.changes:
                for moved in change.lines:
                    if moved.counted_under:
                        assert moved.shared


def test_year_to_date_by_academic_and_by_financial_year(ledger: Ledger, tmp_path: Path) -> None:
    """The financial year runs from April: 2025-26's periods are autumn and spring 2025-26
    (summer 2024-25 was not paid); summer 2025-26 starts the financial year 2026-27. Figures
    from the payment files."""
    for run in build_history(ledger):
        write_files_for_run(ledger.store, run.run_id, tmp_path)
    rows = payment_file_rows(tmp_path, "payments")

    def paid(urn: str, periods: list[str]) -> int:
        return sum(int(r["total_pence"]) for r in rows
                   if r["school_urn"] == urn and r["period"] in periods)
    for urn in ("100001", "100002"):
        spring = statement_for(ledger.store, urn, "2025-26/spring")
        assert spring.financial_year == "2025-26"
        assert spring.financial_year_to_date.total == paid(urn, PERIODS[:2])
        summer = statement_for(ledger.store, urn, "2025-26/summer")
        assert summer.financial_year == "2026-27"
        assert summer.financial_year_to_date.total == paid(urn, PERIODS[2:])
        assert summer.year_to_date.total == paid(urn, PERIODS)
        text = html_text(render_html(summer))
        assert "Financial year 2026-27 to date" in text and "Academic year 2025-26 to date" in text
        assert f"Total {money(summer.totals.total)} {money(paid(urn, PERIODS))} " \
               f"{money(paid(urn, PERIODS[2:]))}" in text


BARE_POUNDS = re.compile(r"£\d{4,}")  # £4629.02: a thousand without its comma


def test_one_money_format_and_the_seal_in_a_sentence(ledger: Ledger) -> None:
    build_history(ledger)
    for urn in SCHOOLS:
        s = statement_for(ledger.store, urn, "2025-26/summer")
        page = render_html(s)
        text = html_text(page)
        assert not BARE_POUNDS.search(text), BARE_POUNDS.search(text)
        if s.seal:
            assert ("if anyone later changed the records this payment was worked out from, the "
                    "seal would no longer match") in text
            assert "topup verify" not in text
            # the digest appears once, in the footnote
            assert page.count(s.seal) == 1
            assert re.search(r'<p class="footnotes" id="seal-note">[^<]*<span class="seal" '
                             r'id="seal">' + re.escape(s.seal), page)


def test_repeated_format_writes_every_format(cli, ledger: Ledger, tmp_path: Path) -> None:
    build_history(ledger)
    out = tmp_path / "one"
    result = cli("statement", "100002", "2025-26/summer", "--format", "pdf", "--format", "html",
                 "--format", "csv", "--out", str(out))
    for fmt in ("pdf", "html", "csv"):
        path = out / f"statement-100002-2025-26-summer.{fmt}"
        assert path.stat().st_size > 100 and f"wrote {path}" in result.output
    assert (out / "statement-100002-2025-26-summer.pdf").read_bytes().startswith(b"%PDF")
    many = tmp_path / "many"
    cli("statements", "2025-26/summer", "--out", str(many), "--format", "csv", "--format", "pdf")
    assert sorted(p.suffix for p in many.glob("statement-100001-*")) == [".csv", ".pdf"]


def test_the_head_reads_as_a_remittance(cli, ledger: Ledger, tmp_path: Path) -> None:
    """The LA's name, address, contact and how to query, set once with `topup la set`; the
    payment reference of each run; VAT. Without LA details the head says how to add them."""
    build_history(ledger)
    before = html_text(render_html(statement_for(ledger.store, "100002", "2025-26/summer")))
    assert "its name and address are not recorded in the ledger yet" in before
    result = cli("la", "set", "--name", "Anyshire County Council", "--address", "County Hall",
                 "--address", "Anytown AN1 1AA", "--contact", "SEN finance, 01234 567890",
                 "--query-how", "Email sen.finance@anyshire.gov.uk within 30 days.")
    assert "recorded la/1: the LA details for statements (Anyshire County Council)" in result.output
    s = statement_for(ledger.store, "100002", "2025-26/summer")
    text = html_text(render_html(s))
    for words in ("From Anyshire County Council County Hall Anytown AN1 1AA Contact: SEN finance, "
                  "01234 567890",
                  "To query a figure: Email sen.finance@anyshire.gov.uk within 30 days.",
                  f"Reference {s.runs[0].run_id} : {money(s.runs[0].paid_here)}",  # a span ends at the id
                  "VAT: outside the scope of VAT", "Paid to Riverside Academy URN 100002"):
        assert words in text, words
    result = cli("la", "set", "--name", " ", ok=False)
    assert result.exit_code != 0 and "give the local authority's name" in result.output


def test_each_change_says_who_recorded_it(ledger: Ledger) -> None:
    """As `topup history --json` shows `recorded_by`: the identity the ledger stored with the
    event (events recorded before it was kept read "unknown")."""
    build_history(ledger)
    who = {r.id: r.recorded_by for _, r in ledger.store.recorded()}
    assert set(who.values()) - {"unknown"}  # this ledger keeps who recorded its events
    for urn in SCHOOLS:
        s = statement_for(ledger.store, urn, "2025-26/spring")
        page = render_html(s)
        for change in s.changes:
            assert change.recorded_by == who[change.id]
            assert re.search(rf'id="ev-{re.escape(change.id.replace("/", "-").replace(":", "-"))}"'
                             rf'.*?by <span class="recorded-by">{re.escape(change.recorded_by)}</span>',
                             page, re.S), change.id


def test_a_revised_band_is_priced_from_the_revision_not_the_tariff_it_replaced(ledger: Ledger) -> None:
    """As above, but band E for 2026-27 is revised from £10,300 to £10,600 before the summer
    run: summer 583,333.33…p so far + 1,060,000 × 5/12 = 441,666.66…p → 1,025,000p, less
    583,333p: the line 441,667p, priced from the revision alone."""
    ledger.add_school(BEACON, "Beacon Special School", "special")
    ledger.set_rate("2025-26", 1181, Decimal(38), 600000)
    ledger.set_tariff("2025-26", {"E": 1000000})
    ledger.issue_plan("EHCP-0004", "PR-4C21", BEACON, date(2025, 9, 1), band="E")
    pay(ledger, "2025-26/autumn")
    pay(ledger, "2025-26/spring")
    ledger.set_rate("2026-27", 1215, Decimal(38), 600000)
    first = ledger.set_tariff("2026-27", {"E": 1030000}, reason="draft")
    second = ledger.set_tariff("2026-27", {"E": 1060000}, reason="as approved")
    pay(ledger, "2025-26/summer")
    s = statement_for(ledger.store, BEACON, "2025-26/summer")
    assert [c.this_period for c in s.children] == [441667]
    cards = {c.id: c for c in s.changes}
    assert cards[first].priced == ""
    assert cards[second].priced == "1 line of this statement (£4,416.67) is priced from these band values"


def test_an_hours_plan_shows_its_hours_rate_weeks_and_threshold(ledger: Ledger) -> None:
    """EHCP-0002, 32.5 h at Oakfield (mainstream) until its move to band D from 5 January
    2026: spring's first 4 of 90 days on hours, 32.5 × 1,181 × 38 − 600,000 = 858,535p a year:
    858,535 × 3/12 × 4/90 = 9,539.27…p → £95.39; then band D, 700,000 × 3/12 × 86/90 =
    167,222.22…p → £1,672.22."""
    build_history(ledger)
    text = html_text(render_html(statement_for(ledger.store, "100001", "2025-26/spring")))
    assert ("32.5 hours × £11.81 × 38 weeks − £6,000.00 threshold (2025-26 rate): £8,585.35 a "
            "year × 3/12 × 4/90 days = £95.39") in text
    assert "band D (2025-26 tariff): £7,000.00 a year × 3/12 × 86/90 days = £1,672.22" in text


def test_a_band_change_quotes_the_tariff_of_each_year_its_lines_pay_for(ledger: Ledger) -> None:
    """Band C → D from 1 March 2026, recorded after the spring run: the summer run pays spring
    arrears (financial year 2025-26: C £5,000, D £7,000) and summer (2026-27: C £5,150,
    D £7,200), both naming the change; its card quotes both years' values, each named."""
    ledger.add_school("100002", "Riverside Academy", "mainstream")
    for year, bands in (("2025-26", {"C": 500000, "D": 700000}), ("2026-27", {"C": 515000, "D": 720000})):
        ledger.set_rate(year, 1181, Decimal(38), 600000)
        ledger.set_tariff(year, bands)
    ledger.issue_plan("EHCP-0003", "PR-91DE", "100002", date(2025, 9, 1), band="C")
    pay(ledger, "2025-26/autumn")
    pay(ledger, "2025-26/spring")
    ledger.change_band("EHCP-0003", "D", date(2026, 3, 1), "annual-review")
    pay(ledger, "2025-26/summer")
    s = statement_for(ledger.store, "100002", "2025-26/summer")
    [card] = [c for c in s.changes if c.kind == "band-change"]
    assert {m.for_period for m in card.lines} == {"2025-26/spring", "2025-26/summer"}
    assert card.before == "£5,000.00 a year on band C (2025-26 tariff); £5,150.00 a year (2026-27 tariff)"
    assert card.after == "£7,000.00 a year on band D (2025-26 tariff); £7,200.00 a year (2026-27 tariff)"
