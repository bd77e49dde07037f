"""Alerts, the Slack outbox and action locks: the tables behind "one alert per order, delivered whatever Slack
does" and "one run of an action at a time". Mixed into Store; `sync_alerts` runs inside the verdicts' transaction."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlite_utils

from bot.domain.alerts import (
    HELD,
    AlertState,
    Step,
    alert_fingerprint,
    alert_snapshot,
    alert_state,
    inferred_resolution,
    plan_alert,
    stuck_again,
    stuck_again_text,
)
from bot.domain.burst import BurstSummary, summary_snapshot
from bot.domain.home import StuckRow
from bot.domain.orders import Order
from bot.domain.rules import Verdict
from bot.store.sql import insert, now_iso

# No action runs this long (its Shopify calls time out well before): a lock this old was left by a run that could not
# release it.
STALE_LOCK_AFTER = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class AlertSync:
    """Where verdicts' alerts go; applied in the same transaction as the verdicts, so that an order is never
    classified stuck without its alert queued. What is queued is data (`alert_snapshot`): the Slack side renders it
    when it sends."""

    channel: str
    resolutions: Mapping[str, str] = field(default_factory=dict)  # order id -> who resolved it (a click in Slack)
    in_bulk: bool = False  # the resolutions come from a bulk run: after news, so new alerts are not held back
    refresh_after: timedelta = timedelta(hours=6)  # re-word a stuck alert this old, at the lowest priority
    # Orders whose alert says what a person did even if it was resolved already (an archived order deleted).
    restated: frozenset[str] = frozenset()
    # A scan's limit on new alerts (bot/domain/burst.py); None elsewhere: a new alert is posted at once, and one a
    # scan held back stays held back. `held_back` and `summary`: the scan's decision (Store.save_verdicts makes it).
    alert_burst: int | None = None
    held_back: frozenset[str] = frozenset()
    summary: BurstSummary | None = None

    def holds(self, order_id: str, known_state: str | None) -> bool:
        """Whether the order's new alert waits: as the scan decided; outside scans, only one held back already."""
        return order_id in self.held_back if self.alert_burst is not None else known_state == HELD


@dataclass(frozen=True, slots=True)
class OutboxItem:
    id: int
    kind: str  # "alert", "reply", or "summary" (a scan's, bot/domain/burst.py; no order: `order_id` is "")
    order_id: str
    payload: dict[str, Any]  # an alert: its `alert_snapshot`; a reply: {"text": mrkdwn}; a summary: `summary_snapshot`
    attempts: int
    channel: str | None  # the alert's channel (a summary's own); None when the alert is gone
    ts: str | None  # the alert's message ts; None until it is posted
    maybe_posted: bool = False  # look in the channel before posting again
    created_at: str = ""


