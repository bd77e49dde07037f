"""Follow an order's cancellation until Shopify confirms it: Shopify cancels in the background.

`orderCancel` answers a Job; the order shows `cancelledAt` once the job has run. Until then the order's alert says
"cancellation requested" (the verdict `cancelling`, from the `cancellations` table) and offers no second cancel. The
request is written before orderCancel is sent, so that a lost answer, or a restart, still knows one may be under way.

A follower per order checks, backing off from FollowUp.first_check to FollowUp.longest_wait between checks:
- the stored order first: an orders/cancelled webhook may have told already (no Shopify call);
- with the job's id, `job(id:)` until it is done, then the order once;
- without it (orderCancel's answer was lost), the order itself, until it shows cancelled.
It settles the cancellation as "cancelled" (the alert is resolved: who cancelled it), "not_cancelled" (the job ran
and the order is not cancelled: the alert shows it as it is), or, after FollowUp.give_up_after, "unconfirmed" (the
alert shows the order as last known, and the thread says to check it in Shopify). Each settlement is told in the
alert's thread, and to `on_settled` (a bulk cancel counts its orders as they settle). A later webhook or scan still
brings the alert up to date whatever Shopify did.

A bulk cancel of hundreds of orders has as many followers: they sleep apart, and at most CHECKS_AT_ONCE of them ask
Shopify at a time, in the background (behind what a person waits for), so that they never crowd out the run itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from bot.domain.action_words import action_resolution, cancellation_settled_reply
from bot.domain.orders import Order
from bot.flows.service import Service
from bot.shopify.client import ShopifyError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class FollowUp:
    """How a cancellation in flight is followed: seconds before the first check, the longest wait between two
    (the wait doubles up to it), and how long after the request orderbot stops waiting for Shopify."""

    first_check: float = 1.0
    longest_wait: float = 30.0
    give_up_after: timedelta = timedelta(minutes=10)


DEFAULT_FOLLOW_UP = FollowUp()
CHECKS_AT_ONCE = 2  # followers asking Shopify at the same time


class Cancellations:
    def __init__(
        self,
        service: Service,
        *,
        follow_up: FollowUp = DEFAULT_FOLLOW_UP,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ):
        self.service = service
        self.store = service.store
        self.follow_up = follow_up
        self._sleep = sleep
        self._following: dict[str, asyncio.Task[None]] = {}
        self._checking = asyncio.Semaphore(CHECKS_AT_ONCE)
        # (order id, how it settled): told before the cancellation is forgotten, so that a failure is retried
        self.on_settled: Callable[[str, str], Awaitable[None]] | None = None

    async def requested(self, order_id: str, actor: str, detail: str) -> None:
        """Before orderCancel is sent: from now on the order shows as being cancelled, and is followed."""
        await self.store.cancellation_requested(order_id, actor=actor, detail=detail, at=self.service.now())
        self.service.forget_policy()
        self.follow(order_id)

    async def started(self, order_id: str, job_id: str | None) -> None:
        """Shopify answered orderCancel with its job."""
        await self.store.cancellation_job(order_id, job_id)

    async def withdrawn(self, order_id: str) -> None:
        """orderCancel was refused, or never sent: nothing is under way."""
        await self.store.cancellation_settled(order_id)
        self.service.forget_policy()

    async def in_flight(self, order_id: str) -> dict[str, Any] | None:
        return await self.store.cancellation(order_id)

    def follow(self, order_id: str) -> None:
        if order_id in self._following:
            return
        task = asyncio.create_task(self._follow(order_id), name=f"cancellation {order_id}")
        self._following[order_id] = task
        task.add_done_callback(lambda _: self._following.pop(order_id, None))

    async def resume(self) -> int:
        """At start: follow every cancellation a stopped process left in flight; returns how many."""
        in_flight = await self.store.cancellations_in_flight()
        for order_id in in_flight:
            self.follow(order_id)
        return len(in_flight)

    async def close(self) -> None:
        """At shutdown: stop following (what is in flight stays stored; the next start follows it)."""
        tasks = list(self._following.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _follow(self, order_id: str) -> None:
        wait = self.follow_up.first_check
        while True:
            await self._sleep(wait)
            wait = min(wait * 2, self.follow_up.longest_wait)
            try:
                async with self._checking:
                    if await self._check_and_settle(order_id):
                        return
            except Exception:  # the database is busy, say: the cancellation stays stored; look again next time
                log.exception("could not follow the cancellation of %s; trying again in %.0f s", order_id, wait)

    async def _check_and_settle(self, order_id: str) -> bool:
        """True once there is nothing left to follow."""
        row = await self.store.cancellation(order_id)
        if row is None:  # settled (withdrawn, or the shop's data erased)
            return True
        try:
            outcome, order = await self._check(row)
        except ShopifyError as exc:
            log.warning("could not check the cancellation of %s with Shopify: %s", order_id, exc)
            outcome, order = None, None
        if outcome is None and self.service.now() - row["requested_at"] >= self.follow_up.give_up_after:
            outcome = "unconfirmed"
        if outcome is None:
            return False
        await self._settle(row, outcome, order)
        return True

    async def _check(self, row: dict[str, Any]) -> tuple[str | None, Order | None]:
        """(outcome, the order as now known) once Shopify has settled it; (None, …) while it is under way."""
        stored = await self.store.get_order(row["order_id"])
        if stored is not None and stored.cancelled:  # a webhook told already
            return "cancelled", stored
        shopify = self.service.shopify
        if shopify is None:
            return None, stored
        if row["job_id"] and await shopify.job_done(row["job_id"]) is False:
            return None, stored
        order = await shopify.fetch_order(row["order_id"])
        if order is None:
            return "gone", None
        if order.cancelled:
            return "cancelled", order
        return ("not_cancelled" if row["job_id"] else None), order  # without a job, only the order can tell

    async def _settle(self, row: dict[str, Any], outcome: str, order: Order | None) -> None:
        order_id = row["order_id"]
        if self.on_settled is not None:
            await self.on_settled(order_id, outcome)
        await self.store.cancellation_settled(order_id)
        self.service.forget_policy()
        log.info("the cancellation of %s asked for by %s: %s", order_id, row["actor"], outcome)
        if outcome == "gone":  # Shopify no longer has the order: its alert says it was deleted
            await self.service.forget(order_id)
            return
        order = order or await self.store.get_order(order_id)
        if order is None:
            return
        resolution = None
        if outcome == "cancelled":
            resolution = action_resolution("cancel_order", row["actor"], row["detail"], order_name=order.name)
        await self.service.store_and_classify(order, resolution)
        reply = cancellation_settled_reply(
            outcome,
            row["actor"],
            order_name=order.name,
            waited=self.service.now() - row["requested_at"],
            job_known=bool(row["job_id"]),
        )
        if await self.store.enqueue_reply(order_id, reply):
            self.service.alerts_queued()
