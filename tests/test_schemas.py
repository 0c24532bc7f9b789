"""The event schemas in schemas/events/ against the facts in domain/events.py and a real ledger."""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from eventsourcing.persistence import StoredEvent
from jsonschema import Draft202012Validator

from conftest import FakeClock
from schema_check import SCHEMA_DIR, SCHEMA_FILE, check_recorded_at, load_schema, validate_stored
from topup_ledger.domain import events as ev
from topup_ledger.domain.payments import LINE_KINDS
from topup_ledger.storage.codec import fact_from_data, to_data
from topup_ledger.storage.store import EventStore, Recorded
from topup_ledger.storage.upcasting import upcast

SCHEMA_FILES = sorted(SCHEMA_DIR.glob("*.json"))
LEDGER_TIME = datetime(2025, 11, 14, 10, 30, tzinfo=UTC)

MAPPING = ev.FinanceMapping(
    "E1301", "I03", "%d/%m/%Y", (("academy", "1.2.2"), ("maintained", "1.2.1")),
    (("date", "Posting Date"), ("cost_centre", "Cost Centre"), ("amount", "Value")),
    (("supplier", "Supplier"), ("amount", "Net"), ("reference", "Invoice No")),
    (("la_code", "LA"), ("amount", "Amount")))

# One realistic instance of every fact, with the stream it belongs in.
EXAMPLES: dict[str, tuple[str, ev.Fact]] = {
    "school.added": ("school:100001", ev.SchoolAdded(
        "100001", "Oakfield Primary School", "mainstream", la_code="873-2041")),
    "calendar.set": ("calendar:2025-26", ev.CalendarSet("2025-26", (
        ev.PeriodSpec("2025-26/autumn", date(2025, 9, 1), date(2025, 12, 31), "1/3", 74),
        ev.PeriodSpec("2025-26/spring", date(2026, 1, 1), date(2026, 3, 31), "1/4", 59),
        ev.PeriodSpec("2025-26/summer", date(2026, 4, 1), date(2026, 8, 31), "5/12"),
    ), reason="termly payments agreed with Schools Forum",
        terms=(ev.TermDates(date(2025, 9, 3), date(2025, 12, 19)),),
        closures=(date(2025, 10, 27), date(2025, 10, 28)))),
    "rate.set": ("rate:2025-26", ev.HourlyRateSet(
        "2025-26", 1181, Decimal("38"), 600000, "LSA grade 3 rate, 2025-26 pay award")),
    "tariff.set": ("tariff:2025-26:special", ev.TariffSet(
        "2025-26", (("A", 250000), ("B", 500000), ("C", 750000), ("D", 1000000), ("E2", 1450000)),
        "special", "Schools Forum 10 March 2025, item 6")),
    "plan.issued": ("plan:EHCP-0001", ev.PlanIssued(
        "EHCP-0001", "PR-7F3A", "100001", date(2025, 9, 1), "ehcp", hours=Decimal("27.5"))),
    "plan.hours_changed": ("plan:EHCP-0001", ev.HoursChanged(
        "EHCP-0001", date(2025, 10, 6), Decimal("32.5"), "interim review: more 1:1 at lunch")),
    "plan.transferred_to_band": ("plan:EHCP-0001", ev.TransferredToBand(
        "EHCP-0001", date(2026, 1, 1), "D", 858490, protect_until=date(2026, 8, 31))),
    "plan.band_changed": ("plan:EHCP-0001", ev.BandChanged(
        "EHCP-0001", date(2026, 3, 2), "E2", "annual-review")),
    "plan.moved": ("plan:EHCP-0001", ev.PlacementMoved("EHCP-0001", date(2026, 4, 20), "100002")),
    "plan.corrected": ("plan:EHCP-0001", ev.Corrected(
        "EHCP-0001", "EHCP-0001/4", "review panel minutes say band D, not E2", band="D")),
    "plan.ceased": ("plan:EHCP-0001", ev.PlanCeased(
        "EHCP-0001", date(2026, 7, 23), "moved out of the area")),
    "payment.run_recorded": ("payments", ev.PaymentRunRecorded(
        "2025-26-autumn-r1", "2025-26/autumn", 1, 1, 361542, "ab" * 32 + "@7")),
    "payment.school_paid": ("run:2025-26-autumn-r1", ev.SchoolPaid(
        "2025-26-autumn-r1", "2025-26/autumn", "100001", (
            ev.PaymentLine("EHCP-0001", "PR-7F3A", "regular", "2025-26/autumn", 286163, "hours",
                           "27.5h→32.5h", 122, "2025-26/autumn: 27.5h a week then 32.5h a week, "
                           "122 of 122 days", ("EHCP-0001/1", "EHCP-0001/2")),
            ev.PaymentLine("EHCP-0002", "PR-2B9C", "clawback", "2025-26/summer", -12550, "band",
                           "D", 40, "2025-26/summer: due now £1000.00 (band D, 40 days), already "
                           "paid £1125.50", ("tariff:2025-26/2",), component="base"),
            ev.PaymentLine("", "", "cushion", "2025-26/autumn", 41250, "cushion", "", 122,
                           "2025-26/autumn: transitional cushion (50% of the school's net "
                           "reduction from the move to bands): due £412.50, already paid £0.00",
                           ("cushion:100001/1",), component="cushion"),
        ))),
    "payment.files_written": ("files:2025-26-autumn-r1", ev.FilesWritten(
        "2025-26-autumn-r1", "/srv/finance/topup/payments", (
            ev.WrittenFile("payments-2025-26-autumn-r1.csv", "3f" * 32, 1830),
            ev.WrittenFile("payments-2025-26-autumn-r1.parquet", "a0" * 32, 5121),
        ))),
    "school.cushion_set": ("school:100001", ev.CushionSet(
        "100001", date(2026, 4, 1), date(2027, 3, 31), Decimal("50"), "transition year 1")),
    "ledger.sealed": ("seals", ev.Sealed("0f" * 32, 7, "payment run 2025-26-autumn-r1")),
    "school.payee_set": ("payee:100001", ev.SchoolPayeeSet(
        "100001", "academy", date(2026, 4, 1), "8732041", "Oakfield Learning Trust", "TR4410",
        "S01234", "", "", "converted to an academy")),
    "finance.mapping_set": ("finance-mapping", ev.FinanceMappingSet(
        MAPPING, "finance.toml", "matches the ledger codes of 2025")),
    "payment.run_finance": ("finance:2025-26-autumn-r1", ev.RunFinance(
        "2025-26-autumn-r1", date(2025, 9, 1), date(2025, 9, 1), date(2025, 12, 31),
        date(2025, 9, 3), MAPPING, (
            ev.RunPayee("100001", "Oakfield Primary School", "mainstream", "maintained",
                        "8732041", cost_centre="CC100"),
            ev.RunPayee("100002", "Upton Academy", "mainstream", "academy", "8734001",
                        "Upton Learning Trust", "TR4410", "S01234"),
        ), (ev.RunRecovery("100001", -13333, carried=13333),
            ev.RunRecovery("100002", 66667, recovered=13333)))),
    "policy.release_set": ("policy:release", ev.ReleasePolicySet(
        "two-person", "financial procedure rules 4.2: segregation of duties")),
    "payment.run_prepared": ("control:2025-26-summer-r1", ev.RunPrepared(
        "2025-26-summer-r1", "two-person", ("2025-26/spring",), ("2025-26",))),
    "payment.run_released": ("control:2025-26-autumn-r1", ev.RunReleased("2025-26-autumn-r1")),
    "payment.run_withdrawn": ("control:2025-26-autumn-r2", ev.RunWithdrawn(
        "2025-26-autumn-r2", "band D revision arrived before the BACS cut-off")),
    "remittance.line": ("remittance:9f2c", ev.RemittanceLine(
        "SUP-004512", "2025-26-autumn-r1", 361542, date(2025, 12, 12), "remit-dec.csv:2")),
    "la.details_set": ("la", ev.LADetailsSet(
        "Anyshire County Council", ("County Hall", "Anytown AN1 1AA"), "01234 567890",
        "Email sen.finance@anyshire.gov.uk within 30 days")),
    "ledger.key_rotated": ("keys", ev.KeyRotated("3c9a0f1e2d4b5a69", "b1e0f7a2c3d49e58",
                                                 "yearly rotation")),
    "plan.protection_granted": ("plan:EHCP-0001", ev.ProtectionGranted(
        "EHCP-0001", date(2026, 4, 1), date(2026, 8, 31), "panel: protect to the phase transfer")),
    "plan.protection_extended": ("plan:EHCP-0001", ev.ProtectionExtended(
        "EHCP-0001", date(2026, 9, 1), date(2027, 3, 31), "transition to year 7 delayed")),
    "plan.protection_ended": ("plan:EHCP-0001", ev.ProtectionEnded(
        "EHCP-0001", date(2027, 1, 1), "needs met within the band")),
    "protection.policy_set": ("protection-policy", ev.ProtectionPolicySet(
        "frozen", "Schools Forum 10 March 2025, item 7: cash protection")),
}

