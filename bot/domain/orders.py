"""The order as orderbot sees it, parsed from webhook JSON or from a GraphQL node into one model.

Pure: no I/O. Enumerations keep Shopify's GraphQL spelling (upper case), whatever the source, so the rules compare
one vocabulary. `fulfillment_orders is None` means "not known yet" (order webhooks carry none), which differs from
an empty tuple ("Shopify says there are none").
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

ORDER_GID = "gid://shopify/Order/"

# FulfillmentOrderStatus values with nothing left to ship, hold or request.
FINISHED_FO_STATUSES = frozenset({"CLOSED", "CANCELLED"})
# FulfillmentStatus values of a shipment that went (or is going) out: not CANCELLED, ERROR or FAILURE.
LIVE_FULFILLMENT_STATUSES = frozenset({"SUCCESS", "OPEN", "PENDING"})

# REST webhook values -> GraphQL OrderDisplayFulfillmentStatus.
_WEBHOOK_FULFILLMENT_STATUS = {
    None: "UNFULFILLED",
    "": "UNFULFILLED",
    "unfulfilled": "UNFULFILLED",
    "partial": "PARTIALLY_FULFILLED",
    "fulfilled": "FULFILLED",
    "restocked": "RESTOCKED",
}


@dataclass(frozen=True, slots=True)
class Money:
    amount: str
    currency: str


@dataclass(frozen=True, slots=True)
class Customer:
    """Only the personal data an alert or a customer notice needs."""

    name: str | None
    email: str | None


@dataclass(frozen=True, slots=True)
class Hold:
    id: str
    reason: str  # FulfillmentHoldReason, e.g. INVENTORY_OUT_OF_STOCK
    notes: str | None = None


@dataclass(frozen=True, slots=True)
class FulfillmentOrderLine:
    id: str  # gid://shopify/FulfillmentOrderLineItem/…
    title: str
    sku: str | None
    remaining: int
    total: int


@dataclass(frozen=True, slots=True)
class FulfillmentOrder:
    id: str
    status: str  # FulfillmentOrderStatus
    request_status: str  # FulfillmentOrderRequestStatus
    created_at: datetime
    updated_at: datetime
    location: str | None = None  # assigned location's name
    service: str | None = None  # fulfillment service (app) name; None when the merchant fulfils
    fulfill_at: datetime | None = None
    fulfill_by: datetime | None = None
    holds: tuple[Hold, ...] = ()
    supported_actions: tuple[str, ...] = ()  # FulfillmentOrderAction
    lines: tuple[FulfillmentOrderLine, ...] = ()  # known only from a single-order fetch (operations.ORDER)
    location_id: str | None = None  # gid://shopify/Location/…; None when not read (a copy stored before it was)

    @property
    def remaining_quantity(self) -> int:
        return sum(line.remaining for line in self.lines)


@dataclass(frozen=True, slots=True)
class Tracking:
    number: str | None
    company: str | None
    url: str | None


@dataclass(frozen=True, slots=True)
class Fulfillment:
    id: str
    status: str  # FulfillmentStatus: SUCCESS, CANCELLED, ERROR, FAILURE, OPEN, PENDING
    created_at: datetime
    updated_at: datetime
    tracking: tuple[Tracking, ...] = ()

    @property
    def has_tracking(self) -> bool:
        return any(t.number for t in self.tracking)


@dataclass(frozen=True, slots=True)
class Order:
    id: str  # gid://shopify/Order/…
    name: str  # "#1001"
    created_at: datetime
    updated_at: datetime
    financial_status: str | None  # OrderDisplayFinancialStatus
    fulfillment_status: str  # OrderDisplayFulfillmentStatus
    total: Money
    closed_at: datetime | None = None
    cancelled_at: datetime | None = None
    test: bool = False
    tags: tuple[str, ...] = ()
    customer: Customer | None = None
    fulfillments: tuple[Fulfillment, ...] = ()
    fulfillment_orders: tuple[FulfillmentOrder, ...] | None = None
    authorization_expires_at: datetime | None = None  # the first capturable authorization's, when Shopify gives it
    # The payment, as Shopify reads it (order webhooks carry none of it: the stored copy's is kept). `capturable`: an
    # authorized payment can be captured, `capturable_amount` of it (in the customer's currency) against the
    # authorization `authorization_id`; `can_mark_as_paid`: Shopify lets staff record the payment by hand (a manual
    # method such as a bank deposit or cash on delivery); `payment_gateways`: the methods' names, as Shopify gives them.
    capturable: bool = False
    capturable_amount: Money | None = None
    authorization_id: str | None = None
    can_mark_as_paid: bool = False
    payment_gateways: tuple[str, ...] = ()

    @property
    def legacy_id(self) -> int:
        return int(self.id.rsplit("/", 1)[1])

    @property
    def closed(self) -> bool:
        return self.closed_at is not None

    @property
    def cancelled(self) -> bool:
        return self.cancelled_at is not None

    def fulfillable(self) -> list[FulfillmentOrder]:
        """The fulfillment orders a fulfillment can be created for now, with something left to ship."""
        return [
            fo
            for fo in self.fulfillment_orders or ()
            if fo.status in ("OPEN", "IN_PROGRESS")
            and "CREATE_FULFILLMENT" in fo.supported_actions
            and (not fo.lines or fo.remaining_quantity > 0)
        ]

    def shipments_without_tracking(self) -> list[Fulfillment]:
        return [f for f in self.fulfillments if f.status == "SUCCESS" and not f.has_tracking]

    def needs_tracking_only(self) -> bool:
        """Nothing left to fulfil, but a shipment went out without a tracking number: "fulfill" adds it."""
        return not self.fulfillable() and bool(self.shipments_without_tracking())

    def has_tag(self, tag: str) -> bool:
        wanted = tag.strip().lower()
        return any(t.lower() == wanted for t in self.tags)

    def with_fulfillment_orders_of(self, other: Order | None) -> Order:
        """Keep what we knew of the fulfillment orders, and of the payment (the authorization's expiry, what can be
        captured or marked as paid), when a webhook brings none (webhooks carry neither)."""
        if self.fulfillment_orders is not None or other is None:
            return self
        return replace(
            self,
            fulfillment_orders=other.fulfillment_orders,
            authorization_expires_at=other.authorization_expires_at,
            capturable=other.capturable,
            capturable_amount=other.capturable_amount,
            authorization_id=other.authorization_id,
            can_mark_as_paid=other.can_mark_as_paid,
            payment_gateways=other.payment_gateways,
        )


@dataclass(frozen=True, slots=True)
class OrderState:
    """What a batch check reads of an order before a bulk action: enough to tell whether the stored copy is still
    Shopify's (`updated_at`), and whether it is archived or cancelled."""

    id: str
    updated_at: datetime
    closed_at: datetime | None
    cancelled_at: datetime | None

    def matches(self, order: Order) -> bool:
        """Whether `order` (a stored copy) is the order as Shopify has it now."""
        return (self.updated_at, self.closed_at, self.cancelled_at) == (
            order.updated_at,
            order.closed_at,
            order.cancelled_at,
        )


