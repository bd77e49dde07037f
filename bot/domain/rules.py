"""Why an order is stuck: `classify(order, now, policy) -> Verdict`. Pure: no I/O, `now` passed in (aware UTC).

The steps, each a small function:
1. exclusions, in order: cancelled, closed (archived), test, ignore tag, snoozed;
2. matches: every condition of DESIGN §1 found on the order, each with the time it started (`since`);
3. timing: a match is stuck once its threshold has passed (`due_at`), critical once it has passed twice;
4. the verdict: the first stuck reason in `REASONS` order (or, when none is stuck yet, the reason due first),
   with the others in `other_reasons`, an explanation, next steps, and the actions the fulfillment orders allow.

Where `since` comes from (the best the Order model carries):
- unfulfilled_overdue: the order's created_at (no processed_at in the model); a SCHEDULED FO's fulfill_at once passed.
- partially_fulfilled: the latest fulfillment's created_at (when the last part shipped); else the FO's updated_at.
- payment_pending: the order's created_at (its payment began then); for an AWAITING_PAYMENT hold, the FO's updated_at.
- out_of_stock, on_hold: the FO's updated_at (a hold carries no time of its own; placing it updates the FO).
- request_pending, request_rejected, and awaiting_tracking on an ACCEPTED request: the FO's updated_at (the last
  change of request status; the model has no request sentAt).
- awaiting_tracking on a fulfillment without a tracking number: the oldest such fulfillment's created_at.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import NamedTuple

from bot.domain.durations import parse_duration
from bot.domain.orders import FulfillmentOrder, Hold, Order

NOT_STUCK = ("ok", "cancelled", "closed", "test", "ignored", "snoozed", "scheduled", "waiting", "unknown")
SEVERITIES = ("none", "warning", "critical")
DEFAULT_IGNORE_TAG = "orderbot-ignore"
THRESHOLD_PREFIX = "threshold."

# An AUTHORIZED payment is usually void after 7 days; critical from a day before that.
AUTHORIZATION_LIFETIME = timedelta(days=7)
AUTHORIZATION_MARGIN = timedelta(days=1)


# FulfillmentHoldReason -> (why, in words; first step). AWAITING_PAYMENT and INVENTORY_OUT_OF_STOCK are reasons of
# their own (payment_pending, out_of_stock).
_HOLDS = {
    "HIGH_RISK_OF_FRAUD": ("it may be fraudulent", "Review the fraud analysis before shipping"),
    "INCORRECT_ADDRESS": ("the shipping address looks wrong", "Confirm the address with the customer"),
    "UNKNOWN_DELIVERY_DATE": ("the delivery date is not known yet", "Agree a delivery date with the customer"),
    "ONLINE_STORE_POST_PURCHASE_CROSS_SELL": (
        "the customer may still add a post-purchase offer",
        "Check the post-purchase offer has finished",
    ),
    "AWAITING_RETURN_ITEMS": ("it waits for returned items", "Check whether the return has arrived"),
    "OTHER": ("someone put it on hold", "Find out who held it and why"),
}
_UNKNOWN_HOLD = ("of a hold Shopify gave no reason for", "Find out who held it and why")

# displayFinancialStatus -> (sentence start, first step).
_PAYMENTS = {
    "PENDING": ("Payment has been pending", "Check the payment status in Shopify"),
    "AUTHORIZED": (
        "Payment has been authorized but not captured",
        "Capture the payment before the authorization expires",
    ),
    "PARTIALLY_PAID": ("The order has been only partly paid", "Collect the outstanding balance"),
}
_HELD_FOR_PAYMENT = ("Shipping has been on hold awaiting payment", "Check the payment status in Shopify")

_REFUSED = {
    "REJECTED": "rejected the fulfillment request",
    "CANCELLATION_REJECTED": "refused to cancel the fulfillment request",
}
_PENDING_REQUEST = {"SUBMITTED": "fulfillment request", "CANCELLATION_REQUESTED": "cancellation request"}
_UNTRACKED = {"event": "Items were marked as shipped", "source": "your shipping app or carrier"}
# FulfillmentHoldReason -> reason id, where the hold is not simply on_hold.
_HOLD_REASONS = {"INVENTORY_OUT_OF_STOCK": "out_of_stock", "AWAITING_PAYMENT": "payment_pending"}

_DONE_FO = frozenset({"CLOSED", "CANCELLED"})
_DONE_ORDER = frozenset({"FULFILLED", "RESTOCKED"})
_LIVE_FULFILLMENT = frozenset({"SUCCESS", "OPEN", "PENDING"})


class _Match(NamedTuple):
    """A condition found on the order, and when it started. The words come later, for the chosen reason only."""

    reason: str
    since: datetime
    fo: FulfillmentOrder | None = None
    hold: Hold | None = None
    due_at: datetime | None = None  # replaces since + threshold (an FO's fulfillBy)
    critical_at: datetime | None = None  # critical sooner than twice the threshold (an authorization's expiry)


# --- wording: the facts that fill each reason's templates ---------------------------------------------------------


def _service(match: _Match) -> str:
    return (match.fo.service if match.fo else None) or "the fulfillment service"


def _at(match: _Match, word: str) -> str:
    return f" {word} {match.fo.location}" if match.fo and match.fo.location else ""


def _notes(match: _Match) -> str:
    return f' (note: "{match.hold.notes}")' if match.hold and match.hold.notes else ""


def _rejected_facts(order: Order, match: _Match, now: datetime) -> dict[str, str]:
    fo = match.fo
    refused = "gave up on the order" if fo.status == "INCOMPLETE" else _REFUSED[fo.request_status]
    return {"service": _service(match), "refused": refused}


def _payment_facts(order: Order, match: _Match, now: datetime) -> dict[str, str]:
    if match.hold:
        payment, pay_step = _HELD_FOR_PAYMENT
        return {"payment": payment, "pay_step": pay_step, "detail": _notes(match)}
    payment, pay_step = _PAYMENTS[order.financial_status]
    detail = ""
    if order.financial_status == "AUTHORIZED":
        expires = match.since + AUTHORIZATION_LIFETIME
        left = f"capture it within {_in_words(expires - now)}" if expires > now else "it has probably expired"
        detail = f"; authorizations usually expire after 7 days, so {left}"
    return {"payment": payment, "pay_step": pay_step, "detail": detail}


def _out_of_stock_facts(order: Order, match: _Match, now: datetime) -> dict[str, str]:
    return {"at": _at(match, "at"), "notes": _notes(match)}


def _on_hold_facts(order: Order, match: _Match, now: datetime) -> dict[str, str]:
    hold, step = _HOLDS.get(match.hold.reason, _UNKNOWN_HOLD) if match.hold else _UNKNOWN_HOLD
    return {"at": _at(match, "at"), "hold": hold, "hold_step": step, "notes": _notes(match)}


def _unfulfilled_facts(order: Order, match: _Match, now: datetime) -> dict[str, str]:
    fo = match.fo
    at = _at(match, "from")
    if fo.service:
        todo, ship_step = f"has not been sent to {fo.service} yet", f"Request fulfillment from {fo.service}"
    else:
        todo, ship_step = f"nobody has shipped it{at} yet", f"Ship it{at} and add the tracking number"
    return {
        "started": "was due to ship" if fo.status == "SCHEDULED" else "was placed",
        "todo": todo,
        "ship_step": ship_step,
        "deadline": f" (ship by {_when(fo.fulfill_by)})" if fo.fulfill_by else "",
    }


def _partial_facts(order: Order, match: _Match, now: datetime) -> dict[str, str]:
    remaining = match.fo.remaining_quantity
    count = f" ({remaining} item{'s' if remaining != 1 else ''})" if remaining else ""
    return {"at": _at(match, "from"), "count": count}


def _pending_facts(order: Order, match: _Match, now: datetime) -> dict[str, str]:
    return {"service": _service(match), "request": _PENDING_REQUEST[match.fo.request_status]}


def _tracking_facts(order: Order, match: _Match, now: datetime) -> dict[str, str]:
    if match.fo is None:
        return _UNTRACKED
    service = _service(match)
    return {"event": f"{service[0].upper()}{service[1:]} accepted the order", "source": service}


def _in_words(span: timedelta) -> str:
    """A span as a shop worker says it, rounded down: minutes under an hour, hours under three days, then days."""
    minutes = max(int(span.total_seconds()) // 60, 0)
    if minutes < 60:
        count, unit = minutes, "minute"
    elif minutes < 72 * 60:
        count, unit = minutes // 60, "hour"
    else:
        count, unit = minutes // 1440, "day"
    return f"{count} {unit}" if count == 1 else f"{count} {unit}s"


def _when(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%d %b %H:%M} UTC"


@dataclass(frozen=True, slots=True)
class _Spec:
    """One row per reason. Templates are filled from the match's facts plus `age` (how long the condition lasts)."""

    title: str
    threshold: timedelta
    explanation: str
    next_steps: tuple[str, ...]
    actions: tuple[str, ...]  # reason-specific orderbot actions, before the generic ones
    facts: Callable[[Order, _Match, datetime], Mapping[str, str]]


