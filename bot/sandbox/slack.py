"""A local stand-in for the Slack Web API: the methods the bot calls, answered as Slack documents them.

`POST|GET /api/{method}` takes its arguments as JSON, form fields or query parameters (slack_sdk sends each method
one way or another, and Slack accepts all three), checks the bot token, applies the call to an in-memory workspace
(channels, messages and threads, ephemeral messages, modals, each person's Home tab, users, user groups) and records
it. Errors come back as Slack sends them: HTTP 200 with `{"ok": false, "error": code}`; rate limits as HTTP 429 with
`Retry-After`.

`POST /response/{id}` plays the `response_url`s that Slack puts in interaction payloads (see `response_url`): each is
good for 5 posts within 30 minutes, as Slack documents; past that the sandbox answers HTTP 404 `expired_url` (an
app cannot count on Slack's exact words: orderbot treats any refusal alike).

Socket Mode (slack_socket.py): `apps.connections.open`, called with the app-level token (`xapp-…`), answers a
WebSocket URL on this server (`ws://…/socket-mode/{ticket}`). A client that connects gets Slack's `hello`;
`send_envelope` then delivers an `interactive`, `slash_commands` or `events_api` envelope to it and waits for its
ack (`{"envelope_id", "payload"?}`); `disconnect_sockets` sends Slack's `disconnect` message, after which a client
fetches a new URL and reconnects. File uploads (files.getUploadURLExternal, the upload URL on this server,
files.completeUploadExternal): slack_files.py. How calls are read and checked: slack_checks.py.

Failures can be injected per method (`fail_next`), and an optional per-channel limit of one post a second
(`channel_rate_limit`) lets tests prove that the bot paces its posts.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import itertools
import json
import math
import re
import secrets
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bot.sandbox.serving import serve
from bot.sandbox.slack_checks import (
    SlackError,
    arguments,
    bearer,
    checked_home_view,
    checked_view,
    content,
    is_reply,
    truthy,
)
from bot.sandbox.slack_files import FileUploads, SandboxFile
from bot.sandbox.slack_socket import SocketEnvelope, SocketMessage, SocketMode, _Socket

TEAM_NAME = "Juniper & Oak"
TEAM_DOMAIN = "juniper-oak"
BOT_NAME = "orderbot"
BOT_ID = "B0ORDERBOT"
API_APP_ID = "A0ORDERBOT"
DEFAULT_SCOPES = (
    "chat:write",
    "commands",
    "users:read",
    "usergroups:read",
    "channels:read",
    "channels:history",
    "files:write",
)
# The bot scope each method needs (Slack's method reference); a call without it answers `missing_scope`.
METHOD_SCOPES = {
    "chat.postMessage": "chat:write",
    "chat.update": "chat:write",
    "chat.postEphemeral": "chat:write",
    "usergroups.users.list": "usergroups:read",
    "users.info": "users:read",
    "conversations.info": "channels:read",
    "conversations.history": "channels:history",
    "files.getUploadURLExternal": "files:write",
    "files.completeUploadExternal": "files:write",
}
DEFAULT_USERS = {"U0ADMIN": "Alex Admin", "U0STAFF": "Sam Staff"}
DEFAULT_USERGROUPS = {"S0ADMINS": ["U0ADMIN"]}
DEFAULT_CHANNELS = {"C0ORDERS": "orders"}
USER_TIMEZONE = "America/New_York"

TRANSPORT_FAILURES = ("rate_limited", "http_500", "http_503", "timeout")
HISTORY_LIMIT, HISTORY_MAX_LIMIT = 100, 999  # conversations.history's default and largest page
# Slack's documented format for trigger ids: "132456.7890123.abcdef".
TRIGGER_ID = re.compile(r"^\d+\.\d+\.[0-9a-f]+$")
_ERROR_CODE = re.compile(r"^[a-z][a-z0-9_]*$")
_JSON_ARGUMENTS = ("blocks", "attachments", "view")
_HTTP_ERRORS = {500: "Internal Server Error", 503: "Service Unavailable"}


@dataclass(frozen=True, slots=True)
class SlackCall:
    """One Web API request as the sandbox answered it. `response` is None when the answer was not JSON (5xx)."""

    method: str
    args: dict[str, Any]
    response: dict[str, Any] | None
    status: int
    at: float


@dataclass(frozen=True, slots=True)
class ResponsePost:
    """One POST to a `response_url`: where the URL came from and the JSON body Bolt's `respond()` sent."""

    channel: str
    user: str
    message_ts: str | None
    body: dict[str, Any]
    at: float


