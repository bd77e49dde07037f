"""The delay notice a customer gets from "notify customer": short, honest, written for why the order is late.

Pure: no I/O. One template per reason in `rules.REASONS`, and a generic one for anything else. A notice promises no
dates and quotes no prices; it names the order, greets the customer by name when known, and is signed by the shop.
The team can edit it before it is sent (`modal_blocks.notify_modal`).
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.domain.orders import Order


@dataclass(frozen=True, slots=True)
class Notice:
    subject: str
    body: str


@dataclass(frozen=True, slots=True)
class _Template:
    subject: str
    paragraphs: tuple[str, ...]  # filled from {order} and {items}


_ITEMS_SHOWN = 3

_PREPARING = (
    "Sorry for the wait: your order {order} is taking longer than usual to leave us. We are preparing it now.",
    "We will email you the tracking details as soon as it ships.",
)
_GENERIC = _Template(
    "An update on your order {order}",
    (
        "Your order {order} is taking longer than we expected, and we wanted to let you know. We are on it.",
        "We will email you as soon as it ships. Sorry for the wait.",
    ),
)
_TEMPLATES = {
    "request_rejected": _Template("An update on your order {order}", _PREPARING),
    "payment_pending": _Template(
        "Please check the payment for your order {order}",
        (
            "We have not been able to confirm the payment for your order {order} yet, so we cannot ship it.",
            "Could you check with your bank or payment provider that the payment went through? If it did not, "
            "reply to this email and we will help you complete it.",
        ),
    ),
    "out_of_stock": _Template(
        "An update on your order {order}",
        (
            "Part of your order {order} is out of stock at the moment{items}. We will ship your order as soon as "
            "it is back in stock, and email you the tracking details then.",
            "If you would rather not wait, reply to this email and we will help.",
        ),
    ),
    "on_hold": _Template(
        "An update on your order {order}",
        (
            "We are checking a detail of your order {order} before we ship it. If we need anything from you, we "
            "will be in touch.",
            "Sorry for the delay; we will email you the tracking details as soon as it ships.",
        ),
    ),
    "unfulfilled_overdue": _Template("An update on your order {order}", _PREPARING),
    "partially_fulfilled": _Template(
        "The rest of your order {order}",
        (
            "Part of your order {order} is already on its way. We are preparing the rest now.",
            "We will email you the tracking details for it as soon as it ships. Sorry for the wait.",
        ),
    ),
    "request_pending": _Template("An update on your order {order}", _PREPARING),
    "awaiting_tracking": _Template(
        "Your order {order} is on its way",
        (
            "Your order {order} is on its way. Its tracking number has not reached us yet; we will email it to you "
            "as soon as we have it.",
            "Sorry for the wait.",
        ),
    ),
}


def _out_of_stock_items(order: Order) -> str:
    """What is out of stock, by name, when the held fulfillment orders' lines are known: " (Oat blanket)"."""
    titles = list(
        dict.fromkeys(
            line.title
            for fo in order.fulfillment_orders or ()
            if any(hold.reason == "INVENTORY_OUT_OF_STOCK" for hold in fo.holds)
            for line in fo.lines
            if line.remaining and line.title
        )
    )
    if not titles:
        return ""
    shown = titles[:_ITEMS_SHOWN] + ([f"{len(titles) - _ITEMS_SHOWN} more"] if len(titles) > _ITEMS_SHOWN else [])
    return f" ({', '.join(shown)})"


def customer_notice(order: Order, verdict_reason: str | None, *, shop_name: str) -> Notice:
    """The notice for an order stuck for `verdict_reason` (a reason id, or None for the generic notice)."""
    template = _TEMPLATES.get(verdict_reason or "", _GENERIC)
    if verdict_reason == "awaiting_tracking" and not order.shipments_without_tracking():
        template = _TEMPLATES["request_pending"]  # the service accepted it but has not shipped: not "on its way"
    name = order.customer.name if order.customer else None
    facts = {"order": order.name, "items": _out_of_stock_items(order)}
    paragraphs = [
        f"Hello {name}," if name else "Hello,",
        *(paragraph.format_map(facts) for paragraph in template.paragraphs),
        f"Best wishes,\n{shop_name}",
    ]
    return Notice(subject=template.subject.format_map(facts), body="\n\n".join(paragraphs))
