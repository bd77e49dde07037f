"""The sandbox's bulk mutation operations over real HTTP: staged upload, multipart POST, the operation's status and
its JSONL result file, as Shopify's bulk import guide describes them."""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import aiohttp
import pytest

from bot.sandbox import bulk_operations
from bot.sandbox.seed import seed_orders
from bot.sandbox.serving import serve
from bot.sandbox.shopify import SandboxShopify, load_schema
from bot.sandbox.waiting import came_true
from bot.shopify import operations
from tests.perf.bulk_mutation import BULK_OPERATION, BULK_OPERATION_RUN_MUTATION, STAGED_UPLOADS_CREATE

NOW = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)
TOKEN = "shpat_sandbox"
GRAPHQL_PATH = "/admin/api/2026-04/graphql.json"
STAGED_FILE = {"filename": "vars.jsonl", "mimeType": "text/jsonl", "httpMethod": "POST"}
STAGE_INPUT = {"input": [{"resource": "BULK_MUTATION_VARIABLES", **STAGED_FILE}]}


@pytest.fixture(scope="module", autouse=True)
def schema_loaded_once() -> None:
    load_schema()


class Api:
    def __init__(self, session: aiohttp.ClientSession, url: str):
        self.session = session
        self.url = url

    async def data(self, document: str, variables: dict | None = None) -> dict:
        headers = {"X-Shopify-Access-Token": TOKEN}
        body = {"query": document, "variables": variables or {}}
        async with self.session.post(self.url + GRAPHQL_PATH, json=body, headers=headers) as response:
            answer = await response.json()
        assert response.status == 200 and "errors" not in answer, answer
        return answer["data"]

    async def upload(self, target: dict, content: bytes, **changed: str) -> tuple[int, str]:
        form = aiohttp.FormData()
        for parameter in target["parameters"]:
            form.add_field(parameter["name"], changed.get(parameter["name"], parameter["value"]))
        form.add_field("file", content, filename="vars.jsonl", content_type="text/jsonl")
        async with self.session.post(target["url"], data=form) as response:
            return response.status, await response.text()

    async def staged(self, content: bytes) -> str:
        target = (await self.data(STAGED_UPLOADS_CREATE, STAGE_INPUT))["stagedUploadsCreate"]["stagedTargets"][0]
        status, _ = await self.upload(target, content)
        assert status == 201
        return next(p["value"] for p in target["parameters"] if p["name"] == "key")

    async def start(self, mutation: str, path: str) -> dict:
        variables = {"mutation": mutation, "stagedUploadPath": path}
        return (await self.data(BULK_OPERATION_RUN_MUTATION, variables))["bulkOperationRunMutation"]

    async def status(self, operation_id: str) -> dict:
        return (await self.data(BULK_OPERATION, {"id": operation_id}))["bulkOperation"]

    async def results(self, url: str) -> list[dict]:
        async with self.session.get(url) as response:
            assert response.status == 200
            return [json.loads(line) for line in (await response.text()).splitlines()]


@pytest.fixture
def shopify() -> SandboxShopify:
    return SandboxShopify(seed_orders(NOW), now=lambda: NOW)


@pytest.fixture
async def api(shopify: SandboxShopify) -> AsyncIterator[Api]:
    runner, url = await serve(shopify.app)
    try:
        async with aiohttp.ClientSession() as session:
            yield Api(session, url)
    finally:
        await runner.cleanup()


def order_id(shopify: SandboxShopify, name: str) -> str:
    return next(o["id"] for o in shopify.orders.values() if o["name"] == name)


def jsonl(*lines: dict) -> bytes:
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


async def finished(shopify: SandboxShopify, operation_id: str) -> None:
    assert await came_true(lambda: shopify.bulk.by_id[operation_id].status in bulk_operations.FINISHED, 10)


async def test_a_staged_target_is_the_sandbox_itself_with_the_parameters_to_post(api: Api) -> None:
    payload = (await api.data(STAGED_UPLOADS_CREATE, STAGE_INPUT))["stagedUploadsCreate"]
    (target,) = payload["stagedTargets"]
    assert payload["userErrors"] == []
    assert target["url"] == api.url + bulk_operations.UPLOAD_PATH and target["resourceUrl"] is None
    parameters = {p["name"]: p["value"] for p in target["parameters"]}
    assert parameters["Content-Type"] == "text/jsonl" and parameters["success_action_status"] == "201"
    assert parameters["key"].startswith("tmp/") and parameters["key"].endswith("/vars.jsonl")


async def test_an_upload_without_the_targets_policy_is_refused(api: Api) -> None:
    target = (await api.data(STAGED_UPLOADS_CREATE, STAGE_INPUT))["stagedUploadsCreate"]["stagedTargets"][0]
    status, body = await api.upload(target, b"{}\n", policy="forged")
    assert status == 403 and "AccessDenied" in body


async def test_an_upload_over_the_limit_is_refused(shopify: SandboxShopify, api: Api) -> None:
    assert shopify.bulk.max_upload_bytes == 100 * 1024 * 1024
    shopify.bulk.max_upload_bytes = 10  # the limit, not 100 MB of test data
    target = (await api.data(STAGED_UPLOADS_CREATE, STAGE_INPUT))["stagedUploadsCreate"]["stagedTargets"][0]
    status, body = await api.upload(target, b"x" * 11)
    assert status == 400 and "EntityTooLarge" in body


