"""Writing verdicts: an older one never replaces a newer one.

A verdict is computed from the order as stored, the order's snooze as read and the clock, and written later: an inbox
batch commits its verdicts with its deliveries' outcomes once every delivery of the batch ran, Shopify reads
included. Meanwhile a person may snooze the order or act on it, or a scan may store a newer copy and classify it;
writing the batch's verdict then would undo what they did (and the alert's thread would say "stuck again"). So each
verdict carries what it was computed from (`Classified`), and one statement writes it only if, in the writing
transaction:
- the order's stored record is still the one it was computed from (the record's text: the store writes one text per
  version of an order, and what is classified is what was stored or read back from the store);
- the order's snooze is still the one it read;
- no verdict computed later (`computed_ts`) was written already.
Otherwise it is dropped, and its alert left alone: whoever changed the order or its snooze classified it again.

Mixed into Store (`VerdictTables`, which uses its `read` and `write`); `save_current_verdicts` also runs inside an
inbox batch's transaction.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import sqlite_utils

from bot.domain.alerts import alert_state
from bot.domain.burst import plan_burst
from bot.domain.orders import Order, order_to_record
from bot.domain.rules import Verdict
from bot.store.alerts import AlertSync, queue_burst_summary, sync_alerts, waiting_for_alerts
from bot.store.sql import WRITE_CHUNK, insert, now_iso


@dataclass(frozen=True, slots=True)
class Classified:
    """A verdict with what it was computed from."""

    order: Order
    verdict: Verdict
    at: datetime  # the clock the rules read
    snoozed_until: datetime | None  # the order's snooze as read (None: none)


_WRITE_IF_CURRENT = (
    "INSERT INTO verdicts (order_id, status, stuck, reason, severity, since, due_at, explanation, next_steps, actions,"
    " classified_at, stuck_since_seen, found_by, computed_ts)"
    " SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?"
    " WHERE (SELECT record FROM orders WHERE id = ?) = ? AND (SELECT until FROM snoozes WHERE order_id = ?) IS ?"
    " ON CONFLICT(order_id) DO UPDATE SET status = excluded.status, stuck = excluded.stuck, reason = excluded.reason,"
    " severity = excluded.severity, since = excluded.since, due_at = excluded.due_at,"
    " explanation = excluded.explanation, next_steps = excluded.next_steps, actions = excluded.actions,"
    " classified_at = excluded.classified_at, stuck_since_seen = excluded.stuck_since_seen,"
    " found_by = excluded.found_by, computed_ts = excluded.computed_ts"
    " WHERE verdicts.computed_ts IS NULL OR verdicts.computed_ts <= excluded.computed_ts"
)


def save_current_verdicts(db: sqlite_utils.Database, classified: list[Classified], found_by: str) -> list[Classified]:
    """Write each verdict that is still current (see the module's docstring); return those written."""
    now = now_iso()
    written = []
    for item in classified:
        order_id, v = item.order.id, item.verdict
        before = db.execute(
            "SELECT stuck, stuck_since_seen, found_by, reason, since FROM verdicts WHERE order_id = ?", [order_id]
        ).fetchone()
        was_stuck = bool(before and before[0])
        values = [
            order_id,
            v.status,
            int(v.stuck),
            v.reason,
            v.severity,
            v.since.isoformat() if v.since else None,
            v.due_at.isoformat() if v.due_at else None,
            v.explanation,
            json.dumps(v.next_steps),
            json.dumps(v.actions),
            now,
            (before[1] if was_stuck else now) if v.stuck else None,
            (before[2] if was_stuck else found_by) if v.stuck else None,
            item.at.timestamp(),
            order_id,
            json.dumps(order_to_record(item.order)),
            order_id,
            item.snoozed_until.isoformat() if item.snoozed_until else None,
        ]
        if not db.execute(_WRITE_IF_CURRENT, values).rowcount:
            continue
        written.append(item)
        # For the digest's time to resolve (a snooze is not one; a cancellation asked for is, as Shopify finishes it
        # in the background and the order is not stuck meanwhile).
        if was_stuck and (alert_state(v) == "resolved" or v.status == "cancelling"):
            insert(
                db,
                "resolutions",
                {"order_id": order_id, "reason": before[3], "stuck_since": before[4] or before[1], "resolved_at": now},
            )
    return written


class VerdictTables:
    """The verdict methods of Store."""

    read: Callable[..., Awaitable[Any]]
    write: Callable[..., Awaitable[Any]]

    async def save_verdicts(
        self, classified: list[Classified], *, found_by: str, alerts: AlertSync | None = None
    ) -> int:
        """Store the verdicts that are still current (above) and queue the alerts they change; return
        how many alert messages were queued. With a limit on new alerts (a scan's `alerts.alert_burst`), which of them
        wait is decided first, over all the verdicts (bot/domain/burst.py), and the summary, if any, is queued with the
        last chunk."""
        if alerts is not None and alerts.alert_burst is not None:
            verdicts = [(c.order, c.verdict) for c in classified]
            waiting, held_before = await self.read(lambda db: waiting_for_alerts(db, verdicts, alerts))
            plan = plan_burst(waiting, held_before, alerts.alert_burst)
            alerts = replace(alerts, held_back=plan.held_back, summary=plan.summary)

        def save(db: sqlite_utils.Database, chunk: list[Classified], last: bool) -> int:
            written = save_current_verdicts(db, chunk, found_by)
            if alerts is None:
                return 0
            queued = sync_alerts(db, [(c.order, c.verdict) for c in written], alerts)
            return queued + (queue_burst_summary(db, alerts) if last else 0)

        queued = 0
        for start in range(0, len(classified), WRITE_CHUNK):
            chunk, last = classified[start : start + WRITE_CHUNK], start + WRITE_CHUNK >= len(classified)
            queued += await self.write(lambda db, chunk=chunk, last=last: save(db, chunk, last))
        return queued

    async def verdict_of(self, order_id: str) -> dict[str, Any] | None:
        return await self.read(lambda db: next(db.query("SELECT * FROM verdicts WHERE order_id = ?", [order_id]), None))

    async def verdict_rows(self, *, stuck_only: bool = False) -> list[dict[str, Any]]:
        def select(db: sqlite_utils.Database) -> list[dict[str, Any]]:
            where = "WHERE v.stuck = 1" if stuck_only else ""
            return list(
                db.query(
                    f"SELECT v.*, o.name FROM verdicts v JOIN orders o ON o.id = v.order_id {where} ORDER BY v.since"
                )
            )

        return await self.read(select)