def order_state_from_graphql(node: dict[str, Any]) -> OrderState:
    return OrderState(
        id=node["id"],
        updated_at=_required_time(node["updatedAt"]),
        closed_at=parse_time(node.get("closedAt")),
        cancelled_at=parse_time(node.get("cancelledAt")),
    )


def order_gid(legacy_id: int | str) -> str:
    return f"{ORDER_GID}{legacy_id}"


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _required_time(value: str | None, fallback: datetime | None = None) -> datetime:
    parsed = parse_time(value) or fallback
    if parsed is None:
        raise ValueError("a required timestamp is missing")
    return parsed


def _split_tags(tags: str | list[str] | None) -> tuple[str, ...]:
    if not tags:
        return ()
    items = tags.split(",") if isinstance(tags, str) else tags
    return tuple(t.strip() for t in items if t and t.strip())


def _upper(value: str | None) -> str | None:
    return value.upper() if value else None


# --- webhook JSON (REST shapes) -------------------------------------------------------------------------------

# `orders/*` topics whose body is the order itself: applied as it is, so a replayed body must not be applied again.
ORDER_TOPICS = frozenset(
    {
        "orders/create",
        "orders/updated",
        "orders/paid",
        "orders/cancelled",
        "orders/fulfilled",
        "orders/partially_fulfilled",
    }
)

