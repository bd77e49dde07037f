"""`draw`: what an `/orders` command found, in words. The answers no end-to-end test reaches are checked here."""

from __future__ import annotations

import pytest

from bot.flows.command_results import NameOneOrder, NeedsChannel, ShopifyUnavailable, UnknownSetting
from bot.slack.command_answers import draw

SHOP = "juniper-oak.myshopify.com"


@pytest.mark.parametrize(
    ("result", "said"),
    [
        (NameOneOrder(), "Name one order, e.g. `#1001`."),
        (ShopifyUnavailable("Throttled"), "Shopify did not answer, so nothing changed: Throttled"),
        (NeedsChannel("digest"), "The digest need SLACK_CHANNEL_ID; set it and restart orderbot."),
        (NeedsChannel("bulk"), "Bulk actions need SLACK_CHANNEL_ID; set it and restart orderbot."),
        (
            UnknownSetting("<!here>", ["ignore_tag", "digest_time"]),
            "`&lt;!here&gt;` is not a setting. Use one of: `ignore_tag`, `digest_time`",
        ),
    ],
)
def test_one_line_answers_say_what_to_do(result, said: str):
    message = draw(result, shop=SHOP)
    assert message["text"] == said
    assert message["blocks"][0]["text"]["text"] == said
