"""A local stand-in for the Shopify Admin GraphQL API.

It executes the bot's documents with graphql-core against Shopify's real 2026-04 schema over in-memory orders,
applies each mutation's effect, and models Shopify's cost-based throttling (a leaky bucket of query-cost points), so
that the client's auth, throttling, retries and bulk speed can be tested over real HTTP.

Internal state is plain dicts in snake_case (the shape `seed.py` builds); GraphQL answers are views rendered from it
per request. Connections are callables `(info, **args)`, which graphql-core's default resolver calls.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import functools
import hashlib
import itertools
import json
import os
import re
import tempfile
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import graphql
from aiohttp import web
from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    build_client_schema,
    build_schema,
    execute,
    get_named_type,
    introspection_from_schema,
    is_leaf_type,
    parse,
    specified_rules,
    validate,
)
from graphql.execution.values import get_argument_values, get_variable_values

from bot.shopify.operations import REQUIRED_SCOPES

SCHEMA_PATH = Path(__file__).with_name("admin-2026-04.graphql")
MAX_QUERY_COST = 1000
RATE_LIMIT_DOCS = "https://shopify.dev/api/usage/rate-limits"
INVALID_TOKEN = "[API] Invalid API key or access token (unrecognized login or wrong password)"
FAILURE_KINDS = ("http_500", "http_503", "timeout", "throttled", "user_errors")

# --- the schema ---------------------------------------------------------------------------------------------------


@functools.cache
def load_schema() -> GraphQLSchema:
    """Shopify's Admin schema, built once per process.

    `build_schema` on the 3.5 MB SDL takes about 4.5 s, mostly parsing. Its introspection result, cached as JSON in the
    temp dir (keyed by the SDL's hash and graphql-core's version), rebuilds the same schema in about 1.3 s. JSON, unlike
    a pickle, cannot run code if someone else writes the file.
    """
    sdl = SCHEMA_PATH.read_bytes()
    key = hashlib.sha256(sdl + graphql.__version__.encode()).hexdigest()[:16]
    cache = Path(tempfile.gettempdir()) / f"orderbot-shopify-admin-schema-{key}.json"
    try:
        return build_client_schema(json.loads(cache.read_bytes()))
    except (OSError, ValueError):
        schema = build_schema(sdl.decode())
        _write_atomically(cache, json.dumps(introspection_from_schema(schema)).encode())
        return schema


def _write_atomically(path: Path, content: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "wb") as out:
        out.write(content)
    os.replace(tmp, path)


# --- state rules: derived statuses and supported actions -----------------------------------------------------------

# supportedActions, derived the way Shopify does for the requesting app (FulfillmentOrderAction):
#
# | FO status      | request status                   | merchant-managed location    | fulfillment service        |
# |----------------|----------------------------------|------------------------------|----------------------------|
# | OPEN           | UNSUBMITTED, REJECTED, CANC_ACC  | CREATE_FULFILLMENT HOLD MOVE | REQUEST_FULFILLMENT HOLD MOVE |
# | IN_PROGRESS    | UNSUBMITTED (partly fulfilled)   | CREATE_FULFILLMENT HOLD      | REQUEST_FULFILLMENT HOLD MOVE |
# | OPEN, IN_PROG. | SUBMITTED, ACCEPTED, CANC_REJ    | —                            | REQUEST_CANCELLATION       |
# | OPEN, IN_PROG. | CANCELLATION_REQUESTED           | —                            | —                          |
# | ON_HOLD        | any                              | RELEASE_HOLD HOLD MOVE       | RELEASE_HOLD HOLD          |
# | SCHEDULED      | any                              | MARK_AS_OPEN MOVE            | MARK_AS_OPEN               |
# | CLOSED, CANCELLED, INCOMPLETE | any               | —                            | —                          |
#
# Since 2024-10 an app cannot fulfil items assigned to another app's fulfillment service, hence no
# CREATE_FULFILLMENT at a service's location.
_REQUESTABLE = ("UNSUBMITTED", "REJECTED", "CANCELLATION_ACCEPTED")
_CANCELLABLE = ("SUBMITTED", "ACCEPTED", "CANCELLATION_REJECTED")


def supported_actions(fo: dict) -> list[str]:
    status, request = fo["status"], fo["request_status"]
    merchant = fo["location"].get("service") is None
    if status == "ON_HOLD":
        return ["RELEASE_HOLD", "HOLD", "MOVE"] if merchant else ["RELEASE_HOLD", "HOLD"]
    if status == "SCHEDULED":
        return ["MARK_AS_OPEN", "MOVE"] if merchant else ["MARK_AS_OPEN"]
    if status not in ("OPEN", "IN_PROGRESS"):
        return []
    if merchant:
        return ["CREATE_FULFILLMENT", "HOLD", "MOVE"] if status == "OPEN" else ["CREATE_FULFILLMENT", "HOLD"]
    if request in _REQUESTABLE:
        return ["REQUEST_FULFILLMENT", "HOLD", "MOVE"]
    if request in _CANCELLABLE:
        return ["REQUEST_CANCELLATION"]
    return []


def fulfilled_quantity(order: dict) -> int:
    return sum(line["quantity"] for f in order["fulfillments"] if f["status"] == "SUCCESS" for line in f["line_items"])


def ordered_quantity(order: dict) -> int:
    return sum(line["quantity"] for line in order["line_items"])


def display_fulfillment_status(order: dict) -> str:
    """OrderDisplayFulfillmentStatus as Shopify shows it: an unfulfilled order is ON_HOLD or SCHEDULED when all its
    open work is, REQUEST_DECLINED when a service rejected some, IN_PROGRESS once a request is out."""
    shipped = fulfilled_quantity(order)
    if shipped:
        return "FULFILLED" if shipped >= ordered_quantity(order) else "PARTIALLY_FULFILLED"
    active = [fo for fo in order["fulfillment_orders"] if fo["status"] not in ("CLOSED", "CANCELLED")]
    if not active:
        return "UNFULFILLED"
    if all(fo["status"] == "ON_HOLD" for fo in active):
        return "ON_HOLD"
    if all(fo["status"] == "SCHEDULED" for fo in active):
        return "SCHEDULED"
    requests = {fo["request_status"] for fo in active}
    if "REJECTED" in requests:
        return "REQUEST_DECLINED"
    if requests & {"SUBMITTED", "ACCEPTED"}:
        return "IN_PROGRESS"
    return "UNFULFILLED"


def refresh_fulfillment_order_status(fo: dict) -> None:
    """After quantities change: CLOSED when nothing remains, IN_PROGRESS when partly done or accepted, else OPEN."""
    if fo["status"] in ("ON_HOLD", "SCHEDULED", "CANCELLED", "INCOMPLETE"):
        return
    remaining = sum(line["remaining_quantity"] for line in fo["line_items"])
    total = sum(line["total_quantity"] for line in fo["line_items"])
    if remaining == 0:
        fo["status"] = "CLOSED"
    elif remaining < total or fo["request_status"] == "ACCEPTED":
        fo["status"] = "IN_PROGRESS"
    else:
        fo["status"] = "OPEN"


def record_fulfillment(
    order: dict, picks: list[tuple[dict, dict, int]], tracking: list[dict], at: datetime, fulfillment_id: str
) -> dict:
    """Ship `picks` (fulfillment order, its line, quantity): a SUCCESS fulfillment; quantities and statuses follow."""
    for fo, line, quantity in picks:
        line["remaining_quantity"] -= quantity
        fo["updated_at"] = at
    for fo in {id(fo): fo for fo, _, _ in picks}.values():
        refresh_fulfillment_order_status(fo)
    fulfillment = {
        "id": fulfillment_id,
        "status": "SUCCESS",
        "created_at": at,
        "updated_at": at,
        "tracking": tracking,
        "line_items": [{"fulfillment_order_line_item_id": line["id"], "quantity": q} for _, line, q in picks],
    }
    order["fulfillments"].append(fulfillment)
    order["updated_at"] = at
    return fulfillment


def tracking_entries(
    number: str | None = None,
    company: str | None = None,
    url: str | None = None,
    *,
    numbers: Iterable[str] = (),
    urls: Iterable[str] = (),
) -> list[dict]:
    """FulfillmentTrackingInput → the fulfillment's trackingInfo (empty without a number, as Shopify shows it)."""
    all_numbers = list(numbers) or ([number] if number else [])
    all_urls = list(urls) or ([url] if url else [])
    return [
        {"number": n, "company": company, "url": all_urls[i] if i < len(all_urls) else None}
        for i, n in enumerate(all_numbers)
    ]


