"""Security: what reaches the logs, what the database keeps of customers, that a redaction erases every copy on disk,
that admin actions refuse everyone else whatever path the request takes, and that the database is its owner's alone.

Everything goes through the real server over HTTP: signed Shopify webhooks, signed Slack requests. "On disk" means
the bytes of every file the database consists of: the file itself, its -wal and its -shm.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import stat
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import closing
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from bot.sandbox.seed import seed_orders
from bot.sandbox.slack import DEFAULT_USERS, SandboxSlack
from bot.sandbox.slack_payloads import block_actions_body, input_values, slash_command_body, view_submission_body
from bot.slack.bulk_blocks import BULK_CONFIRM, BULK_STOP
from bot.slack.metadata import ModalContext, pack
from bot.store import Delivery, Store
from tests.conftest import (
    ADMIN,
    CHANNEL,
    SIGNING_SECRET,
    STAFF,
    Server,
    World,
    example_payload,
    manifest_scopes,
    order_gid_of,
    running_world,
    wait_for,
)

REPO = Path(__file__).parents[2]
# Personal data Shopify sends and orderbot has no use for (the log guard looks for these constants too).
STREET_ADDRESS = "17 Juniper Lane, Apt 4B"
CUSTOMER_PHONE = "+1 415 555 0199"
BUYER_IP_ADDRESS = "203.0.113.77"
OPS_GROUP = "S0OPS"  # an admin user group
GROUP_ADMIN = "U0OPSLEAD"  # in OPS_GROUP only, not named in SLACK_ADMINS


def database_files(db_path: Path) -> dict[str, bytes]:
    """The bytes of the database's files that exist now: the file, its -wal and its -shm."""
    files = {}
    for suffix in ("", "-wal", "-shm"):
        path = db_path.with_name(db_path.name + suffix)
        if path.exists():
            files[path.name] = path.read_bytes()
    return files


def found_on_disk(db_path: Path, needles: list[str]) -> dict[str, list[str]]:
    """{needle: [files holding it]} for each needle in any of the database's files (case-insensitive)."""
    files = {name: data.lower() for name, data in database_files(db_path).items()}
    found = {needle: [name for name, data in files.items() if needle.lower().encode() in data] for needle in needles}
    return {needle: names for needle, names in found.items() if names}


def with_personal_details(payload: dict) -> dict:
    """An order webhook as Shopify sends it: with addresses, phone numbers and the buyer's browser."""
    address = {"address1": STREET_ADDRESS, "city": "Portland", "zip": "97201", "phone": CUSTOMER_PHONE}
    customer = dict(payload["customer"], phone=CUSTOMER_PHONE, default_address=address)
    client = {"browser_ip": BUYER_IP_ADDRESS, "user_agent": "Mozilla/5.0 (Macintosh)", "accept_language": "en-US"}
    return {
        **payload,
        "phone": CUSTOMER_PHONE,
        "browser_ip": BUYER_IP_ADDRESS,
        "client_details": client,
        "shipping_address": address,
        "billing_address": address,
        "customer": customer,
        "note": f"Leave it with the neighbour at {STREET_ADDRESS}",
    }


def customer_of(world: Server, number: int) -> dict:
    return world.sandbox.orders[order_gid_of(world.sandbox, number)]["customer"]


# --- 1. the log guard ---------------------------------------------------------------------------------------------

GUARDED_RUN = """
import logging


def test_an_email_in_orderbots_log():
    logging.getLogger("bot.flows.service").info("webhook for %s", "maya.thompson@example.com")


def test_a_library_debug_line_serve_drops(caplog):
    caplog.set_level(logging.DEBUG)  # as a test may: the line is emitted, and caplog has it
    logging.getLogger("slack_sdk.web.base_client").debug("body: %s", "maya.thompson@example.com")
    assert "maya.thompson@example.com" in caplog.text


def test_a_token_in_a_library_warning():
    logging.getLogger("aiohttp.access").warning("GET /?token=%s", "xoxb-sandbox-token")


def test_a_phone_in_an_exception():
    try:
        raise ValueError("customer phone 555-625-1199")
    except ValueError:
        logging.getLogger("bot.mail.smtp").exception("could not send")
"""

