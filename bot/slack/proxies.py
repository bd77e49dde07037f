"""slack_sdk's clients sent through the proxy bot/domain/proxies.py chooses for their URL, NO_PROXY included.

slack_sdk reads HTTPS_PROXY (else HTTP_PROXY) whenever a client is built with `proxy=None`, and ignores NO_PROXY: a
Slack named in NO_PROXY (the sandbox on 127.0.0.1) would be asked through the proxy all the same. "No proxy" can only
be said by setting a client's `proxy` once it is built. Bolt builds a Web API client and a `respond()` for each
request it receives, from our client's settings and so with `proxy=None` again: ProxyRoutes sets theirs.

The Web API client's choice also carries its file uploads (files_upload_v2 posts to the URL Slack answers with the
client's proxy): it is made for SLACK_API_URL's host, which in production is another host of the same domain.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from ssl import SSLContext
from typing import Any, Protocol, TypeVar
from urllib.request import getproxies_environment

from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_bolt.middleware.async_middleware import AsyncMiddleware
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.webhook.async_client import AsyncWebhookClient, WebhookResponse

from bot.domain.proxies import proxy_for

RESPOND_TIMEOUT = 30  # seconds: what Bolt's own respond() allows (slack_sdk's default)


class _HasProxy(Protocol):
    proxy: str | None


Client = TypeVar("Client", bound=_HasProxy)


def use_proxy_for(client: Client, url: str) -> Client:
    """`client`, its proxy the one the environment gives for `url` (None: straight there)."""
    client.proxy = proxy_for(url, getproxies_environment())
    return client


def webhook_client(url: str, *, timeout: int, ssl: SSLContext | None) -> AsyncWebhookClient:
    """A client for a response_url, through the proxy chosen for it."""
    return use_proxy_for(AsyncWebhookClient(url, timeout=timeout, ssl=ssl), url)


class RoutedRespond(AsyncRespond):
    """Bolt's `respond()` (the keyword form orderbot uses), posted through the proxy chosen for the response_url."""

    async def __call__(self, text: str = "", **fields: Any) -> WebhookResponse:  # type: ignore[override]
        webhook = webhook_client(self.response_url or "", timeout=RESPOND_TIMEOUT, ssl=self.ssl)
        return await webhook.send_dict({"text": text, **fields})  # fields left None are not sent


class ProxyRoutes(AsyncMiddleware):
    """Gives each request's Web API client and `respond()` the proxy chosen for their URLs. Runs before Bolt's
    authorization (`before_authorize`), whose auth.test goes through that client."""

    async def async_process(
        self, *, req: AsyncBoltRequest, resp: BoltResponse, next: Callable[[], Awaitable[BoltResponse]]
    ) -> BoltResponse:
        client = req.context.client
        use_proxy_for(client, client.base_url)
        if req.context.response_url:
            req.context["respond"] = RoutedRespond(response_url=req.context.response_url, ssl=client.ssl)
        return await next()