async def test_each_line_runs_the_mutation_and_the_result_file_has_a_line_for_each(
    shopify: SandboxShopify, api: Api
) -> None:
    archive, unknown = order_id(shopify, "#1001"), "gid://shopify/Order/1"
    path = await api.staged(jsonl({"input": {"id": archive}}, {"input": {"id": unknown}}))
    started = await api.start(operations.ORDER_CLOSE, path)
    assert started["userErrors"] == [] and started["bulkOperation"]["status"] in ("CREATED", "RUNNING")
    await finished(shopify, started["bulkOperation"]["id"])

    status = await api.status(started["bulkOperation"]["id"])
    assert status["status"] == "COMPLETED" and status["objectCount"] == "2" and status["errorCode"] is None
    assert shopify.orders[archive]["closed_at"] == NOW
    lines = sorted(await api.results(status["url"]), key=lambda line: line["__lineNumber"])
    assert [line["__lineNumber"] for line in lines] == [0, 1]
    assert lines[0]["data"]["orderClose"]["order"] == {
        "id": archive,
        "closed": True,
        "closedAt": "2026-03-10T15:00:00Z",
        "updatedAt": "2026-03-10T15:00:00Z",
    }
    refused = lines[1]["data"]["orderClose"]
    assert refused["userErrors"] == [{"field": ["input", "id"], "message": "Order does not exist"}]


async def test_lines_are_not_charged_to_the_apps_bucket(shopify: SandboxShopify, api: Api) -> None:
    path = await api.staged(jsonl(*({"input": {"id": order_id(shopify, f"#{n}")}} for n in range(1001, 1011))))
    started = await api.start(operations.ORDER_CLOSE, path)
    await finished(shopify, started["bulkOperation"]["id"])
    assert [op.operation_name for op in shopify.operations] == ["StagedUploadsCreate", "BulkOperationRunMutation"]


async def test_the_status_shows_the_run_at_the_modelled_rate(shopify: SandboxShopify, api: Api) -> None:
    shopify.bulk.set_rate(0)  # held: no line is due
    path = await api.staged(jsonl(*({"input": {"id": order_id(shopify, f"#{n}")}} for n in (1001, 1002))))
    started = await api.start(operations.ORDER_CLOSE, path)
    operation_id = started["bulkOperation"]["id"]
    assert await came_true(lambda: shopify.bulk.by_id[operation_id].status == "RUNNING", 10)
    held = await api.status(operation_id)
    assert (held["status"], held["objectCount"], held["url"]) == ("RUNNING", "0", None)
    current = (await api.data("{ currentBulkOperation(type: MUTATION) { id status } }"))["currentBulkOperation"]
    assert current == {"id": operation_id, "status": "RUNNING"}

    shopify.bulk.set_rate(math.inf)
    await finished(shopify, operation_id)
    assert (await api.status(operation_id))["objectCount"] == "2"


async def test_a_failed_operation_leaves_the_lines_it_ran_in_its_partial_data(
    shopify: SandboxShopify, api: Api
) -> None:
    shopify.bulk.fail_at_line = 1
    ids = [order_id(shopify, name) for name in ("#1001", "#1002")]
    path = await api.staged(jsonl(*({"input": {"id": i}} for i in ids)))
    started = await api.start(operations.ORDER_CLOSE, path)
    await finished(shopify, started["bulkOperation"]["id"])

    status = await api.status(started["bulkOperation"]["id"])
    assert (status["status"], status["errorCode"], status["url"]) == ("FAILED", "INTERNAL_SERVER_ERROR", None)
    assert [line["__lineNumber"] for line in await api.results(status["partialDataUrl"])] == [0]
    assert shopify.orders[ids[1]]["closed_at"] is None


@pytest.mark.parametrize(
    ("mutation", "content", "code"),
    [
        ("mutation { orderClose(input: {id: 1}) { nope } }", b"{}\n", "INVALID_MUTATION"),
        ("query { shop { name } }", b"{}\n", "INVALID_MUTATION"),
        (
            'mutation { bulkOperationRunMutation(mutation: "", stagedUploadPath: "") { userErrors { message } } }',
            b"{}\n",
            "INVALID_MUTATION",
        ),
        (operations.ORDER_CLOSE, b"not json\n", "INVALID_STAGED_UPLOAD_FILE"),
    ],
)
async def test_an_invalid_mutation_or_file_is_refused_before_it_runs(
    shopify: SandboxShopify, api: Api, mutation: str, content: bytes, code: str
) -> None:
    refused = await api.start(mutation, await api.staged(content))
    assert refused["bulkOperation"] is None and [e["code"] for e in refused["userErrors"]] == [code]
    assert shopify.bulk.by_id == {}


async def test_a_path_never_uploaded_to_is_no_such_file(shopify: SandboxShopify, api: Api) -> None:
    refused = await api.start(operations.ORDER_CLOSE, "tmp/orderbot-demo/bulk/nothing/vars.jsonl")
    assert [e["code"] for e in refused["userErrors"]] == ["NO_SUCH_FILE"]


async def test_a_sixth_operation_waits_for_one_of_five_to_finish(shopify: SandboxShopify, api: Api) -> None:
    shopify.bulk.set_rate(0)
    line = jsonl({"input": {"id": order_id(shopify, "#1001")}})
    for _ in range(bulk_operations.CONCURRENT_BULK_MUTATIONS):
        assert (await api.start(operations.ORDER_CLOSE, await api.staged(line)))["userErrors"] == []
    refused = await api.start(operations.ORDER_CLOSE, await api.staged(line))
    assert [e["code"] for e in refused["userErrors"]] == ["OPERATION_IN_PROGRESS"]
