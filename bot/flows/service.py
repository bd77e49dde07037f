"""The flows: process stored webhooks, reconcile with Shopify, classify. The only module that knows both the domain
and the adapters (store, Shopify client)."""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple, TypeVar

from bot.domain.orders import (
    FINISHED_FO_STATUSES,
    FULFILLMENT_ORDER_KEYS,
    ORDER_TOPICS,
    Order,
    order_from_webhook,
    order_gid,
)
from bot.domain.retries import next_try
from bot.domain.rules import Policy, Verdict, classify
from bot.domain.scan_plan import first_sweep_queries, plan_scan
from bot.flows.installation import Installation
from bot.shopify.client import ShopifyClient, ShopifyError
from bot.store import AlertSync, Classified, DeliveryOutcome, SaveResult, Store, StoredDelivery
from bot.wakeups import wait_for_wakeup

log = logging.getLogger(__name__)

INBOX_RETRY_SECONDS = 5
# With nothing due, the inbox is looked at again this often all the same: deliveries an operator re-queued
# (docs/operations.md, 'Parked deliveries') are taken up without waiting for the next webhook.
INBOX_IDLE_RECHECK = timedelta(minutes=1)
BATCH_SIZE = 50
BatchPause = Callable[[], Awaitable[None]]

_BURST_LIMITED = frozenset({"reconcile", "settings"})  # the `found_by` of a classification over every open order
PRIVACY_TOPICS = frozenset({"customers/redact", "customers/data_request", "shop/redact", "app/uninstalled"})
T = TypeVar("T")


@dataclass
class ScanReport:
    started_at: datetime
    kind: str = "full"  # scan_plan.ScanPlan.kind
    classified: list[tuple[Order, Verdict]] = field(default_factory=list)
    missed_by_webhooks: list[str] = field(default_factory=list)  # names of stuck orders no webhook told us about
    newly_stuck: list[str] = field(default_factory=list)
    held_back: list[str] = field(default_factory=list)  # names of newly stuck orders whose alert waits (burst.py)

    @property
    def stuck(self) -> list[tuple[Order, Verdict]]:
        return [(o, v) for o, v in self.classified if v.stuck]


