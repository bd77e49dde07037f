"""What a resolved alert offers, and when a resolved alert is told what a person did to its order since."""

from __future__ import annotations

import pytest

from bot.domain.alerts import plan_alert, resolved_actions
from bot.domain.rules import Verdict


@pytest.mark.parametrize(
    ("status", "actions"),
    [("closed", ("delete",)), ("cancelled", ("delete",)), ("deleted", ()), ("ok", ()), ("ignored", ())],
)
def test_only_an_archived_or_cancelled_orders_resolved_alert_offers_delete(status: str, actions: tuple[str, ...]):
    assert resolved_actions(Verdict(status)) == actions


def test_a_resolved_alert_is_updated_only_when_a_person_acted_on_it():
    resolved = ("resolved", True, "archived")
    assert plan_alert(*resolved, "resolved", "deleted") is None  # deleted in Shopify: the alert stays as it was
    assert plan_alert(*resolved, "resolved", "deleted", restated=True) == "update"  # deleted from orderbot: it says who
    assert plan_alert(*resolved, "resolved", "archived", restated=True) is None  # nothing new to show
    assert plan_alert(*resolved, "stuck", "stuck", restated=True) == "post"  # stuck again: a new message, as ever


def test_a_new_alert_a_scan_holds_back_waits_without_a_message_until_released_or_no_longer_stuck():
    assert plan_alert(None, False, None, "stuck", "f1", hold=True) == "hold"
    assert plan_alert("resolved", True, "f0", "stuck", "f1", hold=True) == "hold"  # stuck again, in a burst
    assert plan_alert(None, False, None, "waiting", "f1", hold=True) is None
    held = ("held", False, None)
    assert plan_alert(*held, "stuck", "f1", hold=True) is None  # still waiting
    assert plan_alert(*held, "stuck", "f1") == "post"  # released
    assert plan_alert(*held, "snoozed", "f1", hold=True) == "forget"  # Slack never saw it: nothing to tell
    assert plan_alert(*held, "resolved", "f1") == "forget"
    # an alert Slack has is never held back
    assert plan_alert("stuck", True, "f0", "stuck", "f1", hold=True) == "update"
