"""Block Kit for bulk runs: the preview (an ephemeral answer to `/orders`), the progress message in the alert channel
(updated in place, with a Stop button) and the summary it ends as. Pure: no I/O, `now` passed in.

Buttons carry the run id as their value: `bulk_confirm` and `bulk_cancel` on the preview, `bulk_stop` on the progress.
A bulk cancel's preview lists each order with its amount and payment state, and its Confirm is `bulk_form`, which
opens the run's one form (modal_blocks.bulk_cancel_modal); its progress and summary count the orders Shopify was asked
to cancel and those it has cancelled apart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from slack_sdk.models.blocks import ActionsBlock, Block, ButtonElement, PlainTextObject

from bot.domain.action_words import REFUND_CHOICES
from bot.domain.bulk import CONFIRM_BY_TYPING_OVER, CancelTally, Group, amounts, payment_state, payment_states
from bot.domain.durations import format_duration
from bot.domain.orders import Order
from bot.domain.rules import REASON_TITLES
from bot.slack.blocks import admin_url, confirm, context, message_payload, safe, section

BULK_CONFIRM = "bulk_confirm"
BULK_CANCEL = "bulk_cancel"
BULK_STOP = "bulk_stop"
BULK_FORM = "bulk_form"  # a bulk cancel's Confirm: opens the form whose choices apply to every order
PREVIEW_ORDERS = 10  # orders listed in a preview
CANCEL_PREVIEW_ORDERS = 100  # orders listed in a bulk cancel's preview, each with its amount and payment state
_LIST_SECTION = 2800  # characters of order lines in one section (Slack takes 3000)
GROUP_NAMES = 5  # order names shown per reason in a summary
GROUPS_SHOWN = 8  # reasons shown per kind in a summary


@dataclass(frozen=True, slots=True)
class _Words:
    verb: str  # "Archive", on the Confirm button
    running: str  # "Archiving"
    done: str  # "archived"
    what: str  # what happens to each order, in a sentence or two


_WORDS = {
    "archive": _Words(
        "Archive", "Archiving", "archived", "Each order is archived in Shopify; its fulfillment status does not change."
    ),
    "unarchive": _Words(
        "Unarchive", "Unarchiving", "unarchived", "Each order is unarchived (opened again) in Shopify."
    ),
    "fulfill": _Words(
        "Fulfil",
        "Fulfilling",
        "marked as fulfilled",
        "What is left of each order is marked as fulfilled with the tracking number its fulfillment app already "
        "sent; customers are not emailed. Orders with no tracking number known are skipped.",
    ),
    "request_fulfillment": _Words(
        "Request",
        "Requesting fulfillment of",
        "requested from their fulfillment service",
        "Each order's open fulfillment is requested from its fulfillment service.",
    ),
    "cancel_request": _Words(
        "Cancel requests of",
        "Cancelling the fulfillment requests of",
        "asked to be cancelled",
        "Each fulfillment service is asked to cancel its request; a service that has started may still ship.",
    ),
    "unfulfill": _Words(
        "Unfulfil",
        "Unfulfilling",
        "unfulfilled",
        "Each order's latest shipment is cancelled, so its items are unfulfilled again. Tracking already sent to "
        "customers stays with them.",
    ),
    "notify_customer": _Words(
        "Email customers of",
        "Emailing the customers of",
        "emailed about",
        "Each customer gets the delay email that fits why their order is late, and the order is tagged "
        "orderbot-notified. A customer emailed in the last 10 minutes is skipped.",
    ),
    "snooze": _Words(
        "Snooze", "Snoozing", "snoozed", "Each order is snoozed for {for}; orderbot looks at it again then."
    ),
    "delete": _Words(
        "Delete",
        "Deleting",
        "deleted",
        "Each archived or cancelled order is deleted in Shopify, for good: this cannot be undone. Open orders are "
        "skipped. orderbot's log keeps what was done to them.",
    ),
    "cancel_order": _Words(
        "Cancel",
        "Cancelling",
        "cancelled",
        "Each order is cancelled in Shopify: this cannot be undone. Confirm opens one form for all of them: the "
        "reason, the refund (to the original payment method, as store credit, or none), restock, and whether to "
        "email each customer. Orders already cancelled are skipped.",
    ),
}


def words(action: str, inputs: Mapping[str, Any] | None = None) -> _Words:
    found = _WORDS[action]
    return _Words(found.verb, found.running, found.done, found.what.format_map(dict(inputs or {})))


def _plural(count: int, noun: str = "order") -> str:
    return f"{count} {noun}{'s' if count != 1 else ''}"


def _names(names: Sequence[str], limit: int = GROUP_NAMES) -> str:
    shown = ", ".join(safe(name) for name in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


# --- preview ------------------------------------------------------------------------------------------------------


def preview_message(
    *,
    action: str,
    inputs: Mapping[str, Any],
    command: str,
    orders: Sequence[tuple[Order, Mapping[str, Any] | None]],
    total: int,
    missing: Sequence[str],
    refused: Sequence[Group],
    run_id: int | None,
    may_confirm: bool,
    channel: str,
    shop: str,
    now: datetime,
) -> dict:
    """What `/orders <action> <selection>` would do: how many orders, the first ten, what happens to each, the names
    orderbot does not know, the orders it would refuse (`refused`, e.g. bulk fulfil without tracking) and Confirm and
    Cancel for an admin (`run_id`: the stored run; None when nothing would run)."""
    said = words(action, inputs)
    heading = f"*/orders {safe(command, 200)}*"
    blocks: list[Block] = []
    if total == 0:
        blocks.append(section(f"{heading}\nNo orders match, so nothing would change."))
    elif action == "cancel_order":
        blocks.extend(_cancel_list(heading, orders, total, shop))
        blocks.append(section(f"*What happens:* {said.what}"))
    else:
        first = [_preview_line(order, verdict, shop, now) for order, verdict in orders[:PREVIEW_ORDERS]]
        more = f"\n…and {total - len(first)} more." if total > len(first) else ""
        blocks.append(
            section(f"{heading}\n{said.running} *{_plural(total)}*, oldest first:\n" + "\n".join(first) + more)
        )
        blocks.append(section(f"*What happens:* {said.what}"))
    notes = []
    if missing:
        notes.append(f"orderbot does not know {_names(missing)}: check the numbers, or run `/orders scan` first.")
    for group in refused:
        notes.append(f"{_plural(len(group.names))} will be skipped, {safe(group.reason, 200)}: {_names(group.names)}.")
    if notes:
        blocks.append(context(notes))
    if run_id is not None and may_confirm and action == "cancel_order":
        typed = f" You will type {total} to confirm." if total > CONFIRM_BY_TYPING_OVER else ""
        blocks.append(
            ActionsBlock(
                elements=[
                    ButtonElement(
                        action_id=BULK_FORM,
                        text=PlainTextObject(text=f"{said.verb} {_plural(total)}…"),
                        value=str(run_id),
                        style="danger",
                    ),
                    ButtonElement(action_id=BULK_CANCEL, text=PlainTextObject(text="Not now"), value=str(run_id)),
                ]
            )
        )
        blocks.append(context([f"Nothing changes until the form is sent.{typed} Progress will be in <#{channel}>."]))
    elif run_id is not None and may_confirm:
        confirm_text = f"{said.running} {_plural(total)} cannot be stopped half-way except with Stop. Go ahead?"
        blocks.append(
            ActionsBlock(
                elements=[
                    ButtonElement(
                        action_id=BULK_CONFIRM,
                        text=PlainTextObject(text=f"{said.verb} {_plural(total)}"),
                        value=str(run_id),
                        style="primary",
                        confirm=confirm(f"{said.running} {_plural(total)}?", confirm_text, "Go ahead", "Not now"),
                    ),
                    ButtonElement(action_id=BULK_CANCEL, text=PlainTextObject(text="Cancel"), value=str(run_id)),
                ]
            )
        )
        blocks.append(context([f"Progress and the summary will be in <#{channel}>."]))
    elif run_id is not None:
        blocks.append(context(["Only orderbot admins can run an action on many orders. Ask an admin to run it."]))
    text = f"{said.running} {_plural(total)}: preview" if total else "No orders match"
    return message_payload(text, blocks)


def _preview_line(order: Order, verdict: Mapping[str, Any] | None, shop: str, now: datetime) -> str:
    link = f"<{admin_url(order, shop)}|{safe(order.name)}>"
    if verdict is not None and verdict.get("stuck") and verdict.get("since"):
        title = REASON_TITLES.get(verdict.get("reason") or "", "stuck")
        lasted = format_duration(now - datetime.fromisoformat(verdict["since"]))
        return f"• {link} · {title} for {lasted}"
    state = "archived" if order.closed else order.fulfillment_status.replace("_", " ").lower()
    return f"• {link} · {state} · {format_duration(now - order.created_at)} old"


def _cancel_list(
    heading: str, orders: Sequence[tuple[Order, Mapping[str, Any] | None]], total: int, shop: str
) -> list[Block]:
    """A bulk cancel's orders, each with its amount and payment state (the first CANCEL_PREVIEW_ORDERS, in sections
    Slack takes), and what they add up to."""
    listed = [order for order, _ in orders[:CANCEL_PREVIEW_ORDERS]]
    states = ", ".join(f"{count} {state}" for state, count in payment_states(order for order, _ in orders))
    together = amounts(order.total for order, _ in orders)
    blocks: list[Block] = [
        section(f"{heading}\nCancelling *{_plural(total)}*, together {safe(together)} ({safe(states)}), oldest first:")
    ]
    lines: list[str] = []
    for order in listed:
        line = (
            f"• <{admin_url(order, shop)}|{safe(order.name)}> · {safe(order.total.amount)} {safe(order.total.currency)}"
            f" · {payment_state(order)} · {order.fulfillment_status.replace('_', ' ').lower()}"
        )
        if lines and sum(len(x) + 1 for x in lines) + len(line) > _LIST_SECTION:
            blocks.append(section("\n".join(lines)))
            lines = []
        lines.append(line)
    if total > len(listed):
        lines.append(f"…and {total - len(listed)} more.")
    blocks.append(section("\n".join(lines)))
    return blocks


def cancel_choices(inputs: Mapping[str, Any]) -> str:
    """A bulk cancel's choices, in one line: "Reason customer · refunded as store credit · restocked · customers
    emailed"."""
    refund = str(REFUND_CHOICES.get(str(inputs.get("refund")), "No refund"))
    return " · ".join(
        (
            f"Reason {str(inputs.get('reason') or 'other').lower()}",
            refund[0].lower() + refund[1:],
            "restocked" if inputs.get("restock") else "not restocked",
            "customers emailed" if inputs.get("notify_customer") else "customers not emailed",
        )
    )