def legacy_id(gid: str) -> int:
    return int(gid.rsplit("/", 1)[1])


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _money(amount: Decimal, currency: str) -> dict:
    money = {"amount": str(amount.quantize(Decimal("0.01"))), "currencyCode": currency}
    return {"shopMoney": money, "presentmentMoney": dict(money)}


def order_total(order: dict) -> Decimal:
    items = sum(Decimal(line["price"]) * line["quantity"] for line in order["line_items"])
    return items + Decimal(order.get("shipping_price", "0"))


# --- search syntax ------------------------------------------------------------------------------------------------

_TERM = re.compile(r"""(-?)(?:(\w+):)?(?:"([^"]*)"|'([^']*)'|(\S+))""")
_COMPARATOR = re.compile(r"^(>=|<=|>|<|=)?(.*)$")


def _parse_time_value(text: str) -> datetime:
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _compare_times(actual: datetime, text: str) -> bool:
    op, value = _COMPARATOR.match(text).groups()
    wanted = _parse_time_value(value)
    return {
        ">=": actual >= wanted,
        "<=": actual <= wanted,
        ">": actual > wanted,
        "<": actual < wanted,
    }.get(op or "=", actual == wanted)


def _status_matches(order: dict, value: str) -> bool:
    cancelled = order["cancelled_at"] is not None
    closed = order["closed_at"] is not None
    return {
        "open": not closed and not cancelled,
        "closed": closed,
        "cancelled": cancelled,
        "any": True,
    }.get(value, False)


def _fulfillment_status_matches(order: dict, value: str) -> bool:
    if value in ("unshipped", "unfulfilled"):
        return fulfilled_quantity(order) == 0
    if value in ("shipped", "fulfilled"):
        return display_fulfillment_status(order) == "FULFILLED"
    if value == "partial":
        return display_fulfillment_status(order) == "PARTIALLY_FULFILLED"
    return display_fulfillment_status(order) == value.upper()


def _text_matches(order: dict, value: str) -> bool:
    customer = order.get("customer") or {}
    haystack = " ".join(
        str(v) for v in (order["name"], order.get("email"), customer.get("first_name"), customer.get("last_name")) if v
    )
    return value.lower() in haystack.lower()


_FILTERS: dict[str | None, Callable[[dict, str], bool]] = {
    "status": lambda o, v: _status_matches(o, v.lower()),
    "fulfillment_status": lambda o, v: _fulfillment_status_matches(o, v.lower()),
    "financial_status": lambda o, v: (o["financial_status"] or "").lower() == v.lower(),
    "updated_at": lambda o, v: _compare_times(o["updated_at"], v),
    "created_at": lambda o, v: _compare_times(o["created_at"], v),
    "tag": lambda o, v: any(t.lower() == v.lower() for t in o["tags"]),
    "name": lambda o, v: o["name"].lstrip("#") == v.lstrip("#"),
    "email": lambda o, v: (o.get("email") or "").lower() == v.lower(),
    "test": lambda o, v: o["test"] == (v.lower() == "true"),
    None: _text_matches,
}


def search_predicate(query: str | None) -> Callable[[dict], bool]:
    """Shopify's search syntax, the subset orderbot uses: terms ANDed, `-` negates, a literal AND is ignored.
    Unknown fields are ignored, as Shopify does (it only warns)."""
    terms = []
    for negated, name, double, single, bare in _TERM.findall(query or ""):
        value = double or single or bare
        if not name and value == "AND":
            continue
        check = _FILTERS.get(name or None)
        if check is not None:
            terms.append((bool(negated), check, value))
    return lambda order: all(check(order, value) != negated for negated, check, value in terms)


