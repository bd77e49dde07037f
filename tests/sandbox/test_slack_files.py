"""The sandbox Slack's file upload flow, over real HTTP: slack_sdk's files_upload_v2 walks it as it walks Slack's
(files.getUploadURLExternal, a POST to the upload URL, files.completeUploadExternal), and each step refuses what Slack
refuses."""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import AsyncIterator

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.sandbox.slack import SandboxSlack
from bot.sandbox.slack_files import png_size

CHANNEL = "C0ORDERS"


def tiny_png(width: int, height: int) -> bytes:
    """A valid greyscale PNG of the given size."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\xff" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


@pytest.fixture
async def slack() -> AsyncIterator[SandboxSlack]:
    sandbox = SandboxSlack(channels={CHANNEL: "orders", "C0ELSEWHERE": "elsewhere"}, member_of={CHANNEL})
    await sandbox.start()
    yield sandbox
    await sandbox.stop()


@pytest.fixture
def client(slack: SandboxSlack) -> AsyncWebClient:
    return AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)


async def refused(call) -> dict:
    with pytest.raises(SlackApiError) as raised:
        await call
    return raised.value.response.data


async def test_files_upload_v2_shares_the_file_in_a_thread(slack: SandboxSlack, client: AsyncWebClient):
    parent = (await client.chat_postMessage(channel=CHANNEL, text="Daily digest"))["ts"]
    content = tiny_png(40, 20)
    response = await client.files_upload_v2(
        channel=CHANNEL, thread_ts=parent, filename="chart.png", content=content, title="Chart", alt_txt="a chart"
    )
    shared = response["file"]
    assert (shared["title"], shared["mimetype"], shared["size"]) == ("Chart", "image/png", len(content))
    (asked,) = slack.calls_to("files.getUploadURLExternal")
    assert asked.args["filename"] == "chart.png" and int(asked.args["length"]) == len(content)
    assert asked.response["upload_url"].startswith(f"{slack.base_url}/upload/v1/")
    assert asked.response["file_id"] == shared["id"]
    (reply,) = slack.replies(CHANNEL, parent)
    assert reply["upload"] is True and reply["files"][0]["id"] == shared["id"]
    assert (reply["files"][0]["original_w"], reply["files"][0]["original_h"]) == (40, 20)
    assert slack.files[shared["id"]].content == content and slack.files[shared["id"]].alt_txt == "a chart"
    assert png_size(content) == (40, 20) and png_size(b"not a png") is None


async def test_without_a_channel_the_file_stays_private(slack: SandboxSlack, client: AsyncWebClient):
    response = await client.files_upload_v2(filename="notes.txt", content="hello")
    assert response["file"]["mimetype"] == "text/plain" and response["file"]["channels"] == []
    assert slack.messages(CHANNEL) == []


async def test_the_upload_url_takes_a_multipart_form_and_answers_as_slack_does(
    slack: SandboxSlack, client: AsyncWebClient
):
    url = await client.files_getUploadURLExternal(filename="chart.png", length=5)
    form = aiohttp.FormData()
    form.add_field("filename", b"12345", filename="chart.png", content_type="image/png")
    async with aiohttp.ClientSession() as http, http.post(url["upload_url"], data=form) as answer:
        assert (answer.status, await answer.text()) == (200, "OK - 5")
    done = await client.files_completeUploadExternal(files=[{"id": url["file_id"]}], channel_id=CHANNEL)
    assert done["files"][0]["title"] == "chart.png" and slack.files[url["file_id"]].content == b"12345"
    async with aiohttp.ClientSession() as http, http.post(url["upload_url"], data=b"again") as answer:
        assert answer.status == 404  # the URL is spent once the upload is finished


async def test_each_step_refuses_what_slack_refuses(slack: SandboxSlack, client: AsyncWebClient):
    missing = await refused(client.api_call("files.getUploadURLExternal", params={"filename": "a.png"}))
    assert missing["error"] == "invalid_arguments"
    assert missing["response_metadata"]["messages"] == ["[ERROR] missing required field: length"]

    url = await client.files_getUploadURLExternal(filename="a.png", length=3)
    not_uploaded = await refused(client.files_completeUploadExternal(files=[{"id": url["file_id"]}]))
    assert not_uploaded["error"] == "file_not_found"
    async with aiohttp.ClientSession() as http, http.post(url["upload_url"], data=b"abc") as answer:
        assert answer.status == 200
    elsewhere = await refused(client.files_completeUploadExternal(files=[{"id": url["file_id"]}], channel_id="C0NOPE"))
    assert elsewhere["error"] == "channel_not_found"
    outside = await refused(
        client.files_completeUploadExternal(files=[{"id": url["file_id"]}], channel_id="C0ELSEWHERE")
    )
    assert outside["error"] == "not_in_channel"
    no_thread = await refused(
        client.files_completeUploadExternal(files=[{"id": url["file_id"]}], channel_id=CHANNEL, thread_ts="1.000001")
    )
    assert no_thread["error"] == "thread_not_found"
    await client.files_completeUploadExternal(files=[{"id": url["file_id"]}], channel_id=CHANNEL)
    twice = await refused(client.files_completeUploadExternal(files=[{"id": url["file_id"]}], channel_id=CHANNEL))
    assert twice["error"] == "file_not_found"  # "This method can only be called once."
    unknown = await refused(
        client.api_call("files.completeUploadExternal", params={"files": json.dumps([{"id": "F1"}])})
    )
    assert unknown["error"] == "file_not_found"


async def test_both_methods_need_files_write():
    slack = SandboxSlack(scopes=("chat:write",))
    await slack.start()
    try:
        client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
        for call in (
            client.files_getUploadURLExternal(filename="a.png", length=3),
            client.files_completeUploadExternal(files=[{"id": "F1"}]),
        ):
            answer = await refused(call)
            assert (answer["error"], answer["needed"]) == ("missing_scope", "files:write")
        assert slack.files == {}
    finally:
        await slack.stop()