# (type, field, a value of the wrong shape for it) — each must be rejected.
WRONG_VALUES = [
    ("ledger.key_rotated", "key_id", "not a key id"),
    ("school.added", "urn", "12"),
    ("school.added", "urn", 100001),
    ("school.added", "setting", "grammar"),
    ("school.added", "name", "   "),
    ("calendar.set", "year", "2025/26"),
    ("calendar.set", "periods", []),
    ("rate.set", "hourly_rate", 11.81),
    ("rate.set", "hourly_rate", "1181"),
    ("rate.set", "weeks", 38),
    ("rate.set", "weeks", "1E+1"),
    ("tariff.set", "bands", [["d", 1000]]),
    ("tariff.set", "bands", [["D", 1000, 5]]),
    ("tariff.set", "bands", [["D", "1000.00"]]),
    ("tariff.set", "setting", "grammar"),
    ("plan.issued", "effective", "01/09/2025"),
    ("plan.issued", "kind", "statement"),
    ("plan.issued", "hours", 27.5),
    ("plan.issued", "pupil", "Jane Smith"),
    ("plan.hours_changed", "hours", "-3"),
    ("plan.hours_changed", "hours", 32.5),
    ("plan.corrected", "hours", 27.5),
    ("plan.transferred_to_band", "prior_annual", -1),
    ("plan.transferred_to_band", "protect_until", "2026-8-31"),
    ("plan.band_changed", "reason", "because"),
    ("plan.band_changed", "band", "d"),
    ("plan.moved", "school", "1000020000"),
    ("plan.ceased", "reason", ""),
    ("plan.ceased", "reason", "x" * 501),
    ("plan.corrected", "corrects", "EHCP-0001"),
    ("payment.run_recorded", "seal", "ab" * 32),
    ("payment.run_recorded", "sequence", 0),
    ("payment.run_recorded", "total", "361542"),
    ("payment.school_paid", "run_id", "2025-26/autumn"),
    ("payment.school_paid", "lines", []),
    ("school.cushion_set", "share_percent", 50),
    ("payment.files_written", "files", []),
    ("payment.files_written", "run_id", "2025-26/autumn"),
    ("ledger.sealed", "head", "0F" * 32),
    ("ledger.sealed", "position", -1),
    ("school.payee_set", "route", "free-school"),
    ("school.payee_set", "laestab", "873-2041"),
    ("school.payee_set", "supplier", "S 01234"),
    ("payment.run_finance", "pay_on", "01/09/2025"),
    ("payment.run_finance", "payees", [{"school": "100001"}]),
    ("finance.mapping_set", "mapping", {"subjective": "E1301"}),
    ("policy.release_set", "release", "three-person"),
    ("payment.run_prepared", "caught_up", ["spring"]),
    ("payment.run_released", "run_id", "2025-26/autumn"),
    ("payment.run_withdrawn", "reason", ""),
    ("remittance.line", "amount", "3615.42"),
    ("remittance.line", "paid_on", "12/12/2025"),
    ("plan.protection_granted", "until", "31/08/2026"),
    ("plan.protection_extended", "reason", ""),
    ("plan.protection_ended", "reason", " "),
    ("protection.policy_set", "prior", "cash"),
]


