"""Sharing a file in a thread, through Slack's current upload flow (slack_sdk's `files_upload_v2`):
files.getUploadURLExternal, one POST of the bytes to the URL it answers, then files.completeUploadExternal, which
shares the file in the channel's thread. Scope `files:write`.

Raises one of UPLOAD_ERRORS when the upload fails: SlackApiError (Slack refused a step, or answered 5xx),
SlackRequestError (the upload URL did not take the bytes), aiohttp.ClientError or TimeoutError (Slack out of reach).
"""

from __future__ import annotations

import aiohttp
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.web.async_client import AsyncWebClient

UPLOAD_ERRORS = (SlackApiError, SlackRequestError, aiohttp.ClientError, TimeoutError)


async def share_in_thread(
    client: AsyncWebClient,
    *,
    channel: str,
    thread_ts: str,
    filename: str,
    content: bytes,
    title: str,
    alt_text: str,
) -> str:
    """Upload `content` and share it in the thread of `thread_ts` in `channel`; returns the file's id."""
    response = await client.files_upload_v2(
        channel=channel, thread_ts=thread_ts, filename=filename, content=content, title=title, alt_txt=alt_text
    )
    return response["file"]["id"]