class Service:
    """`alert_channel` is set when Slack is configured: verdicts then queue their alerts, and `alerts_queued()` is
    called after each commit that queued some (it wakes the Slack outbox)."""

    def __init__(
        self,
        store: Store,
        shopify: ShopifyClient | None,
        *,
        now: Callable[[], datetime] | None = None,
        alert_channel: str | None = None,
        alerts_queued: Callable[[], None] = lambda: None,
        idle_recheck: timedelta = INBOX_IDLE_RECHECK,
    ):
        self.store = store
        self.idle_recheck = idle_recheck
        self.shopify = shopify
        self.now = now or (lambda: datetime.now(UTC))
        self.alert_channel = alert_channel
        self.alerts_queued = alerts_queued
        self._inbox_signal = asyncio.Event()
        self._policy: tuple[Policy, dict[str, datetime]] | None = None
        self._policy_forgotten = 0  # counts forget_policy() calls
        self.cancelling: dict[str, datetime] = {}  # order id -> when its cancellation was asked for, while in flight
        self._scan: asyncio.Task[ScanReport] | None = None
        self.installation = Installation(store, shopify, on_reinstall=lambda: self.alerts_queued())

    # --- webhooks -------------------------------------------------------------------------------------------

    def inbox_changed(self) -> None:
        self._inbox_signal.set()

    async def process_inbox_forever(self, between_batches: BatchPause | None = None) -> None:
        """Process stored deliveries as they arrive (and any left over from before a restart).

        `between_batches()` lets the server give answering webhooks priority during a burst.
        """
        while True:
            try:
                await self.process_inbox(between_batches)
                due = await self.store.next_retry_at()
            except Exception:  # e.g. the disk is full: keep the deliveries, try again shortly
                log.exception("processing stored webhooks failed; retrying in %s s", INBOX_RETRY_SECONDS)
                await asyncio.sleep(INBOX_RETRY_SECONDS)
                continue
            wait = self.idle_recheck.total_seconds()
            if due is not None:
                wait = min(wait, max(0.0, (due - self.now()).total_seconds()))
            # until a delivery arrives, one that failed is due, or idle_recheck has passed
            await wait_for_wakeup(self._inbox_signal, wait)
            self._inbox_signal.clear()

    async def process_inbox(self, between_batches: BatchPause | None = None) -> int:
        """Process pending deliveries in batches; a batch's verdicts and outcomes are committed together. Deliveries
        waiting for a retry are left for later (bot/domain/retries.py)."""
        processed = 0
        while batch := await self.store.pending_deliveries(due_by=self.now(), limit=BATCH_SIZE):
            self.forget_policy()  # settings may have changed since the last batch
            outcomes, verdicts = await self._process_batch(batch)
            queued = await self.store.finish_deliveries(
                outcomes, verdicts, found_by="webhook", alerts=self._alert_sync()
            )
            processed += len(outcomes)
            if queued:
                self.alerts_queued()
            if between_batches is not None:
                await between_batches()
        return processed

    async def _process_batch(self, batch: list[StoredDelivery]) -> tuple[list[DeliveryOutcome], list[Classified]]:
        """The deliveries' outcomes, and the verdicts they led to (committed together by the caller). Order bodies
        are stored together in one commit; other topics re-read Shopify one delivery at a time. Each delivery's steps
        (read its body, parse it, apply it) run in `_attempt`: one that fails ends in its own outcome and the others
        go on."""
        tried: dict[int, list[Classified] | Failed | None] = {}
        orders: list[tuple[StoredDelivery, Order]] = []
        for delivery in batch:
            if delivery.topic in ORDER_TOPICS:
                order = await _attempt(delivery, lambda d=delivery: order_from_webhook(_body(d)))
                if isinstance(order, Failed):
                    tried[delivery.id] = order
                else:
                    orders.append((delivery, order))
        saved = await self._save_webhook_orders(orders)
        for (delivery, order), result in zip(orders, saved, strict=True):
            if isinstance(result, Failed):
                tried[delivery.id] = result
            else:
                tried[delivery.id] = await _attempt(delivery, lambda o=order, r=result: self._after_order_saved(o, r))
        for delivery in batch:
            if delivery.id not in tried:
                tried[delivery.id] = await _attempt(delivery, lambda d=delivery: self.on_event(d.topic, _body(d)))
        now = self.now()
        verdicts = [c for result in tried.values() if isinstance(result, list) for c in result]
        return [_outcome(delivery, tried[delivery.id], now) for delivery in batch], verdicts

    async def _save_webhook_orders(self, orders: list[tuple[StoredDelivery, Order]]) -> list[SaveResult | Failed]:
        """Store the batch's order bodies in one commit; if the database refuses one of them, each on its own."""
        try:
            return list(await self.store.save_orders([order for _, order in orders], from_webhook=True))
        except Exception as exc:
            if _database_unavailable(exc):
                raise
            log.warning("storing %d orders together failed (%s); storing them one by one", len(orders), exc)
        return [await _attempt(delivery, lambda o=order: self._save_webhook_order(o)) for delivery, order in orders]

    async def _save_webhook_order(self, order: Order) -> SaveResult:
        (result,) = await self.store.save_orders([order], from_webhook=True)
        return result

    async def on_event(self, topic: str, payload: dict[str, Any]) -> list[Classified] | None:
        """Apply one webhook: the verdicts it led to, for the caller to save (with its batch's outcomes); None for
        topics orderbot does not act on."""
        if topic in ORDER_TOPICS:
            order = order_from_webhook(payload)
            (result,) = await self.store.save_orders([order], from_webhook=True)
            return await self._after_order_saved(order, result)
        if topic == "orders/edited":
            return await self._reread(order_gid(payload["order_edit"]["order_id"]))
        if topic == "orders/delete":
            await self.forget(order_gid(payload["id"]))
            return []
        if topic.startswith("fulfillments/"):
            return await self._reread(order_gid(payload["order_id"]))
        if topic.startswith(("fulfillment_orders/", "fulfillment_holds/")):
            verdicts = []
            for fo_id in _fulfillment_order_ids(payload):
                verdicts += await self._reread_order_of_fulfillment_order(fo_id)
            return verdicts
        if topic in PRIVACY_TOPICS:
            return await self._on_privacy(topic, payload)
        log.info("ignoring webhook topic %s: orderbot does not use it", topic)
        return None

    async def _after_order_saved(self, order: Order, result: SaveResult) -> list[Classified]:
        """Classify an order a webhook brought (re-read first when the body cannot settle it); its verdicts, unsaved."""
        current, may_refresh = result.current, True
        if not result.saved or current is None:
            log.info("%s: delivery older than what we have (updated %s); kept ours", order.name, order.updated_at)
            # What we have is classified all the same: a process killed between a batch's first commit (its orders)
            # and its last (their verdicts) left it unclassified, and only this delivery, processed again, would
            # classify it (reconciliation does not re-read an order stored as archived). Shopify is re-read only
            # when nothing is known of the order's fulfillment orders.
            current = await self.store.get_order(order.id)
            may_refresh = current is not None and current.fulfillment_orders is None
        if current is None:
            return []
        if self.shopify and (result.unsettled or (may_refresh and self._needs_fulfillment_orders(current))):
            return await self._reread(order.id)  # unsettled: a same-second copy; Shopify says which is current
        return await self._classified([current])

    async def forget(self, order_id: str, *, resolution: str | None = None, in_bulk: bool = False) -> None:
        """Shopify no longer has the order: drop it, and resolve its alert saying so. `resolution`: who deleted it
        from orderbot (said on the alert even when it was resolved already); else it was deleted in Shopify."""
        sync = self._alert_sync({order_id: resolution or "The order was deleted in Shopify."}, in_bulk)
        if sync is not None and resolution is not None:
            sync = replace(sync, restated=frozenset({order_id}))
        if await self.store.forget_order(order_id, alerts=sync):
            self.alerts_queued()

    def _needs_fulfillment_orders(self, order: Order) -> bool:
        """Order webhooks carry no fulfillment orders; the rules need them for open orders that are not shipped, or
        that are shipped but whose known fulfillment orders still look open (kept from before: out of date)."""
        if order.cancelled or order.closed:
            return False
        if order.fulfillment_status != "FULFILLED":
            return True
        return any(fo.status not in FINISHED_FO_STATUSES for fo in order.fulfillment_orders or ())

    async def refresh_order(
        self, order_id: str, *, resolution: str | None = None, in_bulk: bool = False, urgent: bool = False
    ) -> Order | None:
        """Re-read one order (with its fulfillment orders: one query) and re-classify it. `resolution`: what a
        person just did, shown on the alert if that resolved it (`in_bulk`: as part of a bulk run); `urgent`: the
        person waits for it (ShopifyClient.execute)."""
        if self.shopify is None:
            return None
        order = await self.shopify.fetch_order(order_id, urgent=urgent)
        if order is None:
            await self.forget(order_id)
            return None
        return await self.store_and_classify(order, resolution, in_bulk=in_bulk)

    async def _reread(self, order_id: str) -> list[Classified]:
        """For a webhook: re-read one order and store it; its verdicts, unsaved."""
        if self.shopify is None:
            return []
        order = await self.shopify.fetch_order(order_id)
        if order is None:
            await self.forget(order_id)
            return []
        return await self._stored_and_classified(order)

    async def _reread_order_of_fulfillment_order(self, fulfillment_order_id: str) -> list[Classified]:
        if self.shopify is None:
            return []
        order = await self.shopify.fetch_order_of_fulfillment_order(fulfillment_order_id)
        return [] if order is None else await self._stored_and_classified(order)

    async def _stored_and_classified(self, order: Order) -> list[Classified]:
        (result,) = await self.store.save_orders([order], from_webhook=True)
        return await self._classified([result.current or order])

    async def store_and_classify(self, order: Order, resolution: str | None = None, *, in_bulk: bool = False) -> Order:
        (result,) = await self.store.save_orders([order], from_webhook=True)
        stored = result.current or order
        resolutions = {order.id: resolution} if resolution else None
        await self.classify_and_save([stored], found_by="webhook", resolutions=resolutions, in_bulk=in_bulk)
        return stored

    async def _on_privacy(self, topic: str, payload: dict[str, Any]) -> list[Classified]:
        """Apply a privacy or uninstall webhook; the verdicts of the orders it changed, unsaved."""
        if topic == "customers/redact":
            ids = [order_gid(i) for i in payload.get("orders_to_redact") or ()]
            touched = await self.store.redact_customer((payload.get("customer") or {}).get("email"), ids)
            log.info("customers/redact: erased a customer's personal data from %d orders", len(touched))
            orders = [order for order_id in touched if (order := await self.store.get_order(order_id))]
            return await self._classified(orders)  # open alerts in Slack lose the name too
        elif topic == "customers/data_request":
            ids = [order_gid(i) for i in payload.get("orders_requested") or ()]
            await self.store.add_audit(
                actor="shopify", action="data_request", order_id=None, inputs={"orders": ids}, outcome="logged"
            )
            log.info(
                "customers/data_request for %d orders: orderbot holds only name and email from those orders", len(ids)
            )
        elif topic == "shop/redact":
            await self.store.redact_shop()
            log.info("shop/redact: erased every record of the shop")
        else:
            await self.installation.uninstalled()
        return []

    # --- classification -------------------------------------------------------------------------------------

    async def policy(self) -> tuple[Policy, dict[str, datetime]]:
        """The store's policy and snoozes (and the cancellations in flight, `cancelling`), read once per inbox batch
        or scan."""
        policy = self._policy
        if policy is None:
            forgotten = self._policy_forgotten
            policy = (Policy.from_settings(await self.store.settings()), await self.store.snoozes())
            self.cancelling = await self.store.cancellations_in_flight()
            if forgotten == self._policy_forgotten:  # kept only if nothing changed while these reads awaited
                self._policy = policy
        return policy

    async def classify_and_save(
        self,
        orders: list[Order],
        *,
        found_by: str,
        resolutions: dict[str, str] | None = None,
        in_bulk: bool = False,
    ) -> list[tuple[Order, Verdict]]:
        """Classify and store; alerts follow. `resolutions`: who resolved which order, when a person acted. A scan
        and a settings change, which classify every open order again, post at most the policy's `alert_burst` new
        alerts (bot/domain/burst.py)."""
        classified = await self._classified(orders)
        sync = self._alert_sync(resolutions, in_bulk)
        if sync is not None and found_by in _BURST_LIMITED:
            policy, _ = await self.policy()
            sync = replace(sync, alert_burst=policy.alert_burst)
        if await self.store.save_verdicts(classified, found_by=found_by, alerts=sync):
            self.alerts_queued()
        return [(c.order, c.verdict) for c in classified]

    async def _classified(self, orders: list[Order]) -> list[Classified]:
        """The orders' verdicts, not yet saved."""
        now = self.now()
        policy, snoozes = await self.policy()
        return [
            Classified(
                o, classify(o, now, policy, snoozes.get(o.id), self.cancelling.get(o.id)), now, snoozes.get(o.id)
            )
            for o in orders
        ]

    def _alert_sync(self, resolutions: dict[str, str] | None = None, in_bulk: bool = False) -> AlertSync | None:
        if self.alert_channel is None:
            return None
        return AlertSync(self.alert_channel, resolutions or {}, in_bulk)

    def forget_policy(self) -> None:
        """Settings, snoozes or cancellations in flight changed: read them again on the next classification."""
        self._policy = None
        self._policy_forgotten += 1

    # --- reconciliation -------------------------------------------------------------------------------------

    async def reconcile(self, *, dry_run: bool = False, progress: Callable[[int], None] | None = None) -> ScanReport:
        """Read the open work from Shopify (see `_reconcile`), store it, re-classify, and count stuck orders webhooks
        never told us about.

        A scan asked for while one runs (the timer and `/orders scan`, or two people) joins it: one pass over
        Shopify's budget, and the counts of what webhooks missed are not taken twice. A caller cancelled meanwhile
        (a timer stopping, a person's request abandoned) does not cancel the scan for the others. `progress` is told
        how many orders each page read from Shopify brought (a caller joining a scan already running is not)."""
        if dry_run:
            return await self._reconcile(dry_run=True, progress=progress)
        if self._scan is None or self._scan.done():
            self._scan = asyncio.create_task(self._reconcile(dry_run=False, progress=progress), name="reconcile")
        return await asyncio.shield(self._scan)  # a caller that goes away (cancelled) leaves it to the others

    async def close(self) -> None:
        """Stop a scan still running: the server is stopping (no caller cancels it: see `reconcile`)."""
        if self._scan is not None and not self._scan.done():
            self._scan.cancel()
            await asyncio.gather(self._scan, return_exceptions=True)

    async def _reconcile(self, *, dry_run: bool, progress: Callable[[int], None] | None = None) -> ScanReport:
        """One scan as `scan_plan` plans it: a full sweep of the open work, or what changed since the last scan. The
        watched orders (rules.needs_watching) are classified again either way, from the database when Shopify had
        nothing new about them; a dry run reads what a first sweep would and stores nothing."""
        if self.shopify is None:
            raise ShopifyError("Reconciliation needs Shopify credentials (SHOPIFY_SHOP and a token).")
        report = ScanReport(started_at=self.now())
        self.forget_policy()
        if dry_run:
            found = await self._search(first_sweep_queries(report.started_at), progress)
            policy, snoozes = await self.policy() if self.store.is_open else (Policy(), {})
            report.classified = [(o, classify(o, report.started_at, policy, snoozes.get(o.id))) for o in found.values()]
            return report
        plan = plan_scan(report.started_at, *await self.store.scan_history())
        report.kind = plan.kind
        found = await self._search(plan.order_queries, progress)
        # A sweep re-reads every watched order its search missed; a change-scan, those still unknown (a webhook stored
        # them and the re-read failed) and those whose fulfillment orders changed.
        reread = await self.store.watched_order_ids(unknown_only=plan.kind != "full")
        for query in plan.fulfillment_order_queries:
            reread |= await self.shopify.orders_with_fulfillment_orders_changed(query)
        for order_id, order in (await self.shopify.orders_by_id(sorted(reread - found.keys()))).items():
            if order is None:
                await self.forget(order_id)  # deleted since
            else:
                found[order_id] = order  # closed, shipped, or changed without the searches seeing it
        await self.store.save_orders(list(found.values()), from_webhook=False)
        current = await self.store.orders_to_classify(found)
        told_by_webhook = await self.store.order_ids_seen_by_webhook(o.id for o in current)
        before = {r["order_id"] for r in await self.store.verdict_rows(stuck_only=True)}
        report.classified = await self.classify_and_save(current, found_by="reconcile")
        report.newly_stuck = [o.name for o, v in report.classified if v.stuck and o.id not in before]
        held = await self.store.held_back_alerts()
        report.held_back = [o.name for o, v in report.classified if v.stuck and o.id not in before and o.id in held]
        report.missed_by_webhooks = [o.name for o, v in report.stuck if o.id not in told_by_webhook]
        newly_missed = set(report.newly_stuck) & set(report.missed_by_webhooks)
        if newly_missed:
            await self.store.bump("stuck_found_by_reconcile", len(newly_missed))
        await self.store.record_scan(
            started_at=report.started_at.isoformat(),
            orders_seen=len(found),
            stuck=len(report.stuck),
            missed_by_webhooks=len(report.missed_by_webhooks),
            error=None,
            kind=plan.kind,
        )
        return report

    async def _search(
        self, queries: tuple[str, ...], progress: Callable[[int], None] | None = None
    ) -> dict[str, Order]:
        found: dict[str, Order] = {}
        for query in queries:
            async for page in self.shopify.orders(query):
                found.update((o.id, o) for o in page)
                if progress is not None:
                    progress(len(page))
        return found

    async def reconcile_forever(self, interval: timedelta) -> None:
        """Reconcile on start and every `interval`; an outage is logged and retried next time, never fatal."""
        while True:
            try:
                report = await self.reconcile()
                log.info(
                    "reconciled (%s scan) %d orders: %d stuck, %d that no webhook told us about",
                    report.kind,
                    len(report.classified),
                    len(report.stuck),
                    len(report.missed_by_webhooks),
                )
            except ShopifyError as exc:
                log.warning("reconciliation failed, next try in %s: %s", interval, exc)
                await self.store.record_scan(
                    started_at=self.now().isoformat(), orders_seen=0, stuck=0, missed_by_webhooks=0, error=str(exc)
                )
            await asyncio.sleep(interval.total_seconds())


