"""Move, end to end: the Move… button on an out-of-stock alert → a form filled with the locations the sandbox Shopify
lists (locationsForMove, executed against the schema) → fulfillmentOrderMove and the hold's release → the alert
follows the fulfillment order to its new location, a thread reply names the person, an audit row for every attempt;
Shopify's refusals, nowhere to move, and a lost answer."""

from __future__ import annotations

import json

from bot.sandbox.mutations import fulfillment_order_move
from bot.sandbox.seed import STOREFRONT, WAREHOUSE
from tests.conftest import ADMIN, CHANNEL, STAFF, World, order_gid_of, wait_for
from tests.slack.test_actions_e2e import action_ids, alert_text, ephemeral_to, mutations, stuck_alert
from tests.slack.test_payment_and_delete_e2e import button


def fo_of(world: World, number: int) -> dict:
    return world.sandbox.orders[order_gid_of(world.sandbox, number)]["fulfillment_orders"][0]


async def move_form(world: World, number: int, *, user: str = ADMIN, message: dict | None = None) -> dict:
    """Click Move… on the order's alert; the form once orderbot has filled it in (or said why it cannot)."""
    before = len(world.slack.opened_views)
    await world.click(number, "move", user=user, message=message)
    await wait_for(lambda: len(world.slack.opened_views) > before)
    await wait_for(lambda: "Asking Shopify" not in str(world.slack.opened_views[before]["blocks"]))
    return world.slack.opened_views[before]


def choose(location_id: str, *, release: bool = True) -> dict:
    values = {"location": {"location": ("radio_buttons", location_id)}}
    if release:
        values["release_stock_hold"] = {"release_stock_hold": ("checkboxes", ["release_stock_hold"])}
    return values


def radio_options(view: dict) -> list[tuple[str, str, str]]:
    (radio,) = [b["element"] for b in view["blocks"] if b.get("block_id") == "location"]
    return [(o["value"], o["text"]["text"], o["description"]["text"]) for o in radio["options"]]


async def test_move_lists_where_shopify_can_ship_it_moves_it_there_and_releases_the_hold(world: World):
    alert = await stuck_alert(world, 1002)  # held for stock at the warehouse for 5 days
    holds = [hold["id"] for hold in fo_of(world, 1002)["holds"]]
    assert action_ids(alert)[:2] == ["move", "release_hold"]
    assert button(alert, "move")["text"]["text"] == "Move…" and "confirm" not in button(alert, "move")

    view = await move_form(world, 1002, user=STAFF)  # anyone who may fulfil may move
    assert [op.operation_name for op in world.sandbox.operations].count("LocationsForMove") == 1
    assert not mutations(world, "FulfillmentOrderMove")  # nothing moves before the form is submitted
    assert view["title"]["text"] == "Move #1002" and view["submit"]["text"] == "Move"
    assert radio_options(view) == [(STOREFRONT["id"], "Juniper & Oak Storefront", "Has the item")]
    text = str(view["blocks"])
    assert "ShipBob Fulfillment (does not stock the item); DSers (does not stock the item)" in text
    assert "Juniper &amp; Oak Warehouse" in text and "Wool Blend Blanket - Oat × 1" in text  # where from now, what
    assert "Release the out-of-stock hold once it has moved" in text

    response = await world.submit(view, choose(STOREFRONT["id"]), user=STAFF)
    assert response.status == 200 and response.text_body == ""  # the form closes
    await wait_for(lambda: mutations(world, "HoldRelease"))
    fo_id = fo_of(world, 1002)["id"]
    assert mutations(world, "FulfillmentOrderMove") == [{"id": fo_id, "newLocationId": STOREFRONT["id"]}]
    assert mutations(world, "HoldRelease") == [{"id": fo_id, "holdIds": holds}]
    moved = fo_of(world, 1002)
    assert (moved["location"]["id"], moved["status"], moved["holds"]) == (STOREFRONT["id"], "OPEN", [])

    # The same alert follows the fulfillment order: no longer out of stock, shipping from the storefront.
    after = await world.wait_for_alert(1002, lambda a: "move" not in action_ids(a))
    assert after["ts"] == alert["ts"] and "Out of stock" not in alert_text(after)
    assert "*Ships from:* Juniper &amp; Oak Storefront" in alert_text(after)
    await wait_for(lambda: world.alert(1002)["replies"])
    assert world.alert(1002)["replies"][0]["text"] == (
        "<@U0STAFF> moved #1002 (to Juniper &amp; Oak Storefront, out-of-stock hold released)."
    )
    (row,) = [r for r in world.audit(1002) if r["action"] == "move"]
    assert (row["outcome"], row["actor"], row["channel"], row["ts"]) == ("done", STAFF, CHANNEL, alert["ts"])
    assert json.loads(row["inputs"]) == {
        "fulfillment_order_id": fo_id,
        "location_id": STOREFRONT["id"],
        "location_name": "Juniper & Oak Storefront",
        "release_hold": True,
    }


async def test_a_move_that_keeps_the_hold_leaves_it_out_of_stock_at_the_new_location(world: World):
    await stuck_alert(world, 1002)
    view = await move_form(world, 1002)
    await world.submit(view, choose(STOREFRONT["id"], release=False))
    await wait_for(lambda: [r for r in world.audit(1002) if r["action"] == "move"])
    assert not mutations(world, "HoldRelease")
    assert (fo_of(world, 1002)["location"]["id"], fo_of(world, 1002)["status"]) == (STOREFRONT["id"], "ON_HOLD")
    # The move changed the fulfillment order, so its hold counts from now: the alert waits again, where it is now.
    after = await world.wait_for_alert(1002, lambda a: "out of stock at Juniper &amp; Oak Storefront" in alert_text(a))
    assert "counts as stuck in" in alert_text(after)
    await wait_for(lambda: world.alert(1002)["replies"])
    assert "still on hold for stock: release the hold once it can ship" in world.alert(1002)["replies"][0]["text"]


