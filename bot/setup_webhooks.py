"""`python -m bot setup-webhooks --url https://HOST/shopify/webhooks`: subscribe the shop to every topic orderbot
handles, through the Admin API (`webhookSubscriptionCreate`).

Idempotent: it lists the app's subscriptions first, then
- adds the topics missing at the URL,
- keeps those already there,
- removes subscriptions at the same URL for topics orderbot does not handle (left by an older version),
- leaves subscriptions at other addresses (an old host, a development tunnel) alone and lists them; `--prune`
  removes those too. The Admin API shows an app only its own subscriptions, so nothing of another app is touched.
Additions run before removals, so a failure part way never leaves the shop with fewer subscriptions than before.

Shopify's mandatory privacy topics cannot be subscribed through the API; they are set in the app's configuration.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlparse

from bot.config import Settings, require
from bot.domain.orders import ORDER_TOPICS
from bot.flows.service import PRIVACY_TOPICS as SERVICE_PRIVACY_TOPICS
from bot.progress import CommandProgress
from bot.shopify import operations
from bot.shopify.client import ShopifyClient, ShopifyUserError, client_from_settings
from bot.shopify.webhooks import WEBHOOK_PATH

PAGE_SIZE = 100
CHANGE_PROGRESS = "Changing subscriptions"  # the progress bar's label, on a terminal

# The topics orderbot acts on (Service.on_event), as Shopify names them in X-Shopify-Topic.
TOPICS = (
    *sorted(ORDER_TOPICS),
    "orders/edited",
    "orders/delete",
    "fulfillments/create",
    "fulfillments/update",
    "fulfillment_orders/cancellation_request_accepted",
    "fulfillment_orders/cancellation_request_rejected",
    "fulfillment_orders/cancellation_request_submitted",
    "fulfillment_orders/cancelled",
    "fulfillment_orders/fulfillment_request_accepted",
    "fulfillment_orders/fulfillment_request_rejected",
    "fulfillment_orders/fulfillment_request_submitted",
    "fulfillment_orders/fulfillment_service_failed_to_complete",
    "fulfillment_orders/hold_released",
    "fulfillment_orders/merged",
    "fulfillment_orders/moved",
    "fulfillment_orders/placed_on_hold",
    "fulfillment_orders/rescheduled",
    "fulfillment_orders/scheduled_fulfillment_order_ready",
    "fulfillment_orders/split",
    "fulfillment_holds/added",
    "fulfillment_holds/released",
    "app/uninstalled",
)
# Handled by orderbot too, but not subscribable through the API: Shopify sends them to the URLs set in the app's
# configuration (Dev Dashboard, or `compliance_topics` in shopify.app.toml).
PRIVACY_TOPICS = tuple(sorted(SERVICE_PRIVACY_TOPICS - {"app/uninstalled"}))


def enum_name(topic: str) -> str:
    """`fulfillment_orders/placed_on_hold` → `FULFILLMENT_ORDERS_PLACED_ON_HOLD` (a WebhookSubscriptionTopic)."""
    return topic.upper().replace("/", "_")


_TOPIC_OF_ENUM = {enum_name(t): t for t in TOPICS}


def shown(enum: str) -> str:
    """A topic as people read it: `orders/create` for ours, the enum name for others."""
    return _TOPIC_OF_ENUM.get(enum, enum)


@dataclass(frozen=True, slots=True)
class Subscription:
    id: str
    topic: str  # the WebhookSubscriptionTopic enum name
    uri: str


@dataclass(frozen=True, slots=True)
class Plan:
    url: str
    add: tuple[str, ...]  # enum names
    keep: tuple[Subscription, ...]
    remove: tuple[Subscription, ...]  # stale topics at `url`, and with --prune everything at other addresses
    elsewhere: tuple[Subscription, ...]  # at other addresses, left alone (without --prune)


def make_plan(existing: list[Subscription], url: str, *, prune: bool) -> Plan:
    wanted = [enum_name(t) for t in TOPICS]
    here = [s for s in existing if s.uri == url]
    other = [s for s in existing if s.uri != url]
    present = {s.topic for s in here}
    return Plan(
        url=url,
        add=tuple(t for t in wanted if t not in present),
        keep=tuple(s for s in here if s.topic in wanted),
        remove=tuple(s for s in here if s.topic not in wanted) + (tuple(other) if prune else ()),
        elsewhere=() if prune else tuple(other),
    )


def url_problem(url: str) -> str | None:
    parsed = urlparse(url)
    if parsed.scheme != "https" or not parsed.hostname:
        return f"--url must be the https address of the server's {WEBHOOK_PATH} route (got {url!r})."
    return None


# --- Shopify ----------------------------------------------------------------------------------------------------


async def list_subscriptions(client: ShopifyClient) -> list[Subscription]:
    found, after = [], None
    while True:
        page = (await client.execute(operations.WEBHOOK_SUBSCRIPTIONS, {"first": PAGE_SIZE, "after": after}))[
            "webhookSubscriptions"
        ]
        found += [Subscription(n["id"], n["topic"], n["uri"]) for n in page["nodes"]]
        if not page["pageInfo"]["hasNextPage"]:
            return found
        after = page["pageInfo"]["endCursor"]


@dataclass(slots=True)
class Outcome:
    added: int = 0
    removed: int = 0
    refused: int = 0  # changes Shopify answered with userErrors


async def apply(
    client: ShopifyClient, plan: Plan, say: Callable[[str], None], step: Callable[[], None] = lambda: None
) -> Outcome:
    """Carry out the plan, one line per change as it happens (`say`), `step` called after each. A refused change is
    reported and the rest go on; an outage or an auth problem (not a refusal) stops the run by raising ShopifyError."""
    outcome = Outcome()
    for topic in plan.add:
        variables = {"topic": topic, "webhookSubscription": {"uri": plan.url, "format": "JSON"}}
        try:
            await client.mutate(operations.WEBHOOK_SUBSCRIPTION_CREATE, variables, "webhookSubscriptionCreate")
        except ShopifyUserError as exc:
            outcome.refused += 1
            say(_line("FAILED", f"{shown(topic)}: Shopify refused to add it: {exc}"))
        else:
            outcome.added += 1
            say(_line("added", shown(topic)))
        step()
    for subscription in plan.remove:
        try:
            await client.mutate(
                operations.WEBHOOK_SUBSCRIPTION_DELETE, {"id": subscription.id}, "webhookSubscriptionDelete"
            )
        except ShopifyUserError as exc:
            outcome.refused += 1
            say(_line("FAILED", f"{_described(subscription, plan.url)}: Shopify refused to remove it: {exc}"))
        else:
            outcome.removed += 1
            say(_line("removed", _described(subscription, plan.url)))
        step()
    return outcome


# --- text -------------------------------------------------------------------------------------------------------


def _line(verb: str, what: str) -> str:
    return f"  {verb:<12} {what}"


def _described(subscription: Subscription, url: str) -> str:
    if subscription.uri != url:
        return f"{shown(subscription.topic)} at {subscription.uri}"
    return f"{shown(subscription.topic)} (orderbot does not handle it)"


def header(shop: str, plan: Plan) -> str:
    return f"Webhook subscriptions of {shop} for {plan.url}:"


def kept_lines(plan: Plan) -> list[str]:
    lines = [_line("kept", shown(s.topic)) for s in plan.keep]
    return lines + [
        _line("left alone", f"{shown(s.topic)} at {s.uri} (another address; --prune removes it)")
        for s in plan.elsewhere
    ]


def dry_run_lines(plan: Plan) -> list[str]:
    return [_line("would add", shown(t)) for t in plan.add] + [
        _line("would remove", _described(s, plan.url)) for s in plan.remove
    ]


def summary(plan: Plan, outcome: Outcome | None) -> str:
    """`outcome` None: a dry run."""
    if outcome is None:
        counts = f"Would add {len(plan.add)}, keep {len(plan.keep)}, remove {len(plan.remove)}."
        return f"{counts} (dry run: nothing was changed)"
    text = f"{outcome.added} added, {len(plan.keep)} kept, {outcome.removed} removed."
    if outcome.refused:
        text += f" Shopify refused {outcome.refused}: fix the cause above and run the command again."
    return text


def privacy_note(url: str) -> str:
    return (
        f"Not subscribable through the API: {', '.join(PRIVACY_TOPICS)} (Shopify's mandatory privacy topics).\n"
        f"Set their URL to {url} in the app's configuration (Dev Dashboard: the app version's compliance webhooks; "
        "or `compliance_topics` in shopify.app.toml)."
    )


# --- the command ------------------------------------------------------------------------------------------------


async def setup_webhooks_command(settings: Settings, *, url: str, dry_run: bool, prune: bool) -> int:
    require(settings, "SHOPIFY_SHOP")
    if not settings.has_shopify_credentials:
        require(settings, "SHOPIFY_ACCESS_TOKEN")
    problem = url_problem(url)
    if problem:
        print(f"setup-webhooks: {problem}", file=sys.stderr)
        return 2
    client = client_from_settings(settings)
    try:
        plan = make_plan(await list_subscriptions(client), url, prune=prune)
        print(header(settings.shopify_shop, plan))
        if urlparse(url).path != WEBHOOK_PATH:
            print(f"  (note: orderbot serves deliveries on {WEBHOOK_PATH}; this URL must reach that route)")
        for line in kept_lines(plan):
            print(line)
        if dry_run:
            outcome = None
            for line in dry_run_lines(plan):
                print(line)
        else:
            changes = len(plan.add) + len(plan.remove)
            shown_as = CommandProgress(sys.stdout, CHANGE_PROGRESS, unit="changes", total=changes, steps_shown=False)
            with shown_as as progress:
                outcome = await apply(client, plan, progress.line, progress.advance)
    finally:
        await client.close()
    print()
    print(summary(plan, outcome))
    print(privacy_note(url))
    if not settings.shopify_client_secret:
        print(
            "SHOPIFY_CLIENT_SECRET is not set: Shopify signs every delivery with the app's client secret, and "
            "`serve` refuses deliveries it cannot verify. Set it before starting the server."
        )
    return 1 if outcome and outcome.refused else 0
