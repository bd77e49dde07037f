"""A day at Juniper & Oak, step by step, as real signed HTTP requests to the real server.

Shopify's webhooks arrive (two of them twice, one late), alerts appear, Sam ships an order with tracking, Alex
archives one, Sam emails a customer and is refused a cancel, ShipBob ships an order and its webhook resolves the
alert, Alex captures a card payment before its authorisation lapses, Alex posts the digest with `/orders digest
post`, and Sam opens orderbot's Home tab. Each step waits for what it caused and checks it in the sandbox store,
Slack or the mail server; a step whose effect does not come raises DemoFailure.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.demo import terminal
from bot.demo.feed import Console, SlackFeed
from bot.demo.world import ADMIN, CHANNEL, PEOPLE, STAFF, Answer, DemoFailure, DemoWorld, wait_until
from bot.domain.durations import format_duration
from bot.sandbox.state import display_fulfillment_status, order_total
from bot.slack.outbox import ALERT_EVENT

TRACKING_NUMBER = "1Z999AA10123456784"  # UPS's own example number
SHIPBOB_TRACKING = "9400111202555842761023"
NOTIFIED_TAG = "orderbot-notified"
RETRIED = (1001, 1007)  # deliveries Shopify sends twice
CHART_SAVED_AT = Path(tempfile.gettempdir()) / "orderbot-demo-digest-chart.png"  # outlives the demo's own directory
FULFILLED, ARCHIVED, NOTIFIED, REFUSED, SHIPPED_BY_SERVICE = 1001, 1003, 1002, 1004, 1009
CAPTURED = 1004  # its card payment authorised, not yet charged
MOVED = 1002  # out of stock at the warehouse; the storefront has it (seed.STOCKED)


@dataclass
class DayReport:
    """What the day did, as observed in the sandboxes and the server's answers."""

    webhooks_sent: int = 0
    duplicates_sent: int = 0
    deliveries_stored: int = 0
    late_delivery_ignored: bool = False
    alerts_posted: int = 0
    alert_updates: int = 0
    thread_replies: int = 0
    private_answers: int = 0
    forms_opened: int = 0
    actions: list[str] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)
    emails: list[str] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)
    still_stuck: int = 0
    digest_posted: bool = False
    chart_saved_at: Path | None = None  # the digest's chart as Slack received it
    home_opened_by: str | None = None  # who opened orderbot's Home tab, and saw their board published


