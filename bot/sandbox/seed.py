"""A believable small shop for the sandbox: every stuck reason, stuck and not, with ages relative to `now`.

Orders are plain dicts in the sandbox's internal shape (snake_case, datetimes): see `_order` for the fields.
Everything here is a pure function of its arguments; ids are derived from order numbers, so they are stable.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime, timedelta

from bot.sandbox.state import record_fulfillment, refresh_fulfillment_order_status, tracking_entries

WAREHOUSE = {"id": "gid://shopify/Location/70412365211", "name": "Juniper & Oak Warehouse", "service": None}
SHIPBOB = {"id": "gid://shopify/Location/70412365212", "name": "ShipBob Fulfillment", "service": "ShipBob"}
DSERS = {"id": "gid://shopify/Location/70412365213", "name": "DSers", "service": "DSers"}
STOREFRONT = {"id": "gid://shopify/Location/70412365214", "name": "Juniper & Oak Storefront", "service": None}

# (title, sku, price)
PRODUCTS = (
    ("Linen Throw Pillow - Sage", "JO-PIL-SAGE", "34.00"),
    ("Ceramic Pour-Over Set", "JO-CER-POUR", "48.00"),
    ("Walnut Serving Board", "JO-WAL-BRD", "62.00"),
    ("Beeswax Candle Trio", "JO-CAN-TRIO", "28.00"),
    ("Wool Blend Blanket - Oat", "JO-BLK-OAT", "129.00"),
    ("Stoneware Mug Set (4)", "JO-MUG-SET4", "44.00"),
    ("Cotton Waffle Towel", "JO-TWL-WFL", "22.00"),
    ("Rattan Storage Basket", "JO-BSK-RAT", "39.00"),
    ("Cast Iron Skillet 10in", "JO-CI-SK10", "58.00"),
    ("Herb Planter Kit", "JO-PLT-HERB", "26.00"),
)

# What each location stocks (SKUs): the warehouse everything; the storefront textiles and candles, so #1002, held for
# stock at the warehouse, can move there; each fulfillment service what the shop sends it.
STOCKED = {
    WAREHOUSE["id"]: tuple(sku for _, sku, _ in PRODUCTS),
    STOREFRONT["id"]: ("JO-PIL-SAGE", "JO-CAN-TRIO", "JO-BLK-OAT", "JO-TWL-WFL"),
    SHIPBOB["id"]: ("JO-CER-POUR", "JO-MUG-SET4", "JO-TWL-WFL", "JO-BSK-RAT"),
    DSERS["id"]: ("JO-PLT-HERB",),
}


def seed_locations() -> list[dict]:
    """The shop's locations, each with the SKUs it stocks (`stocked`)."""
    return [dict(place, stocked=list(STOCKED[place["id"]])) for place in (WAREHOUSE, STOREFRONT, SHIPBOB, DSERS)]


FIRST_NAMES = (
    "Maya",
    "Liam",
    "Priya",
    "Daniel",
    "Sofia",
    "Noah",
    "Amara",
    "Ethan",
    "Chloe",
    "Lucas",
    "Hannah",
    "Oliver",
    "Isabella",
    "James",
    "Aiko",
    "Grace",
    "Mateo",
    "Zoe",
    "Samuel",
    "Leila",
)
LAST_NAMES = (
    "Thompson",
    "O'Connor",
    "Raman",
    "Kim",
    "Alvarez",
    "Bennett",
    "Okafor",
    "Walsh",
    "Dubois",
    "Ferreira",
    "Schmidt",
    "Grant",
    "Rossi",
    "Whitaker",
    "Tanaka",
    "Miller",
    "Herrera",
    "Novak",
    "Adeyemi",
    "Haddad",
)
CARRIERS = (
    ("USPS", "https://tools.usps.com/go/TrackConfirmAction?tLabels={}"),
    ("UPS", "https://www.ups.com/track?tracknum={}"),
    ("FedEx", "https://www.fedex.com/fedextrack/?trknbr={}"),
)

IGNORE_TAG = "orderbot-ignore"


def _legacy(base: int, number: int, k: int = 0) -> int:
    return base + number * 7919 + k


