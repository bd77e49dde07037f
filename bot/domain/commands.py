"""`/orders …` text → a `Command`. Pure: no I/O.

What the text may say (docs/commands.md renders USAGE and EXAMPLES):
- one order: `#1001`, `1001`, `gid://shopify/Order/123`, an admin URL (`https://admin.shopify.com/store/x/orders/123`,
  `https://x.myshopify.com/admin/orders/123`), possibly wrapped by Slack as `<https://…>` or `<https://…|label>`;
- several: lists (`#1001 #1002`, `#1001,#1002`) and ranges (`#1001-#1020`, `1001-1020`);
- filters: `stuck` (any reason), `stuck:<reason>`, `older:<duration>`, `tag:<tag>`, `fulfilled` (fully shipped
  but still open — archive candidates);
- `--share` anywhere: answer in the channel instead of only to the person (for help, stuck, show, log, settings and
  digest; an action ignores it).

`fulfill #1001 1Z999 UPS`: after the first order, a bare number or word starts the tracking number and carrier (a
USPS tracking number is all digits); name more orders with `#`, commas, a range or a filter.

Slack's escaping is undone before parsing (`&lt;` → `<`; `<https://…|label>` → the link; `<@U123|alex>` → a
person) and redone in the user text an error message repeats, which is at most 40 characters.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from types import MappingProxyType

from bot.domain.durations import parse_duration
from bot.domain.rules import REASONS

# subcommand -> the action id it runs (the alert's action ids, plus "unfulfill")
ACTION_COMMANDS: Mapping[str, str] = MappingProxyType(
    {
        "fulfill": "fulfill",
        "request": "request_fulfillment",
        "cancel-request": "cancel_request",
        "release-hold": "release_hold",
        "archive": "archive",
        "unarchive": "unarchive",
        "unfulfill": "unfulfill",
        "notify": "notify_customer",
        "cancel": "cancel_order",
        "snooze": "snooze",
        "delete": "delete",
    }
)
# action ids that may run over many orders at once (preview, confirm, progress, summary)
BULK_ACTIONS = frozenset(
    {
        "archive",
        "unarchive",
        "fulfill",
        "request_fulfillment",
        "cancel_request",
        "unfulfill",
        "notify_customer",
        "snooze",
        "delete",
        "cancel_order",
    }
)
# action ids that cannot be undone and have no form to stop at: even one order gets the preview, and its Confirm
CONFIRMED_ACTIONS = frozenset({"delete"})
INFO_COMMANDS = ("help", "stuck", "show", "log", "settings", "scan", "digest")
MAX_ORDERS = 5000  # the most orders one command may name (a range of 5,000 is already a big bulk run)
# How much an answer reads: the orders on a page of `/orders stuck`, the audit rows of `/orders log`, the last
# actions on an order's card (`/orders show`).
STUCK_PAGE_SIZE = 20
LOG_LIMIT = 20
CARD_ACTIONS = 5


@dataclass(frozen=True, slots=True)
class Selection:
    """The orders a command is about: named ones (numbers, ranges, ids) and/or a filter.

    Named orders and a filter combine as "named AND filter" (e.g. `#1001-#1100 stuck:awaiting_tracking`).
    `older` is measured from what the filter is about: stuck since (with `stuck`), shipped at (with `fulfilled`),
    else the order's creation.
    """

    numbers: tuple[int, ...] = ()  # order numbers as typed (#1001 → 1001), ranges expanded, in the order given
    ids: tuple[str, ...] = ()  # gid://shopify/Order/… (from gids and admin URLs)
    stuck: bool = False  # `stuck` or `stuck:<reason>`
    reason: str | None = None  # with stuck: one reason of rules.REASONS
    older: timedelta | None = None
    tag: str | None = None
    fulfilled: bool = False

    @property
    def named(self) -> int:
        return len(self.numbers) + len(self.ids)

    @property
    def has_filter(self) -> bool:
        return self.stuck or self.older is not None or self.tag is not None or self.fulfilled

    @property
    def single(self) -> bool:
        """Exactly one order named and no filter: the command acts at once, without a bulk preview."""
        return self.named == 1 and not self.has_filter


@dataclass(frozen=True, slots=True)
class Command:
    """One parsed `/orders` command.

    name: a key of ACTION_COMMANDS or one of INFO_COMMANDS.
    args, by name:
      fulfill: tracking_number, tracking_company (both optional)
      snooze: for (a duration as typed, e.g. "1d")
      log: user (a Slack user id, from `<@U123|name>`), when not about an order
      settings: key, value (for `settings set <key> <value>`)
      digest: post ("true" for `digest post`)
      stuck: page (a number, from the "more" button; default "1")
      help: topic (a subcommand name, optional)
    """

    name: str
    selection: Selection | None = None
    args: Mapping[str, str] = field(default_factory=dict)
    share: bool = False

    @property
    def action(self) -> str | None:
        return ACTION_COMMANDS.get(self.name)

    @property
    def bulk(self) -> bool:
        """Run through a preview and its Confirm: many orders, or an action that cannot be undone."""
        if self.action is None or self.selection is None:
            return False
        return not self.selection.single or self.action in CONFIRMED_ACTIONS


class CommandError(ValueError):
    """The text could not be understood: `message` says why in one line; `usage` is the closest valid form."""

    def __init__(self, message: str, usage: str):
        super().__init__(message)
        self.message = message
        self.usage = usage


MAX_TEXT = 4000  # characters: longer text is refused before it is read
SHAREABLE = frozenset({"help", "stuck", "show", "log", "settings", "digest"})  # where `--share` means something
SNOOZE_SHORTEST = timedelta(minutes=1)
SNOOZE_LONGEST = timedelta(days=30)
OLDER_LONGEST = timedelta(days=3650)  # beyond this `now - older` leaves the calendar's range
_ECHO = 40  # the most user text an error message repeats

# Other names people type for a subcommand. Action ids (`cancel_order`, `release_hold`, …) work too: `_` reads as `-`.
ALIASES: Mapping[str, str] = MappingProxyType(
    {
        "list": "stuck",
        "ls": "stuck",
        "fulfil": "fulfill",
        "cancel-order": "cancel",
        "request-fulfillment": "request",
        "notify-customer": "notify",
    }
)
# One line each, after `/orders `, in the order help lists them; plain text without Slack's control characters.
USAGE: Mapping[str, str] = MappingProxyType(
    {
        "stuck": "stuck [reason] [older:2d] [tag:name]",
        "show": "show #1001",
        "log": "log #1001 | @person",
        "fulfill": "fulfill #1001 [tracking-number] [carrier]",
        "request": "request #1001 [more orders or a filter]",
        "cancel-request": "cancel-request #1001 [more orders or a filter]",
        "release-hold": "release-hold #1001",
        "snooze": "snooze #1001 [more orders or a filter] 1d",
        "notify": "notify #1001 [more orders or a filter]",
        "archive": "archive #1001 [more orders or a filter]",
        "unarchive": "unarchive #1001 [more orders or a filter]",
        "unfulfill": "unfulfill #1001 [more orders or a filter]",
        "delete": "delete #1001 [more orders or a filter]",
        "cancel": "cancel #1001 [more orders or a filter]",
        "scan": "scan",
        "digest": "digest [post]",
        "settings": "settings [set key value]",
        "help": "help [command]",
    }
)
EXAMPLES: Mapping[str, str] = MappingProxyType(
    {
        "stuck": "stuck awaiting_tracking older:2d",
        "show": "show #1001",
        "log": "log #1001",
        "fulfill": "fulfill #1001 1Z999AA10123456784 UPS",
        "request": "request #1001",
        "cancel-request": "cancel-request #1001",
        "release-hold": "release-hold #1001",
        "snooze": "snooze #1001 #1002 1d",
        "notify": "notify #1001",
        "archive": "archive stuck:awaiting_tracking older:7d",
        "unarchive": "unarchive #1001",
        "unfulfill": "unfulfill #1001",
        "delete": "delete #1001-#1020",
        "cancel": "cancel #1001",
        "scan": "scan",
        "digest": "digest post",
        "settings": "settings set threshold.awaiting_tracking 5d",
        "help": "help archive",
    }
)

# What phones and word processors do to typed text, undone: smart quotes and dashes (an em dash is the two hyphens
# it replaced, as in `—share`). Then what cannot be seen goes (`_visible`), and NFKC folds full-width forms and odd
# spaces.
_TYPING = str.maketrans(
    {
        **dict.fromkeys("“”„‟«»", '"'),
        **dict.fromkeys("‘’‚‛", "'"),
        **dict.fromkeys("‐‑‒–―−", "-"),
        "—": "--",
    }
)
_NUMBER = re.compile(r"#?([0-9]{1,11})")  # Shopify order numbers have at most 11 digits
_RANGE = re.compile(r"#?([0-9]{1,11})(?:-{1,2}|\.{2,3})#?([0-9]{1,11})")
_GID = re.compile(r"gid://shopify/order/([0-9]{1,20})", re.IGNORECASE)
_ADMIN_URL = re.compile(
    r"(?:https?://)?(?:admin\.shopify\.com/store/[a-z0-9][a-z0-9-]*|[a-z0-9][a-z0-9-]*\.myshopify\.com/admin)"
    r"/orders/([0-9]{1,20})/?(?:[?#]\S*)?",
    re.IGNORECASE,
)
_OPTION = re.compile(r"--[a-z][\w-]*", re.IGNORECASE)
_USER = re.compile(r"@([UW][A-Z0-9]{2,})(?:\|.*)?")  # Slack's `<@U0ABC123>` or `<@U0ABC123|alex>`, unwrapped
_DURATION_LIKE = re.compile(r"(?:[0-9]+[a-z]+)+", re.IGNORECASE)
_SETTING_KEY = re.compile(r"[a-z][a-z0-9_]{0,63}(?:\.[a-z0-9_]{1,64})*")
_TRACKING = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,99}")
_CARRIER = re.compile(r"[^\W_][\w&.'()/+ -]{0,99}")
_FILTER_WORDS = ("stuck", "fulfilled")
_FILTER_KEYS = ("stuck:", "older:", "tag:")
_FILTER_SYNONYMS = {"age": "older:", "since": "older:", "reason": "stuck:", "tags": "tag:"}
_ORDERS_LOOK = "Orders look like `#1001`, `#1001-#1020` or an admin link; filters like `stuck`, `older:7d`, `tag:name`."


@dataclass(frozen=True, slots=True)
class _Word:
    """One word of the command: quotes removed, Slack's entities decoded; `link` for Slack's `<…>` (without them)."""

    text: str
    link: bool = False

    @property
    def shown(self) -> str:
        return f"<{self.text}>" if self.link else self.text


class _UnclosedQuote(ValueError):
    pass


def parse(text: str) -> Command:
    """Read one `/orders` command. Raises CommandError saying what was wrong and the closest valid usage."""
    if len(text) > MAX_TEXT:
        raise CommandError(
            f"That command is too long ({len(text):,} characters; the most is {MAX_TEXT:,}). "
            "Name fewer orders, or use a range or a filter.",
            USAGE["help"],
        )
    typed = unicodedata.normalize("NFKC", _visible(text.translate(_TYPING)))
    try:
        words = _words(typed)
    except _UnclosedQuote:
        guess = _command_name(typed.split()[0].casefold()) or "help"
        raise CommandError('A quote is not closed: add the closing `"`.', USAGE[guess]) from None
    share = any(_is_share(word) for word in words)
    words = [word for word in words if not _is_share(word)]
    if not words:
        return Command("help", share=share)
    name, rest = _subcommand(words)
    for word in rest:
        if not word.link and _OPTION.fullmatch(word.text):
            raise CommandError(f"{_echo(word.text)} is not an option; the only one is `--share`.", USAGE[name])
    command = _PARSERS[name](name, rest)
    return replace(command, share=share and name in SHAREABLE)


# --- reading the text ----------------------------------------------------------------------------------------------


def _words(text: str) -> list[_Word]:
    """Split on white space, keeping "quoted parts" and Slack's `<…>` whole."""
    words = []
    i = 0
    while i < len(text):
        if text[i].isspace():
            i += 1
            continue
        end = text.find(">", i) if text[i] == "<" else -1
        if end != -1 and text.find("<", i + 1, end) == -1:
            words.append(_Word(_decode(text[i + 1 : end]).strip(), link=True))
            i = end + 1
            continue
        start, parts = i, []
        while i < len(text) and not text[i].isspace() and (i == start or text[i] != "<"):
            if text[i] == '"':
                close = text.find('"', i + 1)
                if close == -1:
                    raise _UnclosedQuote
                parts.append(text[i + 1 : close])
                i = close + 1
            else:
                parts.append(text[i])
                i += 1
        words.append(_Word(_decode("".join(parts)).strip()))
    return [word for word in words if word.text]


