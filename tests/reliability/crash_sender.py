"""The crash suite's Shopify: posts signed webhook deliveries to the server at a steady rate from a process of its own,
so that killing the server (or the test's event loop being busy) never slows or stops the stream.

    python crash_sender.py PLAN OUTCOMES

PLAN is a JSON file: {"url", "secret", "shop", "rate" (new deliveries a second), "connections", "deliveries":
[{"webhook_id", "event_id", "topic", "body"}, ...]}. Each delivery is signed with bot.shopify.webhooks.sign (through
`webhook_headers`) and posted over keep-alive connections, new ones at `rate` whether the server is up or not (as
Shopify's events come). A delivery that gets no 200 (the server died under it, or was down) is tried again, as
Shopify retries, between the new ones; one that got a 200 is done (a duplicate in the plan is another delivery of the
same webhook id, as Shopify sends them too).

Every attempt is appended to OUTCOMES as a JSON line {"id", "status" (null: no answer), "duplicate", "error"}, so the
test can count what was sent and what was acknowledged at any moment. On SIGTERM the sender takes no new deliveries,
keeps trying the unanswered ones it already sent until each has its 200, and exits (1 if FINISH_WITHIN passed first).
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections import deque
from pathlib import Path
from typing import Any, TextIO

import aiohttp

from bot.sandbox.shopify_payloads import webhook_headers

FINISH_WITHIN = 30.0  # seconds to get the unanswered deliveries through after SIGTERM
RETRY_PAUSE = 0.05  # seconds a connection waits after a failure (the server is down: it refuses at once)
REQUEST_TIMEOUT = 5.0  # Shopify's own limit for an answer


class Sender:
    def __init__(self, plan: dict[str, Any], outcomes: TextIO):
        self.plan = plan
        self.outcomes = outcomes
        self.new: deque[dict[str, str]] = deque(plan["deliveries"])
        self.unanswered: deque[dict[str, str]] = deque()
        self.in_flight = 0
        self.stopping = asyncio.Event()
        self._next_at = 0.0

    async def run(self) -> int:
        """Send until SIGTERM, then get the unanswered through; the number of those still unanswered at the end."""
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self.stopping.set)
        self._next_at = loop.time()
        timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
        connector = aiohttp.TCPConnector(limit=self.plan["connections"])
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as http:
            workers = [asyncio.create_task(self._worker(http)) for _ in range(self.plan["connections"])]
            await self.stopping.wait()
            try:
                async with asyncio.timeout(FINISH_WITHIN):
                    await asyncio.gather(*workers)
            except TimeoutError:
                for worker in workers:
                    worker.cancel()
        self.outcomes.flush()
        return len(self.unanswered) + self.in_flight

    async def _worker(self, http: aiohttp.ClientSession) -> None:
        while True:
            delivery = await self._next()
            if delivery is None:
                return
            answered = await self._post(http, delivery)
            if not answered:
                self.unanswered.append(delivery)
                await asyncio.sleep(RETRY_PAUSE)

    async def _next(self) -> dict[str, str] | None:
        """The next new delivery when its time in the schedule has come (so that the stream keeps its rate while
        the server is down, as Shopify's events do), else an unanswered one; None once stopping (or out of new
        deliveries) with nothing left to get through."""
        loop = asyncio.get_running_loop()
        while True:
            taking_new = bool(self.new) and not self.stopping.is_set()
            if taking_new and loop.time() >= self._next_at:
                self._next_at = max(self._next_at + 1 / self.plan["rate"], loop.time() - 1)  # no catch-up burst
                return self._take(self.new)
            if self.unanswered:
                return self._take(self.unanswered)
            if not taking_new and self.in_flight == 0:
                return None
            until_next = self._next_at - loop.time() if taking_new else RETRY_PAUSE
            await asyncio.sleep(min(RETRY_PAUSE, max(0.0, until_next)))

    def _take(self, queue: deque[dict[str, str]]) -> dict[str, str]:
        self.in_flight += 1
        return queue.popleft()

    async def _post(self, http: aiohttp.ClientSession, delivery: dict[str, str]) -> bool:
        body = delivery["body"].encode()
        headers = webhook_headers(
            body,
            topic=delivery["topic"],
            secret=self.plan["secret"],
            shop=self.plan["shop"],
            webhook_id=delivery["webhook_id"],
            event_id=delivery["event_id"],
        )
        outcome: dict[str, Any] = {"id": delivery["webhook_id"], "status": None, "duplicate": None, "error": None}
        try:
            async with http.post(self.plan["url"], data=body, headers=headers) as response:
                answer = await response.read()
                outcome["status"] = response.status
                if response.status == 200:
                    outcome["duplicate"] = json.loads(answer)["duplicate"]
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            outcome["error"] = exc.__class__.__name__
        finally:
            self.in_flight -= 1
        self.outcomes.write(json.dumps(outcome) + "\n")
        self.outcomes.flush()
        return outcome["status"] == 200


def main(plan_path: str, outcomes_path: str) -> int:
    plan = json.loads(Path(plan_path).read_text())
    with open(outcomes_path, "a", encoding="utf-8") as outcomes:
        unanswered = asyncio.run(Sender(plan, outcomes).run())
    if unanswered:
        print(f"{unanswered} deliveries still unanswered after {FINISH_WITHIN:.0f} s", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
