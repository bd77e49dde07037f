"""The SQLite store: migrations, pragmas, file mode, ordering rules, and that writes never stall the event loop."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import sqlite_utils

from bot.domain.orders import Customer, Fulfillment, Money, Order, Tracking, order_to_record
from bot.store import MIGRATIONS, Delivery, Store
from bot.store.schema import _m5_scan
from tests.old_schema import migrate_to_before


def make_order(updated: datetime, **changes) -> Order:
    order = Order(
        id="gid://shopify/Order/1001",
        name="#1001",
        created_at=updated - timedelta(days=3),
        updated_at=updated,
        financial_status="PAID",
        fulfillment_status="UNFULFILLED",
        total=Money("10.00", "EUR"),
        customer=Customer("Ada Lovelace", "ada@example.com"),
    )
    return replace(order, **changes)


async def test_open_applies_migrations_once_with_the_measured_pragmas(tmp_path):
    path = str(tmp_path / "o.db")
    store = await Store(path).open()
    await store.close()
    store = await Store(path).open()
    pragmas = await store.read(
        lambda db: {
            name: db.execute(f"PRAGMA {name}").fetchone()[0]
            for name in ("journal_mode", "synchronous", "busy_timeout", "user_version", "secure_delete")
        }
    )
    await store.close()
    assert pragmas == {
        "journal_mode": "wal",
        "synchronous": 1,
        "busy_timeout": 10000,
        "user_version": len(MIGRATIONS),
        "secure_delete": 1,
    }
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


async def test_the_connection_that_stores_webhooks_syncs_each_commit_and_the_other_does_not(tmp_path):
    """A 200 to Shopify must survive a power cut: the ingest connection runs synchronous=FULL (2), which in WAL mode
    syncs the WAL at each commit. The database thread's keeps NORMAL (1), synced at checkpoints."""
    store = await Store(str(tmp_path / "o.db")).open()
    ingest = await store.ingest_pragma("synchronous")
    other = await store.read(lambda db: db.execute("PRAGMA synchronous").fetchone()[0])
    await store.close()
    assert (ingest, other) == (2, 1)


async def test_an_older_order_never_replaces_a_newer_one(tmp_path):
    store = await Store(str(tmp_path / "o.db")).open()
    t = datetime(2026, 11, 1, 12, tzinfo=UTC)
    newer, older = make_order(t, tags=("new",)), make_order(t - timedelta(minutes=1), tags=("old",))
    assert [r.saved for r in await store.save_orders([newer, older], from_webhook=True)] == [True, False]
    assert (await store.get_order("gid://shopify/Order/1001")).tags == ("new",)
    await store.close()


async def test_a_webhook_without_fulfillment_orders_keeps_the_known_ones(tmp_path):
    store = await Store(str(tmp_path / "o.db")).open()
    t = datetime(2026, 11, 1, 12, tzinfo=UTC)
    await store.save_orders([make_order(t, fulfillment_orders=())], from_webhook=False)
    (result,) = await store.save_orders(
        [make_order(t + timedelta(minutes=5), fulfillment_orders=None)], from_webhook=True
    )
    assert result.saved and result.current.fulfillment_orders == ()
    stored = await store.get_order("gid://shopify/Order/1001")
    assert stored.fulfillment_orders == ()
    assert stored.updated_at == t + timedelta(minutes=5)
    assert await store.order_ids_seen_by_webhook(["gid://shopify/Order/1001"]) == {"gid://shopify/Order/1001"}
    await store.close()


async def test_deliveries_are_deduplicated_by_every_identity(tmp_path):
    store = await Store(str(tmp_path / "o.db")).open()

    def delivery(webhook_id, event_id, topic="orders/updated", key=None):
        return Delivery(webhook_id, event_id, topic, "s.myshopify.com", None, key, "{}")

    fresh = await store.add_deliveries(
        [
            delivery("w1", "e1"),
            delivery("w1", "e2"),
            delivery("w2", "e1"),
            delivery("w3", "e1", "orders/paid"),
            delivery("w4", "e4", key="k"),
            delivery("w5", "e5", key="k"),
        ]
    )
    assert fresh == [True, False, False, True, True, False]
    # Against what is stored: repeats of each identity, mixed with new deliveries in one batch.
    fresh = await store.add_deliveries(
        [
            delivery("w1", "e9"),
            delivery("w6", "e6"),
            delivery("w7", "e7", key="k"),
            delivery("w8", "e1"),
            delivery("w9", "e1", "orders/create"),
        ]
    )
    assert fresh == [False, True, False, False, True]
    duplicates = await store.read(lambda db: db.execute("SELECT sum(value) FROM counters").fetchone()[0])
    assert duplicates == 3 + 3
    await store.close()


