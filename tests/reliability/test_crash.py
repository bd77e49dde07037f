"""kill -9 under load (issue 6): the real server, `python -m bot serve`, runs as a subprocess against the sandbox
Shopify and Slack (one post a second per channel, as Slack enforces it) while another process posts a steady stream
of signed webhooks at it. The server is killed at random moments, each of a kind: while an alert post is out at Slack
("posting"), anywhere ("random"), in the middle of a bulk run started through signed Slack requests ("bulk"), and as a
bulk run's last order finishes ("ending"); it is started again each time while the stream goes on. A last clean run
drains everything and stops on SIGTERM. Then:

- every delivery that got a 200 is in the inbox (lost = 0); every stored one was processed and marked so once;
- the channel has exactly one alert per stuck order, and Slack never refused a post for pacing;
- each bulk run finished after its restarts: Shopify applied one orderClose per order, and its summary is posted;
- no customer's email or name and no secret reached the server's logs.

`pytest --long` runs the full-size variant: 40 more orders, 11 kills, two bulk runs, a longer and faster stream.
Each run draws a fresh seed and prints it; `CRASH_SEED=<seed>` replays the same deliveries and kill moments.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.sandbox.seed import seed_orders
from tests.conftest import free_port, wait_for
from tests.reliability.crash_support import (
    CHANNEL,
    SHOP,
    STUCK_IN_SEED,
    Sandboxes,
    Server,
    SlackPerson,
    Stream,
    alert_messages,
    confirm_value,
    delivery_plan,
    orders_closed,
    paced_refusals,
    post_webhook,
    requests_other_than_reads,
    rows,
    server_environment,
    shop_orders,
)


@dataclass(frozen=True)
class Size:
    long: bool
    kills: tuple[str, ...]  # the moment each kill waits for: a `_before_<kind>` of Crashes
    other_orders: int  # generated orders of any kind, beside the 18 seeded ones
    run_size: int  # orders per bulk run
    rate: float  # new deliveries a second
    planned: int  # deliveries the sender may send: more than a run takes, so that the stream never runs dry


SHORT = Size(False, ("posting", "random", "bulk", "ending"), other_orders=0, run_size=8, rate=60, planned=4_000)
LONG = Size(
    True,
    ("posting", "random", "posting", "random", "random", "bulk", "random", "ending", "random", "bulk", "random"),
    other_orders=40,
    run_size=8,
    rate=80,
    planned=20_000,
)
CONNECTIONS = 8
DUPLICATE_SHARE = 0.05
FLOWING = 20  # deliveries acknowledged by the run about to be killed: the stream reaches it
SLOW_POST = 0.8  # seconds Slack takes to answer a slow post


@dataclass
class Kill:
    kind: str
    acknowledged: int  # deliveries the stream had got a 200 for
    inbox_pending: int  # stored deliveries left for the next run to process
    posts_in_flight: int  # outbox rows whose call to Slack was out
    bulk_items: dict[str, int]  # the latest run's items by status

    def __str__(self) -> str:
        bulk = f", bulk items {dict(sorted(self.bulk_items.items()))}" if self.bulk_items else ""
        return (
            f"kill ({self.kind}): {self.acknowledged} acknowledged so far, {self.inbox_pending} left to process, "
            f"{self.posts_in_flight} Slack posts in flight{bulk}"
        )


@dataclass
class Crashes:
    """Kills the server at the moment each kind waits for, and starts it again."""

    world: Sandboxes
    server: Server
    stream: Stream
    person: SlackPerson
    rng: random.Random
    run_orders: list[list[str]]  # the names of the orders of each bulk run to start, in turn
    runs: list[int] = field(default_factory=list)
    kills: list[Kill] = field(default_factory=list)

    def rows(self, sql: str, params: tuple = ()) -> list[tuple]:
        return rows(self.server.db_path, sql, params)

    def unsent_alerts(self) -> int:
        return self.rows("SELECT count(*) FROM outbox WHERE kind = 'alert' AND status IN ('pending', 'sending')")[0][0]

    def items(self, run_id: int) -> Counter[str]:
        return Counter(
            dict(self.rows("SELECT status, count(*) FROM bulk_items WHERE run_id = ? GROUP BY 1", (run_id,)))
        )

    async def kill_and_restart(self, kind: str) -> None:
        flowing_from = len(self.stream.acknowledged()) + FLOWING
        await wait_for(lambda: len(self.stream.acknowledged()) >= flowing_from, 20)
        await getattr(self, f"_before_{kind}")()
        await self.server.kill()
        self.world.full_speed_shopify()
        self.kills.append(self._state_at_kill(kind))
        print(self.kills[-1])
        await self.server.start()  # at once: the new process must pace itself after the dead one's last post

    def _state_at_kill(self, kind: str) -> Kill:
        assert self.stream.process.returncode is None and len(self.stream.sent()) < self.stream.deliveries, (
            "the stream ran dry"
        )
        return Kill(
            kind,
            len(self.stream.acknowledged()),
            self.rows("SELECT count(*) FROM inbox WHERE status = 'pending'")[0][0],
            self.rows("SELECT count(*) FROM outbox WHERE status = 'sending'")[0][0],
            dict(self.items(self.runs[-1])) if self.runs else {},
        )

    async def _before_random(self) -> None:
        await asyncio.sleep(self.rng.uniform(0.2, 2.5))

    async def _before_posting(self) -> None:
        """While alerts go out at Slack's pace, Slack is slow to answer a post, and the next post must still keep
        its second from that one's arrival; then another is slow, and the kill lands while it is out."""
        await wait_for(lambda: alert_messages(self.world.slack) and self.unsent_alerts() >= 4, 30)
        self.world.slack.fail_next("chat.postMessage", "timeout", delay=SLOW_POST)
        await self._slow_post_out()
        answered = len(self.world.slack.calls_to("chat.postMessage"))
        await wait_for(lambda: len(self.world.slack.calls_to("chat.postMessage")) >= answered + 2, 10)
        self.world.slack.fail_next("chat.postMessage", "timeout", delay=SLOW_POST)
        await self._slow_post_out()
        await asyncio.sleep(self.rng.uniform(0, SLOW_POST / 2))

    async def _slow_post_out(self) -> None:
        """Until an outbox row has been out at Slack for a quarter of SLOW_POST (a normal post takes milliseconds)."""
        out_since: dict[int, float] = {}

        def slow_post_out() -> bool:
            now = time.monotonic()
            sending = self.rows("SELECT id FROM outbox WHERE status = 'sending'")
            return any(now - out_since.setdefault(i, now) > SLOW_POST / 4 for (i,) in sending)

        await wait_for(slow_post_out, 10)

    async def _before_bulk(self) -> None:
        """A bulk run on a slow Shopify (about 2 orders a second), killed once a few of its orders are done."""
        run_id = await self._start_run(orders_per_second=2)
        done = self.rng.randint(1, 3)
        await wait_for(lambda: self.items(run_id)["done"] >= done, 30)
        assert self.items(run_id)["pending"] >= 2, "the run ended before the kill"

    async def _before_ending(self) -> None:
        """A bulk run killed as its last order finishes: its summary must still come, from the next start."""
        run_id = await self._start_run(orders_per_second=6)
        await wait_for(lambda: self.items(run_id)["pending"] == 0, 30)
        await asyncio.sleep(self.rng.uniform(0, 0.3))

    async def _start_run(self, orders_per_second: float) -> int:
        """`/orders archive …` and a click on Confirm, as an admin, once the channel is quiet: a run posts its
        progress message outside the outbox's pacing, so next to an alert it would meet a 429 (reported)."""
        await wait_for(self._channel_quiet, 90)
        names = self.run_orders[len(self.runs)]
        marks = ",".join("?" * len(names))
        await wait_for(
            lambda: len(self.rows(f"SELECT 1 FROM orders WHERE name IN ({marks})", tuple(names))) == len(names)
        )
        preview = await self.person.command("archive " + " ".join(names))
        assert f"Archiving *{len(names)} orders*" in json.dumps(preview), preview
        self.world.slow_shopify(orders_per_second)
        started = await self.person.confirm(preview)
        assert "started" in started["text"], started
        self.runs.append(confirm_value(preview))
        return self.runs[-1]

    def _channel_quiet(self) -> bool:
        return self.unsent_alerts() == 0

    def summary(self, run_id: int) -> str | None:
        """The run's message once it is its summary (and the run is stored as done)."""
        ((status, ts),) = self.rows("SELECT status, message_ts FROM bulk_runs WHERE id = ?", (run_id,))
        shown = json.dumps(self.world.slack.message(CHANNEL, ts)) if ts else ""
        return shown if status == "done" and "Finished" in shown else None


