"""The daily digest's tables: the figures it is built from, and the claim that makes it once a day.

The claim: a `digests` row per day (in the digest's time zone). Whoever inserts it posts; two timers or two
processes racing insert once. The row also records the attempt in flight (`attempt_at`): an attempt that failed
clears it, so the next try may go at once, and one that never finished (the process died) is taken over once it is
LEASE old. A taken-over day may already be in Slack (the process died after Slack had the message), so the poster
looks for the day's message before posting again (bot/flows/digests.py).

Mixed into Store, which provides `read` and `write`.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

import sqlite_utils

from bot.domain.digest import OLDEST_SHOWN, AuditCount, DigestFacts, StuckOrder, WebhookHealth
from bot.domain.digest_chart import Resolution, StuckSnapshot
from bot.domain.rules import REASONS

LEASE = timedelta(minutes=5)  # longer than any attempt takes: a few Slack calls of at most 10 s each, and retries

ClaimState = Literal["new", "retry", "posted", "busy"]


@dataclass(frozen=True, slots=True)
class DigestClaim:
    """The answer to a claim. "new": ours, first attempt. "retry": ours, after an attempt that failed or died (look
    for its message before posting). "posted": the day's digest is out. "busy": another attempt is in flight until
    `busy_until`."""

    day: str
    state: ClaimState
    claimed_at: datetime
    busy_until: datetime | None = None


class DigestTables:
    """The digest methods of Store (which provides `read` and `write`)."""

    read: Callable[..., Awaitable[Any]]
    write: Callable[..., Awaitable[Any]]

    async def digest_facts(self, *, since: datetime, archive_before: datetime) -> DigestFacts:
        """Everything the digest says, read at once: stuck counts now and at the last posted digest, the stuck
        longest, and what happened since `since`."""
        return await self.read(lambda db: _facts(db, _iso(since), archive_before))

    async def snapshot_stuck(self, now: datetime) -> None:
        """Take today's snapshot of the stuck orders by reason (the chart's; a scan takes one too)."""
        await self.write(lambda db: snapshot_stuck_counts(db, _iso(now)))

    async def chart_rows(self, *, since: date) -> tuple[list[StuckSnapshot], list[Resolution]]:
        """The chart's rows from the UTC day `since` on: the daily snapshots and the resolutions."""
        return await self.read(lambda db: (stuck_snapshots(db, since), resolutions_since(db, since)))

    async def had_digests(self) -> bool:
        """Whether any day's digest was ever claimed here."""
        return await self.read(lambda db: db.execute("SELECT 1 FROM digests LIMIT 1").fetchone() is not None)

    async def claim_digest(self, day: str, now: datetime, lease: timedelta = LEASE) -> DigestClaim:
        """Claim the day's digest for an attempt to post it (see the module's docstring)."""

        def claim(db: sqlite_utils.Database) -> DigestClaim:
            at = _iso(now)
            inserted = db.execute(
                "INSERT OR IGNORE INTO digests (day, claimed_at, attempt_at, attempts) VALUES (?, ?, ?, 1)",
                [day, at, at],
            ).rowcount
            if inserted:
                return DigestClaim(day, "new", now)
            claimed_at, attempt_at, posted_at = db.execute(
                "SELECT claimed_at, attempt_at, posted_at FROM digests WHERE day = ?", [day]
            ).fetchone()
            first = datetime.fromisoformat(claimed_at)
            if posted_at:
                return DigestClaim(day, "posted", first)
            if attempt_at and datetime.fromisoformat(attempt_at) + lease > now:
                return DigestClaim(day, "busy", first, datetime.fromisoformat(attempt_at) + lease)
            db.execute("UPDATE digests SET attempt_at = ?, attempts = attempts + 1 WHERE day = ?", [at, day])
            return DigestClaim(day, "retry", first)

        return await self.write(claim)

    async def digest_posted(self, day: str, *, channel: str, ts: str, counts: dict[str, int], now: datetime) -> None:
        """The day's digest is in Slack: `counts` are what the next digest compares with."""
        await self.write(
            lambda db: db.execute(
                "UPDATE digests SET posted_at = ?, channel = ?, ts = ?, counts = ?, attempt_at = NULL, error = NULL"
                " WHERE day = ?",
                [_iso(now), channel, ts, json.dumps(counts), day],
            )
        )

    async def digest_failed(self, day: str, error: str) -> None:
        """The attempt ended without a message known to be in Slack: the next one may start at once."""
        await self.write(
            lambda db: db.execute("UPDATE digests SET attempt_at = NULL, error = ? WHERE day = ?", [error, day])
        )


def _iso(moment: datetime) -> str:
    """As the store writes times (`now_iso`): UTC ISO 8601, so that text order is time order."""
    return moment.astimezone(UTC).isoformat()


def _facts(db: sqlite_utils.Database, since: str, archive_before: datetime) -> DigestFacts:
    return DigestFacts(
        stuck_counts=stuck_counts(db),
        previous_counts=last_digest_counts(db),
        oldest=oldest_stuck(db),
        activity=audit_counts(db, since),
        resolve_times=resolve_times(db, since),
        webhooks=webhook_health(db, since),
        archive_candidates=archive_candidates(db, archive_before),
    )