class Day:
    """The day's steps, in order (`play`); each narrates, acts through the world, waits and checks."""

    def __init__(self, world: DemoWorld, console: Console, feed: SlackFeed):
        self.world = world
        self.console = console
        self.feed = feed
        self.report = DayReport()
        self._sent: dict[int, tuple[str, bytes, str]] = {}  # order number → (topic, body, webhook id)
        self._late_body = b""  # the delivery Shopify holds up (see service_starts_picking)
        self._late_made_at = 0.0

    async def play(self) -> DayReport:
        await self.overnight_webhooks()
        await self.retried_webhooks()
        self.service_starts_picking()
        await self.fulfil_with_tracking()
        await self.archive()
        await self.email_customer()
        await self.move_to_stock()
        await self.cancel_refused()
        await self.ask_what_is_stuck()
        await self.service_ships_and_a_late_webhook()
        await self.capture_payment()
        await self.post_digest()
        await self.open_home()
        await self._count()
        return self.report

    # --- webhooks -----------------------------------------------------------------------------------------------

    async def overnight_webhooks(self) -> None:
        self.console.heading("1. Overnight: Shopify sends a webhook for each order that changed")
        self.say("Each is signed with the app's secret (X-Shopify-Hmac-Sha256) and stored before the 200 goes back.")
        by_change = sorted(self.world.shop.orders.values(), key=lambda order: order["updated_at"])
        for order in by_change:
            number = int(order["name"].lstrip("#"))
            topic, body = _topic(order), self.world.webhook_body(number)
            answer, webhook_id = await self.world.deliver(topic, body)
            self._expect_ok(answer, f"the {topic} webhook for {order['name']}")
            self._sent[number] = (topic, body, webhook_id)
            self.report.webhooks_sent += 1
            self.say(f"Shopify → {topic:<27} {self._describe(order)}  ← {answer.status}")
            await self.world.settled()
            if self.world.alert(number) is None:
                verdict = self.world.verdict(number)
                why = verdict[1] if verdict and verdict[1] else "not stuck"
                self.say(f"no alert: {why}", indent=9)

    async def retried_webhooks(self) -> None:
        self.console.heading("2. Shopify delivers two of those webhooks again")
        self.say("Shopify retries a delivery it is unsure about, with the same X-Shopify-Webhook-Id.")
        stored, calls = self.world.stored_deliveries(), len(self.world.slack.calls)
        for number in RETRIED:
            topic, body, webhook_id = self._sent[number]
            again, _ = await self.world.deliver(topic, body, webhook_id=webhook_id)
            self._expect_ok(again, f"the repeated webhook for #{number}")
            self.report.webhooks_sent += 1
            self.report.duplicates_sent += 1
            self.say(f"Shopify → {topic:<27} #{number} again, webhook id {webhook_id[:8]}…  ← {again.status}")
        await self.world.settled()
        if self.world.stored_deliveries() != stored or len(self.world.slack.calls) != calls:
            raise DemoFailure("a repeated webhook delivery was processed twice")
        self.say(
            "Both answered 200 (or Shopify would keep retrying), recognised as repeats and dropped: no new alerts."
        )

    def service_starts_picking(self) -> None:
        """ShipBob tags #1009 while picking it; Shopify's webhook for that change is held up (delivered in step 8)."""
        order = self.world.order(SHIPPED_BY_SERVICE)
        order["tags"].append("shipbob-picking")
        self.world.shop.touch(order)
        self._late_body = self.world.webhook_body(SHIPPED_BY_SERVICE)
        self._late_made_at = time.monotonic()

    # --- people in Slack ----------------------------------------------------------------------------------------

    async def fulfil_with_tracking(self) -> None:
        number, who = FULFILLED, STAFF
        self.console.heading(f"3. {self.name(who)} ships #{number} and marks it fulfilled with tracking")
        views = len(self.world.slack.opened_views)
        await self._click(number, "fulfill", who)
        view = await self.world.opened_view("fulfill_modal", views)
        self.say(f"{self.name(who)} types {TRACKING_NUMBER}, picks UPS, keeps the customer email ticked, submits.")
        values = {
            "tracking_number": ("plain_text_input", TRACKING_NUMBER),
            "tracking_company": ("static_select", "UPS"),
            "notify_customer": ("checkboxes", ["notify_customer"]),
        }
        self._expect_ok(await self.world.submit(view, values, user=who), "the form")
        await self._resolved(number)
        order = self.world.order(number)
        numbers = [t["number"] for f in order["fulfillments"] for t in f["tracking"]]
        if TRACKING_NUMBER not in numbers:
            raise DemoFailure(f"Shopify has no fulfillment with tracking {TRACKING_NUMBER} on #{number}")
        status = display_fulfillment_status(order)
        self.say(f"In Shopify: #{number} is {status.lower()}, tracking UPS {TRACKING_NUMBER}.")
        self.report.actions.append(f"#{number} fulfilled by {self.name(who)} (UPS {TRACKING_NUMBER})")

    async def archive(self) -> None:
        number, who = ARCHIVED, ADMIN
        self.console.heading(f"4. {self.name(who)} archives #{number}")
        self.say("Priya's bank transfer never arrived; she ordered again by card, so the old order can go.")
        before = display_fulfillment_status(self.world.order(number))
        await self._click(number, "archive", who)
        await self._resolved(number)
        order = self.world.order(number)
        if order["closed_at"] is None:
            raise DemoFailure(f"#{number} is not archived (closed) in Shopify")
        after = display_fulfillment_status(order)
        self.say(f"In Shopify: #{number} is archived; its fulfillment status is still {after.lower()}.")
        if after != before:
            raise DemoFailure(f"archiving #{number} changed its fulfillment status from {before} to {after}")
        self.report.actions.append(f"#{number} archived by {self.name(who)}")

    async def email_customer(self) -> None:
        number, who = NOTIFIED, STAFF
        self.console.heading(f"5. {self.name(who)} emails the customer of #{number} about the delay")
        views, mails = len(self.world.slack.opened_views), len(self.world.smtp.messages)
        self.say("orderbot drafts the email itself, written for why the order is late; it can be edited.")
        await self._click(number, "notify_customer", who)
        view = await self.world.opened_view("notify_modal", views)
        subject, message = _initial_value(view, "subject"), _initial_value(view, "message")
        self.say(f"{self.name(who)} sends it as written.")
        values = {"subject": ("plain_text_input", subject), "message": ("plain_text_input", message)}
        self._expect_ok(await self.world.submit(view, values, user=who), "the form")
        await wait_until(lambda: len(self.world.smtp.messages) > mails, "the email to reach the mail server")
        mail = self.world.smtp.messages[-1]
        self.feed.email(mail.message)
        await wait_until(lambda: NOTIFIED_TAG in self.world.order(number)["tags"], f"Shopify to tag #{number}")
        await self._replied(number)
        self.say(f"In Shopify: #{number} is tagged {NOTIFIED_TAG}, so the team can see the customer was told.")
        self.report.emails.append(f"to {', '.join(mail.rcpt_tos)}: “{mail.message['Subject']}”")
        self.report.actions.append(f"#{number}: customer emailed by {self.name(who)}, order tagged {NOTIFIED_TAG}")

    async def move_to_stock(self) -> None:
        number, who = MOVED, STAFF
        self.console.heading(f"6. {self.name(who)} moves #{number} to a location that has it in stock")
        self.say("The warehouse is out of the blanket; orderbot asks Shopify which locations stock every item.")
        views = len(self.world.slack.opened_views)
        await self._click(number, "move", who)
        await self.world.opened_view("move_modal", views)

        def filled() -> dict | None:
            view = self.world.slack.opened_views[views]
            return view if view.get("submit") else None

        await wait_until(lambda: filled() is not None, "orderbot to fill in the form with Shopify's locations")
        (radio,) = [b["element"] for b in filled()["blocks"] if b.get("block_id") == "location"]
        choice = radio["options"][0]
        where = choice["text"]["text"]
        self.say(f"{self.name(who)} picks {where} ({choice['description']['text'].lower()}), keeps the hold's")
        self.say("release ticked, and submits.", indent=4)
        values = {
            "location": ("radio_buttons", choice["value"]),
            "release_stock_hold": ("checkboxes", ["release_stock_hold"]),
        }
        self._expect_ok(await self.world.submit(filled(), values, user=who), "the form")

        def moved() -> bool:
            fo = self.world.order(number)["fulfillment_orders"][0]
            return fo["location"]["id"] == choice["value"] and not fo["holds"]

        await wait_until(moved, f"Shopify to move #{number} and release its hold")
        await self.world.settled()
        self.say(f"In Shopify: #{number} ships from {where} now, its hold released; its alert follows it.")
        self.report.actions.append(f"#{number} moved to {where} by {self.name(who)}")

    async def cancel_refused(self) -> None:
        number, who = REFUSED, STAFF
        self.console.heading(f"7. {self.name(who)} tries to cancel #{number}, and is not allowed")
        self.say("Cancelling an order cannot be undone, so only the admins in SLACK_ADMINS may.")
        views, answers = len(self.world.slack.opened_views), len(self.world.slack.ephemerals(who))
        await self._click(number, "cancel_order", who)
        await wait_until(lambda: len(self.world.slack.ephemerals(who)) > answers, f"an answer to {self.name(who)}")
        cancelled = [op for op in self.world.shop.operations if op.operation_name == "OrderCancel"]
        if cancelled or len(self.world.slack.opened_views) != views or self.world.order(number)["cancelled_at"]:
            raise DemoFailure(f"a non-admin's cancel of #{number} was not refused")
        self.say(f"No form opened and Shopify was not asked; #{number} keeps its alert and buttons.")
        self.report.refusals.append(f"{self.name(who)} may not cancel #{number} (not an admin)")

    async def ask_what_is_stuck(self) -> None:
        who = STAFF
        self.console.heading(f"8. {self.name(who)} asks what is still stuck: /orders stuck")
        await self._command("stuck", who)

    # --- Shopify again ----------------------------------------------------------------------------------------

    async def service_ships_and_a_late_webhook(self) -> None:
        number = SHIPPED_BY_SERVICE
        self.console.heading(
            f"9. ShipBob ships #{number}; Shopify's webhook resolves the alert, and a late one arrives"
        )
        # The late delivery must be older by Shopify's clock (whole seconds) than the shipment's.
        await asyncio.sleep(max(0.0, 1.1 - (time.monotonic() - self._late_made_at)))
        self.world.shop.fulfill_externally(self.world.order_id(number), SHIPBOB_TRACKING, "USPS")
        answer, _ = await self.world.deliver("orders/fulfilled", self.world.webhook_body(number))
        self._expect_ok(answer, f"the orders/fulfilled webhook for #{number}")
        self.report.webhooks_sent += 1
        self.say(f"Shopify → orders/fulfilled  {self._describe(self.world.order(number))}  ← {answer.status}")
        await self._resolved(number, replied=False)
        calls = len(self.world.slack.calls)
        late, _ = await self.world.deliver("orders/updated", self._late_body)
        self._expect_ok(late, f"the late webhook for #{number}")
        self.report.webhooks_sent += 1
        self.say(
            f"Shopify → orders/updated    #{number} again, the change ShipBob made while picking it  ← {late.status}"
        )
        self.say("(tagged shipbob-picking, before it shipped): Shopify's delivery was held up and arrives only now.")
        await self.world.settled()
        alert = self.world.alert(number)
        if len(self.world.slack.calls) != calls or alert is None or _has_buttons(alert):
            raise DemoFailure(f"the late, older webhook for #{number} overwrote the newer state")
        self.report.late_delivery_ignored = True
        self.say("It is older than what the server has, so it changes nothing: the alert stays resolved.")

    # --- payment --------------------------------------------------------------------------------------------------

    async def capture_payment(self) -> None:
        number, who = CAPTURED, ADMIN
        self.console.heading(f"10. {self.name(who)} captures the card payment of #{number} before it lapses")
        self.say("Daniel's card was authorised 6 days ago but not charged, and authorisations lapse after about 7.")
        order = self.world.order(number)
        amount = f"{order_total(order):.2f} {self.world.shop.currency}"
        replies = len(self.world.alert(number)["replies"])
        await self._click(number, "capture_payment", who)
        await wait_until(lambda: self.world.order(number)["financial_status"] == "PAID", f"Shopify to charge #{number}")

        def updated() -> bool:
            alert = self.world.alert(number)
            return _element(alert, "capture_payment") is None and len(alert["replies"]) > replies

        await wait_until(updated, f"#{number}'s alert to drop its payment reason")
        await self.world.settled()
        self.say(f"In Shopify: #{number} is paid ({amount}). Its alert stays, for the shipping it still waits for.")
        self.report.actions.append(f"#{number}'s payment captured by {self.name(who)} ({amount})")

    async def post_digest(self) -> None:
        who = ADMIN
        self.console.heading(f"11. End of the day: {self.name(who)} posts the digest: /orders digest post")
        before = len(self._other_messages())
        await self._command("digest post", who)
        await wait_until(lambda: len(self._other_messages()) > before, "the digest to be posted in the channel")
        await self.world.settled()
        self.report.digest_posted = True
        slack = self.world.slack

        def shared() -> list[dict]:
            return [c.response for c in slack.calls_to("files.completeUploadExternal") if (c.response or {}).get("ok")]

        await wait_until(lambda: bool(shared()), "the digest's chart to be shared in its thread")
        CHART_SAVED_AT.write_bytes(slack.files[shared()[-1]["files"][0]["id"]].content or b"")
        self.report.chart_saved_at = CHART_SAVED_AT
        self.say(f"The chart in the digest's thread, as Slack received it: {CHART_SAVED_AT}")
        self.say("(`python -m bot digest --print` writes the same picture from the database, and says where.)")

    async def open_home(self) -> None:
        who = STAFF
        self.console.heading(f"12. {self.name(who)} opens orderbot's Home tab in Slack")
        self.say("orderbot publishes a board for whoever opens it, and keeps it current while they watch.")
        published = len(self.world.slack.publishes(who))
        self._expect_ok(await self.world.open_home(who), "the Home tab opening")
        await wait_until(lambda: len(self.world.slack.publishes(who)) > published, f"{self.name(who)}'s Home tab")
        self.report.home_opened_by = self.name(who)

    # --- shared -------------------------------------------------------------------------------------------------

    async def _click(self, number: int, action_id: str, who: str) -> None:
        """Click a button the order's alert offers, through its confirm dialog when it has one."""
        alert = self.world.alert(number)
        element = _element(alert, action_id) if alert else None
        if element is None:
            raise DemoFailure(f"#{number}'s alert offers no {action_id} button")
        self.say(f"{self.name(who)} clicks {terminal.element_text(element)} on #{number}'s alert.")
        confirm = element.get("confirm")
        if confirm:
            self.console.card(f"Slack asks {self.name(who)} first", terminal.confirm_lines(confirm))
            self.say(f"{self.name(who)} clicks [ {confirm['confirm']['text']} ].")
        self._expect_ok(await self.world.click(number, action_id, user=who), "the click")

    async def _command(self, text: str, who: str) -> None:
        """Type `/orders <text>` and wait for its answer."""
        answers, messages = len(self.world.slack.ephemerals(who)), len(self.world.slack.messages(CHANNEL))
        answer = await self.world.command(text, user=who)
        self._expect_ok(answer, f"/orders {text}")
        acked = answer.json() or {}
        if acked.get("text") or acked.get("blocks"):
            self.feed.show_answer(CHANNEL, who, acked)
            return

        def answered() -> bool:
            return len(self.world.slack.ephemerals(who)) > answers or len(self.world.slack.messages(CHANNEL)) > messages

        await wait_until(answered, f"an answer to /orders {text}")

    async def _resolved(self, number: int, *, replied: bool = True) -> None:
        """Wait until the order's alert has lost its buttons but Delete (and has a thread reply naming who acted)."""

        def done() -> bool:
            alert = self.world.alert(number)
            return alert is not None and not _has_buttons(alert) and (bool(alert["replies"]) or not replied)

        await wait_until(done, f"#{number}'s alert to be resolved")
        await self.world.settled()
        self.report.resolved.append(f"#{number}")

    async def _replied(self, number: int) -> None:
        await wait_until(lambda: bool((self.world.alert(number) or {}).get("replies")), f"a reply on #{number}")
        await self.world.settled()

    def _other_messages(self) -> list[dict]:
        """Top-level channel messages that are not alerts (the digest)."""
        return [
            m for m in self.world.slack.messages(CHANNEL) if (m.get("metadata") or {}).get("event_type") != ALERT_EVENT
        ]

    async def _count(self) -> None:
        report, slack = self.report, self.world.slack
        done = [c for c in slack.calls if c.response and c.response.get("ok")]
        posts = [c for c in done if c.method == "chat.postMessage"]
        report.alerts_posted = sum(
            1 for c in posts if (c.response["message"].get("metadata") or {}).get("event_type") == ALERT_EVENT
        )
        report.thread_replies = sum(1 for c in posts if c.args.get("thread_ts"))
        report.alert_updates = sum(1 for c in done if c.method == "chat.update")
        report.private_answers = len(slack.ephemerals())
        report.forms_opened = len(slack.opened_views)
        report.deliveries_stored = self.world.stored_deliveries()
        report.still_stuck = (await self.world.health())["stuck"]

    def _describe(self, order: dict) -> str:
        customer = order.get("customer") or {}
        who = f"{customer.get('first_name', '')} {customer.get('last_name', '')}".strip() or "no customer"
        items = sum(line["quantity"] for line in order["line_items"])
        age = format_duration(datetime.now(UTC) - order["created_at"])
        total = f"{order_total(order):.2f} {self.world.shop.currency}"
        return f"{order['name']} {who} · {items} item{'s' if items != 1 else ''} · {total} · placed {age} ago"

    def _expect_ok(self, answer: Answer, what: str) -> None:
        if answer.status != 200:
            raise DemoFailure(f"the server answered {what} with HTTP {answer.status}: {answer.body[:200]}")

    def say(self, text: str, *, indent: int = 2) -> None:
        self.console.line(" " * indent + text)

    @staticmethod
    def name(user: str) -> str:
        return PEOPLE[user].split()[0]


