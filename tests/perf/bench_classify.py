"""classify() benchmark: 100,000 varied orders (deterministic), best of 3, against a baseline loop over the same
orders that does only the exclusion checks (attribute access and the tag lookup), measured in the same run.

    python tests/perf/bench_classify.py [--orders 100000] [--limit 2.0]

Two figures: classify alone, and classify plus reading the explanation and next steps of every stuck verdict, as
alerts, the store and the CLI do (classify words every verdict as it builds it, so the two stay close).
Prints orders per second, total seconds, the ratio to the baseline, and how the verdicts split by status.
Exits non-zero when classifying all the orders and wording the stuck ones takes longer than --limit seconds.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from bot.domain.orders import (
    Customer,
    Fulfillment,
    FulfillmentOrder,
    FulfillmentOrderLine,
    Hold,
    Money,
    Order,
    Tracking,
)
from bot.domain.rules import REASONS, Policy, classify

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
ACTIONS = ("CREATE_FULFILLMENT", "REQUEST_FULFILLMENT", "REQUEST_CANCELLATION", "RELEASE_HOLD")
# (FO status, request status, hold reason or None): the shapes a store's open orders take.
SHAPES = (
    ("OPEN", "UNSUBMITTED", None),
    ("OPEN", "UNSUBMITTED", None),
    ("OPEN", "SUBMITTED", None),
    ("IN_PROGRESS", "ACCEPTED", None),
    ("OPEN", "REJECTED", None),
    ("IN_PROGRESS", "CANCELLATION_REQUESTED", None),
    ("ON_HOLD", "UNSUBMITTED", "INVENTORY_OUT_OF_STOCK"),
    ("ON_HOLD", "UNSUBMITTED", "INCORRECT_ADDRESS"),
    ("ON_HOLD", "UNSUBMITTED", "AWAITING_PAYMENT"),
    ("SCHEDULED", "UNSUBMITTED", None),
    ("IN_PROGRESS", "UNSUBMITTED", None),
    ("CLOSED", "CLOSED", None),
)
FINANCIAL = ("PAID",) * 6 + ("PENDING", "AUTHORIZED", "PARTIALLY_PAID", "REFUNDED")


def build_orders(count: int, seed: int = 1) -> list[Order]:
    rng = random.Random(seed)
    return [build_order(i, rng) for i in range(count)]


def build_order(i: int, rng: random.Random) -> Order:
    created = NOW - timedelta(minutes=rng.randrange(0, 14 * 24 * 60))

    def ago() -> datetime:
        return created + (NOW - created) * rng.random()

    fos = tuple(build_fo(i, n, rng, ago()) for n in range(rng.choice((1, 1, 1, 2, 3))))
    fulfillments = tuple(
        Fulfillment(
            f"gid://shopify/Fulfillment/{i}{n}",
            "SUCCESS",
            when := ago(),
            when,
            (Tracking("1Z999", "UPS", None),) if rng.random() < 0.7 else (),
        )
        for n in range(rng.choice((0, 0, 1, 2)))
    )
    roll = rng.random()
    return Order(
        id=f"gid://shopify/Order/{i}",
        name=f"#{1000 + i}",
        created_at=created,
        updated_at=NOW,
        financial_status=rng.choice(FINANCIAL),
        fulfillment_status="PARTIALLY_FULFILLED" if fulfillments and rng.random() < 0.5 else "UNFULFILLED",
        total=Money("20.00", "EUR"),
        closed_at=NOW if roll < 0.02 else None,
        cancelled_at=NOW if 0.02 <= roll < 0.04 else None,
        test=0.04 <= roll < 0.05,
        tags=("vip", "orderbot-ignore") if 0.05 <= roll < 0.07 else ("vip", "wholesale"),
        customer=Customer("Ann", "ann@example.com" if rng.random() < 0.9 else None),
        fulfillments=fulfillments,
        fulfillment_orders=None if 0.07 <= roll < 0.12 else fos,
    )


def build_fo(i: int, n: int, rng: random.Random, updated: datetime) -> FulfillmentOrder:
    status, request, hold = rng.choice(SHAPES)
    service = rng.choice((None, None, "DSers", "ShipBob"))
    return FulfillmentOrder(
        id=f"gid://shopify/FulfillmentOrder/{i}{n}",
        status=status,
        request_status=request,
        created_at=updated,
        updated_at=updated,
        location=service or "Main warehouse",
        service=service,
        fulfill_at=updated + timedelta(days=rng.choice((-1, 2))) if status == "SCHEDULED" else None,
        fulfill_by=updated + timedelta(hours=36) if rng.random() < 0.1 else None,
        holds=(Hold(f"gid://shopify/FulfillmentHold/{i}{n}", hold, None),) if hold else (),
        supported_actions=tuple(a for a in ACTIONS if rng.random() < 0.6),
        lines=(FulfillmentOrderLine(f"gid://shopify/FulfillmentOrderLineItem/{i}{n}", "Mug", None, 1, 2),),
    )


def baseline(orders: list[Order], policy: Policy) -> int:
    """Only the exclusion checks classify starts with."""
    kept = 0
    for order in orders:
        if (
            not order.cancelled
            and not order.closed
            and not (order.test and not policy.include_test_orders)
            and not order.has_tag(policy.ignore_tag)
        ):
            kept += 1
    return kept


def classify_all(orders: list[Order], policy: Policy) -> Counter[str]:
    return Counter(classify(order, NOW, policy).status for order in orders)


def classify_and_word_stuck(orders: list[Order], policy: Policy) -> int:
    """classify every order, then read the explanation and next steps of the stuck ones (as an alert would)."""
    words = 0
    for order in orders:
        verdict = classify(order, NOW, policy)
        if verdict.stuck:
            words += len(verdict.explanation) + len(verdict.next_steps)
    return words


def best_of(runs: int, work: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument(
        "--limit", type=float, default=2.0, help="seconds allowed for classifying all the orders and wording the stuck"
    )
    args = parser.parse_args()

    orders = build_orders(args.orders)
    policy = Policy()
    base = best_of(3, lambda: baseline(orders, policy))
    alone = best_of(3, lambda: classify_all(orders, policy))
    total = best_of(3, lambda: classify_and_word_stuck(orders, policy))
    statuses = classify_all(orders, policy)
    stuck = sum(count for status, count in statuses.items() if status in REASONS)

    print(f"orders:     {len(orders):,}")
    print(f"baseline:   {base:.3f} s  ({len(orders) / base:,.0f} orders/s)  exclusion checks only")
    print(f"classify:   {alone:.3f} s  ({len(orders) / alone:,.0f} orders/s)  best of 3, words not read")
    print(f"+ words:    {total:.3f} s  ({len(orders) / total:,.0f} orders/s)  best of 3, explanation and next steps of")
    print(f"            the {stuck:,} stuck verdicts read too; the limit applies to this figure")
    print(f"ratio:      {alone / base:.1f}x / {total / base:.1f}x the baseline")
    print("verdicts:   " + ", ".join(f"{status} {count:,}" for status, count in statuses.most_common()))
    if total > args.limit:
        print(f"FAIL: {total:.3f} s is over the {args.limit} s limit")
        return 1
    print(f"OK: under the {args.limit} s limit")
    return 0


if __name__ == "__main__":
    sys.exit(main())
