"""Async Shopify Admin GraphQL client: auth, API version, cost-based throttling, retries, typed errors, pages.

Throttling follows Shopify's leaky bucket: each answer's `extensions.cost.throttleStatus` tells how many points are
available and how fast they come back; before sending, the client waits until the bucket (as last reported, plus
what has been restored since) holds the cost this operation needed last time. Requests take turns at the budget; one
a person waits for (sent with `urgent=True`, a click) goes before queued background ones (a scan's pages, a bulk
run's orders), and cuts short the wait of one already waiting for budget. A THROTTLED answer (which arrives
with HTTP 200) is retried after exactly the wait it implies. Queries are retried on 5xx and timeouts with backoff;
mutations are not, because a mutation that timed out may have been applied: the caller re-reads state instead.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any
from urllib.request import getproxies_environment

import aiohttp

from bot.domain.moves import LocationForMove, locations_for_move_from_graphql
from bot.domain.orders import Order, OrderState, order_from_graphql, order_state_from_graphql
from bot.domain.proxies import proxy_for
from bot.shopify import operations

if TYPE_CHECKING:
    from bot.config import Settings

log = logging.getLogger(__name__)

DEFAULT_COST = 100.0  # assumed for an operation not yet seen; replaced by what Shopify reports
MAX_THROTTLE_WAITS = 30  # THROTTLED answers retried before giving up (each after its computed wait)


class ShopifyError(Exception):
    """Something Shopify refused or could not do, worded for the person who asked."""


class ShopifyAuthError(ShopifyError):
    pass


class ShopifyUnavailable(ShopifyError):
    """5xx, timeouts, refused connections or throttling that outlasted our patience."""


class ShopifyUninstalled(ShopifyError):
    """The shop uninstalled orderbot: no request is sent until it is installed again (bot/flows/installation.py)."""


class ShopifyQueryError(ShopifyError):
    """GraphQL-level errors: an invalid document, an unknown field, a cost over the maximum."""


class ShopifyUserError(ShopifyError):
    """A mutation's userErrors: the request was understood and refused."""

    def __init__(self, errors: list[dict[str, Any]]):
        self.errors = errors
        super().__init__("; ".join(e.get("message", "unknown error") for e in errors) or "Shopify refused the change")


class _Turns:
    """Whose turn it is at the cost budget: urgent requests first, then background ones, each in arrival order."""

    def __init__(self) -> None:
        self._held = False
        self._waiting: dict[bool, deque[asyncio.Future[None]]] = {True: deque(), False: deque()}
        self.urgent_arrived = asyncio.Event()

    @property
    def urgent_waiting(self) -> bool:
        return bool(self._waiting[True])

    async def take(self, is_urgent: bool, *, first: bool = False) -> None:
        """Wait for the turn (`first`: ahead of the others of its kind, for one that gave its turn up)."""
        if not self._held:
            self._held = True
            return
        turn = asyncio.get_running_loop().create_future()
        queue = self._waiting[is_urgent]
        queue.appendleft(turn) if first else queue.append(turn)
        if is_urgent:
            self.urgent_arrived.set()
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self.give()  # handed the turn as it was cancelled: pass it on
            else:
                queue.remove(turn)
            raise

    def give(self) -> None:
        """End the turn: the next urgent request's, else the next background one's."""
        for queue in (self._waiting[True], self._waiting[False]):
            while queue:
                turn = queue.popleft()
                if not turn.done():
                    turn.set_result(None)
                    return
        self._held = False


@dataclass
class Bucket:
    """The last throttle status Shopify reported, and when."""

    maximum: float = 1000.0
    available: float = 1000.0
    restore_rate: float = 50.0
    at: float = 0.0

    def available_at(self, now: float) -> float:
        return min(self.maximum, self.available + (now - self.at) * self.restore_rate)

    def wait_for(self, cost: float, now: float) -> float:
        missing = min(cost, self.maximum) - self.available_at(now)
        return max(0.0, missing / self.restore_rate) if self.restore_rate > 0 else 0.0


