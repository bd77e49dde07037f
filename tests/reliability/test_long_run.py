"""Months of a real shop, played through the real server on a clock the test moves (40 days in the default run, a
year under `pytest --long`).

Every day the shop takes new orders and ships yesterday's, each told to orderbot by a signed webhook; orders are
never archived, so shipped history piles up; one order a day changes twice within one second (Shopify's updated_at
cannot tell the two apart); orderbot scans four times a day. Along the way: a delivery whose body orderbot cannot use,
a customer's redaction while deliveries about them wait in the inbox, a snooze while webhooks for the same order
arrive, another process holding the database's write lock while webhooks arrive (each 503 sent again, as Shopify
does), and the shop uninstalling orderbot and installing it again.

At the end: nothing stalled (no delivery pending, only the unusable one parked), nothing acknowledged was lost (every
200 is a processed row), nothing newer was overwritten (every stored order is Shopify's current version; the snooze
held; the redacted customer is gone), and the cost of a scan stayed flat while the history grew.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sqlite3
import statistics
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, closing
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.sandbox.seed import placed
from bot.sandbox.serving import serve
from bot.sandbox.shopify import SandboxShopify
from bot.sandbox.state import legacy_id
from bot.shopify.client import ShopifyError
from bot.shopify.webhooks import body_key
from bot.slack.outbox import ALERT_EVENT
from tests.conftest import CHANNEL, SHOP, World, example_payload, running_world, wait_for
from tests.reliability.test_outside_lock import LOCKER

SHORT_DAYS = 40
LONG_DAYS = 365
ORDERS_PER_DAY = 6
LATE_EVERY = 7  # every 7th order ships three days late: stuck (unfulfilled past 48 h), alerted, then resolved
SCANS_PER_DAY = 4
LOCK_HOLD = {False: 3.0, True: 15.0}  # seconds another process holds the write lock: default run, --long
MONTH = 30  # the special events come once in each 30 days, on these days of it:
BAD_DAY, REDACT_DAY, SNOOZE_DAY, LOCK_DAY, UNINSTALL_DAY, REINSTALL_DAY = 5, 10, 15, 20, 25, 27
CHANGE_SCAN_LIMIT = 10  # requests; a quiet day's scan makes 2, a day's new orders add a page or two
START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


class Clock:
    """The time orderbot and the sandbox Shopify read; the test moves it."""

    def __init__(self, at: datetime):
        self.at = at

    def __call__(self) -> datetime:
        return self.at


@dataclass
class Ledger:
    """What the test sent and was told."""

    acknowledged: set[str] = field(default_factory=set)  # webhook ids answered 200
    # Webhook ids answered 200 as a duplicate, with their body's identity: a body byte for byte like one stored before
    # (the same order in the same second, sent again under another id) is stored once, under the first id.
    duplicate_bodies: dict[str, str | None] = field(default_factory=dict)
    unusable: set[str] = field(default_factory=set)  # webhook ids of bodies orderbot cannot use
    sent: int = 0
    answered_503: int = 0
    change_scans: list[tuple[int, int]] = field(default_factory=list)  # (day, requests)
    sweeps: list[tuple[int, int, int]] = field(default_factory=list)  # (day, requests, points)
    snoozed: dict[str, datetime] = field(default_factory=dict)  # order name: until


@asynccontextmanager
async def shop_world(tmp_path: Path, clock: Clock) -> AsyncIterator[World]:
    # Shopify Plus's limits: a Standard plan's 100 points a second would make the test wait, not test more
    shop = SandboxShopify([], shop_domain=SHOP, now=clock, bucket_size=20_000, restore_rate=1_000)
    runner, url = await serve(shop.app)
    try:
        async with running_world((shop, url), tmp_path, app_options={"now": clock, "slack_pace": 0.02}) as world:
            yield world
    finally:
        await runner.cleanup()


async def test_months_of_a_shop_nothing_stalls_nothing_is_lost_nothing_newer_is_overwritten(tmp_path, long_run):
    seed = int(os.environ.get("LONG_RUN_SEED") or random.randrange(2**32))
    print(f"long run: seed {seed} (replay: LONG_RUN_SEED={seed})")
    rng = random.Random(seed)
    days = LONG_DAYS if long_run else SHORT_DAYS
    clock = Clock(START)
    ledger = Ledger()
    async with shop_world(tmp_path, clock) as world:
        play = Play(world, clock, ledger, rng, LOCK_HOLD[long_run])
        started = time.perf_counter()
        for day in range(days):
            await play.day(day)
            if day % 10 == 9:
                print(f"day {day + 1}: {time.perf_counter() - started:.1f} s")
        await play.settle(everything=True)
        await wait_for(lambda: not world.rows("SELECT 1 FROM outbox WHERE status IN ('pending', 'sending')"), 30)
        report(world, ledger, days)
        check_nothing_lost(world, ledger)
        check_nothing_stalled(world, ledger)
        check_nothing_newer_overwritten(world, play)
        check_scan_cost_flat(ledger)
        check_every_stuck_order_has_its_alert(world)


class Play:
    def __init__(self, world: World, clock: Clock, ledger: Ledger, rng: random.Random, lock_hold: float):
        self.world, self.clock, self.ledger, self.rng, self.lock_hold = world, clock, ledger, rng, lock_hold
        self.shop = world.sandbox
        self.next_number = 20001
        self.placed_on: dict[int, list[str]] = {}  # day: ids of the orders placed that day
        self.late: dict[int, list[str]] = {}  # day: ids of late orders to ship that day
        self.redacted_emails: set[str] = set()  # customers forgotten so far
        self.installed = True
        self.slack_calls_when_uninstalled = 0

    async def day(self, day: int) -> None:
        self.clock.at = START + timedelta(days=day)
        in_month = day % MONTH
        if in_month == REINSTALL_DAY and not self.installed:
            await self.reinstall()
        deliveries = self.new_orders(day) + self.shipments(day)
        if in_month == BAD_DAY:
            deliveries.append(self.unusable_delivery())
        if in_month == REDACT_DAY and day > 0:
            await self.redact_while_pending(deliveries)
        elif in_month == LOCK_DAY:
            await self.send_while_locked(deliveries)
        else:
            await self.send_all(deliveries)
        if in_month == UNINSTALL_DAY:
            await self.uninstall()
        await self.settle()
        if in_month == SNOOZE_DAY:
            await self.snooze_while_webhooks_arrive()
        for slot in range(SCANS_PER_DAY):
            self.clock.at = START + timedelta(days=day, hours=slot * 24 / SCANS_PER_DAY, minutes=1)
            await self.scan(day)
        if not self.installed:
            assert self.outbox_calls() == self.slack_calls_when_uninstalled, "orderbot posted while uninstalled"

    # --- the shop's day ---------------------------------------------------------------------------------------

    def new_orders(self, day: int) -> list[tuple[str, dict]]:
        """Today's orders; the first of them changes again within the same second (a tag added), and Shopify sends
        both versions, in either order."""
        out = []
        ids = []
        for _ in range(ORDERS_PER_DAY):
            order = placed(self.next_number, self.clock(), self.rng)
            while order["email"] in self.redacted_emails:  # names are drawn at random: the forgotten stay away
                order = placed(self.next_number, self.clock(), self.rng)
            self.next_number += 1
            self.shop.add_order(order)
            ids.append(order["id"])
            out.append(("orders/create", self.shop.webhook_payload(order["id"])))
        self.placed_on[day] = ids
        first = self.shop.orders[ids[0]]
        first["tags"].append("gift-wrap")
        self.shop.touch(first)  # the same second: the clock stands still within a day's events
        changed = ("orders/updated", self.shop.webhook_payload(ids[0]))
        if day % 2:
            out.insert(0, changed)  # the newer content arrives first, the older one after it
        else:
            out.append(changed)
        return out

    def shipments(self, day: int) -> list[tuple[str, dict]]:
        """Yesterday's orders ship today with tracking, but every LATE_EVERY-th, which ships three days late."""
        out = []
        for order_id in self.placed_on.pop(day - 1, []):
            number = int(self.shop.orders[order_id]["name"].lstrip("#"))
            if number % LATE_EVERY == 0:
                self.late.setdefault(day + 3, []).append(order_id)
            else:
                out.append(self.ship(order_id))
        out += [self.ship(order_id) for order_id in self.late.pop(day, [])]
        return out

    def ship(self, order_id: str) -> tuple[str, dict]:
        self.shop.fulfill_externally(order_id, tracking_number=f"1Z{self.rng.randrange(10**12):012d}", company="UPS")
        return ("orders/fulfilled", self.shop.webhook_payload(order_id))

    def unusable_delivery(self) -> tuple[str, dict]:
        """A fulfillments/create body without the order it belongs to: orderbot cannot use it, and parks it."""
        body = example_payload("fulfillments/create")
        body.pop("order_id", None)
        return ("fulfillments/create", body)

    # --- sending, as Shopify does ------------------------------------------------------------------------------

    async def send(self, topic: str, body: dict, *, unusable: bool = False) -> int:
        self.ledger.sent += 1
        webhook_id = f"long-run-{self.ledger.sent}"
        if unusable:
            self.ledger.unusable.add(webhook_id)
        while True:  # Shopify sends a delivery again until it gets a 200
            response = await self.world.post_webhook(topic, body, webhook_id=webhook_id)
            if response.status == 200:
                self.ledger.acknowledged.add(webhook_id)
                if (await response.json())["duplicate"]:
                    self.ledger.duplicate_bodies[webhook_id] = body_key(topic, body, json.dumps(body).encode())
                return 200
            assert response.status == 503, response.status
            self.ledger.answered_503 += 1
            await asyncio.sleep(0.2)

    async def send_all(self, deliveries: list[tuple[str, dict]]) -> None:
        for topic, body in deliveries:
            await self.send(topic, body, unusable=topic == "fulfillments/create" and "order_id" not in body)

    async def send_while_locked(self, deliveries: list[tuple[str, dict]]) -> None:
        """Another process (an operator's sqlite3 shell) holds the write lock while today's deliveries arrive."""
        locker = await asyncio.create_subprocess_exec(
            sys.executable, "-c", LOCKER, str(self.world.db_path), str(self.lock_hold), stdout=asyncio.subprocess.PIPE
        )
        try:
            assert (await locker.stdout.readline()).decode().strip() == "locked"
            await asyncio.gather(*(self.send_all([d]) for d in deliveries))
        finally:
            await locker.wait()

    async def redact_while_pending(self, deliveries: list[tuple[str, dict]]) -> None:
        """A customer asks to be forgotten. Shopify erases them from its orders and sends customers/redact, while
        deliveries about their order (sent before the erasure) and others' arrive at the same moment."""
        order_id = self.rng.choice([i for i in self.shop.orders if self.shop.orders[i]["customer"]])
        before = self.shop.webhook_payload(order_id)
        customer = self.shop.orders[order_id]["customer"]
        self.redacted_emails.add(customer["email"])
        theirs = [i for i, order in self.shop.orders.items() if order["email"] == customer["email"]]
        redact = example_payload("customers/redact")
        redact["shop_domain"] = SHOP
        redact["customer"] = {"id": legacy_id(customer["id"]), "email": customer["email"], "phone": None}
        redact["orders_to_redact"] = [legacy_id(i) for i in theirs]
        for i in theirs:
            order = self.shop.orders[i]
            order["customer"], order["email"] = None, None
            self.shop.touch(order)
        pending = [("orders/updated", before), ("orders/updated", before | {"note": "gift"}), *deliveries]
        await asyncio.gather(self.send_all(pending), self.send("customers/redact", redact))

    async def snooze_while_webhooks_arrive(self) -> None:
        """Someone snoozes a stuck order while Shopify's webhooks for it are being processed."""
        stuck = self.world.rows(
            "SELECT o.name, o.id FROM verdicts v JOIN orders o ON o.id = v.order_id WHERE v.stuck = 1 ORDER BY o.name"
        )
        if not stuck:
            return
        name, order_id = stuck[0]
        body = self.shop.webhook_payload(order_id)
        sent = asyncio.gather(*(self.send("orders/updated", body | {"note": f"call {k}"}) for k in range(3)))
        answer = await self.world.command(f"snooze {name} 1w")
        await sent
        assert "snoozed" in json.dumps(answer).lower(), answer
        self.ledger.snoozed[name] = self.clock() + timedelta(weeks=1)
        await self.settle()

    async def uninstall(self) -> None:
        self.shop.uninstall()
        await self.send("app/uninstalled", example_payload("app/uninstalled") | {"domain": SHOP})
        await self.settle()
        await wait_for(lambda: self.world.service.installation.installed is False)
        self.installed = False
        self.slack_calls_when_uninstalled = self.outbox_calls()

    async def reinstall(self) -> None:
        self.shop.reinstall()
        assert await self.world.service.installation.probe()
        self.installed = True

    def outbox_calls(self) -> int:
        """Alerts and their thread replies sent to Slack (the digest is not the outbox's)."""
        return sum(1 for call in self.world.slack.calls if _is_alert_traffic(call))

    # --- orderbot's side -----------------------------------------------------------------------------------------

    async def scan(self, day: int) -> None:
        before = len(self.shop.operations)
        if not self.installed:
            with pytest.raises(ShopifyError):
                await self.world.service.reconcile()
            assert len(self.shop.operations) == before, "orderbot called Shopify while uninstalled"
            return
        report = await self.world.service.reconcile()
        operations = self.shop.operations[before:]
        requests = len(operations)
        if report.kind == "full":
            self.ledger.sweeps.append((day, requests, sum(o.actual_cost or 0 for o in operations)))
        else:
            self.ledger.change_scans.append((day, requests))

    async def settle(self, *, everything: bool = False) -> None:
        """Every delivery is processed, but for those waiting for a retry that is not due yet (`everything`: none
        may wait)."""
        due = "" if everything else f" AND (retry_at IS NULL OR retry_at <= {self.clock().timestamp()})"
        await wait_for(lambda: not self.world.rows(f"SELECT 1 FROM inbox WHERE status = 'pending'{due}"), 30)