# The keys under which fulfillment_orders/* and fulfillment_holds/* bodies name a fulfillment order (they differ by
# topic); fulfillment_order_merges holds one more, under `fulfillment_order`.
FULFILLMENT_ORDER_KEYS = (
    "fulfillment_order",
    "original_fulfillment_order",
    "submitted_fulfillment_order",
    "moved_fulfillment_order",
    "remaining_fulfillment_order",
    "replacement_fulfillment_order",
)

# The fields of a webhook body that orderbot reads, at any depth: the order, its customer's name and email and its
# fulfillments (order_from_webhook), and the ids that other topics lead to (service.on_event). The rest is of no use
# to orderbot, and much of it is personal data: addresses, phone numbers, the buyer's browser and IP, notes, line
# items' custom properties.
WEBHOOK_FIELDS_READ = frozenset(
    {
        # order_from_webhook
        "id",
        "admin_graphql_api_id",
        "name",
        "order_number",
        "created_at",
        "updated_at",
        "financial_status",
        "fulfillment_status",
        "total_price",
        "currency",
        "closed_at",
        "cancelled_at",
        "test",
        "tags",
        "email",
        "contact_email",
        "customer",
        "first_name",
        "last_name",
        "fulfillments",
        "status",
        "tracking_company",
        "tracking_number",
        "tracking_numbers",
        "tracking_url",
        "tracking_urls",
        # the other topics
        "order_id",
        "order_edit",
        *FULFILLMENT_ORDER_KEYS,
        "fulfillment_order_merges",
        "orders_to_redact",
        "orders_requested",
    }
)


def fields_read(body: Any) -> Any:
    """A webhook body with only WEBHOOK_FIELDS_READ, at every depth: what orderbot keeps of a delivery it could not
    process, enough to process it again."""
    if isinstance(body, dict):
        return {key: fields_read(value) for key, value in body.items() if key in WEBHOOK_FIELDS_READ}
    if isinstance(body, list):
        return [fields_read(value) for value in body]
    return body


def order_from_webhook(payload: dict[str, Any]) -> Order:
    """Parse an `orders/*` webhook body. Fulfillment orders are unknown (None): webhooks do not carry them."""
    order_id = payload.get("admin_graphql_api_id") or order_gid(payload["id"])
    created = _required_time(payload.get("created_at"))
    customer = payload.get("customer") or {}
    name = " ".join(p for p in (customer.get("first_name"), customer.get("last_name")) if p) or None
    email = payload.get("email") or payload.get("contact_email") or customer.get("email")
    return Order(
        id=order_id,
        name=payload.get("name") or f"#{payload.get('order_number', payload['id'])}",
        created_at=created,
        updated_at=_required_time(payload.get("updated_at"), created),
        financial_status=_upper(payload.get("financial_status")),
        fulfillment_status=_WEBHOOK_FULFILLMENT_STATUS.get(payload.get("fulfillment_status"), "UNFULFILLED"),
        total=Money(str(payload.get("total_price") or "0.00"), payload.get("currency") or ""),
        closed_at=parse_time(payload.get("closed_at")),
        cancelled_at=parse_time(payload.get("cancelled_at")),
        test=bool(payload.get("test")),
        tags=_split_tags(payload.get("tags")),
        customer=Customer(name, email) if (name or email) else None,
        fulfillments=tuple(fulfillment_from_webhook(f) for f in payload.get("fulfillments") or ()),
        fulfillment_orders=None,
    )


def fulfillment_from_webhook(payload: dict[str, Any]) -> Fulfillment:
    fulfillment_id = payload.get("admin_graphql_api_id") or f"gid://shopify/Fulfillment/{payload['id']}"
    created = _required_time(payload.get("created_at"), parse_time(payload.get("updated_at")))
    numbers = payload.get("tracking_numbers") or (
        [payload["tracking_number"]] if payload.get("tracking_number") else []
    )
    urls = payload.get("tracking_urls") or ([payload["tracking_url"]] if payload.get("tracking_url") else [])
    tracking = tuple(
        Tracking(number, payload.get("tracking_company"), urls[i] if i < len(urls) else None)
        for i, number in enumerate(numbers)
    )
    return Fulfillment(
        id=fulfillment_id,
        status=(payload.get("status") or "pending").upper(),
        created_at=created,
        updated_at=_required_time(payload.get("updated_at"), created),
        tracking=tracking,
    )


# --- GraphQL nodes (shapes of operations.ORDER_FIELDS) ----------------------------------------------------------