CLEAN_RUN = """
import logging


def test_orderbots_own_words():
    logging.getLogger("bot.flows.service").info("reconciled %d open orders: %d stuck", 18, 11)
    logging.getLogger("bot.shopify.client").debug("waiting %.2fs for Shopify's cost budget", 0.5)


def test_caplog_sees_what_it_saw_without_the_guard(caplog):
    logging.getLogger("bot.flows.service").info("below the root logger's WARNING")
    logging.getLogger("aiohttp.access").info("GET /healthz")
    assert caplog.records == []
    caplog.set_level(logging.INFO)
    logging.getLogger("bot.flows.service").info("now captured")
    logging.getLogger("bot.flows.service").debug("still not")
    assert [r.getMessage() for r in caplog.records] == ["now captured"]
"""


def run_guarded(tmp_path: Path, tests: str) -> subprocess.CompletedProcess:
    """pytest in a subprocess on `tests`, with the guard registered as tests/conftest.py registers it."""
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["tests.log_guard"]\n')
    (tmp_path / "test_tiny.py").write_text(textwrap.dedent(tests))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_tiny.py"]
    return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)


def test_the_log_guard_fails_a_run_that_logs_personal_data_or_a_secret_and_names_where(tmp_path: Path):
    run = run_guarded(tmp_path, GUARDED_RUN)
    report = run.stdout
    assert run.returncode == 1, report
    assert "4 passed" in report, "the tests pass; the guard fails the run"
    assert "log guard: personal data or secrets reached the logs" in report
    assert "'maya.thompson@example.com' (email of #1001's customer (seed.py))" in report
    assert "logger bot.flows.service (INFO) during test_tiny.py::test_an_email_in_orderbots_log" in report
    assert "'xoxb-sandbox-token' (SandboxSlack's bot token)" in report
    assert "logger aiohttp.access (WARNING) during test_tiny.py::test_a_token_in_a_library_warning" in report
    assert "'555-625-1199' (phone number in tests/data/webhooks/customers.data_request.json)" in report
    assert "during test_tiny.py::test_a_phone_in_an_exception" in report
    assert "test_a_library_debug_line_serve_drops" not in report, "serve logs slack_sdk at INFO: not a leak"


def test_the_log_guard_passes_a_clean_run_and_leaves_caplog_as_it_was(tmp_path: Path):
    run = run_guarded(tmp_path, CLEAN_RUN)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "2 passed" in run.stdout
    assert "log guard: 5 log records read; no personal data, no secret" in run.stdout, "orderbot's DEBUG too"


# --- 2. what the database keeps -----------------------------------------------------------------------------------


async def test_a_processed_delivery_leaves_no_address_phone_or_browser_on_disk(server: Server):
    gid = order_gid_of(server.sandbox, 1001)
    payload = with_personal_details(server.sandbox.webhook_payload(gid))
    assert (await server.post_webhook("orders/updated", payload, webhook_id="w-1001")).status == 200
    await server.settled()

    customer = customer_of(server, 1001)
    (record,) = server.rows("SELECT record FROM orders WHERE id = ?", (gid,))
    kept = json.loads(record[0])["customer"]
    assert kept == {"name": "Maya Thompson", "email": customer["email"]}, "what the alert and the notice need"
    assert server.rows("SELECT webhook_id, status, body FROM inbox") == [("w-1001", "processed", None)]
    unneeded = [STREET_ADDRESS, CUSTOMER_PHONE, BUYER_IP_ADDRESS, "Mozilla/5.0"]
    await wait_for(lambda: not found_on_disk(server.db_path, unneeded), timeout=5)

    again = await server.post_webhook("orders/updated", payload, webhook_id="w-1001")
    replayed = await server.post_webhook("orders/updated", payload, webhook_id="w-1001-replayed")
    assert [again.status, replayed.status] == [200, 200]
    assert server.rows("SELECT count(*) FROM inbox") == [(1,)], "deduplication needs no body"
    async with server.http.get(f"{server.url}/healthz") as response:
        assert (await response.json())["inbox_pending"] == 0