def current_schema(fact_type: str) -> dict[str, Any]:
    return load_schema(fact_type, ev.FACT_TYPES[fact_type].VERSION)


def errors(schema: dict[str, Any], data: Any) -> list[str]:
    return [e.message for e in Draft202012Validator(schema).iter_errors(data)]


def fields_of(cls: type) -> tuple[set[str], set[str]]:
    """All field names of a dataclass, and those without a default (required)."""
    fields = dataclasses.fields(cls)
    required = {f.name for f in fields
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
    return {f.name for f in fields}, required


def example_data(fact_type: str) -> dict[str, Any]:
    return to_data(EXAMPLES[fact_type][1])


# (a) one schema per type and version, no strays


def test_every_fact_type_has_a_schema_for_every_version_up_to_its_current_one() -> None:
    found: dict[str, set[int]] = {}
    for path in SCHEMA_FILES:
        match = SCHEMA_FILE.match(path.name)
        assert match, f"{path.name} is not named <type>.v<version>.json"
        found.setdefault(match["type"], set()).add(int(match["version"]))
    assert set(found) == set(ev.FACT_TYPES), "schemas and FACT_TYPES name different types"
    for fact_type, cls in ev.FACT_TYPES.items():
        assert found[fact_type] == set(range(1, cls.VERSION + 1)), fact_type
    assert (SCHEMA_DIR / "plan.issued.v1.json").is_file()
    assert (SCHEMA_DIR / "plan.issued.v2.json").is_file()
    assert len(SCHEMA_FILES) == sum(cls.VERSION for cls in ev.FACT_TYPES.values())


def test_schema_dir_holds_only_schema_files() -> None:
    assert sorted(p.name for p in SCHEMA_DIR.iterdir()) == [p.name for p in SCHEMA_FILES]


# (b) every schema is a valid, self-describing draft 2020-12 schema


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=lambda p: p.name)
def test_schema_is_valid_and_describes_itself(path: Path) -> None:
    schema = json.loads(path.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    match = SCHEMA_FILE.match(path.name)
    assert match
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == f"topup-ledger/events/{match['type']}/v{match['version']}"
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False
    assert len(schema["description"]) > 40

    undocumented: list[str] = []

    def walk(node: Any, where: str) -> None:
        # properties inside oneOf/anyOf/allOf/if/then only narrow a field described above
        if isinstance(node, dict):
            if "properties" in node and not any(k in where for k in ("Of/", "/if", "/then")):
                undocumented.extend(f"{where}/{name}" for name, prop in node["properties"].items()
                                    if not prop.get("description"))
            for key, value in node.items():
                walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for n, value in enumerate(node):
                walk(value, f"{where}/{n}")

    walk(schema, "")
    assert undocumented == [], f"{path.name}: fields without a description"


@pytest.mark.parametrize("fact_type", sorted(ev.FACT_TYPES))
def test_schema_lists_every_field_and_requires_those_without_a_default(fact_type: str) -> None:
    schema = current_schema(fact_type)
    names, required = fields_of(ev.FACT_TYPES[fact_type])
    assert set(schema["properties"]) == names
    assert set(schema["required"]) == required


@pytest.mark.parametrize(("fact_type", "field", "cls"), [
    ("calendar.set", "PeriodSpec", ev.PeriodSpec),
    ("payment.school_paid", "PaymentLine", ev.PaymentLine),
])
def test_nested_shapes_list_every_field(fact_type: str, field: str, cls: type) -> None:
    nested = current_schema(fact_type)["$defs"][field]
    names, required = fields_of(cls)
    assert nested["additionalProperties"] is False
    assert set(nested["properties"]) == names
    assert set(nested["required"]) == required


def test_enums_match_the_domain() -> None:
    def enum(fact_type: str, *path: str) -> list[Any]:
        node: Any = current_schema(fact_type)
        for key in path:
            node = node[key]
        return [v for v in node["enum"] if v is not None]

    assert enum("school.added", "properties", "setting") == list(ev.SETTINGS)
    assert enum("tariff.set", "properties", "setting") == list(ev.SETTINGS)
    assert enum("plan.issued", "properties", "kind") == list(ev.PLAN_KINDS)
    assert enum("plan.band_changed", "properties", "reason") == list(ev.BAND_CHANGE_REASONS)
    assert enum("payment.school_paid", "$defs", "PaymentLine", "properties", "kind") == list(LINE_KINDS)
    component = enum("payment.school_paid", "$defs", "PaymentLine", "properties", "component")
    assert component == ["base", "protection", "cushion"]
    assert current_schema("plan.issued")["properties"]["kind"]["default"] == "ehcp"


# (c) realistic instances match; broken ones do not


def test_there_is_an_example_of_every_fact_type() -> None:
    assert set(EXAMPLES) == set(ev.FACT_TYPES)
    for fact_type, (_, fact) in EXAMPLES.items():
        assert fact_type == fact.TYPE


@pytest.mark.parametrize("fact_type", sorted(EXAMPLES))
def test_example_matches_its_schema(fact_type: str) -> None:
    data = example_data(fact_type)
    assert errors(current_schema(fact_type), data) == []
    # the data is what the store keeps, and reads back as the same fact
    assert fact_from_data(fact_type, orjson.loads(orjson.dumps(data))) == EXAMPLES[fact_type][1]


@pytest.mark.parametrize("fact_type", sorted(EXAMPLES))
def test_extra_field_is_rejected(fact_type: str) -> None:
    data = example_data(fact_type) | {"recorded_by": "j.bloggs"}
    found = errors(current_schema(fact_type), data)
    assert any("recorded_by" in e for e in found), found


@pytest.mark.parametrize("fact_type", sorted(EXAMPLES))
def test_each_missing_required_field_is_rejected(fact_type: str) -> None:
    schema = current_schema(fact_type)
    assert schema["required"]
    for name in schema["required"]:
        data = example_data(fact_type)
        del data[name]
        found = errors(schema, data)
        assert any(f"'{name}' is a required property" in e for e in found), (name, found)


@pytest.mark.parametrize("fact_type", sorted(EXAMPLES))
def test_optional_fields_may_be_left_out(fact_type: str) -> None:
    schema = current_schema(fact_type)
    data = {k: v for k, v in example_data(fact_type).items() if k in schema["required"]}
    if fact_type == "plan.issued":
        data["hours"] = "27.5"  # one basis is always given
    if fact_type == "plan.corrected":
        data["band"] = "D"  # something is always corrected
    assert errors(schema, data) == []


@pytest.mark.parametrize("fact_type", sorted(EXAMPLES))
def test_every_field_of_the_wrong_type_is_rejected(fact_type: str) -> None:
    schema = current_schema(fact_type)
    for name in example_data(fact_type):
        for wrong in ({"a": 1}, True):
            data = example_data(fact_type)
            data[name] = wrong
            assert errors(schema, data), (name, wrong)


@pytest.mark.parametrize(("fact_type", "field", "wrong"), WRONG_VALUES,
                         ids=[f"{t}.{f}={w!r}"[:60] for t, f, w in WRONG_VALUES])
def test_wrong_value_is_rejected(fact_type: str, field: str, wrong: Any) -> None:
    data = example_data(fact_type)
    assert field in data
    data[field] = wrong
    assert errors(current_schema(fact_type), data)


def test_plan_issued_gives_exactly_one_basis() -> None:
    schema = current_schema("plan.issued")
    hours = example_data("plan.issued")
    assert hours["hours"] == "27.5" and hours["band"] is None
    band = to_data(ev.PlanIssued("FFI-0006", "PR-5E5E", "100002", date(2025, 9, 1),
                                 "non-statutory", band="B"))
    assert errors(schema, band) == []
    assert errors(schema, {**hours, "band": "D"})  # both
    assert errors(schema, {**hours, "hours": None})  # neither
    assert errors(schema, {k: v for k, v in hours.items() if k not in ("hours", "band")})


def test_plan_issued_version_1_has_no_kind_and_upcasts_to_version_2() -> None:
    v1, v2 = load_schema("plan.issued", 1), load_schema("plan.issued", 2)
    old = {k: v for k, v in example_data("plan.issued").items() if k != "kind"}
    assert errors(v1, old) == []
    assert errors(v2, old) == []  # kind has a default in version 2
    assert any("kind" in e for e in errors(v1, {**old, "kind": "ehcp"}))
    assert "kind" not in v1["properties"]
    assert set(v1["properties"]) == set(v2["properties"]) - {"kind"}
    upcast_data = upcast("plan.issued", 1, old)
    assert upcast_data["kind"] == "ehcp"
    assert errors(v2, upcast_data) == []


def test_correction_must_correct_something() -> None:
    schema = current_schema("plan.corrected")
    data = to_data(ev.Corrected("EHCP-0001", "EHCP-0001/1", "typed the wrong school"))
    assert errors(schema, data)
    assert errors(schema, {**data, "school": "100002"}) == []
    assert errors(schema, {**data, "effective": "2025-09-08"}) == []


def test_payment_line_sign_matches_its_kind() -> None:
    schema = current_schema("payment.school_paid")
    data = example_data("payment.school_paid")
    assert data["lines"][1]["kind"] == "clawback"
    positive = copy.deepcopy(data)
    positive["lines"][1]["amount"] = 12550
    assert errors(schema, positive)
    arrears = copy.deepcopy(data)
    arrears["lines"][1].update(kind="arrears", amount=-12550)
    assert errors(schema, arrears)
    zero = copy.deepcopy(data)
    zero["lines"][0]["amount"] = 0
    assert errors(schema, zero)
    stray = copy.deepcopy(data)
    stray["lines"][0]["paid_by"] = "BACS"
    assert errors(schema, stray)
    no_kind = copy.deepcopy(data)
    del no_kind["lines"][0]["kind"]
    assert any("'kind' is a required property" in e for e in errors(schema, no_kind))


@pytest.mark.parametrize(("line", "changes"), [
    (0, {"plan": ""}),  # a plan's line names its plan
    (0, {"pupil": "", "plan": ""}),
    (0, {"band_or_hours": ""}),
    (0, {"basis": "cushion"}),
    (0, {"component": "protection"}),  # a regular line pays the base amount
    (0, {"kind": "protection"}),  # a protection line pays the protection component
    (2, {"plan": "EHCP-0001"}),  # a cushion line is the school's, not a plan's
    (2, {"basis": "band"}),
    (2, {"component": "base"}),
    (2, {"kind": "regular"}),
])
def test_payment_line_kind_component_and_plan_agree(line: int, changes: dict[str, Any]) -> None:
    schema = current_schema("payment.school_paid")
    data = example_data("payment.school_paid")
    assert [x["component"] for x in data["lines"]] == ["base", "base", "cushion"]
    data["lines"][line].update(changes)
    assert errors(schema, data)


def test_arrears_and_clawback_may_be_of_any_component() -> None:
    schema = current_schema("payment.school_paid")
    data = example_data("payment.school_paid")
    data["lines"][2].update(kind="clawback", amount=-500, for_period="2025-26/summer")
    data["lines"][1].update(kind="arrears", amount=900, component="protection")
    assert errors(schema, data) == []


def test_calendar_period_shape_is_checked() -> None:
    schema = current_schema("calendar.set")
    for field, wrong in [("share", "4/12.5"), ("share", 0.25), ("id", "autumn"),
                         ("start", "2025-09-01T00:00:00"), ("school_days", "74")]:
        data = example_data("calendar.set")
        data["periods"][0][field] = wrong
        assert errors(schema, data), (field, wrong)
    data = example_data("calendar.set")
    del data["periods"][0]["end"]
    assert errors(schema, data)


def test_recorded_time_needs_a_timezone() -> None:
    assert check_recorded_at("2025-11-14T10:30:00+00:00").tzinfo is not None
    for wrong in ("2025-11-14T10:30:00", "14/11/2025 10:30", 1763116200):
        with pytest.raises(ValueError):
            check_recorded_at(wrong)


# (d) a real SQLite ledger


def stored_examples(store: EventStore) -> int:
    versions: dict[str, int] = {}
    batch = []
    clock = FakeClock()
    for stream, fact in EXAMPLES.values():
        versions[stream] = versions.get(stream, 0) + 1
        batch.append(Recorded(stream, versions[stream], clock(), fact))
    store.append(batch)
    return len(batch)


def insert_raw(store: EventStore, stream: str, version: int, topic: str, state: dict[str, Any]) -> None:
    """Store an event as an older (or broken) writer would have, bypassing the mapper."""
    store.recorder.insert_events([StoredEvent(stream, version, topic, orjson.dumps(state))])


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EventStore]:
    store = EventStore(str(tmp_path / "l.sqlite"), create=True)
    store.given_times = True  # record the times the examples carry, as a test's clock does
    yield store
    store.close()


