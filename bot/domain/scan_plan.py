"""What a reconciliation scan reads from Shopify: a full sweep, or what changed since the last scan. Pure: the clock
and the record of earlier scans are passed in.

A full sweep pages through every open order not yet shipped, then re-reads, in batches (`nodes(ids:)`), each watched
order (rules.needs_watching) that query did not return: an order held in Shopify's search index as it was, one
shipped or archived or deleted without orderbot hearing of it. The first sweep (none succeeded yet: a new install,
or the first scan after the upgrade that brought sweeps) also pages through the open orders shipped in the last
RECENTLY_SHIPPED, to find shipments still without a tracking number among orders orderbot never saw. Its cost
follows the open work: a shop's history of shipped orders it never archives is in neither query, nor watched.

The scans between two sweeps read only what changed: orders updated since the last successful scan, and orders whose
fulfillment orders were updated since (a hold or a fulfillment service's answer need not touch the order), each with
an overlap of CHANGES_OVERLAP (Shopify's search index trails its writes, and the two clocks differ). Orders whose
verdict changes with time alone are classified again from the database. A sweep runs every FULL_SWEEP_EVERY,
catching whatever a change-scan missed.

Measured by `python tests/perf/bench_scan.py` on a sandbox shop of 50,000 orders (2,000 open and not shipped, 45,000
shipped and never archived, 125 shipments a day): the first sweep takes 268 requests and 58,900 points of actual cost,
about 10 minutes of the Standard plan's restore rate (100 points a second); a quiet shop's later scan 2 requests and 4
points; the daily sweep 143 requests and 30,730 points, 5 minutes of that rate (0.4 % of a day's), all of them the
same with 10,000 shipped orders instead of 45,000. The scan before took 43,630 requests and 880,959 points every 15
minutes: ten times what the Standard plan restores in that time.

Shopify's bulk query operation (`bulkOperationRunQuery`) is not used for a big shop's first sweep: that sweep reads
the open work only, and fits in the 10 minutes above, once; a bulk operation would save them at the price of a
second way of reading orders (a job to start and poll, a JSONL file whose nested rows must be put back together
into orders, a sandbox for both) to keep in step with the first. It becomes worth it for a shop with tens of
thousands of open orders, which paging would take hours over, and where a list also meets Shopify's limit of 25,000
items paged through.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

RECENTLY_SHIPPED = timedelta(days=14)
FULL_SWEEP_EVERY = timedelta(days=1)
CHANGES_OVERLAP = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class ScanPlan:
    kind: str  # "full" (a sweep) or "changes"
    order_queries: tuple[str, ...]  # Shopify order searches, each paged to its end
    fulfillment_order_queries: tuple[str, ...] = ()  # fulfillment order searches: their orders are re-read


OPEN_NOT_SHIPPED = "status:open -fulfillment_status:shipped"


def first_sweep_queries(now: datetime) -> tuple[str, ...]:
    """Open orders not shipped yet, and open orders shipped (or otherwise updated) in the last RECENTLY_SHIPPED."""
    shipped_since = _at(now - RECENTLY_SHIPPED)
    return (OPEN_NOT_SHIPPED, f"status:open fulfillment_status:shipped updated_at:>={shipped_since}")


def plan_scan(now: datetime, last_scan: datetime | None, last_sweep: datetime | None) -> ScanPlan:
    """`last_scan`: when the last successful scan (of either kind) started; `last_sweep`: the last successful sweep."""
    if last_scan is None or last_sweep is None:
        return ScanPlan("full", first_sweep_queries(now))
    if now - last_sweep >= FULL_SWEEP_EVERY:
        return ScanPlan("full", (OPEN_NOT_SHIPPED,))
    changed = f"updated_at:>={_at(min(last_scan, now) - CHANGES_OVERLAP)}"
    return ScanPlan("changes", (changed,), (changed,))


def _at(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
