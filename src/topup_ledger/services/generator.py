"""A synthetic local authority: schools, rates, tariffs, plans and their changes.

The data is what an LA would import, in the import formats (``schemas/imports.md``), laid
out in time. Payments are made termly, each run on the first day of its term (paid in
advance), so the whole span splits into **batches**: batch *k* holds every fact the LA
learns after run *k−1* and before run *k*. Replaying the LA is then simply

    for each batch: import its files (schools, rates, tariffs, plans, changes), then pay its run

and a change recorded weeks after its effective date lands in a later batch than the run
that paid its period, so that run's successor pays arrears or claws back — exactly what
happens to an LA whose reviews are recorded late. Nothing about timing is hidden in a
column the importer would have to understand: each batch's files are ordinary imports.

What the LA looks like (all proportions are of the ``plans`` issued over the whole span):
- schools: mostly mainstream, with special schools, resourced provision, independent and
  post-16 settings; plans are placed about half in mainstream;
- plans open on 1 September of the first year (the ledger's opening load) or are issued
  later (about a fifth), some of them non-statutory top-up; mainstream, resourced and
  post-16 plans start on hours (up to 32.5 a week, full-time one-to-one), specialist ones
  on bands A–G; from the second April new plans start on bands;
- annual reviews through the year: hours changes, band changes (recorded 0–10 weeks after
  their effective date), and each hours plan transfers to the band nearest its prior
  hours-based amount at its review in its own phase of the transition (a third of them in
  each year); some transfers are protected until a key transition point;
- moves between schools (phase transfers on 1 September, recorded before they happen, and
  moves during the year), plans ceasing, tribunal band changes, and a few corrections of
  band changes recorded wrongly;
- hourly rates and tariffs per financial year, published in February before the year
  starts, with a revision of each year's tariff in December (which pays arrears for the
  terms already paid in that year).

The same arguments give the same data, row for row.
"""

from __future__ import annotations

import csv
import random
import shutil
import tempfile
from bisect import bisect_right
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from topup_ledger.domain.calendar import financial_year_of, termly_periods, year_label

KIND_ORDER = ("schools", "rates", "tariffs", "plans", "changes")
HEADERS = {
    "schools": ("urn", "name", "setting", "la_code"),
    "rates": ("year", "hourly_rate", "weeks", "threshold", "reason"),
    "tariffs": ("year", "setting", "reason", "A", "B", "C", "D", "E", "F", "G"),
    "plans": ("plan", "pupil", "school", "from", "hours", "band", "kind"),
    "changes": ("plan", "change", "from", "hours", "band", "school", "protect_until", "event",
                "reason"),
}
BANDS = "ABCDEFG"
# Band values in pence for the first financial year: every setting, and higher values for
# specialist settings (the tariff's per-setting override).
BASE_TARIFF = (150_000, 300_000, 500_000, 750_000, 1_050_000, 1_400_000, 1_850_000)
SETTING_TARIFF = {
    "special": (400_000, 650_000, 950_000, 1_300_000, 1_700_000, 2_200_000, 2_800_000),
    "independent": (800_000, 1_300_000, 1_900_000, 2_600_000, 3_400_000, 4_400_000, 5_600_000),
}
HOURLY_PENCE, WEEKS, THRESHOLD = 1850, Decimal(39), 600_000
HOURS = (Decimal("10"), Decimal("12.5"), Decimal("15"), Decimal("17.5"), Decimal("20"),
         Decimal("22.5"), Decimal("25"), Decimal("27.5"), Decimal("30"), Decimal("32.5"))
HOURS_WEIGHTS = (6, 8, 14, 12, 16, 10, 12, 7, 5, 5)
HOURS_SETTINGS = ("mainstream", "resourced", "post16")
PLAN_SETTINGS = (("mainstream", 50), ("special", 30), ("resourced", 8), ("independent", 7),
                 ("post16", 5))
SCHOOL_SHARES = (("special", 0.05), ("resourced", 0.06), ("independent", 0.04), ("post16", 0.03))
CEASE_REASONS = ("needs met without top-up", "left the LA", "moved to provision outside the LA",
                 "plan ceased at annual review", "left education")