def _customer(number: int, first: str, last: str) -> dict:
    email_name = f"{first}.{last}".lower().replace("'", "")
    return {
        "id": f"gid://shopify/Customer/{_legacy(7_203_118_000_000, number)}",
        "first_name": first,
        "last_name": last,
        "email": f"{email_name}@example.com",
    }


def _order(
    number: int,
    now: datetime,
    *,
    customer: tuple[str, str],
    items: list[tuple[int, int]],
    age_hours: float,
    location: dict = WAREHOUSE,
    financial_status: str = "PAID",
    tags: tuple[str, ...] = (),
    test: bool = False,
    payment_gateway: str = "shopify_payments",
) -> dict:
    """A fresh order: one fulfillment order at `location`, OPEN and unsubmitted, holding every line.
    `items` are (index in PRODUCTS, quantity); `payment_gateway` as Shopify names it (paymentGatewayNames)."""
    created = now - timedelta(hours=age_hours)
    person = _customer(number, *customer)
    line_items = [
        {
            "id": f"gid://shopify/LineItem/{_legacy(14_882_310_000_000, number, k)}",
            "title": PRODUCTS[product][0],
            "sku": PRODUCTS[product][1],
            "price": PRODUCTS[product][2],
            "quantity": quantity,
        }
        for k, (product, quantity) in enumerate(items)
    ]
    fulfillment_order = {
        "id": f"gid://shopify/FulfillmentOrder/{_legacy(6_720_104_000_000, number)}",
        "status": "OPEN",
        "request_status": "UNSUBMITTED",
        "created_at": created,
        "updated_at": created,
        "fulfill_at": created,
        "fulfill_by": None,
        "location": dict(location),
        "holds": [],
        "line_items": [
            {
                "id": f"gid://shopify/FulfillmentOrderLineItem/{_legacy(15_410_220_000_000, number, k)}",
                "line_item_id": line["id"],
                "total_quantity": line["quantity"],
                "remaining_quantity": line["quantity"],
            }
            for k, line in enumerate(line_items)
        ],
    }
    return {
        "id": f"gid://shopify/Order/{_legacy(5_830_412_000_000, number)}",
        "name": f"#{number}",
        "created_at": created,
        "updated_at": created,
        "closed_at": None,
        "cancelled_at": None,
        "cancel_reason": None,
        "test": test,
        "financial_status": financial_status,
        "payment_gateway": payment_gateway,
        "tags": list(tags),
        "email": person["email"],
        "note": None,
        "customer": person,
        "shipping_price": "6.95",
        "line_items": line_items,
        "fulfillment_orders": [fulfillment_order],
        "fulfillments": [],
    }


def _at(order: dict, hours_after_creation: float) -> datetime:
    return order["created_at"] + timedelta(hours=hours_after_creation)


def _changed(order: dict, at: datetime) -> None:
    order["updated_at"] = max(order["updated_at"], at)
    for fo in order["fulfillment_orders"]:
        fo["updated_at"] = max(fo["updated_at"], at)


def _hold(order: dict, reason: str, notes: str | None, after_hours: float) -> dict:
    fo = order["fulfillment_orders"][0]
    number = int(order["name"].lstrip("#"))
    fo["status"] = "ON_HOLD"
    fo["holds"].append(
        {
            "id": f"gid://shopify/FulfillmentHold/{_legacy(3_100_220_000_000, number, len(fo['holds']))}",
            "reason": reason,
            "reason_notes": notes,
        }
    )
    _changed(order, _at(order, after_hours))
    return order


def _request(order: dict, status: str, after_hours: float) -> dict:
    """The fulfillment request's history at a service: submitted, then maybe ACCEPTED or REJECTED."""
    fo = order["fulfillment_orders"][0]
    fo["request_status"] = status
    refresh_fulfillment_order_status(fo)
    _changed(order, _at(order, after_hours))
    return order


def _schedule(order: dict, fulfill_at: datetime) -> dict:
    fo = order["fulfillment_orders"][0]
    fo["status"], fo["fulfill_at"] = "SCHEDULED", fulfill_at
    return order


