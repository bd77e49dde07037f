"""What a reconciliation scan reads from Shopify: a full sweep, or what changed since the last scan. Pure: the clock
and the record of earlier scans are passed in.

A full sweep pages through every open order not yet shipped and every open order shipped in the last
RECENTLY_SHIPPED (a shipment may lack its tracking number), then re-reads, in batches (`nodes(ids:)`), each watched
order (rules.needs_watching) those queries did not return. Its cost follows the open work: a shop's history of
shipped orders it never archives is in neither query, nor watched.

The scans between two sweeps read only what changed: orders updated since the last successful scan, and orders whose
fulfillment orders were updated since (a hold or a fulfillment service's answer need not touch the order), each with
an overlap of CHANGES_OVERLAP (Shopify's search index trails its writes, and the two clocks differ). Orders whose
verdict changes with time alone are classified again from the database: a quiet shop's scan is two requests, whatever
its size. A sweep runs first, then once every FULL_SWEEP_EVERY, catching whatever a change-scan might have missed.

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


def full_sweep_queries(now: datetime) -> tuple[str, ...]:
    """Open orders not shipped yet, and open orders shipped (or otherwise updated) in the last RECENTLY_SHIPPED."""
    return (
        "status:open -fulfillment_status:shipped",
        f"status:open fulfillment_status:shipped updated_at:>={_at(now - RECENTLY_SHIPPED)}",
    )


def plan_scan(now: datetime, last_scan: datetime | None, last_sweep: datetime | None) -> ScanPlan:
    """`last_scan`: when the last successful scan (of either kind) started; `last_sweep`: the last successful sweep."""
    if last_scan is None or last_sweep is None or now - last_sweep >= FULL_SWEEP_EVERY:
        return ScanPlan("full", full_sweep_queries(now))
    changed = f"updated_at:>={_at(min(last_scan, now) - CHANGES_OVERLAP)}"
    return ScanPlan("changes", (changed,), (changed,))


def _at(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
