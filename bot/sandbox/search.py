"""Shopify's search syntax for the orders query (the subset orderbot uses) and the orders' sort keys."""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Callable
from datetime import UTC, datetime

from bot.sandbox.state import display_fulfillment_status, fulfilled_quantity, legacy_id

_TERM = re.compile(r"""(-?)(?:(\w+):)?(?:"([^"]*)"|'([^']*)'|(\S+))""")
_COMPARATOR = re.compile(r"^(>=|<=|>|<|=)?(.*)$")


def _parse_time_value(text: str) -> datetime:
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


_COMPARISONS: dict[str, Callable[[datetime, datetime], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
    "=": operator.eq,
}


@functools.lru_cache(maxsize=64)
def _time_condition(text: str) -> tuple[Callable[[datetime, datetime], bool], datetime]:
    """A term's value parsed once, not once per order it is checked against."""
    op, value = _COMPARATOR.match(text).groups()
    return _COMPARISONS[op or "="], _parse_time_value(value)


def _compare_times(actual: datetime, text: str) -> bool:
    compare, wanted = _time_condition(text)
    return compare(actual, wanted)


def _status_matches(order: dict, value: str) -> bool:
    cancelled = order["cancelled_at"] is not None
    closed = order["closed_at"] is not None
    return {
        "open": not closed and not cancelled,
        "closed": closed,
        "cancelled": cancelled,
        "any": True,
    }.get(value, False)


def _fulfillment_status_matches(order: dict, value: str) -> bool:
    if value in ("unshipped", "unfulfilled"):
        return fulfilled_quantity(order) == 0
    if value in ("shipped", "fulfilled"):
        return display_fulfillment_status(order) == "FULFILLED"
    if value == "partial":
        return display_fulfillment_status(order) == "PARTIALLY_FULFILLED"
    return display_fulfillment_status(order) == value.upper()


def _text_matches(order: dict, value: str) -> bool:
    customer = order.get("customer") or {}
    haystack = " ".join(
        str(v) for v in (order["name"], order.get("email"), customer.get("first_name"), customer.get("last_name")) if v
    )
    return value.lower() in haystack.lower()


_FILTERS: dict[str | None, Callable[[dict, str], bool]] = {
    "status": lambda o, v: _status_matches(o, v.lower()),
    "fulfillment_status": lambda o, v: _fulfillment_status_matches(o, v.lower()),
    "financial_status": lambda o, v: (o["financial_status"] or "").lower() == v.lower(),
    "updated_at": lambda o, v: _compare_times(o["updated_at"], v),
    "created_at": lambda o, v: _compare_times(o["created_at"], v),
    "tag": lambda o, v: any(t.lower() == v.lower() for t in o["tags"]),
    "name": lambda o, v: o["name"].lstrip("#") == v.lstrip("#"),
    "email": lambda o, v: (o.get("email") or "").lower() == v.lower(),
    "test": lambda o, v: o["test"] == (v.lower() == "true"),
    None: _text_matches,
}


def search_predicate(query: str | None) -> Callable[[dict], bool]:
    """Shopify's search syntax, the subset orderbot uses: terms ANDed, `-` negates, a literal AND is ignored.
    Unknown fields are ignored, as Shopify does (it only warns)."""
    terms = []
    for negated, name, double, single, bare in _TERM.findall(query or ""):
        value = double or single or bare
        if not name and value == "AND":
            continue
        check = _FILTERS.get(name or None)
        if check is not None:
            terms.append((bool(negated), check, value))
    terms.sort(key=lambda term: term[1] is _FILTERS["fulfillment_status"])  # the costly one last: ANDed, same result
    return lambda order: all(check(order, value) != negated for negated, check, value in terms)


_FULFILLMENT_ORDER_FILTERS: dict[str, Callable[[dict, str], bool]] = {
    "status": lambda fo, v: fo["status"].lower() == v.lower(),
    "updated_at": lambda fo, v: _compare_times(fo["updated_at"], v),
    "id": lambda fo, v: legacy_id(fo["id"]) == int(v),
}


def fulfillment_order_predicate(query: str | None) -> Callable[[dict], bool]:
    """The fulfillmentOrders query's search, the subset orderbot uses; as for orders, unknown fields are ignored."""
    terms = []
    for negated, name, double, single, bare in _TERM.findall(query or ""):
        check = _FULFILLMENT_ORDER_FILTERS.get(name)
        if check is not None:
            terms.append((bool(negated), check, double or single or bare))
    return lambda fo: all(check(fo, value) != negated for negated, check, value in terms)


FULFILLMENT_ORDER_SORT_KEYS: dict[str, Callable[[dict], list]] = {
    "ID": lambda fo: [legacy_id(fo["id"])],
    "UPDATED_AT": lambda fo: [fo["updated_at"].timestamp(), legacy_id(fo["id"])],
}

ORDER_SORT_KEYS: dict[str, Callable[[dict], list]] = {
    "ID": lambda o: [legacy_id(o["id"])],
    "UPDATED_AT": lambda o: [o["updated_at"].timestamp(), legacy_id(o["id"])],
    "CREATED_AT": lambda o: [o["created_at"].timestamp(), legacy_id(o["id"])],
    "PROCESSED_AT": lambda o: [o["created_at"].timestamp(), legacy_id(o["id"])],
    "ORDER_NUMBER": lambda o: [int(o["name"].lstrip("#")), legacy_id(o["id"])],
}
