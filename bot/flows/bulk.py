"""Bulk runs: `/orders <action> <selection>` over many orders — preview, confirm, progress, summary, stop, resume.

Each order goes through `Actions.run`, the buttons' path (permission, lock, check against Shopify, mutation, audit
row, alert and thread), so every order gets its own audit row and nothing is done twice: an order changed since the
preview comes back "already done". An archive, unarchive or delete checks its orders ORDER_STATES_BATCH at a time with
the few fields that tell whether the stored copy is still Shopify's (one point an order); only an order that changed
is read in full, and the alert catches up from the mutation's payload. A few orders run at once (CONCURRENCY), so that
round trips do not leave Shopify's cost budget unused; the Shopify client waits for the budget and retries THROTTLED
itself.

A bulk cancel (`cancel_order`) is confirmed through one form, whose choices (reason, refund, restock, customer
email) the run keeps for every order; past plan.CONFIRM_BY_TYPING_OVER orders the form wants their number typed.
Shopify cancels in the background, so an order the run is done with is only requested: its follower
(bot/flows/cancellations.py) tells the run how it settled (`settled`), and the progress, then the summary, count
requested and cancelled apart, the summary drawn again as they settle (at most once every UPDATE_EVERY seconds).
The run keeps how many settled cancellations its summary showed (`settled_shown`): a start draws again a summary
showing fewer than are settled, which a process stopped between storing a settlement and drawing it leaves behind.

The run lives in the store (`bulk_runs`, `bulk_items`): an item is marked only once `Actions.run` has returned, so a
restart resumes a run with its pending items (`resume`), and at shutdown a run stops taking orders, finishes those
in flight and is resumed by the next start. One message in the alert channel shows the progress, updated in place
at most once a second (`chat.update` is Tier 3, about 50 a minute), with a Stop button; it ends as the summary. The
run decides what the preview, the progress and the summary say, as plain data; how they look is the Slack side's
(`BulkDrawer`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain import bulk as plan
from bot.domain.commands import BULK_ACTIONS, Command
from bot.domain.notices import customer_notice
from bot.domain.orders import OrderState
from bot.flows.actions import ActionRequest, Actions
from bot.shopify.client import ShopifyError
from bot.shopify.operations import ORDER_STATES_BATCH
from bot.slack.pacing import ChannelPacer
from bot.store.home import orders_by_id

log = logging.getLogger(__name__)

# Orders in flight at once, so that round trips do not leave the budget unused (tests/perf/bench_bulk.py); the client
# takes each request's cost off its budget estimate before sending, so workers that wake together do not all count on
# the same points.
CONCURRENCY = 4
UPDATE_EVERY = 1.0  # seconds between two updates of the progress message, at least
# actions whose check needs only an order's OrderState
STATE_CHECKED = frozenset({"archive", "unarchive", "delete", "cancel_order"})
PERMISSION = "bulk"
CANCEL = "cancel_order"  # the bulk action confirmed through a form, whose orders settle after the run


@dataclass(frozen=True, slots=True)
class BulkDrawer:
    """How a run's messages look, from the Slack side (bot/slack/bulk_blocks.py): each takes the run's plain data as
    keywords (its action, orders, counts, who confirmed or stopped it) and returns the message."""

    preview: Callable[..., dict]
    progress: Callable[..., dict]
    summary: Callable[..., dict]


@dataclass(frozen=True, slots=True)
class Reply:
    """The answer to a click: `text` for the clicker; `closes` when it replaces the preview (Confirm or Cancel
    took effect, or the preview is stale) rather than coming beside it (a refusal)."""

    text: str
    closes: bool = True


class BulkRuns:
    def __init__(
        self,
        actions: Actions,
        client: AsyncWebClient,
        channel: str,
        *,
        draw: BulkDrawer,
        shop: str,
        concurrency: int = CONCURRENCY,
        clock: Callable[[], float] = time.monotonic,
        pacer: ChannelPacer | None = None,
    ):
        """`draw`: how the run's messages look. `pacer`: the channel's posting pace, shared with the outbox (none: calls
        are not paced)."""
        self.actions = actions
        self.store = actions.store
        self.client = client
        self.channel = channel
        self.draw = draw
        self.pacer = pacer or ChannelPacer(0.0)
        self.shop = shop
        self.concurrency = concurrency
        self.clock = clock
        self._runs: dict[int, asyncio.Task] = {}
        self._stops: dict[int, asyncio.Event] = {}
        self._live: dict[int, _Progress] = {}  # runs under way: a settled cancellation changes their progress
        self._redraws: dict[int, asyncio.Task] = {}  # ended bulk cancels whose summary is about to be drawn again
        self._stale: set[int] = set()  # … and whose summary is out of date
        self._drawn_at: dict[int, float] = {}  # when each ended run's summary was last drawn
        self.closing = False

    # --- preview, confirm, cancel, stop (from /orders and the buttons) ---------------------------------------------

    async def preview(self, command: Command, actor: str, channel: str | None, text: str) -> dict:
        """The ephemeral answer to a bulk `/orders` command (`text`: as typed), with Confirm and Cancel for an admin;
        stores the run as `previewed` with its orders in run order."""
        assert command.action in BULK_ACTIONS and command.selection is not None, "not a bulk command"
        now = self.actions.service.now()
        rows = await self.store.select_orders(command.selection, now)
        missing = await self.store.missing_names(command.selection)
        inputs = _shared_inputs(command)
        refused: list[plan.Group] = []
        if command.action == "fulfill":
            refused = plan.grouped(
                {"order_name": order.name, "order_id": order.id, "message": reason}
                for order, _ in rows
                if isinstance(reason := plan.fulfill_inputs(order), str)
            )
        run_id = None
        if rows:
            run_id = await self.store.create_bulk_run(
                action=command.action,
                command=text,
                inputs=inputs,
                actor=actor,
                orders=[(order.id, order.name) for order, _ in rows],
            )
        may = await self.actions.permissions.may(actor, PERMISSION)
        if not may and run_id is not None:  # shown what it would do, without Confirm: an attempt all the same
            await self._audit(actor, await self.store.bulk_run(run_id), "refused", "not an admin")
        return self.draw.preview(
            action=command.action,
            inputs=inputs,
            command=text,
            orders=rows,
            total=len(rows),
            missing=missing,
            refused=refused,
            run_id=run_id,
            may_confirm=may,
            channel=self.channel,
            shop=self.shop,
            now=now,
        )

    async def form(self, run_id: int, actor: str) -> Reply | dict[str, Any]:
        """A bulk cancel's Confirm: the run, to draw its form from (admins only; a refusal is audited), or why not."""
        run = await self.store.bulk_run(run_id)
        if run is None or run["action"] != CANCEL:  # stale, or a forged click naming a run that has no form
            return Reply(EXPIRED, closes=False)
        if not await self.actions.permissions.may(actor, PERMISSION):
            await self._audit(actor, run, "refused", "not an admin")
            return Reply(self.actions.permissions.refusal(PERMISSION), closes=False)
        if run["status"] != "previewed":
            return Reply(_not_waiting(run))
        return run

    async def paid(self, run_id: int) -> str:
        """What a run's orders add up to, as stored ("2,180.00 USD"), for its form."""
        ids = [item["order_id"] for item in await self.store.bulk_items(run_id)]
        orders = await self.store.read(partial(orders_by_id, ids=ids))
        return plan.amounts(order.total for order in orders.values())

    async def confirm(self, run_id: int, actor: str, inputs: dict[str, Any] | None = None) -> Reply:
        """Start a previewed run (admins only; a refusal is audited); `inputs`: what its form chose, for every
        order (a bulk cancel's, which only starts that way)."""
        run = await self.store.bulk_run(run_id)
        if run is None:
            return Reply(EXPIRED)
        if not await self.actions.permissions.may(actor, PERMISSION):
            await self._audit(actor, run, "refused", "not an admin")
            return Reply(self.actions.permissions.refusal(PERMISSION), closes=False)
        if (run["action"] == CANCEL) != (inputs is not None):  # a forged click on a Confirm it does not have
            return Reply(_not_waiting(run) if run["status"] != "previewed" else FORM_NEEDED, closes=False)
        if not await self.store.start_bulk_run(run_id, actor, inputs):
            return Reply(_not_waiting(run))
        await self._audit(actor, {**run, "inputs": inputs or run["inputs"]}, "done", None)
        self._start(run_id)
        return Reply(
            f"<@{actor}> started `/orders {run['command']}` on {run['total']} orders. Progress and the "
            f"summary are in <#{self.channel}>."
        )

    async def cancel(self, run_id: int, actor: str) -> Reply:
        """Drop a preview (the person who asked for it, or an admin)."""
        run = await self.store.bulk_run(run_id)
        if run is None:
            return Reply(EXPIRED)
        if actor != run["actor"] and not await self.actions.permissions.may(actor, PERMISSION):
            await self._audit(actor, run, "refused", "not an admin, and not their preview")
            return Reply(self.actions.permissions.refusal(PERMISSION), closes=False)
        if not await self.store.cancel_bulk_run(run_id):
            return Reply(_not_waiting(run))
        return Reply("Cancelled; nothing changed.")

    async def stop(self, run_id: int, actor: str) -> Reply:
        """Ask a running run to stop after the orders in flight (admins only)."""
        run = await self.store.bulk_run(run_id)
        if run is None:
            return Reply(EXPIRED, closes=False)
        if not await self.actions.permissions.may(actor, PERMISSION):
            await self._audit(actor, run, "refused", "not an admin")
            return Reply(self.actions.permissions.refusal(PERMISSION), closes=False)
        if not await self.store.stop_bulk_run(run_id, actor):
            return Reply("That run has already finished or is stopping.", closes=False)
        await self._audit(actor, run, "stopped", None)
        if run_id in self._stops:
            self._stops[run_id].set()
        return Reply("Stopping after the orders in progress; the summary follows.", closes=False)

    async def known(self, run_id: int) -> bool:
        return await self.store.bulk_run(run_id) is not None

    # --- cancellations settling after the run ----------------------------------------------------------------------

    async def settled(self, order_id: str, outcome: str) -> None:
        """A cancellation settled (Cancellations.on_settled): the bulk cancel that requested it counts it, its
        progress or summary shows it."""
        for run_id in await self.store.settle_bulk_items(order_id, outcome):
            if run_id in self._live:
                self._live[run_id].changed()
            else:
                self._redraw_later(run_id)

    def _redraw_later(self, run_id: int) -> None:
        self._stale.add(run_id)
        if run_id in self._redraws:
            return
        task = asyncio.create_task(self._redraw(run_id), name=f"bulk-summary-{run_id}")
        self._redraws[run_id] = task
        task.add_done_callback(lambda _: self._redraws.pop(run_id, None))

    async def _redraw(self, run_id: int) -> None:
        """Draw an ended run's summary again, at most once every UPDATE_EVERY seconds, until it is current."""
        while run_id in self._stale:
            await asyncio.sleep(max(0.0, self._drawn_at.get(run_id, float("-inf")) + UPDATE_EVERY - self.clock()))
            self._stale.discard(run_id)
            run = await self.store.bulk_run(run_id)
            if run is None or not run["message_ts"]:
                return
            self._drawn_at[run_id] = self.clock()
            tally = await self.tally(run)
            await self._update(run, await self.summary(run, tally))
            await self.store.summary_shown(run_id, tally.settled_count)

    async def summary(self, run: dict[str, Any], tally: plan.CancelTally | None) -> dict:
        """The run's summary as it stands (`tally`: a bulk cancel's, as just read)."""
        counts = await self.store.bulk_counts(run["id"])
        skipped = plan.grouped(await self.store.bulk_items(run["id"], status="skipped"))
        failed = plan.grouped(await self.store.bulk_items(run["id"], status="failed"))
        return self.draw.summary(
            action=run["action"],
            inputs=run["inputs"],
            command=run["command"],
            total=run["total"],
            counts=counts,
            skipped=skipped,
            failed=failed,
            tally=tally,
            confirmed_by=run["confirmed_by"],
            stopped_by=run["stopped_by"] if run["status"] in ("stopping", "stopped") else None,
        )

    async def tally(self, run: dict[str, Any]) -> plan.CancelTally | None:
        """A bulk cancel's orders requested, and how those settled so far; None for any other action."""
        if run["action"] != CANCEL:
            return None
        return plan.cancel_tally(await self.store.bulk_items(run["id"], status="done"))

    async def _update(self, run: dict[str, Any], message: dict) -> None:
        try:
            async with self.pacer.turn(run["channel"]):
                await self.client.chat_update(channel=run["channel"], ts=run["message_ts"], **message)
        except SlackApiError as exc:
            log.warning("could not update the message of bulk run %s: %s", run["id"], exc.response.get("error"))

    # --- lifecycle -----------------------------------------------------------------------------------------------

    async def resume(self) -> list[int]:
        """At start: carry on with the runs a restart interrupted, and draw again the summaries of ended bulk cancels
        that settled more than they show (a stopped process may have stored a settlement and not drawn it)."""
        runs = await self.store.active_bulk_runs()
        for run_id in runs:
            log.info("resuming bulk run %s", run_id)
            self._start(run_id)
        for run_id in await self.store.stale_summaries():
            self._redraw_later(run_id)
        return runs

    async def close(self) -> None:
        """At shutdown: runs take no more orders, finish those in flight, and stay active for the next start."""
        self.closing = True
        for stop in self._stops.values():
            stop.set()
        if self._runs or self._redraws:
            await asyncio.gather(*self._runs.values(), *self._redraws.values(), return_exceptions=True)

    def _start(self, run_id: int) -> None:
        if run_id in self._runs:
            return
        self._stops[run_id] = asyncio.Event()
        task = asyncio.create_task(self._run(run_id), name=f"bulk-run-{run_id}")
        self._runs[run_id] = task

        def forget(_: asyncio.Task) -> None:
            self._runs.pop(run_id, None)
            self._stops.pop(run_id, None)

        task.add_done_callback(forget)

    # --- the run -------------------------------------------------------------------------------------------------

    async def _run(self, run_id: int) -> None:
        run = await self.store.bulk_run(run_id)
        if run is None:
            return
        stop = self._stops[run_id]
        if run["status"] == "stopping":
            stop.set()
        progress = _Progress(self, run)
        self._live[run_id] = progress
        try:
            await self._run_items(run, progress, stop)
        finally:
            del self._live[run_id]
            self._drawn_at[run_id] = progress.updated_at
        if not self.closing and run_id in await self.store.stale_summaries():
            self._redraw_later(run_id)  # settled between the summary and the run's end

    async def _run_items(self, run: dict[str, Any], progress: _Progress, stop: asyncio.Event) -> None:
        run_id = run["id"]
        await progress.begin()
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        for item in await self.store.bulk_items(run_id, status="pending"):
            queue.put_nowait(item)

        batch = ORDER_STATES_BATCH if run["action"] in STATE_CHECKED else 1

        async def worker() -> None:
            while not stop.is_set() and not queue.empty():
                items = [queue.get_nowait() for _ in range(min(batch, queue.qsize()))]
                states = await self._states(run, items) if batch > 1 else {}
                for item in items:
                    if stop.is_set():  # the rest stay pending, for a resume
                        return
                    try:
                        status, outcome, message = await self._one(run, item, states.get(item["order_id"]))
                    except Exception as exc:  # one order's trouble (e.g. Shopify failing after the change) ends no run
                        log.exception("bulk run %s: %s failed unexpectedly", run_id, item["order_name"])
                        status, outcome = "failed", "failed"
                        message = f"orderbot could not finish {item['order_name']} ({exc}); check the order in Shopify."
                    await self.store.finish_bulk_item(
                        run_id, item["position"], status=status, outcome=outcome, message=message
                    )
                    progress.changed()

        ticker = asyncio.create_task(progress.tick_until(stop))
        try:
            await asyncio.gather(*(worker() for _ in range(self.concurrency)))
        finally:
            ticker.cancel()
            await asyncio.gather(ticker, return_exceptions=True)
        if self.closing:
            log.info("bulk run %s paused for shutdown; it resumes at the next start", run_id)
            return
        # The summary before the end is stored: a run stored as ended is never resumed, so a crash between the two
        # would leave its progress message up for good. Resumed instead, the run posts its summary again.
        await progress.finish()
        await self.store.end_bulk_run(run_id)

    async def _states(self, run: dict[str, Any], items: list[dict[str, Any]]) -> dict[str, OrderState | None]:
        """The items' orders' states, in one request; none when Shopify cannot say (each order is then read in full,
        and fails on its own if Shopify is down)."""
        shopify = self.actions.service.shopify
        if shopify is None:
            return {}
        try:
            return await shopify.order_states([item["order_id"] for item in items])
        except ShopifyError as exc:
            log.warning("bulk run %s: could not check a batch of orders, reading each: %s", run["id"], exc)
            return {}

    async def _one(
        self, run: dict[str, Any], item: dict[str, Any], checked: OrderState | None = None
    ) -> tuple[str, str, str]:
        """Run one order (`checked`: its state, as a batch check just read it): (item status, Actions' outcome,
        message)."""
        inputs = dict(run["inputs"])
        order = await self.store.get_order(item["order_id"])
        if run["action"] == "fulfill" and order is not None:
            planned = plan.fulfill_inputs(order)
            if isinstance(planned, str):
                await self.store.add_audit(
                    actor=run["confirmed_by"],
                    action="fulfill",
                    order_id=order.id,
                    inputs={"bulk_run": run["id"]},
                    outcome="refused",
                    error=planned,
                )
                return "skipped", "refused", f"{order.name}: {planned}"
            inputs.update(planned)
        if run["action"] == "notify_customer" and order is not None:
            verdict = await self.store.verdict_of(order.id)
            notice = customer_notice(order, verdict["reason"] if verdict else None, shop_name=self.actions.shop_name)
            inputs.update(subject=notice.subject, message=notice.body)
        actor = run["confirmed_by"]
        request = ActionRequest(
            run["action"], item["order_id"], actor, inputs, self.channel, None, in_bulk=True, checked=checked
        )
        outcome = await self.actions.run(request)
        return plan.ITEM_STATUS[outcome.status], outcome.status, outcome.message

    async def refused_form(self, actor: str, error: str) -> None:
        """A bulk cancel's form came back with metadata orderbot did not write: audited as refused (no run named)."""
        await self.store.add_audit(
            actor=actor, action=PERMISSION, order_id=None, inputs={"action": CANCEL}, outcome="refused", error=error
        )

    async def _audit(self, actor: str, run: dict[str, Any], outcome: str, error: str | None) -> None:
        inputs = {"run": run["id"], "action": run["action"], "command": run["command"], "orders": run["total"]}
        if run["action"] == CANCEL and run["inputs"]:
            inputs["choices"] = run["inputs"]  # what the form chose, for every order
        await self.store.add_audit(
            actor=actor, action=PERMISSION, order_id=None, inputs=inputs, outcome=outcome, error=error
        )