# In priority order (REASONS): what a person must act on first comes first. A refusal nobody else will fix, money
# that may be lost, stock, other holds, then work the store itself owes (shipping, the rest of a shipment), and last
# chasing an app that has the order.
_SPECS: dict[str, _Spec] = {
    "request_rejected": _Spec(
        "Request rejected",
        timedelta(0),
        "{service} {refused} {age} ago.",
        (
            "Ask {service} what went wrong",
            "Ship it yourself or request fulfillment again",
            "Tell the customer about the delay",
        ),
        ("fulfill", "request_fulfillment"),
        _rejected_facts,
    ),
    "payment_pending": _Spec(
        "Payment pending",
        timedelta(hours=72),
        "{payment} for {age}{detail}.",
        ("{pay_step}", "Contact the customer if the payment failed", "Cancel the order if it will not be paid"),
        (),
        _payment_facts,
    ),
    "out_of_stock": _Spec(
        "Out of stock",
        timedelta(hours=24),
        "This order has been on hold for {age} because items are out of stock{at}{notes}.",
        (
            "Restock, or move the order to a location that has stock",
            "Release the hold once it can ship",
            "Tell the customer about the delay",
        ),
        ("release_hold",),
        _out_of_stock_facts,
    ),
    "on_hold": _Spec(
        "On hold",
        timedelta(hours=24),
        "This order has been on hold{at} for {age} because {hold}{notes}.",
        ("{hold_step}", "Release the hold once it is sorted", "Tell the customer if it will be late"),
        ("release_hold",),
        _on_hold_facts,
    ),
    "unfulfilled_overdue": _Spec(
        "Unfulfilled",
        timedelta(hours=48),
        "This order {started} {age} ago and {todo}{deadline}.",
        ("{ship_step}", "Tell the customer if it will be late"),
        ("fulfill", "request_fulfillment"),
        _unfulfilled_facts,
    ),
    "partially_fulfilled": _Spec(
        "Partially fulfilled",
        timedelta(hours=72),
        "Part of this order shipped {age} ago, but the rest{count} has not shipped{at}.",
        ("Ship the remaining items{at}", "Tell the customer what is still to come"),
        ("fulfill", "request_fulfillment"),
        _partial_facts,
    ),
    "request_pending": _Spec(
        "Request pending",
        timedelta(hours=24),
        "{service} has not answered the {request} for {age}.",
        (
            "Check that {service} received the order",
            "Contact {service} support if it is not synced",
            "Cancel the request and ship it yourself if needed",
        ),
        ("cancel_request",),
        _pending_facts,
    ),
    "awaiting_tracking": _Spec(
        "Awaiting tracking",
        timedelta(hours=72),
        "{event} {age} ago, but no tracking number has arrived.",
        (
            "Check {source} for the tracking number",
            "Add tracking and mark as fulfilled",
            "Tell the customer about the delay",
        ),
        ("fulfill", "cancel_request"),
        _tracking_facts,
    ),
}
REASONS = tuple(_SPECS)
REASON_TITLES: Mapping[str, str] = MappingProxyType({reason: _SPECS[reason].title for reason in REASONS})
DEFAULT_THRESHOLDS: Mapping[str, timedelta] = MappingProxyType({reason: _SPECS[reason].threshold for reason in REASONS})

