"""The import's bulk write path (issue 8): ``EventStore.append_many`` records exactly what
``EventStore.append`` would — the same rows, byte for byte, so the audit chain is the same —
all or nothing, and refuses a stream version another writer recorded first."""

from __future__ import annotations

import dataclasses
import os
import tracemalloc
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from conftest import FakeClock, new_location
from topup_ledger.audit.verify import verify
from topup_ledger.domain import events as ev
from topup_ledger.io.import_csv import parse_table, read_table
from topup_ledger.services.generator import KIND_ORDER, generate
from topup_ledger.services.importer import Import
from topup_ledger.services.recording import Ledger
from topup_ledger.storage import keys
from topup_ledger.storage.store import BulkEncoder, ConflictError, EventStore, Recorded

Row = tuple[str, int, str, bytes]


def rows_of(store: EventStore) -> list[tuple[int, Row]]:
    return [(n.id, (str(n.originator_id), n.originator_version, n.topic, bytes(n.state)))
            for n in store.notifications()]


def import_county(store: EventStore, tmp_path: Path) -> list[Recorded]:
    """A small generated LA imported as one job; the facts it staged (and recorded)."""
    la = generate(plans=120, schools=12, seed=7)
    la.write(tmp_path / "input")
    job = Import(Ledger(store, clock=FakeClock()))
    for kind in KIND_ORDER:
        for batch in la.batches:
            if batch.rows[kind]:
                result = job.stage_table(read_table(tmp_path / "input" / batch.folder / f"{kind}.csv"),
                                         kind)
                assert not result.rejected, result.rejects()[:3]
    staged = list(job.staging.staged)
    job.commit()
    return staged


def test_an_import_stores_what_append_would_and_the_chain_head_is_the_same(
        backend: str, tmp_path: Path) -> None:
    key = keys.LedgerKey(os.urandom(32), "test")  # one key for both: the same MACs
    bulk, one_by_one = (EventStore(new_location(backend, tmp_path), create=True, key=key)
                        for _ in "ab")
    one_by_one.given_times = True  # the times the staged facts carry, as the import records them
    try:
        staged = import_county(bulk, tmp_path)
        kinds = {r.fact.TYPE for r in staged}
        assert {"school.added", "rate.set", "tariff.set", "plan.issued", "plan.transferred_to_band",
                "plan.band_changed", "plan.moved", "plan.ceased"} <= kinds
        one_by_one.append(staged)  # the ordinary command path, same facts
        assert rows_of(bulk) == rows_of(one_by_one)
        a, b = verify(bulk, rebuild=False), verify(one_by_one, rebuild=False)
        assert a.ok and b.ok and a.events == len(staged)
        assert a.digest == b.digest
        # reading back gives the very facts staged, with their streams, versions and time, and
        # who recorded them
        back = [r for _, r in bulk.recorded()]
        assert back == [dataclasses.replace(r, recorded_by=bulk.mapper.actor) for r in staged]
    finally:
        bulk.close()
        one_by_one.close()


def test_positions_are_those_the_ledger_gives_the_rows(location: str) -> None:
    store = EventStore(location)
    try:
        ledger = Ledger(store, clock=FakeClock())
        ledger.add_school("100001", "Oakfield Primary", "mainstream")  # not at position 0
        now = datetime(2026, 1, 5, 9, tzinfo=UTC)
        batch = [Recorded(f"school:10000{i}", 1, now, ev.SchoolAdded(f"10000{i}", f"S{i}", "special"))
                 for i in range(2, 7)]
        positions = list(store.append_many(batch))  # a range: millions cost nothing to hold
        assert positions == [n for n, _ in rows_of(store)][1:]
        assert positions == sorted(positions) and len(positions) == 5
        assert list(store.append_many([])) == []
    finally:
        store.close()


def test_a_batch_with_a_stream_version_already_recorded_records_nothing(location: str) -> None:
    store = EventStore(location)
    try:
        Ledger(store, clock=FakeClock()).add_school("100001", "Oakfield Primary", "mainstream")
        now = datetime(2026, 1, 5, 9, tzinfo=UTC)
        batch = [Recorded(f"school:20000{i}", 1, now, ev.SchoolAdded(f"20000{i}", f"S{i}", "special"))
                 for i in range(5)]
        batch.append(Recorded("school:100001", 1, now,
                              ev.SchoolAdded("100001", "Oakfield Primary", "mainstream")))
        with pytest.raises(ConflictError, match=r"another writer changed .*school:100001.* "
                           r"nothing of this command was recorded: run it again"):
            store.append_many(batch)
        assert [row[0] for _, row in rows_of(store)] == ["school:100001"]
        # the same facts without the clash go in whole, at the positions the ledger gave them
        # (on PostgreSQL after a gap: the failed batch used up sequence numbers)
        positions = list(store.append_many(batch[:-1]))
        assert positions == [n for n, _ in rows_of(store)][1:] and len(positions) == 5
    finally:
        store.close()


