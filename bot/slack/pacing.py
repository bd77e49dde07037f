"""One post per `pace` seconds per channel, shared by everything that posts to a channel: the outbox's alerts and
replies, a bulk run's progress message, the daily digest. Slack counts them all against the same limit.

A channel is free `pace` seconds after a call to it began and `pace` seconds after Slack answered it: Slack counts a
post when it takes it, which may be late in a slow call, so no two posts arrive closer than the pace.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager


class ChannelPacer:
    def __init__(self, pace: float, clock: Callable[[], float] = time.time):
        self.pace = pace
        self.clock = clock
        self._free_at: dict[str, float] = {}
        self._first_free_at = 0.0  # for a channel not posted to yet (see hold_all)

    def free_at(self, channel: str) -> float:
        return self._free_at.get(channel, self._first_free_at)

    def hold_all(self) -> None:
        """At start: the process before this one may have posted a moment before it stopped (or was killed), and when
        is not known, so every channel waits one pace before its first post."""
        self._first_free_at = self.clock() + self.pace

    def hold(self, channel: str, seconds: float) -> None:
        """Slack asked to wait (a 429's Retry-After)."""
        self._free_at[channel] = max(self.free_at(channel), self.clock() + seconds)

    def began(self, channel: str) -> None:
        self._free_at[channel] = self.clock() + self.pace

    def answered(self, channel: str) -> None:
        self._free_at[channel] = max(self.free_at(channel), self.clock() + self.pace)

    @asynccontextmanager
    async def turn(self, channel: str) -> AsyncIterator[None]:
        """Wait until the channel is free, then make one call to it."""
        while (wait := self.free_at(channel) - self.clock()) > 0:  # noqa: ASYNC110 - a time to wait for, not an event
            await asyncio.sleep(wait)
        self.began(channel)
        try:
            yield
        finally:
            self.answered(channel)