# --- pagination ---------------------------------------------------------------------------------------------------


def _encode_cursor(key: list) -> str:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode()


def _decode_cursor(cursor: str) -> list:
    try:
        return json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, TypeError) as error:
        raise GraphQLError(f"Invalid cursor for current pagination sort.{'' if cursor else ' (empty)'}") from error


def connection(
    nodes: list[Any],
    keys: list[list],
    *,
    first: int | None = None,
    after: str | None = None,
    last: int | None = None,
    before: str | None = None,
    descending: bool = False,
    **_ignored: Any,
) -> dict:
    """A Relay connection over `nodes`, already sorted; `keys` are their sort keys, which the cursors encode, so a
    cursor stays valid when other items change."""

    def precedes(a: list, b: list) -> bool:
        return a > b if descending else a < b

    start, end = 0, len(nodes)
    if after:
        mark = _decode_cursor(after)
        start = next((i for i, k in enumerate(keys) if precedes(mark, k)), len(nodes))
    if before:
        mark = _decode_cursor(before)
        end = next((i for i, k in enumerate(keys) if not precedes(k, mark)), len(nodes))
    end = max(start, end)
    if first is not None:
        end = min(end, start + first)
    if last is not None:
        start = max(start, end - last)
    window = range(start, end)
    edges = [{"cursor": _encode_cursor(keys[i]), "node": nodes[i]} for i in window]
    return {
        "nodes": [nodes[i] for i in window],
        "edges": edges,
        "pageInfo": {
            "hasNextPage": end < len(nodes),
            "hasPreviousPage": start > 0,
            "startCursor": edges[0]["cursor"] if edges else None,
            "endCursor": edges[-1]["cursor"] if edges else None,
        },
    }


def _positional(nodes: list[Any], args: dict) -> dict:
    return connection(nodes, [[i] for i in range(len(nodes))], **args)


# --- cost ----------------------------------------------------------------------------------------------------------


def _is_connection(named: GraphQLNamedType) -> bool:
    return isinstance(named, GraphQLObjectType) and named.name.endswith("Connection") and "pageInfo" in named.fields


class QueryCost:
    """Shopify's calculated query cost: scalars and enums 0, objects (and lists of them) 1 plus their selection,
    connections 2 + first/last × (1 + a node's selection), mutation fields 10 + their payload's selection. Fields
    selected twice under one response key (say, in a fragment and beside it) are merged and costed once.

    With `data` None it gives the requested cost (the worst case, before execution); with the answer's data, the
    actual cost: null objects are free and connections count the nodes they returned.
    """

    def __init__(self, schema: GraphQLSchema, document: DocumentNode, variables: dict[str, Any]):
        self.schema = schema
        self.variables = variables
        self.fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}

    def operation(self, operation: OperationDefinitionNode, data: dict | None = None) -> int:
        if operation.operation != OperationType.MUTATION:
            return self.selection(self.schema.query_type, [operation.selection_set], data)
        root = self.schema.mutation_type
        fields, _ = self._collect(root, [operation.selection_set])
        return sum(self._mutation_field(root, nodes, data) for nodes in fields.values())

    def _mutation_field(self, root: GraphQLObjectType, nodes: list[FieldNode], data: dict | None) -> int:
        payload_type = get_named_type(root.fields[nodes[0].name.value].type)
        payload = None if data is None else data.get(_key(nodes[0]))
        if data is not None and payload is None:
            return 10
        return 10 + self.selection(payload_type, _subselections(nodes), payload)

    def selection(self, parent: GraphQLNamedType, selection_sets: list[SelectionSetNode], data: dict | None) -> int:
        fields, branches = self._collect(parent, selection_sets)
        total = sum(self.field(parent, nodes, data) for nodes in fields.values())
        return total + max((self.selection(t, [s], data) for t, s in branches), default=0)

    def _collect(
        self, parent: GraphQLNamedType, selection_sets: list[SelectionSetNode]
    ) -> tuple[dict[str, list[FieldNode]], list[tuple[GraphQLNamedType, SelectionSetNode]]]:
        """Fields by response key, fragments on `parent` inlined; fragments on other types are alternatives."""
        fields: dict[str, list[FieldNode]] = {}
        branches: list[tuple[GraphQLNamedType, SelectionSetNode]] = []
        for selection_set in selection_sets:
            for selection in selection_set.selections:
                if isinstance(selection, FieldNode):
                    fields.setdefault(_key(selection), []).append(selection)
                    continue
                if isinstance(selection, FragmentSpreadNode):
                    selection = self.fragments[selection.name.value]
                condition = selection.type_condition
                branch_type = self.schema.get_type(condition.name.value) if condition else parent
                if branch_type is parent:
                    inner_fields, inner_branches = self._collect(parent, [selection.selection_set])
                    for key, nodes in inner_fields.items():
                        fields.setdefault(key, []).extend(nodes)
                    branches.extend(inner_branches)
                else:
                    branches.append((branch_type, selection.selection_set))
        return fields, branches

    def field(self, parent: GraphQLNamedType, nodes: list[FieldNode], data: dict | None) -> int:
        name = nodes[0].name.value
        if name.startswith("__"):
            return 0
        definition = parent.fields[name]
        named = get_named_type(definition.type)
        if is_leaf_type(named):
            return 0
        value = None
        if data is not None:
            value = data.get(_key(nodes[0]))
            if value is None:
                return 0
        if _is_connection(named):
            args = get_argument_values(definition, nodes[0], self.variables)
            return self.connection(named, nodes, args, value)
        items = value if isinstance(value, list) else [value]
        return 1 + max((self.selection(named, _subselections(nodes), item) for item in items), default=0)

    def connection(self, named: GraphQLObjectType, nodes: list[FieldNode], args: dict, value: dict | None) -> int:
        size = args.get("first") if args.get("first") is not None else args.get("last")
        if size is None:
            raise GraphQLError("you must provide one of first or last", nodes[:1])
        fields, _ = self._collect(named, _subselections(nodes))
        cost = 0
        for key, sub_nodes in fields.items():
            if sub_nodes[0].name.value not in ("nodes", "edges"):
                continue
            item_type = get_named_type(named.fields[sub_nodes[0].name.value].type)
            returned = None if value is None else value.get(key)
            cost = max(cost, self._items(item_type, sub_nodes, size, returned))
        return 2 + cost

    def _items(self, item_type: GraphQLObjectType, nodes: list[FieldNode], size: int, returned: list | None) -> int:
        if item_type.name.endswith("Edge"):  # edges { node { … } }: cost the node selection
            inner, _ = self._collect(item_type, _subselections(nodes))
            node_key = next((k for k, n in inner.items() if n[0].name.value == "node"), None)
            if node_key is None:
                return 0
            node_type = get_named_type(item_type.fields["node"].type)
            node_values = None if returned is None else [edge.get(node_key) for edge in returned]
            return self._items(node_type, inner[node_key], size, node_values)
        subs = _subselections(nodes)
        if returned is None:
            return size * (1 + self.selection(item_type, subs, None))
        return sum(1 + self.selection(item_type, subs, item) for item in returned if item)