# Action id -> the FulfillmentOrderAction that must be supported by one of the verdict's fulfillment orders.
_FO_ACTIONS = {
    "fulfill": "CREATE_FULFILLMENT",
    "request_fulfillment": "REQUEST_FULFILLMENT",
    "cancel_request": "REQUEST_CANCELLATION",
    "release_hold": "RELEASE_HOLD",
}


@dataclass(frozen=True, slots=True)
class Verdict:
    status: str  # a reason id when stuck, else one of NOT_STUCK
    stuck: bool = False
    reason: str | None = None  # set when stuck or waiting
    since: datetime | None = None  # when the condition started
    due_at: datetime | None = None  # when it became (or becomes) stuck; for snoozed/scheduled, when to look again
    severity: str = "none"  # one of SEVERITIES
    explanation: str = ""
    next_steps: tuple[str, ...] = ()
    actions: tuple[str, ...] = ()  # orderbot action ids, in the order the buttons should appear
    other_reasons: tuple[str, ...] = ()  # other reasons in the same state (stuck, or waiting), in REASONS order

    def stuck_for(self, now: datetime) -> timedelta | None:
        """How long the stuck condition has lasted (now - since); None when not stuck."""
        return now - self.since if self.stuck and self.since is not None else None


@dataclass(frozen=True, slots=True)
class Policy:
    thresholds: Mapping[str, timedelta] = field(default_factory=lambda: DEFAULT_THRESHOLDS)
    ignore_tag: str = DEFAULT_IGNORE_TAG
    include_test_orders: bool = False

    def __post_init__(self) -> None:
        unknown = sorted(set(self.thresholds) - set(REASONS))
        if unknown:
            raise ValueError(f"unknown reason {unknown[0]!r} in thresholds; use one of {', '.join(REASONS)}")
        negative = [reason for reason, value in self.thresholds.items() if value < timedelta(0)]
        if negative:
            raise ValueError(f"the threshold for {negative[0]} must not be negative")
        if not self.ignore_tag.strip():
            raise ValueError("ignore_tag must not be empty")
        object.__setattr__(self, "thresholds", MappingProxyType({**DEFAULT_THRESHOLDS, **self.thresholds}))

    @classmethod
    def from_settings(cls, settings: Mapping[str, str]) -> Policy:
        """Read `threshold.<reason>` ("48h"; "0" for at once), `ignore_tag`, `include_test_orders` ("true"/"false").

        Other keys are left to their owners. Raises ValueError naming the key for a bad value.
        """
        thresholds = {}
        for key, value in settings.items():
            if key.startswith(THRESHOLD_PREFIX):
                reason = key.removeprefix(THRESHOLD_PREFIX)
                if reason not in DEFAULT_THRESHOLDS:
                    raise ValueError(f"{key}: unknown reason {reason!r}; use one of {', '.join(REASONS)}")
                thresholds[reason] = _parse_threshold(key, value)
        ignore_tag = settings.get("ignore_tag", DEFAULT_IGNORE_TAG).strip()
        if not ignore_tag:
            raise ValueError("ignore_tag: must not be empty")
        return cls(thresholds, ignore_tag, _parse_bool("include_test_orders", settings.get("include_test_orders")))

    def to_settings(self) -> dict[str, str]:
        """The inverse of `from_settings`: every key, exactly."""
        settings = {THRESHOLD_PREFIX + reason: _format_threshold(self.thresholds[reason]) for reason in REASONS}
        settings["ignore_tag"] = self.ignore_tag
        settings["include_test_orders"] = "true" if self.include_test_orders else "false"
        return settings


