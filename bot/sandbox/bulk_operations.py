"""The sandbox shop's bulk mutation operations, as Shopify's "Bulk import data with the GraphQL Admin API" guide
(shopify.dev/docs/api/usage/bulk-operations/imports) describes them:

1. `stagedUploadsCreate` with `resource: BULK_MUTATION_VARIABLES` answers an upload target: a `url` and the
   `parameters` to send with the file (`resourceUrl` is null for this resource). Here the target is the sandbox's
   own HTTP server (`/sandbox-storage/staged-uploads`), standing in for Shopify's storage bucket.
2. The client POSTs a multipart form there: every parameter, then the JSONL file (`file`, last). Files up to 100 MB
   are taken (Shopify's changelog, "Faster bulk operations"); a bigger one is refused as the bucket does
   (`EntityTooLarge`). The `key` parameter is the `stagedUploadPath`.
3. `bulkOperationRunMutation(mutation:, stagedUploadPath:)` checks the mutation against the schema
   (`INVALID_MUTATION`), the file (`NO_SUCH_FILE`, `INVALID_STAGED_UPLOAD_FILE`) and how many bulk mutations run
   (`OPERATION_IN_PROGRESS`; up to five at once from API version 2026-01, the guide says), and answers the operation
   CREATED. It then runs in the background: RUNNING, the mutation executed once per line against the shop's state
   with that line's variables, `objectCount` counting lines, then COMPLETED with `url` (the result file) and
   `fileSize`. A line's mutation is not charged to the app's cost bucket (the point of the operation, per the
   guide: no client-side throttle).
4. `bulkOperation(id:)` (and the deprecated `currentBulkOperation(type: MUTATION)`) report the status.
5. The result file is JSONL: one line per input line, `{"data": {...}, "__lineNumber": n}` (with `errors` beside it
   when the line's variables or execution failed); a line refused by the mutation carries its `userErrors` in
   `data`, and the operation still completes.

The rate at which lines run is a model: Shopify documents no throughput for bulk mutations (only that one must
finish within 24 hours), and none can be measured offline. `lines_per_second` sets it (math.inf: every line at
once; `set_rate` changes it for running operations too). `max_upload_bytes` is the upload limit; `fail_at_line`
makes an operation fail there (FAILED, `INTERNAL_SERVER_ERROR`, the lines run so far in `partialDataUrl`), as an
operation Shopify gave up on would.
"""

from __future__ import annotations

import asyncio
import json
import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web
from graphql import GraphQLError, OperationDefinitionNode, OperationType, execute, parse, validate
from graphql.execution.values import get_variable_values

from bot.sandbox.views import _iso

if TYPE_CHECKING:
    from bot.sandbox.shopify import SandboxShopify

UPLOAD_PATH = "/sandbox-storage/staged-uploads"
RESULTS_PATH = "/sandbox-storage/bulk-results"
MAX_UPLOAD_BYTES = 100 * 1024 * 1024  # "Upload files up to 100MB (up from 20MB)"
CONCURRENT_BULK_MUTATIONS = 5  # "In API versions 2026-01 and higher, you can run up to five bulk mutation operations"
NOT_BULKABLE = frozenset({"bulkOperationRunMutation", "bulkOperationRunQuery"})
DEFAULT_LINES_PER_SECOND = math.inf
FINISHED = frozenset({"COMPLETED", "FAILED", "CANCELED", "EXPIRED"})


@dataclass(slots=True)
class _Upload:
    key: str
    policy: str
    mime_type: str
    content: bytes | None = None  # None until the file is posted


@dataclass(slots=True)
class BulkOperation:
    id: str
    mutation: str
    lines: list[dict]
    created_at: datetime
    status: str = "CREATED"
    object_count: int = 0
    results: list[dict] = field(default_factory=list)
    completed_at: datetime | None = None
    error_code: str | None = None
    result_name: str | None = None  # the result file's name under RESULTS_PATH, once there is one


