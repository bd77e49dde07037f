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