@pytest.mark.parametrize(
    "size", [pytest.param(SHORT, id="short"), pytest.param(LONG, id="long", marks=pytest.mark.timeout(900))]
)
async def test_kill_9_under_a_webhook_stream_loses_nothing_and_does_nothing_twice(
    size: Size, long_run: bool, tmp_path: Path
):
    if size.long != long_run:
        pytest.skip("the full-size variant runs under --long, the short one without it")
    seed = int(os.environ.get("CRASH_SEED") or random.randrange(1 << 32))
    print(f"\ncrash seed {seed}")
    rng = random.Random(seed)
    runs = sum(kind in ("bulk", "ending") for kind in size.kills)
    orders, to_archive = shop_orders(
        datetime.now(UTC), archivable_count=size.run_size * runs, other_count=size.other_orders
    )
    world = await Sandboxes.start(orders)
    server = Server(server_environment(world, tmp_path / "orderbot.db", free_port()), tmp_path)
    plan = delivery_plan(world.shop, rng, size.planned, DUPLICATE_SHARE)
    stream = Stream(
        tmp_path,
        {
            "url": f"{server.url}/shopify/webhooks",
            "secret": world.keys.client_secret,
            "shop": SHOP,
            "rate": size.rate,
            "connections": CONNECTIONS,
            "deliveries": plan,
        },
    )
    run_orders = [to_archive[i : i + size.run_size] for i in range(0, len(to_archive), size.run_size)]
    crashes = Crashes(world, server, stream, SlackPerson(world, server), rng, run_orders)
    started = time.monotonic()
    try:
        await server.start()
        await stream.start()
        for kind in size.kills:
            await crashes.kill_and_restart(kind)
        await last_run(crashes)
        assert await server.stop() == 0
    finally:
        await stop_all(world, server, stream)
    print(f"crash suite ran {time.monotonic() - started:.0f} s")
    problems = check_everything(crashes, plan)
    assert not problems, "\n".join(problems)