PLACES = ("Oakfield", "Riverside", "Beacon", "Hillside", "Meadow", "Ashgrove", "Brookfield",
          "Castle", "Elmwood", "Fairfield", "Greenbank", "Highfield", "Kingsway", "Larkrise",
          "Millbrook", "Northgate", "Orchard", "Parkside", "Queensway", "Redhill", "St Mary's",
          "St John's", "Thornbury", "Upton", "Valley", "Westfield", "Willow", "Woodlands",
          "Abbey", "Bramley", "Cedar", "Down", "Eastfield", "Foxhill", "Glebe", "Holywell")
NAMES = {"mainstream": ("Primary School", "Infant School", "Junior School", "Academy",
                        "High School", "CE Primary School"),
         "special": ("Special School", "School", "Academy"),
         "resourced": ("Resource Base", "Specialist Unit", "Enhanced Provision"),
         "independent": ("Independent School", "College (independent)"),
         "post16": ("Sixth Form College", "College", "Post-16 Centre")}


STAT_OF = {"transfer": "transfers", "band": "band_changes", "hours": "hours_changes",
           "move": "moves", "cease": "ceased", "correct": "corrections"}


@dataclass(frozen=True)
class Run:
    period: str
    on: date  # the day the run is made: the first day of its term (paid in advance)


@dataclass
class Batch:
    """The facts the LA learns before one payment run, as import rows by kind."""

    number: int
    run: Run
    rows: dict[str, list[dict[str, str]]] = field(default_factory=lambda: {k: [] for k in KIND_ORDER})
    # Rows of each kind, also when they were streamed to disk rather than kept in ``rows``.
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KIND_ORDER, 0))

    @property
    def folder(self) -> str:
        return f"batch-{self.number:02d}-before-{self.run.period.replace('/', '-')}"

    def files(self) -> Iterator[tuple[str, list[dict[str, str]]]]:
        for kind in KIND_ORDER:
            if self.rows[kind]:
                yield kind, self.rows[kind]

    def kinds(self) -> list[str]:
        """The kinds of file this batch has, in import order (kept in memory or not)."""
        return [kind for kind in KIND_ORDER if self.counts[kind] or self.rows[kind]]


@dataclass
class GeneratedLA:
    seed: int
    runs: list[Run]
    batches: list[Batch]
    stats: dict[str, int]

    def write(self, out: Path) -> list[Path]:
        """Each batch's CSV files in its own folder, plus schedule.csv and run.sh."""
        out.mkdir(parents=True, exist_ok=True)
        written: list[Path] = []
        for batch in self.batches:
            folder = out / batch.folder
            folder.mkdir(exist_ok=True)
            for kind, rows in batch.files():
                path = folder / f"{kind}.csv"
                write_rows(path, HEADERS[kind], rows)
                written.append(path)
        return [*written, *self.write_schedule(out)]

    def write_schedule(self, out: Path) -> list[Path]:
        """schedule.csv and run.sh: import each batch's files, then pay its run."""
        steps: list[tuple[str, str]] = []
        for batch in self.batches:
            steps += [("import", f"{batch.folder}/{kind}.csv") for kind in batch.kinds()]
            steps.append(("pay", batch.run.period))
        schedule = out / "schedule.csv"
        write_rows(schedule, ("step", "action", "target"),
                   [{"step": str(i), "action": a, "target": t} for i, (a, t) in enumerate(steps, 1)])
        script = out / "run.sh"
        lines = ["#!/usr/bin/env bash",
                 "# Replays this synthetic LA into a fresh ledger: each batch is imported, then",
                 "# its payment run is made. TOPUP_LEDGER chooses the ledger (see the README).",
                 "set -euo pipefail", 'cd "$(dirname "$0")"', "topup init"]
        for action, target in steps:
            lines.append(f"topup import {target}" if action == "import"
                         else f"topup pay {target} --out payments")
        script.write_text("\n".join(lines) + "\n", encoding="utf-8")
        script.chmod(0o700)  # owner-only, as every file the product writes
        return [schedule, script]

    def describe(self) -> str:
        s = self.stats
        return (f"{s['schools']:,} schools, {s['plans']:,} plans ({s['opening_plans']:,} at the "
                f"opening, {s['new_plans']:,} issued later); {self.describe_changes()}; "
                f"{len(self.batches)} batches before {len(self.runs)} termly runs")

    def describe_changes(self) -> str:
        s = self.stats
        return (f"{s['changes']:,} changes ({s['transfers']:,} transfers to bands, "
                f"{s['band_changes']:,} band changes, {s['hours_changes']:,} hours changes, "
                f"{s['moves']:,} moves, {s['ceased']:,} ceased, {s['corrections']:,} corrections), "
                f"{s['recorded_late']:,} of them recorded two weeks or more after their effective "
                f"date and {s['after_run']:,} after the run that paid it")