async def test_storing_deliveries_does_not_stall_the_event_loop(tmp_path):
    """2,000 deliveries from 20 concurrent senders, through the inbox writer as the server stores them, while the
    database thread runs a bulk write of its own and a heartbeat measures how late the loop wakes it."""
    from bot.shopify.webhooks import InboxWriter

    store = await Store(str(tmp_path / "o.db")).open()
    writer = InboxWriter(store, on_stored=lambda: None)
    writer.start()
    lags: list[float] = []
    done = asyncio.Event()

    async def heartbeat(lags: list[float], done: asyncio.Event):
        while not done.is_set():
            start = time.perf_counter()
            await asyncio.sleep(0.001)
            lags.append(time.perf_counter() - start - 0.001)

    async def sender(stream: int):  # like 20 webhook requests in flight
        for i in range(100):
            body = "{}" * 200
            await writer.submit(Delivery(f"w{stream}-{i}", None, "orders/updated", None, None, None, body))

    t = datetime(2026, 11, 1, tzinfo=UTC)
    bulk = [make_order(t, id=f"gid://shopify/Order/{n}", name=f"#{n}") for n in range(2000)]
    beat = asyncio.create_task(heartbeat(lags, done))
    started = time.perf_counter()
    await asyncio.gather(*(sender(stream) for stream in range(20)), store.save_orders(bulk, from_webhook=False))
    elapsed = time.perf_counter() - started
    done.set()
    await beat
    await writer.stop()
    stored = await store.read(lambda db: db.execute("SELECT count(*) FROM inbox").fetchone()[0])
    # The bulk write alone, on this machine now: what a loop held for the whole of it would lag.
    again = [replace(order, id=f"gid://shopify/Order/{9000 + n}") for n, order in enumerate(bulk)]
    alone_started = time.perf_counter()
    await store.save_orders(again, from_webhook=False)
    bulk_alone = time.perf_counter() - alone_started
    await store.close()
    worst = max(lags)
    # The same heartbeat with nothing else to do, as long again: how late this machine wakes a loop anyway (on a
    # busy CI box the OS alone pauses the process for tens of milliseconds).
    idle_lags: list[float] = []
    idle_done = asyncio.Event()
    idle = asyncio.create_task(heartbeat(idle_lags, idle_done))
    await asyncio.sleep(min(elapsed, 2.0))
    idle_done.set()
    await idle
    baseline = max(idle_lags)
    print(
        f"2000 deliveries in {elapsed:.2f}s; worst event-loop lag {worst * 1000:.1f} ms over {len(lags)} beats; "
        f"idle, the same loop's worst {baseline * 1000:.1f} ms; the bulk write alone {bulk_alone * 1000:.0f} ms"
    )
    assert stored == 2000
    # A gross stall shows here: the loop held for the whole bulk write (0.28 s alone on a quiet machine), or waiting
    # on the ingest behind it; one 50-order chunk takes about 5 ms, so a single chunk run on the loop would not show.
    # Off the loop the beats still wait for the GIL, more so on a loaded machine: 9 to 29 ms late with a core kept
    # busy, 101 and 105 ms with test runs beside it. Hence the limit follows the bulk write as this run measured it.
    assert worst < baseline + max(0.15, 0.8 * bulk_alone), (worst, baseline, bulk_alone)