class ShopifyClient:
    def __init__(
        self,
        *,
        graphql_url: str,
        access_token: str | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        token_url: str | None = None,
        session: aiohttp.ClientSession | None = None,
        proxy: str | None = None,
        timeout: float = 10.0,
        max_attempts: int = 4,
        backoff: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ):
        self.graphql_url = graphql_url
        self._token = access_token
        self._client_id = client_id
        self._client_secret = client_secret
        self._token_url = token_url or graphql_url.split("/admin/api/")[0] + "/admin/oauth/access_token"
        self._token_expires = float("inf") if access_token else 0.0
        self._own_session = session is None
        self._session = session
        self._proxy = proxy  # for the token URL too: the same host
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._max_attempts = max_attempts
        self._backoff = backoff
        self._clock = clock
        self._sleep = sleep
        self.bucket = Bucket(at=clock())
        self._costs: dict[str, float] = {}
        self._charged: dict[str, float] = {}  # what each operation was last charged (actualQueryCost)
        self._asked_version = graphql_url.split("/admin/api/", 1)[-1].split("/", 1)[0]
        self.served_version: str | None = None  # X-Shopify-API-Version of the last answer
        self._turns = _Turns()
        # Urgent requests go first. False only in tests/perf/bench_click_during_scan.py, which measures what that gains.
        self.prioritise = True
        self.suspended: str | None = None  # why no request may be sent (the shop uninstalled orderbot); None: send

    async def close(self) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    # --- auth -----------------------------------------------------------------------------------------------

    async def _access_token(self) -> str:
        if self._token and self._clock() < self._token_expires:
            return self._token
        if not (self._client_id and self._client_secret):
            raise ShopifyAuthError("No Shopify access token: set SHOPIFY_ACCESS_TOKEN or SHOPIFY_CLIENT_ID and SECRET.")
        form = {"grant_type": "client_credentials", "client_id": self._client_id, "client_secret": self._client_secret}
        try:
            async with self._http().post(
                self._token_url, data=form, proxy=self._proxy, timeout=self._timeout
            ) as response:
                body = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ShopifyUnavailable(
                f"Could not reach Shopify to get an access token ({exc.__class__.__name__})."
            ) from exc
        if response.status != 200 or "access_token" not in body:
            raise ShopifyAuthError("Shopify refused the app's client credentials; check SHOPIFY_CLIENT_ID and SECRET.")
        self._token = body["access_token"]
        self._token_expires = self._clock() + float(body.get("expires_in", 86400)) - 60
        return self._token

    # --- requests -------------------------------------------------------------------------------------------

    async def execute(
        self,
        document: str,
        variables: dict[str, Any] | None = None,
        *,
        urgent: bool = False,
        even_if_suspended: bool = False,
    ) -> dict[str, Any]:
        """Run one document and return its `data`, waiting out throttling; raise a ShopifyError subclass. `urgent`: a
        person waits for it, so it goes before background requests when budget is short. While `suspended`, raise
        ShopifyUninstalled without a request, unless `even_if_suspended` (the probe for a reinstall)."""
        if self.suspended is not None and not even_if_suspended:
            raise ShopifyUninstalled(self.suspended)
        name = _operation_name(document)
        is_mutation = document.lstrip().startswith("mutation")
        attempts = throttled = 0
        while True:
            await self._wait_for_budget(name, urgent)
            attempts += 1
            try:
                status, body = await self._post(document, variables)
            except (aiohttp.ClientConnectionError, TimeoutError) as exc:
                sent = not isinstance(exc, aiohttp.ClientConnectorError)
                if (is_mutation and sent) or attempts >= self._max_attempts:
                    raise ShopifyUnavailable(_unavailable_text(exc, is_mutation and sent)) from exc
                await self._sleep(self._retry_delay(attempts))
                continue
            if status in (401, 403):
                if status == 401 and self._client_id and attempts == 1:
                    self._token_expires = 0.0
                    continue
                raise ShopifyAuthError(_auth_text(status))
            if status == 429 or status >= 500:
                if (is_mutation and status != 429) or attempts >= self._max_attempts:
                    raise ShopifyUnavailable(f"Shopify answered HTTP {status}; try again in a minute.")
                await self._sleep(self._retry_delay(attempts))
                continue
            self._note_cost(name, body)
            errors = body.get("errors") if isinstance(body, dict) else None
            if errors and _is_throttled(errors):
                throttled += 1
                if throttled > MAX_THROTTLE_WAITS:
                    raise ShopifyUnavailable(
                        "Shopify kept throttling orderbot: the shop's API budget is used up for now; try again in a "
                        "minute."
                    )
                attempts -= 1  # a throttled request was not executed: it is no failed attempt
                continue
            if errors:
                raise ShopifyQueryError("Shopify rejected the request: " + _error_messages(errors))
            if status != 200 or not isinstance(body, dict) or "data" not in body:
                raise ShopifyUnavailable(f"Shopify sent an unexpected answer (HTTP {status}).")
            return body["data"]

    async def mutate(
        self, document: str, variables: dict[str, Any], payload: str, *, urgent: bool = False
    ) -> dict[str, Any]:
        """Run a mutation and return its payload object; userErrors become ShopifyUserError."""
        result = (await self.execute(document, variables, urgent=urgent))[payload] or {}
        errors = result.get("userErrors") or result.get("orderCancelUserErrors") or []
        if errors:
            raise ShopifyUserError(errors)
        return result

    async def _post(self, document: str, variables: dict[str, Any] | None) -> tuple[int, Any]:
        headers = {"X-Shopify-Access-Token": await self._access_token(), "Content-Type": "application/json"}
        payload = {"query": document, "variables": variables or {}}
        request = self._http().post(
            self.graphql_url, json=payload, headers=headers, proxy=self._proxy, timeout=self._timeout
        )
        async with request as resp:
            self._note_version(resp.headers.get("X-Shopify-API-Version"))
            try:
                return resp.status, await resp.json(content_type=None)
            except ValueError:
                return resp.status, None

    async def _wait_for_budget(self, name: str, urgent: bool) -> None:
        """Wait for the turn and until the request's cost is available, then take what it will likely be charged off
        our estimate, so that requests sent together (a bulk run) do not all count on the same points and come back
        THROTTLED. A background request waiting for budget gives its turn up to an urgent one that arrives."""
        is_urgent = urgent and self.prioritise
        gave_up = False
        while True:
            await self._turns.take(is_urgent, first=gave_up)
            try:
                wait = self.bucket.wait_for(self._costs.get(name, DEFAULT_COST), self._clock())
                if wait > 0:
                    log.debug("waiting %.2fs for Shopify's cost budget before %s", wait, name)
                    if is_urgent:
                        await self._sleep(wait)
                    elif await self._cut_short(wait):  # never cut while `prioritise` is off: nothing is urgent
                        gave_up = True
                        continue
                charged = self._charged.get(name)  # unknown until Shopify has charged it once: then nothing is taken
                if charged:
                    now = self._clock()
                    self.bucket = replace(self.bucket, available=self.bucket.available_at(now) - charged, at=now)
                return
            finally:
                self._turns.give()

    async def _cut_short(self, wait: float) -> bool:
        """Sleep `wait` seconds unless an urgent request comes to wait for its turn first; True when one did."""
        if self._turns.urgent_waiting:
            return True
        self._turns.urgent_arrived.clear()
        sleeping = asyncio.ensure_future(self._sleep(wait))
        arriving = asyncio.ensure_future(self._turns.urgent_arrived.wait())
        try:
            done, _ = await asyncio.wait({sleeping, arriving}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sleeping, arriving):
                task.cancel()
            await asyncio.gather(sleeping, arriving, return_exceptions=True)
        return arriving in done

    def _note_cost(self, name: str, body: Any) -> None:
        cost = (body.get("extensions") or {}).get("cost") if isinstance(body, dict) else None
        if not cost:
            return
        status = cost.get("throttleStatus") or {}
        now = self._clock()
        self.bucket = Bucket(
            maximum=float(status.get("maximumAvailable", self.bucket.maximum)),
            available=float(status.get("currentlyAvailable", self.bucket.available)),
            restore_rate=float(status.get("restoreRate", self.bucket.restore_rate)),
            at=now,
        )
        requested, actual = cost.get("requestedQueryCost"), cost.get("actualQueryCost")
        if requested is not None:
            self._costs[name] = float(requested)
        if actual is not None:  # none on a THROTTLED answer: nothing was charged
            self._charged[name] = float(actual)

    def _note_version(self, served: str | None) -> None:
        """Shopify answers a version it no longer supports with the oldest one it does, and says so only in this
        header: warn once, since orderbot's documents were validated against the version asked for."""
        if not served or served == self.served_version:
            return
        self.served_version = served
        if served != self._asked_version:
            log.warning(
                "Shopify answered with API version %s, not the %s orderbot asks for: %s is no longer served. Move "
                "orderbot to a newer version (a newer schema in bot/sandbox, API_VERSION in bot/shopify/version.py).",
                served,
                self._asked_version,
                self._asked_version,
            )

    def _retry_delay(self, attempt: int) -> float:
        return self._backoff * (2 ** (attempt - 1)) * (0.5 + random.random())

    # --- the bot's reads --------------------------------------------------------------------------------------

    async def fetch_order(self, order_id: str, *, urgent: bool = False) -> Order | None:
        """The order (ORDER); `urgent`: a person waits for it (see `execute`)."""
        node = (await self.execute(operations.ORDER, {"id": order_id}, urgent=urgent))["order"]
        return (await self._orders_of([node], urgent=urgent))[0] if node else None

    async def fetch_order_without_lines(self, order_id: str, *, urgent: bool = False) -> Order | None:
        """The order's OrderFields, without its fulfillment orders' line items (ORDER_WITHOUT_LINES)."""
        node = (await self.execute(operations.ORDER_WITHOUT_LINES, {"id": order_id}, urgent=urgent))["order"]
        return (await self._orders_of([node], urgent=urgent))[0] if node else None

    async def order_states(self, ids: list[str]) -> dict[str, OrderState | None]:
        """The state of the orders `ids` (ORDER_STATES), ORDER_STATES_BATCH a request; None for one Shopify no longer
        has."""
        found: dict[str, OrderState | None] = {}
        for start in range(0, len(ids), operations.ORDER_STATES_BATCH):
            batch = ids[start : start + operations.ORDER_STATES_BATCH]
            nodes = (await self.execute(operations.ORDER_STATES, {"ids": batch}))["nodes"]
            found.update(dict.fromkeys(batch))
            found.update((node["id"], order_state_from_graphql(node)) for node in nodes if node)
        return found

    async def fetch_order_of_fulfillment_order(self, fulfillment_order_id: str) -> Order | None:
        node = (await self.execute(operations.ORDER_OF_FULFILLMENT_ORDER, {"id": fulfillment_order_id}))[
            "fulfillmentOrder"
        ]
        return (await self._orders_of([node["order"]]))[0] if node else None

    async def locations_for_move(self, fulfillment_order_id: str, *, urgent: bool = False) -> list[LocationForMove]:
        """Where Shopify says the fulfillment order may move (the first LOCATIONS_FOR_MOVE_FIRST), as it lists them."""
        variables = {"id": fulfillment_order_id, "first": operations.LOCATIONS_FOR_MOVE_FIRST}
        data = await self.execute(operations.LOCATIONS_FOR_MOVE, variables, urgent=urgent)
        return locations_for_move_from_graphql(data.get("fulfillmentOrder"))

    async def _orders_of(self, nodes: list[dict[str, Any]], *, urgent: bool = False) -> list[Order]:
        """Orders from OrderFields nodes. One shipped in more parts than the fields bring (fulfillmentsCount says how
        many there are) gets all of them first, one more query each: a rare order, so rarer than a bigger bound's
        cost on every order of every page."""
        for node in nodes:
            if (node.get("fulfillmentsCount") or {}).get("count", 0) > len(node.get("fulfillments") or ()):
                whole = (await self.execute(operations.ORDER_FULFILLMENTS, {"id": node["id"]}, urgent=urgent))["order"]
                if whole is not None:  # deleted meanwhile: what the first read brought is all there is
                    node["fulfillments"] = whole["fulfillments"]
        return [order_from_graphql(node) for node in nodes]

    async def orders(self, query: str, page_size: int = operations.ORDERS_PAGE_SIZE) -> AsyncIterator[list[Order]]:
        """Yield pages of orders matching a Shopify search query, following cursors to the end."""
        async for nodes in self._pages(operations.ORDERS_PAGE, "orders", query, page_size):
            yield await self._orders_of(nodes)

    async def orders_by_id(self, ids: list[str]) -> dict[str, Order | None]:
        """The orders `ids`, ORDERS_BY_ID_BATCH a request; None for one Shopify no longer has."""
        found: dict[str, Order | None] = {}
        for start in range(0, len(ids), operations.ORDERS_BY_ID_BATCH):
            batch = ids[start : start + operations.ORDERS_BY_ID_BATCH]
            nodes = (await self.execute(operations.ORDERS_BY_ID, {"ids": batch}))["nodes"]
            orders = await self._orders_of([node for node in nodes if node])
            found.update(dict.fromkeys(batch))
            found.update((order.id, order) for order in orders)
        return found

    async def orders_with_fulfillment_orders_changed(self, query: str) -> set[str]:
        """The ids of the orders of the fulfillment orders (closed ones too) matching a search query."""
        found: set[str] = set()
        async for nodes in self._pages(operations.CHANGED_FULFILLMENT_ORDERS, "fulfillmentOrders", query, 250):
            found.update(node["orderId"] for node in nodes)
        return found

    async def _pages(self, document: str, field: str, query: str, size: int) -> AsyncIterator[list[dict[str, Any]]]:
        """The nodes of a connection `field`, a page at a time, following cursors to the end."""
        after = None
        while True:
            page = (await self.execute(document, {"first": size, "after": after, "query": query}))[field]
            yield page["nodes"]
            if not page["pageInfo"]["hasNextPage"]:
                return
            after = page["pageInfo"]["endCursor"]

    async def order_named(self, name: str) -> Order | None:
        """The order whose name is `name` ("#1001"), archived and cancelled ones included."""
        async for page in self.orders(f"name:{name.lstrip('#')} status:any", page_size=1):
            return next((order for order in page if order.name == name), None)
        return None

    async def job_done(self, job_id: str) -> bool | None:
        """Whether Shopify has run a background job (an order's cancellation); None when it knows no such job."""
        job = (await self.execute(operations.JOB, {"id": job_id}))["job"]
        return None if job is None else bool(job["done"])

    async def shop_and_scopes(self, *, even_if_suspended: bool = False) -> tuple[dict[str, Any], set[str]]:
        data = await self.execute(operations.SHOP_AND_SCOPES, even_if_suspended=even_if_suspended)
        return data["shop"], {s["handle"] for s in data["currentAppInstallation"]["accessScopes"]}