def preview_closed(text: str) -> dict:
    """What replaces the preview after Confirm or Cancel."""
    return message_payload(text, [section(text)])


# --- progress and summary -----------------------------------------------------------------------------------------


def progress_message(
    *,
    action: str,
    inputs: Mapping[str, Any],
    run_id: int,
    total: int,
    counts: Mapping[str, int],
    confirmed_by: str,
    tally: CancelTally | None = None,
    stopping: bool = False,
) -> dict:
    """The run's message while it runs (`tally`: a bulk cancel's orders requested and cancelled)."""
    said = words(action, inputs)
    done = f"{counts.get('done', 0)} done"
    if tally is not None:
        done = f"{tally.requested} requested, {tally.cancelled} cancelled"
    skipped, failed = counts.get("skipped", 0), counts.get("failed", 0)
    line = f"{said.running} {_plural(total)}: {done}, {skipped} skipped, {failed} failed"
    started = f"Started by <@{confirmed_by}>."
    if tally is not None:
        started = f"{cancel_choices(inputs)}. {started}"
    if stopping:
        blocks: list[Block] = [
            section(f"{line}\n:octagonal_sign: Stopping after the orders in progress…"),
            context([started]),
        ]
        return message_payload(line, blocks)
    stop = ButtonElement(
        action_id=BULK_STOP,
        text=PlainTextObject(text="Stop"),
        value=str(run_id),
        style="danger",
        confirm=confirm(
            "Stop this run?", "Orders already done stay done; the rest are left as they are.", "Stop", "Keep going"
        ),
    )
    blocks = [section(f":hourglass_flowing_sand: {line}"), context([started]), ActionsBlock(elements=[stop])]
    return message_payload(line, blocks)


