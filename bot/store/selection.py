"""Orders a `Selection` names, for `/orders` lists and bulk runs: narrowed in SQL, matched by domain.selection.

SQL narrows by what it can check exactly or cheaply (names through the `orders_name` index, ids, open-ness, a stuck
verdict and its reason, fully shipped, creation time, a tag's text); `bot.domain.selection` then decides, on the
parsed orders, and orders them oldest first. Paging slices that list, so page n of a stuck list costs one narrowed
read however deep it is.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import sqlite_utils

from bot.domain import selection as chosen
from bot.domain.commands import Selection
from bot.domain.orders import Order, order_from_record, parse_time

_VERDICT_COLUMNS = (
    "order_id",
    "status",
    "stuck",
    "reason",
    "severity",
    "since",
    "due_at",
    "explanation",
    "next_steps",
    "actions",
    "classified_at",
    "stuck_since_seen",
    "found_by",
)


class SelectionQueries:
    """Mixed into `Store` (which provides `read`)."""

    async def select_orders(self, selection: Selection, now: datetime) -> list[tuple[Order, dict[str, Any] | None]]:
        """Every matching order with its verdict row, oldest first (a bulk run's orders)."""
        if _verdicts_decide(selection):
            return await self.read(lambda db: _orders_of(db, _stuck_ids(db, selection, now)))
        return await self.read(lambda db: _matching(db, selection, now))

    async def page_of_orders(
        self, selection: Selection, now: datetime, *, limit: int, offset: int
    ) -> tuple[int, list[tuple[Order, dict[str, Any] | None]]]:
        """How many orders match, and one page of them (a list's page and its "of N" from one read)."""

        def read(db: sqlite_utils.Database) -> tuple[int, list[tuple[Order, dict[str, Any] | None]]]:
            if _verdicts_decide(selection):
                ids = _stuck_ids(db, selection, now)
                return len(ids), _orders_of(db, ids[offset : offset + limit])
            found = _matching(db, selection, now)
            return len(found), found[offset : offset + limit]

        return await self.read(read)

    async def count_orders(self, selection: Selection, now: datetime) -> int:
        if _verdicts_decide(selection):
            return len(await self.read(lambda db: _stuck_ids(db, selection, now)))
        return len(await self.read(lambda db: _matching(db, selection, now)))

    async def missing_names(self, selection: Selection) -> list[str]:
        """The order names and ids the selection gives that orderbot does not know, in the order given."""
        return await self.read(lambda db: _missing(db, selection))


def _matching(db: sqlite_utils.Database, selection: Selection, now: datetime) -> list[tuple[Order, dict | None]]:
    where, params = _narrowing(selection, now)
    columns = ", ".join(f"v.{c} AS v_{c}" for c in _VERDICT_COLUMNS)
    sql = (
        f"SELECT o.record, {columns} FROM orders o "
        f"LEFT JOIN verdicts v ON v.order_id = o.id WHERE {' AND '.join(where) or '1'}"
    )
    rows = []
    for row in db.execute(sql, params):
        verdict = None if row[1] is None else dict(zip(_VERDICT_COLUMNS, row[1:], strict=True))
        rows.append((order_from_record(json.loads(row[0])), verdict))
    return chosen.select(selection, rows, now)


def _verdicts_decide(selection: Selection) -> bool:
    """A stuck list of open orders (`/orders stuck`, `stuck:<reason> older:…`): the verdict rows alone decide and
    order it, so only the page's orders need their records read."""
    return selection.stuck and not selection.named and selection.tag is None and not selection.fulfilled


def _stuck_ids(db: sqlite_utils.Database, selection: Selection, now: datetime) -> list[str]:
    """The matching order ids, ordered as `domain.selection.sort_key` orders them (stuck since, created, id)."""
    where, params = _narrowing(selection, now)
    sql = "SELECT o.id, o.created_ts, v.since FROM orders o JOIN verdicts v ON v.order_id = o.id WHERE " + " AND ".join(
        where
    )
    keyed = []
    for order_id, created_ts, since in db.execute(sql, params):
        created = datetime.fromtimestamp(created_ts, UTC)
        stuck_since = parse_time(since) or created
        if selection.older is None or now - stuck_since >= selection.older:
            keyed.append((stuck_since, created, order_id))
    keyed.sort()
    return [order_id for _, _, order_id in keyed]


def _orders_of(db: sqlite_utils.Database, ids: list[str]) -> list[tuple[Order, dict | None]]:
    columns = ", ".join(f"v.{c} AS v_{c}" for c in _VERDICT_COLUMNS)
    sql = (
        f"SELECT o.id, o.record, {columns} FROM orders o JOIN verdicts v ON v.order_id = o.id "
        "WHERE o.id IN (SELECT value FROM json_each(?))"
    )
    found = {
        row[0]: (order_from_record(json.loads(row[1])), dict(zip(_VERDICT_COLUMNS, row[2:], strict=True)))
        for row in db.execute(sql, [json.dumps(ids)])
    }
    return [found[order_id] for order_id in ids if order_id in found]


def _narrowing(selection: Selection, now: datetime) -> tuple[list[str], list[Any]]:
    """SQL conditions that keep every order the selection can match (and as few others as is cheap)."""
    where: list[str] = []
    params: list[Any] = []
    if selection.named:
        where.append("(o.name IN (SELECT value FROM json_each(?)) OR o.id IN (SELECT value FROM json_each(?)))")
        params += [json.dumps(chosen.names(selection)), json.dumps(list(selection.ids))]
    else:
        where.append("o.is_open = 1")
    if selection.stuck:
        where.append("v.stuck = 1")
        if selection.reason is not None:
            where.append("v.reason = ?")
            params.append(selection.reason)
    if selection.fulfilled:
        where.append("o.is_open = 1 AND o.fulfillment_status = 'FULFILLED'")
    if selection.tag is not None and selection.tag.isascii():  # SQLite's lower() folds ASCII only
        where.append("instr(lower(o.record), lower(?)) > 0")
        params.append(json.dumps(selection.tag.strip()))
    if selection.older is not None and not selection.stuck and not selection.fulfilled:
        where.append("o.created_ts <= ?")  # older measured from creation: exact
        params.append((now - selection.older).timestamp())
    return where, params


def _missing(db: sqlite_utils.Database, selection: Selection) -> list[str]:
    wanted = [*chosen.names(selection), *dict.fromkeys(selection.ids)]
    if not wanted:
        return []
    known = {
        value
        for (value,) in db.execute(
            "SELECT o.name FROM orders o WHERE o.name IN (SELECT value FROM json_each(?))"
            " UNION SELECT o.id FROM orders o WHERE o.id IN (SELECT value FROM json_each(?))",
            [json.dumps(wanted), json.dumps(wanted)],
        )
    }
    return [name for name in wanted if name not in known]
