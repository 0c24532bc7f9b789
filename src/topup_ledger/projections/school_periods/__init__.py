"""The fold behind per-school funding and paid-vs-due: every plan's due by period and school
(as known now), what was paid, and the events that explain any difference.

- ``schema``: the ``sp_`` tables;
- ``fold``: ``SchoolPeriods``, folding events into those tables and keeping plans' rows
  up to date (``paid``: payments folded; ``recheck``: plans paid since they were worked out;
  ``cushions``: schools' cushion dues);
- ``context`` and ``recompute``: working out one plan's rows;
- ``read``: the per school and period figures that funding and paid-vs-due read.

Working out a plan's due means pricing every period again (exact fractions, cumulative
rounding), which is most of the cost of a rebuild. A payment run leaves every plan paid
exactly its due for every period up to the run's own; so where nothing bearing on a plan
was recorded since the last run, its due for the periods still settled (docs/rules.md §8,
``domain.settlement``: the rule the payment run uses too) is what was paid, and only the
other years are priced (``recompute.settled_dues``). ``SchoolPeriods(settle_from_runs=False)``
prices everything: the tests check that both give the same files byte for byte.

The *horizon* is the day the ledger stands at: the recorded date of the last event folded,
or the start of the latest period already paid if that is later. Periods up to the one
containing the horizon are due "as known now"; later periods are not due yet. The horizon is
a function of the events alone, so a rebuild and an incremental update agree byte for byte,
and a projection as of a past time is exactly what it was then.
"""
