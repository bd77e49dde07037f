"""Which orders a `Selection` (bot/domain/commands.py) means, and in what order. Pure: no I/O, `now` passed in.

An order is considered when it is named (by number or id), whatever its state, so that `unarchive #1001` finds an
archived order; without names, only open orders (neither archived nor cancelled) are considered. Named orders and a
filter combine as "named AND filter". `stuck` needs the order's stored verdict to be stuck (for `reason`, stuck for
that reason); `fulfilled` means fully shipped but still open; `tag` matches a tag case-insensitively; `older` is
measured from `reference_time`. Orders come oldest first by that same reference time.

`verdict` is the order's row of the `verdicts` table (a mapping with `stuck`, `reason` and `since`), or None.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from functools import lru_cache
from typing import Any

from bot.domain.commands import Selection
from bot.domain.orders import Order, parse_time

Verdict = Mapping[str, Any]


def names(selection: Selection) -> list[str]:
    """The order names a selection's numbers stand for ("#1001"), in the order given, without repeats."""
    return list(dict.fromkeys(f"#{number}" for number in selection.numbers))


def is_named(selection: Selection, order: Order) -> bool:
    return order.name in _named(selection) or order.id in _named(selection)


@lru_cache(maxsize=16)
def _named(selection: Selection) -> frozenset[str]:
    """Names and ids as one set (a range may name 5,000 orders; matching many orders looks each up)."""
    return frozenset(names(selection)) | frozenset(selection.ids)


def shipped_at(order: Order) -> datetime | None:
    """When the latest shipment went out (a successful fulfillment's creation), if any did."""
    times = [f.created_at for f in order.fulfillments if f.status == "SUCCESS"]
    return max(times) if times else None


def reference_time(selection: Selection, order: Order, verdict: Verdict | None) -> datetime:
    """What `older` measures from: stuck since (with `stuck`), shipped at (with `fulfilled`), else creation."""
    if selection.stuck and verdict is not None:
        since = parse_time(verdict.get("since"))
        if since is not None:
            return since
    if selection.fulfilled:
        return shipped_at(order) or order.created_at
    return order.created_at


def matches(selection: Selection, order: Order, verdict: Verdict | None, now: datetime) -> bool:
    is_open = not order.closed and not order.cancelled
    if selection.named:
        if not is_named(selection, order):
            return False
    elif not is_open:
        return False
    if selection.stuck:
        if verdict is None or not verdict.get("stuck"):
            return False
        if selection.reason is not None and verdict.get("reason") != selection.reason:
            return False
    if selection.fulfilled and not (is_open and order.fulfillment_status == "FULFILLED"):
        return False
    if selection.tag is not None and not order.has_tag(selection.tag):
        return False
    return selection.older is None or now - reference_time(selection, order, verdict) >= selection.older


def sort_key(selection: Selection, order: Order, verdict: Verdict | None) -> tuple[datetime, datetime, str]:
    """Oldest first, by what `older` measures; ties by creation, then id."""
    return reference_time(selection, order, verdict), order.created_at, order.id


def select(
    selection: Selection, rows: Iterable[tuple[Order, Verdict | None]], now: datetime
) -> list[tuple[Order, Verdict | None]]:
    """The rows that match, oldest first."""
    found = [(order, verdict) for order, verdict in rows if matches(selection, order, verdict, now)]
    found.sort(key=lambda row: sort_key(selection, *row))
    return found
