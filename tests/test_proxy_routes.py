"""The proxy variables on the wire: Slack's Web API, Bolt's per-request client and respond(), a card's response_url
and Shopify's GraphQL go straight to a host NO_PROXY names, and through HTTPS_PROXY to any other.

All offline: a recorder on 127.0.0.1 stands in for both the proxy and the server. The request line it receives says
which it was: a proxy is sent the absolute URL (`POST http://slack.test/api/auth.test`), a server only the path.
A proxy variable pointing nowhere (port 9) fails any request that would go through it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import Settings
from bot.shopify.client import client_from_settings
from bot.slack.app import web_client
from bot.slack.proxies import ProxyRoutes, RoutedRespond, webhook_client

NOWHERE = "http://127.0.0.1:9"  # nothing listens on the discard port
ANSWER = {"ok": True, "data": {"shop": {"name": "Juniper & Oak"}}}  # enough for Slack's and Shopify's clients


class Recorder:
    """An HTTP server on 127.0.0.1 that notes each request line it is sent and answers 200 with ANSWER."""

    def __init__(self) -> None:
        self.request_lines: list[str] = []
        self.url = ""

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._answer, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def stop(self) -> None:
        self._server.close()
        await self._server.wait_closed()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.request_lines.append((await reader.readline()).decode().strip())
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        await reader.readexactly(length)
        body = json.dumps(ANSWER).encode()
        head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        writer.write(head.encode() + b"Connection: close\r\n\r\n" + body)
        await writer.drain()
        writer.close()


@pytest.fixture
async def recorder() -> AsyncIterator[Recorder]:
    server = Recorder()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture(params=["upper", "lower"])
def proxy_env(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch):
    """Sets the proxy variables, spelt in upper or lower case (the other spelling unset)."""
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)

    def set_proxy(https_proxy: str, no_proxy: str) -> None:
        spell = str.upper if request.param == "upper" else str.lower
        monkeypatch.setenv(spell("https_proxy"), https_proxy)
        monkeypatch.setenv(spell("no_proxy"), no_proxy)

    return set_proxy


async def test_the_web_api_goes_straight_to_a_slack_no_proxy_names(recorder: Recorder, proxy_env):
    proxy_env(NOWHERE, "127.0.0.1,localhost")
    client = web_client(Settings(slack_bot_token="xoxb-test", slack_api_url=f"{recorder.url}/api/"))
    assert (await client.auth_test())["ok"]
    assert recorder.request_lines == ["POST /api/auth.test HTTP/1.1"]


async def test_the_web_api_goes_through_the_proxy_to_any_other_slack(recorder: Recorder, proxy_env):
    proxy_env(recorder.url, "localhost,.corp.example")
    client = web_client(Settings(slack_bot_token="xoxb-test", slack_api_url="http://slack.test/api/"))
    assert (await client.auth_test())["ok"]
    assert recorder.request_lines == ["POST http://slack.test/api/auth.test HTTP/1.1"]


async def _through_proxy_routes(client: AsyncWebClient, response_url: str) -> AsyncBoltRequest:
    """A Bolt request with its own client (built as Bolt builds it: proxy=None, so slack_sdk's HTTPS_PROXY) and a
    response_url, after ProxyRoutes."""
    body = json.dumps({"type": "block_actions", "response_url": response_url})
    request = AsyncBoltRequest(body=f"payload={body}", headers={"content-type": ["application/x-www-form-urlencoded"]})
    request.context["client"] = client

    async def next_() -> BoltResponse:
        return BoltResponse(status=200)

    await ProxyRoutes().async_process(req=request, resp=BoltResponse(status=200), next=next_)
    return request


async def test_each_bolt_requests_client_and_respond_go_straight_to_a_slack_no_proxy_names(
    recorder: Recorder, proxy_env
):
    proxy_env(NOWHERE, "127.0.0.1")
    request = await _through_proxy_routes(AsyncWebClient(base_url=f"{recorder.url}/api/"), f"{recorder.url}/hook/1")
    assert (await request.context.client.auth_test())["ok"]
    assert isinstance(request.context.respond, RoutedRespond)
    assert (await request.context.respond(text="done", replace_original=True)).status_code == 200
    assert recorder.request_lines == ["POST /api/auth.test HTTP/1.1", "POST /hook/1 HTTP/1.1"]


async def test_a_response_url_on_another_host_goes_through_the_proxy(recorder: Recorder, proxy_env):
    """The Web API's host is in NO_PROXY, the response_url's is not: each gets its own way."""
    proxy_env(recorder.url, "127.0.0.1")
    request = await _through_proxy_routes(AsyncWebClient(base_url=f"{recorder.url}/api/"), "http://hooks.test/h/1")
    assert (await request.context.client.auth_test())["ok"]
    assert (await request.context.respond(text="done")).status_code == 200
    assert recorder.request_lines == ["POST /api/auth.test HTTP/1.1", "POST http://hooks.test/h/1 HTTP/1.1"]


async def test_a_cards_response_url_gets_the_proxy_chosen_for_it(recorder: Recorder, proxy_env):
    """The client that re-draws an `/orders show` card (SlackListeners) through its response_url."""
    proxy_env(recorder.url, "localhost")
    assert (await webhook_client("http://hooks.test/card/1", timeout=5, ssl=None).send_dict({"text": "a"})).body
    proxy_env(NOWHERE, "127.0.0.1")
    assert (await webhook_client(f"{recorder.url}/card/2", timeout=5, ssl=None).send_dict({"text": "a"})).body
    assert recorder.request_lines == ["POST http://hooks.test/card/1 HTTP/1.1", "POST /card/2 HTTP/1.1"]


@pytest.mark.parametrize("through_proxy", [False, True])
async def test_shopify_goes_through_the_proxy_unless_no_proxy_names_the_shop(
    recorder: Recorder, proxy_env, through_proxy: bool
):
    shop_url = "http://shop.test" if through_proxy else recorder.url
    proxy_env(recorder.url if through_proxy else NOWHERE, "127.0.0.1,localhost")
    settings = Settings(shopify_shop="shop.myshopify.com", shopify_access_token="shpat_test", shopify_api_url=shop_url)
    client = client_from_settings(settings)
    try:
        assert await client.execute("query ShopName { shop { name } }") == ANSWER["data"]
    finally:
        await client.close()
    path = settings.graphql_url.removeprefix(shop_url)
    assert recorder.request_lines == [f"POST {settings.graphql_url if through_proxy else path} HTTP/1.1"]