async def test_a_parked_delivery_keeps_only_the_fields_orderbot_reads(server: Server):
    destination = {"first_name": "Maya", "last_name": "Thompson", "address1": STREET_ADDRESS, "phone": CUSTOMER_PHONE}
    fulfillment = {"id": 4_711, "status": "success", "updated_at": "2026-01-01T00:00:00Z", "destination": destination}
    await server.post_webhook("fulfillments/create", fulfillment)  # without the order_id orderbot needs: parked
    await server.settled()

    ((status, error, body),) = server.rows("SELECT status, error, body FROM inbox")
    assert (status, error) == ("parked", "unexpected payload: 'order_id'")
    assert json.loads(body) == {"id": 4_711, "status": "success", "updated_at": "2026-01-01T00:00:00Z"}
    await wait_for(lambda: not found_on_disk(server.db_path, [STREET_ADDRESS, CUSTOMER_PHONE]), timeout=5)


# --- 3. redaction -------------------------------------------------------------------------------------------------


async def notify_customer(world: World, number: int, message: str) -> None:
    """Email the customer of order #number from its alert, as a person does (the audit keeps the message)."""
    await world.click(number, "notify_customer")
    await wait_for(lambda: any(v["callback_id"] == "notify_modal" for v in world.slack.opened_views))
    view = next(v for v in world.slack.opened_views if v["callback_id"] == "notify_modal")
    inputs = {
        "subject": {"subject": ("plain_text_input", f"Your order #{number}")},
        "message": {"message": ("plain_text_input", message)},
    }
    assert (await world.submit(view, inputs)).status == 200
    await wait_for(
        lambda: any(r["action"] == "notify_customer" and r["outcome"] == "done" for r in world.audit(number))
    )


def redaction_of(world: World, number: int) -> dict:
    customer = customer_of(world, number)
    payload = example_payload("customers/redact")
    payload["customer"] = {"id": 191167, "email": customer["email"], "phone": CUSTOMER_PHONE}
    payload["orders_to_redact"] = [int(order_gid_of(world.sandbox, number).rsplit("/", 1)[1])]
    return payload


async def test_customers_redact_leaves_nothing_of_the_customer_in_any_database_file(world: World):
    maya = customer_of(world, 1001)
    traces = [maya["email"], "Maya Thompson", "Thompson", "Maya", STREET_ADDRESS, CUSTOMER_PHONE]
    gid = order_gid_of(world.sandbox, 1001)
    await world.post_webhook("orders/updated", with_personal_details(world.sandbox.webhook_payload(gid)))
    await world.settled()
    await world.wait_for_alert(1001)
    await world.order_webhook(1002)  # another customer, who stays
    await notify_customer(world, 1001, "Hi Maya, your pillows ship on Monday.")
    assert found_on_disk(world.db_path, [maya["email"], "Hi Maya"]), "the search finds what is there"

    assert (await world.post_webhook("customers/redact", redaction_of(world, 1001))).status == 200
    await world.settled()

    assert found_on_disk(world.db_path, traces) == {}, "while the server runs"
    await wait_for(lambda: "Maya" not in json.dumps(world.alert(1001), ensure_ascii=False))  # and in Slack's alert
    (record,) = world.rows("SELECT record FROM orders WHERE name = '#1001'")
    assert json.loads(record[0])["customer"] is None, "the order itself stays, for its alert"
    assert world.rows("SELECT customer_email FROM orders WHERE name = '#1002'") == [
        (customer_of(world, 1002)["email"],)
    ]
    await world.stop_server()
    assert found_on_disk(world.db_path, traces) == {}, "after it stopped"


