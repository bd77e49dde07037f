"""The daily digest's flow: build it from the store, post it to the channel once a day, and the timer that does so at
DIGEST_TIME in TIMEZONE (the shop's time zone when TIMEZONE is empty; UTC until the shop has said which).

Once a day, across restarts and processes: the day is claimed in SQLite before anything is posted (the `digests`
table, bot/store/digests.py), so of two timers or two processes racing, one posts. The message carries Slack message
metadata (event_type DIGEST_EVENT, payload {"day": …}); an attempt that takes a day over from one that failed or
died first looks for that day's message in the channel (conversations.history, include_all_metadata) and posts only
when it is not there: a crash between Slack's answer and our note of it neither loses the day nor posts it twice.
A Slack failure is logged and retried, backing off, until the day ends; a restart after DIGEST_TIME posts the day's
digest if it was not posted yet; after midnight it is the next day's digest that waits for DIGEST_TIME.

The flow decides what the digest says (`Digest`, plain figures); how it looks is the Slack side's (`draw`).

The chart: once the digest is in the channel, a PNG of stuck orders per day by reason and the median time to resolve
(`ChartSeries`, bot/domain/digest_chart.py, from the store's daily snapshots and resolutions; drawn by the `chart`
drawer the Slack side gives) is shared in the digest's thread through Slack's file upload flow. Its failure is
logged and changes nothing else: the digest's text is out, and the day counts as posted.

Public API (the `/orders digest` command and the demo use it):
- `build()` -> Digest: the digest as of now; `message(digest)` -> {"text", "blocks"} for Slack, as `draw` makes it.
- `chart_series()` -> ChartSeries: the figures behind the chart, as of now.
- `post_now(channel)`: posts a digest at once and claims nothing (`/orders digest post`): the scheduled digest still
  comes, and "change since the last digest" keeps comparing with the scheduled ones.
- `post_scheduled()`: posts today's digest unless it is out already, whatever the time of day; the timer calls it
  once DIGEST_TIME has come.
- `run_forever()`: the timer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time, tzinfo
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import aiohttp
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.digest import (
    ARCHIVE_AFTER,
    WINDOW,
    Digest,
    build_digest,
    digest_day,
    digest_due,
    digest_text,
    next_digest_at,
)
from bot.domain.digest_chart import ChartSeries, chart_days, chart_series
from bot.domain.durations import parse_time_of_day
from bot.slack.history import find_message, has_metadata
from bot.slack.pacing import ChannelPacer
from bot.slack.uploads import UPLOAD_ERRORS, share_in_thread
from bot.store import Store
from bot.wakeups import wait_for_wakeup

log = logging.getLogger(__name__)

DIGEST_TIME_SETTING = "digest_time"  # the settings-table key `/orders settings set` writes
DIGEST_EVENT = "orderbot_digest"  # message metadata naming the day, so an interrupted post can be found again
RETRY_FIRST = 60.0  # seconds before trying a failed post again; doubled each time up to RETRY_MAX
RETRY_MAX = 30 * 60.0
MAX_SLEEP = 600.0  # the timer re-reads the clock at least this often (a machine that slept, a time zone learned)
ZONE_WAIT = 30.0  # at start, how long the timer waits for the shop's time zone before going on in UTC

PostResult = Literal["posted", "found", "already", "busy", "failed"]


@dataclass(frozen=True, slots=True)
class ChartDrawer:
    """How the Slack side draws the chart (bot/slack/digest_chart.py): the PNG, its words for a screen reader, and
    the file's name and title in Slack."""

    png: Callable[[ChartSeries], bytes]
    alt_text: Callable[[ChartSeries], str]
    filename: str
    title: str


async def build_digest_from(store: Store, *, now: datetime, zone: tzinfo, shop: str | None) -> Digest:
    facts = await store.digest_facts(since=now - WINDOW, archive_before=now - ARCHIVE_AFTER)
    return build_digest(facts, now=now, zone=zone, shop=shop)


async def chart_series_from(store: Store, *, now: datetime) -> ChartSeries:
    """The chart's figures as of `now`, after taking today's snapshot (so that today's bar is the digest's count)."""
    await store.snapshot_stuck(now)
    today = now.astimezone(UTC).date()
    snapshots, resolutions = await store.chart_rows(since=chart_days(today)[0])
    return chart_series(snapshots, resolutions, today=today)