async def last_run(crashes: Crashes) -> None:
    """The clean run: every bulk run ends with its summary and every alert is out; the sender gets its last
    deliveries through and stops; every stored delivery is processed."""
    for run_id in crashes.runs:
        await wait_for(lambda run_id=run_id: crashes.summary(run_id) is not None, 60)
    await wait_for(lambda: not crashes.rows("SELECT 1 FROM outbox WHERE status IN ('pending', 'sending')"), 90)
    await crashes.stream.finish()
    await wait_for(lambda: not crashes.rows("SELECT 1 FROM inbox WHERE status = 'pending'"), 60)


async def stop_all(world: Sandboxes, *running: Server | Stream) -> None:
    for process in (each.process for each in running):
        if process is not None and process.returncode is None:
            process.kill()
            await process.wait()
    await world.stop()


def check_everything(crashes: Crashes, plan: list[dict]) -> list[str]:
    """Print the figures; return every problem found (all of them, so that one failure hides none of the rest)."""
    world, outcomes = crashes.world, crashes.stream.outcomes()
    sent, acknowledged = crashes.stream.sent(), crashes.stream.acknowledged()
    stored = {webhook_id for (webhook_id,) in crashes.rows("SELECT webhook_id FROM inbox")}
    stuck = {order_id for (order_id,) in crashes.rows("SELECT order_id FROM verdicts WHERE stuck = 1")}
    alerts = alert_messages(world.slack)
    closed = orders_closed(world.shop)
    errors = Counter(o["error"] for o in outcomes if o["status"] is None)
    print(
        f"crash: {len(crashes.kills)} kills, sent {len(sent)}, acknowledged {len(acknowledged)}, stored {len(stored)}, "
        f"lost {len(acknowledged - stored)}, alerts {sum(alerts[o] == 1 for o in stuck)}/{len(stuck)}, "
        f"429s {len(paced_refusals(world.slack))}, bulk orders closed {sum(closed.values())}/"
        f"{sum(map(len, crashes.run_orders[: len(crashes.runs)]))}; {len(outcomes)} attempts: "
        f"{errors['ClientConnectorError']} refused (server down), "
        f"{errors.total() - errors['ClientConnectorError']} cut off by a kill, all sent again"
    )
    return [
        *delivery_problems(crashes, plan, sent, acknowledged),
        *alert_problems(crashes, stuck, alerts),
        *bulk_problems(crashes, closed),
        *leaks(crashes),
    ]