class BulkOperations:
    """Staged uploads, bulk mutation operations and their result files, for one sandbox shop."""

    def __init__(self, shop: SandboxShopify, lines_per_second: float = DEFAULT_LINES_PER_SECOND):
        self.shop = shop
        self.lines_per_second = lines_per_second
        self.fail_at_line: int | None = None
        self.max_upload_bytes = MAX_UPLOAD_BYTES
        self.origin = "http://127.0.0.1"  # the sandbox's own address, as the last GraphQL request reached it
        self.by_id: dict[str, BulkOperation] = {}
        self._uploads: dict[str, _Upload] = {}
        self._files: dict[str, bytes] = {}
        self._tasks: set[asyncio.Task] = set()
        self._rate_changed = asyncio.Event()

    def attach(self, app: web.Application) -> None:
        app.router.add_post(UPLOAD_PATH, self._upload)
        app.router.add_get(RESULTS_PATH + "/{name}", self._result_file)
        app.on_cleanup.append(self._stop)

    # --- test controls -------------------------------------------------------------------------------------------

    def set_rate(self, lines_per_second: float) -> None:
        """Change how fast lines run, for operations already running too (0 holds them)."""
        self.lines_per_second = lines_per_second
        self._rate_changed.set()

    def stage(self, content: bytes, filename: str = "vars.jsonl") -> str:
        """A staged file, as if uploaded: its stagedUploadPath."""
        upload = self._new_upload(filename, "text/jsonl")
        upload.content = content
        return upload.key

    # --- GraphQL: mutations -------------------------------------------------------------------------------------

    def staged_uploads_create(self, input: list[dict]) -> dict:
        targets = []
        for number, wanted in enumerate(input):
            if wanted["resource"] != "BULK_MUTATION_VARIABLES":
                message = "The sandbox stages only BULK_MUTATION_VARIABLES files."
                return {"stagedTargets": None, "userErrors": [_error(["input", str(number), "resource"], message)]}
            if wanted.get("httpMethod", "PUT") != "POST":
                message = "Bulk mutation variables are uploaded with a POST form."
                return {"stagedTargets": None, "userErrors": [_error(["input", str(number), "httpMethod"], message)]}
            upload = self._new_upload(wanted["filename"], wanted["mimeType"])
            targets.append(
                {
                    "url": self.origin + UPLOAD_PATH,
                    "resourceUrl": None,
                    "parameters": [
                        {"name": "Content-Type", "value": upload.mime_type},
                        {"name": "success_action_status", "value": "201"},
                        {"name": "acl", "value": "private"},
                        {"name": "key", "value": upload.key},
                        {"name": "policy", "value": upload.policy},
                    ],
                }
            )
        return {"stagedTargets": targets, "userErrors": []}

    def run_mutation(self, mutation: str, stagedUploadPath: str, clientIdentifier: str | None = None) -> dict:
        problem = self._mutation_problem(mutation)
        if problem:
            return _refused("mutation", problem, "INVALID_MUTATION")
        upload = self._uploads.get(stagedUploadPath)
        if upload is None or upload.content is None:
            return _refused("stagedUploadPath", "The JSONL file could not be found.", "NO_SUCH_FILE")
        lines = _jsonl(upload.content)
        if lines is None:
            message = "Unexpected file structure - expected JSONL"
            return _refused("stagedUploadPath", message, "INVALID_STAGED_UPLOAD_FILE")
        running = sum(op.status not in FINISHED for op in self.by_id.values())
        if running >= CONCURRENT_BULK_MUTATIONS:
            message = "A bulk mutation operation for this app and shop is already in progress."
            return _refused(None, message, "OPERATION_IN_PROGRESS")
        operation = BulkOperation(self.shop.gid("BulkOperation"), mutation, lines, self.shop.now())
        self.by_id[operation.id] = operation
        task = asyncio.get_running_loop().create_task(self._process(operation))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return {"bulkOperation": self.view(operation), "userErrors": []}

    # --- GraphQL: queries ----------------------------------------------------------------------------------------

    def bulk_operation(self, info: Any, id: str) -> dict | None:
        found = self.by_id.get(id)
        return self.view(found) if found else None

    def current_bulk_operation(self, info: Any, type: str = "QUERY") -> dict | None:
        """The app's most recent operation of `type` (the sandbox runs mutations only)."""
        if type != "MUTATION" or not self.by_id:
            return None
        return self.view(next(reversed(self.by_id.values())))

    def view(self, operation: BulkOperation) -> dict:
        content = self._files.get(operation.result_name) if operation.result_name else None
        url = f"{self.origin}{RESULTS_PATH}/{operation.result_name}" if content is not None else None
        completed = operation.status == "COMPLETED"
        return {
            "id": operation.id,
            "type": "MUTATION",
            "status": operation.status,
            "errorCode": operation.error_code,
            "createdAt": _iso(operation.created_at),
            "completedAt": _iso(operation.completed_at),
            "objectCount": str(operation.object_count),  # UnsignedInt64: a string of digits
            "rootObjectCount": str(operation.object_count),
            "fileSize": str(len(content)) if completed and content is not None else None,
            "url": url if completed else None,
            "partialDataUrl": url if operation.status == "FAILED" else None,
            "query": operation.mutation,
        }

    # --- running an operation -------------------------------------------------------------------------------------

    async def _process(self, operation: BulkOperation) -> None:
        operation.status = "RUNNING"
        loop = asyncio.get_running_loop()
        anchor = (loop.time(), 0)  # (when, lines done then): lines are due at the rate from there
        document = parse(operation.mutation)
        for number, line in enumerate(operation.lines):
            anchor = await self._paced(anchor, number)
            if self.fail_at_line == number:
                self._finish(operation, "FAILED", error_code="INTERNAL_SERVER_ERROR")
                return
            operation.results.append(self._execute(document, line, number))
            operation.object_count += 1
        self._finish(operation, "COMPLETED")

    async def _paced(self, anchor: tuple[float, int], done: int) -> tuple[float, int]:
        """Wait until line `done` is due at `lines_per_second`; a change of rate re-anchors at the line waiting."""
        loop = asyncio.get_running_loop()
        while self.lines_per_second != math.inf:
            rate = self.lines_per_second
            wait = anchor[0] + (done + 1 - anchor[1]) / rate - loop.time() if rate > 0 else None
            if wait is not None and wait <= 0:
                break
            self._rate_changed.clear()
            try:
                await asyncio.wait_for(self._rate_changed.wait(), wait)
            except TimeoutError:
                break
            anchor = (loop.time(), done)
        return anchor

    def _execute(self, document: Any, variables: dict, number: int) -> dict:
        schema = self.shop.schema
        (operation,) = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        coerced = get_variable_values(schema, operation.variable_definitions, variables)
        if isinstance(coerced, list):
            return {"errors": [{"message": e.message} for e in coerced], "__lineNumber": number}
        result = execute(schema, document, root_value=self.shop.mutation_root(), variable_values=coerced)
        line: dict[str, Any] = {"data": result.data}
        if result.errors:
            line["errors"] = [{"message": e.message, "path": list(e.path or ())} for e in result.errors]
        line["__lineNumber"] = number
        return line

    def _finish(self, operation: BulkOperation, status: str, *, error_code: str | None = None) -> None:
        operation.result_name = f"{uuid.uuid4()}.jsonl"
        self._files[operation.result_name] = b"".join(
            json.dumps(line, separators=(",", ":")).encode() + b"\n" for line in operation.results
        )
        operation.status, operation.error_code = status, error_code
        operation.completed_at = self.shop.now() if status == "COMPLETED" else None

    def _mutation_problem(self, mutation: str) -> str | None:
        try:
            document = parse(mutation)
        except GraphQLError as error:
            return f"Failed to parse the mutation - {error.message}"
        errors = validate(self.shop.schema, document)
        if errors:
            return "; ".join(e.message for e in errors)
        operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        if len(operations) != 1 or operations[0].operation != OperationType.MUTATION:
            return "Invalid mutation: expected a single mutation operation."
        fields = {s.name.value for s in operations[0].selection_set.selections if hasattr(s, "name")}
        if fields & NOT_BULKABLE:
            return f"Invalid mutation: {', '.join(sorted(fields & NOT_BULKABLE))} cannot run in bulk."
        return None

    async def _stop(self, app: web.Application) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # --- the storage bucket ---------------------------------------------------------------------------------------

    def _new_upload(self, filename: str, mime_type: str) -> _Upload:
        shop_number = self.shop.shop_domain.split(".", 1)[0]
        key = f"tmp/{shop_number}/bulk/{uuid.uuid4()}/{filename}"
        upload = _Upload(key, uuid.uuid4().hex, mime_type)
        self._uploads[key] = upload
        return upload

    async def _upload(self, request: web.Request) -> web.Response:
        """A multipart POST form: the target's parameters, then `file`. Streamed, so that the size limit is the
        bucket's (100 MB), not aiohttp's default body limit."""
        fields: dict[str, str] = {}
        content = b""
        reader = await request.multipart()
        async for part in reader:
            if part.name != "file":
                fields[part.name] = await part.text()
                continue
            chunks, size = [], 0
            while chunk := await part.read_chunk():
                size += len(chunk)
                if size > self.max_upload_bytes:
                    message = "Your proposed upload exceeds the maximum allowed size"
                    return _storage_error(400, "EntityTooLarge", message)
                chunks.append(chunk)
            content = b"".join(chunks)
        upload = self._uploads.get(fields.get("key", ""))
        if upload is None or fields.get("policy") != upload.policy:
            return _storage_error(403, "AccessDenied", "Invalid according to Policy: Policy Condition failed")
        upload.content = content
        body = (
            "<?xml version='1.0' encoding='UTF-8'?><PostResponse>"
            f"<Location>{self.origin}{UPLOAD_PATH}/{upload.key}</Location>"
            f"<Key>{upload.key}</Key></PostResponse>"
        )
        return web.Response(status=201, text=body, content_type="application/xml")

    async def _result_file(self, request: web.Request) -> web.Response:
        content = self._files.get(request.match_info["name"])
        if content is None:
            return _storage_error(404, "NoSuchKey", "The specified key does not exist.")
        return web.Response(body=content, content_type="application/jsonl")


def _jsonl(content: bytes) -> list[dict] | None:
    """The variables of each line, or None when a line is not a JSON object."""
    lines = []
    for text in content.decode("utf-8", errors="replace").splitlines():
        if not text.strip():
            continue
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            return None
        if not isinstance(value, dict):
            return None
        lines.append(value)
    return lines


def _error(path: list[str] | None, message: str, code: str | None = None) -> dict:
    return {"field": path, "message": message, "code": code}


def _refused(argument: str | None, message: str, code: str) -> dict:
    return {"bulkOperation": None, "userErrors": [_error([argument] if argument else None, message, code)]}


def _storage_error(status: int, code: str, message: str) -> web.Response:
    body = f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code><Message>{message}</Message></Error>"
    return web.Response(status=status, text=body, content_type="application/xml")


def handlers(bulk: BulkOperations) -> dict[str, tuple[Callable[..., dict], str, list[str]]]:
    """The mutation handlers, in the shape of `mutations.HANDLERS` (already bound to the shop)."""
    return {
        "stagedUploadsCreate": (bulk.staged_uploads_create, "userErrors", ["input"]),
        "bulkOperationRunMutation": (bulk.run_mutation, "userErrors", ["mutation"]),
    }