def _is_alert_traffic(call) -> bool:
    if call.method == "chat.update":
        return True
    if call.method != "chat.postMessage":
        return False
    metadata = call.args.get("metadata") or {}
    if isinstance(metadata, str):
        metadata = json.loads(metadata)
    return bool(call.args.get("thread_ts")) or metadata.get("event_type") == ALERT_EVENT


# --- the checks ------------------------------------------------------------------------------------------------


def report(world: World, ledger: Ledger, days: int) -> None:
    size = world.db_path.stat().st_size
    orders, shipped = world.rows("SELECT count(*), sum(fulfillment_status = 'FULFILLED') FROM orders")[0]
    print(
        f"{days} days: {ledger.sent} deliveries sent, {len(ledger.acknowledged)} acknowledged, "
        f"{ledger.answered_503} answers 503 sent again; {orders} orders stored, {shipped} shipped and never archived; "
        f"database {size / 2**20:.1f} MiB"
    )
    print(f"change scans: requests {summary([r for _, r in ledger.change_scans])}")
    print(f"daily sweeps: requests {summary([r for _, r, _ in ledger.sweeps])}")
    print(f"daily sweeps: points {summary([p for *_, p in ledger.sweeps])}")


def summary(values: list[int]) -> str:
    return f"first {values[:3]}, last {values[-3:]}, median {statistics.median(values)}, max {max(values)}"