def _ship(order: dict, after_hours: float, tracking_number: str | None, lines: int | None = None) -> dict:
    """Fulfil the first `lines` lines (all by default), with a tracking number from a believable carrier."""
    fo = order["fulfillment_orders"][0]
    number = int(order["name"].lstrip("#"))
    picks = [(fo, line, line["remaining_quantity"]) for line in fo["line_items"][:lines] if line["remaining_quantity"]]
    carrier, url = CARRIERS[number % len(CARRIERS)]
    tracking = tracking_entries(tracking_number, carrier, url.format(tracking_number)) if tracking_number else []
    fulfillment_id = f"gid://shopify/Fulfillment/{_legacy(5_901_330_000_000, number, len(order['fulfillments']))}"
    record_fulfillment(order, picks, tracking, _at(order, after_hours), fulfillment_id)
    return order


def _close(order: dict, after_hours: float) -> dict:
    order["closed_at"] = _at(order, after_hours)
    _changed(order, order["closed_at"])
    return order


def _cancel(order: dict, after_hours: float, reason: str = "CUSTOMER") -> dict:
    at = _at(order, after_hours)
    order.update(cancelled_at=at, closed_at=at, cancel_reason=reason, financial_status="REFUNDED")
    for fo in order["fulfillment_orders"]:
        fo["status"] = "CLOSED"
    _changed(order, at)
    return order


def _tracking_number(number: int) -> str:
    return f"9400{_legacy(1_110_000_000_000_000, number):018d}"


def seed_orders(now: datetime) -> list[dict]:
    """Eighteen orders, #1001–#1018, one or more per stuck reason (rules.REASONS)."""
    return [
        # unfulfilled_overdue: paid, merchant-fulfilled, nobody shipped it in 70 h
        _order(1001, now, customer=("Maya", "Thompson"), items=[(0, 2), (3, 1)], age_hours=70),
        # out_of_stock
        _hold(
            _order(1002, now, customer=("Liam", "O'Connor"), items=[(4, 1)], age_hours=120),
            "INVENTORY_OUT_OF_STOCK",
            "Oat blanket back-ordered from the mill",
            2,
        ),
        # payment_pending: bank transfer not received; card authorised 6 days ago (expires at 7)
        _order(
            1003,
            now,
            customer=("Priya", "Raman"),
            items=[(1, 1)],
            age_hours=76,
            financial_status="PENDING",
            payment_gateway="Bank Deposit",
        ),
        _order(
            1004, now, customer=("Daniel", "Kim"), items=[(8, 1), (6, 2)], age_hours=146, financial_status="AUTHORIZED"
        ),
        # on_hold, other reasons
        _hold(
            _order(1005, now, customer=("Sofia", "Alvarez"), items=[(2, 1)], age_hours=80),
            "INCORRECT_ADDRESS",
            "Apartment number missing; carrier returned the label",
            1,
        ),
        _hold(
            _order(1006, now, customer=("Noah", "Bennett"), items=[(4, 2), (5, 2)], age_hours=52),
            "HIGH_RISK_OF_FRAUD",
            "Billing and shipping countries differ; AVS mismatch",
            0.1,
        ),
        # request_pending: sent to DSers 40 h ago, never accepted
        _request(
            _order(1007, now, customer=("Amara", "Okafor"), items=[(9, 3)], age_hours=42, location=DSERS),
            "SUBMITTED",
            2,
        ),
        # request_rejected by the 3PL
        _request(
            _order(1008, now, customer=("Ethan", "Walsh"), items=[(7, 2)], age_hours=50, location=SHIPBOB),
            "REJECTED",
            6,
        ),
        # awaiting_tracking: ShipBob accepted 4 days ago, no fulfillment since
        _request(
            _order(1009, now, customer=("Chloe", "Dubois"), items=[(5, 1), (1, 1)], age_hours=110, location=SHIPBOB),
            "ACCEPTED",
            14,
        ),
        # partially_fulfilled: the skillet shipped, the towels were forgotten
        _ship(
            _order(1010, now, customer=("Lucas", "Ferreira"), items=[(8, 1), (6, 4)], age_hours=130),
            24,
            _tracking_number(1010),
            lines=1,
        ),
        # scheduled: a subscription box due in five days
        _schedule(
            _order(
                1011, now, customer=("Hannah", "Schmidt"), items=[(3, 1), (9, 1)], age_hours=30, tags=("subscription",)
            ),
            now + timedelta(days=5),
        ),
        # not stuck: fresh, within the shipping promise
        _order(1012, now, customer=("Oliver", "Grant"), items=[(0, 1)], age_hours=3),
        # not stuck: fulfilled with tracking
        _ship(
            _order(1013, now, customer=("Isabella", "Rossi"), items=[(2, 1), (3, 2)], age_hours=90),
            20,
            _tracking_number(1013),
        ),
        # not stuck: archived (closed) after shipping
        _close(
            _ship(
                _order(1014, now, customer=("James", "Whitaker"), items=[(5, 1)], age_hours=300),
                26,
                _tracking_number(1014),
            ),
            200,
        ),
        # not stuck: cancelled
        _cancel(_order(1015, now, customer=("Aiko", "Tanaka"), items=[(4, 1)], age_hours=100), 5),
        # not stuck: a test order
        _order(
            1016, now, customer=("Test", "Customer"), items=[(6, 1)], age_hours=96, test=True, financial_status="PAID"
        ),
        # not stuck: wholesale, handled off-Shopify, tagged to be ignored
        _order(
            1017,
            now,
            customer=("Grace", "Miller"),
            items=[(5, 12), (1, 6)],
            age_hours=150,
            tags=("wholesale", IGNORE_TAG),
        ),
        # awaiting_tracking: ShipBob fulfilled 3.5 days ago without a tracking number
        _ship(
            _request(
                _order(1018, now, customer=("Mateo", "Herrera"), items=[(7, 1)], age_hours=120, location=SHIPBOB),
                "ACCEPTED",
                3,
            ),
            36,
            None,
        ),
    ]