class AlertTables:
    """The alert, outbox and action-lock methods of Store (which provides `read` and `write`)."""

    read: Callable[..., Awaitable[Any]]
    write: Callable[..., Awaitable[Any]]

    # --- alerts and the Slack outbox --------------------------------------------------------------------------

    async def alert(self, order_id: str) -> dict[str, Any] | None:
        return await self.read(lambda db: next(db.query("SELECT * FROM alerts WHERE order_id = ?", [order_id]), None))

    async def held_back_alerts(self) -> set[str]:
        """The order ids whose alert a scan held back (bot/domain/burst.py)."""
        rows = await self.read(lambda db: db.execute("SELECT order_id FROM alerts WHERE state = ?", [HELD]).fetchall())
        return {order_id for (order_id,) in rows}

    async def enqueue_reply(self, order_id: str, text: str, *, in_bulk: bool = False) -> bool:
        """Queue a reply in the order's alert thread; False when the order has no alert to reply to (none, or one a
        scan held back: it will have no thread until it is posted)."""

        def queue(db: sqlite_utils.Database) -> bool:
            if not db.execute("SELECT 1 FROM alerts WHERE order_id = ? AND state != ?", [order_id, HELD]).fetchone():
                return False
            insert(
                db,
                "outbox",
                {
                    "kind": "reply",
                    "order_id": order_id,
                    "priority": PRIORITY_BULK if in_bulk else PRIORITY_CLICK,
                    "payload": json.dumps({"text": text}),
                    "created_at": now_iso(),
                },
            )
            return True

        return await self.write(queue)

    async def outbox_ready(self, now: float, limit: int = 50) -> list[OutboxItem]:
        """Pending messages due by `now`: what a person just did first, then by age."""

        def select(db: sqlite_utils.Database) -> list[OutboxItem]:
            rows = db.execute(
                "SELECT o.id, o.kind, o.order_id, o.payload, o.attempts, coalesce(o.channel, a.channel), a.ts,"
                " o.maybe_posted, o.created_at FROM outbox o LEFT JOIN alerts a ON a.order_id = o.order_id"
                " WHERE o.status = 'pending' AND o.not_before <= ? ORDER BY o.priority, o.id LIMIT ?",
                [now, limit],
            ).fetchall()
            return [OutboxItem(r[0], r[1], r[2], json.loads(r[3]), r[4], r[5], r[6], bool(r[7]), r[8]) for r in rows]

        return await self.read(select)

    async def outbox_next_due(self) -> float | None:
        return await self.read(
            lambda db: db.execute("SELECT min(not_before) FROM outbox WHERE status = 'pending'").fetchone()[0]
        )

    async def outbox_claim(self, item: OutboxItem) -> bool:
        """Mark the item in flight. A change queued meanwhile then becomes a new pending row (the unique index
        covers pending rows only) instead of being overwritten into a row about to be marked sent."""
        return await self.write(
            lambda db: (
                db.execute(
                    "UPDATE outbox SET status = 'sending' WHERE id = ? AND status = 'pending'", [item.id]
                ).rowcount
                == 1
            )
        )

    async def outbox_recover(self, not_before: float = 0.0) -> int:
        """At start: a call in flight when the process stopped may or may not have reached Slack; it is tried again
        (after a lookup) from `not_before` on."""

        def recover(db: sqlite_utils.Database) -> int:
            ids = [r[0] for r in db.execute("SELECT id FROM outbox WHERE status = 'sending'")]
            for outbox_id in ids:
                _back_to_pending(db, outbox_id, not_before, "interrupted", maybe_posted=True)
            return len(ids)

        return await self.write(recover)

    async def outbox_sent(self, item: OutboxItem, ts: str | None) -> None:
        """Slack has it. A first post's ts becomes the alert's; the payload goes (it holds the customer's name)."""

        def update(db: sqlite_utils.Database) -> None:
            now = now_iso()
            db.execute(
                "UPDATE outbox SET status = 'sent', sent_at = ?, payload = '{}', attempts = attempts + 1 WHERE id = ?",
                [now, item.id],
            )
            if item.kind == "alert" and item.ts is None and ts:
                db.execute(
                    "UPDATE alerts SET ts = ?, posted_at = ? WHERE order_id = ? AND ts IS NULL",
                    [ts, now, item.order_id],
                )

        await self.write(update)

    async def outbox_retry(self, item: OutboxItem, not_before: float, error: str, *, maybe_posted: bool) -> None:
        await self.write(lambda db: _back_to_pending(db, item.id, not_before, error, maybe_posted=maybe_posted))

    async def outbox_give_up(self, item: OutboxItem, status: str, error: str) -> None:
        """`failed`: Slack refused this message itself; `dropped`: it has nowhere to go (its alert is gone)."""
        await self.write(
            lambda db: db.execute(
                "UPDATE outbox SET status = ?, error = ?, payload = '{}', attempts = attempts + 1 WHERE id = ?",
                [status, error, item.id],
            )
        )

    async def alert_message_lost(self, order_id: str) -> None:
        """Slack no longer has the alert's message (deleted by someone): the next update posts it anew."""
        await self.write(lambda db: db.execute("UPDATE alerts SET ts = NULL WHERE order_id = ?", [order_id]))

    # --- action locks: one run of an action on an order at a time ---------------------------------------------

    async def lock_action(self, order_id: str, action: str, actor: str) -> dict[str, Any] | None:
        """Take the lock; None when taken, else the holder's row (someone else's run of the same action). A lock older
        than STALE_LOCK_AFTER is taken over: its run could not release it (the database was locked when it ended)."""

        def take(db: sqlite_utils.Database) -> dict[str, Any] | None:
            held = next(
                db.query("SELECT * FROM action_locks WHERE order_id = ? AND action = ?", [order_id, action]), None
            )
            now = datetime.now(UTC)
            if held is not None and now - datetime.fromisoformat(held["started_at"]) < STALE_LOCK_AFTER:
                return held
            db.execute(
                "INSERT OR REPLACE INTO action_locks (order_id, action, actor, started_at) VALUES (?, ?, ?, ?)",
                [order_id, action, actor, now.isoformat()],
            )
            return None

        return await self.write(take)

    async def unlock_action(self, order_id: str, action: str) -> None:
        await self.write(
            lambda db: db.execute("DELETE FROM action_locks WHERE order_id = ? AND action = ?", [order_id, action])
        )

    async def clear_action_locks(self) -> int:
        """At start: a lock held by a process that died is stale (its run ended with the process). Each becomes an
        `interrupted` audit row dated when the run began: it may or may not have happened (an email may have gone
        out), and the log and the double-notice guard must know."""

        def release(db: sqlite_utils.Database) -> int:
            stale = list(db.query("SELECT * FROM action_locks"))
            for lock in stale:
                row = {
                    "at": lock["started_at"],
                    "actor": lock["actor"],
                    "action": lock["action"],
                    "order_id": lock["order_id"],
                    "inputs": "{}",
                    "outcome": "interrupted",
                    "error": "orderbot stopped while this ran; it may or may not have happened",
                }
                insert(db, "audit", row)
            db.execute("DELETE FROM action_locks")
            return len(stale)

        return await self.write(release)


