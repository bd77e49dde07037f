"""Shopify's bulk mutation operation, from the client's side: one mutation run on Shopify's side once per line of a
JSONL file of variables (shopify.dev/docs/api/usage/bulk-operations/imports).

`run_bulk_mutation` stages an upload (STAGED_UPLOADS_CREATE, resource BULK_MUTATION_VARIABLES), POSTs the JSONL file
to the target as a multipart form (the target's parameters, then `file`), starts the operation
(BULK_OPERATION_RUN_MUTATION with the target's `key` as stagedUploadPath), polls its status (BULK_OPERATION, through
the client, so each poll waits for the cost budget like any request) until it has finished, then reads the result
file (`url`, or `partialDataUrl` for a failed operation) and gives each line's result back under the key it was
sent with, by the file's `__lineNumber` (the result lines need not come in input order). A line without a result
line is None: it did not run, or Shopify did not say.

Part of the benchmark, not of orderbot: bulk runs (bot/flows/bulk.py) do not use it, by measurement
(tests/perf/bench_bulk_operation.py, docs/benchmarks.md, 2026-12-02, an archive at a Standard plan's limits): the bulk
operation took a tenth of the points (1.06-1.31 an order against 13), but how fast Shopify runs its lines is
undocumented and was modelled (20 lines/s). The batched path took 1.7 s for 100 orders (all within the bucket), 45.3 s
for 500 and 240.7 s for 2,000; the bulk operation would be faster only above 61.8, 11.1 and 8.4 lines a second. And it
would lose what a run promises: the check of an order comes minutes before its line runs, not one round trip; Stop can
only cancel the whole operation "after a short delay"; progress and the per-order audit rows come from `objectCount` and
the result file at the end.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from bot.shopify.client import ShopifyClient, ShopifyUnavailable

POLL_SECONDS = 1.0
TRANSFER_TIMEOUT = 120.0  # seconds for the upload and for the result file
FINISHED = frozenset({"COMPLETED", "FAILED", "CANCELED", "EXPIRED"})
FILENAME = "orderbot-bulk-variables.jsonl"

# A staged upload target for the JSONL file of variables, the operation started over it (the mutation it runs on each
# line is one of the documents above, such as ORDER_CLOSE), and its status by id (`currentBulkOperation` is deprecated
# in 2026-04: "Use `bulkOperations` with status filter instead").

STAGED_UPLOADS_CREATE = """
mutation StagedUploadsCreate($input: [StagedUploadInput!]!) {
  stagedUploadsCreate(input: $input) {
    stagedTargets { url resourceUrl parameters { name value } }
    userErrors { field message }
  }
}
"""

BULK_OPERATION_RUN_MUTATION = """
mutation BulkOperationRunMutation($mutation: String!, $stagedUploadPath: String!, $clientIdentifier: String) {
  bulkOperationRunMutation(
    mutation: $mutation
    stagedUploadPath: $stagedUploadPath
    clientIdentifier: $clientIdentifier
  ) {
    bulkOperation { id status }
    userErrors { field message code }
  }
}
"""

BULK_OPERATION = """
query BulkOperation($id: ID!) {
  bulkOperation(id: $id) { id status errorCode objectCount url partialDataUrl }
}
"""


@dataclass(frozen=True, slots=True)
class LineResult:
    """One line's result: the mutation's payload, its userErrors, and GraphQL errors of the line itself."""

    payload: dict[str, Any] | None
    user_errors: list[dict[str, Any]]
    errors: list[dict[str, Any]]

    @property
    def ok(self) -> bool:
        return self.payload is not None and not self.user_errors and not self.errors


@dataclass(frozen=True, slots=True)
class BulkMutationOutcome:
    operation_id: str
    status: str  # COMPLETED, FAILED, CANCELED or EXPIRED
    error_code: str | None
    object_count: int
    results: dict[str, LineResult | None]  # by the key each line was sent with; None: no result for it


async def run_bulk_mutation(
    client: ShopifyClient,
    mutation: str,
    lines: Sequence[tuple[str, dict[str, Any]]],
    *,
    poll_every: float = POLL_SECONDS,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> BulkMutationOutcome:
    """Run `mutation` once per (key, variables) line as one bulk operation and wait for its results. Raises a
    ShopifyError when Shopify refuses to stage or start it (ShopifyUserError with its userErrors) or the file cannot
    be moved (ShopifyUnavailable); once started, the operation's end is the outcome, whatever it is."""
    keys = [key for key, _ in lines]
    content = b"".join(json.dumps(variables, separators=(",", ":")).encode() + b"\n" for _, variables in lines)
    timeout = aiohttp.ClientTimeout(total=TRANSFER_TIMEOUT)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        path = await _upload(client, http, content)
        started = await client.mutate(
            BULK_OPERATION_RUN_MUTATION,
            {"mutation": mutation, "stagedUploadPath": path},
            "bulkOperationRunMutation",
        )
        operation_id = started["bulkOperation"]["id"]
        while True:
            status = (await client.execute(BULK_OPERATION, {"id": operation_id}))["bulkOperation"]
            if status["status"] in FINISHED:
                break
            await sleep(poll_every)
        file_url = status["url"] or status["partialDataUrl"]
        by_number = await _results(http, file_url) if file_url else {}
    return BulkMutationOutcome(
        operation_id=operation_id,
        status=status["status"],
        error_code=status["errorCode"],
        object_count=int(status["objectCount"]),
        results={key: by_number.get(number) for number, key in enumerate(keys)},
    )


