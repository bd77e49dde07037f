"""Slack's message text (mrkdwn), pure: shop and user text escaped so it cannot format, link or mention, and people
named by mention."""

from __future__ import annotations

import re

NAME_LIMIT = 80  # how long one name may be in a line
_SLACK_USER_ID = re.compile(r"^[UW][A-Z0-9]+$")


def escape_mrkdwn(text: str) -> str:
    """Slack's three control characters as entities, so shop and user text cannot format, link or mention."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def safe(text: str, limit: int = NAME_LIMIT) -> str:
    """Shop or user text for mrkdwn: clipped, then escaped."""
    return escape_mrkdwn(clip(text, limit))


def person(user: str) -> str:
    """A Slack user id as a mention; anything else as plain text."""
    return f"<@{user}>" if _SLACK_USER_ID.match(user) else safe(user)
