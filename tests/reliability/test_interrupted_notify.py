"""An email to a customer that was on its way when the server died (kill -9) may have been delivered: orderbot cannot
know. The restarted server records the cut-short action in the audit log, and the bulk run it resumes does not email
that customer a second time; it skips the order and says why."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from bot.sandbox.seed import seed_orders
from bot.sandbox.smtp import SandboxSMTP
from tests.conftest import free_port, wait_for
from tests.reliability.crash_support import Sandboxes, Server, SlackPerson, confirm_value, rows, server_environment

NOTIFIED = ("#1002", "#1003", "#1005")  # three stuck orders whose customers have an email address


async def test_a_notice_cut_short_by_a_kill_is_not_sent_again_when_the_bulk_run_resumes(tmp_path: Path):
    world = await Sandboxes.start(seed_orders(datetime.now(UTC)))
    smtp = SandboxSMTP()
    smtp_url = await smtp.start()
    db_path = tmp_path / "orderbot.db"
    env = server_environment(world, db_path, free_port()) | {"SMTP_URL": smtp_url, "SMTP_FROM": "orders@example.com"}
    server = Server(env, tmp_path)
    try:
        await server.start()
        names = ", ".join(f"'{name}'" for name in NOTIFIED)
        in_store = f"SELECT count(*) FROM verdicts v JOIN orders o ON o.id = v.order_id WHERE o.name IN ({names})"
        await wait_for(lambda: rows(db_path, in_store) == [(len(NOTIFIED),)], 30)  # the scan at start found them
        person = SlackPerson(world, server)
        preview = await person.command("notify " + " ".join(NOTIFIED))
        run_id = confirm_value(preview)
        smtp.delay_next(120)  # the first email's DATA is taken, its answer held: orderbot is mid-send
        await person.confirm(preview)
        await wait_for(lambda: len(smtp.messages) == len(NOTIFIED), 30)  # all three reached the mail server
        await wait_for(lambda: len(rows(db_path, "SELECT 1 FROM audit WHERE action = 'notify_customer'")) == 2, 30)

        await server.kill()  # one email is still waiting for the mail server's answer
        await server.start()
        await wait_for(lambda: rows(db_path, "SELECT status FROM bulk_runs WHERE id = ?", (run_id,)) == [("done",)], 30)
        await server.stop()
    finally:
        if server.process and server.process.returncode is None:
            await server.kill()
        await smtp.stop()
        await world.stop()

    recipients = Counter(mail.message["To"] for mail in smtp.messages)
    assert len(recipients) == len(NOTIFIED) and set(recipients.values()) == {1}, recipients
    outcomes = Counter(o for (o,) in rows(db_path, "SELECT outcome FROM audit WHERE action = 'notify_customer'"))
    # An order whose email went out just before the kill, but whose bulk item was not yet marked, comes back "already"
    assert outcomes["done"] == 2 and outcomes["interrupted"] == 1 and outcomes["refused"] == 1, outcomes
    assert set(outcomes) <= {"done", "interrupted", "refused", "already"}, outcomes
    skipped = [
        m for (m,) in rows(db_path, "SELECT message FROM bulk_items WHERE run_id = ? AND status = 'skipped'", (run_id,))
    ]
    # The interrupted one is skipped for what may have gone out; an "already" one (see above) is skipped too.
    assert len([m for m in skipped if "may have gone out" in m]) == 1, skipped
    assert len(skipped) == 1 + outcomes["already"], (skipped, outcomes)
    (interrupted,) = rows(db_path, "SELECT inputs, error FROM audit WHERE outcome = 'interrupted'")
    assert json.loads(interrupted[0]) == {} and "may or may not have happened" in interrupted[1]