async def _upload(client: ShopifyClient, http: aiohttp.ClientSession, content: bytes) -> str:
    """Stage and upload the JSONL file; its stagedUploadPath."""
    staged = await client.mutate(
        STAGED_UPLOADS_CREATE,
        {
            "input": [
                {
                    "resource": "BULK_MUTATION_VARIABLES",
                    "filename": FILENAME,
                    "mimeType": "text/jsonl",
                    "httpMethod": "POST",
                }
            ]
        },
        "stagedUploadsCreate",
    )
    target = staged["stagedTargets"][0]
    form = aiohttp.FormData()
    for parameter in target["parameters"]:
        form.add_field(parameter["name"], parameter["value"])
    form.add_field("file", content, filename=FILENAME, content_type="text/jsonl")
    try:
        async with http.post(target["url"], data=form) as response:
            if response.status >= 300:
                raise ShopifyUnavailable(f"Shopify's storage refused the bulk file (HTTP {response.status}).")
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise ShopifyUnavailable(f"Could not upload the bulk file to Shopify ({exc.__class__.__name__}).") from exc
    return next(p["value"] for p in target["parameters"] if p["name"] == "key")


async def _results(http: aiohttp.ClientSession, url: str) -> dict[int, LineResult]:
    """The result file's lines, by `__lineNumber`."""
    try:
        async with http.get(url) as response:
            if response.status != 200:
                raise ShopifyUnavailable(f"Could not read the bulk operation's results (HTTP {response.status}).")
            text = await response.text()
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise ShopifyUnavailable(f"Could not read the bulk operation's results ({exc.__class__.__name__}).") from exc
    found: dict[int, LineResult] = {}
    for raw in text.splitlines():
        if raw.strip():
            line = json.loads(raw)
            found[int(line["__lineNumber"])] = _line_result(line)
    return found


def _line_result(line: dict[str, Any]) -> LineResult:
    data = line.get("data") or {}
    payload = next(iter(data.values()), None) if isinstance(data, dict) else None
    user_errors = (payload or {}).get("userErrors") or (payload or {}).get("orderCancelUserErrors") or []
    return LineResult(payload=payload, user_errors=list(user_errors), errors=list(line.get("errors") or ()))