async def test_shop_redact_leaves_no_customer_in_any_database_file(world: World, caplog: pytest.LogCaptureFixture):
    for number in (1001, 1002, 1005):
        gid = order_gid_of(world.sandbox, number)
        await world.post_webhook("orders/updated", with_personal_details(world.sandbox.webhook_payload(gid)))
    await world.settled()
    await world.wait_for_alert(1001)
    await world.click(1001, "snooze", option=f"{order_gid_of(world.sandbox, 1001)}|1d")
    await wait_for(lambda: world.audit(1001))
    customers = [o["customer"] for o in seed_orders(world.sandbox.now())]
    traces = [c["email"] for c in customers] + [f"{c['first_name']} {c['last_name']}" for c in customers]
    traces += [STREET_ADDRESS, CUSTOMER_PHONE, BUYER_IP_ADDRESS]
    assert found_on_disk(world.db_path, traces), "the search finds what is there"

    caplog.set_level(logging.INFO, logger="bot.flows.service")
    assert (await world.post_webhook("shop/redact", example_payload("shop/redact"))).status == 200
    await wait_for(lambda: "shop/redact: erased every record of the shop" in caplog.messages)  # the delivery is gone

    assert found_on_disk(world.db_path, traces) == {}, "while the server runs"
    await world.stop_server()
    assert found_on_disk(world.db_path, traces) == {}, "after it stopped"


async def test_customers_redact_while_slack_makes_orderbot_wait_erases_the_alert_waiting_to_be_posted(world: World):
    world.slack.fail_next("chat.postMessage", "rate_limited", retry_after=2)
    await world.order_webhook(1001)
    await wait_for(lambda: world.slack.calls_to("chat.postMessage"))
    maya = customer_of(world, 1001)
    assert found_on_disk(world.db_path, ["Maya Thompson"]), "the alert waiting for Slack names her"

    await world.post_webhook("customers/redact", redaction_of(world, 1001))
    await world.settled()
    assert found_on_disk(world.db_path, ["Maya Thompson", maya["email"]]) == {}
    posted = await world.wait_for_alert(1001)
    shown_in_slack = json.dumps(posted, ensure_ascii=False)
    assert "no customer details" in shown_in_slack and "Maya" not in shown_in_slack


# --- 4. admin actions: nobody else, whatever the path -------------------------------------------------------------


@pytest.fixture
async def guarded(sandbox, tmp_path: Path) -> AsyncIterator[World]:
    """The whole product with SLACK_ADMINS = ADMIN and the user group OPS_GROUP, whose one member is GROUP_ADMIN."""
    users = {**DEFAULT_USERS, GROUP_ADMIN: "Olu Ops"}
    slack = SandboxSlack(scopes=manifest_scopes(), users=users, usergroups={OPS_GROUP: [GROUP_ADMIN]})
    admins = lambda settings: replace(settings, slack_admins=(ADMIN, OPS_GROUP))  # noqa: E731
    async with running_world(sandbox, tmp_path, slack=slack, adjust=admins) as world:
        yield world


async def known(world: World, *numbers: int) -> None:
    """Shopify tells orderbot about these orders (their alerts follow)."""
    for number in numbers:
        gid = order_gid_of(world.sandbox, number)
        assert (await world.post_webhook("orders/updated", world.sandbox.webhook_payload(gid))).status == 200
    await world.settled()


async def told(world: World, user: str) -> str:
    """What orderbot told `user` on the side: an ephemeral message, or an ephemeral post to a click's response_url."""
    await wait_for(lambda: world.slack.ephemerals(user))
    return world.slack.ephemerals(user)[-1]["text"]


def shown(answer: dict) -> str:
    return answer.get("text", "") + " " + json.dumps(answer.get("blocks", []), ensure_ascii=False)


async def forged_click(world: World, action_id: str, value: str, user: str, *, status: int = 200) -> None:
    """A block_actions payload of the clicker's making (an action id and a value of their choosing on no real
    message), signed: it comes through Slack like any click."""
    body = block_actions_body(
        action_id=action_id,
        user_id=user,
        channel_id=CHANNEL,
        message_ts="1700000000.000100",
        value=value,
        response_url=world.slack.response_url(CHANNEL, user),
    )
    assert (await world.post_slack(body)).status == status


# Each way in returns the words of an answer given at once (a command's, a modal's), or None when orderbot answers on
# the side (ephemeral).


async def alert_button(world: World, user: str, number: int, action_id: str) -> None:
    await known(world, number)
    await world.wait_for_alert(number)
    await world.click(number, action_id, user=user)


