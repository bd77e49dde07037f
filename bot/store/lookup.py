"""Reads for `/orders`: an order by its name, and the audit log by order or by person. Plain functions of a
`sqlite_utils.Database`, run through `Store.read`."""

from __future__ import annotations

from typing import Any

import sqlite_utils


def order_id_named(db: sqlite_utils.Database, name: str) -> str | None:
    row = db.execute("SELECT id FROM orders WHERE name = ? LIMIT 1", [name]).fetchone()
    return row[0] if row else None


def audit_log(
    db: sqlite_utils.Database, *, order_id: str | None = None, actor: str | None = None, limit: int = 20
) -> list[dict[str, Any]]:
    """The latest audit rows about one order or by one person, newest first, with the order's name."""
    where, params = ("a.order_id = ?", [order_id]) if order_id is not None else ("a.actor = ?", [actor])
    sql = (
        "SELECT a.*, o.name AS order_name FROM audit a LEFT JOIN orders o ON o.id = a.order_id "
        f"WHERE {where} ORDER BY a.at DESC, a.id DESC LIMIT ?"
    )
    return list(db.query(sql, [*params, limit]))