def _key(node: FieldNode) -> str:
    return node.alias.value if node.alias else node.name.value


def _subselections(nodes: list[FieldNode]) -> list[SelectionSetNode]:
    return [n.selection_set for n in nodes if n.selection_set]


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
    ):
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
        self.operations: list[Operation] = []
        self.orders: dict[str, dict] = {}
        self._clock = clock
        self._now = now
        self._available = bucket_size
        self._refilled_at = clock()
        self._failures: deque[_Failure] = deque()
        self._forced_user_error: str | None = None
        self._ids = itertools.count(9_100_000_000_000)
        self._schema = load_schema()
        for order in orders or ():
            self.add_order(order)
        self.app = web.Application()
        self.app.router.add_post("/admin/api/{version}/graphql.json", self._graphql)
        self.app.router.add_post("/admin/oauth/access_token", self._access_token)

    # --- test and demo controls -----------------------------------------------------------------------------------

    def add_order(self, order: dict) -> None:
        """Add (or replace) an order in `seed.py`'s shape; the sandbox keeps its own copy."""
        self.orders[order["id"]] = copy.deepcopy(order)

    def fail_next(self, kind: str, times: int = 1, *, message: str | None = None, delay: float = 30.0) -> None:
        """Make the next `times` requests fail as `kind`. "user_errors" waits for the next mutation; "throttled"
        answers as if another client of the same app had just drained the bucket, so the throttle status it reports
        (and the bucket) is about one second of restore short of the request's cost, as a real THROTTLED is."""
        if kind not in FAILURE_KINDS:
            raise ValueError(f"unknown failure kind {kind!r}; expected one of {', '.join(FAILURE_KINDS)}")
        self._failures.extend(_Failure(kind, message, delay) for _ in range(times))

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
        record_fulfillment(order, picks, tracking, self._now(), self._gid("Fulfillment"))

    def set_fulfillment_order(self, fo_id: str, **changes: Any) -> None:
        """Change a fulfillment order's fields (status, request_status, holds, fulfill_at, …; GraphQL's camelCase
        names work too); holds may omit `id`. The order's updatedAt moves, as any change in Shopify does."""
        order, fo = self._fulfillment_order(fo_id)
        if fo is None:
            raise KeyError(fo_id)
        changes = {_FO_FIELD_ALIASES.get(k, k): v for k, v in changes.items()}
        unknown = set(changes) - set(fo)
        if unknown:
            raise KeyError(f"fulfillment orders have no {', '.join(sorted(unknown))}")
        for hold in changes.get("holds", ()):
            hold.setdefault("id", self._gid("FulfillmentHold"))
            hold.setdefault("reason_notes", None)
        fo.update(changes)
        self._touch(order, fo)

    def orders_fulfillment_order_ids(self, order_id: str) -> list[str]:
        """The ids of an order's fulfillment orders, for tests that send `fulfillment_orders/*` webhooks."""
        return [fo["id"] for fo in self.orders[order_id]["fulfillment_orders"]]

    def webhook_payload(self, order_id: str) -> dict:
        """The `orders/updated` webhook body (REST shape) for the order's current state."""
        order = self.orders[order_id]
        return _webhook_order(order, ZoneInfo(self.timezone), self.currency)

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
        if (params.get("client_id"), params.get("client_secret")) != (self.client_id, self.client_secret):
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
        if request.headers.get("X-Shopify-Access-Token") != self.access_token:
            self._record(None, {}, None, None, "unauthorized")
            return web.json_response({"errors": INVALID_TOKEN}, status=401)
        try:
            body = await request.json()
        except json.JSONDecodeError:
            body = None
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
        outcome_override = "timeout" if failure and failure.kind == "timeout" else None
        if prepared.errors:
            self._record(name, variables, None, None, outcome_override or "invalid")
            return web.json_response({"errors": prepared.errors})
        return self._answer(prepared, name, variables, failure, outcome_override)

    def _answer(
        self, prepared: _Prepared, name: str | None, variables: dict, failure: _Failure | None, outcome: str | None
    ) -> web.Response:
        costing = QueryCost(self._schema, prepared.document, prepared.variables)
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
                self._schema,
                prepared.document,
                root_value=self._mutation_root() if prepared.is_mutation else self._query_root(),
                variable_values=prepared.variables,
                operation_name=prepared.operation.name.value if prepared.operation.name else None,
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
        coerced = get_variable_values(self._schema, chosen[0].variable_definitions, variables)
        if isinstance(coerced, list):
            return _Prepared(document=document, errors=[_format_error(e, "INVALID_VARIABLE") for e in coerced])
        return _Prepared(document=document, operation=chosen[0], variables=coerced)

    def _take_failure(self, is_mutation: bool) -> _Failure | None:
        if not self._failures:
            return None
        if self._failures[0].kind == "user_errors" and not is_mutation:
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
        self.operations.append(Operation(name, variables, requested, actual, outcome, self._now()))

    # --- lookups and ids ---------------------------------------------------------------------------------------------

    def _gid(self, kind: str) -> str:
        return f"gid://shopify/{kind}/{next(self._ids)}"

    def _fulfillment_order(self, fo_id: str) -> tuple[dict | None, dict | None]:
        for order in self.orders.values():
            for fo in order["fulfillment_orders"]:
                if fo["id"] == fo_id:
                    return order, fo
        return None, None

    def _fulfillment(self, fulfillment_id: str) -> tuple[dict | None, dict | None]:
        for order in self.orders.values():
            for fulfillment in order["fulfillments"]:
                if fulfillment["id"] == fulfillment_id:
                    return order, fulfillment
        return None, None

    def _touch(self, order: dict, *fulfillment_orders: dict) -> None:
        at = self._now()
        order["updated_at"] = at
        for fo in fulfillment_orders:
            fo["updated_at"] = at

    # --- views ---------------------------------------------------------------------------------------------------

    def _query_root(self) -> dict:
        def order(info: Any, id: str) -> dict | None:
            found = self.orders.get(id)
            return self._order_view(found) if found else None

        def fulfillment_order(info: Any, id: str) -> dict | None:
            owner, fo = self._fulfillment_order(id)
            return self._fo_view(owner, fo) if fo else None

        def fulfillment(info: Any, id: str) -> dict | None:
            owner, found = self._fulfillment(id)
            return self._fulfillment_view(owner, found) if found else None

        return {
            "orders": self._orders_connection,
            "order": order,
            "fulfillmentOrder": fulfillment_order,
            "fulfillment": fulfillment,
            "shop": self._shop_view(),
            "currentAppInstallation": {
                "id": "gid://shopify/AppInstallation/5822211",
                "accessScopes": [{"handle": scope, "description": scope} for scope in self.scopes],
            },
        }

    def _orders_connection(
        self, info: Any, query: str | None = None, sortKey: str = "ID", reverse: bool = False, **page: Any
    ) -> dict:
        sort = _ORDER_SORT_KEYS.get(sortKey, _ORDER_SORT_KEYS["ID"])
        matches = search_predicate(query)
        found = sorted((o for o in self.orders.values() if matches(o)), key=sort, reverse=reverse)
        return connection([self._order_view(o) for o in found], [sort(o) for o in found], descending=reverse, **page)

    def _shop_view(self) -> dict:
        return {
            "id": "gid://shopify/Shop/74839210321",
            "name": self.shop_name,
            "myshopifyDomain": self.shop_domain,
            "ianaTimezone": self.timezone,
            "currencyCode": self.currency,
            "email": f"hello@{self.shop_domain}",
        }

    def _order_view(self, order: dict) -> dict:
        customer = order.get("customer")
        total = _money(order_total(order), self.currency)
        return {
            "__typename": "Order",
            "id": order["id"],
            "legacyResourceId": str(legacy_id(order["id"])),
            "name": order["name"],
            "createdAt": _iso(order["created_at"]),
            "processedAt": _iso(order["created_at"]),
            "updatedAt": _iso(order["updated_at"]),
            "closed": order["closed_at"] is not None,
            "closedAt": _iso(order["closed_at"]),
            "cancelledAt": _iso(order["cancelled_at"]),
            "cancelReason": order.get("cancel_reason"),
            "test": order["test"],
            "displayFinancialStatus": order["financial_status"],
            "displayFulfillmentStatus": display_fulfillment_status(order),
            "tags": list(order["tags"]),
            "email": order.get("email"),
            "note": order.get("note"),
            "currencyCode": self.currency,
            "customer": _customer_view(customer) if customer else None,
            "totalPriceSet": total,
            "currentTotalPriceSet": total,
            "fulfillments": lambda info, first=None, **_: [
                self._fulfillment_view(order, f) for f in order["fulfillments"]
            ][:first],
            "fulfillmentOrders": lambda info, **args: _positional(
                [self._fo_view(order, fo) for fo in order["fulfillment_orders"]], args
            ),
            "lineItems": lambda info, **args: _positional([_line_item_view(li) for li in order["line_items"]], args),
        }

    def _fo_view(self, order: dict, fo: dict) -> dict:
        location = fo["location"]
        service = location.get("service")
        items_by_id = {li["id"]: li for li in order["line_items"]}
        return {
            "__typename": "FulfillmentOrder",
            "id": fo["id"],
            "status": fo["status"],
            "requestStatus": fo["request_status"],
            "createdAt": _iso(fo["created_at"]),
            "updatedAt": _iso(fo["updated_at"]),
            "fulfillAt": _iso(fo.get("fulfill_at")),
            "fulfillBy": _iso(fo.get("fulfill_by")),
            "orderId": order["id"],
            "orderName": order["name"],
            "orderProcessedAt": _iso(order["created_at"]),
            "assignedLocation": {
                "name": location["name"],
                "countryCode": "US",
                "location": {
                    "id": location["id"],
                    "name": location["name"],
                    "fulfillmentService": _service_view(service) if service else None,
                },
            },
            "fulfillmentHolds": [_hold_view(h) for h in fo["holds"]],
            "supportedActions": [{"action": a, "externalUrl": None} for a in supported_actions(fo)],
            "lineItems": lambda info, **args: _positional(
                [_fo_line_view(line, items_by_id[line["line_item_id"]]) for line in fo["line_items"]], args
            ),
            "order": lambda info: self._order_view(order),
        }

    def _fulfillment_view(self, order: dict, fulfillment: dict) -> dict:
        return {
            "__typename": "Fulfillment",
            "id": fulfillment["id"],
            "legacyResourceId": str(legacy_id(fulfillment["id"])),
            "name": f"{order['name']}-F{order['fulfillments'].index(fulfillment) + 1}",
            "status": fulfillment["status"],
            "createdAt": _iso(fulfillment["created_at"]),
            "updatedAt": _iso(fulfillment["updated_at"]),
            "totalQuantity": sum(line["quantity"] for line in fulfillment["line_items"]),
            "requiresShipping": True,
            "trackingInfo": lambda info, first=None: [dict(t) for t in fulfillment["tracking"]][:first],
            "order": lambda info: self._order_view(order),
        }

    # --- mutations ----------------------------------------------------------------------------------------------------

    def _mutation_root(self) -> dict:
        handlers = {
            "orderClose": (self._order_close, "userErrors", ["input", "id"]),
            "orderOpen": (self._order_open, "userErrors", ["input", "id"]),
            "fulfillmentCreate": (self._fulfillment_create, "userErrors", ["fulfillment"]),
            "fulfillmentOrderSubmitFulfillmentRequest": (self._submit_request, "userErrors", ["id"]),
            "fulfillmentOrderSubmitCancellationRequest": (self._submit_cancellation, "userErrors", ["id"]),
            "fulfillmentOrderReleaseHold": (self._release_hold, "userErrors", ["id"]),
            "fulfillmentCancel": (self._fulfillment_cancel, "userErrors", ["id"]),
            "orderCancel": (self._order_cancel, "orderCancelUserErrors", ["orderId"]),
            "tagsAdd": (self._tags_add, "userErrors", ["id"]),
        }
        return {name: self._mutation(*spec) for name, spec in handlers.items()}

    def _mutation(self, handler: Callable[..., dict], errors_key: str, error_field: list[str]) -> Callable[..., dict]:
        """Wrap a handler so that an injected `user_errors` failure answers an error and changes nothing."""

        def resolve(info: Any, **args: Any) -> dict:
            if self._forced_user_error is not None:
                return {errors_key: [{"field": error_field, "message": self._forced_user_error, "code": None}]}
            return handler(**args)

        return resolve

    def _order_close(self, input: dict) -> dict:
        order = self.orders.get(input["id"])
        if order is None:
            return {"order": None, "userErrors": [_error(["input", "id"], "Order does not exist")]}
        if order["closed_at"] is None:
            order["closed_at"] = self._now()
        self._touch(order)
        return {"order": self._order_view(order), "userErrors": []}

    def _order_open(self, input: dict) -> dict:
        order = self.orders.get(input["id"])
        if order is None:
            return {"order": None, "userErrors": [_error(["input", "id"], "Order does not exist")]}
        if order["cancelled_at"] is not None:
            return {"order": None, "userErrors": [_error(["input", "id"], "Cancelled orders cannot be opened")]}
        order["closed_at"] = None
        self._touch(order)
        return {"order": self._order_view(order), "userErrors": []}

    def _fulfillment_create(self, fulfillment: dict, message: str | None = None) -> dict:
        picks, errors = self._fulfillment_picks(fulfillment["lineItemsByFulfillmentOrder"])
        if errors:
            return {"fulfillment": None, "userErrors": errors}
        tracking_input = fulfillment.get("trackingInfo") or {}
        tracking = tracking_entries(
            tracking_input.get("number"),
            tracking_input.get("company"),
            tracking_input.get("url"),
            numbers=tracking_input.get("numbers") or (),
            urls=tracking_input.get("urls") or (),
        )
        order = self._fulfillment_order(picks[0][0]["id"])[0]
        created = record_fulfillment(order, picks, tracking, self._now(), self._gid("Fulfillment"))
        return {"fulfillment": self._fulfillment_view(order, created), "userErrors": []}

    def _fulfillment_picks(self, groups: list[dict]) -> tuple[list[tuple[dict, dict, int]], list[dict]]:
        """What fulfillmentCreate would ship, or the userErrors Shopify gives for a bad request."""
        picks, owners = [], set()
        for index, group in enumerate(groups):
            path = ["fulfillment", "lineItemsByFulfillmentOrder", str(index), "fulfillmentOrderId"]
            order, fo = self._fulfillment_order(group["fulfillmentOrderId"])
            if fo is None:
                return [], [_error(path, "Fulfillment order does not exist.")]
            if fo["status"] not in ("OPEN", "IN_PROGRESS") or "CREATE_FULFILLMENT" not in supported_actions(fo):
                status = fo["status"].lower()
                return [], [
                    _error(path, f"Fulfillment order {legacy_id(fo['id'])} has an unfulfillable status= {status}.")
                ]
            owners.add(order["id"])
            lines = {line["id"]: line for line in fo["line_items"]}
            requested = group.get("fulfillmentOrderLineItems")
            if requested is None:
                picks += [
                    (fo, line, line["remaining_quantity"]) for line in fo["line_items"] if line["remaining_quantity"]
                ]
                continue
            for item in requested:
                line = lines.get(item["id"])
                if line is None or not 0 < item["quantity"] <= line["remaining_quantity"]:
                    return [], [_error(["fulfillment"], "Invalid fulfillment order line item quantity requested.")]
                picks.append((fo, line, item["quantity"]))
        if len(owners) > 1:
            return [], [_error(["fulfillment"], "All fulfillment orders must belong to the same order.")]
        if not picks:
            return [], [_error(["fulfillment"], "Line items are already fulfilled.")]
        return picks, []

    def _fo_action(self, fo_id: str, action: str, refusal: str) -> tuple[dict | None, dict | None, list[dict]]:
        order, fo = self._fulfillment_order(fo_id)
        if fo is None:
            return None, None, [_error(["id"], "Fulfillment order does not exist.", "FULFILLMENT_ORDER_NOT_FOUND")]
        if action not in supported_actions(fo):
            return None, None, [_error(["id"], refusal)]
        return order, fo, []

    def _submit_request(
        self, id: str, message: str | None = None, notifyCustomer: bool | None = None, **_: Any
    ) -> dict:
        order, fo, errors = self._fo_action(
            id, "REQUEST_FULFILLMENT", "Fulfillment order is not in a requestable state."
        )
        if errors:
            return {"originalFulfillmentOrder": None, "submittedFulfillmentOrder": None, "userErrors": errors}
        fo["request_status"] = "SUBMITTED"
        fo["request_message"] = message
        self._touch(order, fo)
        view = self._fo_view(order, fo)
        return {"originalFulfillmentOrder": view, "submittedFulfillmentOrder": view, "userErrors": []}

    def _submit_cancellation(self, id: str, message: str | None = None) -> dict:
        order, fo, errors = self._fo_action(
            id, "REQUEST_CANCELLATION", "Fulfillment order does not have a cancellable fulfillment request."
        )
        if errors:
            return {"fulfillmentOrder": None, "userErrors": errors}
        fo["request_status"] = "CANCELLATION_REQUESTED"
        fo["cancellation_message"] = message
        self._touch(order, fo)
        return {"fulfillmentOrder": self._fo_view(order, fo), "userErrors": []}

    def _release_hold(self, id: str, holdIds: list[str] | None = None, externalId: str | None = None) -> dict:
        order, fo, errors = self._fo_action(id, "RELEASE_HOLD", "The fulfillment order is not on hold.")
        if errors:
            return {"fulfillmentOrder": None, "userErrors": errors}
        releasing = set(holdIds) if holdIds is not None else {h["id"] for h in fo["holds"]}
        fo["holds"] = [h for h in fo["holds"] if h["id"] not in releasing]
        if not fo["holds"]:
            fo["status"] = "OPEN"
            refresh_fulfillment_order_status(fo)
        self._touch(order, fo)
        return {"fulfillmentOrder": self._fo_view(order, fo), "userErrors": []}

    def _fulfillment_cancel(self, id: str) -> dict:
        order, fulfillment = self._fulfillment(id)
        if fulfillment is None:
            return {"fulfillment": None, "userErrors": [_error(["id"], "Fulfillment does not exist.")]}
        if fulfillment["status"] == "CANCELLED":
            return {"fulfillment": None, "userErrors": [_error(["id"], "Fulfillment has already been cancelled.")]}
        fulfillment["status"] = "CANCELLED"
        fulfillment["updated_at"] = self._now()
        lines = {line["id"]: (fo, line) for fo in order["fulfillment_orders"] for line in fo["line_items"]}
        reopened = []
        for shipped in fulfillment["line_items"]:
            fo, line = lines[shipped["fulfillment_order_line_item_id"]]
            line["remaining_quantity"] += shipped["quantity"]
            if fo["status"] == "CLOSED":
                fo["status"] = "OPEN"
            reopened.append(fo)
        for fo in reopened:
            refresh_fulfillment_order_status(fo)
        self._touch(order, *reopened)
        return {"fulfillment": self._fulfillment_view(order, fulfillment), "userErrors": []}

    def _order_cancel(
        self, orderId: str, reason: str, restock: bool, refundMethod: dict | None = None, **_: Any
    ) -> dict:
        order = self.orders.get(orderId)
        if order is None:
            return {"job": None, "orderCancelUserErrors": [_error(["orderId"], "Order does not exist", "NOT_FOUND")]}
        if order["cancelled_at"] is not None:
            error = _error(["orderId"], "Cannot cancel an order that has already been cancelled", "INVALID")
            return {"job": None, "orderCancelUserErrors": [error]}
        at = self._now()
        order.update(cancelled_at=at, cancel_reason=reason, closed_at=order["closed_at"] or at)
        order["financial_status"] = _cancelled_financial_status(order["financial_status"], refundMethod)
        for fo in order["fulfillment_orders"]:
            if fo["status"] not in ("CLOSED", "CANCELLED"):
                fo.update(status="CLOSED", holds=[], updated_at=at)
        self._touch(order)
        return {
            "job": {"id": f"gid://shopify/Job/{uuid.uuid4()}", "done": False},
            "orderCancelUserErrors": [],
            "userErrors": [],
        }

    def _tags_add(self, id: str, tags: list[str]) -> dict:
        order = self.orders.get(id)
        if order is None:
            return {"node": None, "userErrors": [_error(["id"], "Resource not found")]}
        known = {t.lower() for t in order["tags"]}
        for tag in (t.strip() for t in tags):
            if tag and tag.lower() not in known:
                order["tags"].append(tag)
                known.add(tag.lower())
        self._touch(order)
        return {"node": self._order_view(order), "userErrors": []}


