"""Reading a request body with a size limit, for the routes that take bodies from outside (Shopify's webhooks,
Slack's requests)."""

from __future__ import annotations

from aiohttp import web


async def read_at_most(request: web.Request, limit: int) -> bytes | None:
    """The body, or None when it is longer than `limit`: checked as it arrives, so a chunked body (no
    Content-Length) is cut off at the limit too, and the route answers with its own 413."""
    if request.content_length is not None and request.content_length > limit:
        return None
    body = bytearray()
    async for chunk in request.content.iter_any():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)
