"""What Slack and the customer's inbox would show, as terminal text. Pure: no I/O.

Slack's mrkdwn becomes plain text (links show their label, `<@U…>` the person's name, dates their fallback, `*bold*`
loses its stars or turns bold with `ansi`); Block Kit blocks become lines (sections, context, buttons shown like
`[ Archive ]`, a select like `[ Snooze… ▾ ]`, modal inputs with their values); a card is those lines under a title bar
and a left rule.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterable, Mapping
from email.message import EmailMessage
from html import unescape

WIDTH = 100
_BOLD, _DIM, _RESET = "\033[1m", "\033[2m", "\033[0m"
_EMOJI = {  # the ones orderbot's messages use
    "warning": "⚠️",
    "rotating_light": "🚨",
    "white_check_mark": "✅",
    "zzz": "💤",
    "hourglass_flowing_sand": "⏳",
    "calendar": "📅",
    "grey_question": "❔",
    "information_source": "ℹ️",
    "octagonal_sign": "🛑",
    "tada": "🎉",
    "arrow_up": "⬆️",
    "arrow_down": "⬇️",
    "speech_balloon": "💬",
}
_ANGLE = re.compile(r"<([^<>]*)>")
_BOLD_SPAN = re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])")
_EMOJI_CODE = re.compile(r":([a-z0-9_+-]+):")


# --- mrkdwn -----------------------------------------------------------------------------------------------------------


def mrkdwn(text: str, users: Mapping[str, str] | None = None, *, ansi: bool = False) -> str:
    """Slack mrkdwn as a reader sees it: links, mentions and dates resolved, entities unescaped, emoji drawn.
    `users`: names by Slack id, of people and of channels (`<#C…>` shows the channel's name, as in Slack)."""
    people = users or {}

    def angle(match: re.Match[str]) -> str:
        inside = match.group(1)
        target, _, label = inside.partition("|")
        if target.startswith("@"):
            return "@" + (people.get(target[1:]) or label or target[1:])
        if target.startswith("#"):
            return "#" + (label or people.get(target[1:]) or target[1:])
        if target.startswith("!date^"):
            return label or target
        if target.startswith("!subteam^"):
            return label or "@group"
        if target.startswith("!"):
            return "@" + target[1:]
        return label or target

    shown = _ANGLE.sub(angle, text)
    shown = _BOLD_SPAN.sub(lambda m: f"{_BOLD}{m.group(1)}{_RESET}" if ansi else m.group(1), shown)
    shown = _EMOJI_CODE.sub(lambda m: _EMOJI.get(m.group(1), m.group(0)), shown)
    return unescape(shown)


def _text_of(obj: dict | None, users: Mapping[str, str], ansi: bool) -> str:
    """A text object, plain_text or mrkdwn."""
    if not obj:
        return ""
    if obj.get("type") == "mrkdwn":
        return mrkdwn(obj.get("text") or "", users, ansi=ansi)
    return obj.get("text") or ""


# --- blocks -----------------------------------------------------------------------------------------------------------


def element_text(element: dict, users: Mapping[str, str] | None = None) -> str:
    """An interactive element as a control: `[ Archive ]`, `[ Snooze… ▾ ]`, `[ 1Z999 ]`, `☑ Restock the items`,
    `◉ Storefront (Has the item)`."""
    people = users or {}
    kind = element.get("type")
    label = _text_of(element.get("text"), people, False)
    if kind == "button":
        return f"[ {label} ]"
    if kind == "static_select":
        chosen = (element.get("initial_option") or {}).get("text")
        shown = _text_of(chosen or element.get("placeholder"), people, False)
        return f"[ {shown or 'Choose…'} ▾ ]"
    if kind in ("plain_text_input", "url_text_input", "email_text_input", "number_input"):
        value = element.get("initial_value") or ""
        return f"[ {value} ]" if value and "\n" not in value else "[ ________________ ]"
    if kind == "checkboxes":
        ticked = {o.get("value") for o in element.get("initial_options") or ()}
        return "  ".join(
            f"{'☑' if o.get('value') in ticked else '☐'} {_text_of(o.get('text'), people, False)}"
            for o in element.get("options") or ()
        )
    if kind == "radio_buttons":
        chosen = (element.get("initial_option") or {}).get("value")
        return "  ".join(
            f"{'◉' if o.get('value') == chosen else '○'} {_text_of(o.get('text'), people, False)}"
            + (f" ({_text_of(o['description'], people, False)})" if o.get("description") else "")
            for o in element.get("options") or ()
        )
    return f"[ {label or kind} ]"


def block_lines(blocks: Iterable[dict], users: Mapping[str, str] | None = None, *, ansi: bool = False) -> list[str]:
    """Blocks as lines, a blank line between blocks."""
    people = users or {}
    lines: list[str] = []
    for block in blocks:
        shown = _block(block, people, ansi)
        if not shown:
            continue
        if lines:
            lines.append("")
        lines.extend(shown)
    return lines


def _block(block: dict, users: Mapping[str, str], ansi: bool) -> list[str]:
    kind = block.get("type")
    if kind == "section":
        lines = _text_of(block.get("text"), users, ansi).splitlines()
        lines.extend(_text_of(field, users, ansi) for field in block.get("fields") or ())
        if block.get("accessory"):
            lines.append(element_text(block["accessory"], users))
        return lines
    if kind == "header":
        title = _text_of(block.get("text"), users, False)
        return [f"{_BOLD}{title}{_RESET}" if ansi else title.upper()]
    if kind == "context":
        parts = [_text_of(element, users, ansi) for element in block.get("elements") or ()]  # images have no text
        line = "  ·  ".join(p for p in parts if p)
        return [f"{_DIM}{line}{_RESET}" if ansi else line] if line else []
    if kind == "actions":
        return ["  ".join(element_text(e, users) for e in block.get("elements") or ())]
    if kind == "divider":
        return ["─" * 40]
    if kind == "input":
        return _input(block, users)
    text = block.get("text")
    return _text_of(text, users, ansi).splitlines() if isinstance(text, dict) else []


def _input(block: dict, users: Mapping[str, str]) -> list[str]:
    label = _text_of(block.get("label"), users, False)
    element = block.get("element") or {}
    optional = " (optional)" if block.get("optional") else ""
    value = element.get("initial_value") or ""
    if element.get("multiline") or "\n" in value:
        body = [f"    {line}" if line else "" for line in value.splitlines()] or ["    [ ________________ ]"]
        lines = [f"{label}{optional}:", *body]
    else:
        lines = [f"{label}{optional}: {element_text(element, users)}"]
    hint = _text_of(block.get("hint"), users, False)
    if hint:
        lines.append(f"    ({hint})")
    return lines


def message_lines(message: Mapping, users: Mapping[str, str] | None = None, *, ansi: bool = False) -> list[str]:
    """A message (`text`, `blocks`) as Slack shows it: the blocks, or the text when there are none."""
    blocks = message.get("blocks") or []
    if blocks:
        return block_lines(blocks, users, ansi=ansi)
    return mrkdwn(message.get("text") or "", users, ansi=ansi).splitlines()


def view_lines(view: Mapping, users: Mapping[str, str] | None = None, *, ansi: bool = False) -> list[str]:
    """A modal: its blocks, then its buttons (close, submit)."""
    lines = block_lines(view.get("blocks") or [], users, ansi=ansi)
    buttons = [_text_of(view.get(key), {}, False) for key in ("close", "submit")]
    shown = "  ".join(f"[ {b} ]" for b in buttons if b)
    return [*lines, "", shown] if shown else lines


def confirm_lines(confirm: Mapping) -> list[str]:
    """A button's confirm dialog, which Slack shows before it sends the click: title, text, its two buttons."""
    buttons = "  ".join(f"[ {_text_of(confirm.get(key), {}, False)} ]" for key in ("deny", "confirm"))
    text = _text_of(confirm.get("text"), {}, False)
    return [_text_of(confirm.get("title"), {}, False), "", *text.splitlines(), "", buttons]


def view_title(view: Mapping) -> str:
    return _text_of(view.get("title"), {}, False)


# --- email ------------------------------------------------------------------------------------------------------------


def email_lines(message: EmailMessage) -> list[str]:
    """An email as a mail client shows it: the headers people read, then the plain-text body."""
    headers = [f"{name}: {message[name]}" for name in ("From", "To", "Reply-To", "Subject") if message[name]]
    body = message.get_body(("plain",))
    content = body.get_content() if body is not None else ""
    return [*headers, "", *content.rstrip("\n").splitlines()]


# --- cards ------------------------------------------------------------------------------------------------------------


def card(title: str, lines: Iterable[str], *, width: int = WIDTH, ansi: bool = False) -> str:
    """`lines` under a title bar, each behind a left rule, wrapped to `width` (continuations indented)."""
    bar = f"┌─ {title} "
    top = bar + "─" * max(4, width - len(bar))
    body = []
    for line in lines:
        if not line.strip():
            body.append("│")
            continue
        indent = len(line) - len(line.lstrip(" •"))
        wrapped = textwrap.wrap(
            line, width=width - 2, subsequent_indent=" " * indent, break_on_hyphens=False, break_long_words=False
        )
        body.extend(f"│ {part}" for part in wrapped or [line])
    bottom = "└" + "─" * (width - 1)
    if ansi:
        top, bottom = f"{_BOLD}{top}{_RESET}", f"{_DIM}{bottom}{_RESET}"
    return "\n".join([top, *body, bottom])