def summary_message(
    *,
    action: str,
    inputs: Mapping[str, Any],
    command: str,
    total: int,
    counts: Mapping[str, int],
    skipped: Sequence[Group],
    failed: Sequence[Group],
    confirmed_by: str,
    stopped_by: str | None,
    tally: CancelTally | None = None,
) -> dict:
    """The end of a run: what was done, skipped and why, failed and why, and what to do next (`tally`: a bulk
    cancel's orders requested and how Shopify settled them so far; the summary is drawn again as they settle)."""
    said = words(action, inputs)
    done, not_run = counts.get("done", 0), counts.get("pending", 0)
    if stopped_by:
        head = f":octagonal_sign: <@{stopped_by}> stopped `/orders {safe(command, 200)}`"
    else:
        head = f":white_check_mark: Finished `/orders {safe(command, 200)}`"
    if tally is not None:
        blocks: list[Block] = _settled_sections(head, total, tally)
    else:
        blocks = [section(f"{head}: {_plural(done)} {said.done} of {total}.")]
    if skipped:
        blocks.append(section(_groups(f"Skipped {counts.get('skipped', 0)}", skipped)))
    if failed:
        blocks.append(section(_groups(f"Failed {counts.get('failed', 0)}", failed)))
    after = []
    if not_run:
        after.append(f"{_plural(not_run)} not started because of the stop; nothing changed on them.")
    if failed:
        after.append("Fix what Shopify said and run the command again: orders already done are skipped.")
    if tally is not None:
        after.append(f"{cancel_choices(inputs)}.")
    after.append(f"Confirmed by <@{confirmed_by}>. Each order's change is in `/orders log`.")
    blocks.append(context(after))
    done_words = f"{done} done" if tally is None else f"{tally.requested} requested, {tally.cancelled} cancelled"
    text = f"{said.running} {_plural(total)}: {done_words}, {counts.get('skipped', 0)} skipped, " + (
        f"{counts.get('failed', 0)} failed" + (f", {not_run} not started" if not_run else "")
    )
    return message_payload(text, blocks)