def shipped_in_parts(number: int, now: datetime, parts: int, *, untracked: int = 0, age_hours: float = 120) -> dict:
    """An order of `parts` lines (at most len(PRODUCTS)), each shipped on its own two hours after the one before; the
    last `untracked` parts went out without a tracking number."""
    order = _order(
        number,
        now,
        customer=(FIRST_NAMES[number % len(FIRST_NAMES)], LAST_NAMES[number % len(LAST_NAMES)]),
        items=[(k, 1) for k in range(parts)],
        age_hours=age_hours,
    )
    for k in range(parts):
        tracked = k < parts - untracked
        _ship(order, 2 + 2 * k, f"{_tracking_number(number)}{k}" if tracked else None, lines=k + 1)
    return order


# --- bulk ----------------------------------------------------------------------------------------------------------

_SCENARIOS: tuple[tuple[str, int], ...] = (
    ("fresh", 18),
    ("overdue", 14),
    ("fulfilled", 22),
    ("closed", 8),
    ("out_of_stock", 5),
    ("payment", 5),
    ("on_hold", 3),
    ("request_pending", 4),
    ("request_rejected", 2),
    ("awaiting_tracking", 5),
    ("partial", 4),
    ("scheduled", 3),
    ("cancelled", 4),
    ("test", 1),
    ("ignored", 2),
)


def _generated(scenario: str, order: dict, now: datetime, rng: random.Random) -> dict:
    number = int(order["name"].lstrip("#"))
    make: dict[str, Callable[[], dict]] = {
        "fresh": lambda: order,
        "overdue": lambda: order,
        "fulfilled": lambda: _ship(order, rng.uniform(2, 40), _tracking_number(number)),
        "closed": lambda: _close(_ship(order, rng.uniform(2, 40), _tracking_number(number)), 60),
        "out_of_stock": lambda: _hold(order, "INVENTORY_OUT_OF_STOCK", None, 1),
        "payment": lambda: order,
        "on_hold": lambda: _hold(order, rng.choice(("INCORRECT_ADDRESS", "HIGH_RISK_OF_FRAUD", "OTHER")), None, 1),
        "request_pending": lambda: _request(order, "SUBMITTED", 1),
        "request_rejected": lambda: _request(order, "REJECTED", 4),
        "awaiting_tracking": lambda: _request(order, "ACCEPTED", 6),
        "partial": lambda: _ship(order, 20, _tracking_number(number), lines=1),
        "scheduled": lambda: _schedule(order, now + timedelta(days=rng.randint(1, 20))),
        "cancelled": lambda: _cancel(order, 3),
        "test": lambda: order,
        "ignored": lambda: order,
    }
    return make[scenario]()


