"""POST /shopify/webhooks: verify the HMAC, store the delivery (deduplicated), answer, and only then process.

Deliveries from concurrent requests are written in group commits by one InboxWriter: each request waits for the
commit that holds its row, so a 200 always means "on disk" (docs/architecture.md, "Persist, then answer").
It waits until INGEST_DEADLINE_SECONDS at most: a delivery the store could not take by then (another program holds
the database's lock) is answered 503, and Shopify sends it again; its copy, if it was stored after all, makes the
repeat a duplicate.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
import logging
import math
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from bot.domain.orders import ORDER_TOPICS
from bot.request_body import read_at_most
from bot.store import Delivery, Store

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/shopify/webhooks"  # the one address for every topic; `setup-webhooks` subscribes the shop to it

MAX_BODY_BYTES = 2 * 1024 * 1024  # Shopify's largest order payloads stay well under this; more is refused (413).
INGEST_QUIET_SECONDS = 0.1  # no delivery for this long: the burst is over and processing runs flat out
MAX_DEFERRAL_SECONDS = 1.0  # during a burst, still process one batch at least this often (see yield_to_ingest)
INGEST_DEADLINE_SECONDS = 3.0  # not stored by then: answered 503 (Shopify waits 5 s for an answer, then retries)
COLLECT_ROUNDS = 8  # event-loop rounds a batch waits for more deliveries at most (see InboxWriter._collect)
BODY_DIGEST_CHARS = 32  # 128 bits of SHA-256 in body_key: no two different bodies of an order share one


def verify_hmac(body: bytes, header_value: str | None, secret: str) -> bool:
    """Shopify's X-Shopify-Hmac-Sha256: base64 HMAC-SHA256 of the raw body. Compared as bytes, in constant time."""
    if not header_value or not secret:
        return False
    try:
        received = base64.b64decode(header_value.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return hmac.compare_digest(received, expected)


def sign(body: bytes, secret: str) -> str:
    """The header value Shopify would send for `body` (used by the tests, the demo and the benchmarks)."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def body_key(topic: str, payload: dict[str, Any], body: bytes) -> str | None:
    """The body's identity, so a captured body replayed under fresh (unsigned) header ids is still a duplicate.

    The order, its updated_at and a digest of the exact bytes: Shopify's updated_at has one-second resolution, so two
    changes within a second share it, and only the bytes tell the second from a replay of the first. Only for topics
    whose body is applied as it is; other topics only make us re-read Shopify, which is harmless.
    """
    if topic not in ORDER_TOPICS:
        return None
    identity = payload.get("admin_graphql_api_id") or payload.get("id")
    if identity is None:
        return None
    digest = hashlib.sha256(body).hexdigest()[:BODY_DIGEST_CHARS]
    return f"{topic}|{identity}|{payload.get('updated_at')}|{digest}"


def deferral_budget(busy_for: float) -> float:
    """How long processing may wait for a burst of deliveries to pause, having just processed for `busy_for` seconds:
    as long as it worked, at least one quiet window and at most MAX_DEFERRAL_SECONDS."""
    return min(MAX_DEFERRAL_SECONDS, max(INGEST_QUIET_SECONDS, busy_for))


class InboxWriter:
    """Collects deliveries from concurrent requests and stores them in batches, one commit each.

    `clock` and `sleep` pace yield_to_ingest (the event loop's time and asyncio.sleep unless given: tests drive them);
    deadlines always run on the event loop's time."""

    def __init__(
        self,
        store: Store,
        on_stored: Callable[[], None],
        *,
        deadline: float = INGEST_DEADLINE_SECONDS,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ):
        self._store = store
        self._on_stored = on_stored
        self._deadline = deadline
        self._queue: list[tuple[Delivery, asyncio.Future[bool]]] = []
        # Every waiting request's future with its deadline, oldest first: one timer for all of them, the oldest's (a
        # timer per request, as asyncio.wait_for sets, costs about 9 us of the event loop's time per delivery).
        self._waiting: deque[tuple[float, asyncio.Future[bool]]] = deque()
        self._deadline_timer: asyncio.TimerHandle | None = None
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._clock = clock
        self._sleep = sleep
        self._last_submit = float("-inf")
        self._resumed_at = float("-inf")  # when processing last went on after yielding

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="inbox-writer")

    async def stop(self) -> None:
        if self._deadline_timer is not None:
            self._deadline_timer.cancel()
            self._deadline_timer = None
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def yield_to_ingest(self) -> None:
        """Called by the processor between batches: while deliveries keep arriving, answering Shopify comes first and
        processing waits, but never longer than it has just been processing (nor MAX_DEFERRAL_SECONDS): under a
        steady stream it still gets half the time, and keeps up instead of falling behind by a batch a second."""
        budget = deferral_budget(self._now() - self._resumed_at)
        windows = math.ceil(budget / INGEST_QUIET_SECONDS - 1e-9)  # counted, not summed: ten 0.1 s sum to under 1.0
        for _ in range(windows):
            if self._now() - self._last_submit >= INGEST_QUIET_SECONDS:
                break
            await self._sleep(INGEST_QUIET_SECONDS)
        self._resumed_at = self._now()

    def _now(self) -> float:
        return self._clock() if self._clock is not None else asyncio.get_running_loop().time()

    async def submit(self, delivery: Delivery) -> bool:
        """Store one delivery; True when it is new, False for a duplicate. Returns after the commit; raises
        TimeoutError when there was none within the deadline (the delivery leaves the queue, unless its batch is
        being written already)."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        self._last_submit = now if self._clock is None else self._clock()
        future: asyncio.Future[bool] = loop.create_future()
        self._queue.append((delivery, future))
        self._waiting.append((now + self._deadline, future))
        if self._deadline_timer is None:
            self._deadline_timer = loop.call_at(now + self._deadline, self._expire)
        self._wakeup.set()
        return await future

    def _expire(self) -> None:
        """Fail the requests whose deadline has passed with TimeoutError (those still queued are then left out of
        the next batch), and set the timer for the next deadline."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        while self._waiting and (self._waiting[0][1].done() or self._waiting[0][0] <= now):
            _, future = self._waiting.popleft()
            if not future.done():
                future.set_exception(TimeoutError())
        self._deadline_timer = loop.call_at(self._waiting[0][0], self._expire) if self._waiting else None

    async def _collect(self) -> None:
        """Let the requests the event loop is reading join the batch: each commit costs the same CPU whatever its
        size (its sync most), so fewer, fuller commits leave more of the core to the requests. Taken once a round of
        the loop added none, after COLLECT_ROUNDS rounds at most."""
        for _ in range(COLLECT_ROUNDS):
            size = len(self._queue)
            await asyncio.sleep(0)
            if len(self._queue) == size:
                return

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            await self._collect()
            self._wakeup.clear()
            batch = [(delivery, future) for delivery, future in self._queue if not future.done()]  # not given up on
            self._queue = []
            if not batch:
                continue
            try:
                fresh = await self._store.add_deliveries([delivery for delivery, _ in batch])
            except Exception as exc:  # the database failed: every waiting request must answer 503, not hang
                log.exception("could not store %d webhook deliveries", len(batch))
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), is_new in zip(batch, fresh, strict=True):
                if not future.done():
                    future.set_result(is_new)
            self._on_stored()