def check_nothing_lost(world: World, ledger: Ledger) -> None:
    stored = dict(world.rows("SELECT webhook_id, status FROM inbox WHERE webhook_id LIKE 'long-run-%'"))
    stored_bodies = {key for (key,) in world.rows("SELECT body_key FROM inbox WHERE body_key IS NOT NULL")}
    stored_as_another = {
        webhook_id for webhook_id, key in ledger.duplicate_bodies.items() if key is not None and key in stored_bodies
    }
    missing = ledger.acknowledged - stored.keys() - stored_as_another
    assert not missing, f"{len(missing)} acknowledged deliveries are not in the database: {sorted(missing)[:5]}"
    assert ledger.acknowledged == {f"long-run-{n}" for n in range(1, ledger.sent + 1)}


def check_nothing_stalled(world: World, ledger: Ledger) -> None:
    statuses = dict(world.rows("SELECT webhook_id, status FROM inbox WHERE webhook_id LIKE 'long-run-%'"))
    parked = {webhook_id for webhook_id, status in statuses.items() if status == "parked"}
    assert parked == ledger.unusable, f"parked: {sorted(parked - ledger.unusable)[:5]} should have been processed"
    assert set(statuses.values()) <= {"processed", "ignored", "parked"}, set(statuses.values())


def check_nothing_newer_overwritten(world: World, play: Play) -> None:
    stored = {
        order_id: (json.loads(record), updated_ts)
        for order_id, record, updated_ts in world.rows("SELECT id, record, updated_ts FROM orders")
    }
    assert stored.keys() == play.shop.orders.keys()
    for order_id, truth in play.shop.orders.items():
        record, updated_ts = stored[order_id]
        name = truth["name"]
        assert updated_ts == truth["updated_at"].timestamp(), f"{name}: an older version is stored"
        assert sorted(record["tags"]) == sorted(truth["tags"]), f"{name}: tags {record['tags']} != {truth['tags']}"
        assert (record["customer"] is None) == (truth["customer"] is None), f"{name}: the customer"
    with closing(sqlite3.connect(world.db_path)) as conn:
        dump = "\n".join(conn.iterdump())
    assert play.redacted_emails, "nobody was redacted: the test did not test it"
    assert not [e for e in play.redacted_emails if e in dump], "a redacted customer's email is still stored"
    for name, until in play.ledger.snoozed.items():
        if until > play.clock():
            (status,) = world.rows(
                "SELECT v.status FROM verdicts v JOIN orders o ON o.id = v.order_id WHERE o.name = ?", (name,)
            )[0]
            assert status == "snoozed", f"{name}: the snooze was undone ({status})"
    assert play.ledger.snoozed, "no stuck order was there to snooze: the test did not test it"