@dataclass(frozen=True, slots=True)
class _Failure:
    method: str | None
    kind: str
    retry_after: float
    delay: float
    release: asyncio.Event | None = None


@dataclass(slots=True)
class _ResponseUrl:
    channel: str
    user: str
    message_ts: str | None
    made_at: float
    uses: int = 0


RESPONSE_URL_USES, RESPONSE_URL_LIFETIME = 5, 30 * 60  # Slack: a response_url takes 5 posts within 30 minutes


class SandboxSlack(SocketMode, FileUploads):
    """One workspace with the bot installed. Serve `.app` (or call `start()`); the bot's base URL is `api_url`."""

    def __init__(
        self,
        bot_token: str = "xoxb-sandbox-token",
        team_id: str = "T0SANDBOX",
        bot_user_id: str = "U0ORDERBOT",
        users: dict[str, str] | None = None,
        usergroups: dict[str, list[str]] | None = None,
        channels: dict[str, str] | None = None,
        member_of: Iterable[str] | None = None,
        clock: Callable[[], float] = time.time,
        *,
        channel_rate_limit: bool = False,
        post_interval: float = 1.0,
        scopes: Iterable[str] = DEFAULT_SCOPES,
        app_token: str | None = "xapp-sandbox-token",
        home_tab_enabled: bool = True,
    ):
        """`home_tab_enabled`: the app's manifest turns the Home tab on (views.publish answers not_enabled if not)."""
        self.bot_token = bot_token
        self.app_id = API_APP_ID
        self.app_token = app_token
        self.team_id = team_id
        self.bot_user_id = bot_user_id
        self.users = dict(DEFAULT_USERS if users is None else users)
        self.usergroups = {k: list(v) for k, v in (DEFAULT_USERGROUPS if usergroups is None else usergroups).items()}
        self.channels = dict(DEFAULT_CHANNELS if channels is None else channels)
        self.member_of = set(self.channels if member_of is None else member_of)
        self.channel_rate_limit = channel_rate_limit
        self.post_interval = post_interval  # Slack allows a post a second per channel; a test may compress time
        self.scopes = tuple(scopes)
        self.base_url: str | None = None
        self.calls: list[SlackCall] = []
        self.responses: list[ResponsePost] = []
        self._clock = clock
        # Told of each call and response_url post as it is recorded (the demo prints them as they happen).
        self.observer: Callable[[SlackCall | ResponsePost], None] | None = None
        self._messages: dict[str, dict[str, dict]] = {}  # channel -> ts -> message, threads' replies included
        self._ephemerals: list[dict] = []
        self._views: dict[str, dict] = {}
        self.home_tab_enabled = home_tab_enabled
        self._homes: dict[str, dict] = {}  # user -> their Home tab as last published
        self._exchanged_triggers: set[str] = set()
        self._response_urls: dict[str, _ResponseUrl] = {}
        self._failures: deque[_Failure] = deque()
        self._last_post_at: dict[str, float] = {}
        self._last_ts = 0
        self._view_ids = itertools.count(1)
        # File uploads (slack_files.py)
        self.files: dict[str, SandboxFile] = {}
        self._file_ids = itertools.count(1)
        self._tickets_to_files: dict[str, str] = {}
        self._runner: web.AppRunner | None = None
        # Socket Mode
        self.envelopes: list[SocketEnvelope] = []
        self.socket_messages: list[SocketMessage] = []
        self.sockets_opened = 0
        self._tickets: set[str] = set()
        self._sockets: dict[int, _Socket] = {}
        self._pending_acks: dict[str, asyncio.Future[dict]] = {}
        self._pongs: dict[bytes, asyncio.Future[None]] = {}
        self._stopping = False
        # Methods that take the app-level token rather than the bot token.
        self._app_methods: dict[str, Callable[[dict], dict]] = {"apps.connections.open": self._connections_open}
        self._methods: dict[str, Callable[[dict], dict]] = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._post_message,
            "chat.update": self._update,
            "conversations.history": self._history,
            "chat.postEphemeral": self._post_ephemeral,
            "views.open": self._views_open,
            "views.update": self._views_update,
            "views.publish": self._views_publish,
            "usergroups.users.list": self._usergroup_users,
            "users.info": self._users_info,
            "conversations.info": self._conversations_info,
            **self._file_methods(),
        }
        self.app = web.Application()
        self.app.router.add_route("*", "/api/{method}", self._api)
        self.app.router.add_post("/response/{id}", self._response)
        self.app.router.add_get("/socket-mode/{ticket}", self._socket)
        self._add_file_routes(self.app)

    # --- serving ------------------------------------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1") -> str:
        """Serve on a free port; returns the base URL (also kept as `base_url`, which `response_url` needs)."""
        self._stopping = False
        self._runner, self.base_url = await serve(self.app, host)
        return self.base_url

    async def stop(self) -> None:
        """Stop serving. Socket Mode connections are closed first (code 1001, going away): an open WebSocket would
        otherwise hold up aiohttp's shutdown."""
        self._stopping = True
        await self.close_sockets()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def api_url(self) -> str:
        """The value for `SLACK_API_URL` (slack_sdk's `base_url`)."""
        return f"{self._base()}/api/"

    def response_url(self, channel: str, user: str, message_ts: str | None = None) -> str:
        """A `response_url` for an interaction by `user` in `channel`, as Slack puts in the payload. With
        `message_ts` (the message whose button was clicked, in the channel or one of `user`'s ephemeral messages
        there), `replace_original` and `delete_original` act on it."""
        url_id = secrets.token_urlsafe(12)
        self._response_urls[url_id] = _ResponseUrl(channel, user, message_ts, self._clock())
        return f"{self._base()}/response/{url_id}"

    def expire_response_url(self, url: str) -> None:
        """Use up `url` (as 5 posts, or 30 minutes, would): the next post to it answers `expired_url`."""
        self._response_urls[url.rpartition("/")[2]].uses = RESPONSE_URL_USES

    def _base(self) -> str:
        if self.base_url is None:
            raise RuntimeError("the sandbox's URL is unknown: serve it with start(), or set base_url after serving")
        return self.base_url

    # --- test controls ------------------------------------------------------------------------------------------------

    def fail_next(
        self, method: str | None, kind: str, times: int = 1, retry_after: float = 1.0, delay: float = 0.0
    ) -> None:
        """Make the next `times` calls of `method` (None: of any method) fail as `kind`: "rate_limited" (HTTP 429
        with `Retry-After`), "http_500", "http_503", "timeout" (answer normally, but only after `delay` seconds), or
        a Slack error code such as "channel_not_found" (HTTP 200, ok false). `delay` slows any kind."""
        if kind not in TRANSPORT_FAILURES and not _ERROR_CODE.match(kind):
            raise ValueError(f"unknown failure kind {kind!r}: one of {', '.join(TRANSPORT_FAILURES)} or an error code")
        if kind == "timeout" and delay <= 0:
            raise ValueError("a timeout needs a delay longer than the client's timeout")
        self._failures.extend(_Failure(method, kind, retry_after, delay) for _ in range(times))

    def hold_next(self, method: str) -> asyncio.Event:
        """Hold the next call of `method` at Slack until the test sets the returned event, then answer it normally:
        a call in flight for exactly as long as the test needs (`failures_left` drops when the call arrives)."""
        release = asyncio.Event()
        self._failures.append(_Failure(method, "timeout", 0.0, 0.0, release))
        return release

    @property
    def failures_left(self) -> int:
        """How many of the failures fail_next queued no request has taken yet: a test's sign that one was taken (the
        call has arrived, and is being held or failed)."""
        return len(self._failures)

    def calls_to(self, method: str) -> list[SlackCall]:
        return [call for call in self.calls if call.method == method]

    def messages(self, channel: str) -> list[dict]:
        """The channel's top-level messages as they stand now, oldest first, each with its thread's `replies`."""
        return [self._with_replies(channel, m) for m in self._messages.get(channel, {}).values() if not is_reply(m)]

    def message(self, channel: str, ts: str) -> dict | None:
        found = self._messages.get(channel, {}).get(ts)
        if found is None:
            return None
        return copy.deepcopy(found) if is_reply(found) else self._with_replies(channel, found)

    def replies(self, channel: str, ts: str) -> list[dict]:
        return [copy.deepcopy(m) for m in self._messages.get(channel, {}).values() if is_reply(m, parent=ts)]

    def write_as(self, user: str, channel: str, text: str) -> str:
        """A person writes a top-level message in the channel (not through the bot); returns its ts."""
        ts = self._next_ts()
        message = {"type": "message", "user": user, "team": self.team_id, "text": text, "ts": ts}
        self._messages.setdefault(channel, {})[ts] = message
        return ts

    def ephemerals(self, user: str | None = None) -> list[dict]:
        """Ephemeral messages (from chat.postEphemeral and ephemeral `response_url` posts), oldest first."""
        return [copy.deepcopy(e) for e in self._ephemerals if user is None or e["user"] == user]

    @property
    def opened_views(self) -> list[dict]:
        """Every modal opened, in the order opened, as it stands after any views.update."""
        return [copy.deepcopy(view) for view in self._views.values()]

    def home(self, user: str) -> dict | None:
        """The person's Home tab as last published (None: never)."""
        found = self._homes.get(user)
        return copy.deepcopy(found) if found is not None else None

    def publishes(self, user: str | None = None) -> list[SlackCall]:
        """The views.publish calls that succeeded, for `user` (None: anyone), oldest first."""
        return [
            call
            for call in self.calls_to("views.publish")
            if (call.response or {}).get("ok") and (user is None or call.args.get("user_id") == user)
        ]

    # --- HTTP ---------------------------------------------------------------------------------------------------------

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        try:
            args = await arguments(request)
        except SlackError as error:
            return self._answer(method, {}, error.body())
        token_argument = args.pop("token", None)
        token = bearer(request.headers.get("Authorization")) or token_argument
        failure = self._take_failure(method)
        if failure is not None:
            await asyncio.sleep(failure.delay)
            if failure.release is not None:
                await failure.release.wait()
            if failure.kind != "timeout":
                return self._fail(method, args, failure)
        handler = self._methods.get(method) or self._app_methods.get(method)
        if handler is None:
            return self._answer(method, args, {"ok": False, "error": "unknown_method", "req_method": method})
        if not token:
            return self._answer(method, args, SlackError("not_authed").body())
        app_level = method in self._app_methods
        expected, other = (self.app_token, self.bot_token) if app_level else (self.bot_token, self.app_token)
        if token != expected:
            # An app-level token is refused by the bot's methods, and a bot token by apps.connections.open.
            code = "not_allowed_token_type" if token == other else "invalid_auth"
            return self._answer(method, args, SlackError(code).body())
        needed = METHOD_SCOPES.get(method)
        if needed and needed not in self.scopes:
            body = {"ok": False, "error": "missing_scope", "needed": needed, "provided": ",".join(self.scopes)}
            return self._answer(method, args, body)
        if method == "chat.postMessage" and self._too_soon(args.get("channel")):
            return self._answer(method, args, {"ok": False, "error": "ratelimited"}, 429, {"Retry-After": "1"})
        try:
            body = handler(args)
        except SlackError as error:
            body = error.body()
        return self._answer(method, args, body)

    def _take_failure(self, method: str) -> _Failure | None:
        for failure in self._failures:
            if failure.method in (None, method):
                self._failures.remove(failure)
                return failure
        return None

    def _fail(self, method: str, args: dict, failure: _Failure) -> web.Response:
        if failure.kind == "rate_limited":
            # slack_sdk's retry handler parses Retry-After with int(): send whole seconds, as Slack does.
            retry_after = str(max(1, math.ceil(failure.retry_after)))
            body = {"ok": False, "error": "ratelimited"}
            return self._answer(method, args, body, 429, {"Retry-After": retry_after})
        if failure.kind.startswith("http_"):
            status = int(failure.kind.removeprefix("http_"))
            self._record(method, args, None, status)
            return web.Response(status=status, text=_HTTP_ERRORS[status])
        return self._answer(method, args, SlackError(failure.kind).body())

    def _answer(
        self, method: str, args: dict, body: dict, status: int = 200, headers: dict[str, str] | None = None
    ) -> web.Response:
        self._record(method, args, body, status)
        headers = {"X-OAuth-Scopes": ",".join(self.scopes), **(headers or {})}
        return web.json_response(body, status=status, headers=headers)

    def _record(self, method: str, args: dict, body: dict | None, status: int) -> None:
        self.calls.append(SlackCall(method, copy.deepcopy(args), copy.deepcopy(body), status, self._clock()))
        if self.observer is not None:
            self.observer(self.calls[-1])

    def _too_soon(self, channel: Any) -> bool:
        """With `channel_rate_limit`, a second post to a channel within `post_interval` of the last one is refused."""
        if not self.channel_rate_limit or not isinstance(channel, str):
            return False
        last = self._last_post_at.get(self._channel_id(channel) or channel)
        return last is not None and self._clock() - last < self.post_interval

    async def _response(self, request: web.Request) -> web.Response:
        url = self._response_urls.get(request.match_info["id"])
        if url is None:
            return web.Response(status=404, text="no_such_url")
        if url.uses >= RESPONSE_URL_USES or self._clock() - url.made_at > RESPONSE_URL_LIFETIME:
            return web.Response(status=404, text="expired_url")
        url.uses += 1
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return web.Response(status=400, text="invalid_payload")
        self.responses.append(ResponsePost(url.channel, url.user, url.message_ts, copy.deepcopy(body), self._clock()))
        self._apply_response(url, body)
        if self.observer is not None:
            self.observer(self.responses[-1])
        return web.json_response({"ok": True})

    def _apply_response(self, url: _ResponseUrl, body: dict) -> None:
        """What Slack shows after a `response_url` post: the clicked message (in the channel, or the user's ephemeral
        one) replaced or deleted, a new channel message (`response_type: in_channel`), or else an ephemeral message to
        the user."""
        channel = self._messages.setdefault(url.channel, {})
        original = channel.get(url.message_ts or "")
        ephemeral = self._ephemeral_at(url)
        if ephemeral is not None and truthy(body.get("delete_original")):
            self._ephemerals.remove(ephemeral)
        elif ephemeral is not None and truthy(body.get("replace_original")):
            ephemeral["text"] = body.get("text") or ""
            ephemeral["blocks"] = body.get("blocks") or []
        elif original is not None and truthy(body.get("delete_original")):
            del channel[original["ts"]]
        elif original is not None and truthy(body.get("replace_original")):
            original["text"] = body.get("text") or ""
            original["blocks"] = body.get("blocks") or []
        elif body.get("response_type") == "in_channel":
            thread_ts = self._thread_root(url.channel, body.get("thread_ts"))
            self._store_message(url.channel, body.get("text") or "", body.get("blocks") or [], thread_ts)
        else:
            self._ephemerals.append(self._ephemeral(url.channel, url.user, body, "response_url"))

    def _ephemeral_at(self, url: _ResponseUrl) -> dict | None:
        """The ephemeral message a response_url's click was on: the user's own, in that channel."""
        found = (
            e for e in self._ephemerals if (e["channel"], e["user"], e["ts"]) == (url.channel, url.user, url.message_ts)
        )
        return next(found, None)

    # --- methods ------------------------------------------------------------------------------------------------------

    def _connections_open(self, args: dict) -> dict:
        """A WebSocket URL for one Socket Mode connection, on this server (Slack's are `wss://wss-….slack.com/link/
        ?ticket=…`); slack_sdk connects to the URL as given."""
        ticket = secrets.token_urlsafe(12)
        self._tickets.add(ticket)
        ws_base = self._base().replace("http://", "ws://", 1).replace("https://", "wss://", 1)
        return {"ok": True, "url": f"{ws_base}/socket-mode/{ticket}"}

    def _auth_test(self, args: dict) -> dict:
        return {
            "ok": True,
            "url": f"https://{TEAM_DOMAIN}.slack.com/",
            "team": TEAM_NAME,
            "user": BOT_NAME,
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": BOT_ID,
            "is_enterprise_install": False,
        }

    def _post_message(self, args: dict) -> dict:
        channel = self._postable_channel(args.get("channel"))
        text, blocks = content(args)
        thread_ts = self._thread_root(channel, args.get("thread_ts"))
        if args.get("thread_ts") and thread_ts is None:
            raise SlackError("thread_not_found")
        message = self._store_message(channel, text or "", blocks or [], thread_ts)
        metadata = args.get("metadata")
        if metadata:
            message["metadata"] = json.loads(metadata) if isinstance(metadata, str) else metadata
        self._last_post_at[channel] = self._clock()
        return {"ok": True, "channel": channel, "ts": message["ts"], "message": copy.deepcopy(message)}

    def _history(self, args: dict) -> dict:
        """Top-level messages newest first, between `oldest` and `latest` (exclusive unless `inclusive`), `limit` a
        page (default 100, at most 999); metadata only with include_all_metadata. While older ones remain,
        `has_more` and `response_metadata.next_cursor`, which `cursor` takes to read on from where the page ended."""
        channel = args.get("channel")
        if channel not in self.channels:
            raise SlackError("channel_not_found")
        if channel not in self.member_of:
            raise SlackError("not_in_channel")
        inclusive = truthy(args.get("inclusive"))
        oldest, latest = float(args.get("oldest") or 0), float(args.get("latest") or math.inf)
        limit = min(int(args.get("limit") or HISTORY_LIMIT), HISTORY_MAX_LIMIT)
        before = _cursor_ts(args.get("cursor")) if args.get("cursor") else math.inf
        with_metadata = truthy(args.get("include_all_metadata"))
        found = [
            {k: v for k, v in copy.deepcopy(m).items() if k != "metadata" or with_metadata}
            for m in reversed(self._messages.get(channel, {}).values())
            if not is_reply(m)
            and (oldest <= float(m["ts"]) if inclusive else oldest < float(m["ts"]))
            and (float(m["ts"]) <= latest if inclusive else float(m["ts"]) < latest)
            and float(m["ts"]) < before
        ]
        answer: dict[str, Any] = {"ok": True, "messages": found[:limit], "has_more": len(found) > limit, "pin_count": 0}
        if len(found) > limit:
            answer["response_metadata"] = {"next_cursor": _cursor(found[limit - 1]["ts"])}
        return answer

    def _update(self, args: dict) -> dict:
        channel = args.get("channel")
        if channel not in self.channels:
            raise SlackError("channel_not_found")
        message = self._messages.get(channel, {}).get(str(args.get("ts")))
        if message is None:
            raise SlackError("message_not_found")
        text, blocks = content(args)
        # Slack keeps what an update leaves out: blocks unless given (an empty list removes them), text likewise.
        if text is not None:
            message["text"] = text
        if blocks is not None:
            message["blocks"] = blocks
        shown = copy.deepcopy(message)
        return {"ok": True, "channel": channel, "ts": message["ts"], "text": message["text"], "message": shown}

    def _post_ephemeral(self, args: dict) -> dict:
        channel = self._postable_channel(args.get("channel"))
        if args.get("user") not in self.users:
            raise SlackError("user_not_in_channel")
        content(args)
        ephemeral = self._ephemeral(channel, args["user"], args, "chat.postEphemeral")
        self._ephemerals.append(ephemeral)
        return {"ok": True, "message_ts": ephemeral["ts"]}

    def _views_open(self, args: dict) -> dict:
        trigger_id = args.get("trigger_id") or args.get("interactivity_pointer")
        if not isinstance(trigger_id, str) or not TRIGGER_ID.match(trigger_id):
            raise SlackError("invalid_trigger_id")
        if trigger_id in self._exchanged_triggers:
            raise SlackError("exchanged_trigger_id")
        view = checked_view(args.get("view"))
        external_id = view.get("external_id")
        if external_id and any(v["external_id"] == external_id for v in self._views.values()):
            raise SlackError("duplicate_external_id")
        self._exchanged_triggers.add(trigger_id)
        view_id = f"V{next(self._view_ids):08d}"
        self._views[view_id] = self._stored_view(view_id, view)
        return {"ok": True, "view": copy.deepcopy(self._views[view_id])}

    def _views_update(self, args: dict) -> dict:
        view_id, external_id = args.get("view_id"), args.get("external_id")
        if not view_id and not external_id:
            raise SlackError("invalid_arguments", ["[ERROR] either view_id or external_id is required"])
        stored = self._views.get(view_id) if view_id else None
        if stored is None and external_id:
            stored = next((v for v in self._views.values() if v["external_id"] == external_id), None)
        if stored is None:
            raise SlackError("not_found")
        if args.get("hash") and args["hash"] != stored["hash"]:
            raise SlackError("hash_conflict")
        view = checked_view(args.get("view"))
        view.setdefault("external_id", stored["external_id"])  # the view keeps its identity
        self._views[stored["id"]] = self._stored_view(stored["id"], view)
        return {"ok": True, "view": copy.deepcopy(self._views[stored["id"]])}

    def _views_publish(self, args: dict) -> dict:
        """A person's Home tab, published (created or replaced); `hash`, when given, must be the current one."""
        user_id = args.get("user_id")
        if not isinstance(user_id, str) or not user_id:
            raise SlackError("invalid_arguments", ["[ERROR] missing required field: user_id"])
        if user_id not in self.users:
            raise SlackError("user_not_found")
        view = checked_home_view(args.get("view"))
        if not self.home_tab_enabled:
            raise SlackError("not_enabled")
        stored = self._homes.get(user_id)
        if args.get("hash") and (stored is None or args["hash"] != stored["hash"]):
            raise SlackError("hash_conflict")
        view_id = stored["id"] if stored else f"V{next(self._view_ids):08d}"
        self._homes[user_id] = self._stored_view(view_id, view)
        return {"ok": True, "view": copy.deepcopy(self._homes[user_id])}

    def _usergroup_users(self, args: dict) -> dict:
        members = self.usergroups.get(args.get("usergroup"))
        if members is None:
            raise SlackError("no_such_subteam")
        return {"ok": True, "users": list(members)}

    def _users_info(self, args: dict) -> dict:
        user_id = args.get("user")
        if user_id == self.bot_user_id:
            return {"ok": True, "user": self._user(user_id, BOT_NAME, is_bot=True)}
        if user_id not in self.users:
            raise SlackError("user_not_found")
        return {"ok": True, "user": self._user(user_id, self.users[user_id])}

    def _conversations_info(self, args: dict) -> dict:
        channel = args.get("channel")
        if channel not in self.channels:
            raise SlackError("channel_not_found")
        return {
            "ok": True,
            "channel": {
                "id": channel,
                "name": self.channels[channel],
                "is_channel": True,
                "is_group": False,
                "is_im": False,
                "is_private": False,
                "is_archived": False,
                "is_member": channel in self.member_of,
                "context_team_id": self.team_id,
            },
        }

    # --- the workspace ------------------------------------------------------------------------------------------------

    def _channel_id(self, channel: str) -> str | None:
        """A channel id from an id or a name ("orders" or "#orders"), as chat.postMessage accepts either."""
        if channel in self.channels:
            return channel
        name = channel.removeprefix("#")
        return next((cid for cid, cname in self.channels.items() if cname == name), None)

    def _postable_channel(self, channel: Any) -> str:
        found = self._channel_id(channel) if isinstance(channel, str) else None
        if found is None:
            raise SlackError("channel_not_found")
        if found not in self.member_of:
            raise SlackError("not_in_channel")
        return found

    def _thread_root(self, channel: str, ts: Any) -> str | None:
        """The thread a `thread_ts` names, if its message exists: a reply's ts stands for its parent's thread."""
        parent = self._messages.get(channel, {}).get(str(ts)) if ts else None
        return None if parent is None else parent.get("thread_ts", parent["ts"])

    def _store_message(self, channel: str, text: str, blocks: list, thread_ts: str | None) -> dict:
        ts = self._next_ts()
        message = {
            "type": "message",
            "user": self.bot_user_id,
            "bot_id": BOT_ID,
            "app_id": API_APP_ID,
            "team": self.team_id,
            "text": text,
            "blocks": blocks,
            "ts": ts,
        }
        if thread_ts:
            message["thread_ts"] = thread_ts
            parent = self._messages[channel][thread_ts]  # found by _thread_root
            parent["thread_ts"] = thread_ts
            parent["reply_count"] = parent.get("reply_count", 0) + 1
            parent["latest_reply"] = ts
        self._messages.setdefault(channel, {})[ts] = message
        return message

    def _with_replies(self, channel: str, message: dict) -> dict:
        return {**copy.deepcopy(message), "replies": self.replies(channel, message["ts"])}

    def _ephemeral(self, channel: str, user: str, content: dict, source: str) -> dict:
        ephemeral = {
            "channel": channel,
            "user": user,
            "ts": self._next_ts(),
            "text": content.get("text") or "",
            "blocks": content.get("blocks") or [],
            "source": source,
        }
        if content.get("thread_ts"):
            ephemeral["thread_ts"] = content["thread_ts"]
        return ephemeral

    def _user(self, user_id: str, real_name: str, *, is_bot: bool = False) -> dict:
        handle = real_name.lower().replace(" ", ".")
        return {
            "id": user_id,
            "team_id": self.team_id,
            "name": handle,
            "real_name": real_name,
            "deleted": False,
            "is_bot": is_bot,
            "tz": USER_TIMEZONE,
            "profile": {"real_name": real_name, "display_name": handle, "team": self.team_id},
        }

    def _next_ts(self) -> str:
        """Message timestamps are Slack's "seconds.micro" strings, unique and increasing even under a frozen clock."""
        self._last_ts = max(int(self._clock() * 1_000_000), self._last_ts + 1)
        return f"{self._last_ts // 1_000_000}.{self._last_ts % 1_000_000:06d}"

    def _stored_view(self, view_id: str, view: dict) -> dict:
        """A modal as Slack keeps and returns it: the app's view plus the fields Slack adds; a new hash each time."""
        defaults = {
            "close": None,
            "submit": None,
            "private_metadata": "",
            "callback_id": "",
            "external_id": "",
            "clear_on_close": False,
            "notify_on_close": False,
        }
        return {
            **defaults,
            **view,
            "id": view_id,
            "team_id": self.team_id,
            "state": {"values": {}},
            "hash": f"{int(self._clock())}.{secrets.token_hex(4)}",
            "root_view_id": view_id,
            "previous_view_id": None,
            "app_id": API_APP_ID,
            "bot_id": BOT_ID,
        }


def _cursor(ts: str) -> str:
    """A page's next_cursor: opaque to the client, here (as Slack's look) base64 of "next_ts:" and where to go on."""
    return base64.b64encode(f"next_ts:{ts}".encode()).decode()


def _cursor_ts(cursor: str) -> float:
    try:
        kind, _, ts = base64.b64decode(cursor, validate=True).decode().partition(":")
        if kind != "next_ts":
            raise ValueError(kind)
        return float(ts)
    except ValueError:
        raise SlackError("invalid_cursor") from None