class Failed(NamedTuple):
    """A step of a delivery failed. `for_good`: its body is at fault (unreadable, or not the shape orderbot reads),
    so trying again would fail the same way."""

    error: str
    for_good: bool


# SQLite's primary result codes that say the database, not the delivery, is in trouble: locked, out of memory or
# disk, unreadable, or read-only. The batch is then tried again whole (process_inbox_forever), charging no delivery.
_DATABASE_UNAVAILABLE = frozenset({5, 6, 7, 8, 10, 13, 14})  # BUSY, LOCKED, NOMEM, READONLY, IOERR, FULL, CANTOPEN


def _database_unavailable(exc: Exception) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(exc, sqlite3.Error) and code is not None and code & 0xFF in _DATABASE_UNAVAILABLE


async def _attempt(delivery: StoredDelivery, step: Callable[[], T | Awaitable[T]]) -> T | Failed:
    """Run one step of a delivery (a plain or an async callable): its result, or how it failed."""
    try:
        result = step()
        return await result if inspect.isawaitable(result) else result
    except ShopifyError as exc:
        log.warning("webhook %s (%s) could not be completed: %s", delivery.id, delivery.topic, exc)
        return Failed(str(exc), for_good=False)
    except (KeyError, TypeError, ValueError) as exc:
        log.warning("webhook %s (%s) has an unexpected shape: %s", delivery.id, delivery.topic, exc)
        return Failed(f"unexpected payload: {exc}", for_good=True)
    except Exception as exc:
        if _database_unavailable(exc):
            raise
        log.exception("webhook %s (%s) failed", delivery.id, delivery.topic)
        return Failed(f"{exc.__class__.__name__}: {exc}", for_good=False)


