"""Waiting for something the sandboxes or the server will do: shared by the demo, which checks each step's effect,
and the tests."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

POLL_SECONDS = 0.02


async def came_true(condition: Callable[[], bool | Awaitable[bool]], within: float) -> bool:
    """Poll `condition` (a plain or an async callable) until it holds; False when `within` seconds passed first."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        result = condition()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return True
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(POLL_SECONDS)