# Each of the digest's queries (tests/perf/bench_digest.py times them one by one). `since` is an ISO time in UTC.


def stuck_counts(db: sqlite_utils.Database) -> dict[str, int]:
    return dict(db.execute("SELECT reason, count(*) FROM verdicts WHERE stuck = 1 GROUP BY reason").fetchall())


def last_digest_counts(db: sqlite_utils.Database) -> dict[str, int] | None:
    row = db.execute(
        "SELECT counts FROM digests WHERE posted_at IS NOT NULL ORDER BY posted_at DESC LIMIT 1"
    ).fetchone()
    return json.loads(row[0]) if row and row[0] else None


def oldest_stuck(db: sqlite_utils.Database) -> list[StuckOrder]:
    rows = db.execute(
        "SELECT v.order_id, o.name, v.reason, coalesce(v.since, v.stuck_since_seen) AS started"
        " FROM verdicts v JOIN orders o ON o.id = v.order_id WHERE v.stuck = 1"
        " ORDER BY unixepoch(started) LIMIT ?",  # as instants: `since` keeps the offset Shopify gave
        [OLDEST_SHOWN],
    )
    return [
        StuckOrder(order_id, name, reason, datetime.fromisoformat(started)) for order_id, name, reason, started in rows
    ]


def audit_counts(db: sqlite_utils.Database, since: str) -> list[AuditCount]:
    rows = db.execute(
        "SELECT action, actor, outcome, count(*) FROM audit WHERE at >= ? GROUP BY action, actor, outcome", [since]
    )
    return [AuditCount(*row) for row in rows]


def resolve_times(db: sqlite_utils.Database, since: str) -> list[timedelta]:
    rows = db.execute("SELECT stuck_since, resolved_at FROM resolutions WHERE resolved_at >= ?", [since])
    return [datetime.fromisoformat(resolved) - datetime.fromisoformat(started) for started, resolved in rows]


def webhook_health(db: sqlite_utils.Database, since: str) -> WebhookHealth:
    received = db.execute("SELECT count(*) FROM inbox WHERE received_at >= ?", [since]).fetchone()[0]
    # Counters are kept per UTC day: these cover the UTC days the window touches.
    counters = dict(
        db.execute(
            "SELECT name, sum(value) FROM counters WHERE day >= ? AND name IN (?, ?) GROUP BY name",
            [since[:10], "webhooks_duplicate", "stuck_found_by_reconcile"],
        ).fetchall()
    )
    parked = db.execute("SELECT count(*) FROM inbox WHERE status = 'parked' AND processed_at >= ?", [since]).fetchone()
    return WebhookHealth(
        received=received,
        duplicates=counters.get("webhooks_duplicate", 0),
        found_by_reconcile=counters.get("stuck_found_by_reconcile", 0),
        parked=parked[0],
    )


def snapshot_stuck_counts(db: sqlite_utils.Database, at: str) -> None:
    """Replace the UTC day's snapshot with the stuck orders by reason now, a row for every reason (0 included): a day
    with a snapshot and nothing stuck is told apart from a day without one. `at`: a time as the store writes them."""
    day = at[:10]
    counts = stuck_counts(db)
    db.execute("DELETE FROM stuck_days WHERE day = ?", [day])
    db.conn.executemany(
        "INSERT INTO stuck_days (day, reason, count, taken_at) VALUES (?, ?, ?, ?)",
        [(day, reason, counts.get(reason, 0), at) for reason in dict.fromkeys([*REASONS, *counts])],
    )


def stuck_snapshots(db: sqlite_utils.Database, since: date) -> list[StuckSnapshot]:
    rows = db.execute("SELECT day, reason, count FROM stuck_days WHERE day >= ?", [since.isoformat()])
    return [StuckSnapshot(date.fromisoformat(day), reason, count) for day, reason, count in rows]


def resolutions_since(db: sqlite_utils.Database, since: date) -> list[Resolution]:
    rows = db.execute("SELECT stuck_since, resolved_at FROM resolutions WHERE resolved_at >= ?", [since.isoformat()])
    resolved = [(datetime.fromisoformat(started), datetime.fromisoformat(at)) for started, at in rows]
    return [Resolution(at, at - started) for started, at in resolved]


def archive_candidates(db: sqlite_utils.Database, before: datetime) -> int:
    """Open orders fully fulfilled whose last shipment (a successful fulfillment) was created at or before `before`
    (or, with none recorded, the order): what `/orders archive fulfilled older:30d` selects (domain.selection). The
    record's times carry their own offsets, so they are compared as instants (unixepoch), not as text."""
    return db.execute(
        "SELECT count(*) FROM orders o WHERE o.is_open = 1 AND o.fulfillment_status = 'FULFILLED'"
        " AND coalesce((SELECT max(unixepoch(f.value ->> '$.created_at')) FROM json_each(o.record, '$.fulfillments') f"
        "      WHERE f.value ->> '$.status' = 'SUCCESS'), o.created_ts) <= ?",
        [before.timestamp()],
    ).fetchone()[0]