def _topic(order: dict) -> str:
    """The topic Shopify would send for the order's last change."""
    status = display_fulfillment_status(order)
    if order["cancelled_at"]:
        return "orders/cancelled"
    if status == "FULFILLED" and not order["closed_at"]:
        return "orders/fulfilled"
    if status == "PARTIALLY_FULFILLED":
        return "orders/partially_fulfilled"
    if order["updated_at"] == order["created_at"] and datetime.now(UTC) - order["created_at"] < timedelta(days=1):
        return "orders/create"
    return "orders/updated"


def _has_buttons(message: dict) -> bool:
    """Whether the alert still offers something to do about a stuck order (a resolved alert of an archived or
    cancelled order offers only Delete)."""
    return any(
        element.get("action_id") != "delete"
        for block in message.get("blocks") or ()
        if block.get("type") == "actions"
        for element in block.get("elements") or ()
    )


def _element(message: dict, action_id: str) -> dict | None:
    return next(
        (
            element
            for block in message.get("blocks") or ()
            if block.get("type") == "actions"
            for element in block.get("elements") or ()
            if element.get("action_id") == action_id
        ),
        None,
    )


def _initial_value(view: dict, block_id: str) -> str:
    block = next(b for b in view["blocks"] if b.get("block_id") == block_id)
    return block["element"].get("initial_value") or ""
