"""The Slack side of the server: Web API clients, the Bolt app, and the aiohttp route that feeds it.

Everything is passed explicitly from Settings: AsyncApp would otherwise read SLACK_BOT_TOKEN and
SLACK_SIGNING_SECRET from the environment on its own (DESIGN §6).
"""

from __future__ import annotations

import logging
import re

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import Settings

log = logging.getLogger(__name__)

SLACK_TIMEOUT = 10  # seconds per Web API call
# The bot scopes the code uses (manifest.yml asks for exactly these; a test keeps the two equal), and what for.
BOT_SCOPES = {
    "chat:write": "post alerts, thread replies and answers",
    "commands": "the /orders command",
    "usergroups:read": "admins named by user group in SLACK_ADMINS",
    "channels:history": "finding an alert whose post was interrupted, in a public channel",
    "groups:history": "finding an alert whose post was interrupted, in a private channel",
}
MAX_SLACK_BODY = 1024 * 1024  # Slack's interaction payloads are a few KB; a modal's state at most tens of KB
_TIMESTAMP = re.compile(r"^[0-9]{1,12}$")
_SIGNATURE = re.compile(r"^v0=[0-9a-f]{64}$")


def web_client(settings: Settings, *, retry_rate_limits: bool = True) -> AsyncWebClient:
    """A Web API client for SLACK_API_URL. Listeners' calls wait out a 429 (Retry-After) and retry; the outbox's
    client does not, because the outbox paces and retries itself without holding up other messages."""
    handlers = [AsyncConnectionErrorRetryHandler(max_retry_count=1)]
    if retry_rate_limits:
        handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=2))
    return AsyncWebClient(
        token=settings.slack_bot_token,
        base_url=settings.slack_api_url,
        timeout=SLACK_TIMEOUT,
        retry_handlers=handlers,
    )


def bolt_app(settings: Settings, client: AsyncWebClient) -> AsyncApp:
    quiet = logging.getLogger("orderbot.bolt")
    # Bolt logs a refused request's whole body at INFO: personal data (DESIGN §6). Warnings and errors only.
    quiet.setLevel(logging.WARNING)
    return AsyncApp(  # the token comes with the client
        signing_secret=settings.slack_signing_secret,
        client=client,
        logger=quiet,
        name="orderbot",
    )


def slack_route(app: AsyncApp) -> web.RequestHandler:
    """POST /slack/events: check the headers Bolt mishandles (a 500 instead of a 401, DESIGN §6), then dispatch.
    Bolt itself checks the signature and the 5-minute timestamp window."""

    async def handle(request: web.Request) -> web.Response:
        timestamp = request.headers.get("X-Slack-Request-Timestamp", "")
        signature = request.headers.get("X-Slack-Signature", "")
        if not _TIMESTAMP.match(timestamp) or not _SIGNATURE.match(signature):
            return web.json_response({"error": "invalid signature"}, status=401)
        if (request.content_length or 0) > MAX_SLACK_BODY:
            return web.json_response({"error": "request too large"}, status=413)
        response = await app.async_dispatch(await to_bolt_request(request))
        return await to_aiohttp_response(response)

    return handle
