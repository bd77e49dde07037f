"""The sandbox shop's webhook subscriptions: the `webhookSubscriptions` connection and the
`webhookSubscriptionCreate` / `webhookSubscriptionDelete` mutations, with the Admin schema's field names.

As in Shopify, a subscription belongs to the app that created it (the sandbox serves one app), a topic can be
subscribed once per address ("Address for this topic has already been taken"), and HTTP addresses must be https.
The mandatory privacy topics (`customers/redact`, …) are not in the `WebhookSubscriptionTopic` enum: the schema
itself refuses them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from bot.sandbox.pagination import connection
from bot.sandbox.state import legacy_id
from bot.sandbox.views import _iso
from bot.shopify.version import API_VERSION  # what Shopify reports: the version of the app that subscribed

if TYPE_CHECKING:
    from bot.sandbox.shopify import SandboxShopify


class WebhookSubscriptions:
    """Subscriptions by id, in creation order, in the snake_case shape the rest of the sandbox uses."""

    def __init__(self, now: Callable[[], datetime], gid: Callable[[str], str]):
        self._now = now
        self._gid = gid
        self.by_id: dict[str, dict] = {}

    def add(
        self,
        topic: str,
        uri: str,
        *,
        format: str = "JSON",
        filter: str | None = None,
        include_fields: list[str] | None = None,
        metafield_namespaces: list[str] | None = None,
        name: str | None = None,
    ) -> dict:
        """Store a subscription without checks (tests set up what a shop already has this way)."""
        at = self._now()
        subscription = {
            "id": self._gid("WebhookSubscription"),
            "topic": topic,
            "uri": uri,
            "format": format,
            "filter": filter,
            "include_fields": list(include_fields or ()),
            "metafield_namespaces": list(metafield_namespaces or ()),
            "name": name,
            "created_at": at,
            "updated_at": at,
        }
        self.by_id[subscription["id"]] = subscription
        return subscription

    def pairs(self) -> set[tuple[str, str]]:
        """(topic, uri) of every subscription."""
        return {(s["topic"], s["uri"]) for s in self.by_id.values()}

    # --- GraphQL ----------------------------------------------------------------------------------------------------

    def connection(
        self,
        info: Any,
        topics: list[str] | None = None,
        uri: str | None = None,
        format: str | None = None,
        sortKey: str = "CREATED_AT",
        reverse: bool = False,
        **page: Any,
    ) -> dict:
        def key(s: dict) -> list:
            id_key = legacy_id(s["id"])
            return [id_key] if sortKey == "ID" else [_iso(s["created_at"]), id_key]

        found = [
            s
            for s in self.by_id.values()
            if (topics is None or s["topic"] in topics)
            and (uri is None or s["uri"] == uri)
            and (format is None or s["format"] == format)
        ]
        found.sort(key=key, reverse=reverse)
        return connection([view(s) for s in found], [key(s) for s in found], descending=reverse, **page)

    def one(self, info: Any, id: str) -> dict | None:
        found = self.by_id.get(id)
        return view(found) if found else None


def view(subscription: dict) -> dict:
    uri = subscription["uri"]
    return {
        "__typename": "WebhookSubscription",
        "id": subscription["id"],
        "legacyResourceId": str(legacy_id(subscription["id"])),
        "topic": subscription["topic"],
        "uri": uri,
        "callbackUrl": uri,  # deprecated in favour of `uri`
        "endpoint": {"__typename": "WebhookHttpEndpoint", "callbackUrl": uri},
        "format": subscription["format"],
        "filter": subscription["filter"],
        "includeFields": list(subscription["include_fields"]),
        "metafieldNamespaces": list(subscription["metafield_namespaces"]),
        "metafields": [],
        "name": subscription["name"],
        "apiVersion": {"handle": API_VERSION, "displayName": API_VERSION, "supported": True},
        "createdAt": _iso(subscription["created_at"]),
        "updatedAt": _iso(subscription["updated_at"]),
    }


# --- mutation handlers (called as handler(shop, **arguments), like those in mutations.py) ---------------------------


def subscription_create(shop: SandboxShopify, topic: str, webhookSubscription: dict) -> dict:
    uri = (webhookSubscription.get("uri") or "").strip()
    subscriptions = shop.webhook_subscriptions
    error = _uri_error(uri)
    if error is None and (topic, uri) in subscriptions.pairs():
        error = "Address for this topic has already been taken"
    if error is not None:
        return {"webhookSubscription": None, "userErrors": [_error(["webhookSubscription", "uri"], error)]}
    created = subscriptions.add(
        topic,
        uri,
        format=webhookSubscription.get("format") or "JSON",
        filter=webhookSubscription.get("filter"),
        include_fields=webhookSubscription.get("includeFields"),
        metafield_namespaces=webhookSubscription.get("metafieldNamespaces"),
        name=webhookSubscription.get("name"),
    )
    return {"webhookSubscription": view(created), "userErrors": []}


def subscription_delete(shop: SandboxShopify, id: str) -> dict:
    if shop.webhook_subscriptions.by_id.pop(id, None) is None:
        return {"deletedWebhookSubscriptionId": None, "userErrors": [_error(["id"], "Webhook subscription not found")]}
    return {"deletedWebhookSubscriptionId": id, "userErrors": []}


def _uri_error(uri: str) -> str | None:
    if not uri:
        return "Address can't be blank"
    parsed = urlparse(uri)
    if parsed.scheme in ("pubsub", "arn"):
        return None
    if parsed.scheme != "https":
        return f"Address protocol {parsed.scheme or '(none)'}:// is not supported"
    if not parsed.hostname:
        return "Address is invalid"
    return None


def _error(path: list[str], message: str) -> dict:
    return {"field": path, "message": message}


# Mutation field → (handler, the payload's user-errors key, the error field an injected `user_errors` failure names).
HANDLERS: dict[str, tuple[Callable[..., dict], str, list[str]]] = {
    "webhookSubscriptionCreate": (subscription_create, "userErrors", ["webhookSubscription", "uri"]),
    "webhookSubscriptionDelete": (subscription_delete, "userErrors", ["id"]),
}