_FO_FIELD_ALIASES = {"requestStatus": "request_status", "fulfillAt": "fulfill_at", "fulfillBy": "fulfill_by"}

_HTTP_ERRORS = {500: "Internal Server Error", 503: "Service Unavailable"}

_ORDER_SORT_KEYS: dict[str, Callable[[dict], list]] = {
    "ID": lambda o: [legacy_id(o["id"])],
    "UPDATED_AT": lambda o: [o["updated_at"].timestamp(), legacy_id(o["id"])],
    "CREATED_AT": lambda o: [o["created_at"].timestamp(), legacy_id(o["id"])],
    "PROCESSED_AT": lambda o: [o["created_at"].timestamp(), legacy_id(o["id"])],
    "ORDER_NUMBER": lambda o: [int(o["name"].lstrip("#")), legacy_id(o["id"])],
}


@functools.lru_cache(maxsize=256)
def _parse_and_validate(query: str) -> tuple[DocumentNode | None, list[dict]]:
    """Parse and validate once per distinct document: the answer does not depend on the variables."""
    try:
        document = parse(query)
    except GraphQLError as error:
        return None, [_format_error(error, "parseError")]
    return document, _validation_errors(load_schema(), document)


def _outcome(result: graphql.ExecutionResult) -> str:
    if result.errors:
        return "errors"
    payloads = (result.data or {}).values()
    has_user_errors = any(
        isinstance(p, dict) and (p.get("userErrors") or p.get("orderCancelUserErrors")) for p in payloads
    )
    return "user_errors" if has_user_errors else "ok"