class Digests:
    """Builds and posts the digest; `now` is the clock (tests pass a fixed one)."""

    def __init__(
        self,
        store: Store,
        client: AsyncWebClient,
        *,
        channel: str | None,
        shop: str | None,
        digest_time: time,
        timezone: str | None,
        shop_zone_expected: bool,
        draw: Callable[[Digest], dict[str, Any]],
        chart: ChartDrawer | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        pacer: ChannelPacer | None = None,
    ):
        """`timezone`: TIMEZONE, or None for the shop's. `shop_zone_expected`: Shopify is configured, so the shop's
        time zone will be learned (`learn_shop_zone`); the timer waits a little for it before going on in UTC.
        `draw`: the digest's message from its figures, from the Slack side (bot/slack/digest_blocks.py). `chart`: how
        to draw the chart shared in the digest's thread; None: no chart."""
        self.store = store
        self.client = client
        self.draw = draw
        self.chart = chart
        self.pacer = pacer or ChannelPacer(0.0)  # the channels' posting pace, shared with the outbox (none: unpaced)
        self.channel = channel
        self.shop = shop
        self.digest_time = digest_time
        self.now = now
        self.zone: tzinfo = ZoneInfo(timezone) if timezone else UTC
        self._zone_fixed = timezone is not None
        self._zone_known = asyncio.Event()
        if self._zone_fixed or not shop_zone_expected:
            self._zone_known.set()
        self._wake = asyncio.Event()
        self._done_day: str | None = None  # a day this timer needs no digest for (posted, or see run_forever)
        self.looked = 0  # how often the timer has looked at the clock and done what it called for (tests wait on it)

    def learn_shop_zone(self, name: str) -> None:
        """The shop's `ianaTimezone`, used unless TIMEZONE is set."""
        if not self._zone_fixed:
            try:
                self.zone = ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                log.warning("the shop's time zone %r is unknown here; the digest keeps to UTC", name)
        self._zone_known.set()
        self.wake()

    def wake(self) -> None:
        """Make the timer look at the clock now."""
        self._wake.set()

    def change_time(self, at: time) -> None:
        """`/orders settings set digest_time`: from now on the digest comes at `at` (stored by the caller)."""
        self.digest_time = at
        self.wake()

    async def _load_time(self) -> None:
        """A digest time set with `/orders settings set digest_time` outlives restarts and wins over DIGEST_TIME."""
        stored = (await self.store.settings()).get(DIGEST_TIME_SETTING)
        if stored:
            try:
                self.digest_time = parse_time_of_day(stored)
            except ValueError:
                log.warning("ignored the stored digest time %r; DIGEST_TIME stays", stored)

    # --- building ---------------------------------------------------------------------------------------------

    async def build(self, now: datetime | None = None) -> Digest:
        return await build_digest_from(self.store, now=now or self.now(), zone=self.zone, shop=self.shop)

    def message(self, digest: Digest) -> dict[str, Any]:
        return self.draw(digest)

    async def chart_series(self, now: datetime | None = None) -> ChartSeries:
        return await chart_series_from(self.store, now=now or self.now())

    # --- posting ----------------------------------------------------------------------------------------------

    async def post_now(self, channel: str | None = None) -> str:
        """Post a digest now to `channel` (default the digest's channel) without claiming the day; returns its ts.
        Slack's errors are raised to the caller."""
        target = channel or self.channel
        if target is None:
            raise ValueError("no channel to post the digest to: set SLACK_CHANNEL_ID")
        payload = self.message(await self.build())
        async with self.pacer.turn(target):
            response = await self.client.chat_postMessage(channel=target, unfurl_links=False, **payload)
        await self._share_chart(target, response["ts"])
        return response["ts"]

    async def post_scheduled(self) -> PostResult:
        """Post today's digest unless it is out already: "posted"; "found" (an interrupted attempt had posted it);
        "already" (posted before); "busy" (another attempt is in flight); "failed" (logged; try again later)."""
        if self.channel is None:
            raise ValueError("no channel to post the digest to: set SLACK_CHANNEL_ID")
        now = self.now()
        day = digest_day(now, self.zone).isoformat()
        claim = await self.store.claim_digest(day, now)
        if claim.state == "posted":
            self._done_day = day
            return "already"
        if claim.state == "busy":
            return "busy"
        digest = await self.build(now)
        try:
            ts = await self._find_posted(day, claim.claimed_at) if claim.state == "retry" else None
            found = ts is not None
            if ts is None:
                ts = await self._post(day, digest)
        except (SlackApiError, aiohttp.ClientError, TimeoutError) as exc:
            error = _describe(exc)
            log.warning("the daily digest for %s was not posted (%s); orderbot will try again", day, error)
            await self.store.digest_failed(day, error)
            return "failed"
        await self.store.digest_posted(day, channel=self.channel, ts=ts, counts=digest.counts, now=now)
        self._done_day = day
        log.info("posted the daily digest for %s", day)
        if found:
            return "found"  # the attempt that posted it may have shared the chart: not twice
        await self._share_chart(self.channel, ts)
        return "posted"

    async def _share_chart(self, channel: str, ts: str) -> None:
        """Share the chart in the thread of the digest (`ts`). The digest is out already: a failure is logged, and
        the chart is not tried again."""
        if self.chart is None:
            return
        try:
            series = await self.chart_series()
            png = await asyncio.to_thread(self.chart.png, series)  # a few hundred ms of drawing, off the loop
        except Exception:  # a bug in the drawing, or the database busy: the digest stands without its chart
            log.exception("could not draw the digest's chart; the digest is posted without it")
            return
        try:
            async with self.pacer.turn(channel):
                await share_in_thread(
                    self.client,
                    channel=channel,
                    thread_ts=ts,
                    filename=self.chart.filename,
                    content=png,
                    title=self.chart.title,
                    alt_text=self.chart.alt_text(series),
                )
        except UPLOAD_ERRORS as exc:
            log.warning("the digest's chart was not shared in its thread (%s); the digest is posted", _describe(exc))

    async def _post(self, day: str, digest: Digest) -> str:
        async with self.pacer.turn(self.channel):
            response = await self.client.chat_postMessage(
                channel=self.channel,
                unfurl_links=False,
                metadata={"event_type": DIGEST_EVENT, "event_payload": {"day": day}},
                **self.message(digest),
            )
        return response["ts"]

    async def _find_posted(self, day: str, claimed_at: datetime) -> str | None:
        """The day's message, if an earlier attempt got it into the channel. A refusal to look (e.g. a missing
        history scope) posts again: rather a second digest than none; Slack out of reach fails the attempt."""
        try:
            found = await find_message(
                self.client,
                self.channel,
                since=claimed_at.timestamp() - 60,
                matches=lambda message: has_metadata(message, DIGEST_EVENT, day=day),
            )
        except SlackApiError as exc:
            if exc.response.status_code != 200:
                raise
            log.warning("could not look for an earlier digest in %s: %s", self.channel, exc.response.get("error"))
            return None
        if found is None:
            return None
        log.info("the digest for %s had reached Slack before; not posting it again", day)
        return found["ts"]

    # --- the timer --------------------------------------------------------------------------------------------

    async def run_forever(self) -> None:
        """Post each day's digest once DIGEST_TIME has come in the digest's time zone. On a database that never
        had a digest (a first start) the first one comes at the next DIGEST_TIME: none was missed."""
        await self._load_time()
        await wait_for_wakeup(self._zone_known, ZONE_WAIT)
        started = self.now()
        if digest_due(started, self.digest_time, self.zone) and not await self.store.had_digests():
            self._done_day = digest_day(started, self.zone).isoformat()
        retry = RETRY_FIRST
        while True:
            self._wake.clear()  # before reading the clock: a wake-up from now on ends the sleep below at once
            now = self.now()
            wait = (next_digest_at(now, self.digest_time, self.zone) - now).total_seconds()
            if self._due(now):
                try:
                    result = await self.post_scheduled()
                except Exception:  # the database is busy or the disk is full: the day is not lost, try again
                    log.exception("the daily digest failed; trying again in %.0f s", retry)
                    result = "failed"
                if result == "failed":
                    wait, retry = retry, min(retry * 2, RETRY_MAX)
                elif result == "busy":
                    wait = RETRY_FIRST
                else:
                    retry = RETRY_FIRST
            self.looked += 1
            await self._sleep(min(wait, MAX_SLEEP))

    def _due(self, now: datetime) -> bool:
        """DIGEST_TIME has come today, and this timer has not yet seen today's digest out."""
        today = digest_day(now, self.zone).isoformat()
        return digest_due(now, self.digest_time, self.zone) and today != self._done_day

    async def _sleep(self, seconds: float) -> None:
        await wait_for_wakeup(self._wake, max(seconds, 0.01))


def _describe(exc: Exception) -> str:
    if isinstance(exc, SlackApiError):
        error = exc.response.get("error") if isinstance(exc.response.data, dict) else None
        return error or f"HTTP {exc.response.status_code}"
    if isinstance(exc, SlackRequestError):
        return str(exc)
    return f"Slack could not be reached: {exc.__class__.__name__} {exc}".strip()


async def terminal_digest(database_path: str, *, timezone: str | None, shop: str | None) -> tuple[str, ChartSeries]:
    """`python -m bot digest --print`: the digest as text and the figures of its chart, from the database alone (no
    Slack, no Shopify). Taking the chart's figures stores today's snapshot of the stuck counts."""
    store = await Store(database_path).open()
    now = datetime.now(UTC)
    try:
        digest = await build_digest_from(store, now=now, zone=ZoneInfo(timezone) if timezone else UTC, shop=shop)
        series = await chart_series_from(store, now=now)
    finally:
        await store.close()
    return digest_text(digest), series
