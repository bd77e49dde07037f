"""Deliver queued alerts, thread replies and scans' summaries to Slack: paced, retried, never dropped for a
passing failure.

Messages wait in SQLite (store `outbox`) until Slack has them, so a Slack outage or a restart delays an alert but
loses none. At most one call per PACE seconds per channel (Slack's posting limit, bot/slack/pacing.py); a 429 waits
its Retry-After, a
5xx or a timeout backs off, a configuration error (the bot is not in the channel, the token is revoked) is retried
every CONFIG_RETRY seconds and shown by /healthz until it clears.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.alerts import from_alert_snapshot
from bot.domain.burst import from_summary_snapshot
from bot.domain.orders import Order
from bot.domain.rules import Verdict
from bot.slack.burst_blocks import burst_summary_message
from bot.slack.history import find_message, has_metadata
from bot.slack.pacing import ChannelPacer
from bot.store import OutboxItem, Store
from bot.wakeups import wait_for_wakeup

log = logging.getLogger(__name__)

PACE = 1.0
CONFIG_RETRY = 60.0
MAX_BACKOFF = 60.0
IDLE_CHECK = 30.0
# Errors that no retry of the same message fixes until someone changes the Slack app or channel.
CONFIGURATION_ERRORS = frozenset(
    {
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "token_expired",
        "missing_scope",
        "team_access_not_granted",
        "restricted_action",
    }
)
AUTH_ERRORS = frozenset({"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired"})
ALERT_EVENT = "orderbot_alert"  # message metadata naming the order, so a doubtful post can be found again
SUMMARY_EVENT = "orderbot_scan_summary"  # a scan's summary's metadata: its outbox id, for the same reason
MESSAGE_GONE = frozenset({"message_not_found", "cant_update_message", "edit_window_closed"})

AlertRenderer = Callable[[Order, Verdict, str | None], dict[str, Any]]  # (order, verdict, resolution) -> message


class OutboxSender:
    def __init__(
        self,
        store: Store,
        client: AsyncWebClient,
        render: AlertRenderer,
        *,
        pace: float = PACE,
        config_retry: float = CONFIG_RETRY,
        clock: Callable[[], float] = time.time,
        paused: Callable[[], bool] = lambda: False,
    ):
        """`paused()`: post nothing for now (the shop uninstalled orderbot); the messages wait, and `wake()` sends
        them once it is False again. `render`: an alert's message from what was queued (`alert_snapshot`), drawn
        when it is sent."""
        self.store = store
        self.paused = paused
        self.client = client
        self.render = render
        self.config_retry = config_retry
        self.clock = clock
        self.pacer = ChannelPacer(pace, clock)  # shared with the other posters to the channels (side.py)
        self.problem_code: str | None = None  # the last configuration error, until a call succeeds again
        self._wake = asyncio.Event()

    async def recover(self, answer_within: float) -> int:
        """At start. Calls in flight when the process before stopped may have reached Slack, and one Slack answers
        slowly may land only now: they are looked up in their channel (not posted again) once `answer_within` (the
        client's timeout) has passed. And that process may have posted a moment before it stopped: every channel waits
        one pace before its first post. Returns how many calls were in flight."""
        self.pacer.hold_all()
        return await self.store.outbox_recover(not_before=self.clock() + answer_within)

    def wake(self) -> None:
        self._wake.set()

    @property
    def problem(self) -> str | None:
        """The configuration error and what fixes it, for /healthz; None while Slack takes the posts."""
        return f"{self.problem_code}: {_fix_for(self.problem_code)}" if self.problem_code else None

    @property
    def unauthorized(self) -> bool:
        return self.problem_code in AUTH_ERRORS

    async def run_forever(self) -> None:
        while True:
            # Cleared before reading the queue: a message queued while send_due runs sets it again, so the wait
            # below ends at once instead of sleeping past it (a lost wake-up held alerts back 30 s).
            self._wake.clear()
            try:
                wait = await self.send_due()
            except Exception:  # the database is busy or the disk is full: keep the messages, try again
                log.exception("the Slack outbox failed; retrying in %s s", PACE)
                wait = PACE
            if wait > 0:
                await wait_for_wakeup(self._wake, wait)

    async def send_due(self) -> float:
        """Send every message that is due and whose channel is free; return how long until the next one may be."""
        if self.paused():
            return IDLE_CHECK
        while True:
            now = self.clock()
            items = await self.store.outbox_ready(now)
            sendable = [i for i in items if self._sendable(i)]
            free = [i for i in sendable if self._free_at(i) <= now]
            if free:
                await self._send(free[0])
                continue
            waits = [self._free_at(i) - now for i in sendable]
            next_due = await self.store.outbox_next_due()
            if next_due is not None and next_due > now:
                waits.append(next_due - now)
            return max(min(waits, default=IDLE_CHECK), 0.01)

    def _free_at(self, item: OutboxItem) -> float:
        return self.pacer.free_at(item.channel or "")

    def _sendable(self, item: OutboxItem) -> bool:
        """A reply waits until its alert has a ts; an item whose alert is gone is sent (and dropped) at once."""
        return not (item.kind == "reply" and item.channel is not None and item.ts is None)

    async def _send(self, item: OutboxItem) -> None:
        if item.channel is None:
            await self.store.outbox_give_up(item, "dropped", "the order has no alert any more")
            return
        try:
            message = self._message(item)
        except (KeyError, TypeError, ValueError) as exc:  # a bug, not Slack: the other messages must still go out
            log.error("the %s for %s cannot be drawn (%r); it will not be sent", item.kind, item.order_id, exc)
            await self.store.outbox_give_up(item, "failed", f"cannot be drawn: {exc!r}")
            return
        if not await self.store.outbox_claim(item):
            return
        self.pacer.began(item.channel)
        try:
            ts = await self._find_earlier_post(item) if self._first_post(item) and item.maybe_posted else None
            ts = ts or await self._call(item, message)
        except SlackApiError as exc:
            await self._slack_refused(item, exc)
        except (aiohttp.ClientError, TimeoutError) as exc:
            await self._retry_later(item, f"Slack could not be reached: {exc.__class__.__name__} {exc}".strip())
        else:
            self.problem_code = None
            await self.store.outbox_sent(item, ts)
        finally:
            self.pacer.answered(item.channel)

    @staticmethod
    def _first_post(item: OutboxItem) -> bool:
        """A new top-level message: an alert's first post, or a scan's summary (a reply lives in a thread)."""
        return (item.kind == "alert" and item.ts is None) or item.kind == "summary"

    async def _find_earlier_post(self, item: OutboxItem) -> str | None:
        """A first post whose call failed may have reached Slack anyway (a timeout, a 5xx after the write, a
        restart mid-call). Look for it by its metadata, page by page back to when it was queued, before posting
        again: one alert per order, one summary per scan."""
        oldest = datetime.fromisoformat(item.created_at).timestamp() - 60 if item.created_at else 0
        event, payload = _metadata(item)
        try:
            found = await find_message(
                self.client,
                item.channel,
                since=oldest,
                matches=lambda message: has_metadata(message, event, **payload),
            )
        except SlackApiError as exc:  # e.g. missing_scope: rather a duplicate than a lost alert
            log.warning("could not check %s for an earlier post: %s", item.channel, exc.response.get("error"))
            return None
        if found is None:
            return None
        log.info("the %s for %s had reached Slack before the failure; not posting it again", item.kind, item.order_id)
        return found["ts"]

    def _message(self, item: OutboxItem) -> dict[str, Any]:
        """What Slack gets: a reply as queued; an alert or a scan's summary drawn now from what was queued (a message
        queued by a version before alerts were queued as data is sent as it was rendered then)."""
        if item.kind == "reply" or "blocks" in item.payload:
            return item.payload
        if item.kind == "summary":
            return burst_summary_message(from_summary_snapshot(item.payload))
        return self.render(*from_alert_snapshot(item.payload))

    async def _call(self, item: OutboxItem, message: dict[str, Any]) -> str | None:
        if item.kind == "reply":
            await self.client.chat_postMessage(channel=item.channel, thread_ts=item.ts, text=message["text"])
            return None
        if item.kind == "summary":
            event, payload = _metadata(item)
            await self.client.chat_postMessage(
                channel=item.channel,
                text=message["text"],
                blocks=message["blocks"],
                unfurl_links=False,
                metadata={"event_type": event, "event_payload": payload},
            )
            return None
        if item.ts is None:
            event, payload = _metadata(item)
            response = await self.client.chat_postMessage(
                channel=item.channel,
                text=message["text"],
                blocks=message["blocks"],
                unfurl_links=False,
                metadata={"event_type": event, "event_payload": payload},
            )
            return response["ts"]
        await self.client.chat_update(channel=item.channel, ts=item.ts, text=message["text"], blocks=message["blocks"])
        return None

    async def _slack_refused(self, item: OutboxItem, exc: SlackApiError) -> None:
        status = exc.response.status_code
        error = (exc.response.data or {}).get("error") if isinstance(exc.response.data, dict) else None
        if status == 429 or error == "ratelimited":
            retry_after = float(exc.response.headers.get("Retry-After", PACE))
            self.pacer.hold(item.channel, retry_after)
            log.info("Slack asked us to wait %.0f s before posting to %s again", retry_after, item.channel)
            await self.store.outbox_retry(item, 0.0, "rate limited", maybe_posted=False)
        elif status >= 500:
            await self._retry_later(item, f"Slack answered HTTP {status}")
        elif error in MESSAGE_GONE and item.kind == "alert" and item.ts:
            log.warning("the alert of %s is gone from Slack (%s); posting it again", item.order_id, error)
            await self.store.alert_message_lost(item.order_id)
            await self.store.outbox_retry(item, 0.0, error, maybe_posted=False)
        elif error in CONFIGURATION_ERRORS:
            if self.problem_code != error:
                log.error("Slack refused to post to %s: %s. %s", item.channel, error, _fix_for(error))
            self.problem_code = error
            await self.store.outbox_retry(item, self.clock() + self.config_retry, error, maybe_posted=False)
        else:  # this message itself is wrong (invalid_blocks, msg_too_long): retrying cannot help
            log.error("Slack refused a message for %s: %s; it will not be retried", item.order_id, error or status)
            await self.store.outbox_give_up(item, "failed", error or f"HTTP {status}")

    async def _retry_later(self, item: OutboxItem, error: str) -> None:
        delay = min(MAX_BACKOFF, 2 ** min(item.attempts, 6)) * (0.5 + random.random() / 2)
        log.warning("%s; will try the %s for %s again in %.0f s", error, item.kind, item.order_id, delay)
        await self.store.outbox_retry(item, self.clock() + delay, error, maybe_posted=self._first_post(item))


def _fix_for(error: str) -> str:
    if error in ("channel_not_found", "is_archived"):
        return "Check SLACK_CHANNEL_ID."
    if error == "not_in_channel":
        return "Invite the bot to the channel (/invite @orderbot)."
    if error in AUTH_ERRORS:
        return "Check SLACK_BOT_TOKEN; the app may have been uninstalled."
    return "Check the Slack app's configuration."


def _metadata(item: OutboxItem) -> tuple[str, dict[str, Any]]:
    """The metadata a first post carries, by which a doubtful one is found again: the order of an alert, the outbox
    row of a scan's summary (a summary belongs to no order)."""
    if item.kind == "summary":
        return SUMMARY_EVENT, {"summary_id": item.id}
    return ALERT_EVENT, {"order_id": item.order_id}