def sync_alerts(db: sqlite_utils.Database, verdicts: list[tuple[Order, Verdict]], sync: AlertSync) -> int:
    """Queue a post or an update for every alert the verdicts change (domain.alerts decides); return how many. A scan's
    summary (`sync.summary`) is queued by `queue_burst_summary`."""
    known = _known_alerts(db, [o.id for o, _ in verdicts])
    queued = 0
    now = now_iso()
    stale_before = (datetime.fromisoformat(now) - sync.refresh_after).isoformat()
    for order, verdict in verdicts:
        row = known.get(order.id)
        state = alert_state(verdict)
        if row is None and state != "stuck":
            continue
        fingerprint = alert_fingerprint(order, verdict)
        step = _step(row, order.id, state, fingerprint, sync, stale_before)
        if step is None:
            continue
        if step == "forget":
            db.execute("DELETE FROM alerts WHERE order_id = ?", [order.id])
            db.execute("DELETE FROM outbox WHERE order_id = ? AND kind = 'alert' AND status = 'pending'", [order.id])
            continue
        if step == "hold":  # no message: the order waits for a later scan (bot/domain/burst.py)
            db.execute(
                "INSERT OR REPLACE INTO alerts (order_id, channel, ts, state, posted_at, updated_at, fingerprint,"
                " reason, resolution) VALUES (?, ?, NULL, ?, NULL, ?, NULL, ?, NULL)",
                [order.id, sync.channel, HELD, now, verdict.reason],
            )
            continue
        clicked = sync.resolutions.get(order.id)
        resolution = (clicked or inferred_resolution(order, verdict)) if state == "resolved" else None
        if step == "post":
            db.execute(
                "INSERT OR REPLACE INTO alerts (order_id, channel, ts, state, posted_at, updated_at, fingerprint,"
                " reason, resolution) VALUES (?, ?, NULL, ?, NULL, ?, ?, ?, NULL)",
                [order.id, sync.channel, state, now, fingerprint, verdict.reason],
            )
        else:
            db.execute(
                "UPDATE alerts SET state = ?, updated_at = ?, fingerprint = ?, reason = ?, resolution = ?"
                " WHERE order_id = ?",
                [state, now, fingerprint, verdict.reason, resolution, order.id],
            )
        payload = json.dumps(alert_snapshot(order, verdict, resolution))
        db.execute(
            "INSERT INTO outbox (kind, order_id, priority, payload, created_at) VALUES ('alert', ?, ?, ?, ?)"
            " ON CONFLICT(order_id) WHERE kind = 'alert' AND status = 'pending'"
            " DO UPDATE SET payload = excluded.payload, priority = min(priority, excluded.priority)",
            [order.id, _alert_priority(clicked, fingerprint == (row[3] if row else None), sync.in_bulk), payload, now],
        )
        queued += 1
        if step == "update" and stuck_again(row[2], state):
            reply = {"text": stuck_again_text(order, verdict)}
            insert(
                db,
                "outbox",
                {
                    "kind": "reply",
                    "order_id": order.id,
                    "priority": PRIORITY_NEWS,
                    "payload": json.dumps(reply),
                    "created_at": now,
                },
            )
    return queued


