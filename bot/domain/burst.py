"""A calm first day: how many new alerts one scan posts. Pure: no I/O.

The rule. A scan posts at most `alert_burst` new alerts (a setting, default 20): for the most urgent of the stuck
orders that have no alert yet (critical before warning, then the longest stuck: the Home tab's order, `most_urgent`).
The others are held back: no message, listed by `/orders stuck` as every stuck order is, and considered again by each
later scan together with whatever that scan finds newly stuck, the most urgent `alert_burst` of them alerted. So 300
stuck orders found at install are alerted 20 a scan, most urgent first, unless they are dealt with before. When a
scan holds back orders it had not held back before, one summary message says how many, by reason, with a button
that lists them.

Only scans, and a settings change (which classifies every open order again, so a lower threshold can make hundreds
stuck at once), are limited. An order a webhook (or a click, or a command) finds stuck is alerted at once, as before;
one held back stays held back until a scan alerts it, and is forgotten once it is no longer stuck.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from bot.domain.home import StuckRow, most_urgent
from bot.domain.rules import REASONS


@dataclass(frozen=True, slots=True)
class BurstSummary:
    """What the summary message says: alerts posted by the scan, and the stuck orders still without one."""

    alerted: int
    held_back: int
    by_reason: tuple[tuple[str, int], ...]  # the held-back orders by reason, in REASONS order
    alert_burst: int


@dataclass(frozen=True, slots=True)
class BurstPlan:
    held_back: frozenset[str]  # order ids whose alert waits
    summary: BurstSummary | None  # None: nothing newly held back, so no summary


def plan_burst(waiting: Sequence[StuckRow], held_before: Collection[str], alert_burst: int) -> BurstPlan:
    """Of the stuck orders without an alert a scan would post (`waiting`: newly stuck, and those held back before,
    `held_before`), which to hold back: none when they are `alert_burst` or fewer, else all but the most urgent
    `alert_burst`."""
    if len(waiting) <= alert_burst:
        return BurstPlan(frozenset(), None)
    alerted, _ = most_urgent(waiting, alert_burst)
    alerted_ids = {row.order_id for row in alerted}
    held = [row for row in waiting if row.order_id not in alerted_ids]
    if all(row.order_id in held_before for row in held):
        return BurstPlan(frozenset(row.order_id for row in held), None)
    counts = Counter(row.reason for row in held)
    reasons = dict.fromkeys([*REASONS, *sorted(counts)])
    by_reason = tuple((reason, counts[reason]) for reason in reasons if counts[reason])
    return BurstPlan(
        frozenset(row.order_id for row in held), BurstSummary(len(alerted), len(held), by_reason, alert_burst)
    )


def summary_snapshot(summary: BurstSummary) -> dict[str, Any]:
    """The summary as data (JSON-safe), queued in the outbox; the Slack side draws it when it sends."""
    return {
        "alerted": summary.alerted,
        "held_back": summary.held_back,
        "by_reason": [list(pair) for pair in summary.by_reason],
        "alert_burst": summary.alert_burst,
    }


def from_summary_snapshot(snapshot: dict[str, Any]) -> BurstSummary:
    return BurstSummary(
        snapshot["alerted"],
        snapshot["held_back"],
        tuple((str(reason), int(count)) for reason, count in snapshot["by_reason"]),
        snapshot["alert_burst"],
    )