async def test_a_delivery_is_acknowledged_only_once_committed_and_times_out_while_the_database_is_locked(tmp_path):
    """Another program holds the write lock: the delivery's request gets TimeoutError at its deadline (a 503, which
    Shopify sends again), never an answer before its row is committed. Once the lock goes, the next delivery's
    answer comes with its row already visible to another connection, and so does each of many waiting at once."""
    import sqlite3

    from bot.shopify.webhooks import InboxWriter

    path = tmp_path / "o.db"
    store = await Store(str(path)).open()
    writer = InboxWriter(store, on_stored=lambda: None, deadline=0.3)
    writer.start()
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # an operator's shell in a write transaction

    def stored(webhook_id: str) -> bool:
        with sqlite3.connect(path) as reader:
            return reader.execute("SELECT count(*) FROM inbox WHERE webhook_id = ?", [webhook_id]).fetchone()[0] == 1

    locked_out = asyncio.create_task(writer.submit(Delivery("locked", None, "orders/updated", None, None, None, "{}")))
    done, _ = await asyncio.wait([locked_out], timeout=3.0)
    assert done, "no answer within ten times the deadline"
    assert isinstance(locked_out.exception(), TimeoutError)
    assert not stored("locked")
    other.execute("ROLLBACK")
    other.close()

    async def acknowledged(webhook_id: str) -> bool:
        is_new = await writer.submit(Delivery(webhook_id, None, "orders/updated", None, None, None, "{}"))
        return is_new and stored(webhook_id)  # read at the moment the answer is given

    assert await acknowledged("after")
    assert all(await asyncio.gather(*(acknowledged(f"many-{n}") for n in range(50))))
    await writer.stop()
    await store.close()


@pytest.mark.parametrize(
    "busy_for,budget",
    [(float("inf"), 1.0), (5.0, 1.0), (0.25, 0.25), (0.1, 0.1), (0.01, 0.1), (0.0, 0.1)],
)
def test_processing_may_wait_as_long_as_it_worked_within_one_quiet_window_and_the_longest_deferral(busy_for, budget):
    from bot.shopify.webhooks import INGEST_QUIET_SECONDS, MAX_DEFERRAL_SECONDS, deferral_budget

    assert (INGEST_QUIET_SECONDS, MAX_DEFERRAL_SECONDS) == (0.1, 1.0)  # the numbers above
    assert deferral_budget(busy_for) == budget


class DrivenStream:
    """Deliveries reaching an InboxWriter on a clock the test moves: each of the writer's sleeps moves the clock on
    by its length, and `arriving` more deliveries come, one at the end of each sleep."""

    def __init__(self, arriving: int):
        self.now = 1000.0
        self.arriving = arriving
        self.slept: list[float] = []
        self.submitted: list[asyncio.Task[bool]] = []
        self.writer = None

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.slept.append(seconds)
        if self.arriving > 0:
            self.arriving -= 1
            await self.arrive()

    async def arrive(self) -> None:
        delivery = Delivery(f"d{len(self.submitted)}", None, "orders/updated", None, None, None, "{}")
        self.submitted.append(asyncio.create_task(self.writer.submit(delivery)))
        await asyncio.sleep(0)  # the request reaches the writer

    async def paused_for(self) -> float:
        """How long yield_to_ingest held processing back, on the driven clock."""
        self.slept = []
        await self.writer.yield_to_ingest()
        return sum(self.slept)


async def driven_writer(tmp_path, stream: DrivenStream):
    from bot.shopify.webhooks import InboxWriter

    store = await Store(str(tmp_path / "o.db")).open()
    stream.writer = InboxWriter(store, on_stored=lambda: None, clock=stream.clock, sleep=stream.sleep)
    stream.writer.start()
    return store


async def test_processing_yields_to_a_burst_of_deliveries_but_never_for_long(tmp_path):
    """The first pause of a burst after a quiet spell lasts MAX_DEFERRAL_SECONDS however long the burst goes on;
    once no delivery has come for a quiet window, processing goes on at once; a burst that ends while processing
    waits lets it go on one quiet window after its last delivery."""
    from bot.shopify.webhooks import INGEST_QUIET_SECONDS, MAX_DEFERRAL_SECONDS

    stream = DrivenStream(arriving=1000)
    store = await driven_writer(tmp_path, stream)
    await stream.arrive()
    assert await stream.paused_for() == pytest.approx(MAX_DEFERRAL_SECONDS)

    stream.arriving = 0
    stream.now += 0.15
    assert await stream.paused_for() == 0, "no deliveries arriving: processing goes on at once"

    stream.now += 5.0  # a long quiet spell, then a burst of four deliveries a quiet window apart
    stream.arriving = 3
    await stream.arrive()
    assert await stream.paused_for() == pytest.approx(4 * INGEST_QUIET_SECONDS)
    await asyncio.gather(*stream.submitted)
    await stream.writer.stop()
    await store.close()


