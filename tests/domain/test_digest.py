"""The digest's contents and its schedule, on a fixed clock: pure functions, no I/O."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.domain.digest import (
    ARCHIVE_COMMAND,
    AuditCount,
    DigestFacts,
    StuckOrder,
    WebhookHealth,
    build_digest,
    digest_day,
    digest_due,
    digest_text,
    next_digest_at,
)

NOW = datetime(2026, 3, 10, 14, 0, tzinfo=UTC)
SHOP = "juniper-oak.myshopify.com"
NINE = time(9, 0)
STOCKHOLM = ZoneInfo("Europe/Stockholm")
NEW_YORK = ZoneInfo("America/New_York")


def stuck(n: int, reason: str = "awaiting_tracking", hours: float = 10) -> StuckOrder:
    return StuckOrder(f"gid://shopify/Order/{5000 + n}", f"#{1000 + n}", reason, NOW - timedelta(hours=hours))


def facts(**changes) -> DigestFacts:
    values = {
        "stuck_counts": {"awaiting_tracking": 5, "out_of_stock": 2},
        "previous_counts": {"awaiting_tracking": 3, "payment_pending": 1},
        "oldest": [],
        "activity": [],
        "resolve_times": [],
        "webhooks": WebhookHealth(received=1200, duplicates=7, found_by_reconcile=2),
        "archive_candidates": 0,
    }
    values.update(changes)
    return DigestFacts(**values)


def build(**changes):
    return build_digest(facts(**changes), now=NOW, zone=UTC, shop=SHOP)


def test_counts_by_reason_with_the_change_since_the_last_digest_in_the_rules_order():
    digest = build()
    shown = [(r.reason, r.count, r.change) for r in digest.stuck]
    # payment_pending is gone since the last digest: shown at 0 so the drop is visible
    assert shown == [("payment_pending", 0, -1), ("out_of_stock", 2, 2), ("awaiting_tracking", 5, 2)]
    assert (digest.total_stuck, digest.total_change) == (7, 3)
    assert digest.counts == {"out_of_stock": 2, "awaiting_tracking": 5}  # what the next digest compares with


def test_without_an_earlier_digest_there_is_no_change_to_show():
    digest = build(previous_counts=None)
    assert [r.change for r in digest.stuck] == [None, None]
    assert digest.total_change is None
    assert "since the last digest" not in digest_text(digest)


def test_the_ten_stuck_longest_oldest_first_with_admin_links():
    orders = [stuck(n, hours=n) for n in range(1, 15)]
    digest = build(oldest=orders)
    assert [o.name for o in digest.oldest] == [f"#{1000 + n}" for n in range(14, 4, -1)]
    assert digest.url(digest.oldest[0]) == "https://admin.shopify.com/store/juniper-oak/orders/5014"
    assert build_digest(facts(oldest=orders), now=NOW, zone=UTC, shop=None).url(orders[0]) is None


def test_team_activity_counts_done_by_action_and_by_person_and_the_failed_and_refused():
    activity = [
        AuditCount("fulfill", "U0ALEX", "done", 4),
        AuditCount("archive", "U0ALEX", "done", 1),
        AuditCount("archive", "U0SAM", "done", 6),
        AuditCount("cancel_order", "U0SAM", "refused", 2),
        AuditCount("fulfill", "U0SAM", "failed", 3),
        AuditCount("fulfill", "U0SAM", "already", 5),  # someone had done it in Shopify: not the team's work
        AuditCount("data_request", "shopify", "logged", 1),
    ]
    team = build(activity=activity).team
    assert team.done == 11
    assert team.by_action == (("archive", 7), ("fulfill", 4))
    assert team.by_person == (("U0SAM", 6), ("U0ALEX", 5))
    assert (team.failed, team.refused) == (3, 2)


def test_resolved_orders_and_the_median_time_to_resolve():
    hours = [timedelta(hours=h) for h in (30, 2, 5)]
    digest = build(resolve_times=hours)
    assert (digest.resolved, digest.median_to_resolve) == (3, timedelta(hours=5))
    assert build(resolve_times=[*hours, timedelta(hours=9)]).median_to_resolve == timedelta(hours=7)
    nothing = build()
    assert (nothing.resolved, nothing.median_to_resolve) == (0, None)


def test_webhook_health_is_reported_as_counted():
    assert build().webhooks == WebhookHealth(received=1200, duplicates=7, found_by_reconcile=2)


def test_deliveries_set_aside_are_named_only_when_there_are_some():
    hooks = WebhookHealth(received=10, duplicates=0, found_by_reconcile=0, parked=2)
    assert "2 deliveries could not be processed and were set aside: the server's log says why." in digest_text(
        build(webhooks=hooks)
    )
    assert WebhookHealth(1, 0, 0, parked=1).parked_words.startswith("1 delivery could not be processed and was set")
    assert "set aside" not in digest_text(build())


def test_archiving_is_suggested_only_when_old_fulfilled_orders_are_still_open():
    suggestion = build(archive_candidates=12).suggestion
    assert suggestion is not None
    assert suggestion.label == "Archive 12 orders fulfilled over 30 days ago"
    assert suggestion.command == ARCHIVE_COMMAND == "archive fulfilled older:30d"
    assert build(archive_candidates=1).suggestion.label == "Archive 1 order fulfilled over 30 days ago"
    assert build(archive_candidates=0).suggestion is None


def test_the_text_for_a_terminal_says_it_all():
    digest = build(
        oldest=[stuck(1, hours=50)],
        activity=[AuditCount("fulfill", "U0ALEX", "done", 4), AuditCount("fulfill", "U0SAM", "failed", 1)],
        resolve_times=[timedelta(hours=26)],
        archive_candidates=3,
    )
    text = digest_text(digest)
    for expected in (
        "Tuesday 10 March 2026",
        "Stuck orders: 7 (+3 since the last digest)",
        "Awaiting tracking: 5 (+2)",
        "Payment pending: 0 (-1)",
        "#1001  Awaiting tracking, for 2d 2h  https://admin.shopify.com/store/juniper-oak/orders/5001",
        "Done: fulfill 4",
        "By person: U0ALEX 4",
        "Failed: 1; refused: 0",
        "Orders resolved: 1, median time to resolve 1d 2h",
        "1,200 deliveries received, 7 duplicates dropped; 2 stuck orders found only by reconciliation",
        "Archive 3 orders fulfilled over 30 days ago: /orders archive fulfilled older:30d",
    ):
        assert expected in text, expected


def test_an_empty_shop_still_gets_a_readable_digest():
    digest = build(stuck_counts={}, previous_counts={}, webhooks=WebhookHealth(0, 0, 0))
    assert digest.stuck == () and digest.total_stuck == 0
    assert "Stuck orders: 0" in digest_text(digest) and "No actions done." in digest_text(digest)


# --- the schedule ---------------------------------------------------------------------------------------------


def test_the_day_is_the_date_in_the_digests_time_zone():
    late_evening_in_new_york = datetime(2026, 3, 11, 3, 0, tzinfo=UTC)
    assert digest_day(late_evening_in_new_york, NEW_YORK) == date(2026, 3, 10)
    assert digest_day(late_evening_in_new_york, UTC) == date(2026, 3, 11)


def test_due_from_the_digest_time_until_midnight_local():
    assert not digest_due(datetime(2026, 3, 10, 7, 59, tzinfo=UTC), NINE, STOCKHOLM)  # 08:59 CET
    assert digest_due(datetime(2026, 3, 10, 8, 0, tzinfo=UTC), NINE, STOCKHOLM)  # 09:00
    assert digest_due(datetime(2026, 3, 10, 22, 59, tzinfo=UTC), NINE, STOCKHOLM)  # 23:59
    assert not digest_due(datetime(2026, 3, 10, 23, 0, tzinfo=UTC), NINE, STOCKHOLM)  # 00:00: the next day's


def test_nine_oclock_stays_nine_oclock_across_the_spring_change():
    # Stockholm moves from CET (+1) to CEST (+2) on Sunday 29 March 2026 at 02:00.
    saturday = next_digest_at(datetime(2026, 3, 28, 6, 0, tzinfo=UTC), NINE, STOCKHOLM)
    assert saturday == datetime(2026, 3, 28, 8, 0, tzinfo=UTC)
    sunday = next_digest_at(saturday, NINE, STOCKHOLM)
    assert sunday == datetime(2026, 3, 29, 7, 0, tzinfo=UTC)
    assert sunday - saturday == timedelta(hours=23)
    assert sunday.astimezone(STOCKHOLM).time() == NINE


def test_nine_oclock_stays_nine_oclock_across_the_autumn_change():
    # New York moves from EDT (-4) to EST (-5) on Sunday 1 November 2026 at 02:00.
    saturday = next_digest_at(datetime(2026, 10, 31, 12, 0, tzinfo=UTC), NINE, NEW_YORK)
    assert saturday == datetime(2026, 10, 31, 13, 0, tzinfo=UTC)
    sunday = next_digest_at(saturday + timedelta(seconds=1), NINE, NEW_YORK)
    assert sunday == datetime(2026, 11, 1, 14, 0, tzinfo=UTC)
    assert sunday - saturday == timedelta(hours=25)


def test_a_digest_time_in_the_skipped_hour_comes_just_after_the_change():
    # 02:30 does not exist in Stockholm on 29 March 2026; the digest comes at 03:30 CEST (01:30 UTC), once.
    at = next_digest_at(datetime(2026, 3, 28, 23, 0, tzinfo=UTC), time(2, 30), STOCKHOLM)
    assert at == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    assert next_digest_at(at, time(2, 30), STOCKHOLM) == datetime(2026, 3, 30, 0, 30, tzinfo=UTC)


def test_a_digest_time_in_the_repeated_hour_comes_once_the_first_time():
    # 01:30 happens twice in New York on 1 November 2026; the digest comes at the first (EDT, 05:30 UTC).
    at = next_digest_at(datetime(2026, 11, 1, 4, 0, tzinfo=UTC), time(1, 30), NEW_YORK)
    assert at == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)
    assert next_digest_at(at, time(1, 30), NEW_YORK) == datetime(2026, 11, 2, 6, 30, tzinfo=UTC)