async def crafted_value(world: World, user: str, number: int, action_id: str) -> None:
    await known(world, number)
    await forged_click(world, action_id, order_gid_of(world.sandbox, number), user)


async def cancel_form(world: World, user: str, number: int, *, signed: bool) -> str | None:
    """cancel_order_modal submitted with private_metadata naming order #number: `signed` as orderbot signs the
    modals it opens, or signed with a guess at the secret."""
    await known(world, number)
    context = ModalContext(order_gid_of(world.sandbox, number), CHANNEL, None)
    metadata = pack(context, SIGNING_SECRET if signed else "a guess at the secret")
    values = input_values({"reason": {"reason": ("static_select", "FRAUD")}})
    body = view_submission_body(
        callback_id="cancel_order_modal", values=values, private_metadata=metadata, user_id=user
    )
    response = await world.post_slack(body)
    assert response.status == 200
    return json.dumps(json.loads(response.text_body)["errors"]) if response.text_body else None


async def slash(world: World, user: str, text: str, *numbers: int) -> str | None:
    """`/orders <text>`: the answer, or None when a form opened instead."""
    await known(world, *numbers)
    answers, forms = len(world.slack.responses), len(world.slack.opened_views)
    body = slash_command_body(
        text=text, user_id=user, channel_id=CHANNEL, response_url=world.slack.response_url(CHANNEL, user)
    )
    response = await world.post_slack(body)
    assert response.status == 200
    if response.text_body:
        return shown(json.loads(response.text_body))
    await wait_for(lambda: len(world.slack.responses) > answers or len(world.slack.opened_views) > forms)
    return shown(world.slack.responses[answers].body) if len(world.slack.responses) > answers else None


async def bulk_command(world: World, user: str) -> str:
    """`/orders archive #1001-#1003`, and Confirm on the preview if it has one."""
    await known(world, 1001, 1002, 1003)
    preview = await world.command("archive #1001-#1003", user=user)
    confirm = next((e for b in preview["blocks"] if b["type"] == "actions" for e in b["elements"]), None)
    if confirm is not None and confirm["action_id"] == BULK_CONFIRM:
        await forged_click(world, BULK_CONFIRM, confirm["value"], user)
    return shown(preview)


async def admins_preview(world: World) -> int:
    await known(world, 1001, 1002, 1003)
    await world.command("archive #1001-#1003", user=ADMIN)
    return world.rows("SELECT max(id) FROM bulk_runs")[0][0]


async def bulk_confirm_of_admins_preview(world: World, user: str) -> None:
    await forged_click(world, BULK_CONFIRM, str(await admins_preview(world)), user)  # run ids are easy to guess


async def bulk_stop_of_admins_run(world: World, user: str) -> None:
    run_id = await admins_preview(world)
    world.sandbox.bucket_size, world.sandbox.restore_rate = 609, 40  # about one archive a second (test_bulk.py)
    world.sandbox._available = world.sandbox.bucket_size
    await forged_click(world, BULK_CONFIRM, str(run_id), ADMIN)
    await wait_for(lambda: world.rows("SELECT status FROM bulk_runs WHERE id = ?", (run_id,)) == [("running",)])
    await forged_click(world, BULK_STOP, str(run_id), user)


def shopify_did(operation: str) -> Callable[[World], bool]:
    return lambda world: any(op.operation_name == operation and op.outcome == "ok" for op in world.sandbox.operations)


def form_opened_or_shopify_did(operation: str) -> Callable[[World], bool]:
    return lambda world: bool(world.slack.opened_views) or shopify_did(operation)(world)


def setting_saved(world: World) -> bool:
    return bool(world.rows("SELECT 1 FROM settings WHERE key = 'threshold.unfulfilled_overdue'"))


def run_started(world: World) -> bool:
    return bool(world.rows("SELECT 1 FROM bulk_runs WHERE status NOT IN ('previewed', 'cancelled', 'expired')"))


def run_stopped(world: World) -> bool:
    return bool(world.rows("SELECT 1 FROM bulk_runs WHERE stopped_by IS NOT NULL"))


