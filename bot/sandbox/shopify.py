"""A local stand-in for the Shopify Admin GraphQL API: the server.

It executes the bot's documents with graphql-core against Shopify's real Admin schema (the version orderbot asks for,
bot/shopify/version.py) over in-memory orders, applies each mutation's effect, and models Shopify's cost-based
throttling (a leaky bucket of query-cost points), so that the client's auth, throttling, retries and bulk speed can be
tested over real HTTP.

Internal state is plain dicts in snake_case (the shape `seed.py` builds); GraphQL answers are views rendered from it
per request. Connections are callables `(info, **args)`, which graphql-core's default resolver calls.

The parts live beside this module: `schema` (loading the SDL), `state` (state rules), `search` (search syntax and
sort keys), `pagination` (cursor connections), `cost` (query cost), `views` (GraphQL and webhook shapes),
`mutations` (the mutation handlers) and `bulk_operations` (staged uploads and bulk mutation operations).
"""

from __future__ import annotations

import asyncio
import copy
import functools
import itertools
import json
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import graphql
from aiohttp import web
from graphql import (
    DocumentNode,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    execute,
    parse,
    specified_rules,
    validate,
)
from graphql.execution.values import get_variable_values

from bot.sandbox import bulk_operations, mutations, webhook_subscriptions
from bot.sandbox.cost import QueryCost
from bot.sandbox.pagination import connection
from bot.sandbox.schema import load_schema as load_schema
from bot.sandbox.search import (
    FULFILLMENT_ORDER_SORT_KEYS,
    ORDER_SORT_KEYS,
    fulfillment_order_predicate,
    search_predicate,
)
from bot.sandbox.seed import seed_locations
from bot.sandbox.state import record_fulfillment, tracking_entries
from bot.sandbox.views import fo_view, fulfillment_view, order_view, webhook_order
from bot.shopify.operations import REQUIRED_SCOPES
from bot.shopify.version import API_VERSION

MAX_QUERY_COST = 1000
MAX_INPUT_ITEMS = 250  # Shopify refuses an input array longer than this, in every API
RATE_LIMIT_DOCS = "https://shopify.dev/api/usage/rate-limits"
INVALID_TOKEN = "[API] Invalid API key or access token (unrecognized login or wrong password)"
FAILURE_KINDS = ("http_500", "http_503", "timeout", "throttled", "user_errors", "lost_answer", "dropped")
# Kinds that wait for the next mutation (the reads an action makes first go through untouched).
MUTATION_FAILURES = frozenset({"user_errors", "lost_answer", "dropped"})


# --- the server ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Operation:
    """One request to the GraphQL endpoint, as the sandbox saw it."""

    operation_name: str | None
    variables: dict[str, Any]
    requested_cost: int | None
    actual_cost: int | None
    outcome: str  # ok | user_errors | throttled | max_cost_exceeded | invalid | errors | unauthorized | http_500 | …
    at: datetime


@dataclass(frozen=True, slots=True)
class _Failure:
    kind: str
    message: str | None
    delay: float
    on_mutation: bool  # waits for the next mutation; queries go through untouched


@dataclass(slots=True)
class _Job:
    """A background job (Shopify's Job): `work` is applied when it runs, once `due`."""

    id: str
    due: float
    work: Callable[[], None]
    done: bool = False


@dataclass(slots=True)
class _Prepared:
    document: DocumentNode | None = None
    operation: OperationDefinitionNode | None = None
    variables: dict[str, Any] = field(default_factory=dict)
    errors: list[dict] = field(default_factory=list)

    @property
    def is_mutation(self) -> bool:
        return self.operation is not None and self.operation.operation == OperationType.MUTATION


# graphql-core validation rule → the error code Shopify's graphql-ruby reports.
_RULE_CODES = {
    "FieldsOnCorrectTypeRule": "undefinedField",
    "KnownArgumentNamesRule": "argumentNotAccepted",
    "ProvidedRequiredArgumentsRule": "missingRequiredArguments",
    "KnownTypeNamesRule": "undefinedType",
    "ScalarLeafsRule": "selectionMismatch",
    "NoUndefinedVariablesRule": "variableNotDefined",
    "NoUnusedVariablesRule": "variableNotUsed",
    "VariablesInAllowedPositionRule": "variableMismatch",
    "ValuesOfCorrectTypeRule": "argumentLiteralsIncompatible",
    "KnownFragmentNamesRule": "undefinedFragment",
    "NoUnusedFragmentsRule": "useAndDefineFragment",
    "LoneAnonymousOperationRule": "anonymousOperationNotAlone",
}