async def test_under_a_steady_stream_processing_waits_no_longer_than_it_worked(tmp_path):
    """A stream that never pauses (Shopify's deliveries during a long sale) must not hold processing to one batch a
    second: after working for 0.25 s, processing waits as long, rounded up to whole quiet windows (0.3 s), not
    MAX_DEFERRAL_SECONDS."""
    stream = DrivenStream(arriving=1000)
    store = await driven_writer(tmp_path, stream)
    await stream.arrive()
    await stream.paused_for()  # the first pause of a burst
    stream.now += 0.25  # a batch processed, while the deliveries keep coming
    await stream.arrive()
    assert await stream.paused_for() == pytest.approx(0.3)
    await asyncio.gather(*stream.submitted)
    await stream.writer.stop()
    await store.close()


async def test_on_the_event_loop_clock_processing_yields_to_a_burst_and_goes_on_while_it_lasts(tmp_path):
    """End to end, on real time and real sleeps, while deliveries arrive 5 ms apart for up to 5 s: processing waits
    at least a quiet window (a delivery came just before) and goes on long before the burst ends. Its pause is
    MAX_DEFERRAL_SECONDS plus how late the event loop wakes its sleeps, which was 8 to 26 ms in 10 runs on 2 cores
    with one kept busy by another process: the upper bound leaves a margin of 1 s."""
    from bot.shopify.webhooks import INGEST_QUIET_SECONDS, MAX_DEFERRAL_SECONDS, InboxWriter

    store = await Store(str(tmp_path / "o.db")).open()
    writer = InboxWriter(store, on_stored=lambda: None)
    writer.start()
    loop = asyncio.get_running_loop()
    submitted: list[asyncio.Task[bool]] = []
    processing_went_on = asyncio.Event()

    def deliver(i: int) -> None:  # a concurrent request, as Shopify sends them, waiting for its own commit
        submitted.append(
            asyncio.create_task(writer.submit(Delivery(f"b{i}", None, "orders/updated", None, None, None, "{}")))
        )

    async def burst():
        for i in range(1, 1000):
            await asyncio.sleep(0.005)
            if processing_went_on.is_set():
                return
            deliver(i)

    deliver(0)
    sender = asyncio.create_task(burst())
    await asyncio.sleep(0)  # the first delivery reaches the writer
    started = loop.time()
    await writer.yield_to_ingest()
    waited = loop.time() - started
    processing_went_on.set()
    await sender
    await asyncio.gather(*submitted)
    await writer.stop()
    await store.close()
    print(f"processing waited {waited:.3f} s for a burst of {len(submitted)} deliveries")
    assert INGEST_QUIET_SECONDS <= waited <= MAX_DEFERRAL_SECONDS + 1.0, waited


async def test_an_existing_database_is_brought_to_watching_only_what_reconciliation_must(tmp_path):
    """Before the migration every open order was re-read by each scan; after it, only those rules.needs_watching
    keeps: not a shipped order with its tracking, nor an archived one."""
    path = str(tmp_path / "o.db")
    db = sqlite_utils.Database(path)
    migrate_to_before(db, _m5_scan)
    now = datetime(2025, 3, 10, tzinfo=UTC)
    shipped_at = now - timedelta(days=40)
    tracked = Fulfillment(
        "gid://shopify/Fulfillment/1", "SUCCESS", shipped_at, shipped_at, (Tracking("1Z9", "UPS", None),)
    )
    orders = {
        "unshipped": make_order(now, id="gid://shopify/Order/1"),
        "shipped": make_order(now, id="gid://shopify/Order/2", fulfillment_status="FULFILLED", fulfillments=(tracked,)),
        "shipped-untracked": make_order(
            now,
            id="gid://shopify/Order/3",
            fulfillment_status="FULFILLED",
            fulfillments=(replace(tracked, tracking=()),),
        ),
        "archived": make_order(now, id="gid://shopify/Order/4", closed_at=now),
    }
    for order in orders.values():
        db.execute(
            "INSERT INTO orders (id, name, is_open, record) VALUES (?, ?, ?, ?)",
            [order.id, order.name, int(not order.closed), json.dumps(order_to_record(order))],
        )
    db.conn.commit()
    db.conn.close()

    store = await Store(path).open()
    watched = await store.watched_order_ids()
    history = await store.scan_history()
    await store.close()

    assert watched == {orders["unshipped"].id, orders["shipped-untracked"].id}
    assert history == (None, None)  # the first scan after the upgrade is a full sweep