def check_scan_cost_flat(ledger: Ledger) -> None:
    scans = [requests for day, requests in ledger.change_scans if day > 1]
    assert max(scans) <= CHANGE_SCAN_LIMIT, max(scans)
    first, last = scans[: len(scans) // 4], scans[-len(scans) // 4 :]
    assert statistics.mean(last) <= statistics.mean(first) + 1, (first, last)
    sweeps = [(requests, points) for day, requests, points in ledger.sweeps if day > 1]
    early, late = sweeps[: len(sweeps) // 4], sweeps[-len(sweeps) // 4 :]
    # A sweep reads the open work, which stays about the same size every day, not the shipped history.
    assert max(r for r, _ in late) <= max(r for r, _ in early) + 2, (early, late)
    assert max(p for _, p in late) <= 1.5 * max(p for _, p in early), (early, late)


def check_every_stuck_order_has_its_alert(world: World) -> None:
    unalerted = world.rows(
        "SELECT o.name FROM verdicts v JOIN orders o ON o.id = v.order_id LEFT JOIN alerts a ON a.order_id = v.order_id"
        " WHERE v.stuck = 1 AND a.ts IS NULL"
    )
    assert not unalerted, unalerted
    posted = [m for m in world.slack.messages(CHANNEL) if (m.get("metadata") or {}).get("event_type") == ALERT_EVENT]
    names = [m["metadata"]["event_payload"]["order_id"] for m in posted]
    assert len(names) == len(set(names)), "an order was alerted twice"
