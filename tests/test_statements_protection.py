"""Statements say when and why protection started and ended (issue 24): each grant,
extension and early end is a change card with its dates, reason, who recorded it and the
money it moved; a band change, a move or ceasing that ends protection says so on its own
card; a frozen prior is named in the protection line's working; a school-day calendar's
lines say "N of M school days".

The common case (tests/test_protection_facts.py): P1, 25 h a week at Oak (mainstream) from
1 Sep 2025, at £12.00 × 38 weeks less the £6,000 threshold: a prior of 25 × 1,200 × 38 −
600,000 = 540,000p a year; band B is £3,100 (310,000p), so protection is worth 230,000p a
year. Autumn is 4/12 of the year (122 days), spring 3/12 (90 days), summer 5/12 (153 days).
"""

from __future__ import annotations

from pathlib import Path

from conftest import Invoke
from test_school_days import the_examples
from test_statements import html_text
from topup_ledger.services.recording import Ledger
from topup_ledger.statements import statement_for
from topup_ledger.statements.model import Change, Statement
from topup_ledger.statements.render import render_html

OAK, ELM = "100001", "100002"
AUTUMN, SPRING, SUMMER = "2025-26/autumn", "2025-26/spring", "2025-26/summer"


def oak_and_elm(cli: Invoke, rate_2026: str = "12") -> None:
    for urn, name in ((OAK, "Oak Primary"), (ELM, "Elm Academy")):
        cli("school", "add", urn, "--name", name, "--setting", "mainstream")
    for year, hourly in (("2025-26", "12"), ("2026-27", rate_2026)):
        cli("rate", "set", "--fy", year, "--hourly", hourly, "--weeks", "38", "--threshold", "6000")
        cli("tariff", "set", "--fy", year, "--band", "B=3100", "--band", "C=5000")


def on_band_b(cli: Invoke, ref: str, protect_until: str) -> None:
    cli("plan", "issue", ref, "--pupil", f"PR-{ref}", "--school", OAK, "--from", "2025-09-01",
        "--hours", "25")
    cli("plan", "transfer", ref, "--band", "B", "--from", "2025-09-01", "--protect-until",
        protect_until)


def cards(s: Statement, plan: str) -> list[Change]:
    return [c for c in s.changes if c.plan == plan]


def pay(cli: Invoke, period: str, tmp_path: Path) -> None:
    cli("pay", period, "--out", str(tmp_path / "out"))


def protection_money(change: Change) -> list[tuple[str, str, int]]:
    return [(m.kind, m.for_period, m.amount) for m in change.lines if m.component == "protection"]


def test_an_extension_and_an_early_end_are_change_cards_with_the_money_they_moved(
        cli: Invoke, ledger: Ledger, tmp_path: Path) -> None:
    """Protected to 31 Dec 2025: autumn pays base 310,000 / 3 = 103,333.33 → 103,333p and
    protection 540,000 / 3 − 103,333 = 76,667p. Extended to 31 Mar 2026 (from 1 Jan): spring
    pays base 310,000 × 3/12 = 77,500p and protection 230,000 × 3/12 = 57,500p, on the card
    of the extension. Ended early from 1 Feb 2026: protected 1–31 Jan, 31 of spring's 90
    days: 230,000 × 3/12 × 31/90 = 19,805.56; the year so far 180,000 + 77,500 + 19,805.56
    = 277,305.56 → 277,306, less autumn's 180,000 and spring's base 77,500: 19,806p, so the
    summer run claws back 19,806 − 57,500 = −37,694p (−£376.94) for spring, on the card of
    the early end."""
    oak_and_elm(cli)
    on_band_b(cli, "P1", "2025-12-31")
    pay(cli, AUTUMN, tmp_path)
    cli("plan", "protection-extend", "P1", "--until", "2026-03-31", "--reason", "panel: phased move")
    pay(cli, SPRING, tmp_path)
    cli("plan", "protection-end", "P1", "--from", "2026-02-01", "--reason", "needs met within the band")
    pay(cli, SUMMER, tmp_path)

    spring = statement_for(ledger.store, OAK, SPRING)
    (extended,) = cards(spring, "P1")
    assert (extended.kind, extended.title, extended.reason, extended.effective) == (
        "protection-extended", "Protection extended", "panel: phased move", "1 January 2026")
    assert extended.what == "Protection that ran to 31 December 2025 goes on to 31 March 2026"
    assert extended.before == "£3,100.00 a year on band B (2025-26 tariff)"
    assert extended.after == "£5,400.00 a year on band B (2025-26 tariff)"
    assert protection_money(extended) == [("protection", SPRING, 57_500)]
    assert extended.recorded_by not in ("", "unknown")

    summer = statement_for(ledger.store, OAK, SUMMER)
    (ended,) = cards(summer, "P1")
    assert (ended.kind, ended.title, ended.reason, ended.effective) == (
        "protection-ended", "Protection ended early", "needs met within the band",
        "1 February 2026")
    assert ended.what == ("Protection (granted to 31 March 2026) ends early: its last protected "
                          "day is 31 January 2026; from 1 February 2026 the band amount alone is "
                          "paid")
    assert ("clawback", SPRING, -37_694) in protection_money(ended)
    text = html_text(render_html(summer))
    assert "Protection ended early" in text and "Money put right for earlier periods: −£376.94" in text
    assert f"by {ended.recorded_by} Why needs met within the band" in text
    # summer's −1p of protection is rounding, and the row says when and why protection ended
    (child,) = summer.children
    assert child.protection == -1
    assert child.protection_note.endswith(
        "Protection ended early (P1/4: needs met within the band): its last protected day was "
        "31 January 2026.")


