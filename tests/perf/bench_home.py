"""Home tab benchmark: 20 people watch their App Home while a burst of 500 stuck orders arrives.

    python tests/perf/bench_home.py [--viewers 20] [--changes 500]

Everything runs in this process over real HTTP on 127.0.0.1, wired as the alert benchmark wires it
(bench_alerts.running_world): the real server (`create_app(..., reconcile=False)`) with HOME_REFRESH at its default
and the real clock, the sandbox Shopify at its default (Standard plan) limits and the sandbox Slack. `--viewers`
people open orderbot's Home tab (the signed `app_home_opened` event, as Slack sends it), then `--changes` stuck
orders' `orders/updated` webhooks are sent at once (bench_alerts.stuck_orders, `generate_orders(..., seed=1)`): each
one the server processes adds a stuck verdict, a change every open board shows.

The burst's changes are the deliveries' processing (inbox.processed_at: each commits a new stuck verdict and marks
the boards out of date); it spans first change -> last change. The floor is what a publisher that shows every change
within HOME_REFRESH must send: each viewer's board once when they open it, and then the fewest publishes that show
each change within HOME_REFRESH of it (each as late as the oldest change not yet shown allows):

    floor = viewers x (1 + fewest refreshes)

Also printed, the figure for changes that never pause: viewers x (1 + floor(span / HOME_REFRESH) + 1). The
deliveries are processed in batches as Shopify's rate limit allows, so the changes come in bunches with pauses
between them; a window without a change needs no publish, and that figure overstates the floor.

A board is current when its last published view shows the store's final stuck counts: every reason's count under
"Stuck orders" equals the verdicts table's, and "N more" equals the stuck orders beyond the ten listed. Time to
current is measured from the last change to the publish that made the last board current.

Pass rule: views.publish calls <= 1.5 x floor, and every board current within HOME_REFRESH + 2 s of the last change
and still current when the run ends (HOME_REFRESH + 1 s after every board was current). About 2-3
minutes (the Shopify reads of the burst, at the Standard plan's 100 points a second, set its span). Exits non-zero
when the rule fails or a webhook is not answered 200.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import re
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from bench_alerts import (  # the same sandbox wiring as the alert benchmark
    SIGNING_SECRET,
    Checks,
    World,
    epoch,
    running_world,
    stuck_orders,
    wait_for,
)

from bot.domain.home import URGENT_SHOWN
from bot.domain.rules import REASON_TITLES
from bot.sandbox.slack_payloads import home_opened_event, sign_request
from bot.web import SLACK

PUBLISHES_LIMIT = 1.5  # x the floor
CURRENT_MARGIN = 2.0  # seconds beyond HOME_REFRESH
SEED = 1  # bench_alerts.stuck_orders' generate_orders seed
_COUNT_LINE = re.compile(r"^\*(?P<title>.+)\*: (?P<count>\d+)")
_MORE = re.compile(r"^(?P<more>\d+) more")


def fewest_refreshes(changes: list[float], every: float) -> int:
    """The fewest publishes of one board that show each change (times, sorted) within `every` seconds of it: each
    publish as late as the oldest change it has not shown allows, showing every change up to then."""
    count, shown_until = 0, float("-inf")
    for at in changes:
        if at > shown_until:
            count, shown_until = count + 1, at + every
    return count


async def open_home(world: World, viewer: str) -> None:
    """`viewer` opens orderbot's Home tab, as tests/conftest.py World.open_home sends it."""
    body = json.dumps(home_opened_event(user_id=viewer, view=world.slack.home(viewer))).encode()
    headers = sign_request(body, SIGNING_SECRET) | {"Content-Type": "application/json"}
    async with world.http.post(f"{world.url}/slack/events", data=body, headers=headers) as response:
        await response.read()
        assert response.status == 200, response.status


def shown_counts(view: dict) -> tuple[dict[str, int], int]:
    """The stuck counts a Home view shows (reason title -> count) and its "N more"."""
    blocks = view["blocks"]
    header = next(i for i, b in enumerate(blocks) if b["type"] == "header" and b["text"]["text"] == "Stuck orders")
    counts = {}
    for line in blocks[header + 1]["text"]["text"].splitlines():
        if found := _COUNT_LINE.match(line):
            counts[found["title"]] = int(found["count"])
    more = 0
    for block in blocks:
        if block["type"] == "context" and (found := _MORE.match(block["elements"][0]["text"])):
            more = int(found["more"])
    return counts, more