def _body(delivery: StoredDelivery) -> dict[str, Any]:
    """The delivery's body as a JSON object; ValueError when it has none (erased) or is something else."""
    if delivery.body is None:
        raise ValueError("the body was erased before it was processed")
    payload = json.loads(delivery.body)
    if not isinstance(payload, dict):
        raise ValueError("the body is not a JSON object")
    return payload


def _outcome(delivery: StoredDelivery, tried: list[Classified] | Failed | None, now: datetime) -> DeliveryOutcome:
    """A delivery that failed is tried again later, or parked (bot/domain/retries.py); None: an ignored topic."""
    if not isinstance(tried, Failed):
        return DeliveryOutcome(delivery.id, "ignored" if tried is None else "processed")
    retry_at = None if tried.for_good else next_try(delivery.attempts + 1, now)
    if retry_at is not None:
        return DeliveryOutcome(delivery.id, "pending", tried.error, retry_at)
    tries = delivery.attempts + 1
    log.warning("webhook %s (%s) parked after %d tries: %s", delivery.id, delivery.topic, tries, tried.error)
    return DeliveryOutcome(delivery.id, "parked", tried.error)


def _fulfillment_order_ids(payload: dict[str, Any]) -> list[str]:
    """Every fulfillment order a fulfillment_orders/* or fulfillment_holds/* body names (they differ by topic)."""
    ids = []
    for key in FULFILLMENT_ORDER_KEYS:
        item = payload.get(key)
        if isinstance(item, dict) and item.get("id"):
            ids.append(_fulfillment_order_gid(item["id"]))
    merged = (payload.get("fulfillment_order_merges") or {}).get("fulfillment_order") or {}
    if merged.get("id"):
        ids.append(_fulfillment_order_gid(merged["id"]))
    # One order per webhook: the first fulfillment order is enough to find it.
    return ids[:1]


def _fulfillment_order_gid(value: str | int) -> str:
    text = str(value)
    return text if text.startswith("gid://") else f"gid://shopify/FulfillmentOrder/{text}"
