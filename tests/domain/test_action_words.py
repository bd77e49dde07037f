"""The one-line replies: every action orderbot can plan has its words, and shop text in them is escaped."""

from __future__ import annotations

import pytest

from bot.domain.action_plans import PLANNERS, REFUND_METHODS
from bot.domain.action_words import REFUND_CHOICES, REFUND_DETAILS, action_failed_reply, action_reply, refusal


@pytest.mark.parametrize("action", sorted(PLANNERS))
def test_every_action_has_its_words(action):
    done = action_reply(action, "U0ADMIN", "a & b", order_name="#1001")
    assert done.startswith("<@U0ADMIN> ") and "#1001" in done and "(a &amp; b)" in done
    failed = action_failed_reply(action, "U0ADMIN", "Shopify said <no>.", order_name="#1001")
    assert failed.startswith("<@U0ADMIN> tried to ") and failed.endswith("Shopify said &lt;no&gt;.")
    assert refusal(action, "only admins can.").startswith("You can't ")


def test_reply_wordings():
    assert (
        action_reply("fulfill", "U0ADMIN", "UPS 1Z999, customer notified", order_name="#1001")
        == "<@U0ADMIN> marked #1001 as fulfilled (UPS 1Z999, customer notified)."
    )
    assert action_reply("archive", "U0ADMIN", None) == (
        "<@U0ADMIN> archived this order. Its fulfillment status has not changed."
    )
    assert "may still ship" in action_reply("cancel_request", "U0ADMIN", None)
    assert refusal("cancel_order", "only admins can. Ask one to add you to `SLACK_ADMINS`.") == (
        "You can't cancel this order: only admins can. Ask one to add you to `SLACK_ADMINS`."
    )
    with pytest.raises(ValueError, match="unknown action"):
        action_reply("explode", "U0ADMIN", None)


def test_every_refund_the_form_offers_has_a_mutation_input_and_words_for_the_log():
    """The cancel form's choices, what each sends to orderCancel and how the log says it are three tables over the
    same keys: a choice added to one alone would be offered and then fail as it is planned."""
    assert REFUND_CHOICES.keys() == REFUND_METHODS.keys() == REFUND_DETAILS.keys()