def _visible(text: str) -> str:
    """Without the characters that cannot be seen but would stop a word from matching: soft hyphens, zero-width
    spaces, the direction marks text copied from a right-to-left language carries, control characters. White space
    stays: it separates words."""
    return "".join(c for c in text if c.isprintable() or c.isspace())


def _decode(text: str) -> str:
    """Slack sends `&`, `<` and `>` typed by a person as entities."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _echo(text: str) -> str:
    """User text for an error message: one line, at most _ECHO characters, in a code span, escaped for Slack."""
    shown = " ".join("".join(c if c.isprintable() else " " for c in text).split()).replace("`", "'")
    if len(shown) > _ECHO:
        shown = shown[: _ECHO - 1] + "…"
    return "`" + shown.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") + "`"


def _is_share(word: _Word) -> bool:
    return not word.link and word.text.lower() in ("--share", "-share")


def _command_name(typed: str) -> str | None:
    typed = typed.replace("_", "-")
    typed = ALIASES.get(typed, typed)
    return typed if typed in USAGE else None


def _subcommand(words: Sequence[_Word]) -> tuple[str, Sequence[_Word]]:
    first = words[0]
    typed = first.text.casefold()
    if not first.link and typed.startswith("stuck:"):  # `/orders stuck:on_hold` means `/orders stuck stuck:on_hold`
        return "stuck", words
    name = None if first.link else _command_name(typed)
    if name is not None:
        return name, words[1:]
    if _NUMBER.fullmatch(first.text) or _RANGE.fullmatch(first.text) or _GID.fullmatch(first.text) or _is_link(first):
        raise CommandError(f"Start with what to do with {_echo(first.shown)}, like `show` or `archive`.", USAGE["show"])
    raise _not_a_command(first)


def _is_link(word: _Word) -> bool:
    return "://" in word.text or (word.link and word.text.lower().startswith(("http", "www.")))


def _not_a_command(word: _Word) -> CommandError:
    typed = word.text.casefold().replace("_", "-")
    close = [] if word.link else difflib.get_close_matches(typed, [*USAGE, *ALIASES], n=1)
    if not close:
        return CommandError(f"{_echo(word.shown)} is not an /orders command. `/orders help` lists them.", USAGE["help"])
    name = ALIASES.get(close[0], close[0])
    return CommandError(f"{_echo(word.shown)} is not an /orders command. Did you mean `{name}`?", USAGE[name])


def _reason(text: str) -> str | None:
    reason = text.lower().replace("-", "_")
    return reason if reason in REASONS else None


def _close_reason(text: str) -> str | None:
    close = difflib.get_close_matches(text.lower().replace("-", "_"), REASONS, n=1)
    return close[0] if close else None


# --- orders and filters --------------------------------------------------------------------------------------------


class _Picker:
    """Collects the orders and filters a command names, in the order given, without repeats."""

    def __init__(self, name: str):
        self.name = name
        self.numbers: dict[int, None] = {}
        self.typed = 0  # orders named counting repeats: bounds the work overlapping ranges can cause
        self.ids: dict[str, None] = {}
        self.stuck = name == "stuck"
        self.reason: str | None = None
        self.older: timedelta | None = None
        self.tag: str | None = None
        self.fulfilled = False

    def error(self, message: str) -> CommandError:
        return CommandError(message, USAGE[self.name])

    def take(self, word: _Word) -> bool:
        """Add the orders or filter `word` names; False when it names none (the caller may know it)."""
        if word.link:
            target = word.text.split("|", 1)[0].strip()
            if not (match := _ADMIN_URL.fullmatch(target)):
                raise self.unknown(word)
            self._add_ids(f"gid://shopify/Order/{match[1]}")
            return True
        parts = [part.strip() for part in word.text.split(",") if part.strip()]
        if len(parts) == 1:
            return self._take_part(parts[0])
        for part in parts:  # a list is orders and filters only
            if not self._take_part(part):
                raise self.unknown(_Word(part))
        return True

    def _take_part(self, text: str) -> bool:
        lowered = text.lower()
        if match := _NUMBER.fullmatch(text):
            self._add_range(int(match[1]), int(match[1]), text)
        elif match := _RANGE.fullmatch(text):
            self._add_range(int(match[1]), int(match[2]), text)
        elif (match := _GID.fullmatch(text)) or (match := _ADMIN_URL.fullmatch(text)):
            self._add_ids(f"gid://shopify/Order/{match[1]}")
        elif lowered == "stuck":
            self.stuck = True
        elif lowered == "fulfilled":
            self.fulfilled = True
        elif ":" in text and "://" not in text:
            self._filter(*text.split(":", 1))
        else:
            return False
        return True

    def _add_range(self, first: int, last: int, text: str) -> None:
        if first < 1:
            raise self.error(f"{_echo(text)} is not an order: order numbers start at 1.")
        if first > last:
            raise self.error(f"That range runs backwards: write `#{last}-#{first}`.")
        if last - first >= MAX_ORDERS:
            raise self.error(
                f"`#{first}-#{last}` is {last - first + 1:,} orders; one command takes at most {MAX_ORDERS:,}. "
                "Narrow it with a filter, or split it."
            )
        self.typed += last - first + 1
        if self.typed > 4 * MAX_ORDERS:
            raise self.error("Those ranges overlap too much; name each order once.")
        self.numbers.update(dict.fromkeys(range(first, last + 1)))
        self._check_count()

    def _add_ids(self, order_id: str) -> None:
        self.ids[order_id] = None
        self._check_count()

    def _check_count(self) -> None:
        if len(self.numbers) + len(self.ids) > MAX_ORDERS:
            raise self.error(
                f"That is more than {MAX_ORDERS:,} orders, the most one command takes. Use a filter, or split it."
            )

    def _filter(self, key: str, value: str) -> None:
        key, value = key.strip().lower(), value.strip()
        if key == "stuck":
            if not value:
                raise self.error("Say which reason after `stuck:`, like `stuck:awaiting_tracking`.")
            reason = _reason(value)
            if reason is None:
                raise self._bad_reason(value)
            self.set_reason(reason)
        elif key == "older":
            self._older(value)
        elif key == "tag":
            tag = " ".join(value.split())
            if not tag:
                raise self.error('Say which tag after `tag:`, like `tag:gift-wrap` or `tag:"gift wrap"`.')
            if self.tag not in (None, tag):
                raise self.error("Give one `tag:`.")
            self.tag = tag
        else:
            close = (
                [_FILTER_SYNONYMS[key]]
                if key in _FILTER_SYNONYMS
                else difflib.get_close_matches(f"{key}:", _FILTER_KEYS, n=1)
            )
            hint = f"Did you mean `{close[0]}`?" if close else "Filters are `stuck:reason`, `older:2d` and `tag:name`."
            raise self.error(f"{_echo(key + ':')} is not a filter. {hint}")

    def _older(self, value: str) -> None:
        if not value:
            raise self.error("Say how old after `older:`, like `older:2d`.")
        try:
            span = parse_duration(value)
        except (ValueError, OverflowError):
            raise self.error(
                f"{_echo(value)} is not an age; use a number and a unit, like `older:12h`, `older:2d` or `older:1w`."
            ) from None
        if span > OLDER_LONGEST:
            raise self.error("`older:` goes up to 10 years, like `older:520w`.")
        if self.older not in (None, span):
            raise self.error("Give one `older:`.")
        self.older = span

    def set_reason(self, reason: str) -> None:
        if self.reason not in (None, reason):
            raise self.error("Pick one reason; leave it out to see every stuck order.")
        self.stuck, self.reason = True, reason

    def _bad_reason(self, value: str) -> CommandError:
        close = _close_reason(value)
        hint = f"Did you mean `{close}`?" if close else f"Reasons: {', '.join(REASONS)}."
        return self.error(f"{_echo(value)} is not a stuck reason. {hint}")

    def unknown(self, word: _Word) -> CommandError:
        """The error for a word that names no order and no filter, with the most likely fix."""
        text, lowered, echo = word.text, word.text.lower(), _echo(word.shown)
        prefix = "" if self.name == "stuck" else "stuck:"
        if word.link and not _is_link(word):
            return self.error(f"{echo} is not an order or a filter. {_ORDERS_LOOK}")
        if re.fullmatch(r"#.*|[0-9]+", text):
            return self.error(f"{echo} is not an order number; they look like `#1001`.")
        if lowered.startswith("gid:"):
            return self.error(f"{echo} is not a Shopify order id; those look like `gid://shopify/Order/123`.")
        if _is_link(word) or lowered.startswith("www.") or "shopify.com" in lowered:
            return self.error(f"{echo} is not a link to a Shopify order; copy the address of the order's admin page.")
        if reason := _reason(text):
            return self.error(f"To pick orders stuck for that reason, write `stuck:{reason}`.")
        if close := _close_reason(text):
            return self.error(f"{echo} is not a stuck reason. Did you mean `{prefix}{close}`?")
        if close := difflib.get_close_matches(lowered, _FILTER_WORDS, n=1):
            return self.error(f"{echo} is not a filter. Did you mean `{close[0]}`?")
        if self.name == "stuck":
            return self.error(f"{echo} is not a reason or a filter. Reasons: {', '.join(REASONS)}.")
        return self.error(f"{echo} is not an order or a filter. {_ORDERS_LOOK}")

    def selection(self) -> Selection:
        return Selection(
            numbers=tuple(self.numbers),
            ids=tuple(self.ids),
            stuck=self.stuck,
            reason=self.reason,
            older=self.older,
            tag=self.tag,
            fulfilled=self.fulfilled,
        )


def _select(name: str, words: Sequence[_Word]) -> Selection:
    """The orders and filters `words` name, at least one."""
    picker = _Picker(name)
    for word in words:
        if not picker.take(word):
            raise picker.unknown(word)
    selection = picker.selection()
    if not selection.named and not selection.has_filter:
        which = "order" if name in _ONE_AT_A_TIME else "orders"
        raise CommandError(f"Say which {which}, like `/orders {EXAMPLES[name]}`.", USAGE[name])
    return selection


# --- one parser per subcommand -------------------------------------------------------------------------------------

_ONE_AT_A_TIME = MappingProxyType(
    {
        "show": "Show one order at a time; `/orders stuck` lists several.",
        "release-hold": "Release holds one order at a time: `/orders release-hold #1001`.",
        "log": "`log` takes one order or one person.",
    }
)


def _orders(name: str, words: Sequence[_Word]) -> Command:
    """An action over any orders and filters: archive, unarchive, request, cancel-request, notify, unfulfill,
    delete, cancel."""
    return Command(name, _select(name, words))


def _one_order(name: str, words: Sequence[_Word]) -> Command:
    """show, release-hold: exactly one order, no filter."""
    selection = _select(name, words)
    if not selection.single:
        raise CommandError(_ONE_AT_A_TIME[name], USAGE[name])
    return Command(name, selection)


def _stuck(name: str, words: Sequence[_Word]) -> Command:
    picker = _Picker(name)
    for word in words:
        if picker.take(word):
            continue
        reason = None if word.link else _reason(word.text)
        if reason is None:
            raise picker.unknown(word)
        picker.set_reason(reason)
    return Command(name, picker.selection())


def _fulfill(name: str, words: Sequence[_Word]) -> Command:
    """`fulfill <orders> [tracking] [carrier…]`: the first word that names no more orders starts the tracking."""
    split = next((i for i, word in enumerate(words) if i > 0 and not _names_more(word)), len(words))
    selection = _select(name, words[:split])
    extra = words[split:]
    if not extra:
        return Command(name, selection)
    typed = _echo(" ".join(word.shown for word in extra))
    if not selection.single:
        raise CommandError(
            f"Tracking goes with one order at a time (a bulk fulfil takes it from the fulfilment app): "
            f"leave out {typed}.",
            USAGE[name],
        )
    tracking, carrier = extra[0], " ".join(word.text for word in extra[1:])
    if tracking.link or not _TRACKING.fullmatch(tracking.text):
        raise CommandError(
            f"{_echo(tracking.shown)} does not look like a tracking number: letters, digits and dashes.", USAGE[name]
        )
    args = {"tracking_number": tracking.text}
    if carrier:
        if any(word.link for word in extra[1:]) or not _CARRIER.fullmatch(carrier):
            raise CommandError(f"{_echo(carrier)} does not look like a carrier's name, like `UPS`.", USAGE[name])
        args["tracking_company"] = carrier
    return Command(name, selection, args)


def _names_more(word: _Word) -> bool:
    """In `fulfill`, after the first order: a bare number starts the tracking; `#`, lists, links and filters do not."""
    text = word.text.lower()
    return word.link or text.startswith("#") or text in _FILTER_WORDS or "," in text or ":" in text


def _snooze(name: str, words: Sequence[_Word]) -> Command:
    lengths = [i for i, word in enumerate(words) if not word.link and _DURATION_LIKE.fullmatch(word.text)]
    spoken = [i - 1 for i in lengths if i > 0 and words[i - 1].text.lower() == "for"]  # `snooze #1001 for 1d`
    selection = _select(name, [word for i, word in enumerate(words) if i not in lengths and i not in spoken])
    if not lengths:
        raise CommandError("Say how long to snooze, like `/orders snooze #1001 1d`.", USAGE[name])
    if len(lengths) > 1:
        raise CommandError("Give one snooze length, like `4h`, `1d` or `1w`.", USAGE[name])
    typed = words[lengths[0]].text.lower()
    try:
        span = parse_duration(typed)
    except (ValueError, OverflowError):
        raise CommandError(f"{_echo(typed)} is not a snooze length; use 4h, 1d, 3d or 1w.", USAGE[name]) from None
    if not SNOOZE_SHORTEST <= span <= SNOOZE_LONGEST:
        raise CommandError("Snooze for between 1 minute and 30 days, like `4h`, `1d` or `1w`.", USAGE[name])
    return Command(name, selection, {"for": typed})


def _log(name: str, words: Sequence[_Word]) -> Command:
    people = [word for word in words if word.text.startswith("@")]
    if not people:
        return _one_order(name, words)
    if len(words) > 1:
        raise CommandError(_ONE_AT_A_TIME[name], USAGE[name])
    person = people[0]
    if not person.link:
        raise CommandError(
            "Pick the person from Slack's list as you type @ (a name typed in full cannot be looked up).", USAGE[name]
        )
    if not (match := _USER.fullmatch(person.text)):
        raise CommandError(f"{_echo(person.shown)} is not a person; pick one as you type @.", USAGE[name])
    return Command(name, args={"user": match[1]})


def _settings(name: str, words: Sequence[_Word]) -> Command:
    if not words:
        return Command(name)
    if words[0].link or words[0].text.lower() != "set":
        raise CommandError(
            f"{_echo(words[0].shown)} is not something settings does: `/orders settings` shows them, "
            "`/orders settings set key value` changes one.",
            USAGE[name],
        )
    if len(words) == 1:
        raise CommandError(f"Say which setting and its new value, like `/orders {EXAMPLES[name]}`.", USAGE[name])
    key = words[1].text.lower()
    if words[1].link or not _SETTING_KEY.fullmatch(key):
        raise CommandError(
            f"{_echo(words[1].shown)} is not a setting's name; names look like `ignore_tag` or `threshold.on_hold`.",
            USAGE[name],
        )
    if len(words) == 2:
        raise CommandError(f"Say the new value, like `/orders {EXAMPLES[name]}`.", USAGE[name])
    return Command(name, args={"key": key, "value": " ".join(word.shown for word in words[2:])})


def _digest(name: str, words: Sequence[_Word]) -> Command:
    if not words:
        return Command(name)
    if len(words) == 1 and not words[0].link and words[0].text.lower() == "post":
        return Command(name, args={"post": "true"})
    extra = next(word for word in words if word.link or word.text.lower() != "post")
    raise CommandError(
        f"{_echo(extra.shown)} is not something digest does: `/orders digest` shows today's digest, "
        "`/orders digest post` posts it to the channel.",
        USAGE[name],
    )


def _scan(name: str, words: Sequence[_Word]) -> Command:
    if words:
        raise CommandError("`scan` takes nothing after it: `/orders scan`.", USAGE[name])
    return Command(name)


def _help(name: str, words: Sequence[_Word]) -> Command:
    if not words:
        return Command(name)
    if len(words) > 1:
        raise CommandError("Ask about one command, like `/orders help archive`.", USAGE[name])
    topic = None if words[0].link else _command_name(words[0].text.casefold())
    if topic is None:
        raise _not_a_command(words[0])
    return Command(name, args={"topic": topic})


_PARSERS: Mapping[str, Callable[[str, Sequence[_Word]], Command]] = MappingProxyType(
    {
        "stuck": _stuck,
        "show": _one_order,
        "log": _log,
        "fulfill": _fulfill,
        "request": _orders,
        "cancel-request": _orders,
        "release-hold": _one_order,
        "snooze": _snooze,
        "notify": _orders,
        "archive": _orders,
        "unarchive": _orders,
        "unfulfill": _orders,
        "delete": _orders,
        "cancel": _orders,
        "scan": _scan,
        "digest": _digest,
        "settings": _settings,
        "help": _help,
    }
)