def delivery_problems(crashes: Crashes, plan: list[dict], sent: set[str], acknowledged: set[str]) -> list[str]:
    """Acknowledged means stored; stored means processed, and marked processed by one batch (`attempts` counts the
    commits that finished a delivery; a batch killed before its commit is done again, and counted once)."""
    inbox = crashes.rows("SELECT webhook_id, status, attempts FROM inbox")
    stored = {webhook_id for webhook_id, _, _ in inbox}
    checks = [
        (acknowledged <= stored, f"acknowledged but not stored: {sorted(acknowledged - stored)[:5]}"),
        (acknowledged == sent, f"sent but never acknowledged: {sorted(sent - acknowledged)[:5]}"),
        (stored <= {d["webhook_id"] for d in plan}, "the inbox holds a delivery nobody sent"),
        (
            {(status, attempts) for _, status, attempts in inbox} == {("processed", 1)},
            f"deliveries not processed, or finished more than once: {Counter((s, a) for _, s, a in inbox)}",
        ),
    ]
    return [problem for ok, problem in checks if not ok]


def alert_problems(crashes: Crashes, stuck: set[str], alerts: Counter[str]) -> list[str]:
    """One alert per stuck order (the seeded ones known independently), none for the others, and no 429."""
    names = {order_id: order["name"] for order_id, order in crashes.world.shop.orders.items()}
    refused = paced_refusals(crashes.world.slack)
    checks = [
        (
            {names[o] for o in stuck if names[o].startswith("#10")} == STUCK_IN_SEED,
            "the seeded stuck orders are not the ones classified stuck",
        ),
        (
            set(alerts) == stuck and set(alerts.values()) == {1},
            f"not one alert per stuck order: repeated {sorted(names[o] for o, n in alerts.items() if n > 1)}, "
            f"missing {sorted(names[o] for o in stuck - set(alerts))}, for no stuck order "
            f"{sorted(names[o] for o in set(alerts) - stuck)}",
        ),
        (not refused, f"posts Slack refused for pacing: {refused}"),
    ]
    checks += [(k.posts_in_flight > 0, f"{k}: no post was out") for k in crashes.kills if k.kind == "posting"]
    return [problem for ok, problem in checks if not ok]