def test_a_grant_and_the_band_change_move_and_ceasing_that_end_protection_say_so(
        cli: Invoke, ledger: Ledger, tmp_path: Path) -> None:
    """P1, P2, P3 protected to 31 Aug 2026; P4 moved to B unprotected. After autumn, from
    1 Jan 2026: P1 reviewed to C, P2 moves to Elm, P3 ceases, and a panel grants P4
    protection to 31 Mar 2026. Oak's spring statement: P4's grant card carries spring's
    protection 230,000 × 3/12 = 57,500p (the year so far 103,333.33 + 135,000 = 238,333.33
    → 238,333, less the base so far 180,833.33 → 180,833); P1's, P2's and P3's cards each
    say their change ends protection granted to 31 August 2026, its last day 31 Dec 2025."""
    oak_and_elm(cli)
    for ref in ("P1", "P2", "P3"):
        on_band_b(cli, ref, "2026-08-31")
    cli("plan", "issue", "P4", "--pupil", "PR-P4", "--school", OAK, "--from", "2025-09-01",
        "--hours", "25")
    cli("plan", "transfer", "P4", "--band", "B", "--from", "2025-09-01")
    pay(cli, AUTUMN, tmp_path)
    cli("plan", "band", "P1", "--band", "C", "--from", "2026-01-01", "--reason", "interim-review")
    cli("plan", "move", "P2", "--school", ELM, "--from", "2026-01-01")
    cli("plan", "cease", "P3", "--from", "2026-01-01", "--reason", "left the LA")
    cli("plan", "protect", "P4", "--from", "2026-01-01", "--until", "2026-03-31",
        "--reason", "tribunal: protect to Easter")
    pay(cli, SPRING, tmp_path)

    spring = statement_for(ledger.store, OAK, SPRING)
    (granted,) = cards(spring, "P4")
    assert (granted.kind, granted.title, granted.reason, granted.effective) == (
        "protection-granted", "Protection granted", "tribunal: protect to Easter", "1 January 2026")
    assert granted.what == ("Protection from 1 January 2026 to 31 March 2026: the school is paid "
                            "the larger of the prior hours-based amount and the band amount until "
                            "then")
    assert protection_money(granted) == [("protection", SPRING, 57_500)]
    ends = ("This ends the plan's protection (granted to 31 August 2026): its last protected day "
            "is 31 December 2025, as ")
    (band,) = cards(spring, "P1")
    assert band.what == f"Band changed from band B to band C. {ends}a new assessment sets a new level"
    (moved,) = cards(spring, "P2")
    assert moved.what == ("Pupil PR-P2 moved from this school to Elm Academy (URN 100002). "
                          f"{ends}another school, another budget")
    (ceased,) = cards(spring, "P3")
    assert ceased.what == ("Plan ceases from 1 January 2026: funded up to 31 December 2025. "
                           f"{ends}the plan ceased")
    text = html_text(render_html(spring))
    for words in ("Protection granted", granted.what, band.what, moved.what, ceased.what):
        assert words in text, words
    # Elm, which the move brought P2 to, is told the same: it pays no protection for P2
    (moved_in,) = cards(statement_for(ledger.store, ELM, SPRING), "P2")
    assert moved_in.what == ("Pupil PR-P2 moved to this school from Oak Primary (URN 100001). "
                             f"{ends}another school, another budget")