def _error(path: list[str], message: str, code: str | None = None) -> dict:
    return {"field": path, "message": message, "code": code}


def _cancelled_financial_status(status: str | None, refund_method: dict | None) -> str | None:
    if status in ("PENDING", "AUTHORIZED"):
        return "VOIDED"
    if status in ("PAID", "PARTIALLY_PAID") and (refund_method or {}).get("originalPaymentMethodsRefund"):
        return "REFUNDED"
    return status


def _customer_view(customer: dict) -> dict:
    return {
        "id": customer["id"],
        "firstName": customer["first_name"],
        "lastName": customer["last_name"],
        "displayName": f"{customer['first_name']} {customer['last_name']}".strip(),
        "defaultEmailAddress": {"emailAddress": customer["email"]} if customer.get("email") else None,
    }


def _service_view(name: str) -> dict:
    handle = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return {
        "id": f"gid://shopify/FulfillmentService/{int(hashlib.sha256(handle.encode()).hexdigest()[:8], 16)}",
        "serviceName": name,
        "handle": handle,
        "inventoryManagement": True,
        "trackingSupport": True,
        "requiresShippingMethod": True,
        "type": "THIRD_PARTY",
    }


def _hold_view(hold: dict) -> dict:
    return {
        "id": hold["id"],
        "reason": hold["reason"],
        "reasonNotes": hold.get("reason_notes"),
        "displayReason": hold["reason"].replace("_", " ").capitalize(),
        "heldByRequestingApp": False,
        "handle": None,
    }


