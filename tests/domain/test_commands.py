"""parse(): one table row per `/orders` text, with the exact Command it gives or the exact error it raises."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.domain.commands import (
    ACTION_COMMANDS,
    ALIASES,
    EXAMPLES,
    INFO_COMMANDS,
    MAX_ORDERS,
    MAX_TEXT,
    USAGE,
    Command,
    CommandError,
    Selection,
    parse,
)
from bot.domain.rules import REASONS

H = timedelta(hours=1)
D = timedelta(days=1)
GID = "gid://shopify/Order/5830419926919"
ADMIN = "https://admin.shopify.com/store/juniper-oak/orders/5830419926919"
MYSHOPIFY = "https://juniper-oak.myshopify.com/admin/orders/5830419926919"
ORDERS_LOOK = "Orders look like `#1001`, `#1001-#1020` or an admin link; filters like `stuck`, `older:7d`, `tag:name`."
ALL_REASONS = ", ".join(REASONS)


def sel(*numbers: int, ids: tuple[str, ...] = (), **filters) -> Selection:
    return Selection(numbers=numbers, ids=ids, **filters)


STUCK = sel(stuck=True)

VALID = [
    # help
    ("", Command("help")),
    ("   ", Command("help")),
    ("help", Command("help")),
    ("HELP archive", Command("help", args={"topic": "archive"})),
    ("help ls", Command("help", args={"topic": "stuck"})),
    ("help release_hold", Command("help", args={"topic": "release-hold"})),
    ("help --share", Command("help", share=True)),
    ("--share", Command("help", share=True)),
    # stuck and its aliases
    ("stuck", Command("stuck", STUCK)),
    ("list", Command("stuck", STUCK)),
    ("ls awaiting_tracking", Command("stuck", sel(stuck=True, reason="awaiting_tracking"))),
    ("stuck stuck:on_hold", Command("stuck", sel(stuck=True, reason="on_hold"))),
    ("stuck:on_hold", Command("stuck", sel(stuck=True, reason="on_hold"))),
    ("stuck awaiting-tracking", Command("stuck", sel(stuck=True, reason="awaiting_tracking"))),
    ("stuck older:2d tag:gift-wrap", Command("stuck", sel(stuck=True, older=2 * D, tag="gift-wrap"))),
    ('stuck tag:"gift wrap"', Command("stuck", sel(stuck=True, tag="gift wrap"))),
    ("stuck Older:12H Tag:VIP", Command("stuck", sel(stuck=True, older=12 * H, tag="VIP"))),
    ("stuck fulfilled older:1w", Command("stuck", sel(stuck=True, fulfilled=True, older=7 * D))),
    (
        "stuck #1001-#1003 stuck:payment_pending",
        Command("stuck", sel(1001, 1002, 1003, stuck=True, reason="payment_pending")),
    ),
    ("stuck --share", Command("stuck", STUCK, share=True)),
    (
        "STUCK out_of_stock --share older:3d",
        Command("stuck", sel(stuck=True, reason="out_of_stock", older=3 * D), share=True),
    ),
    # show: every form of order reference
    ("show #1001", Command("show", sel(1001))),
    ("show 1001 --share", Command("show", sel(1001), share=True)),
    (f"show {GID}", Command("show", sel(ids=(GID,)))),
    ("show GID://Shopify/Order/5830419926919", Command("show", sel(ids=(GID,)))),
    (f"show {ADMIN}", Command("show", sel(ids=(GID,)))),
    (f"show {ADMIN}/", Command("show", sel(ids=(GID,)))),
    (f"show {MYSHOPIFY}?tab=timeline", Command("show", sel(ids=(GID,)))),
    (f"show <{ADMIN}|#1001>", Command("show", sel(ids=(GID,)))),
    (f"show <{MYSHOPIFY}>", Command("show", sel(ids=(GID,)))),
    (f"show <{MYSHOPIFY}?a=1&amp;b=2|{MYSHOPIFY}>", Command("show", sel(ids=(GID,)))),
    ("show #1001 #1001", Command("show", sel(1001))),
    ("SHOW ＃１００１", Command("show", sel(1001))),
    # fulfill: tracking and carrier are the free words after one order
    ("fulfill #1001", Command("fulfill", sel(1001))),
    ("fulfill #1001 1Z999 UPS", Command("fulfill", sel(1001), {"tracking_number": "1Z999", "tracking_company": "UPS"})),
    (
        "fulfill #1001 LX123 Royal Mail",
        Command("fulfill", sel(1001), {"tracking_number": "LX123", "tracking_company": "Royal Mail"}),
    ),
    (
        'fulfill #1001 LX123 "Royal Mail"',
        Command("fulfill", sel(1001), {"tracking_number": "LX123", "tracking_company": "Royal Mail"}),
    ),
    (
        "fulfill 1001 9400111899223344556677 USPS",
        Command("fulfill", sel(1001), {"tracking_number": "9400111899223344556677", "tracking_company": "USPS"}),
    ),
    ("fulfil #1001 1Z999", Command("fulfill", sel(1001), {"tracking_number": "1Z999"})),
    (
        "fulfill #1001 1Z999 A&amp;B Logistics",
        Command("fulfill", sel(1001), {"tracking_number": "1Z999", "tracking_company": "A&B Logistics"}),
    ),
    (
        "fulfill #1001 1Z999 UPS --share",
        Command("fulfill", sel(1001), {"tracking_number": "1Z999", "tracking_company": "UPS"}),
    ),
    ("fulfill #1001-#1003", Command("fulfill", sel(1001, 1002, 1003))),
    ("fulfill #1001 #1002", Command("fulfill", sel(1001, 1002))),
    ("fulfill 1001,1002", Command("fulfill", sel(1001, 1002))),
    (
        "fulfill stuck:awaiting_tracking older:3d",
        Command("fulfill", sel(stuck=True, reason="awaiting_tracking", older=3 * D)),
    ),
    # the bulk-capable actions: lists, ranges, filters, repeats
    ("request #1001", Command("request", sel(1001))),
    ("request-fulfillment #1001,#1002", Command("request", sel(1001, 1002))),
    ("request_fulfillment #1001", Command("request", sel(1001))),
    ("cancel-request #1001", Command("cancel-request", sel(1001))),
    ("cancel_request #1001", Command("cancel-request", sel(1001))),
    ("archive #1001-#1003", Command("archive", sel(1001, 1002, 1003))),
    ("archive 1001-1003", Command("archive", sel(1001, 1002, 1003))),
    ("archive #1001..#1003", Command("archive", sel(1001, 1002, 1003))),
    ("archive #1001-1003", Command("archive", sel(1001, 1002, 1003))),
    ("archive #1001-#1001", Command("archive", sel(1001))),
    ("archive #1001—#1003", Command("archive", sel(1001, 1002, 1003))),
    ("archive #1003 #1001-#1004 1002", Command("archive", sel(1003, 1001, 1002, 1004))),
    ("archive #1001, #1002,#1003 1004,", Command("archive", sel(1001, 1002, 1003, 1004))),
    (
        "archive stuck:awaiting_tracking older:7d",
        Command("archive", sel(stuck=True, reason="awaiting_tracking", older=7 * D)),
    ),
    ("archive fulfilled older:14d", Command("archive", sel(fulfilled=True, older=14 * D))),
    ("archive tag:wholesale #1001", Command("archive", sel(1001, tag="wholesale"))),
    ("archive “tag:gift wrap”", Command("archive", sel(tag="gift wrap"))),
    ('archive tag:"  gift   wrap "', Command("archive", sel(tag="gift wrap"))),
    ("archive tag:R&amp;D", Command("archive", sel(tag="R&D"))),
    ("archive\u00a0#1001\u200b", Command("archive", sel(1001))),
    ("\u202barchive\u200f #1001\u202c", Command("archive", sel(1001))),  # direction marks, from RTL text
    ("archive\x07 #1001\x1b", Command("archive", sel(1001))),  # control characters, pasted from a terminal
    ("ARCHIVE #1001 —share", Command("archive", sel(1001))),
    (f"archive #1001 {GID} <{ADMIN}>", Command("archive", sel(1001, ids=(GID,)))),
    (
        "unarchive gid://shopify/Order/1 gid://shopify/Order/2",
        Command("unarchive", sel(ids=("gid://shopify/Order/1", "gid://shopify/Order/2"))),
    ),
    ("unfulfill #1001", Command("unfulfill", sel(1001))),
    ("notify #1001", Command("notify", sel(1001))),
    ("notify-customer #1001 #1002", Command("notify", sel(1001, 1002))),
    ("cancel #1001", Command("cancel", sel(1001))),
    ("cancel-order #1001", Command("cancel", sel(1001))),
    ("cancel_order #1001", Command("cancel", sel(1001))),
    ("cancel #1001 #1002", Command("cancel", sel(1001, 1002))),
    ("cancel #1001-#1003", Command("cancel", sel(1001, 1002, 1003))),
    ("cancel stuck:on_hold", Command("cancel", sel(stuck=True, reason="on_hold"))),
    # one order only
    ("release-hold #1001", Command("release-hold", sel(1001))),
    # snooze: the duration anywhere, as typed but lower case
    ("snooze #1001 4h", Command("snooze", sel(1001), {"for": "4h"})),
    ("snooze #1001 #1002 1D", Command("snooze", sel(1001, 1002), {"for": "1d"})),
    ("snooze 1d #1001", Command("snooze", sel(1001), {"for": "1d"})),
    ("snooze #1001 for 3d", Command("snooze", sel(1001), {"for": "3d"})),
    ("snooze stuck:on_hold 1w", Command("snooze", sel(stuck=True, reason="on_hold"), {"for": "1w"})),
    ("snooze #1001 1m", Command("snooze", sel(1001), {"for": "1m"})),
    ("snooze #1001 30d", Command("snooze", sel(1001), {"for": "30d"})),
    ("snooze #1001 1d12h", Command("snooze", sel(1001), {"for": "1d12h"})),
    # log
    ("log #1001", Command("log", sel(1001))),
    ("log <@U0ABC123>", Command("log", args={"user": "U0ABC123"})),
    ("log <@U0ABC123|alex> --share", Command("log", args={"user": "U0ABC123"}, share=True)),
    ("log <@W0ABC123|alex>", Command("log", args={"user": "W0ABC123"})),
    # settings
    ("settings", Command("settings")),
    ("settings --share", Command("settings", share=True)),
    ("settings set ignore_tag do-not-ship", Command("settings", args={"key": "ignore_tag", "value": "do-not-ship"})),
    (
        "settings set threshold.awaiting_tracking 5d",
        Command("settings", args={"key": "threshold.awaiting_tracking", "value": "5d"}),
    ),
    (
        "settings SET Ignore_Tag hold for  review",
        Command("settings", args={"key": "ignore_tag", "value": "hold for review"}),
    ),
    ('settings set ignore_tag "R&amp;D  hold"', Command("settings", args={"key": "ignore_tag", "value": "R&D  hold"})),
    # scan, digest
    ("scan", Command("scan")),
    ("scan --share", Command("scan")),
    ("digest", Command("digest")),
    ("digest post", Command("digest", args={"post": "true"})),
    ("Digest --share", Command("digest", share=True)),
]


@pytest.mark.parametrize(("text", "expected"), VALID, ids=[text[:50] or "empty" for text, _ in VALID])
def test_valid_text_gives_exactly_this_command(text: str, expected: Command):
    assert parse(text) == expected


def error(text: str) -> tuple[str, str]:
    with pytest.raises(CommandError) as caught:
        parse(text)
    return caught.value.message, caught.value.usage


ARCHIVE = USAGE["archive"]
INVALID = [
    # the subcommand
    ("archve #1001", "`archve` is not an /orders command. Did you mean `archive`?", ARCHIVE),
    ("shwo #1001", "`shwo` is not an /orders command. Did you mean `show`?", USAGE["show"]),
    ("lst", "`lst` is not an /orders command. Did you mean `stuck`?", USAGE["stuck"]),
    ("frobnicate", "`frobnicate` is not an /orders command. `/orders help` lists them.", USAGE["help"]),
    ("#1001", "Start with what to do with `#1001`, like `show` or `archive`.", USAGE["show"]),
    (f"<{ADMIN}>", f"Start with what to do with `&lt;{ADMIN[:38]}…`, like `show` or `archive`.", USAGE["show"]),
    ("ステータス", "`ステータス` is not an /orders command. `/orders help` lists them.", USAGE["help"]),
    ("help archve", "`archve` is not an /orders command. Did you mean `archive`?", ARCHIVE),
    ("help archive show", "Ask about one command, like `/orders help archive`.", USAGE["help"]),
    ("archive #1001 --all", "`--all` is not an option; the only one is `--share`.", ARCHIVE),
    # missing orders, one order only
    ("archive", "Say which orders, like `/orders archive stuck:awaiting_tracking older:7d`.", ARCHIVE),
    ("fulfill", "Say which orders, like `/orders fulfill #1001 1Z999AA10123456784 UPS`.", USAGE["fulfill"]),
    ("show", "Say which order, like `/orders show #1001`.", USAGE["show"]),
    ("show --share", "Say which order, like `/orders show #1001`.", USAGE["show"]),
    ("show #1001 #1002", "Show one order at a time; `/orders stuck` lists several.", USAGE["show"]),
    ("show #1001 stuck", "Show one order at a time; `/orders stuck` lists several.", USAGE["show"]),
    (
        "release-hold #1001,#1002",
        "Release holds one order at a time: `/orders release-hold #1001`.",
        USAGE["release-hold"],
    ),
    # order references
    ("archive #1020-#1001", "That range runs backwards: write `#1001-#1020`.", ARCHIVE),
    ("archive 1020..1001", "That range runs backwards: write `#1001-#1020`.", ARCHIVE),
    ("archive #abc", "`#abc` is not an order number; they look like `#1001`.", ARCHIVE),
    ("archive #0", "`#0` is not an order: order numbers start at 1.", ARCHIVE),
    ("archive 123456789012", "`123456789012` is not an order number; they look like `#1001`.", ARCHIVE),
    ("archive #1001-#abc", "`#1001-#abc` is not an order number; they look like `#1001`.", ARCHIVE),
    ("archive 1001 - 1020", f"`-` is not an order or a filter. {ORDERS_LOOK}", ARCHIVE),
    (
        "archive gid://shopify/Product/1",
        "`gid://shopify/Product/1` is not a Shopify order id; those look like `gid://shopify/Order/123`.",
        ARCHIVE,
    ),
    (
        "archive https://example.com/orders/1",
        "`https://example.com/orders/1` is not a link to a Shopify order; copy the address of the order's admin page.",
        ARCHIVE,
    ),
    (
        "archive <https://juniper-oak.myshopify.com/admin/products/1|a product>",
        "`&lt;https://juniper-oak.myshopify.com/admi…` is not a link to a Shopify order; copy the address of the "
        "order's admin page.",
        ARCHIVE,
    ),
    ("archive <#C0123|orders>", f"`&lt;#C0123|orders&gt;` is not an order or a filter. {ORDERS_LOOK}", ARCHIVE),
    ("archive #1001,oops", f"`oops` is not an order or a filter. {ORDERS_LOOK}", ARCHIVE),
    ("archive please", f"`please` is not an order or a filter. {ORDERS_LOOK}", ARCHIVE),
    ("show 1Z999", f"`1Z999` is not an order or a filter. {ORDERS_LOOK}", USAGE["show"]),
    # too many orders
    (
        "archive #1-#5001",
        f"`#1-#5001` is 5,001 orders; one command takes at most {MAX_ORDERS:,}. Narrow it with a filter, or split it.",
        ARCHIVE,
    ),
    (
        "archive #1-#3000 #3001-#5000 5001",
        f"That is more than {MAX_ORDERS:,} orders, the most one command takes. Use a filter, or split it.",
        ARCHIVE,
    ),
    ("archive " + "#1-#5000 " * 5, "Those ranges overlap too much; name each order once.", ARCHIVE),
    # filters
    (
        "stuck awaiting_trackin",
        "`awaiting_trackin` is not a stuck reason. Did you mean `awaiting_tracking`?",
        USAGE["stuck"],
    ),
    ("stuck hold", "`hold` is not a stuck reason. Did you mean `on_hold`?", USAGE["stuck"]),
    ("stuck please", f"`please` is not a reason or a filter. Reasons: {ALL_REASONS}.", USAGE["stuck"]),
    ("stuck on_hold out_of_stock", "Pick one reason; leave it out to see every stuck order.", USAGE["stuck"]),
    ("stuck:stuck_forever", f"`stuck_forever` is not a stuck reason. Reasons: {ALL_REASONS}.", USAGE["stuck"]),
    (
        "archive stuck:awaiting_trackin",
        "`awaiting_trackin` is not a stuck reason. Did you mean `awaiting_tracking`?",
        ARCHIVE,
    ),
    ("archive stuck:", "Say which reason after `stuck:`, like `stuck:awaiting_tracking`.", ARCHIVE),
    ("archive awaiting_tracking", "To pick orders stuck for that reason, write `stuck:awaiting_tracking`.", ARCHIVE),
    ("archive tracking", "`tracking` is not a stuck reason. Did you mean `stuck:awaiting_tracking`?", ARCHIVE),
    ("archive stuk", "`stuk` is not a filter. Did you mean `stuck`?", ARCHIVE),
    ("archive fulfiled", "`fulfiled` is not a filter. Did you mean `fulfilled`?", ARCHIVE),
    ("archive older:", "Say how old after `older:`, like `older:2d`.", ARCHIVE),
    (
        "archive older:2x",
        "`2x` is not an age; use a number and a unit, like `older:12h`, `older:2d` or `older:1w`.",
        ARCHIVE,
    ),
    (
        "archive older:0d",
        "`0d` is not an age; use a number and a unit, like `older:12h`, `older:2d` or `older:1w`.",
        ARCHIVE,
    ),
    (
        "archive older:2",
        "`2` is not an age; use a number and a unit, like `older:12h`, `older:2d` or `older:1w`.",
        ARCHIVE,
    ),
    ("archive older:600w", "`older:` goes up to 10 years, like `older:520w`.", ARCHIVE),
    ("archive older:2d older:3d", "Give one `older:`.", ARCHIVE),
    ("archive tag:", 'Say which tag after `tag:`, like `tag:gift-wrap` or `tag:"gift wrap"`.', ARCHIVE),
    ('archive tag:""', 'Say which tag after `tag:`, like `tag:gift-wrap` or `tag:"gift wrap"`.', ARCHIVE),
    ("archive tag:a tag:b", "Give one `tag:`.", ARCHIVE),
    ('archive tag:"gift wrap', 'A quote is not closed: add the closing `"`.', ARCHIVE),
    ('"gift wrap', 'A quote is not closed: add the closing `"`.', USAGE["help"]),
    ("archive age:2d", "`age:` is not a filter. Did you mean `older:`?", ARCHIVE),
    (
        "archive flavour:red",
        "`flavour:` is not a filter. Filters are `stuck:reason`, `older:2d` and `tag:name`.",
        ARCHIVE,
    ),
    # fulfill's tracking words
    ("fulfill 1Z999 #1001", f"`1Z999` is not an order or a filter. {ORDERS_LOOK}", USAGE["fulfill"]),
    (
        "fulfill #1001 #1002 1Z999 UPS",
        "Tracking goes with one order at a time (a bulk fulfil takes it from the fulfilment app): "
        "leave out `1Z999 UPS`.",
        USAGE["fulfill"],
    ),
    (
        "fulfill stuck 1Z999",
        "Tracking goes with one order at a time (a bulk fulfil takes it from the fulfilment app): leave out `1Z999`.",
        USAGE["fulfill"],
    ),
    (
        "fulfill #1001 1Z;999",
        "`1Z;999` does not look like a tracking number: letters, digits and dashes.",
        USAGE["fulfill"],
    ),
    (
        "fulfill #1001 1Z999 UPS; DROP TABLE",
        "`UPS; DROP TABLE` does not look like a carrier's name, like `UPS`.",
        USAGE["fulfill"],
    ),
    ("fulfill #1001 1Z999 <script>", "`script` does not look like a carrier's name, like `UPS`.", USAGE["fulfill"]),
    # snooze
    ("snooze #1001", "Say how long to snooze, like `/orders snooze #1001 1d`.", USAGE["snooze"]),
    ("snooze 1d", "Say which orders, like `/orders snooze #1001 #1002 1d`.", USAGE["snooze"]),
    ("snooze #1001 2x", "`2x` is not a snooze length; use 4h, 1d, 3d or 1w.", USAGE["snooze"]),
    ("snooze #1001 30s", "Snooze for between 1 minute and 30 days, like `4h`, `1d` or `1w`.", USAGE["snooze"]),
    ("snooze #1001 31d", "Snooze for between 1 minute and 30 days, like `4h`, `1d` or `1w`.", USAGE["snooze"]),
    (
        "snooze #1001 99999999999999w",
        "`99999999999999w` is not a snooze length; use 4h, 1d, 3d or 1w.",
        USAGE["snooze"],
    ),
    ("snooze #1001 1d 2d", "Give one snooze length, like `4h`, `1d` or `1w`.", USAGE["snooze"]),
    # log
    ("log", "Say which order, like `/orders log #1001`.", USAGE["log"]),
    (
        "log @alex",
        "Pick the person from Slack's list as you type @ (a name typed in full cannot be looked up).",
        USAGE["log"],
    ),
    ("log <@U0ABC123> #1001", "`log` takes one order or one person.", USAGE["log"]),
    ("log #1001 #1002", "`log` takes one order or one person.", USAGE["log"]),
    ("log <@alex>", "`&lt;@alex&gt;` is not a person; pick one as you type @.", USAGE["log"]),
    # settings, scan, digest
    (
        "settings show",
        "`show` is not something settings does: `/orders settings` shows them, `/orders settings set key value` "
        "changes one.",
        USAGE["settings"],
    ),
    (
        "settings set",
        "Say which setting and its new value, like `/orders settings set threshold.awaiting_tracking 5d`.",
        USAGE["settings"],
    ),
    (
        "settings set ignore_tag",
        "Say the new value, like `/orders settings set threshold.awaiting_tracking 5d`.",
        USAGE["settings"],
    ),
    (
        "settings set 9lives x",
        "`9lives` is not a setting's name; names look like `ignore_tag` or `threshold.on_hold`.",
        USAGE["settings"],
    ),
    ("scan now", "`scan` takes nothing after it: `/orders scan`.", USAGE["scan"]),
    (
        "digest now",
        "`now` is not something digest does: `/orders digest` shows today's digest, `/orders digest post` posts it to "
        "the channel.",
        USAGE["digest"],
    ),
    # hostile or odd text: an unknown word, echoed short and escaped
    ("'; DROP TABLE orders; --", "`';` is not an /orders command. `/orders help` lists them.", USAGE["help"]),
    ("archive '; DROP TABLE orders; --", f"`';` is not an order or a filter. {ORDERS_LOOK}", ARCHIVE),
    (
        "<script>alert(1)</script>",
        "`&lt;script&gt;` is not an /orders command. `/orders help` lists them.",
        USAGE["help"],
    ),
    (
        "&lt;script&gt;alert(1)&lt;/script&gt;",
        "`&lt;script&gt;alert(1)&lt;/script&gt;` is not an /orders command. `/orders help` lists them.",
        USAGE["help"],
    ),
    ("archive `rm -rf /`", f"`'rm` is not an order or a filter. {ORDERS_LOOK}", ARCHIVE),
    ("archive & more", f"`&amp;` is not an order or a filter. {ORDERS_LOOK}", ARCHIVE),
    ("archive 🎁", f"`🎁` is not an order or a filter. {ORDERS_LOOK}", ARCHIVE),
    ("archive " + "A" * 100, f"`{'A' * 39}…` is not an order or a filter. {ORDERS_LOOK}", ARCHIVE),
    (
        "x" * (MAX_TEXT + 1),
        f"That command is too long ({MAX_TEXT + 1:,} characters; the most is {MAX_TEXT:,}). "
        "Name fewer orders, or use a range or a filter.",
        USAGE["help"],
    ),
]


@pytest.mark.parametrize(("text", "message", "usage"), INVALID, ids=[text[:50] for text, _, _ in INVALID])
def test_malformed_text_says_what_is_wrong_and_the_closest_usage(text: str, message: str, usage: str):
    assert error(text) == (message, usage)


def test_every_subcommand_has_a_usage_line_and_an_example_that_parses_as_itself():
    subcommands = {*ACTION_COMMANDS, *INFO_COMMANDS}
    assert set(USAGE) == set(EXAMPLES) == subcommands
    for name, example in EXAMPLES.items():
        assert parse(example).name == name
        assert USAGE[name].split()[0] == name
    assert set(ALIASES.values()) <= subcommands


def test_usage_and_examples_are_safe_in_mrkdwn_as_they_are():
    for line in [*USAGE.values(), *EXAMPLES.values()]:
        assert not set(line) & set("&<>`"), line


def test_a_range_of_max_orders_is_allowed_and_acts_in_bulk():
    command = parse(f"archive #1-#{MAX_ORDERS}")
    assert command.selection is not None
    assert command.selection.numbers == tuple(range(1, MAX_ORDERS + 1))
    assert command.action == "archive" and command.bulk


def test_single_and_bulk():
    assert not parse("archive #1001").bulk
    assert parse("archive #1001 #1002").bulk
    assert parse("archive #1001 stuck").bulk
    assert parse("snooze stuck:on_hold 1d").bulk
    assert parse("delete #1001").bulk  # it cannot be undone: even one order is previewed, to be confirmed
    assert parse("cancel #1001").action == "cancel_order"
    assert not parse("cancel #1001").bulk  # one order: its own form, the single cancel
    assert parse("cancel #1001 #1002").bulk and parse("cancel stuck").bulk
    assert not parse("show #1001 #1001").bulk  # an information command is never bulk
    assert parse("fulfill #1001 1Z999").selection.single


def test_text_of_exactly_max_text_characters_is_read():
    text = "archive " + ",".join(["#1001"] * ((MAX_TEXT - 8) // 6))
    text += " " * (MAX_TEXT - len(text))
    assert len(text) == MAX_TEXT
    assert parse(text) == Command("archive", sel(1001))


@pytest.mark.parametrize(
    "text",
    ["archive " + "<" * 400 + "script>" * 400, "x" * 3000, "archive " + "é" * 3000, "show " + "&lt;" * 900],
)
def test_an_error_never_repeats_more_than_40_characters_of_the_text(text: str):
    message, _ = error(text)
    echoed = message.split("`")[1]
    unescaped = echoed.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    assert len(unescaped) <= 40
    assert "<" not in message and ">" not in message