def order_from_graphql(node: dict[str, Any]) -> Order:
    customer = node.get("customer") or {}
    customer_email = (customer.get("defaultEmailAddress") or {}).get("emailAddress")
    name = customer.get("displayName")
    email = node.get("email") or customer_email
    money = (node.get("totalPriceSet") or {}).get("shopMoney") or {}
    capturable = (node.get("totalCapturableSet") or {}).get("presentmentMoney")
    authorizations = node.get("transactions") or ()
    return Order(
        id=node["id"],
        name=node["name"],
        created_at=_required_time(node["createdAt"]),
        updated_at=_required_time(node["updatedAt"]),
        financial_status=node.get("displayFinancialStatus"),
        fulfillment_status=node.get("displayFulfillmentStatus") or "UNFULFILLED",
        total=Money(str(money.get("amount") or "0.00"), money.get("currencyCode") or ""),
        closed_at=parse_time(node.get("closedAt")) if node.get("closed") else None,
        cancelled_at=parse_time(node.get("cancelledAt")),
        test=bool(node.get("test")),
        tags=_split_tags(node.get("tags")),
        customer=Customer(name, email) if (name or email) else None,
        fulfillments=tuple(_fulfillment_from_graphql(f) for f in node.get("fulfillments") or ()),
        fulfillment_orders=tuple(
            _fulfillment_order_from_graphql(fo) for fo in (node.get("fulfillmentOrders") or {}).get("nodes") or ()
        ),
        authorization_expires_at=_first_expiry(authorizations),
        capturable=bool(node.get("capturable")),
        capturable_amount=Money(str(capturable["amount"]), capturable["currencyCode"]) if capturable else None,
        authorization_id=next((t["id"] for t in authorizations if t.get("id")), None),
        can_mark_as_paid=bool(node.get("canMarkAsPaid")),
        payment_gateways=tuple(node.get("paymentGatewayNames") or ()),
    )


def _first_expiry(transactions: Any) -> datetime | None:
    """The earliest authorizationExpiresAt of the order's capturable transactions read; None when Shopify gives
    none."""
    expiries = [moment for t in transactions if (moment := parse_time(t.get("authorizationExpiresAt")))]
    return min(expiries, default=None)


def _fulfillment_from_graphql(node: dict[str, Any]) -> Fulfillment:
    return Fulfillment(
        id=node["id"],
        status=node["status"],
        created_at=_required_time(node["createdAt"]),
        updated_at=_required_time(node["updatedAt"]),
        tracking=tuple(
            Tracking(t.get("number"), t.get("company"), t.get("url")) for t in node.get("trackingInfo") or ()
        ),
    )


def _fulfillment_order_from_graphql(node: dict[str, Any]) -> FulfillmentOrder:
    assigned = node.get("assignedLocation") or {}
    service = ((assigned.get("location") or {}).get("fulfillmentService") or {}).get("serviceName")
    return FulfillmentOrder(
        id=node["id"],
        status=node["status"],
        request_status=node["requestStatus"],
        created_at=_required_time(node["createdAt"]),
        updated_at=_required_time(node["updatedAt"]),
        location=assigned.get("name"),
        service=service,
        location_id=(assigned.get("location") or {}).get("id"),
        fulfill_at=parse_time(node.get("fulfillAt")),
        fulfill_by=parse_time(node.get("fulfillBy")),
        holds=tuple(Hold(h["id"], h["reason"], h.get("reasonNotes")) for h in node.get("fulfillmentHolds") or ()),
        supported_actions=tuple(a["action"] for a in node.get("supportedActions") or ()),
        lines=tuple(
            FulfillmentOrderLine(
                id=line["id"],
                title=line.get("productTitle") or "",
                sku=line.get("sku"),
                remaining=line.get("remainingQuantity") or 0,
                total=line.get("totalQuantity") or 0,
            )
            for line in (node.get("lineItems") or {}).get("nodes") or ()
        ),
    )


# --- the stored record (JSON-safe dict) -------------------------------------------------------------------------