@dataclass(frozen=True)
class WayIn:
    """One way to ask for an admin action. `attempt(world, user)` asks; `took_effect(world)` tells whether anything
    happened; `audit` names its audit rows: (action, order number, or None when about no one order)."""

    attempt: Callable[[World, str], Awaitable[str | None]]
    took_effect: Callable[[World], bool]
    audit: tuple[str, int | None]
    refusal: str = "only orderbot admins"  # in what a non-admin is told
    admins_may: bool = True  # False: refused to everyone
    done_is_audited: bool = True  # False: what an admin does is not audited (a form opening; Stop)


WAYS_IN = {
    "cancel_order button": WayIn(
        lambda w, u: alert_button(w, u, 1004, "cancel_order"),
        form_opened_or_shopify_did("OrderCancel"),
        ("cancel_order", 1004),
        done_is_audited=False,
    ),
    "cancel_request button": WayIn(
        lambda w, u: alert_button(w, u, 1007, "cancel_request"),
        shopify_did("CancellationRequestSubmit"),
        ("cancel_request", 1007),
    ),
    "capture_payment button": WayIn(
        lambda w, u: alert_button(w, u, 1004, "capture_payment"),
        shopify_did("OrderCapture"),
        ("capture_payment", 1004),
        refusal="only orderbot admins can. ask an admin",
    ),
    "crafted mark_as_paid value": WayIn(
        lambda w, u: crafted_value(w, u, 1003, "mark_as_paid"),
        shopify_did("OrderMarkAsPaid"),
        ("mark_as_paid", 1003),
    ),
    "crafted cancel_request value": WayIn(
        lambda w, u: crafted_value(w, u, 1009, "cancel_request"),
        shopify_did("CancellationRequestSubmit"),
        ("cancel_request", 1009),
    ),
    "crafted cancel_order value": WayIn(
        lambda w, u: crafted_value(w, u, 1001, "cancel_order"),
        form_opened_or_shopify_did("OrderCancel"),
        ("cancel_order", 1001),
        done_is_audited=False,
    ),
    "cancel_order_modal, metadata signed by orderbot": WayIn(
        lambda w, u: cancel_form(w, u, 1001, signed=True), shopify_did("OrderCancel"), ("cancel_order", 1001)
    ),
    "cancel_order_modal, metadata signed with a guess": WayIn(
        lambda w, u: cancel_form(w, u, 1001, signed=False),
        shopify_did("OrderCancel"),
        ("cancel_order", 1001),
        refusal="expired or was changed",
        admins_may=False,
    ),
    "/orders cancel": WayIn(
        lambda w, u: slash(w, u, "cancel #1001", 1001),
        form_opened_or_shopify_did("OrderCancel"),
        ("cancel_order", 1001),
        done_is_audited=False,
    ),
    "/orders cancel-request": WayIn(
        lambda w, u: slash(w, u, "cancel-request #1009", 1009),
        shopify_did("CancellationRequestSubmit"),
        ("cancel_request", 1009),
    ),
    "/orders unfulfill": WayIn(
        lambda w, u: slash(w, u, "unfulfill #1013", 1013), shopify_did("FulfillmentCancel"), ("unfulfill", 1013)
    ),
    "/orders settings set": WayIn(
        lambda w, u: slash(w, u, "settings set threshold.unfulfilled_overdue 1h"), setting_saved, ("settings", None)
    ),
    "/orders archive (bulk)": WayIn(
        bulk_command,
        run_started,
        ("bulk", None),
    ),
    "bulk_confirm click on an admin's preview": WayIn(bulk_confirm_of_admins_preview, run_started, ("bulk", None)),
    "bulk_stop click on an admin's run": WayIn(
        bulk_stop_of_admins_run,
        run_stopped,
        ("bulk", None),
        done_is_audited=False,
    ),
}


def audit_rows(world: World, user: str, audit: tuple[str, int | None]) -> list[str]:
    action, number = audit
    about = "order_id = (SELECT id FROM orders WHERE name = ?)" if number else "order_id IS NULL AND ? IS NULL"
    rows = world.rows(
        f"SELECT outcome FROM audit WHERE actor = ? AND action = ? AND {about}", (user, action, number and f"#{number}")
    )
    return [outcome for (outcome,) in rows]