def _format_error(error: GraphQLError, code: str) -> dict:
    formatted = {"message": error.message}
    if error.locations:
        formatted["locations"] = [{"line": loc.line, "column": loc.column} for loc in error.locations]
    if error.path:
        formatted["path"] = list(error.path)
    formatted["extensions"] = {"code": code, **(error.extensions or {})}
    return formatted


def _validation_errors(schema: GraphQLSchema, document: DocumentNode) -> list[dict]:
    """Validate; on failure, rerun rule by rule to give each error the code Shopify would."""
    if not validate(schema, document):
        return []
    errors = []
    for rule in specified_rules:
        code = _RULE_CODES.get(rule.__name__, "validationFailed")
        errors.extend(_format_error(e, code) for e in validate(schema, document, [rule]))
    return errors


class SandboxShopify:
    """The Admin API of one shop: `POST /admin/api/{version}/graphql.json` and `POST /admin/oauth/access_token`."""

    def __init__(
        self,
        orders: list[dict] | None = None,
        *,
        shop_domain: str = "orderbot-demo.myshopify.com",
        shop_name: str = "Juniper & Oak",
        timezone: str = "America/New_York",
        currency: str = "USD",
        access_token: str = "shpat_sandbox",
        client_id: str = "sandbox-client",
        client_secret: str = "sandbox-secret",
        bucket_size: float = 2000.0,
        restore_rate: float = 100.0,
        max_query_cost: float = MAX_QUERY_COST,
        scopes: Iterable[str] = REQUIRED_SCOPES,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        job_delay: float = 0.0,
        locations: Iterable[dict] | None = None,
    ):
        """`job_delay`: seconds (on `clock`) before a background job runs, at the first request after; math.inf holds
        every job until `finish_jobs()`. With 0 a job runs at the next request, as a quick Shopify job would.
        `locations`: the shop's locations, each `{"id", "name", "service", "stocked": [SKU, …]}` (default: the
        seeded shop's, `seed.seed_locations()`); fulfillment orders move between them."""
        self.shop_domain = shop_domain
        self.shop_name = shop_name
        self.timezone = timezone
        self.currency = currency
        self.access_token = access_token
        self.client_id = client_id
        self.client_secret = client_secret
        self.bucket_size = bucket_size
        self.restore_rate = restore_rate
        self.max_query_cost = max_query_cost
        self.scopes = tuple(scopes)
        self.installed = True
        self.job_delay = job_delay
        self.mutation_seconds = 0.0  # how long each mutation's answer takes once Shopify has made the change
        self.jobs: dict[str, _Job] = {}
        self.operations: list[Operation] = []
        self.orders: dict[str, dict] = {}
        self.locations: dict[str, dict] = {
            place["id"]: copy.deepcopy(place) for place in (seed_locations() if locations is None else locations)
        }
        self._clock = clock
        self.now = now
        self._available = bucket_size
        self._refilled_at = clock()
        self._failures: deque[_Failure] = deque()
        self._forced_user_error: str | None = None
        self._ids = itertools.count(9_100_000_000_000)
        self.schema = load_schema()
        self.webhook_subscriptions = webhook_subscriptions.WebhookSubscriptions(now, self.gid)
        for order in orders or ():
            self.add_order(order)
        self.app = web.Application()
        self.app.router.add_post("/admin/api/{version}/graphql.json", self._graphql)
        self.app.router.add_post("/admin/oauth/access_token", self._access_token)
        self.bulk = bulk_operations.BulkOperations(self)
        self.bulk.attach(self.app)

    # --- test and demo controls -----------------------------------------------------------------------------------

    def add_order(self, order: dict) -> None:
        """Add (or replace) an order in `seed.py`'s shape; the sandbox keeps its own copy."""
        self.orders[order["id"]] = copy.deepcopy(order)

    def adopt_orders(self, orders: Iterable[dict]) -> None:
        """Add orders built for the sandbox alone (`seed.history`), without the copy `add_order` makes: the fast way
        to a shop of tens of thousands of orders."""
        self.orders.update((order["id"], order) for order in orders)

    def fail_next(
        self, kind: str, times: int = 1, *, message: str | None = None, delay: float = 30.0, on_mutation: bool = False
    ) -> None:
        """Make the next `times` requests fail as `kind`. "throttled" answers as if another client of the same app
        had just drained the bucket, so the throttle status it reports (and the bucket) is about one second of restore
        short of the request's cost, as a real THROTTLED is. These wait for the next mutation: "user_errors";
        "lost_answer" (the mutation is applied, then the connection drops before the answer: the client cannot tell
        whether it was); "dropped" (the connection drops before the mutation is applied). `on_mutation`: any other
        kind waits for the next mutation too (a 5xx or a timeout on the mutation, after the read before it passed)."""
        if kind not in FAILURE_KINDS:
            raise ValueError(f"unknown failure kind {kind!r}; expected one of {', '.join(FAILURE_KINDS)}")
        on_mutation = on_mutation or kind in MUTATION_FAILURES
        self._failures.extend(_Failure(kind, message, delay, on_mutation) for _ in range(times))

    @property
    def failures_left(self) -> int:
        """How many of the failures fail_next queued no request has taken yet: a test's sign that one was taken."""
        return len(self._failures)

    def start_job(self, work: Callable[[], None]) -> dict:
        """Queue `work` as a background job (as orderCancel does); returns the Job as the mutation answers it."""
        job = _Job(f"gid://shopify/Job/{uuid.uuid4()}", self._clock() + self.job_delay, work)
        self.jobs[job.id] = job
        return {"id": job.id, "done": False}

    def finish_jobs(self, *, succeed: bool = True) -> int:
        """Run every job not yet run, now, as Shopify's workers would; `succeed=False`: they end without effect (a
        cancellation Shopify gave up on). Returns how many ran."""
        pending = [job for job in self.jobs.values() if not job.done]
        for job in pending:
            self._run(job, succeed)
        return len(pending)

    def _run_due_jobs(self) -> None:
        now = self._clock()
        for job in [job for job in self.jobs.values() if not job.done and job.due <= now]:
            self._run(job, True)

    @staticmethod
    def _run(job: _Job, succeed: bool) -> None:
        job.done = True
        if succeed:
            job.work()

    def uninstall(self) -> None:
        """The merchant removes the app: Shopify revokes its access token (every request answers 401) and grants no
        new one for the client credentials. Send the `app/uninstalled` webhook yourself."""
        self.installed = False

    def reinstall(self, access_token: str | None = None) -> None:
        """The merchant installs the app again. A custom app's admin token is a new one (`access_token`); the
        client-credentials grant works again as it was (then leave `access_token` out)."""
        self.installed = True
        if access_token is not None:
            self.access_token = access_token

    def fulfill_externally(self, order_id: str, tracking_number: str | None = None, company: str | None = None) -> None:
        """Ship everything left, as staff in the Shopify admin or a fulfillment app would."""
        order = self.orders[order_id]
        picks = [
            (fo, line, line["remaining_quantity"])
            for fo in order["fulfillment_orders"]
            if fo["status"] not in ("CLOSED", "CANCELLED")
            for line in fo["line_items"]
            if line["remaining_quantity"] > 0
        ]
        for fo, _, _ in picks:
            if fo["status"] in ("ON_HOLD", "SCHEDULED"):
                fo["status"], fo["holds"] = "OPEN", []
        tracking = tracking_entries(tracking_number, company)
        record_fulfillment(order, picks, tracking, self.now(), self.gid("Fulfillment"))

    def set_fulfillment_order(self, fo_id: str, **changes: Any) -> None:
        """Change a fulfillment order's fields (status, request_status, holds, fulfill_at, …; GraphQL's camelCase
        names work too); holds may omit `id`. The order's updatedAt moves, as any change in Shopify does."""
        order, fo = self.fulfillment_order(fo_id)
        if fo is None:
            raise KeyError(fo_id)
        changes = {_FO_FIELD_ALIASES.get(k, k): v for k, v in changes.items()}
        unknown = set(changes) - set(fo)
        if unknown:
            raise KeyError(f"fulfillment orders have no {', '.join(sorted(unknown))}")
        for hold in changes.get("holds", ()):
            hold.setdefault("id", self.gid("FulfillmentHold"))
            hold.setdefault("reason_notes", None)
        fo.update(changes)
        self.touch(order, fo)

    def orders_fulfillment_order_ids(self, order_id: str) -> list[str]:
        """The ids of an order's fulfillment orders, for tests that send `fulfillment_orders/*` webhooks."""
        return [fo["id"] for fo in self.orders[order_id]["fulfillment_orders"]]

    def webhook_payload(self, order_id: str) -> dict:
        """The `orders/updated` webhook body (REST shape) for the order's current state."""
        order = self.orders[order_id]
        return webhook_order(order, ZoneInfo(self.timezone), self.currency)

    # --- HTTP -------------------------------------------------------------------------------------------------------

    async def _access_token(self, request: web.Request) -> web.Response:
        if request.content_type == "application/json":
            params = await request.json()
        else:
            params = dict(await request.post())
        if params.get("grant_type") != "client_credentials":
            return web.json_response(
                {"error": "unsupported_grant_type", "error_description": "The grant type is not supported."}, status=400
            )
        if not self.installed or (params.get("client_id"), params.get("client_secret")) != (
            self.client_id,
            self.client_secret,
        ):
            return web.json_response(
                {
                    "error": "invalid_client",
                    "error_description": "Client authentication failed due to unknown client, no client authentication "
                    "included, or unsupported authentication method.",
                },
                status=400,
            )
        return web.json_response(
            {"access_token": self.access_token, "scope": ",".join(self.scopes), "expires_in": 86399}
        )

    async def _graphql(self, request: web.Request) -> web.Response:
        """Every version asked for is served with the one schema held (as Shopify serves a version it no longer
        supports with the oldest one it does), and the answer says which, in X-Shopify-API-Version."""
        self.bulk.origin = f"{request.scheme}://{request.host}"  # where its upload targets and result files are
        response = await self._graphql_answer(request)
        response.headers["X-Shopify-API-Version"] = API_VERSION
        return response

    async def _graphql_answer(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except json.JSONDecodeError:
            body = None
        if not self.installed or request.headers.get("X-Shopify-Access-Token") != self.access_token:
            self._record(_named(body), {}, None, None, "unauthorized")
            return web.json_response({"errors": INVALID_TOKEN}, status=401)
        self._run_due_jobs()  # Shopify's workers run meanwhile; a client sees their work from its next request on
        if not isinstance(body, dict) or not isinstance(body.get("query"), str):
            self._record(None, {}, None, None, "bad_request")
            return web.json_response({"errors": {"query": "Required parameter missing or invalid"}}, status=400)
        variables = body.get("variables") or {}
        prepared = self._prepare(body["query"], body.get("operationName"), variables)
        name = body.get("operationName") or (
            prepared.operation and prepared.operation.name and prepared.operation.name.value
        )
        failure = self._take_failure(prepared.is_mutation)
        if failure and failure.kind == "timeout":
            await asyncio.sleep(failure.delay)
        if failure and failure.kind.startswith("http_"):
            self._record(name, variables, None, None, failure.kind)
            status = int(failure.kind.removeprefix("http_"))
            return web.json_response({"errors": failure.message or _HTTP_ERRORS[status]}, status=status)
        if failure and failure.kind == "dropped":
            return self._drop(request, (name, variables, None, None, "dropped"))
        outcome_override = failure.kind if failure and failure.kind in ("timeout", "lost_answer") else None
        if prepared.errors:
            self._record(name, variables, None, None, outcome_override or "invalid")
            return web.json_response({"errors": prepared.errors})
        answer = self._answer(prepared, name, variables, failure, outcome_override)
        if failure and failure.kind == "lost_answer":  # recorded by _answer, as applied
            return self._drop(request)
        if prepared.is_mutation and self.mutation_seconds:
            await asyncio.sleep(self.mutation_seconds)  # a slow answer: the change is made, the answer takes this long
        return answer

    def _drop(self, request: web.Request, record: tuple | None = None) -> web.Response:
        """Close the connection without an answer, as a network failure between Shopify and the client would."""
        if record:
            self._record(*record)
        request.transport.close()
        return web.Response(status=502)  # never arrives: the connection is gone

    def _answer(
        self, prepared: _Prepared, name: str | None, variables: dict, failure: _Failure | None, outcome: str | None
    ) -> web.Response:
        costing = QueryCost(self.schema, prepared.document, prepared.variables)
        try:
            requested = costing.operation(prepared.operation)
        except GraphQLError as error:
            self._record(name, variables, None, None, outcome or "invalid")
            return web.json_response({"errors": [_format_error(error, "argumentLiteralsIncompatible")]})
        if requested > self.max_query_cost:
            self._record(name, variables, requested, None, outcome or "max_cost_exceeded")
            return web.json_response(self._max_cost_exceeded(requested))
        self._refill()
        if failure and failure.kind == "throttled":
            self._available = min(self._available, max(0.0, requested - self.restore_rate))
        if (failure and failure.kind == "throttled") or requested > self._available:
            self._record(name, variables, requested, None, outcome or "throttled")
            return web.json_response(self._throttled(requested, failure.message if failure else None))
        self._forced_user_error = (
            (failure.message or "Simulated failure.") if failure and failure.kind == "user_errors" else None
        )
        try:
            result = execute(
                self.schema,
                prepared.document,
                root_value=self.mutation_root() if prepared.is_mutation else self._query_root(),
                variable_values=prepared.variables,
                operation_name=prepared.operation.name.value if prepared.operation.name else None,
                context_value={"locations": list(self.locations.values())},
            )
        finally:
            self._forced_user_error = None
        actual = costing.operation(prepared.operation, result.data or {})
        self._available -= actual
        answer: dict[str, Any] = {"data": result.data}
        if result.errors:
            answer["errors"] = [_format_error(e, "INTERNAL_SERVER_ERROR") for e in result.errors]
        answer["extensions"] = {"cost": self._cost(requested, actual)}
        self._record(name, variables, requested, actual, outcome or _outcome(result))
        return web.json_response(answer)

    def _prepare(self, query: str, operation_name: str | None, variables: dict) -> _Prepared:
        document, errors = _parse_and_validate(query)
        if errors:
            return _Prepared(document=document, errors=errors)
        operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        chosen = [op for op in operations if operation_name is None or (op.name and op.name.value == operation_name)]
        if len(chosen) != 1:
            message = f'No operation named "{operation_name}"' if operation_name else "An operation name is required"
            return _Prepared(document=document, errors=[_format_error(GraphQLError(message), "operationNotFound")])
        coerced = get_variable_values(self.schema, chosen[0].variable_definitions, variables)
        if isinstance(coerced, list):
            return _Prepared(document=document, errors=[_format_error(e, "INVALID_VARIABLE") for e in coerced])
        return _Prepared(document=document, operation=chosen[0], variables=coerced)

    def _take_failure(self, is_mutation: bool) -> _Failure | None:
        if not self._failures:
            return None
        if self._failures[0].on_mutation and not is_mutation:
            return None
        return self._failures.popleft()

    # --- the cost bucket -------------------------------------------------------------------------------------------

    def _refill(self) -> None:
        """Restore points for the time elapsed; rounded so that float noise in clocks never throttles a request
        that a client waited exactly long enough for."""
        now = self._clock()
        restored = self._available + (now - self._refilled_at) * self.restore_rate
        self._available = min(self.bucket_size, round(restored, 6))
        self._refilled_at = now

    def _cost(self, requested: int, actual: int | None) -> dict:
        return {
            "requestedQueryCost": requested,
            "actualQueryCost": actual,
            "throttleStatus": {
                "maximumAvailable": self.bucket_size,
                "currentlyAvailable": int(self._available),
                "restoreRate": self.restore_rate,
            },
        }

    def _throttled(self, requested: int, message: str | None) -> dict:
        return {
            "errors": [
                {
                    "message": message or "Throttled",
                    "extensions": {"code": "THROTTLED", "documentation": RATE_LIMIT_DOCS},
                }
            ],
            "extensions": {"cost": self._cost(requested, None)},
        }

    def _max_cost_exceeded(self, requested: int) -> dict:
        self._refill()
        message = (
            f"Query cost is {requested}, which exceeds the single query max cost limit ({self.max_query_cost:g}).\n\n"
            f"See {RATE_LIMIT_DOCS} for more information on how the cost of a query is calculated.\n\n"
            "To query larger amounts of data with fewer limits, bulk operations should be used instead."
        )
        return {
            "errors": [
                {
                    "message": message,
                    "extensions": {"code": "MAX_COST_EXCEEDED", "cost": requested, "maxCost": self.max_query_cost},
                }
            ],
            "extensions": {"cost": self._cost(requested, None)},
        }

    def _record(
        self, name: str | None, variables: dict, requested: int | None, actual: int | None, outcome: str
    ) -> None:
        self.operations.append(Operation(name, variables, requested, actual, outcome, self.now()))

    # --- lookups and ids ---------------------------------------------------------------------------------------------

    def gid(self, kind: str) -> str:
        return f"gid://shopify/{kind}/{next(self._ids)}"

    def fulfillment_order(self, fo_id: str) -> tuple[dict | None, dict | None]:
        for order in self.orders.values():
            for fo in order["fulfillment_orders"]:
                if fo["id"] == fo_id:
                    return order, fo
        return None, None

    def fulfillment(self, fulfillment_id: str) -> tuple[dict | None, dict | None]:
        for order in self.orders.values():
            for fulfillment in order["fulfillments"]:
                if fulfillment["id"] == fulfillment_id:
                    return order, fulfillment
        return None, None

    def touch(self, order: dict, *fulfillment_orders: dict) -> None:
        at = self.now()
        order["updated_at"] = at
        for fo in fulfillment_orders:
            fo["updated_at"] = at

    # --- views ---------------------------------------------------------------------------------------------------

    def _query_root(self) -> dict:
        def order(info: Any, id: str) -> dict | None:
            found = self.orders.get(id)
            return order_view(found, self.currency) if found else None

        def fulfillment_order(info: Any, id: str) -> dict | None:
            owner, fo = self.fulfillment_order(id)
            return fo_view(owner, fo, self.currency) if fo else None

        def fulfillment(info: Any, id: str) -> dict | None:
            owner, found = self.fulfillment(id)
            return fulfillment_view(owner, found, self.currency) if found else None

        def job(info: Any, id: str) -> dict | None:
            found = self.jobs.get(id)
            if found is None:
                return None
            return {"id": found.id, "done": found.done, "query": self._query_root() if found.done else None}

        return {
            "orders": self._orders_connection,
            "nodes": self._nodes,
            "fulfillmentOrders": self._fulfillment_orders_connection,
            "order": order,
            "fulfillmentOrder": fulfillment_order,
            "fulfillment": fulfillment,
            "job": job,
            "bulkOperation": self.bulk.bulk_operation,
            "currentBulkOperation": self.bulk.current_bulk_operation,
            "shop": self._shop_view(),
            "webhookSubscriptions": self.webhook_subscriptions.connection,
            "webhookSubscription": self.webhook_subscriptions.one,
            "currentAppInstallation": {
                "id": "gid://shopify/AppInstallation/5822211",
                "accessScopes": [{"handle": scope, "description": scope} for scope in self.scopes],
            },
        }

    def _orders_connection(
        self, info: Any, query: str | None = None, sortKey: str = "ID", reverse: bool = False, **page: Any
    ) -> dict:
        sort = ORDER_SORT_KEYS.get(sortKey, ORDER_SORT_KEYS["ID"])
        matches = search_predicate(query)
        found = sorted((o for o in self.orders.values() if matches(o)), key=sort, reverse=reverse)
        return connection(
            found,
            [sort(o) for o in found],
            descending=reverse,
            render=lambda o: order_view(o, self.currency),
            **page,
        )

    def _fulfillment_orders_connection(
        self,
        info: Any,
        query: str | None = None,
        includeClosed: bool = False,
        sortKey: str = "ID",
        reverse: bool = False,
        **page: Any,
    ) -> dict:
        """Every order's fulfillment orders (the app holds both fulfillment order scopes); closed and cancelled ones
        only with `includeClosed`."""
        sort = FULFILLMENT_ORDER_SORT_KEYS.get(sortKey, FULFILLMENT_ORDER_SORT_KEYS["ID"])
        matches = fulfillment_order_predicate(query)
        found = sorted(
            (
                (order, fo)
                for order in self.orders.values()
                for fo in order["fulfillment_orders"]
                if (includeClosed or fo["status"] not in ("CLOSED", "CANCELLED")) and matches(fo)
            ),
            key=lambda pair: sort(pair[1]),
            reverse=reverse,
        )
        return connection(
            found,
            [sort(fo) for _, fo in found],
            descending=reverse,
            render=lambda pair: fo_view(*pair, self.currency),
            **page,
        )

    def _nodes(self, info: Any, ids: list[str]) -> list[dict | None]:
        """`nodes(ids:)`: orders, fulfillment orders and fulfillments by id; null for any other id."""
        if len(ids) > MAX_INPUT_ITEMS:
            raise GraphQLError(f"The input array size of {len(ids)} is greater than the maximum allowed of 250.")
        return [self._node(node_id) for node_id in ids]

    def _node(self, node_id: str) -> dict | None:
        if node_id in self.orders:
            return order_view(self.orders[node_id], self.currency)
        owner, fo = self.fulfillment_order(node_id)
        if fo is not None:
            return fo_view(owner, fo, self.currency)
        owner, fulfillment = self.fulfillment(node_id)
        return fulfillment_view(owner, fulfillment, self.currency) if fulfillment is not None else None

    def _shop_view(self) -> dict:
        return {
            "id": "gid://shopify/Shop/74839210321",
            "name": self.shop_name,
            "myshopifyDomain": self.shop_domain,
            "ianaTimezone": self.timezone,
            "currencyCode": self.currency,
            "email": f"hello@{self.shop_domain}",
        }

    # --- mutations ----------------------------------------------------------------------------------------------------

    def mutation_root(self) -> dict:
        own = mutations.HANDLERS | webhook_subscriptions.HANDLERS
        handlers = {
            name: (functools.partial(handler, self), errors_key, error_field)
            for name, (handler, errors_key, error_field) in own.items()
        } | bulk_operations.handlers(self.bulk)
        return {
            name: self._mutation(handler, errors_key, error_field)
            for name, (handler, errors_key, error_field) in handlers.items()
        }

    def _mutation(self, handler: Callable[..., dict], errors_key: str, error_field: list[str]) -> Callable[..., dict]:
        """Wrap a handler so that an injected `user_errors` failure answers an error and changes nothing."""

        def resolve(info: Any, **args: Any) -> dict:
            if self._forced_user_error is not None:
                return {errors_key: [{"field": error_field, "message": self._forced_user_error, "code": None}]}
            return handler(**args)

        return resolve


_FO_FIELD_ALIASES = {"requestStatus": "request_status", "fulfillAt": "fulfill_at", "fulfillBy": "fulfill_by"}

_HTTP_ERRORS = {500: "Internal Server Error", 503: "Service Unavailable"}


@functools.lru_cache(maxsize=256)
def _parse_and_validate(query: str) -> tuple[DocumentNode | None, list[dict]]:
    """Parse and validate once per distinct document: the answer does not depend on the variables."""
    try:
        document = parse(query)
    except GraphQLError as error:
        return None, [_format_error(error, "parseError")]
    return document, _validation_errors(load_schema(), document)


def _named(body: Any) -> str | None:
    """The operation a request body names (operationName, else its document's first operation), for the record."""
    if not isinstance(body, dict) or not isinstance(body.get("query"), str):
        return None
    document, _ = _parse_and_validate(body["query"])
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)] if document else []
    return body.get("operationName") or next((op.name.value for op in operations if op.name), None)


def _outcome(result: graphql.ExecutionResult) -> str:
    if result.errors:
        return "errors"
    payloads = (result.data or {}).values()
    has_user_errors = any(
        isinstance(p, dict) and (p.get("userErrors") or p.get("orderCancelUserErrors")) for p in payloads
    )
    return "user_errors" if has_user_errors else "ok"