def waiting_for_alerts(
    db: sqlite_utils.Database, verdicts: list[tuple[Order, Verdict]], sync: AlertSync
) -> tuple[list[StuckRow], set[str]]:
    """The stuck orders of `verdicts` that `sync_alerts` would give a new message if nothing were held back, and
    which of them a scan held back before: what bot/domain/burst.py chooses from."""
    known = _known_alerts(db, [o.id for o, v in verdicts if v.stuck])
    unlimited = replace(sync, alert_burst=None, held_back=frozenset())
    stale_before = (datetime.fromisoformat(now_iso()) - sync.refresh_after).isoformat()
    waiting, held_before = [], set()
    for order, verdict in verdicts:
        if not verdict.stuck or verdict.since is None:
            continue
        row = known.get(order.id)
        if row is not None and row[2] == HELD:
            held_before.add(order.id)
        elif _step(row, order.id, "stuck", alert_fingerprint(order, verdict), unlimited, stale_before) != "post":
            continue
        waiting.append(
            StuckRow(order.id, order.name, verdict.reason or "", verdict.severity, verdict.since, verdict.actions)
        )
    return waiting, held_before


def queue_burst_summary(db: sqlite_utils.Database, sync: AlertSync) -> int:
    """Queue the scan's summary message (bot/domain/burst.py), after the alerts it queued; return how many (0 or 1)."""
    if sync.summary is None:
        return 0
    insert(
        db,
        "outbox",
        {
            "kind": "summary",
            "order_id": "",
            "channel": sync.channel,
            "priority": PRIORITY_NEWS,
            "payload": json.dumps(summary_snapshot(sync.summary)),
            "created_at": now_iso(),
        },
    )
    return 1


def _known_alerts(db: sqlite_utils.Database, ids: list[str]) -> dict[str, tuple]:
    """Each order's alert row: (order id, ts, state, fingerprint, statuses of its unsent messages, updated_at)."""
    known: dict[str, tuple] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        for row in db.execute(
            "SELECT a.order_id, a.ts, a.state, a.fingerprint,"
            " (SELECT group_concat(o.status) FROM outbox o WHERE o.order_id = a.order_id AND o.kind = 'alert'"
            "  AND o.status IN ('pending', 'sending')), a.updated_at"
            f" FROM alerts a WHERE a.order_id IN ({marks})",
            chunk,
        ):
            known[row[0]] = row
    return known


def _step(
    row: tuple | None, order_id: str, state: AlertState, fingerprint: str, sync: AlertSync, stale_before: str
) -> Step | None:
    unsent = (row[4] or "") if row else ""  # statuses of the alert's messages Slack does not have yet
    return plan_alert(
        row[2] if row else None,
        bool(row and (row[1] or "sending" in unsent)),
        row[3] if row else None,
        state,
        fingerprint,
        unsent=bool(unsent),
        stale=bool(row and row[5] and row[5] < stale_before),
        restated=order_id in sync.restated,
        hold=sync.holds(order_id, row[2] if row else None),
    )


PRIORITY_CLICK, PRIORITY_NEWS, PRIORITY_BULK, PRIORITY_REWORD = 0, 1, 2, 3


def _alert_priority(clicked: str | None, refresh_only: bool, in_bulk: bool) -> int:
    """What a person just did first, then news, then what a bulk run did (hundreds of updates must not hold back a
    new stuck order), then re-worded old alerts (never delaying any of the others)."""
    if clicked:
        return PRIORITY_BULK if in_bulk else PRIORITY_CLICK
    return PRIORITY_REWORD if refresh_only else PRIORITY_NEWS


def _back_to_pending(
    db: sqlite_utils.Database, outbox_id: int, not_before: float, error: str, *, maybe_posted: bool
) -> None:
    """Retry later. If a newer version of the same alert was queued while this one was in flight, that one is
    sent instead (it inherits the doubt whether this one reached Slack)."""
    order_id, kind = db.execute("SELECT order_id, kind FROM outbox WHERE id = ?", [outbox_id]).fetchone()
    newer = None
    if kind == "alert":
        newer = db.execute(
            "SELECT id FROM outbox WHERE order_id = ? AND kind = 'alert' AND status = 'pending' AND id != ?",
            [order_id, outbox_id],
        ).fetchone()
    if newer is not None:
        db.execute(
            "UPDATE outbox SET status = 'dropped', error = 'superseded', payload = '{}' WHERE id = ?", [outbox_id]
        )
        db.execute("UPDATE outbox SET maybe_posted = max(maybe_posted, ?) WHERE id = ?", [int(maybe_posted), newer[0]])
        return
    db.execute(
        "UPDATE outbox SET status = 'pending', not_before = ?, error = ?, attempts = attempts + 1,"
        " maybe_posted = max(maybe_posted, ?) WHERE id = ?",
        [not_before, error, int(maybe_posted), outbox_id],
    )
