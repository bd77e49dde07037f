"""Find a message orderbot posted earlier in a channel, by its metadata: a post whose answer was lost may have reached
Slack, and must be found rather than posted twice (an alert by the outbox, the day's digest).

conversations.history answers newest first, a page at a time; the search follows `response_metadata.next_cursor` back
to the time bound, and stops after HISTORY_PAGES pages (a channel that busy since the post is rare; the caller then
posts again: a second message rather than none).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger(__name__)

HISTORY_PAGE = 200  # messages a call (Slack advises no more than 200)
HISTORY_PAGES = 10  # calls a search: up to 2,000 messages posted since


async def find_message(
    client: AsyncWebClient,
    channel: str,
    *,
    since: float,
    matches: Callable[[dict[str, Any]], bool],
    pages: int = HISTORY_PAGES,
) -> dict[str, Any] | None:
    """The newest top-level message of `channel` posted after `since` (Unix seconds) that `matches` (it is given
    the message with its metadata), or None. Slack's errors (SlackApiError) and transport failures reach the caller."""
    cursor = None
    for _ in range(pages):
        response = await client.conversations_history(
            channel=channel, oldest=f"{since:.6f}", include_all_metadata=True, limit=HISTORY_PAGE, cursor=cursor
        )
        for message in response.get("messages") or ():
            if matches(message):
                return message
        cursor = (response.get("response_metadata") or {}).get("next_cursor")
        if not response.get("has_more") or not cursor:
            return None
    log.info("stopped looking through %s after %d pages of messages; none was the one sought", channel, pages)
    return None


def has_metadata(message: dict[str, Any], event_type: str, **payload: Any) -> bool:
    """Whether the message carries Slack message metadata of `event_type` whose payload holds `payload`."""
    metadata = message.get("metadata") or {}
    event_payload = metadata.get("event_payload") or {}
    return metadata.get("event_type") == event_type and all(event_payload.get(k) == v for k, v in payload.items())
