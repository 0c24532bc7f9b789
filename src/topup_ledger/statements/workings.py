"""How each child's amount for the period is worked out, as sums a person can check by hand.

A child's regular (and protection) amount for the period is, per stretch of days on one
annual value (docs/rules.md §5): annual value × the period's share of the year × days in the
stretch ÷ days in the period; added, then rounded with the year so far (§6), which moves the
period's amount at most a penny from its own sum rounded alone. The workings are taken from
the plan and the rates and tariffs as known to the period's last run that paid the school,
so they are what that run priced, not what was recorded after it.
"""

from __future__ import annotations

from datetime import date
from fractions import Fraction

from topup_ledger.domain import events as ev
from topup_ledger.domain.calendar import Period, financial_year_of
from topup_ledger.domain.entitlement import stretches
from topup_ledger.domain.errors import MissingTerms, RuleError
from topup_ledger.domain.money import pounds_for_people
from topup_ledger.domain.plan import Plan, protection_spells
from topup_ledger.domain.rules import THRESHOLD_SETTINGS, Terms
from topup_ledger.statements.model import ChildRow, Working
from topup_ledger.statements.source import LedgerView


def terms_at(view: LedgerView, position: int) -> Terms:
    """The schools, hourly rates, tariffs and protection policy as known at ``position``."""
    terms = Terms()
    for school in view.schools.values():
        terms.apply(school)
    for env in view.money_facts:
        if env.position > position:
            break
        if isinstance(env.fact, ev.TariffSet | ev.HourlyRateSet | ev.ProtectionPolicySet):
            terms.apply(env.fact, env.id, env.position)
    return terms


def plan_at(view: LedgerView, ref: str, position: int) -> Plan | None:
    facts = [f for f in view.plan_facts.get(ref, ()) if f.position <= position]
    try:
        return Plan(facts) if facts else None
    except RuleError:
        return None


def exact_pounds(pence: Fraction) -> str:
    """An exact amount of pence in pounds: £6,341.45, or £12,229.255 when hours give a
    fraction of a penny (never rounded: it is the figure the sum starts from)."""
    if pence.denominator == 1:
        return pounds_for_people(int(pence))
    sign = "−" if pence < 0 else ""
    pence = abs(pence)
    whole = int(pence) // 100
    millionths = round(Fraction(pence - whole * 100) * 10_000)  # of a pound, below 1,000,000
    digits = f"{millionths:06d}".rstrip("0")
    return f"{sign}£{whole:,}.{digits.ljust(2, '0')}"


def share_words(share: Fraction) -> str:
    """4/12 rather than 1/3: the share of the year as the calendar gives it."""
    if 12 % share.denominator == 0:
        return f"{share.numerator * 12 // share.denominator}/12"
    return f"{share.numerator}/{share.denominator}"


def hours_words(terms: Terms, hours: object, school: str, day: date) -> str:
    year = financial_year_of(day)
    rate = terms.rate_on(year, day)
    if rate is None:
        return f"{hours} hours a week"
    setting = terms.schools[school].setting if school in terms.schools else ""
    less = (f" − {pounds_for_people(rate.threshold)} threshold"
            if setting in THRESHOLD_SETTINGS and rate.threshold else "")
    return (f"{hours} hours × {pounds_for_people(rate.hourly_rate)} × "
            f"{rate.weeks:g} weeks"
            f"{less} ({year} rate)")


def workings(view: LedgerView, urn: str, period: Period, child: ChildRow,
             position: int) -> list[Working]:
    """The child's stretches at this school in ``period``, as known at ``position``."""
    plan = plan_at(view, child.plan, position)
    if plan is None:
        return []
    terms = terms_at(view, position)
    try:
        found = stretches(plan, period, terms)
    except MissingTerms:
        return []
    out = []
    for stretch in found:
        if stretch.school != urn:
            continue
        year = financial_year_of(stretch.start)
        state = plan.state_on(stretch.start)
        if stretch.basis == "band":
            basis = f"band {stretch.band_or_hours} ({year} tariff)"
        else:
            hours = state.hours if state is not None and state.hours is not None else \
                stretch.band_or_hours.removesuffix("h")
            basis = hours_words(terms, hours, urn, stretch.start)
        # school days on roll where the calendar holds them, else calendar days (§2, §5)
        school_days = period.school_dates is not None
        days = period.weight(stretch.start, stretch.end_exclusive)
        year_days = period.weight_total / period.share if school_days and period.share else None
        share_text = (f"{period.weight_total}/{year_days}" if year_days is not None
                      and year_days.denominator == 1 else "")
        if stretch.annual.base or not stretch.annual.protection:
            out.append(Working("base", basis, stretch.annual.base, period.share, days,
                               period.weight_total, school_days, share_text))
        if stretch.annual.protection and state is not None and state.prior_hours is not None:
            # a frozen prior (the LA's policy, §10) is priced at the terms of the day before
            # the transfer, and the working names that day and its year's rate
            priced_on = terms.prior_priced_on(state, stretch.start)
            prior = terms.hours_amount(state.prior_hours, financial_year_of(priced_on),
                                       terms.setting_of(urn), priced_on)
            frozen = (f" (frozen at the terms of {priced_on.day} {priced_on:%B %Y}, the LA's "
                      "protection policy)" if priced_on != stretch.start else "")
            words = (f"protection: prior{frozen} "
                     f"{hours_words(terms, state.prior_hours, urn, priced_on)}"
                     f" = {exact_pounds(prior)}, less {basis} {exact_pounds(stretch.annual.base)}")
            out.append(Working("protection", words, stretch.annual.protection, period.share,
                               days, period.weight_total, school_days, share_text))
    return out


# How a protection spell ended (domain/plan.py ``ProtectionSpell.ended``), in words.
SPELL_ENDED = {"until": "at its end date", "band": "by a band change",
               "move": "by a move to another school", "ended": "early",
               "ceased": "as the plan ceased"}


def spell_ended_words(plan: Plan, day: date) -> str:
    """When and why the plan's last protection ended on or before ``day``, a sentence ("" if
    it is protected on ``day`` or never was)."""
    spells = protection_spells(plan)
    if not spells or spells[-1].last >= day:
        return ""
    spell = spells[-1]
    fact = plan.corrected.get(spell.ended_by)
    reason = getattr(fact, "reason", "") if spell.ended in ("ended", "band", "ceased") else ""
    by = f" ({spell.ended_by}{': ' + reason if reason else ''})" if spell.ended_by else ""
    return (f"Protection ended {SPELL_ENDED.get(spell.ended, spell.ended)}{by}: its last "
            f"protected day was {spell.last.day} {spell.last:%B %Y}.")


def protection_words(child: ChildRow, ended: str) -> str:
    """A protection amount that is rounding alone (a penny after protection ended, §6), with
    when and why that protection ended."""
    if not child.protection or child.exact("protection"):
        return ""
    ended = f" {ended}" if ended else ""
    return (f"Protection {pounds_for_people(child.protection)} is rounding, not protection for "
            "this period: the base and protection are rounded as one amount over the year, so "
            f"the year's total comes out exact to the penny.{ended}")
