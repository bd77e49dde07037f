"""Relay cursor pagination over in-memory lists, with cursors that encode the sort key."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

from graphql import GraphQLError


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
    render: Callable[[Any], Any] = lambda item: item,
    **_ignored: Any,
) -> dict:
    """A Relay connection over `nodes`, already sorted; `keys` are their sort keys, which the cursors encode, so a
    cursor stays valid when other items change. `render` turns the items of the page (only those) into nodes."""

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
    rendered = [render(nodes[i]) for i in window]
    edges = [{"cursor": _encode_cursor(keys[i]), "node": node} for i, node in zip(window, rendered, strict=True)]
    return {
        "nodes": rendered,
        "edges": edges,
        "pageInfo": {
            "hasNextPage": end < len(nodes),
            "hasPreviousPage": start > 0,
            "startCursor": edges[0]["cursor"] if edges else None,
            "endCursor": edges[-1]["cursor"] if edges else None,
        },
    }


def positional(nodes: list[Any], args: dict) -> dict:
    return connection(nodes, [[i] for i in range(len(nodes))], **args)