def bulk_problems(crashes: Crashes, closed: Counter[str]) -> list[str]:
    """Each run: every order archived exactly once, each item done (or, in flight at a kill, found done), one
    message ending as the summary; and Shopify saw no other mutation."""
    progress = [m for m in crashes.world.slack.messages(CHANNEL) if m["text"].startswith("Archiving")]
    others = set(requests_other_than_reads(crashes.world.shop)) - {"OrderClose"}
    checks = [
        (len(progress) == len(crashes.runs), f"{len(progress)} progress messages for {len(crashes.runs)} runs"),
        (not others, f"Shopify saw other mutations: {others}"),
        (sum(closed.values()) == sum(len(r) for r in crashes.run_orders[: len(crashes.runs)]), f"closed: {closed}"),
    ]
    for run_id in crashes.runs:
        found = crashes.rows("SELECT order_id, status, outcome FROM bulk_items WHERE run_id = ?", (run_id,))
        items = {order_id: (status, outcome) for order_id, status, outcome in found}
        checks += [
            ({closed[o] for o in items} == {1}, f"run {run_id}: orders not archived exactly once: {closed}"),
            (  # an order in flight at a kill is found archived when the run resumes
                set(items.values()) <= {("done", "done"), ("skipped", "already")},
                f"run {run_id}: items {Counter(items.values())}",
            ),
            (crashes.summary(run_id) is not None, f"run {run_id}: no summary"),
        ]
    return [problem for ok, problem in checks if not ok]


def leaks(crashes: Crashes) -> list[str]:
    logs = crashes.server.log_text()
    found = [value for value in [*crashes.world.personal_data(), *crashes.world.keys.all()] if value in logs]
    return [f"personal data or secrets in the server's logs: {found[:3]}"] if found else []


async def test_an_order_stored_by_a_killed_batch_is_classified_by_the_next_start(tmp_path: Path):
    """A batch stores its orders first and their verdicts with the deliveries' outcomes at its end. Killed in between,
    the next start processes the deliveries again: the one whose order is already stored must still be classified,
    or an order archived in Shopify keeps its stuck alert for good (reconciliation reads only open orders)."""
    seeded = {o["name"]: o for o in seed_orders(datetime.now(UTC))}
    world = await Sandboxes.start([seeded[name] for name in ("#1001", "#1002", "#1003")])
    ids = {order["name"]: order_id for order_id, order in world.shop.orders.items()}
    server = Server(server_environment(world, tmp_path / "orderbot.db", free_port()), tmp_path)

    def stored(name: str) -> tuple:
        """(is_open, stuck, its last delivery's inbox status) of the order as the database has them."""
        return rows(
            server.db_path,
            "SELECT o.is_open, v.stuck, (SELECT status FROM inbox WHERE body_key LIKE '%' || o.id || '%'"
            " ORDER BY id DESC LIMIT 1) FROM orders o JOIN verdicts v ON v.order_id = o.id WHERE o.name = ?",
            (name,),
        )[0]

    try:
        await server.start()
        await wait_for(lambda: len(alert_messages(world.slack)) == 3, 20)
        world.shop.orders[ids["#1001"]]["closed_at"] = datetime.now(UTC)  # archived in the Shopify admin
        for order in world.shop.orders.values():
            world.shop.touch(order)  # each delivery below is news: stored, and the open orders re-read
        world.shop.fail_next("timeout", times=2, delay=2.0)  # two re-reads Shopify is slow to answer
        await post_webhook(world, server, ids["#1003"])  # its batch waits on the first slow re-read...
        await wait_for(lambda: world.shop.failures_left == 1, 10)  # (it is under way)
        await post_webhook(world, server, ids["#1001"])  # ...while these two make the next batch,
        await post_webhook(world, server, ids["#1002"])  # held open by the second slow re-read
        await wait_for(lambda: stored("#1001") == (0, 1, "pending"), 10)  # stored as archived, still stuck
        await server.kill()

        await server.start()
        await wait_for(lambda: stored("#1001") == (0, 0, "processed"), 20)
        ((ts,),) = rows(server.db_path, "SELECT ts FROM alerts WHERE order_id = ?", (ids["#1001"],))
        await wait_for(lambda: "archived in Shopify" in json.dumps(world.slack.message(CHANNEL, ts)), 10)
        assert await server.stop() == 0
    finally:
        await stop_all(world, server)
    assert alert_messages(world.slack) == Counter(dict.fromkeys(ids.values(), 1)), "and no alert twice"
