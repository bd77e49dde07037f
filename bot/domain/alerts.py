"""What an order's Slack alert should be, decided from its verdict. Pure: no I/O.

An order has at most one alert, a message that lives through these states and is updated in place:
`stuck` (buttons), `snoozed` and `waiting` (no buttons, orderbot is watching), `resolved` (no buttons, says who or
what resolved it). An order that becomes stuck again after its alert was resolved gets a new message, so the channel
notices. Before all of these, an alert may be `held`: a scan found more stuck orders than it alerts at once
(bot/domain/burst.py), so it has no message yet.
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal

from bot.domain.orders import Order, order_from_record, order_to_record, parse_time
from bot.domain.rules import REASON_TITLES, Verdict

AlertState = Literal["stuck", "snoozed", "waiting", "resolved"]
HELD = "held"  # an alert a scan held back (bot/domain/burst.py): the order is stuck, Slack has no message
Step = Literal["post", "hold", "update", "forget"]

_WATCHING = frozenset({"waiting", "scheduled", "unknown", "cancelling"})


def alert_state(verdict: Verdict) -> AlertState:
    if verdict.stuck:
        return "stuck"
    if verdict.status == "snoozed":
        return "snoozed"
    if verdict.status in _WATCHING:
        return "waiting"
    return "resolved"


def alert_fingerprint(order: Order, verdict: Verdict) -> str:
    """Changes when what the alert shows changes: not when only time passes (an alert is not re-sent each hour
    because "stuck for 3 hours" became "4 hours"; it shows the start time, which Slack renders itself)."""
    fulfillment_orders = tuple(
        (fo.id, fo.status, fo.request_status, fo.service, tuple(h.id for h in fo.holds), fo.remaining_quantity)
        for fo in order.fulfillment_orders or ()
    )
    tracking = tuple((f.id, f.status, tuple(t.number for t in f.tracking)) for f in order.fulfillments)
    shown = (
        alert_state(verdict),
        verdict.status,
        verdict.reason,
        verdict.severity,
        verdict.since,
        verdict.actions,
        verdict.other_reasons,
        verdict.due_at if verdict.status == "snoozed" else None,
        order.fulfillment_status,
        order.financial_status,
        order.customer.name if order.customer else None,
        order.total,
        fulfillment_orders,
        tracking,
    )
    return hashlib.sha1(repr(shown).encode(), usedforsecurity=False).hexdigest()


def plan_alert(
    known_state: str | None,
    posted: bool,
    known_fingerprint: str | None,
    state: AlertState,
    fingerprint: str,
    *,
    unsent: bool = False,
    stale: bool = False,
    restated: bool = False,
    hold: bool = False,
) -> Step | None:
    """What to do with an order's alert, given what orderbot last queued for it (`known_*`, None: no alert) and the
    new verdict. `posted`: Slack has the message, or a call posting it is in flight. `unsent`: a version of the
    alert is queued or in flight, so Slack may not show `known_state` yet. `stale`: its words ("for 3 days") were
    written long enough ago to be out of date. `restated`: a person acted on a resolved alert (deleted its order), and
    it says so. `hold`: a new alert would wait (bot/domain/burst.py): "hold" instead of "post"."""
    if known_state == HELD:  # no message yet
        if state != "stuck":
            return "forget"
        return None if hold else "post"
    if known_state is None or (known_state == "resolved" and not unsent and not (restated and state == "resolved")):
        if state != "stuck":
            return None
        return "hold" if hold else "post"
    if fingerprint == known_fingerprint:
        return "update" if stale and state == "stuck" and posted and not unsent else None
    if state == "resolved" and not posted:
        return "forget"  # resolved before Slack ever saw it: nothing to tell
    return "update"  # (a resolution Slack has not shown yet is replaced: still one message per order)


# Verdicts of orders Shopify can delete (archived or cancelled): their resolved alert offers Delete.
_DELETABLE = frozenset({"closed", "cancelled"})


def resolved_actions(verdict: Verdict) -> tuple[str, ...]:
    """The buttons a resolved alert offers: Delete for an archived or cancelled order, the only ones Shopify deletes."""
    return ("delete",) if verdict.status in _DELETABLE else ()


def stuck_again(known_state: str | None, state: AlertState) -> bool:
    """A snoozed or waiting alert turns stuck again: its thread hears of it (an edit alone notifies no one)."""
    return state == "stuck" and known_state in ("snoozed", "waiting")


def stuck_again_text(order: Order, verdict: Verdict) -> str:
    title = REASON_TITLES.get(verdict.reason or "", "stuck").lower()
    return f"{order.name} is stuck again ({title}). The buttons on the alert are back."


def inferred_resolution(order: Order, verdict: Verdict) -> str:
    """Who or what resolved an alert when no one clicked in Slack: read from the order itself."""
    if order.cancelled:
        return "The order was cancelled in Shopify."
    if order.closed:
        return "The order was archived in Shopify."
    if verdict.status == "ignored":
        return "The order was tagged to be ignored, so orderbot leaves it alone."
    if verdict.status == "test":
        return "It is a test order."
    shipped_by = next((f for f in reversed(order.fulfillments) if f.status == "SUCCESS"), None)
    if shipped_by is not None:
        service = next((fo.service for fo in order.fulfillment_orders or () if fo.service), None)
        numbers = [t.number for t in shipped_by.tracking if t.number]
        tracking = f" with tracking {numbers[0]}" if numbers else ""
        if service:
            return f"{service} shipped it{tracking}."
        return f"It was marked as fulfilled in Shopify{tracking}."
    return "Nothing is waiting to ship any more."


def alert_snapshot(order: Order, verdict: Verdict, resolution: str | None) -> dict[str, Any]:
    """What an alert shows, as data (JSON-safe): the order and its verdict as they were when the alert was queued,
    and what resolved it. The outbox queues this and the Slack side renders it when it sends, so the database holds
    no Slack markup and the words ("stuck for 3 days") are as of the moment Slack gets them."""
    return {
        "order": order_to_record(order),
        "verdict": {
            "status": verdict.status,
            "stuck": verdict.stuck,
            "reason": verdict.reason,
            "since": verdict.since.isoformat() if verdict.since else None,
            "due_at": verdict.due_at.isoformat() if verdict.due_at else None,
            "severity": verdict.severity,
            "explanation": verdict.explanation,
            "next_steps": list(verdict.next_steps),
            "actions": list(verdict.actions),
            "other_reasons": list(verdict.other_reasons),
        },
        "resolution": resolution,
    }


def from_alert_snapshot(snapshot: dict[str, Any]) -> tuple[Order, Verdict, str | None]:
    """The inverse of `alert_snapshot`."""
    shown = snapshot["verdict"]
    verdict = Verdict(
        status=shown["status"],
        stuck=shown["stuck"],
        reason=shown["reason"],
        since=parse_time(shown["since"]),
        due_at=parse_time(shown["due_at"]),
        severity=shown["severity"],
        explanation=shown["explanation"],
        next_steps=tuple(shown["next_steps"]),
        actions=tuple(shown["actions"]),
        other_reasons=tuple(shown["other_reasons"]),
    )
    return order_from_record(snapshot["order"]), verdict, snapshot["resolution"]