@pytest.mark.parametrize("way", WAYS_IN.values(), ids=WAYS_IN.keys())
async def test_a_non_admin_is_refused_in_words_audited_and_nothing_changes(guarded: World, way: WayIn):
    words = await way.attempt(guarded, STAFF) or await told(guarded, STAFF)
    assert way.refusal in words.lower(), words
    assert not way.took_effect(guarded)
    assert not guarded.slack.opened_views, "no form opens for someone who may not use it"
    assert audit_rows(guarded, STAFF, way.audit) == ["refused"]


ALLOWED = {name: way for name, way in WAYS_IN.items() if way.admins_may}


@pytest.mark.parametrize("way", ALLOWED.values(), ids=ALLOWED.keys())
async def test_a_member_of_an_admin_user_group_may(guarded: World, way: WayIn):
    await way.attempt(guarded, GROUP_ADMIN)
    await wait_for(lambda: way.took_effect(guarded))
    if way.done_is_audited:
        await wait_for(lambda: "done" in audit_rows(guarded, GROUP_ADMIN, way.audit))
    assert "refused" not in audit_rows(guarded, GROUP_ADMIN, way.audit)
    assert guarded.slack.calls_to("usergroups.users.list"), "admin through the group, not by user id"


async def test_a_click_on_an_action_no_button_offers_does_nothing(guarded: World):
    """Unfulfil is only a command: a forged `unfulfill` click finds no listener (Bolt answers 404)."""
    await known(guarded, 1013)
    await forged_click(guarded, "unfulfill", order_gid_of(guarded.sandbox, 1013), STAFF, status=404)
    assert not shopify_did("FulfillmentCancel")(guarded)
    assert guarded.rows("SELECT count(*) FROM audit") == [(0,)]


# --- 5. the database file is its owner's --------------------------------------------------------------------------


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_the_database_and_its_wal_and_shm_are_created_owner_only(tmp_path: Path):
    directory = tmp_path / "data"
    directory.mkdir(mode=0o755)
    directory.chmod(0o755)  # whatever the umask
    db_path = directory / "orderbot.db"
    store = await Store(str(db_path)).open()
    try:
        await store.add_deliveries([Delivery("w-1", None, "orders/updated", None, None, None, "{}")])
        files = [db_path, db_path.with_name("orderbot.db-wal"), db_path.with_name("orderbot.db-shm")]
        assert {path.name: oct(mode_of(path)) for path in files} == dict.fromkeys((p.name for p in files), "0o600")
    finally:
        await store.close()
    assert mode_of(directory) == 0o755, "the directory is the operator's"


async def test_an_existing_database_open_to_others_is_made_owner_only_and_the_log_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    db_path = tmp_path / "orderbot.db"
    files = [db_path, db_path.with_name("orderbot.db-wal"), db_path.with_name("orderbot.db-shm")]
    with closing(sqlite3.connect(db_path, isolation_level=None)) as left_open:  # an operator's shell, say
        left_open.execute("PRAGMA journal_mode=WAL")
        left_open.execute("CREATE TABLE made_by_hand (a)")
        for path in files:
            path.chmod(0o644)
        caplog.set_level(logging.WARNING, logger="bot.store.sql")
        store = await Store(str(db_path)).open()
        try:
            assert [oct(mode_of(path)) for path in files] == ["0o600"] * 3
        finally:
            await store.close()
    warned = [r.getMessage() for r in caplog.records if r.name == "bot.store.sql"]
    assert warned == [f"{path} was open to others (mode 644): orderbot made it owner-only" for path in files]


async def test_the_running_servers_database_files_are_owner_only(server: Server):
    await server.post_webhook("orders/updated", server.sandbox.webhook_payload(order_gid_of(server.sandbox, 1001)))
    await server.settled()
    files = [server.db_path.with_name(server.db_path.name + suffix) for suffix in ("", "-wal", "-shm")]
    assert [oct(mode_of(path)) for path in files] == ["0o600"] * 3