def _operation_name(document: str) -> str:
    head = document.lstrip().split("(", 1)[0].split("{", 1)[0].split()
    return head[1] if len(head) > 1 else "anonymous"


def _is_throttled(errors: Any) -> bool:
    return isinstance(errors, list) and any((e.get("extensions") or {}).get("code") == "THROTTLED" for e in errors)


def _error_messages(errors: Any) -> str:
    if isinstance(errors, str):
        return errors
    return "; ".join(str(e.get("message", e)) for e in errors)


def _auth_text(status: int) -> str:
    if status == 401:
        return "Shopify did not accept the access token; check SHOPIFY_ACCESS_TOKEN (or the client credentials)."
    return "The Shopify app lacks a permission this needs; run `python -m bot check` to list missing scopes."


def _unavailable_text(exc: BaseException, maybe_applied: bool) -> str:
    what = "timed out" if isinstance(exc, TimeoutError) else "could not be reached"
    if maybe_applied:
        return f"Shopify {what} while making the change; it may or may not have been applied. Check the order."
    return f"Shopify {what}; try again in a minute."


def client_from_settings(settings: Settings) -> ShopifyClient | None:
    """The client the settings describe; None without Shopify credentials (the bot then only reads what it stored).
    Its proxy is the one HTTPS_PROXY and NO_PROXY give for the shop's URL (bot/domain/proxies.py)."""
    if not settings.has_shopify_credentials:
        return None
    return ShopifyClient(
        graphql_url=settings.graphql_url,
        access_token=settings.shopify_access_token,
        client_id=settings.shopify_client_id,
        client_secret=settings.shopify_client_secret,
        proxy=proxy_for(settings.graphql_url, getproxies_environment()),
    )
