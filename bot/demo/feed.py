"""The demo's terminal: narration lines, and a card for everything Slack shows the moment the sandbox Slack records it.

`SlackFeed` is the sandbox Slack's observer: each Web API call a person would see (a new message, an update in place,
a thread reply, an ephemeral answer, a form opening, a Home tab published) and each `response_url` post becomes a
card; calls nobody sees (auth.test, conversations.history, …) are left out, and a call Slack refused is one line.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from email.message import EmailMessage
from typing import TextIO

from bot.demo import terminal
from bot.sandbox.slack import ResponsePost, SlackCall
from bot.slack.outbox import ALERT_EVENT

_UNSEEN = frozenset(
    {
        "auth.test",
        "conversations.history",
        "conversations.info",
        "usergroups.users.list",
        "users.info",
        "files.getUploadURLExternal",
    }
)


class Console:
    """Where the demo writes, with ANSI styling when `ansi` (a terminal)."""

    def __init__(self, out: TextIO, *, ansi: bool = False, users: Mapping[str, str] | None = None):
        self.out = out
        self.ansi = ansi
        self.users = dict(users or {})

    def line(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def heading(self, text: str) -> None:
        self.line()
        self.line(f"\033[1;36m{text}\033[0m" if self.ansi else f"== {text}")

    def card(self, title: str, lines: Iterable[str]) -> None:
        self.line(terminal.card(title, lines, ansi=self.ansi))


class SlackFeed:
    """Prints what Slack shows as it happens. `order_names`: order GraphQL id → "#1001", to title alerts."""

    def __init__(self, console: Console, order_names: Mapping[str, str], channels: Mapping[str, str]):
        self.console = console
        self.order_names = dict(order_names)
        self.channels = dict(channels)
        console.users.update(self.channels)  # channel mentions in answers read as in Slack: #orders
        self._alert_of_ts: dict[str, str] = {}  # message ts → order name

    def __call__(self, event: SlackCall | ResponsePost) -> None:
        if isinstance(event, ResponsePost):
            self._response(event)
        elif event.method not in _UNSEEN:
            self._call(event)

    def email(self, message: EmailMessage) -> None:
        self.console.card("email sent through the shop's SMTP server", terminal.email_lines(message))

    def show_answer(self, channel: str, user: str, body: Mapping) -> None:
        """A slash command's answer in the HTTP response itself (Bolt's `ack(text=…)`)."""
        seen = (
            "everyone sees this"
            if body.get("response_type") == "in_channel"
            else f"only {self._person(user)} sees this"
        )
        self._show(channel, f"{seen} (the command's answer)", body)

    # --- Web API calls ------------------------------------------------------------------------------------------

    def _call(self, call: SlackCall) -> None:
        response = call.response or {}
        if not response.get("ok"):
            error = response.get("error") or f"HTTP {call.status}"
            self.console.line(f"   (Slack refused {call.method}: {error}; orderbot will retry or say so)")
            return
        args = call.args
        if call.method == "chat.postMessage":
            self._posted(args, response)
        elif call.method == "chat.update":
            about = self._alert_of_ts.get(str(args.get("ts")))
            title = f"{about}'s alert, updated in place" if about else "a message, updated in place"
            self._show(args.get("channel"), title, args)
        elif call.method == "chat.postEphemeral":
            self._show(args.get("channel"), f"only {self._person(args.get('user'))} sees this", args)
        elif call.method == "files.completeUploadExternal":
            self._file_shared(args, response)
        elif call.method in ("views.open", "views.update"):
            view = response.get("view") or {}
            verb = "opens" if call.method == "views.open" else "changes"
            self.console.card(
                f"Slack form {verb}: {terminal.view_title(view)}", terminal.view_lines(view, self.console.users)
            )
        elif call.method == "views.publish":
            view = response.get("view") or {}
            self.console.card(
                f"Slack · orderbot's Home tab, as {self._person(args.get('user_id'))} sees it",
                terminal.view_lines(view, self.console.users, ansi=self.console.ansi),
            )

    def _posted(self, args: dict, response: dict) -> None:
        thread = args.get("thread_ts")
        if thread:
            about = self._alert_of_ts.get(str(thread))
            title = f"reply in the thread of {about}'s alert" if about else "reply in a thread"
            self._show(args.get("channel"), title, args)
            return
        metadata = (response.get("message") or {}).get("metadata") or {}
        order = (metadata.get("event_payload") or {}).get("order_id")
        if metadata.get("event_type") == ALERT_EVENT and order:
            name = self.order_names.get(order, order)
            self._alert_of_ts[response["ts"]] = name
            self._show(args.get("channel"), f"new alert for {name}", args)
        else:
            self._show(args.get("channel"), "new message", args)

    def _file_shared(self, args: dict, response: dict) -> None:
        where = f"#{self.channels.get(str(args.get('channel_id')), args.get('channel_id'))}"
        thread = " in a thread" if args.get("thread_ts") else ""
        lines = [
            f"[{f['mimetype']} {f.get('original_w', '?')}×{f.get('original_h', '?')}] {f['title']}"
            for f in response.get("files", [])
        ]
        self.console.card(f"Slack {where} · orderbot · file shared{thread}", lines)

    # --- response_url posts (Bolt's respond()) ------------------------------------------------------------------

    def _response(self, post: ResponsePost) -> None:
        body = post.body
        if body.get("delete_original"):
            self.console.line(f"   (Slack removes the message {self._person(post.user)} clicked)")
        elif body.get("replace_original"):
            self._show(post.channel, "the clicked message, replaced", body)
        elif body.get("response_type") == "in_channel":
            self._show(post.channel, "new message", body)
        else:
            self._show(post.channel, f"only {self._person(post.user)} sees this", body)

    # --- shared -------------------------------------------------------------------------------------------------

    def _show(self, channel: object, what: str, message: Mapping) -> None:
        where = f"#{self.channels.get(str(channel), channel)}"
        lines = terminal.message_lines(message, self.console.users, ansi=self.console.ansi)
        self.console.card(f"Slack {where} · orderbot · {what}", lines)

    def _person(self, user: object) -> str:
        return self.console.users.get(str(user), str(user))
