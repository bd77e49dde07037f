"""How the sandbox Slack reads a Web API call's arguments and checks them as Slack does, and the error it answers."""

from __future__ import annotations

import contextlib
import copy
import json
from collections.abc import Iterable
from typing import Any

from aiohttp import web

MAX_MESSAGE_BLOCKS = 50
MAX_TEXT_LENGTH = 40_000
MAX_VIEW_BLOCKS = 100
_JSON_ARGUMENTS = ("blocks", "attachments", "view")


class SlackError(Exception):
    """A Slack error answer: `{"ok": false, "error": code}`, with `response_metadata.messages` when given."""

    def __init__(self, code: str, messages: Iterable[str] = ()):
        super().__init__(code)
        self.code = code
        self.messages = list(messages)

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"ok": False, "error": self.code}
        if self.messages:
            body["response_metadata"] = {"messages": self.messages}
        return body


async def arguments(request: web.Request) -> dict[str, Any]:
    """Query parameters, then the body's JSON object or form fields; JSON-encoded blocks and views decoded."""
    args: dict[str, Any] = dict(request.query)
    if request.can_read_body:
        if request.content_type == "application/json":
            try:
                body = await request.json()
            except ValueError:
                raise SlackError("invalid_json") from None
            if not isinstance(body, dict):
                raise SlackError("json_not_object")
            args.update(body)
        else:
            args.update({k: v for k, v in (await request.post()).items() if isinstance(v, str)})
    for key in _JSON_ARGUMENTS:
        if isinstance(args.get(key), str):
            # Left a string if it is not JSON: the method then answers invalid_blocks_format or invalid_arguments.
            with contextlib.suppress(ValueError):
                args[key] = json.loads(args[key])
    return args


def bearer(header: str | None) -> str | None:
    if header and header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return None


def truthy(value: Any) -> bool:
    return value is True or value in ("true", "1", 1)


def is_reply(message: dict, parent: str | None = None) -> bool:
    thread_ts = message.get("thread_ts")
    is_reply = thread_ts is not None and thread_ts != message["ts"]
    return is_reply and (parent is None or thread_ts == parent)


def content(args: dict) -> tuple[str | None, list | None]:
    """The message's text and blocks, checked as Slack checks them."""
    text, blocks = args.get("text"), args.get("blocks")
    if blocks is not None:
        if not is_block_list(blocks):
            raise SlackError("invalid_blocks_format")
        problems = block_problems(blocks, "/blocks", MAX_MESSAGE_BLOCKS)
        if problems:
            raise SlackError("invalid_blocks", problems)
    if not text and not blocks and not args.get("attachments"):
        raise SlackError("no_text")
    if text is not None and len(str(text)) > MAX_TEXT_LENGTH:
        raise SlackError("msg_too_long")
    return (None if text is None else str(text)), blocks


def is_block_list(blocks: Any) -> bool:
    return isinstance(blocks, list) and all(isinstance(b, dict) and isinstance(b.get("type"), str) for b in blocks)


def block_problems(blocks: list, pointer: str, limit: int) -> list[str]:
    """The Block Kit limits slack_sdk's models do not all check (the block count), in Slack's message format."""
    problems = []
    if len(blocks) > limit:
        problems.append(f"[ERROR] no more than {limit} items allowed [json-pointer:{pointer}]")
    seen: set[str] = set()
    for index, block in enumerate(blocks):
        where = f"{pointer}/{index}"
        block_id = block.get("block_id")
        if block_id is not None:
            if block_id in seen:
                problems.append(f"[ERROR] duplicate block_id [json-pointer:{where}/block_id]")
            seen.add(block_id)
        text = block.get("text")
        text_limit = {"section": 3000, "header": 150}.get(block["type"])
        if text_limit and isinstance(text, dict) and len(text.get("text") or "") > text_limit:
            problems.append(f"[ERROR] must be less than {text_limit + 1} characters [json-pointer:{where}/text/text]")
        if block["type"] == "actions" and len(block.get("elements") or []) > 25:
            problems.append(f"[ERROR] no more than 25 items allowed [json-pointer:{where}/elements]")
    return problems


def checked_view(view: Any) -> dict:
    """A modal as views.open and views.update accept it; otherwise invalid_arguments, with Slack's messages."""
    if not isinstance(view, dict):
        raise SlackError("invalid_arguments", ["[ERROR] failed to match all allowed schemas [json-pointer:/view]"])
    problems = []
    if view.get("type") != "modal":
        problems.append("[ERROR] must be one of the allowed values: modal [json-pointer:/view/type]")
    if not isinstance(view.get("title"), dict):
        problems.append("[ERROR] missing required field: title [json-pointer:/view]")
    for key in ("title", "submit", "close"):
        if isinstance(view.get(key), dict) and len(view[key].get("text") or "") > 24:
            problems.append(f"[ERROR] must be less than 25 characters [json-pointer:/view/{key}/text]")
    blocks = view.get("blocks")
    if not is_block_list(blocks):
        problems.append("[ERROR] missing required field: blocks [json-pointer:/view]")
    else:
        problems.extend(block_problems(blocks, "/view/blocks", MAX_VIEW_BLOCKS))
        if any(b["type"] == "input" for b in blocks) and not view.get("submit"):
            problems.append("[ERROR] must provide submit when using input blocks [json-pointer:/view/submit]")
    return _accepted(view, problems)


def _accepted(view: dict, problems: list[str]) -> dict:
    """The checks every view shares (callback_id, private_metadata), then the view or Slack's invalid_arguments."""
    if len(view.get("callback_id") or "") > 255:
        problems.append("[ERROR] must be less than 256 characters [json-pointer:/view/callback_id]")
    if len(view.get("private_metadata") or "") > 3000:
        problems.append("[ERROR] must be less than 3001 characters [json-pointer:/view/private_metadata]")
    if problems:
        raise SlackError("invalid_arguments", problems)
    return copy.deepcopy(view)


def checked_home_view(view: Any) -> dict:
    """A Home tab view as views.publish accepts it (type "home", at most 100 blocks); otherwise invalid_arguments."""
    if not isinstance(view, dict):
        raise SlackError("invalid_arguments", ["[ERROR] failed to match all allowed schemas [json-pointer:/view]"])
    problems = []
    if view.get("type") != "home":
        problems.append("[ERROR] must be one of the allowed values: home [json-pointer:/view/type]")
    blocks = view.get("blocks")
    if not is_block_list(blocks):
        problems.append("[ERROR] missing required field: blocks [json-pointer:/view]")
    else:
        problems.extend(block_problems(blocks, "/view/blocks", MAX_VIEW_BLOCKS))
    return _accepted(view, problems)
