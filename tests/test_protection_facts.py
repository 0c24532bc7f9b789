"""Protection as facts of its own (issue 24, item 2; docs/rules.md §10): granted after a
transfer, extended, ended early, each with a reason; the LA's policy to freeze the prior;
and the plan's history saying when and why protection started and ended.

Every figure is worked by hand in the docstring. The runs go through ``money_support.Driver``,
so each is also compared, line by line, with tests/oracle.py's design rules.

The common case: P1, 25 h a week at Oak (mainstream) from 1 Sep 2025, at £12.00 × 38 weeks
less the £6,000 threshold: a prior of 25 × 1,200 × 38 − 600,000 = 540,000p a year; band B is
£3,100 (310,000p), so protection is worth 230,000p a year.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from conftest import Invoke
from money_support import Driver
from topup_ledger.domain import events as ev
from topup_ledger.domain.errors import RuleError
from topup_ledger.services import protection
from topup_ledger.services.importer import import_file
from topup_ledger.services.payment_run import pay
from topup_ledger.services.recording import Ledger

OAK, ELM = "100001", "100002"
AUTUMN, SPRING, SUMMER = "2025-26/autumn", "2025-26/spring", "2025-26/summer"
NEXT_AUTUMN = "2026-27/autumn"


def p1_on_band_b(ledger: Ledger, protect_until: date | None, rate_2026: int = 1200) -> Driver:
    driver = Driver(ledger)
    for urn in (OAK, ELM):
        assert driver.add_school(urn, "mainstream")
    for year, hourly in (("2025-26", 1200), ("2026-27", rate_2026)):
        assert driver.set_rate(year, hourly, Decimal(38), 600_000, "the year's rate")
        assert driver.set_tariff(year, {"B": 310_000, "C": 500_000}, None, "the year's tariff")
    assert driver.issue("P1", OAK, date(2025, 9, 1), hours=Decimal(25))
    assert driver.transfer("P1", "B", date(2025, 9, 1), protect_until)
    return driver


def protection_lines(lines: list[tuple[str, str, str, str, str, int]]) -> list[tuple[str, str, int]]:
    return [(period, kind, pence) for _, _, period, component, kind, pence in lines
            if component == "protection"]


def test_protection_granted_after_the_transfer_pays_from_its_first_day(
        ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    """P1 moves to B from 1 Sep 2025 unprotected; a panel grants protection from 1 Jan to
    31 Mar 2026. autumn: base 310,000 / 3 = 103,333.33 → 103,333p, no protection. spring:
    base 310,000 × 3/12 = 77,500p; protection 230,000 × 3/12 = 57,500p (rounded with the
    base: total so far 103,333.33 + 77,500 + 57,500 = 238,333.33 → 238,333, less the base so
    far 180,833.33 → 180,833). summer: base 310,000 − 180,833 = 129,167p, no protection."""
    driver = p1_on_band_b(ledger, None)
    assert driver.protect("P1", date(2026, 1, 1), date(2026, 3, 31), "panel: protect to Easter")
    lines = [line for period in (AUTUMN, SPRING, SUMMER)
             for line in driver.pay(period, monkeypatch).lines]
    assert [(line[2], line[3], line[5]) for line in lines] == [
        (AUTUMN, "base", 103_333), (SPRING, "base", 77_500), (SPRING, "protection", 57_500),
        (SUMMER, "base", 129_167)]


def test_an_extension_recorded_late_pays_the_protection_as_arrears_naming_it(
        ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    """Protected to 31 Dec 2025: autumn pays base 103,333p and protection 540,000 / 3 −
    103,333 = 76,667p; spring pays base 77,500p alone. Then protection is extended to 14 Feb
    2026 (45 of spring's 90 days): 230,000 × 3/12 × 45/90 = 28,750p, which the summer run
    pays as arrears for spring, naming the extension P1/3. The extension takes effect from
    1 Jan 2026, the day after the end it extends."""
    driver = p1_on_band_b(ledger, date(2025, 12, 31))
    assert protection_lines(driver.pay(AUTUMN, monkeypatch).lines) == [(AUTUMN, "protection", 76_667)]
    assert protection_lines(driver.pay(SPRING, monkeypatch).lines) == []
    assert driver.extend_protection("P1", date(2026, 2, 14), "phase transfer moved to half-term")
    extension = ledger.store.stream("plan:P1")[-1].fact
    assert (extension.effective, extension.until) == (date(2026, 1, 1), date(2026, 2, 14))  # type: ignore[attr-defined]
    result = pay(ledger, SUMMER)
    arrears = [line for paid in result.school_paid for line in paid.lines if line.component == "protection"]
    assert [(line.for_period, line.kind, line.amount) for line in arrears] == [(SPRING, "arrears", 28_750)]
    assert arrears[0].caused_by == ("P1/3",)


def test_protection_ended_early_claws_back_what_it_had_paid(
        ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    """Protected to 31 Aug 2026; autumn pays 76,667p of protection. Then it is ended from
    1 Dec 2025: protected 1 Sep to 30 Nov, 91 of autumn's 122 days: 230,000 × 4/12 × 91/122 =
    57,185.79p; the total 103,333.33 + 57,185.79 = 160,519.13 → 160,519, less the base
    103,333: 57,186p. The spring run claws back 57,186 − 76,667 = −19,481p for autumn."""
    driver = p1_on_band_b(ledger, date(2026, 8, 31))
    assert protection_lines(driver.pay(AUTUMN, monkeypatch).lines) == [(AUTUMN, "protection", 76_667)]
    assert driver.end_protection("P1", date(2025, 12, 1), "needs met within the band")
    assert protection_lines(driver.pay(SPRING, monkeypatch).lines) == [(AUTUMN, "clawback", -19_481)]


def test_a_frozen_prior_keeps_the_transfer_years_rate(
        ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    """£12.50 an hour in 2026-27. Recomputed (the default), summer (in 2026-27) prices the
    prior at 25 × 1,250 × 38 − 600,000 = 587,500p: protection 76,667 + 57,500 + 115,625p
    (tests/test_protection_policy.py). The LA then records its policy: the prior frozen at
    the transfer, priced at the terms of 31 Aug 2025 (2025-26's £12.00): 540,000p all year,
    so the year's protection is 230,000p and summer's 230,000 − 134,167 = 95,833p. The next
    run claws back 95,833 − 115,625 = −19,792p for summer; autumn and spring stay as paid."""
    driver = p1_on_band_b(ledger, date(2026, 8, 31), rate_2026=1250)
    paid = [line for period in (AUTUMN, SPRING, SUMMER) for line in driver.pay(period, monkeypatch).lines]
    assert protection_lines(paid) == [(AUTUMN, "protection", 76_667), (SPRING, "protection", 57_500),
                                      (SUMMER, "protection", 115_625)]
    assert driver.set_protection_policy("frozen", "Schools Forum: cash protection")
    assert protection_lines(driver.pay(NEXT_AUTUMN, monkeypatch).lines) == [(SUMMER, "clawback", -19_792)]
    assert protection.policy(ledger) == ("frozen", "protection-policy/1")


def test_protection_granted_anew_after_a_review_and_ended_by_a_move(
        ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    """Protected to 31 Aug 2026, reviewed to C (500,000p) from 1 Jan 2026: the review ends
    protection (540,000 − 500,000 would still be worth 40,000p a year). A tribunal grants it
    again from 1 Feb to 31 Aug 2026; the plan moves to Elm from 1 Apr 2026, which ends it.
    spring: base 500,000 × 3/12 = 125,000p; protection 40,000 × 3/12 × 59/90 (1 Feb – 31 Mar)
    = 6,555.56p; total so far 180,000 + 125,000 + 6,555.56 = 311,555.56 → 311,556, less the
    base so far 103,333.33 + 125,000 → 228,333: 83,223, less autumn's 76,667: 6,556p.
    summer (at Elm): base 500,000 × 5/12 = 208,333.33; no protection."""
    driver = p1_on_band_b(ledger, date(2026, 8, 31))
    assert driver.change_band("P1", "C", date(2026, 1, 1), "annual-review")
    assert driver.protect("P1", date(2026, 2, 1), date(2026, 8, 31), "tribunal order")
    assert driver.move("P1", ELM, date(2026, 4, 1))
    lines = [line for period in (AUTUMN, SPRING, SUMMER) for line in driver.pay(period, monkeypatch).lines]
    assert protection_lines(lines) == [(AUTUMN, "protection", 76_667), (SPRING, "protection", 6_556)]
    assert [(line[1], line[5]) for line in lines if line[2] == SUMMER] == [(ELM, 208_333)]


def test_what_protection_cannot_do_is_refused_naming_why(ledger: Ledger) -> None:
    """Nothing is recorded for: a grant to a plan on hours, a grant while already
    protected, an extension of protection a review ended, an early end on a day not
    protected, an until before the from."""
    driver = p1_on_band_b(ledger, date(2025, 12, 31))
    assert driver.issue("P2", OAK, date(2025, 9, 1), hours=Decimal(20))
    before = ledger.store.max_position()
    refusals = {
        "on hours": lambda: protection.grant(ledger, "P2", date(2025, 10, 1), date(2026, 3, 31), "x"),
        "already": lambda: protection.grant(ledger, "P1", date(2025, 10, 1), date(2026, 3, 31), "x"),
        "not protected": lambda: protection.end(ledger, "P1", date(2026, 1, 5), "x"),
        "until first": lambda: protection.grant(ledger, "P1", date(2026, 2, 1), date(2026, 1, 31), "x"),
        "no reason": lambda: protection.grant(ledger, "P1", date(2026, 2, 1), date(2026, 3, 31), " "),
    }
    messages = {}
    for name, call in refusals.items():
        with pytest.raises(RuleError) as refused:
            call()
        messages[name] = f"{refused.value.field}: {refused.value.problem}"
    assert messages == {
        "on hours": "plan: plan P2 is not on a band after a move from hours on 2025-10-01: there is "
                    "no prior hours-based amount to protect",
        "already": "from: plan P1 is already protected on 2025-10-01 (until 2025-12-31): extend that "
                   "protection instead",
        "not protected": "from: plan P1 is not protected on 2026-01-05",
        "until first": "until: 2026-01-31 is before 2026-02-01",
        "no reason": "reason: give a reason",
    }
    assert driver.change_band("P1", "C", date(2025, 12, 1), "interim-review")
    with pytest.raises(RuleError, match=r"protection ended on 2025-11-30 \(a band change\): grant "
                                        "protection anew instead"):
        protection.extend(ledger, "P1", date(2026, 3, 31), "x")
    assert ledger.store.max_position() == before + 1  # the band change alone


def test_history_says_when_and_why_protection_started_and_ended(cli: Invoke) -> None:
    """P1 moves to B from 1 Sep 2025 protected to 31 Dec 2025, extended to 31 Mar 2026,
    ended early from 1 Feb 2026; granted again from 1 Apr 2026 to 31 Aug 2026 and ended by a
    move to Elm from 1 Jun 2026: two spells, each with what started and ended it."""
    for urn, name in ((OAK, "Oak"), (ELM, "Elm")):
        cli("school", "add", urn, "--name", name, "--setting", "mainstream")
    for year in ("2025-26", "2026-27"):
        cli("rate", "set", "--fy", year, "--hourly", "12", "--weeks", "38", "--threshold", "6000")
        cli("tariff", "set", "--fy", year, "--band", "B=3100")
    cli("plan", "issue", "P1", "--pupil", "PR-1", "--school", OAK, "--from", "2025-09-01", "--hours", "25")
    cli("plan", "transfer", "P1", "--band", "B", "--from", "2025-09-01", "--protect-until", "2025-12-31")
    out = cli("plan", "protection-extend", "P1", "--until", "2026-03-31", "--reason", "panel").output
    assert out == "recorded P1/3: plan P1 protection extended to 2026-03-31\n"
    cli("plan", "protection-end", "P1", "--from", "2026-02-01", "--reason", "needs met")
    cli("plan", "protect", "P1", "--from", "2026-04-01", "--until", "2026-08-31", "--reason", "tribunal")
    cli("plan", "move", "P1", "--school", ELM, "--from", "2026-06-01")
    refused = cli("plan", "protection-extend", "P1", "--until", "2026-12-31", "--reason", "x", ok=False)
    assert refused.exit_code == 2
    assert refused.output == ("error: plan: plan P1's protection ended on 2026-05-31 (a move to another "
                              "school): grant protection anew instead; nothing was recorded\n")
    history = cli("history", "P1").output
    assert history.splitlines()[-2:] == [
        "protected from 2025-09-01 to 2026-01-31: granted with the transfer to band B (P1/2); "
        "extended by P1/3 (panel); ended early by P1/4 (needs met)",
        "protected from 2026-04-01 to 2026-05-31: granted by P1/5 (tribunal); ended by the move "
        "P1/6 to school 100002: another school, another budget"]
    assert "protection granted from 2026-04-01 to 2026-08-31 (tribunal)" in history


def test_the_protection_policy_command_sets_and_shows_it(cli: Invoke) -> None:
    assert cli("protection-policy").output == "protection prior recomputed (the default)\n"
    assert cli("protection-policy", "--prior", "frozen", "--reason", "cash").output == \
        "recorded protection-policy/1: protection prior frozen\n"
    assert cli("protection-policy", "--prior", "frozen", "--reason", "cash").output == \
        "already recorded as protection-policy/1, nothing new: protection prior frozen\n"
    assert cli("protection-policy").output == "protection prior frozen (set by protection-policy/1)\n"
    refused = cli("protection-policy", "--prior", "cash", ok=False)
    assert refused.exit_code == 2 and "'cash' is not one of 'recomputed', 'frozen'" in refused.output


def test_protection_changes_import_as_the_commands_record_them(ledger: Ledger, tmp_path: Path) -> None:
    """changes.csv rows protect, protection-extend and protection-end record what the commands
    do: P1 (moved to B from 1 Sep 2025 unprotected) protected 1 Jan to 31 Mar 2026, extended
    from 1 Apr to 31 Aug 2026, ended from 1 Jul 2026. The same file again records nothing; a
    row without its reason is rejected naming its line and column."""
    p1_on_band_b(ledger, None)
    changes = tmp_path / "changes.csv"
    changes.write_text("plan,change,from,protect_until,reason\n"
                       "P1,protect,2026-01-01,2026-03-31,panel\n"
                       "P1,protection-extend,,2026-08-31,phase transfer\n"
                       "P1,protection-end,2026-07-01,,needs met\n", encoding="utf-8")
    result = import_file(ledger, changes)
    assert (result.recorded, result.rejected) == (3, 0), result.rejects()
    assert [r.fact for r in ledger.store.stream("plan:P1")][2:] == [
        ev.ProtectionGranted("P1", date(2026, 1, 1), date(2026, 3, 31), "panel"),
        ev.ProtectionExtended("P1", date(2026, 4, 1), date(2026, 8, 31), "phase transfer"),
        ev.ProtectionEnded("P1", date(2026, 7, 1), "needs met")]
    again = import_file(ledger, changes)
    assert (again.recorded, again.already, again.rejected) == (0, 3, 0)
    bad = tmp_path / "bad.csv"
    bad.write_text("plan,change,from,protect_until,reason\nP1,protection-end,2026-06-01,,\n",
                   encoding="utf-8")
    refused = import_file(ledger, bad)
    assert [(o.line, o.field, o.reason) for o in refused.rejects()] == [
        (2, "reason", "a protection-end needs a reason")]