def store_counts(world: World) -> tuple[dict[str, int], int]:
    """The stuck counts as the verdicts table has them, in the board's terms."""
    counts = dict(world.rows("SELECT reason, count(*) FROM verdicts WHERE stuck = 1 GROUP BY reason"))
    return {REASON_TITLES.get(r, r): n for r, n in counts.items()}, max(sum(counts.values()) - URGENT_SHOWN, 0)


def first_current_publish(world: World, viewer: str, after: float, final: tuple[dict[str, int], int]) -> float | None:
    """When the viewer's board was first published showing `final` after `after` (None: not yet)."""
    for call in world.slack.publishes(viewer):
        if call.at >= after and shown_counts(call.args["view"]) == final:
            return call.at
    return None


def last_is_current(world: World, viewer: str, final: tuple[dict[str, int], int]) -> bool:
    view = world.slack.home(viewer)
    return view is not None and shown_counts(view) == final


async def run(args: argparse.Namespace) -> int:
    checks = Checks()
    started = time.perf_counter()
    orders, stuck, generated = await stuck_orders(args.changes, datetime.now(UTC))
    print(
        f"orders: generate_orders({generated}, seed={SEED}): {len(stuck)} stuck by one GraphQL read each "
        f"({time.perf_counter() - started:.1f} s to find them); {args.changes} of them sent"
    )
    viewers = [f"U0VIEW{n:03d}" for n in range(1, args.viewers + 1)]
    with tempfile.TemporaryDirectory() as folder:
        async with running_world(orders, Path(folder)) as world:
            every = world.app[SLACK].home.every
            world.slack.users.update({viewer: f"viewer{n}" for n, viewer in enumerate(viewers, 1)})
            await wait_for(lambda: world.shop.operations, 10, "the server asks Shopify for the shop's name at start")
            await asyncio.gather(*(open_home(world, viewer) for viewer in viewers))
            await wait_for(lambda: all(world.slack.publishes(v) for v in viewers), 30, "every viewer's first board")
            opened = len(world.slack.publishes())

            burst_start = time.time()
            results = await asyncio.gather(
                *(world.post_webhook(order_id, f"bench-home-{uuid.uuid4()}") for order_id in stuck[: args.changes])
            )
            answered = time.time() - burst_start
            not_ok = Counter(status for status, _ in results if status != 200)
            checks.expect(not not_ok, f"webhooks not answered 200: {dict(not_ok)}")

            def processed() -> bool:
                return world.rows("SELECT count(*) FROM inbox WHERE status = 'processed'")[0][0] >= args.changes

            await wait_for(processed, 600, "every delivery processed")
            processed_at = world.rows("SELECT processed_at FROM inbox WHERE status = 'processed'")
            changes = sorted(epoch(at) for (at,) in processed_at)
            first_change, last_change = changes[0], changes[-1]
            final = store_counts(world)

            def all_current() -> bool:
                return all(last_is_current(world, viewer, final) for viewer in viewers)

            try:
                await wait_for(all_current, every + CURRENT_MARGIN + 30, "every board current")
            except TimeoutError as exc:
                checks.problems.append(str(exc))
            await asyncio.sleep(every + 1.0)  # a publish the burst still owed, or one too many, would come now
            current_at = {viewer: first_current_publish(world, viewer, last_change, final) for viewer in viewers}
            still_current = sum(last_is_current(world, viewer, final) for viewer in viewers)
            per_viewer = [len(world.slack.publishes(viewer)) for viewer in viewers]
            refreshes = [[c.at for c in world.slack.publishes(viewer)[1:]] for viewer in viewers]  # after the open
            publishes = len(world.slack.publishes())
            failed_publishes = len(world.slack.calls_to("views.publish")) - publishes
            alerts_posted = sum(1 for c in world.slack.calls_to("chat.postMessage") if c.status == 200)

    span = last_change - first_change
    windows = int(span // every) + 1
    span_floor = len(viewers) * (1 + windows)
    needed = fewest_refreshes(changes, every)
    floor = len(viewers) * (1 + needed)
    ratio = publishes / floor
    gaps = [b - a for times in refreshes for a, b in itertools.pairwise(times)]
    rounds = [max(times) - min(times) for times in zip(*refreshes, strict=False)]  # the k-th refresh of each viewer
    lags = [at - last_change for at in current_at.values() if at is not None]
    worst = max(lags) if len(lags) == len(viewers) else float("inf")
    checks.expect(ratio <= PUBLISHES_LIMIT, f"{publishes} publishes is {ratio:.2f} x the floor {floor}")
    checks.expect(worst <= every + CURRENT_MARGIN, f"the last board was current {worst:.2f} s after the last change")
    checks.expect(still_current == len(viewers), f"{len(viewers) - still_current} boards not current at the end")
    checks.expect(failed_publishes == 0, f"{failed_publishes} views.publish calls failed")

    total, more = final
    print(f"\n{len(viewers)} viewers opened their Home ({opened} publishes); HOME_REFRESH {every:g} s (default)")
    print(f"   {'burst: webhooks sent at once, all answered in':<52} {answered:.2f} s ({args.changes} stuck orders)")
    print(
        f"   {'changes (deliveries processed): first, last':<52} +{first_change - burst_start:.2f} s, "
        f"+{last_change - burst_start:.2f} s after the burst began; span {span:.2f} s"
    )
    print(f"   {'refresh windows the span holds':<52} floor({span:.2f} / {every:g}) + 1 = {windows}")
    print(
        f"   {'  as if changes never paused: viewers x (1 + that)':<52} {len(viewers)} x {1 + windows} = {span_floor}"
    )
    print(f"   {'refreshes that show every change within HOME_REFRESH':<52} {needed} at the fewest")
    print(f"   {'floor: viewers x (1 + that)':<52} {len(viewers)} x {1 + needed} = {floor}")
    print(
        f"   {'views.publish calls (200)':<52} {publishes} (per viewer min {min(per_viewer)}, "
        f"median {statistics.median(per_viewer):g}, max {max(per_viewer)}); failed: {failed_publishes}"
    )
    print(
        f"   {'ratio publishes / floor':<52} {ratio:.3f} (limit {PUBLISHES_LIMIT}); "
        f"to the span's figure {publishes / span_floor:.3f}"
    )
    if gaps:
        print(
            f"   {'one viewer: between two refreshes':<52} min {min(gaps):.2f} s, "
            f"median {statistics.median(gaps):.2f} s, max {max(gaps):.2f} s"
        )
        print(
            f"   {'one round (the k-th refresh of every viewer): first -> last':<52} "
            f"median {statistics.median(rounds):.2f} s, max {max(rounds):.2f} s"
        )
    print(f"   {'final stuck counts (store = every board)':<52} {sum(total.values())} stuck, {more} more than listed")
    if lags:
        print(
            f"   {'last change -> board current, per viewer':<52} min {min(lags):.2f} s, "
            f"median {statistics.median(lags):.2f} s, max {max(lags):.2f} s "
            f"(limit {every:g} + {CURRENT_MARGIN:g} = {every + CURRENT_MARGIN:g} s); "
            f"current: {len(lags)}/{len(viewers)}, still at the end: {still_current}"
        )
    print(f"   {'alerts posted meanwhile (one a second)':<52} {alerts_posted}")
    if checks.problems:
        print("\nFAIL: " + "; ".join(checks.problems))
        return 1
    print(
        f"\nPASS: publishes <= {PUBLISHES_LIMIT} x floor, every board current within HOME_REFRESH + "
        f"{CURRENT_MARGIN:g} s of the last change"
    )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--viewers", type=int, default=20, help="people who opened their Home tab")
    parser.add_argument("--changes", type=int, default=500, help="stuck orders' webhooks in the burst")
    args = parser.parse_args()
    if args.viewers < 1 or args.changes < 1:
        parser.error("--viewers and --changes must be at least 1")
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