def order_to_record(order: Order) -> dict[str, Any]:
    """A JSON-safe dict; `order_from_record` inverts it exactly. Written out (not `asdict`, which deep-copies and
    was a third of the cost of storing an order)."""
    return {
        "id": order.id,
        "name": order.name,
        "created_at": order.created_at.isoformat(),
        "updated_at": order.updated_at.isoformat(),
        "financial_status": order.financial_status,
        "fulfillment_status": order.fulfillment_status,
        "total": {"amount": order.total.amount, "currency": order.total.currency},
        "closed_at": _iso(order.closed_at),
        "cancelled_at": _iso(order.cancelled_at),
        "test": order.test,
        "tags": list(order.tags),
        "customer": {"name": order.customer.name, "email": order.customer.email} if order.customer else None,
        "fulfillments": [
            {
                "id": f.id,
                "status": f.status,
                "created_at": f.created_at.isoformat(),
                "updated_at": f.updated_at.isoformat(),
                "tracking": [{"number": t.number, "company": t.company, "url": t.url} for t in f.tracking],
            }
            for f in order.fulfillments
        ],
        "authorization_expires_at": _iso(order.authorization_expires_at),
        "capturable": order.capturable,
        "capturable_amount": _money(order.capturable_amount),
        "authorization_id": order.authorization_id,
        "can_mark_as_paid": order.can_mark_as_paid,
        "payment_gateways": list(order.payment_gateways),
        "fulfillment_orders": None
        if order.fulfillment_orders is None
        else [
            {
                "id": fo.id,
                "status": fo.status,
                "request_status": fo.request_status,
                "created_at": fo.created_at.isoformat(),
                "updated_at": fo.updated_at.isoformat(),
                "location": fo.location,
                "location_id": fo.location_id,
                "service": fo.service,
                "fulfill_at": _iso(fo.fulfill_at),
                "fulfill_by": _iso(fo.fulfill_by),
                "holds": [{"id": h.id, "reason": h.reason, "notes": h.notes} for h in fo.holds],
                "supported_actions": list(fo.supported_actions),
                "lines": [
                    {
                        "id": line.id,
                        "title": line.title,
                        "sku": line.sku,
                        "remaining": line.remaining,
                        "total": line.total,
                    }
                    for line in fo.lines
                ],
            }
            for fo in order.fulfillment_orders
        ],
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _money(money: Money | None) -> dict[str, str] | None:
    return {"amount": money.amount, "currency": money.currency} if money else None


def order_from_record(record: dict[str, Any]) -> Order:
    fos = record.get("fulfillment_orders")
    customer = record.get("customer")
    return Order(
        id=record["id"],
        name=record["name"],
        created_at=_required_time(record["created_at"]),
        updated_at=_required_time(record["updated_at"]),
        financial_status=record.get("financial_status"),
        fulfillment_status=record["fulfillment_status"],
        total=Money(**record["total"]),
        closed_at=parse_time(record.get("closed_at")),
        cancelled_at=parse_time(record.get("cancelled_at")),
        test=bool(record.get("test")),
        tags=tuple(record.get("tags") or ()),
        customer=Customer(**customer) if customer else None,
        fulfillments=tuple(
            Fulfillment(
                id=f["id"],
                status=f["status"],
                created_at=_required_time(f["created_at"]),
                updated_at=_required_time(f["updated_at"]),
                tracking=tuple(Tracking(**t) for t in f.get("tracking") or ()),
            )
            for f in record.get("fulfillments") or ()
        ),
        fulfillment_orders=None
        if fos is None
        else tuple(
            FulfillmentOrder(
                id=fo["id"],
                status=fo["status"],
                request_status=fo["request_status"],
                created_at=_required_time(fo["created_at"]),
                updated_at=_required_time(fo["updated_at"]),
                location=fo.get("location"),
                location_id=fo.get("location_id"),
                service=fo.get("service"),
                fulfill_at=parse_time(fo.get("fulfill_at")),
                fulfill_by=parse_time(fo.get("fulfill_by")),
                holds=tuple(Hold(**h) for h in fo.get("holds") or ()),
                supported_actions=tuple(fo.get("supported_actions") or ()),
                lines=tuple(FulfillmentOrderLine(**line) for line in fo.get("lines") or ()),
            )
            for fo in fos
        ),
        authorization_expires_at=parse_time(record.get("authorization_expires_at")),
        capturable=bool(record.get("capturable")),
        capturable_amount=Money(**record["capturable_amount"]) if record.get("capturable_amount") else None,
        authorization_id=record.get("authorization_id"),
        can_mark_as_paid=bool(record.get("can_mark_as_paid")),
        payment_gateways=tuple(record.get("payment_gateways") or ()),
    )