_ZERO = re.compile(r"^\s*0+\s*[smhdw]?\s*$", re.IGNORECASE)
_BOOLS = {"true": True, "yes": True, "on": True, "1": True, "false": False, "no": False, "off": False, "0": False}


def _parse_threshold(key: str, value: str) -> timedelta:
    if _ZERO.match(value):  # parse_duration refuses zero; a threshold of zero means "stuck at once"
        return timedelta(0)
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise ValueError(f"{key}: {exc}") from None


def _format_threshold(value: timedelta) -> str:
    """Exact, in the largest unit that divides it: 48h, 90m, 45s."""
    seconds = int(value.total_seconds())
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _parse_bool(key: str, value: str | None) -> bool:
    if value is None:
        return False
    try:
        return _BOOLS[value.strip().lower()]
    except KeyError:
        raise ValueError(f"{key}: {value!r} is not true or false") from None


# --- matching ---------------------------------------------------------------------------------------------------


def _matches(order: Order, now: datetime) -> list[_Match]:
    found = []
    if order.financial_status in _PAYMENTS and order.fulfillment_status not in _DONE_ORDER:
        expires = order.created_at + AUTHORIZATION_LIFETIME if order.financial_status == "AUTHORIZED" else None
        found.append(
            _Match("payment_pending", order.created_at, critical_at=expires and expires - AUTHORIZATION_MARGIN)
        )
    if order.fulfillments:
        untracked = [f.created_at for f in order.fulfillments if f.status in _LIVE_FULFILLMENT and not f.has_tracking]
        if untracked:
            found.append(_Match("awaiting_tracking", min(untracked)))
    for fo in order.fulfillment_orders or ():
        if fo.status in _DONE_FO or _scheduled_later(fo, now):
            continue
        if fo.status == "ON_HOLD":
            found.extend(
                _Match(_HOLD_REASONS.get(hold.reason, "on_hold") if hold else "on_hold", fo.updated_at, fo, hold)
                for hold in fo.holds or (None,)
            )
        else:
            found.append(_fulfillment_order_match(order, fo))
    return found