async def test_with_nowhere_to_move_the_form_says_what_to_do_instead(world: World):
    await stuck_alert(world, 1002)
    world.sandbox.locations[STOREFRONT["id"]]["stocked"] = []  # sold out at the storefront too
    view = await move_form(world, 1002)
    assert "submit" not in view or view["submit"] is None
    assert "No other location than Juniper &amp; Oak Warehouse stocks every item of #1002" in str(view["blocks"])
    assert "Restock it" in str(view["blocks"])
    assert not mutations(world, "FulfillmentOrderMove")


async def test_shopifys_refusal_to_move_reaches_the_person_and_nothing_changes(world: World):
    await stuck_alert(world, 1002)
    view = await move_form(world, 1002)
    world.sandbox.locations[STOREFRONT["id"]]["stocked"] = []  # the storefront stops stocking it meanwhile
    await world.submit(view, choose(STOREFRONT["id"]))
    text = await ephemeral_to(world, ADMIN)
    assert text.startswith("Shopify refused to change #1002: No items are stocked at this location.")
    assert not mutations(world, "HoldRelease")
    assert fo_of(world, 1002)["location"]["id"] == WAREHOUSE["id"]
    await wait_for(lambda: [r for r in world.audit(1002) if r["action"] == "move"])
    (row,) = [r for r in world.audit(1002) if r["action"] == "move"]
    assert row["outcome"] == "failed" and "No items are stocked" in row["error"]


async def test_a_form_chosen_before_the_order_shipped_is_answered_in_words(world: World):
    await stuck_alert(world, 1002)
    view = await move_form(world, 1002)
    world.sandbox.fulfill_externally(order_gid_of(world.sandbox, 1002), "1Z1", "UPS")  # shipped in the admin meanwhile
    await world.submit(view, choose(STOREFRONT["id"]))
    assert await ephemeral_to(world, ADMIN) == "Nothing of #1002 is left to move: it shipped or was cancelled."
    assert not mutations(world, "FulfillmentOrderMove")
    await wait_for(lambda: [r for r in world.audit(1002) if r["action"] == "move"])
    assert [r["outcome"] for r in world.audit(1002) if r["action"] == "move"] == ["already"]


async def test_a_lost_answer_to_the_move_counts_as_done_and_the_same_form_again_does_not_move_it_twice(world: World):
    await stuck_alert(world, 1002)
    view = await move_form(world, 1002)
    world.sandbox.fail_next("lost_answer")
    await world.submit(view, choose(STOREFRONT["id"]))
    await wait_for(lambda: [r for r in world.audit(1002) if r["action"] == "move"])
    (row,) = [r for r in world.audit(1002) if r["action"] == "move"]
    assert row["outcome"] == "done" and row["error"] is None
    assert fo_of(world, 1002)["location"]["id"] == STOREFRONT["id"]
    # The release was not sent after the lost answer: the alert shows the hold where the order is now.
    await world.wait_for_alert(1002, lambda a: "out of stock at Juniper &amp; Oak Storefront" in alert_text(a))
    assert not mutations(world, "HoldRelease")
    await wait_for(lambda: world.alert(1002)["replies"])
    assert world.alert(1002)["replies"][0]["text"] == "<@U0ADMIN> moved #1002."

    await world.submit(view, choose(STOREFRONT["id"]))  # the same form again
    assert await ephemeral_to(world, ADMIN) == "#1002 ships from Juniper & Oak Storefront already."
    assert len(mutations(world, "FulfillmentOrderMove")) == 1


async def test_a_move_lost_before_it_applied_is_reported_not_done(world: World):
    await stuck_alert(world, 1002)
    view = await move_form(world, 1002)
    world.sandbox.fail_next("dropped")
    await world.submit(view, choose(STOREFRONT["id"]))
    text = await ephemeral_to(world, ADMIN)
    assert "#1002 shows no change" in text and "will not be done twice" in text
    assert fo_of(world, 1002)["location"]["id"] == WAREHOUSE["id"]
    (row,) = [r for r in world.audit(1002) if r["action"] == "move"]
    assert row["outcome"] == "failed" and "not applied" in row["error"]


async def test_a_move_made_in_shopify_reaches_the_alert_by_the_moved_webhook(world: World):
    await stuck_alert(world, 1002)
    fo_id = fo_of(world, 1002)["id"]
    answer = fulfillment_order_move(world.sandbox, fo_id, STOREFRONT["id"])  # staff move it in the Shopify admin
    assert answer["userErrors"] == [] and answer["movedFulfillmentOrder"]["id"] == fo_id
    body = {
        "original_fulfillment_order": {"id": fo_id, "status": "on_hold", "assigned_location_id": STOREFRONT["id"]},
        "moved_fulfillment_order": {"id": fo_id, "status": "on_hold", "assigned_location_id": STOREFRONT["id"]},
        "destination_location_id": STOREFRONT["id"],
        "fulfillment_order_line_items_requested": None,
        "source_location": {"id": WAREHOUSE["id"]},
    }
    response = await world.post_webhook("fulfillment_orders/moved", body)
    assert response.status == 200
    await world.wait_for_alert(1002, lambda a: "out of stock at Juniper &amp; Oak Storefront" in alert_text(a))


async def test_a_fulfillment_order_with_a_request_at_a_service_is_not_offered_a_move(world: World):
    await stuck_alert(world, 1007)  # requested from DSers, never accepted: Shopify lists no MOVE
    assert "move" not in action_ids(world.alert(1007))