class _Progress:
    """The run's one channel message: posted when the run starts, updated at most once every UPDATE_EVERY seconds
    while items finish, and replaced by the summary at the end."""

    def __init__(self, runs: BulkRuns, run: dict[str, Any]):
        self.runs = runs
        self.run = run
        self.ts: str | None = run["message_ts"]
        self._dirty = asyncio.Event()
        self.updated_at = float("-inf")

    def changed(self) -> None:
        self._dirty.set()

    async def begin(self) -> None:
        message = await self._progress(stopping=False)
        if self.ts is None:
            try:
                async with self.runs.pacer.turn(self.runs.channel):
                    response = await self.runs.client.chat_postMessage(channel=self.runs.channel, **message)
            except SlackApiError as exc:
                log.warning("could not post the progress of bulk run %s: %s", self.run["id"], exc.response.get("error"))
                return
            self.ts = response["ts"]
            self.updated_at = self.runs.clock()
            await self.runs.store.set_bulk_message(self.run["id"], self.runs.channel, self.ts)
        else:
            await self._update(message)

    async def tick_until(self, stop: asyncio.Event) -> None:
        """Update the message when items have finished, at most once every UPDATE_EVERY seconds (without its Stop
        button once a stop is asked)."""
        while True:
            await self._dirty.wait()
            await asyncio.sleep(max(0.0, self.updated_at + UPDATE_EVERY - self.runs.clock()))
            self._dirty.clear()
            await self._update(await self._progress(stopping=stop.is_set() and not self.runs.closing))

    async def finish(self) -> None:
        run = await self.runs.store.bulk_run(self.run["id"])
        await asyncio.sleep(max(0.0, self.updated_at + UPDATE_EVERY - self.runs.clock()))
        tally = await self.runs.tally(run)
        await self._update(await self.runs.summary(run, tally))
        if tally is not None:
            await self.runs.store.summary_shown(run["id"], tally.settled_count)

    async def _progress(self, *, stopping: bool) -> dict:
        counts = await self.runs.store.bulk_counts(self.run["id"])
        return self.runs.draw.progress(
            action=self.run["action"],
            inputs=self.run["inputs"],
            run_id=self.run["id"],
            total=self.run["total"],
            counts=counts,
            tally=await self.runs.tally(self.run),
            confirmed_by=self.run["confirmed_by"],
            stopping=stopping,
        )

    async def _update(self, message: dict) -> None:
        if self.ts is None:
            return
        self.updated_at = self.runs.clock()
        try:
            async with self.runs.pacer.turn(self.runs.channel):
                await self.runs.client.chat_update(channel=self.runs.channel, ts=self.ts, **message)
        except SlackApiError as exc:
            log.warning("could not update the progress of bulk run %s: %s", self.run["id"], exc.response.get("error"))


EXPIRED = "That bulk action is no longer known to orderbot; type the command again."
FORM_NEEDED = "Cancelling orders starts from the form its Confirm button opens; click it again."


def _not_waiting(run: dict[str, Any]) -> str:
    status = run["status"]
    if status == "cancelled":
        return "That preview was cancelled; type the command again to run it."
    if status == "expired":
        return "That preview has expired; type the command again to see what it would do now."
    return f"That run has already started (it is {status}); its progress is in the alert channel."


def _shared_inputs(command: Command) -> dict[str, Any]:
    """The inputs every order of the run shares."""
    if command.action == "snooze":
        return {"for": command.args["for"]}
    return {}