def generate_orders(count: int, now: datetime, seed: int = 1) -> list[dict]:
    """`count` plausible orders (#3001 onwards) in a deterministic mix of states, for benchmarks and bulk tests."""
    rng = random.Random(seed)
    names, weights = zip(*_SCENARIOS, strict=True)
    orders = []
    for number in range(3001, 3001 + count):
        scenario = rng.choices(names, weights)[0]
        lines = rng.choices(range(len(PRODUCTS)), k=rng.choice((1, 1, 2, 3)))
        partial = scenario == "partial"
        items = [(p, rng.randint(1, 3)) for p in ([*lines, (lines[0] + 1) % len(PRODUCTS)] if partial else lines)]
        service_based = scenario in ("request_pending", "request_rejected", "awaiting_tracking")
        order = _order(
            number,
            now,
            customer=(rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)),
            items=list(dict(items).items()),
            age_hours=rng.uniform(1, 40) if scenario == "fresh" else rng.uniform(50, 24 * 45),
            location=rng.choice((SHIPBOB, DSERS)) if service_based else WAREHOUSE,
            financial_status=rng.choice(("PENDING", "AUTHORIZED", "PARTIALLY_PAID"))
            if scenario == "payment"
            else "PAID",
            tags=(IGNORE_TAG,) if scenario == "ignored" else (),
            test=scenario == "test",
        )
        orders.append(_generated(scenario, order, now, rng))
    return orders


def placed(number: int, now: datetime, rng: random.Random) -> dict:
    """A new paid order placed at `now` (a random customer, one or two lines, shipped from the warehouse), for tests
    that play a shop over time."""
    lines = rng.sample(range(len(PRODUCTS)), k=rng.choice((1, 2)))
    return _order(
        number,
        now,
        customer=(rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)),
        items=[(product, rng.randint(1, 3)) for product in lines],
        age_hours=0,
    )


_UNSHIPPED = tuple((name, weight) for name, weight in _SCENARIOS if name not in ("fulfilled", "closed", "cancelled"))


def history(
    now: datetime, *, open_orders: int, shipped: int, closed: int, shipped_per_day: float = 125.0, seed: int = 1
) -> list[dict]:
    """A shop with a past, for reconciliation at scale: `open_orders` open and not shipped (placed in the last 20
    days, in generate_orders' mix of states, every event of theirs before `now`), `shipped` shipped with tracking and
    never archived, `shipped_per_day` of them a day going back from `now` (so more of them means a longer history,
    not a busier shop), and `closed` archived after shipping or cancelled, spread over the same history. Orders
    #100001 onwards."""
    rng = random.Random(seed)
    span_days = max(shipped, closed) / shipped_per_day
    names, weights = zip(*_UNSHIPPED, strict=True)
    orders = []
    number = 100_001
    for _ in range(open_orders):
        scenario = rng.choices(names, weights)[0]
        order = _order(
            number,
            now,
            customer=(rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)),
            items=[(rng.randrange(len(PRODUCTS) - 1), rng.randint(1, 3)), (len(PRODUCTS) - 1, 1)],
            age_hours=rng.uniform(1, 40) if scenario == "fresh" else rng.uniform(50, 24 * 20),  # its events are past
            location=rng.choice((SHIPBOB, DSERS))
            if scenario in ("request_pending", "request_rejected", "awaiting_tracking")
            else WAREHOUSE,
            financial_status=rng.choice(("PENDING", "AUTHORIZED")) if scenario == "payment" else "PAID",
            tags=(IGNORE_TAG,) if scenario == "ignored" else (),
            test=scenario == "test",
        )
        orders.append(_generated(scenario, order, now, rng))
        number += 1
    for k in range(shipped + closed):
        is_shipped = k < shipped
        waited = rng.uniform(4, 72)  # hours from the order to its shipment (or its cancellation)
        last_event_ago = 1 + (k if is_shipped else rng.uniform(0, span_days * shipped_per_day)) * 24 / shipped_per_day
        archived_after = 0 if is_shipped else 72  # an archived order was archived three days after it shipped
        order = _order(
            number,
            now,
            customer=(rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)),
            items=[(rng.randrange(len(PRODUCTS)), rng.randint(1, 3))],
            age_hours=last_event_ago + archived_after + waited,
        )
        if is_shipped or rng.random() < 0.8:
            _ship(order, waited, _tracking_number(number))
            if not is_shipped:
                _close(order, waited + archived_after)
        else:
            _cancel(order, waited + archived_after)
        orders.append(order)
        number += 1
    return orders