_SETTLED_WORDS = {  # how a requested cancellation settled, when not cancelled: (title, what to do)
    "not_cancelled": ("Not cancelled", "Shopify ran the cancellation and left the order open; check it in Shopify."),
    "unconfirmed": ("Not confirmed", "Shopify did not say within 10 minutes; check it in Shopify."),
    "gone": ("No longer in Shopify", "Deleted meanwhile; nothing more to do."),
}


def _settled_sections(head: str, total: int, tally: CancelTally) -> list[Block]:
    """A bulk cancel's requested orders, and how Shopify has settled them so far."""
    if tally.waiting:
        first = (
            f"{head}: Shopify was asked to cancel {_plural(tally.requested)} of {total}; {tally.cancelled} cancelled "
            f"so far.\n:hourglass_flowing_sand: Shopify is still cancelling {tally.waiting}; this message updates "
            "as they complete."
        )
    else:
        first = f"{head}: {_plural(tally.cancelled)} cancelled of {total}."
    blocks: list[Block] = [section(first)]
    for outcome, (title, why) in _SETTLED_WORDS.items():
        names = tally.settled.get(outcome) or ()
        if names:
            blocks.append(section(f"*{title} {len(names)}*: {_names(names)}. {why}"))
    return blocks


def _groups(title: str, groups: Sequence[Group]) -> str:
    lines = [f"• {safe(g.reason, 300)} ({len(g.names)}): {_names(g.names)}" for g in groups[:GROUPS_SHOWN]]
    if len(groups) > GROUPS_SHOWN:
        lines.append(f"• and {len(groups) - GROUPS_SHOWN} other reasons")
    return f"*{title}*\n" + "\n".join(lines)
