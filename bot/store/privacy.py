"""Privacy webhooks: customers/redact erases one customer from every table, shop/redact everything. Mixed into
Store, which provides `read`, `write` and `checkpoint` (erased rows leave the WAL too, core.py).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import sqlite_utils

from bot.domain.redaction import NO_CUSTOMER, names_customer, without_customer, written_forms


class PrivacyTables:
    """The redaction methods of Store."""

    read: Callable[..., Awaitable[Any]]
    write: Callable[..., Awaitable[Any]]
    checkpoint: Callable[..., Awaitable[bool]]

    async def redact_customer(self, email: str | None, order_ids: list[str]) -> list[str]:
        """Erase one customer's personal data from every table; return the ids of the orders touched.

        Orders are matched by their exact customer email and ids. So are the webhook bodies still held (deliveries
        pending, waiting for a retry, or parked): each body that names the customer or one of the orders in its
        fields (bot/domain/redaction.py) keeps only what orderbot reads, without the customer's name and email. A
        pending one stays processable and is applied later as an order without a customer, which is what the
        redacted order is; erasing its body instead would leave nothing to process."""

        def redact(db: sqlite_utils.Database) -> list[str]:
            ids = set(order_ids)
            if email:
                ids.update(
                    r[0] for r in db.execute("SELECT id FROM orders WHERE lower(customer_email) = lower(?)", [email])
                )
            for order_id in ids:
                row = db.execute("SELECT record FROM orders WHERE id = ?", [order_id]).fetchone()
                customer = None
                if row:
                    record = json.loads(row[0])
                    customer, record["customer"] = record["customer"], None
                    db.execute(
                        "UPDATE orders SET record = ?, customer_email = NULL WHERE id = ?",
                        [json.dumps(record), order_id],
                    )
                db.execute("UPDATE audit SET inputs = '{}' WHERE order_id = ?", [order_id])
                _erase_from_messages(db, order_id, [email, *(customer or {}).values()])
            return sorted(ids)

        touched = await self.write(redact)
        # The bodies are read and rewritten in memory outside the write lock (a backlog of pending deliveries is
        # tens of megabytes to parse); the write then replaces only those still as they were read.
        rewritten = await self.read(lambda db: _bodies_without_customer(db, email, set(touched)))
        if rewritten:
            await self.write(
                lambda db: db.conn.executemany("UPDATE inbox SET body = ? WHERE id = ? AND body = ?", rewritten)
            )
        await self.checkpoint()
        return touched

    async def redact_shop(self) -> None:
        """The shop left for good: erase everything it sent us."""

        def erase(db: sqlite_utils.Database) -> None:
            for table in db.table_names():  # every table holds something of the shop's, tables added later too
                db.execute(f"DELETE FROM [{table}]")

        await self.write(erase)
        await self.checkpoint()


def _erase_from_messages(db: sqlite_utils.Database, order_id: str, personal: list[str | None]) -> None:
    """The order's messages that Slack does not have yet, and its audit rows' errors, name the customer as they were
    written: a queued alert's order loses its customer, and NO_CUSTOMER takes the place of each form of `personal`
    in the rest (a reply's text, a resolution)."""
    forms = written_forms(personal)
    for outbox_id, kind, payload in db.execute(
        "SELECT id, kind, payload FROM outbox WHERE order_id = ? AND payload != '{}'", [order_id]
    ).fetchall():
        message = json.loads(payload)
        if kind == "alert" and isinstance(message.get("order"), dict):
            message["order"]["customer"] = None
        db.execute("UPDATE outbox SET payload = ? WHERE id = ?", [json.dumps(_replaced(message, forms)), outbox_id])
    for form in forms:
        db.execute("UPDATE audit SET error = replace(error, ?, ?) WHERE order_id = ?", [form, NO_CUSTOMER, order_id])


def _replaced(value: Any, variants: list[str]) -> Any:
    """Every string in a JSON value with each of `variants` (longest first) replaced by NO_CUSTOMER."""
    if isinstance(value, str):
        for variant in variants:
            value = value.replace(variant, NO_CUSTOMER)
        return value
    if isinstance(value, dict):
        return {key: _replaced(item, variants) for key, item in value.items()}
    if isinstance(value, list):
        return [_replaced(item, variants) for item in value]
    return value


def _bodies_without_customer(
    db: sqlite_utils.Database, email: str | None, order_ids: set[str]
) -> list[tuple[str, int, str]]:
    """(new body, id, body) of each stored body that names the customer or one of `order_ids`, the new body as
    `without_customer` leaves it. SQL finds the candidates, bodies with a value equal to the email (any case) or to an
    order's id; the exact fields are compared in Python. A value compared whole, never a LIKE pattern: `_` in an
    email, or an order number inside another id, matches nothing else."""
    texts = [email.lower()] if email else []
    texts += [i.lower() for i in order_ids] + [i.rsplit("/", 1)[1] for i in order_ids]
    numbers = [int(n) for i in order_ids if (n := i.rsplit("/", 1)[1]).isdigit()]
    candidates = db.execute(
        "SELECT id, topic, body FROM inbox WHERE body IS NOT NULL AND EXISTS (SELECT 1 FROM json_tree("
        "CASE WHEN json_valid(inbox.body) THEN inbox.body ELSE 'null' END) AS node WHERE"
        " (node.type = 'text' AND lower(node.atom) IN (SELECT value FROM json_each(?)))"
        " OR (node.type = 'integer' AND node.atom IN (SELECT value FROM json_each(?))))",
        [json.dumps(texts), json.dumps(numbers)],
    ).fetchall()
    rewritten = []
    for delivery_id, topic, body in candidates:
        payload = json.loads(body)
        if names_customer(topic, payload, email, order_ids):
            rewritten.append((json.dumps(without_customer(payload)), delivery_id, body))
    return rewritten
