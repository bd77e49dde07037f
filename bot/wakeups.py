"""Waiting for a wake-up with a time limit: the loops that sleep until there is work (the Slack outbox, the inbox
processor, the digest timer) wake at once when someone sets their event."""

from __future__ import annotations

import asyncio
import contextlib


async def wait_for_wakeup(wake: asyncio.Event, seconds: float | None) -> None:
    """Return once `wake` is set or `seconds` have passed (None: no limit).

    asyncio.timeout, not asyncio.wait_for: on Python 3.11, wait_for swallows a cancel that arrives as the wake-up
    fires, and the server's shutdown then waited for the task forever (seen in the tests)."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await wake.wait()