def make_handler(secret: str, writer: InboxWriter, shop: str | None = None) -> Callable[[web.Request], Any]:
    """The endpoint; with `shop` set, deliveries that name another shop are refused (the app's secret is shared by
    every shop that installs it; this orderbot serves one).

    A signed delivery without X-Shopify-Webhook-Id is stored all the same: Shopify always sends it, so only a proxy
    that strips headers can lose it, and refusing would then lose every webhook (Shopify gives up on an endpoint that
    keeps failing). Duplicates are still caught by X-Shopify-Event-Id and, for order topics, the body's identity.
    """
    warned_missing_id = False

    async def handle_webhook(request: web.Request) -> web.Response:
        nonlocal warned_missing_id
        body = await read_at_most(request, MAX_BODY_BYTES)
        if body is None:
            refused = _answer(413, "body larger than 2 MiB")
            refused.force_close()  # the rest of the body is not read: the connection ends with the answer
            return refused
        if not verify_hmac(body, request.headers.get("X-Shopify-Hmac-Sha256"), secret):
            return _answer(401, "invalid or missing X-Shopify-Hmac-Sha256")
        topic = (_header(request, "X-Shopify-Topic") or "").lower()
        if not topic:
            return _answer(400, "missing X-Shopify-Topic")
        sender = (_header(request, "X-Shopify-Shop-Domain") or "").lower()
        if shop and sender and sender != shop:
            return _answer(403, f"this orderbot serves {shop}, not {sender}")
        text, payload = _parse_object(body)
        if payload is None:
            return _answer(400, "body is not a UTF-8 JSON object")
        webhook_id = _header(request, "X-Shopify-Webhook-Id")
        if webhook_id is None and not warned_missing_id:
            warned_missing_id = True
            log.warning(
                "a webhook came without X-Shopify-Webhook-Id (does a proxy strip it?); stored, and deduplicated by "
                "X-Shopify-Event-Id and the order's body only"
            )
        delivery = Delivery(
            webhook_id=webhook_id,
            event_id=_header(request, "X-Shopify-Event-Id"),
            topic=topic,
            shop=_header(request, "X-Shopify-Shop-Domain"),
            triggered_at=_header(request, "X-Shopify-Triggered-At"),
            body_key=body_key(topic, payload, body),
            body=text,
        )
        try:
            is_new = await writer.submit(delivery)
        except TimeoutError:  # the database is locked or slow; Shopify will retry a 503
            return _answer(503, "could not store the delivery in time; retry later")
        except Exception:  # logged by the writer; Shopify will retry a 503
            return _answer(503, "could not store the delivery; retry later")
        return web.Response(body=_DUPLICATE if not is_new else _STORED, content_type="application/json")

    return handle_webhook


def _header(request: web.Request, name: str) -> str | None:
    """A header's value, None when it is absent or blank: an empty id must not make every later delivery without
    one look like its duplicate."""
    return request.headers.get(name, "").strip() or None


_STORED = json.dumps({"ok": True, "duplicate": False}).encode()
_DUPLICATE = json.dumps({"ok": True, "duplicate": True}).encode()


def _parse_object(body: bytes) -> tuple[str, dict[str, Any] | None]:
    try:
        text = body.decode("utf-8")
        payload = json.loads(text)
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return "", None
    return text, payload if isinstance(payload, dict) else None


def _answer(status: int, message: str) -> web.Response:
    return web.json_response({"ok": False, "error": message}, status=status)