def test_every_stored_event_of_a_real_ledger_is_validated(store: EventStore) -> None:
    assert validate_stored(store) == 0
    n = stored_examples(store)
    assert n == len(ev.FACT_TYPES)
    insert_raw(store, "plan:P-OLD", 1, "plan.issued", {
        "v": 1, "at": "2024-03-01T09:00:00+00:00",
        "data": {"plan": "P-OLD", "pupil": "PR-0001", "school": "100001",
                 "effective": "2023-09-01", "hours": "20", "band": None}})
    assert validate_stored(store) == n + 1
    assert store.stream("plan:P-OLD")[0].fact.kind == "ehcp"  # read as version 2


def test_a_stored_event_that_breaks_its_schema_fails_naming_it(store: EventStore) -> None:
    stored_examples(store)
    store.append([Recorded("school:12", 1, LEDGER_TIME,
                           ev.SchoolAdded(urn="12", name="Nowhere School", setting="mainstream"))])
    with pytest.raises(AssertionError) as failure:
        validate_stored(store)
    message = str(failure.value)
    assert "school:12/1 (school.added)" in message
    assert "'12' does not match" in message
    assert "$.urn" in message


def test_a_stored_event_without_a_timezone_fails(store: EventStore) -> None:
    fact = ev.PlanCeased("EHCP-0001", date(2026, 7, 23), "moved out of the area")
    store.append([Recorded("plan:EHCP-0001", 1, datetime(2026, 7, 24, 9, 0), fact)])
    with pytest.raises(AssertionError, match=r"plan:EHCP-0001/1 \(plan.ceased\).*no timezone"):
        validate_stored(store)


def test_a_stored_version_with_no_schema_fails(store: EventStore) -> None:
    insert_raw(store, "plan:P9", 1, "plan.issued", {
        "v": 3, "at": "2031-01-01T00:00:00+00:00",
        "data": {"plan": "P9", "pupil": "PR-9", "school": "100001", "effective": "2030-09-01",
                 "kind": "ehcp", "hours": "10", "band": None, "funding_stream": "HNB"}})
    with pytest.raises(AssertionError, match=r"plan:P9/1 \(plan.issued\).*no schema for plan.issued "
                                             r"version 3"):
        validate_stored(store)


def test_a_stored_state_outside_the_envelope_fails(store: EventStore) -> None:
    insert_raw(store, "seals", 1, "ledger.sealed", {
        "v": 1, "at": "2025-11-14T10:30:00+00:00", "head": "0f" * 32, "position": 0})
    with pytest.raises(AssertionError, match=r"seals/1 \(ledger.sealed\).*envelope"):
        validate_stored(store)