def test_a_frozen_prior_is_named_in_the_protection_working(
        cli: Invoke, ledger: Ledger, tmp_path: Path) -> None:
    """£12.50 an hour in 2026-27; the LA freezes the prior after autumn. Summer (1 Apr–31 Aug
    2026, financial year 2026-27) prices the prior at the terms of 1 Sep 2025 (the day before
    the transfer, or, for a plan issued on the transfer's own day, that day: §10):
    25 × £12.00 × 38 − £6,000 = £5,400.00, not 25 × £12.50 × 38 −
    £6,000 = £5,875.00. The year's total is then 540,000p: summer pays 540,000 − 180,000 −
    135,000 = 225,000p, base 310,000 − 180,833 = 129,167p and protection 95,833p
    (230,000 × 5/12 = 95,833.33 in the working)."""
    oak_and_elm(cli, rate_2026="12.50")
    on_band_b(cli, "P1", "2026-08-31")
    pay(cli, AUTUMN, tmp_path)
    cli("protection-policy", "--prior", "frozen", "--reason", "Schools Forum: cash protection")
    pay(cli, SPRING, tmp_path)
    pay(cli, SUMMER, tmp_path)
    spring = statement_for(ledger.store, OAK, SPRING)
    (policy,) = [c for c in spring.changes if c.kind == "protection-policy"]
    assert policy.reason == "Schools Forum: cash protection"
    summer = statement_for(ledger.store, OAK, SUMMER)
    (child,) = summer.children
    assert (child.this_period, child.protection) == (129_167, 95_833)
    (protected,) = [w for w in child.workings if w.component == "protection"]
    assert protected.basis == (
        "protection: prior (frozen at the terms of 1 September 2025, the LA's protection policy) "
        "25 hours × £12.00 × 38 weeks − £6,000.00 threshold (2025-26 rate) = £5,400.00, less "
        "band B (2026-27 tariff) £3,100.00")
    assert html_text(render_html(summer)).count("frozen at the terms of 1 September 2025") == 1


def test_a_school_day_calendar_s_workings_say_n_of_m_school_days(
        cli: Invoke, ledger: Ledger, tmp_path: Path) -> None:
    """schemas/imports.md's calendar: 194 school days in 2025-26, 18 in September. P2 on E
    (£15,750) from Monday 15 Sep has 12 of them: 1,575,000 × 18/194 × 12/18 = 97,422.68 →
    £974.23 (tests/test_school_days.py)."""
    cli("school", "add", OAK, "--name", "Oak Primary", "--setting", "mainstream")
    cli("tariff", "set", "--fy", "2025-26", "--band", "E=15750")
    terms, months = the_examples(tmp_path)
    cli("calendar", "set", "--ay", "2025-26", "--file", str(months), "--term-dates", str(terms),
        "--reason", "we pay monthly by school days")
    cli("plan", "issue", "P2", "--pupil", "PR-2", "--school", OAK, "--from", "2025-09-15",
        "--band", "E")
    pay(cli, "2025-26/sep", tmp_path)
    s = statement_for(ledger.store, OAK, "2025-26/sep")
    (child,) = s.children
    assert (child.days, child.this_period) == (12, 97_423)
    text = html_text(render_html(s))
    assert "£15,750.00 a year × 18/194 × 12 of 18 school days = £974.23" in text, text[:4000]
    assert "(18 school days from 1 September 2025 to 30 September 2025" in text
