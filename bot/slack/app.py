"""The Slack side of the server: Web API clients, the Bolt app, and the aiohttp route that feeds it.

Everything is passed explicitly from Settings: AsyncApp would otherwise read SLACK_BOT_TOKEN and
SLACK_SIGNING_SECRET from the environment on its own.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncApp
from slack_bolt.middleware.async_middleware import AsyncMiddleware
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import Settings
from bot.request_body import read_at_most
from bot.slack.proxies import ProxyRoutes, use_proxy_for

log = logging.getLogger(__name__)

SLACK_TIMEOUT = 10  # seconds per Web API call
# The bot scopes the code uses (manifest.yml asks for exactly these; a test keeps the two equal), and what for.
BOT_SCOPES = {
    "chat:write": "post alerts, thread replies and answers",
    "commands": "the /orders command",
    "usergroups:read": "admins named by user group in SLACK_ADMINS",
    "channels:history": "finding an alert whose post was interrupted, in a public channel",
    "groups:history": "finding an alert whose post was interrupted, in a private channel",
    "files:write": "the daily digest's chart, shared in its thread",
}
MAX_SLACK_BODY = 1024 * 1024  # Slack's interaction payloads are a few KB; a modal's state at most tens of KB
REPLAY_WINDOW = 5 * 60  # seconds either side of its timestamp during which Bolt accepts a signed request
_TIMESTAMP = re.compile(r"^[0-9]{1,12}$")
_SIGNATURE = re.compile(r"^v0=[0-9a-f]{64}$")


def web_client(settings: Settings, *, retry_rate_limits: bool = True) -> AsyncWebClient:
    """A Web API client for SLACK_API_URL. Listeners' calls wait out a 429 (Retry-After) and retry; the outbox's
    client does not, because the outbox paces and retries itself without holding up other messages. Its proxy is the
    one HTTPS_PROXY and NO_PROXY give for SLACK_API_URL (bot/slack/proxies.py)."""
    handlers = [AsyncConnectionErrorRetryHandler(max_retry_count=1)]
    if retry_rate_limits:
        handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=2))
    client = AsyncWebClient(
        token=settings.slack_bot_token,
        base_url=settings.slack_api_url,
        timeout=SLACK_TIMEOUT,
        retry_handlers=handlers,
    )
    return use_proxy_for(client, settings.slack_api_url)


def bolt_app(settings: Settings, client: AsyncWebClient) -> AsyncApp:
    quiet = logging.getLogger("orderbot.bolt")
    # Bolt logs a refused request's whole body at INFO: personal data. Warnings and errors only.
    quiet.setLevel(logging.WARNING)
    app = AsyncApp(  # the token comes with the client
        signing_secret=settings.slack_signing_secret,
        client=client,
        logger=quiet,
        name="orderbot",
        before_authorize=ProxyRoutes(),  # the client Bolt builds for each request, before its auth.test uses it
    )
    app.use(ReplayGuard())  # after Bolt's own middleware: the signature is checked by then
    return app


class ReplayGuard(AsyncMiddleware):
    """Refuses a signed request seen before (401). Bolt accepts a request for 5 minutes after its timestamp, so the
    same bytes sent again would click the button again; Slack never sends one request twice (an honest second click
    has its own timestamp and signature). Runs after Bolt verified the signature, so only signed requests are
    remembered, each until its timestamp leaves the window. Socket Mode requests carry no signature and pass."""

    def __init__(self, clock: Callable[[], float] = time.time):
        self._clock = clock
        self._seen: dict[str, float] = {}  # signature -> when it stops being accepted anyway, oldest first

    async def async_process(
        self, *, req: AsyncBoltRequest, resp: BoltResponse, next: Callable[[], Awaitable[BoltResponse]]
    ) -> BoltResponse:
        signature = (req.headers.get("x-slack-signature") or [""])[0]
        if req.mode == "socket_mode" or not signature:
            return await next()
        timestamp = int((req.headers.get("x-slack-request-timestamp") or ["0"])[0])
        if not self.first_time(signature, expires=timestamp + REPLAY_WINDOW):
            log.warning("refused a Slack request received before (a replay)")
            return BoltResponse(status=401, body={"error": "request already received"})
        return await next()

    def first_time(self, signature: str, *, expires: float) -> bool:
        now = self._clock()
        while self._seen and next(iter(self._seen.values())) < now:
            del self._seen[next(iter(self._seen))]
        if signature in self._seen:
            return False
        self._seen[signature] = expires
        return True


def slack_route(app: AsyncApp) -> web.RequestHandler:
    """POST /slack/events: check what Bolt mishandles (a 500 instead of a 401 for odd headers; a 500 for
    a body that is not UTF-8, or whose `payload` is not a JSON object, which Bolt parses before it checks the
    signature), then dispatch. Bolt itself checks the signature and the 5-minute timestamp window."""

    async def handle(request: web.Request) -> web.Response:
        timestamp = request.headers.get("X-Slack-Request-Timestamp", "")
        signature = request.headers.get("X-Slack-Signature", "")
        if not _TIMESTAMP.match(timestamp) or not _SIGNATURE.match(signature):
            return web.json_response({"error": "invalid signature"}, status=401)
        body = await read_at_most(request, MAX_SLACK_BODY)
        if body is None:
            refused = web.json_response({"error": "request too large"}, status=413)
            refused.force_close()  # the rest of the body is not read: the connection ends with the answer
            return refused
        try:
            bolt_request = AsyncBoltRequest(body=body.decode(), query=request.query_string, headers=request.headers)
        except (ValueError, TypeError, AttributeError, RecursionError):  # not UTF-8, not JSON, not Slack's shape
            return web.json_response({"error": "malformed request"}, status=400)
        return await to_aiohttp_response(await app.async_dispatch(bolt_request))

    return handle