def test_another_writer_recording_the_same_stream_first_is_a_conflict(location: str) -> None:
    mine, theirs = EventStore(location), EventStore(location)  # two connections, two writers
    try:
        other = Ledger(theirs, clock=FakeClock())
        other.add_school("100001", "Oakfield Primary", "mainstream")
        job = Import(Ledger(mine, clock=FakeClock()))  # reads what the ledger knows now
        job.stage_table(parse_table(b"urn,name,setting\n100002,Beacon,special\n"
                                    b"100003,Hillside,resourced\n", "schools.csv"))
        other.add_school("100003", "Hillside", "resourced")  # meanwhile, on the other connection
        with pytest.raises(ConflictError) as refused:
            job.commit()
        assert str(refused.value) == ("another writer changed school:100003 at the same time; "
                                      "nothing of this command was recorded: run it again")
        assert [row[0] for _, row in rows_of(mine)] == ["school:100001", "school:100003"]
    finally:
        mine.close()
        theirs.close()


# Encoding: every kind of fact, every kind of field, as FactMapper stores it.

SAMPLES: list[ev.Fact] = [
    ev.SchoolAdded("100001", "St Mary's \u2014 Oakfield \"CE\"", "mainstream", None),
    ev.CalendarSet("2025-26", (ev.PeriodSpec("2025-26/autumn", date(2025, 9, 1),
                                             date(2025, 12, 31), "4/12", 76),
                               ev.PeriodSpec("2025-26/spring", date(2026, 1, 1),
                                             date(2026, 3, 31), "3/12")), "termly",
                   (ev.TermDates(date(2025, 9, 3), date(2025, 12, 19)),), (date(2025, 10, 27),)),
    ev.HourlyRateSet("2025-26", 1850, Decimal("38.5"), 600_000, ""),
    ev.HourlyRateSet("2026-27", 1900, Decimal("1E+1"), 0),  # exponent form is written '10'
    ev.TariffSet("2025-26", (("A", 200_000), ("B", 400_000)), "special", "Forum"),
    ev.PlanIssued("P1", "PR-1", "100001", date(2025, 9, 1), "ehcp", Decimal("32.50"), None),
    ev.PlanIssued("P2", "PR-2", "100001", date(2025, 9, 1), "non-statutory", None, "C"),
    ev.HoursChanged("P1", date(2025, 11, 3), Decimal("0.25"), "review"),
    ev.TransferredToBand("P1", date(2026, 4, 1), "D", 1_234_567, date(2027, 8, 31)),
    ev.TransferredToBand("P3", date(2026, 4, 1), "D", 0),
    ev.BandChanged("P2", date(2026, 1, 5), "E", "tribunal"),
    ev.PlacementMoved("P2", date(2026, 9, 1), "100002"),
    ev.PlanCeased("P2", date(2027, 3, 1), "left the LA"),
    ev.Corrected("P2", "P2/3", "it was D", "D", None, date(2026, 1, 4), None),
    ev.SchoolPaid("R1", "2025-26/autumn", "100001", (
        ev.PaymentLine("P1", "PR-1", "regular", "2025-26/autumn", 123_456, "hours", "32.50h", 76,
                       "due", ("P1/1", "P1/2")),
        ev.PaymentLine("P2", "PR-2", "clawback", "2025-26/autumn", -1, "band", "C", 0, "", (),
                       "protection"))),
    ev.PaymentRunRecorded("R1", "2025-26/autumn", 1, 2, 123_455, "ab" * 32 + "@9"),
    ev.FilesWritten("R1", "runs/R1", (ev.WrittenFile("payments.csv", "0" * 64, 1234),)),
    ev.CushionSet("100001", date(2026, 4, 1), date(2027, 3, 31), Decimal("50"), "transition"),
    ev.Sealed("ff" * 32, 42, "on demand"),
    ev.SchoolPayeeSet("100001", "academy", date(2026, 4, 1), supplier="S1", trust="Oak Trust"),
    ev.FinanceMappingSet(ev.FinanceMapping("E1", "I03", "%d/%m/%Y", (("academy", "1.2.2"),),
                                           (("amount", "Value"),), (("amount", "Net"),),
                                           (("amount", "Amount"),)), "finance.toml"),
    ev.RunFinance("R1", date(2025, 9, 1), date(2025, 9, 1), date(2025, 12, 31),
                  date(2025, 9, 2), ev.FinanceMapping("E1", "I03", "%d/%m/%Y", (),
                                                      (("amount", "Value"),), (("amount", "Net"),),
                                                      (("amount", "Amount"),)),
                  (ev.RunPayee("100001", "Oak", "mainstream", "maintained", cost_centre="C1"),)),
    ev.ReleasePolicySet("two-person", "segregation of duties"),
    ev.RunPrepared("R1", "two-person", ("2025-26/autumn",), ("2026-27",)),
    ev.RunReleased("R1"),
    ev.RunWithdrawn("R2", "band under appeal"),
    ev.RemittanceLine("SUP-1", "R1", 123_455, date(2025, 12, 12), "remit.csv:2"),
    ev.LADetailsSet("Anyshire County Council", ("County Hall", "Anytown AN1 1AA"),
                    "sen.finance@anyshire.gov.uk", "Email the SEN finance team"),
    ev.KeyRotated("3c9a0f1e2d4b5a69", "b1e0f7a2c3d49e58", "yearly rotation"),
    ev.ProtectionGranted("P1", date(2026, 4, 1), date(2026, 8, 31), "tribunal"),
    ev.ProtectionExtended("P1", date(2026, 9, 1), date(2027, 3, 31), "phase transfer"),
    ev.ProtectionEnded("P1", date(2027, 1, 1), "needs met \u2014 early"),
    ev.ProtectionPolicySet("frozen", ""),
]