def _fulfillment_order_match(order: Order, fo: FulfillmentOrder) -> _Match:
    """An FO that is not done, not on hold, and not scheduled for later: by its request status."""
    if fo.status == "INCOMPLETE" or fo.request_status in _REFUSED:
        return _Match("request_rejected", fo.updated_at, fo)
    if fo.request_status in _PENDING_REQUEST:
        return _Match("request_pending", fo.updated_at, fo)
    if fo.request_status == "ACCEPTED":
        return _Match("awaiting_tracking", fo.updated_at, fo)
    # Nobody has it (UNSUBMITTED, CANCELLATION_ACCEPTED, CLOSED): the rest of a partial shipment, or not shipped.
    if _partially_shipped(order, fo):
        shipped = [f.created_at for f in order.fulfillments if f.status in _LIVE_FULFILLMENT]
        return _Match("partially_fulfilled", max(shipped, default=fo.updated_at), fo)
    since = fo.fulfill_at if fo.status == "SCHEDULED" and fo.fulfill_at else order.created_at
    return _Match("unfulfilled_overdue", since, fo, due_at=fo.fulfill_by)


def _partially_shipped(order: Order, fo: FulfillmentOrder) -> bool:
    return (
        order.fulfillment_status == "PARTIALLY_FULFILLED"
        or fo.status == "IN_PROGRESS"
        or any(line.remaining < line.total for line in fo.lines)
    )


def _scheduled_later(fo: FulfillmentOrder, now: datetime) -> bool:
    return fo.status == "SCHEDULED" and (fo.fulfill_at is None or fo.fulfill_at > now)


def _when(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%d %b %H:%M} UTC"


# --- the verdict ------------------------------------------------------------------------------------------------