def _line_item_view(line: dict) -> dict:
    return {
        "id": line["id"],
        "title": line["title"],
        "name": line["title"],
        "sku": line.get("sku"),
        "quantity": line["quantity"],
    }


def _fo_line_view(line: dict, item: dict) -> dict:
    return {
        "id": line["id"],
        "productTitle": item["title"],
        "sku": item.get("sku"),
        "remainingQuantity": line["remaining_quantity"],
        "totalQuantity": line["total_quantity"],
        "requiresShipping": True,
        "lineItem": _line_item_view(item),
    }


# --- the REST-shaped webhook body ---------------------------------------------------------------------------------


def _webhook_time(value: datetime | None, zone: ZoneInfo) -> str | None:
    return value.astimezone(zone).isoformat(timespec="seconds") if value else None


def _webhook_fulfillment_status(order: dict) -> str | None:
    return {"FULFILLED": "fulfilled", "PARTIALLY_FULFILLED": "partial"}.get(display_fulfillment_status(order))


def _webhook_order(order: dict, zone: ZoneInfo, currency: str) -> dict:
    customer = order.get("customer") or None
    total = str(order_total(order).quantize(Decimal("0.01")))
    number = int(order["name"].lstrip("#"))
    return {
        "id": legacy_id(order["id"]),
        "admin_graphql_api_id": order["id"],
        "name": order["name"],
        "order_number": number,
        "number": number - 1000,
        "email": order.get("email"),
        "contact_email": order.get("email"),
        "created_at": _webhook_time(order["created_at"], zone),
        "processed_at": _webhook_time(order["created_at"], zone),
        "updated_at": _webhook_time(order["updated_at"], zone),
        "closed_at": _webhook_time(order["closed_at"], zone),
        "cancelled_at": _webhook_time(order["cancelled_at"], zone),
        "cancel_reason": (order.get("cancel_reason") or "").lower() or None,
        "financial_status": (order["financial_status"] or "").lower() or None,
        "fulfillment_status": _webhook_fulfillment_status(order),
        "tags": ", ".join(order["tags"]),
        "test": order["test"],
        "note": order.get("note"),
        "currency": currency,
        "presentment_currency": currency,
        "total_price": total,
        "current_total_price": total,
        "customer": _webhook_customer(customer) if customer else None,
        "line_items": [_webhook_line_item(order, line) for line in order["line_items"]],
        "fulfillments": [_webhook_fulfillment(order, f, zone) for f in order["fulfillments"]],
    }