def test_every_kind_of_fact_is_encoded_as_the_mapper_encodes_it(tmp_path: Path) -> None:
    assert {type(f) for f in SAMPLES} == set(ev.FACT_TYPES.values())
    store = EventStore(str(tmp_path / "l.sqlite"), create=True)
    try:
        times = [datetime(2026, 1, 5, 9, 30, tzinfo=UTC),
                 datetime(2026, 1, 5, 9, 30, 0, 125, tzinfo=UTC),
                 datetime(2026, 6, 1, 10, tzinfo=timezone(timedelta(hours=1)))]
        batch = [Recorded(f"s:{i}", 1 + i % 2, times[i % 3], fact) for i, fact in enumerate(SAMPLES)]
        expected = [store.mapper.to_stored_event(r) for r in batch]
        assert BulkEncoder(store.mapper).rows(batch) == [
            (s.originator_id, s.originator_version, s.topic, s.state) for s in expected]
    finally:
        store.close()


def test_encoded_events_take_about_their_own_size_in_memory(tmp_path: Path) -> None:
    """An import holds every encoded event until its one append: 20,000 plans' events of a
    few hundred bytes each must not hold the kilobytes orjson wrote each one into."""
    store = EventStore(str(tmp_path / "l.sqlite"), create=True)
    when = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
    batch = [Recorded(f"plan:P{i}", 1, when, ev.PlanIssued(
        f"P{i}", f"PR-{i}", "100001", date(2025, 9, 1), "ehcp", None, "B"))
        for i in range(20_000)]
    try:
        tracemalloc.start()
        try:
            rows = BulkEncoder(store.mapper).rows(batch)
            held, _ = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    finally:
        store.close()
    stored = sum(len(row[3]) for row in rows)
    assert stored < 20_000 * 300
    assert held < 3 * stored, f"{held:,} bytes held for {stored:,} bytes of states"


class ReversingCipher:
    """A deterministic stand-in for the library's AES cipher: what matters here is that the
    bulk path hands the cipher the same plaintext as the mapper, and stores what it returns."""

    def __init__(self, environment: object) -> None:
        pass

    def encrypt(self, plaintext: bytes) -> bytes:
        return b"sealed:" + plaintext[::-1]

    def decrypt(self, ciphertext: bytes) -> bytes:
        assert ciphertext.startswith(b"sealed:")
        return ciphertext[len(b"sealed:"):][::-1]


def test_an_encrypted_ledger_gets_the_same_ciphertext_and_reads_back(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from topup_ledger.storage import store as store_module

    plain_environment = store_module.environment

    def encrypted(location: str, *, create: bool = False) -> dict[str, str]:
        return {**plain_environment(location, create=create),
                "CIPHER_TOPIC": "test_import_bulk:ReversingCipher", "CIPHER_KEY": "k"}

    monkeypatch.setattr(store_module, "environment", encrypted)
    store = EventStore(str(tmp_path / "encrypted.sqlite"), create=True)
    store.given_times = True
    try:
        assert store.mapper.cipher is not None
        now = datetime(2026, 1, 5, 9, tzinfo=UTC)
        batch = [Recorded(f"s:{i}", 1, now, fact) for i, fact in enumerate(SAMPLES)]
        expected = [(s.originator_id, s.originator_version, s.topic, s.state)
                    for s in map(store.mapper.to_stored_event, batch)]
        assert BulkEncoder(store.mapper).rows(batch) == expected
        store.append_many(batch)
        assert [row for _, row in rows_of(store)] == expected
        assert [r for _, r in store.recorded()] == [
            dataclasses.replace(r, recorded_by=store.mapper.actor) for r in batch]
    finally:
        store.close()