def classify(order: Order, now: datetime, policy: Policy, snoozed_until: datetime | None = None) -> Verdict:
    """Why `order` is stuck (or why not) at `now`."""
    excluded = _exclusion(order, now, policy, snoozed_until)
    if excluded is not None:
        return excluded
    matches = _matches(order, now)
    if matches:
        return _reason_verdict(order, now, matches, policy.thresholds)
    scheduled = [fo.fulfill_at for fo in order.fulfillment_orders or () if _scheduled_later(fo, now)]
    if scheduled:
        dates = [d for d in scheduled if d is not None]
        when = f" for {_when(min(dates))}" if dates else ""
        return Verdict("scheduled", due_at=min(dates, default=None), explanation=f"Shipping is scheduled{when}.")
    if order.fulfillment_orders is None and order.fulfillment_status not in _DONE_ORDER:
        return Verdict(
            "unknown",
            explanation="Its fulfillment orders are not fetched yet, so orderbot cannot tell whether it is stuck.",
        )
    return Verdict("ok", explanation="Nothing is waiting to ship.")


def _exclusion(order: Order, now: datetime, policy: Policy, snoozed_until: datetime | None) -> Verdict | None:
    if order.cancelled:
        return Verdict("cancelled", explanation="The order is cancelled.")
    if order.closed:
        return Verdict("closed", explanation="The order is archived.")
    if order.test and not policy.include_test_orders:
        return Verdict("test", explanation="This is a test order, and test orders are not checked.")
    if order.has_tag(policy.ignore_tag):
        return Verdict("ignored", explanation=f"The order is tagged {policy.ignore_tag}, so orderbot leaves it alone.")
    if snoozed_until is not None and snoozed_until > now:
        return Verdict(
            "snoozed", due_at=snoozed_until, explanation=f"Snoozed for another {_in_words(snoozed_until - now)}."
        )
    return None


def _reason_verdict(order: Order, now: datetime, matches: list[_Match], thresholds: Mapping[str, timedelta]) -> Verdict:
    first: dict[str, tuple[datetime, datetime, _Match]] = {}  # per reason: (due_at, critical_at) of the match due first
    for match in matches:
        threshold = thresholds[match.reason]
        due_at = match.due_at or match.since + threshold
        known = first.get(match.reason)
        if known is None or due_at < known[0]:
            critical_at = due_at + threshold
            if match.critical_at is not None and match.critical_at < critical_at:
                critical_at = match.critical_at
            first[match.reason] = (due_at, critical_at, match)
    found = [reason for reason in REASONS if reason in first]
    stuck = [reason for reason in found if first[reason][0] <= now]
    if stuck:
        primary, others = stuck[0], tuple(stuck[1:])
    else:  # the reason due first (min keeps the first of equals, so priority breaks ties)
        primary = min(found, key=lambda reason: first[reason][0])
        others = tuple(reason for reason in found if reason != primary)
    due_at, critical_at, match = first[primary]
    spec = _SPECS[primary]
    facts = {**spec.facts(order, match, now), "age": _in_words(now - match.since)}
    explanation = spec.explanation.format_map(facts)
    if not stuck:
        explanation = f"{explanation[:-1]}; it counts as stuck in {_in_words(due_at - now)} if nothing changes."
    fos = [m.fo for m in matches if m.reason == primary and m.fo is not None] or order.fulfillment_orders or ()
    return Verdict(
        status=primary if stuck else "waiting",
        stuck=bool(stuck),
        reason=primary,
        since=match.since,
        due_at=due_at,
        severity=("critical" if now >= critical_at else "warning") if stuck else "none",
        explanation=explanation,
        next_steps=tuple([step.format_map(facts) for step in spec.next_steps]),
        actions=_actions(order, spec.actions, fos, bool(stuck)),
        other_reasons=others,
    )


def _actions(order: Order, specific: tuple[str, ...], fos: Iterable[FulfillmentOrder], stuck: bool) -> tuple[str, ...]:
    """The reason's own actions that the FOs support, then the generic ones that apply."""
    actions = []
    if specific:
        supported = {action for fo in fos for action in fo.supported_actions}
        actions = [action for action in specific if _FO_ACTIONS[action] in supported]
    if order.customer and order.customer.email:
        actions.append("notify_customer")
    if stuck:
        actions.append("snooze")
    if not order.closed:
        actions.append("archive")
    if not order.cancelled:
        actions.append("cancel_order")
    return tuple(actions)