def _webhook_customer(customer: dict) -> dict:
    return {
        "id": legacy_id(customer["id"]),
        "admin_graphql_api_id": customer["id"],
        "first_name": customer["first_name"],
        "last_name": customer["last_name"],
        "email": customer.get("email"),
    }


def _webhook_line_item(order: dict, line: dict) -> dict:
    fo_lines = [
        fo_line
        for fo in order["fulfillment_orders"]
        for fo_line in fo["line_items"]
        if fo_line["line_item_id"] == line["id"]
    ]
    fulfillable = sum(fo_line["remaining_quantity"] for fo_line in fo_lines) if order["cancelled_at"] is None else 0
    status = None if fulfillable == line["quantity"] else ("fulfilled" if fulfillable == 0 else "partial")
    return {
        "id": legacy_id(line["id"]),
        "admin_graphql_api_id": line["id"],
        "title": line["title"],
        "name": line["title"],
        "sku": line.get("sku"),
        "quantity": line["quantity"],
        "current_quantity": line["quantity"],
        "fulfillable_quantity": fulfillable,
        "fulfillment_status": status if order["cancelled_at"] is None else None,
        "price": line["price"],
        "requires_shipping": True,
    }


def _webhook_fulfillment(order: dict, fulfillment: dict, zone: ZoneInfo) -> dict:
    tracking = fulfillment["tracking"]
    numbers = [t["number"] for t in tracking if t["number"]]
    urls = [t["url"] for t in tracking if t["url"]]
    return {
        "id": legacy_id(fulfillment["id"]),
        "admin_graphql_api_id": fulfillment["id"],
        "order_id": legacy_id(order["id"]),
        "status": fulfillment["status"].lower(),
        "created_at": _webhook_time(fulfillment["created_at"], zone),
        "updated_at": _webhook_time(fulfillment["updated_at"], zone),
        "tracking_company": tracking[0]["company"] if tracking else None,
        "tracking_number": numbers[0] if numbers else None,
        "tracking_numbers": numbers,
        "tracking_url": urls[0] if urls else None,
        "tracking_urls": urls,
    }
