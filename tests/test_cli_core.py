"""The `topup` commands that record the facts of DESIGN §3, their history and due, and their
refusals; on SQLite and PostgreSQL (the `cli` and `ledger` fixtures run on both).

Every amount is worked out by hand in the comments.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from click.testing import Result

from topup_ledger.domain import events as ev
from topup_ledger.services.recording import Ledger
from topup_ledger.storage.store import ConflictError, EventStore

Invoke = Callable[..., Result]

OAK, ELM = "100001", "100002"  # mainstream, special


def events_in(location: str) -> int:
    store = EventStore(location)
    try:
        return store.max_position()
    finally:
        store.close()


def record_at(clock: Any, when: str) -> None:
    """The next fact is recorded at ``when`` (the fake clock adds a second per reading)."""
    clock.now = datetime.fromisoformat(when).replace(tzinfo=UTC) - timedelta(seconds=1)


def as_json(result: Result) -> Any:
    return json.loads(result.stdout)


def reference_data(cli: Invoke) -> None:
    """Two schools, the 2025-26 calendar, hourly rates and tariffs for 2025-26 and 2026-27.

    Hours: £11.81 × 38 weeks, less £6,000 at mainstream schools.
    Bands 2025-26: B £3,100, C £4,000, D £7,000, E £9,000; special schools B £4,500.
    Bands 2026-27: B £3,100, C £4,000, D £7,000 (no E); special schools D £9,000.
    """
    cli("school", "add", OAK, "--name", "Oak Primary", "--setting", "mainstream", "--la", "873-2041")
    cli("school", "add", ELM, "--name", "Elm Special", "--setting", "special")
    cli("calendar", "set", "--year", "2025-26", "--reason", "termly payments")
    cli("rate", "set", "--year", "2025-26", "--hourly", "11.81", "--weeks", "38")
    cli("rate", "set", "--year", "2026-27", "--hourly", "£11.81", "--weeks", "38", "--threshold", "£6,000")
    cli("tariff", "set", "--year", "2025-26", "--band", "B=3100", "--band", "C=£4,000",
        "--band", "D=7000.00", "--band", "E=9000", "--reason", "Schools Forum 10 March 2025")
    cli("tariff", "set", "--year", "2025-26", "--band", "B=4500", "--setting", "special")
    cli("tariff", "set", "--year", "2026-27", "--band", "B=3100", "--band", "C=4000", "--band", "D=7000")
    cli("tariff", "set", "--year", "2026-27", "--band", "D=9000", "--setting", "special")


# Recording every fact, then reading it back.


def test_every_fact_recorded_through_the_commands(cli: Invoke, clock: Any, location: str) -> None:
    assert "0 events" in cli("init").output
    reference_data(cli)
    assert events_in(location) == 9

    # P1: the life of a plan from hours to bands, recorded on the days the LA learned each fact;
    # P2: a band change, then a correction of it. Recorded in time order: the ledger's recorded
    # times never go backwards (a clock behind the last event's is held at its time).
    record_at(clock, "2025-09-02T10:00:00")
    assert "recorded P1/1" in cli("plan", "issue", "P1", "--pupil", "PR-7F3A", "--school", OAK,
                                  "--from", "01/09/2025", "--hours", "25").output
    record_at(clock, "2025-09-03T10:00:00")
    cli("plan", "issue", "P2", "--pupil", "PR-11B2", "--school", OAK, "--from", "2025-09-01", "--band", "B")
    cli("plan", "band", "P2", "--band", "C", "--from", "2025-11-01", "--reason", "annual-review")
    record_at(clock, "2025-10-06T11:00:00")
    cli("plan", "hours", "P1", "--hours", "27.5", "--from", "2025-10-01", "--reason", "interim review")
    record_at(clock, "2025-12-10T16:00:00")
    out = cli("plan", "correct", "P2", "--event", "2", "--band", "D",
              "--note", "the review panel said D, not C").output
    assert "recorded P2/3: correction of 2 on plan P2" in out
    record_at(clock, "2026-01-05T09:30:00")
    cli("plan", "transfer", "P1", "--band", "C", "--from", "2026-01-01", "--protect-until", "2026-01-31")
    record_at(clock, "2026-03-20T14:00:00")  # the review of 1 March, recorded three weeks later
    cli("plan", "band", "P1", "--band", "D", "--from", "2026-03-01", "--reason", "annual-review")
    record_at(clock, "2026-04-20T08:00:00")
    cli("plan", "move", "P1", "--school", ELM, "--from", "20/04/2026")
    record_at(clock, "2026-07-24T12:00:00")
    cli("plan", "cease", "P1", "--from", "2026-07-23", "--reason", "moved out of the area")

    # P3: non-statutory top-up at a special school.
    cli("plan", "issue", "P3", "--pupil", "PR-0C9D", "--school", ELM, "--from", "2025-09-01",
        "--band", "B", "--kind", "non-statutory")
    assert events_in(location) == 9 + 6 + 3 + 1

    rows = as_json(cli("history", "P1", "--json"))
    assert [(r["id"], r["type"], r["effective"], r["recorded_at"]) for r in rows] == [
        ("P1/1", "plan.issued", "2025-09-01", "2025-09-02T10:00:00+00:00"),
        ("P1/2", "plan.hours_changed", "2025-10-01", "2025-10-06T11:00:00+00:00"),
        ("P1/3", "plan.transferred_to_band", "2026-01-01", "2026-01-05T09:30:00+00:00"),
        ("P1/4", "plan.band_changed", "2026-03-01", "2026-03-20T14:00:00+00:00"),
        ("P1/5", "plan.moved", "2026-04-20", "2026-04-20T08:00:00+00:00"),
        ("P1/6", "plan.ceased", "2026-07-23", "2026-07-24T12:00:00+00:00"),
    ]
    # The prior hours-based amount kept at the transfer: 27.5 h × 1181p × 38 = 1234145p,
    # less 600000p = 634145p = £6,341.45.
    assert "band C" in rows[2]["what"] and "6341.45" in rows[2]["what"]
    assert "protected until 2026-01-31" in rows[2]["what"]
    assert rows[3]["why"] == "annual-review"
    assert rows[5]["why"] == "moved out of the area"
    assert all(r["corrected_by"] == [] for r in rows)

    rows = as_json(cli("history", "P2", "--json"))
    assert [(r["id"], r["type"], r["effective"], r["recorded_at"], r["corrected_by"]) for r in rows] == [
        ("P2/1", "plan.issued", "2025-09-01", "2025-09-03T10:00:00+00:00", []),
        ("P2/2", "plan.band_changed", "2025-11-01", "2025-09-03T10:00:01+00:00", ["P2/3"]),
        ("P2/3", "plan.corrected", "", "2025-12-10T16:00:00+00:00", []),
    ]
    assert "correction of P2/2" in rows[2]["what"] and "band D" in rows[2]["what"]
    assert rows[2]["why"] == "the review panel said D, not C"
    text = cli("history", "P2").output
    assert "[corrected by P2/3]" in text
    assert "NON-STATUTORY" in as_json(cli("history", "P3", "--json"))[0]["what"]

    # What is due, as known now.
    # P1 autumn: 25 h: 25 × 1181 × 38 − 600000 = 1121950 − 600000 = 521950p a year for
    # 1-30 Sep (30 days); 27.5 h: 634145p a year for 1 Oct - 31 Dec (92 days); share 4/12 of 122:
    # (521950 × 30 + 634145 × 92) / 122 / 3 = (15658500 + 58341340) / 366 = 73999840 / 366
    # = 202185.36p → 202185p.
    autumn = as_json(cli("due", "P1", "--period", "2025-26/autumn", "--json"))
    assert [(s["from"], s["to"], s["days"], s["basis"], s["band_or_hours"], s["annual_pence"])
            for s in autumn["stretches"]] == [
        ("2025-09-01", "2025-09-30", 30, "hours", "25h", 521_950),
        ("2025-10-01", "2025-12-31", 92, "hours", "27.5h", 634_145),
    ]
    assert autumn["due"] == [{"school": OAK, "component": "base", "pence": 202_185, "gbp": "2021.85"}]
    assert autumn["total_pence"] == 202_185

    # P1 spring (share 3/12 of 90 days): band C (400000p) 1 Jan - 28 Feb (31 + 28 = 59 days),
    # protected to 31 Jan; band D (700000p) 1-31 Mar (31 days).
    # base: (400000 × 59 + 700000 × 31) / 90 / 4 = 45300000 / 360 = 125833.33p;
    #   cumulative 202185.36 + 125833.33 = 328018.69p → 328019p; due 328019 − 202185 = 125834p
    # protection: 634145 − 400000 = 234145p a year for 31 days: 234145 × 31 / 360
    #   = 7258495 / 360 = 20162.49p → 20162p
    spring = as_json(cli("due", "P1", "--period", "2025-26/spring", "--json"))
    assert [(s["from"], s["days"], s["band_or_hours"], s["annual_pence"], s["protection_annual_pence"])
            for s in spring["stretches"]] == [
        ("2026-01-01", 31, "C", 400_000, 234_145),
        ("2026-02-01", 28, "C", 400_000, 0),
        ("2026-03-01", 31, "D", 700_000, 0),
    ]
    assert [(d["school"], d["component"], d["pence"]) for d in spring["due"]] == [
        (OAK, "base", 125_834), (OAK, "protection", 20_162)]
    assert spring["total_pence"] == 125_834 + 20_162 == 145_996

    # P1 summer (FY 2026-27, share 5/12 of 153 days): band D at Oak 1-19 Apr (19 days,
    # 700000p); at Elm, a special school (D 900000p), 20 Apr - 22 Jul (11 + 31 + 30 + 22 = 94
    # days); ceased from 23 Jul.
    # Oak: 700000 × 5 × 19 / (12 × 153) = 66500000 / 1836 = 36220.04p; cumulative
    #   328018.69 + 36220.04 = 364238.73p → 364239p; due 364239 − 328019 = 36220p
    # Elm: 900000 × 5 × 94 / 1836 = 423000000 / 1836 = 230392.16p → 230392p
    summer = as_json(cli("due", "P1", "--period", "2025-26/summer", "--json"))
    assert [(s["from"], s["to"], s["school"], s["annual_pence"]) for s in summer["stretches"]] == [
        ("2026-04-01", "2026-04-19", OAK, 700_000), ("2026-04-20", "2026-07-22", ELM, 900_000)]
    assert [(d["school"], d["pence"], d["gbp"]) for d in summer["due"]] == [
        (OAK, 36_220, "362.20"), (ELM, 230_392, "2303.92")]
    assert summer["total_pence"] == 266_612

    # P2 autumn: 61 days on B (310000p), then 61 on D (corrected from C): (310000 + 700000) / 6
    # = 168333.33p → 168333p.
    p2 = as_json(cli("due", "P2", "--period", "2025-26/autumn", "--json"))
    assert [s["band_or_hours"] for s in p2["stretches"]] == ["B", "D"]
    assert p2["total_pence"] == 168_333
    # P3 autumn: band B at a special school, £4,500: 450000 / 3 = 150000p.
    assert as_json(cli("due", "P3", "--period", "2025-26/autumn", "--json"))["total_pence"] == 150_000
    assert "total due: £1,500.00" in cli("due", "P3", "--period", "2025-26/autumn").output


def test_hours_plan_due_after_a_backdated_hours_change(cli: Invoke) -> None:
    # 20 h at a special school: 20 × 1181 × 38 = 897560p a year, no threshold. From 1 Nov
    # 30 h: 30 × 1181 × 38 = 1346340p. Autumn: (897560 × 61 + 1346340 × 61) / 122 / 3
    # = (897560 + 1346340) / 6 = 2243900 / 6 = 373983.33p → 373983p.
    reference_data(cli)
    cli("plan", "issue", "H1", "--pupil", "PR-1", "--school", ELM, "--from", "2025-09-01", "--hours", "20")
    cli("plan", "hours", "H1", "--hours", "30", "--from", "2025-11-01")
    due = as_json(cli("due", "H1", "--period", "2025-26/autumn", "--json"))
    assert [s["annual_pence"] for s in due["stretches"]] == [897_560, 1_346_340]
    assert due["total_pence"] == 373_983


# Refusals: a message naming the field, a non-zero exit, and nothing recorded.


@pytest.fixture
def known(cli: Invoke, location: str) -> Iterator[Invoke]:
    """Reference data; at Oak: P1 on band B; P2 ceased from 1 Mar 2026; H1 on 20 hours, band C
    from 1 Jan, band D from 1 Mar; H2 on 20 hours, 30 hours from 1 Feb."""
    reference_data(cli)
    cli("plan", "issue", "P1", "--pupil", "PR-1", "--school", OAK, "--from", "2025-09-01", "--band", "B")
    cli("plan", "issue", "P2", "--pupil", "PR-2", "--school", OAK, "--from", "2025-09-01", "--band", "B")
    cli("plan", "cease", "P2", "--from", "2026-03-01", "--reason", "left the LA")
    cli("plan", "issue", "H1", "--pupil", "PR-3", "--school", OAK, "--from", "2025-09-01", "--hours", "20")
    cli("plan", "transfer", "H1", "--band", "C", "--from", "2026-01-01")
    cli("plan", "band", "H1", "--band", "D", "--from", "2026-03-01", "--reason", "annual-review")
    cli("plan", "issue", "H2", "--pupil", "PR-4", "--school", OAK, "--from", "2025-09-01", "--hours", "20")
    cli("plan", "hours", "H2", "--hours", "30", "--from", "2026-02-01")
    yield cli


def issue9(*more: str) -> list[str]:
    return ["plan", "issue", "P9", "--pupil", "PR-9", *more]


def band1(band: str, effective: str, ref: str = "P1") -> list[str]:
    return ["plan", "band", ref, "--band", band, "--from", effective, "--reason", "annual-review"]


# (what is wrong, the command, what the refusal must say)
REFUSALS: list[tuple[str, list[str], str]] = [
    ("unknown-school", issue9("--school", "999999", "--from", "2025-09-01", "--band", "B"),
     "school: school 999999 is not in the ledger"),
    ("move-to-unknown-school", ["plan", "move", "P1", "--school", "999999", "--from", "2025-11-01"],
     "school: school 999999 is not in the ledger"),
    ("not-a-urn", issue9("--school", "12345", "--from", "2025-09-01", "--band", "B"),
     "school: '12345' is not a school URN"),
    ("unknown-plan", band1("C", "2025-11-01", "P404"), "plan: plan P404 is not in the ledger"),
    ("due-unknown-plan", ["due", "P404", "--period", "2025-26/autumn"],
     "plan: plan P404 is not in the ledger"),
    ("history-unknown-plan", ["history", "P404"], "plan: plan P404 is not in the ledger"),
    ("issue-band-without-tariff", issue9("--school", OAK, "--from", "2026-04-01", "--band", "E"),
     "band: band E has no tariff for financial year 2026-27"),
    ("band-change-without-tariff", band1("E", "2026-04-01"),
     "band: band E has no tariff for financial year 2026-27"),
    ("before-issue", band1("C", "2025-08-31"),
     "from: 2025-08-31 is before plan P1 was issued (2025-09-01)"),
    ("on-the-cease-date", ["plan", "move", "P2", "--school", ELM, "--from", "2026-03-01"],
     "from: plan P2 ceased from 2026-03-01"),
    ("after-cease", band1("C", "2026-05-01", "P2"), "from: plan P2 ceased from 2026-03-01"),
    ("ceased-twice", ["plan", "cease", "P2", "--from", "2026-04-01", "--reason", "again"],
     "plan: plan P2 already ceased from 2026-03-01"),
    ("issued-twice",
     ["plan", "issue", "P1", "--pupil", "PR-1", "--school", OAK, "--from", "2025-09-01", "--band", "B"],
     "plan: plan P1 was already issued (on 2025-09-01)"),
    ("negative-hours", issue9("--school", OAK, "--from", "2025-09-01", "--hours=-5"),
     "hours: -5 is negative"),
    ("implausible-hours", issue9("--school", OAK, "--from", "2025-09-01", "--hours", "1000000"),
     "hours: 1000000 hours a week is implausible"),
    ("hours-and-band", issue9("--school", OAK, "--from", "2025-09-01", "--hours", "20", "--band", "B"),
     "hours: give either --hours or --band"),
    ("hours-on-a-band-plan", ["plan", "hours", "P1", "--hours", "20", "--from", "2025-11-01"],
     "hours: plan P1 is on band B"),
    ("not-a-date", band1("C", "2025-13-01"),
     "Invalid value for '--from': '2025-13-01' is not a date"),
    ("implausible-date", issue9("--school", OAK, "--from", "01/01/1850", "--band", "B"),
     "Invalid value for '--from': 1850-01-01 is outside"),
    ("unknown-period", ["due", "P1", "--period", "2025-26/winter"],
     "period: '2025-26/winter' is not a period in the payment calendar"),
    ("tariff-european-decimal", ["tariff", "set", "--year", "2026-27", "--band", "E=12,50"],
     "band: E: '12,50' is not an amount in pounds"),
    ("tariff-without-amount", ["tariff", "set", "--year", "2026-27", "--band", "E"],
     "band: 'E' is not NAME=AMOUNT"),
    ("zero-hourly-rate", ["rate", "set", "--year", "2026-27", "--hourly", "0", "--weeks", "38"],
     "hourly: £0.00 an hour is not plausible"),
    ("bad-year", ["rate", "set", "--year", "2026-2027", "--hourly", "12", "--weeks", "38"],
     "year: '2026-2027' is not a year like 2025-26"),
    ("unknown-setting", ["school", "add", "100003", "--name", "Ash", "--setting", "grammar"],
     "Invalid value for '--setting'"),
    # H1 moved to band C on 1 Jan and to D on 1 Mar (H1/3): a correction that would put that
    # band change on 1 Dec, while the plan was still on hours, would silently drop it.
    ("correction-moves-band-change-before-transfer",
     ["plan", "correct", "H1", "--event", "3", "--from", "2025-12-01", "--note", "it was December"],
     "from: H1/3 (plan.band_changed from 2025-12-01) would then apply while plan H1 is on 20 hours"),
    # A transfer backdated to before an hours change already recorded would leave that
    # hours change falling on the band.
    ("transfer-before-a-recorded-hours-change",
     ["plan", "transfer", "H2", "--band", "C", "--from", "2026-01-01"],
     "from: H2/2 (plan.hours_changed from 2026-02-01) would then apply while plan H2 is on band C"),
    ("correct-unknown-event",
     ["plan", "correct", "P1", "--event", "9", "--band", "C", "--note", "no such event"],
     "event: 9 is not an event of plan P1"),
]


def test_bad_input_is_refused_naming_the_field_and_records_nothing(known: Invoke, location: str) -> None:
    # One ledger for all the refusals (setting it up is the slow part): each must leave the
    # count of events where it was.
    wrong = []
    for case, args, message in REFUSALS:
        before = events_in(location)
        result = known(*args, ok=False)
        problems = [
            *(["exit code 0"] if result.exit_code == 0 else []),
            *([f"no {message!r}"] if message not in result.output else []),
            *(["no 'nothing was recorded'"] if not message.startswith("Invalid value")
              and "nothing was recorded" not in result.output else []),
            *(["a traceback"] if "Traceback" in result.output else []),
            *([f"{events_in(location) - before} events recorded"] if events_in(location) != before else []),
        ]
        if problems:
            wrong.append(f"{case}: {', '.join(problems)}; output: {result.output!r}")
    assert not wrong, "\n".join(wrong)


def test_a_refused_command_leaves_what_is_due_unchanged(known: Invoke) -> None:
    # Band B at Oak: 310000 / 3 = 103333.33p → 103333p, before and after a refused change.
    before = as_json(known("due", "P1", "--period", "2025-26/autumn", "--json"))
    assert before["total_pence"] == 103_333
    known("plan", "band", "P1", "--band", "E", "--from", "2026-04-01", "--reason", "other", ok=False)
    assert as_json(known("due", "P1", "--period", "2025-26/autumn", "--json")) == before


def test_due_names_what_the_ledger_is_missing(cli: Invoke, location: str) -> None:
    cli("school", "add", OAK, "--name", "Oak Primary", "--setting", "mainstream")
    cli("plan", "issue", "H1", "--pupil", "PR-1", "--school", OAK, "--from", "2025-09-01", "--hours", "20")
    before = events_in(location)
    result = cli("due", "H1", "--period", "2025-26/autumn", ok=False)
    assert result.exit_code != 0
    assert "no hourly rate for financial year 2025-26 (plan H1, 2025-26/autumn)" in result.output
    assert events_in(location) == before


def test_due_lists_every_missing_item_the_period_needs(cli: Invoke) -> None:
    # The summer's due is the rounded year so far less the autumn and spring before it: both
    # the 2025-26 rate (autumn, spring) and the 2026-27 rate (summer) are needed.
    cli("school", "add", OAK, "--name", "Oak Primary", "--setting", "mainstream")
    cli("plan", "issue", "H1", "--pupil", "PR-1", "--school", OAK, "--from", "2025-09-01", "--hours", "20")
    result = cli("due", "H1", "--period", "2025-26/summer", ok=False)
    assert "no hourly rate for financial year 2026-27 (plan H1, 2025-26/summer)" in result.output
    assert "no hourly rate for financial year 2025-26 (plan H1, 2025-26/autumn)" in result.output


# Two writers changing the same plan at once.


@pytest.fixture
def two_writers(ledger: Ledger, location: str, clock: Any) -> Iterator[tuple[Ledger, Ledger]]:
    ledger.add_school(OAK, "Oak Primary", "mainstream")
    ledger.set_tariff("2025-26", {"B": 310_000, "C": 400_000, "D": 700_000})
    ledger.issue_plan("P1", "PR-1", OAK, date(2025, 9, 1), band="B")
    other = Ledger(EventStore(location), clock=clock)
    yield ledger, other
    other.store.close()


def test_two_writers_changing_the_same_plan_one_wins_the_other_gets_a_conflict(
        two_writers: tuple[Ledger, Ledger], monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = two_writers
    stale = second.plan("P1")  # the second writer has read the plan: one event, version 1
    before = first.store.max_position()
    first.change_band("P1", "C", date(2025, 11, 1), "annual-review")  # writes P1/2
    # The second writer goes on from what it read, not knowing P1/2 exists.
    monkeypatch.setattr(second, "plan", lambda ref: stale)
    with pytest.raises(ConflictError) as conflict:
        second.change_band("P1", "D", date(2025, 11, 1), "tribunal")
    message = str(conflict.value)
    assert "another writer changed plan:P1 at the same time" in message
    assert "nothing of this command was recorded" in message and "run it again" in message
    # Exactly one new event, the first writer's.
    stream = first.store.stream("plan:P1")
    assert [r.id for r in stream] == ["P1/1", "P1/2"]
    assert stream[1].fact == ev.BandChanged("P1", date(2025, 11, 1), "C", "annual-review")
    assert first.store.max_position() == before + 1
    # Run again with what is now known, the second writer's change is checked and recorded.
    monkeypatch.undo()
    assert second.change_band("P1", "D", date(2026, 1, 1), "tribunal") == "P1/3"


def test_two_writers_appending_the_same_version(two_writers: tuple[Ledger, Ledger]) -> None:
    first, second = two_writers
    n = first.store.version("plan:P1")
    assert n == second.store.version("plan:P1") == 1
    first._append("plan:P1", ev.BandChanged("P1", date(2025, 11, 1), "C", "annual-review"), expected=n)
    with pytest.raises(ConflictError, match="another writer changed plan:P1"):
        second._append("plan:P1", ev.BandChanged("P1", date(2025, 11, 1), "D", "annual-review"),
                       expected=n)
    assert len(first.store.stream("plan:P1")) == n + 1


def test_the_command_line_reports_a_conflict_and_records_nothing(
        cli: Invoke, location: str, clock: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    cli("school", "add", OAK, "--name", "Oak Primary", "--setting", "mainstream")
    cli("tariff", "set", "--year", "2025-26", "--band", "B=3100", "--band", "C=4000", "--band", "D=7000")
    cli("plan", "issue", "P1", "--pupil", "PR-1", "--school", OAK, "--from", "2025-09-01", "--band", "B")
    reader = Ledger(EventStore(location), clock=clock)
    try:
        stale = reader.plan("P1")
    finally:
        reader.store.close()
    cli("plan", "band", "P1", "--band", "C", "--from", "2025-11-01", "--reason", "annual-review")
    before = events_in(location)
    monkeypatch.setattr(Ledger, "plan", lambda self, ref: stale)  # the command read before P1/2
    result = cli("plan", "band", "P1", "--band", "D", "--from", "2025-11-01", "--reason", "tribunal",
                 ok=False)
    assert result.exit_code == 3
    assert "conflict: another writer changed plan:P1 at the same time" in result.output
    assert events_in(location) == before



def test_a_postgresql_ledger_compresses_its_states_with_lz4(tmp_path: Any) -> None:
    """Payment runs store hundreds of megabytes of lines nationally: PostgreSQL's default
    pglz compressing them was most of recording a run. A new ledger asks for lz4 wherever
    the server has it, and keeps the default where it has not."""
    import psycopg

    from conftest import new_location

    location = new_location("postgres", tmp_path)
    store = EventStore(location, create=True)
    recorder: Any = store.recorder
    table = f'"{recorder.datastore.schema}"."{recorder.events_table_name}"'
    Ledger(store, clock=lambda: datetime(2025, 9, 1, tzinfo=UTC)).add_school(OAK, "Oak", "mainstream")
    store.close()
    with psycopg.connect(location.split("?")[0], autocommit=True) as conn:
        try:
            conn.execute("CREATE TEMP TABLE lz4_here (b bytea COMPRESSION lz4)")
            expected = "l"
        except psycopg.Error:
            expected = ""
        found = conn.execute("SELECT attcompression FROM pg_attribute WHERE attrelid = %s::regclass "
                             "AND attname = 'state'", (table,)).fetchone()
    assert found is not None and found[0] == expected
    assert events_in(location) == 1