def write_rows(path: Path, headers: tuple[str, ...], rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=headers, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def money(pence: int) -> str:
    """As a finance export writes it: £1,234.50."""
    return f"£{pence // 100:,}.{pence % 100:02d}"


# The simulation.


@dataclass
class _School:
    urn: str
    setting: str
    weight: float


class _Pool:
    """The schools of one setting, drawn with their weights.

    Draws exactly as ``rng.choices(schools, weights)`` would (one ``random()`` per draw, a
    bisect over the running totals), but with the totals worked out once rather than per
    draw, which at national scale (22,000 schools) is the difference between minutes and
    hours. Leaving one school out is done on the same totals, less its weight.
    """

    def __init__(self, schools: list[_School]) -> None:
        self.schools = schools
        self.weights = [s.weight for s in schools]
        self.totals: list[float] = []
        running = 0.0
        for weight in self.weights:  # the same additions, in the same order, as choices() makes
            running += weight
            self.totals.append(running)
        self.index = {s.urn: i for i, s in enumerate(schools)}

    def offers(self, other_than: str | None) -> bool:
        return len(self.schools) > (1 if other_than in self.index else 0)

    def draw(self, rng: random.Random, other_than: str | None = None) -> _School:
        totals, last = self.totals, len(self.schools) - 1
        skip = self.index.get(other_than) if other_than is not None else None
        if skip is None:
            return self.schools[bisect_right(totals, rng.random() * (totals[-1] + 0.0), 0, last)]
        left_out = self.weights[skip]
        point = rng.random() * (totals[-1] - left_out)
        if skip == last or (skip and point < totals[skip - 1]):
            return self.schools[bisect_right(totals, point, 0, skip - 1)]
        return self.schools[bisect_right(totals, point + left_out, skip + 1, last)]


# Where a generated plan or change row goes: the batch it belongs to, its kind, the day the
# LA learned it (rows of a batch are in that order) and its cells.
Sink = Callable[["Batch", str, date, dict[str, str]], None]


def _keep(batch: Batch, kind: str, recorded: date, row: dict[str, str]) -> None:
    row["_recorded"] = recorded.isoformat()
    batch.rows[kind].append(row)
    batch.counts[kind] += 1


class _Spool:
    """Plan and change rows streamed to disk, one file per kind and recorded day.

    A batch's file is then its days' files one after another in date order: the same rows
    in the same order as sorting the batch by recorded day (stable, so each plan's own order
    holds), without ever holding more than ``FLUSH`` rows in memory.
    """

    FLUSH = 50_000

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.buffers: dict[tuple[str, date], list[list[str]]] = {}
        self.buffered = 0
        self.days: dict[str, set[date]] = {"plans": set(), "changes": set()}

    def add(self, batch: Batch, kind: str, recorded: date, row: dict[str, str]) -> None:
        self.buffers.setdefault((kind, recorded), []).append([row[h] for h in HEADERS[kind]])
        self.days[kind].add(recorded)
        batch.counts[kind] += 1
        self.buffered += 1
        if self.buffered >= self.FLUSH:
            self.flush()

    def path(self, kind: str, day: date) -> Path:
        return self.folder / f"{kind}-{day.isoformat()}.csv"

    def flush(self) -> None:
        for (kind, day), rows in self.buffers.items():
            with self.path(kind, day).open("a", newline="", encoding="utf-8") as handle:
                csv.writer(handle, lineterminator="\n").writerows(rows)
        self.buffers.clear()
        self.buffered = 0

    def write(self, path: Path, kind: str, days: list[date]) -> None:
        with path.open("w", newline="", encoding="utf-8") as out:
            csv.writer(out, lineterminator="\n").writerow(HEADERS[kind])
            for day in sorted(days):
                with self.path(kind, day).open(encoding="utf-8", newline="") as part:
                    shutil.copyfileobj(part, out, 1 << 20)
                self.path(kind, day).unlink()


@dataclass
class _Event:
    effective: date
    recorded: date
    kind: str  # "plans" or "changes"
    row: dict[str, str]
    seq: int
    version: int = 0
    corrects: _Event | None = None


class _Generator:
    def __init__(self, plans: int, schools: int, years: int, seed: int, first_year: int,
                 sink: Sink = _keep) -> None:
        if plans < 1 or schools < 5 or not 1 <= years <= 10:
            raise ValueError("need at least 1 plan, 5 schools and 1-10 years")
        self.rng = random.Random(seed)
        self.seed, self.plans_wanted, self.years = seed, plans, years
        self.first = date(first_year, 9, 1)
        self.runs = [Run(p.id, p.start) for y in range(years)
                     for p in termly_periods(year_label(first_year + y))]
        self.last_run = self.runs[-1].on
        self.batches = [Batch(i + 1, run) for i, run in enumerate(self.runs)]
        self.seq = 0
        self.sink = sink
        self.stats = dict.fromkeys(("plans", "opening_plans", "new_plans", "changes", "transfers",
                                    "band_changes", "hours_changes", "moves", "ceased",
                                    "corrections", "protected", "recorded_late", "after_run"), 0)
        self.tariffs = self._tariff_values()
        self.schools = self._schools(schools)
        self.pools = {setting: _Pool(found) for setting, found in self.schools.items()}

    # Where a fact recorded on a day goes: the batch of the first run after that day.

    def batch_for(self, recorded: date) -> Batch | None:
        for batch in self.batches:
            if recorded < batch.run.on:
                return batch
        return None  # after the last run: outside the span

    def run_paying(self, day: date) -> Run | None:
        """The run that pays the term containing ``day`` (None before the first)."""
        paying = None
        for run in self.runs:
            if run.on <= day:
                paying = run
        return paying

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    # Reference data.

    def _tariff_values(self) -> dict[str, dict[str | None, tuple[int, ...]]]:
        """Initial band values per financial year and setting (None: every setting)."""
        values: dict[str, dict[str | None, tuple[int, ...]]] = {}
        for i, year in enumerate(self.financial_years()):
            uplift = Decimal("1.025") ** i
            values[year] = {None: _scaled(BASE_TARIFF, uplift)}
            for setting, base in SETTING_TARIFF.items():
                values[year][setting] = _scaled(base, uplift)
        return values

    def financial_years(self) -> list[str]:
        first = financial_year_of(self.first)
        last = financial_year_of(self.runs[-1].on)
        return [year_label(y) for y in range(int(first[:4]), int(last[:4]) + 1)]

    def hourly(self, year: str) -> int:
        i = self.financial_years().index(year)
        return int(HOURLY_PENCE * Decimal("1.03") ** i)

    def band_value(self, year: str, setting: str, band: str, revised: bool = True) -> int:
        values = self.tariffs[year].get(setting) or self.tariffs[year][None]
        value = values[BANDS.index(band)]
        return int(value * Decimal("1.015")) if revised and self._revised(year) else value

    def _revised(self, year: str) -> bool:
        return self._revision_day(year) < self.last_run

    @staticmethod
    def _revision_day(year: str) -> date:
        return date(int(year[:4]), 12, 10)

    def reference(self) -> None:
        opening = self.batches[0]
        for year in self.financial_years():
            start = int(year[:4])
            published = date(start, 2, 20)  # the Schools Forum, before the year starts
            batch = opening if published < self.first else self.batch_for(published)
            if batch is None:
                continue
            batch.rows["rates"].append({
                "year": year, "hourly_rate": money(self.hourly(year)), "weeks": str(WEEKS),
                "threshold": money(THRESHOLD), "reason": "Schools Forum: hourly rate for the year"})
            for setting, values in self.tariffs[year].items():
                batch.rows["tariffs"].append(_tariff_row(year, setting, values,
                                                         "Schools Forum: band values for the year"))
            revision = self.batch_for(self._revision_day(year))
            if revision is not None and self._revision_day(year) >= self.first:
                for setting, values in self.tariffs[year].items():
                    revision.rows["tariffs"].append(_tariff_row(
                        year, setting, _scaled(values, Decimal("1.015")),
                        "Schools Forum: in-year revision (+1.5%)"))

    def _schools(self, count: int) -> dict[str, list[_School]]:
        urns = sorted(self.rng.sample(range(100_000, 150_000), count))
        settings: list[str] = []
        for setting, share in SCHOOL_SHARES:
            settings += [setting] * max(1, round(count * share))
        settings += ["mainstream"] * (count - len(settings))
        self.rng.shuffle(settings)
        by_setting: dict[str, list[_School]] = {}
        used: set[str] = set()
        for n, (urn, setting) in enumerate(zip(urns, settings, strict=True)):
            name = f"{self.rng.choice(PLACES)} {self.rng.choice(NAMES[setting])}"
            if name in used:
                name = f"{name} ({n + 1})"
            used.add(name)
            school = _School(str(urn), setting, self.rng.uniform(0.4, 2.5))
            by_setting.setdefault(setting, []).append(school)
            self.batches[0].rows["schools"].append(
                {"urn": school.urn, "name": name, "setting": setting, "la_code": f"935{n + 2001:04d}"})
        self.stats["schools"] = count
        return by_setting

    def pick_school(self, setting: str, other_than: str | None = None) -> _School:
        pool = self.pools.get(setting)
        if pool is None or not pool.offers(other_than):
            pool = self.pools["mainstream"]
        return pool.draw(self.rng, other_than)

    # Plans.

    def nearest_band(self, amount: int, year: str, setting: str) -> str:
        return min(BANDS, key=lambda b: abs(self.band_value(year, setting, b, revised=False) - amount))

    def prior_amount(self, hours: Decimal, day: date, setting: str) -> int:
        year = financial_year_of(day)
        gross = int(hours * self.hourly(year) * WEEKS)
        return max(0, gross - (THRESHOLD if setting == "mainstream" else 0))

    def plans(self) -> None:
        opening = round(self.plans_wanted * 0.8)
        span = (self.last_run - self.first).days
        for n in range(self.plans_wanted):
            if n < opening:
                start = self.first
            else:
                start = _weekday(self.first + timedelta(
                    days=1 + (n - opening) * max(1, span - 45) // max(1, self.plans_wanted - opening)))
            self.plan(n, start, opening=n < opening)

    def plan(self, n: int, start: date, *, opening: bool) -> None:
        rng = self.rng
        setting = rng.choices([s for s, _ in PLAN_SETTINGS], weights=[w for _, w in PLAN_SETTINGS])[0]
        school = self.pick_school(setting)
        setting = school.setting
        non_statutory = setting == "mainstream" and rng.random() < 0.08
        ref = f"{'FFI' if non_statutory else 'EHCP'}-{n + 1:05d}"
        pupil = f"PR-{rng.getrandbits(40):010X}"
        banded_model = start >= date(self.first.year + 1, 4, 1)
        on_hours = setting in HOURS_SETTINGS and not banded_model
        hours = rng.choices(HOURS, weights=HOURS_WEIGHTS)[0] if on_hours else None
        band = None if on_hours else _band_for(rng, setting)
        lag = 0 if opening else rng.choice((0, 3, 7, 14, 21, 35, 42))
        recorded = self.first - timedelta(days=14) if opening else start + timedelta(days=lag)
        events: list[_Event] = []
        issue = _Event(start, recorded, "plans", {
            "plan": ref, "pupil": pupil, "school": school.urn, "from": start.isoformat(),
            "hours": str(hours) if hours is not None else "", "band": band or "",
            "kind": "non-statutory" if non_statutory else "ehcp"}, self.next_seq())
        events.append(issue)
        state = {"school": school, "hours": hours, "band": band}
        review = date(2000, rng.randint(1, 12), rng.randint(1, 28))
        transfer_year = rng.randrange(self.years)
        last = start
        for day, what in self._timeline(start, review):
            if day <= last:
                continue
            if what == "review":
                event = self._review(ref, day, state, transfer_year)
            elif what == "phase-move" or what == "move":
                event = self._move(ref, day, state, phase=what == "phase-move")
            elif what == "tribunal":
                event = self._band_change(ref, day, state, "tribunal") if state["band"] else None
            else:
                event = self._cease(ref, day, what)
            if event is None:
                continue
            event.recorded = max(event.recorded, events[-1].recorded)
            if event.recorded >= self.last_run:
                break
            events.append(event)
            last = day
            if event.row["change"] == "cease":
                break
        self._corrections(ref, events)
        self._place(events, opening)

    def _timeline(self, start: date, review: date) -> list[tuple[date, str]]:
        """The plan's candidate events in date order; each is checked as it happens."""
        rng = self.rng
        found: list[tuple[date, str]] = []
        for k in range(self.years):
            year_start = date(self.first.year + k, 9, 1)
            on = date(year_start.year + (review.month < 9), review.month, review.day)
            if on >= start + timedelta(days=90):
                found.append((on, "review"))
            if k > 0 and rng.random() < 0.10:
                found.append((year_start, "phase-move"))
            if rng.random() < 0.04:
                found.append((year_start + timedelta(days=rng.randrange(14, 330)), "move"))
            if rng.random() < 0.02:
                found.append((year_start + timedelta(days=rng.randrange(14, 330)), "tribunal"))
            if rng.random() < 0.07:
                leaving = rng.random() < 0.4
                day = date(year_start.year + 1, 9, 1) if leaving else (
                    year_start + timedelta(days=rng.randrange(30, 340)))
                found.append((day, rng.choice(CEASE_REASONS)))
        return sorted(found, key=lambda item: item[0])

    def _change(self, ref: str, day: date, recorded: date, change: str, **cells: str) -> _Event:
        row = dict.fromkeys(HEADERS["changes"], "")
        row.update(plan=ref, change=change, **cells)
        if change != "correct":
            row["from"] = day.isoformat()
        return _Event(day, recorded, "changes", row, self.next_seq())

    def _review_lag(self, day: date) -> date:
        lag = self.rng.choice((0, 2, 5, 7, 10, 14, 21, 28, 35, 42, 56, 70))
        return day + timedelta(days=lag)

    def _review(self, ref: str, day: date, state: dict, transfer_year: int) -> _Event | None:
        rng = self.rng
        year_index = day.year - self.first.year - (day.month < 9)
        if state["hours"] is not None and year_index >= transfer_year:
            school: _School = state["school"]
            prior = self.prior_amount(state["hours"], day - timedelta(days=1), school.setting)
            year = financial_year_of(day)
            band = self.nearest_band(prior, year, school.setting)
            if rng.random() < 0.3:
                band = BANDS[max(0, min(6, BANDS.index(band) + rng.choice((-1, 1))))]
            protect = ""
            if self.band_value(year, school.setting, band, revised=False) < prior and rng.random() < 0.5:
                protect = date(day.year + (day.month >= 9) + rng.randrange(2), 8, 31).isoformat()
            state.update(hours=None, band=band)
            return self._change(ref, day, self._review_lag(day), "transfer", band=band,
                                protect_until=protect)
        if state["hours"] is not None:
            if rng.random() < 0.25:
                step = rng.choice((Decimal("-2.5"), Decimal("2.5"), Decimal("5")))
                hours = min(Decimal("32.5"), max(Decimal("5"), state["hours"] + step))
                if hours == state["hours"]:
                    return None
                state["hours"] = hours
                return self._change(ref, day, self._review_lag(day), "hours", hours=str(hours),
                                    reason="annual review")
            return None
        if rng.random() < 0.3:
            return self._band_change(ref, day, state, "annual-review")
        return None

    def _band_change(self, ref: str, day: date, state: dict, reason: str) -> _Event:
        index = BANDS.index(state["band"])
        index = max(0, min(6, index + self.rng.choice((-1, 1, 1))))
        if BANDS[index] == state["band"]:
            index = 1 if index == 0 else index - 1
        state["band"] = BANDS[index]
        return self._change(ref, day, self._review_lag(day), "band", band=state["band"], reason=reason)

    def _move(self, ref: str, day: date, state: dict, *, phase: bool) -> _Event | None:
        current: _School = state["school"]
        if phase:
            if current.setting != "mainstream":
                return None
            target = self.pick_school("mainstream", current.urn)
            recorded = day - timedelta(days=self.rng.randrange(14, 60))  # planned in advance
        else:
            settings = HOURS_SETTINGS if state["hours"] is not None else (
                "mainstream", "special", "resourced", "special")
            target = self.pick_school(self.rng.choice(settings), current.urn)
            recorded = day + timedelta(days=self.rng.randrange(0, 30))
        state["school"] = target
        return self._change(ref, day, recorded, "move", school=target.urn)

    def _cease(self, ref: str, day: date, reason: str) -> _Event:
        return self._change(ref, day, day + timedelta(days=self.rng.randrange(0, 60)), "cease",
                            reason=reason)

    def _corrections(self, ref: str, events: list[_Event]) -> None:
        """A few band changes were recorded with the wrong band: a later correction says so."""
        for event in list(events):
            if event.row.get("change") != "band" or self.rng.random() >= 0.04:
                continue
            recorded = event.recorded + timedelta(days=self.rng.randrange(20, 90))
            if recorded >= self.last_run:
                continue
            wrong = event.row["band"]
            right = BANDS[BANDS.index(wrong) - 1] if wrong != "A" else "B"
            correction = self._change(ref, event.effective, recorded, "correct", band=right,
                                      reason=f"the review set band {right}, not {wrong}")
            correction.corrects = event
            events.append(correction)

    def _place(self, events: list[_Event], opening: bool) -> None:
        events.sort(key=lambda e: (e.recorded, e.seq))
        for version, event in enumerate(events, start=1):
            event.version = version
        ref = events[0].row["plan"]
        for event in events:
            if event.corrects is not None:
                event.row["event"] = f"{ref}/{event.corrects.version}"
            batch = self.batch_for(event.recorded)
            assert batch is not None
            self.sink(batch, event.kind, event.recorded, event.row)
            if event.kind == "changes":
                self.stats["changes"] += 1
                self.stats[STAT_OF[event.row["change"]]] += 1
                self.stats["protected"] += bool(event.row["protect_until"])
                paying = self.run_paying(event.effective)
                if event.recorded - event.effective >= timedelta(days=14):
                    self.stats["recorded_late"] += 1
                if paying is not None and batch.number - 1 > self.runs.index(paying):
                    self.stats["after_run"] += 1  # the run that paid its term did not know it
        self.stats["plans"] += 1
        self.stats["opening_plans" if opening else "new_plans"] += 1

    def build(self) -> GeneratedLA:
        self.reference()
        self.plans()
        for batch in self.batches:  # within a batch, in the order the LA learned them
            for kind in ("plans", "changes"):
                rows = batch.rows[kind]
                rows.sort(key=lambda r: r.pop("_recorded"))  # stable: a plan's own order holds
        return GeneratedLA(self.seed, self.runs, self.batches, self.stats)

    def stream(self, out: Path) -> tuple[GeneratedLA, list[Path]]:
        """Write the LA's files as the plans are generated, holding one buffer of rows."""
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".spool-", dir=out) as folder:
            spool = _Spool(Path(folder))
            self.sink = spool.add
            self.reference()
            self.plans()
            spool.flush()
            la = GeneratedLA(self.seed, self.runs, self.batches, self.stats)
            written: list[Path] = []
            for batch in self.batches:
                (out / batch.folder).mkdir(exist_ok=True)
                for kind in batch.kinds():
                    path = out / batch.folder / f"{kind}.csv"
                    if batch.rows[kind]:
                        write_rows(path, HEADERS[kind], batch.rows[kind])
                    else:
                        spool.write(path, kind, [day for day in spool.days[kind]
                                                 if self.batch_for(day) is batch])
                    written.append(path)
        return la, [*written, *la.write_schedule(out)]


def _scaled(values: tuple[int, ...], factor: Decimal) -> tuple[int, ...]:
    return tuple(int((Decimal(v) * factor / 100).quantize(Decimal(1))) * 100 for v in values)


def _tariff_row(year: str, setting: str | None, values: tuple[int, ...], reason: str) -> dict[str, str]:
    return {"year": year, "setting": setting or "", "reason": reason,
            **{band: money(v) for band, v in zip(BANDS, values, strict=True)}}


def _band_for(rng: random.Random, setting: str) -> str:
    weights = {"special": (1, 3, 8, 12, 10, 6, 3), "independent": (0, 1, 3, 6, 8, 8, 6)}.get(
        setting, (8, 12, 10, 6, 3, 1, 1))
    return rng.choices(BANDS, weights=weights)[0]


def _weekday(day: date) -> date:
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def generate(plans: int = 8000, schools: int = 450, years: int = 3, seed: int = 1,
             first_year: int = 2025) -> GeneratedLA:
    """A synthetic LA over ``years`` academic years from September ``first_year``."""
    return _Generator(plans, schools, years, seed, first_year).build()


def write_generated(out: Path, plans: int = 8000, schools: int = 450, years: int = 3, seed: int = 1,
                    first_year: int = 2025) -> tuple[GeneratedLA, list[Path]]:
    """The same LA as ``generate(...).write(out)``, file for file and byte for byte, written
    as it is generated: memory stays bounded at national scale (640,000 plans), where holding
    every row would not. The returned LA has its reference rows and counts, not its plans
    and changes."""
    return _Generator(plans, schools, years, seed, first_year).stream(out)
