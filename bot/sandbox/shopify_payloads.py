"""Webhook deliveries as Shopify sends them: the headers of a signed delivery (tests, benchmarks, the demo)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from bot.shopify.version import API_VERSION
from bot.shopify.webhooks import sign


def webhook_headers(
    body: bytes,
    *,
    topic: str,
    secret: str,
    shop: str,
    api_version: str = API_VERSION,
    webhook_id: str | None = None,
    event_id: str | None = None,
) -> dict[str, str]:
    """Shopify signs the body only (HMAC-SHA256, base64); ids are fresh unless given."""
    return {
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": sign(body, secret),
        "X-Shopify-Shop-Domain": shop,
        "X-Shopify-Webhook-Id": webhook_id or str(uuid.uuid4()),
        "X-Shopify-Event-Id": event_id or str(uuid.uuid4()),
        "X-Shopify-Triggered-At": datetime.now(UTC).isoformat(),
        "X-Shopify-API-Version": api_version,
        "Content-Type": "application/json",
    }
