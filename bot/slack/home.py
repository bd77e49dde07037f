"""The App Home tab: published when someone opens it (`app_home_opened`), and kept current while they watch.

Opening the tab publishes that person's board at once. A change it shows (verdicts saved and alerts queued, an action
finished) marks the board of everyone who opened their Home within WATCHING_FOR as out of date; a loop publishes each
out-of-date board, at most once every `every` seconds per person, so a burst of changes costs one views.publish per
person per window. A click on the board is answered on it: the outcome goes at the top of that person's Home, which
is published again at once (Slack has no ephemeral message outside a channel). Admins change a setting through a
small modal, saved as `/orders settings set key value` saves it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.commands import Command
from bot.domain.home import REFRESH_EVERY, WATCHING_FOR, due_now, watching
from bot.flows.home import HomeBoards, StoreView
from bot.flows.slash import Answer
from bot.slack.command_answers import draw
from bot.slack.forms import setting_form
from bot.slack.home_blocks import HOME_SETTING, HOME_SETTING_MODAL, home_view, setting_modal
from bot.slack.listeners import SlackListeners
from bot.wakeups import wait_for_wakeup

log = logging.getLogger(__name__)


class HomeTab:
    def __init__(
        self,
        boards: HomeBoards,
        client: AsyncWebClient,
        listeners: SlackListeners,
        *,
        shop: str,
        every: float = REFRESH_EVERY,
        clock: Callable[[], float] = time.monotonic,
    ):
        """`every`: seconds between two publishes of one person's board for changes; `clock`: a monotonic clock."""
        self.boards = boards
        self.slash = boards.slash
        self.client = client
        self.listeners = listeners
        self.shop = shop
        self.every = every
        self.clock = clock
        self.opened: dict[str, float] = {}  # person -> when they last opened their Home
        self.published: dict[str, float] = {}  # person -> when their board was last published
        self.stale: set[str] = set()  # people whose board shows something that changed since
        self.notices: dict[str, str] = {}  # person -> the answer to their last click, shown at the top
        self.looked = 0  # how many times the loop looked for boards to publish (tests wait for it)
        self._wake = asyncio.Event()
        listeners.home_answer = self.tell

    def register(self, app: AsyncApp) -> None:
        app.event("app_home_opened")(self.on_opened)
        app.action(HOME_SETTING)(self.on_setting)
        app.view(HOME_SETTING_MODAL)(self.on_setting_submitted)

    # --- events ---------------------------------------------------------------------------------------------------

    async def on_opened(self, event: dict) -> None:
        if event.get("tab") != "home":  # the Messages tab opens App Home too
            return
        viewer = event["user"]
        self.opened[viewer] = self.clock()
        self.notices.pop(viewer, None)
        await self.publish(viewer)

    def changed(self) -> None:
        """Something the board shows changed: every recent viewer's board is out of date."""
        now = self.clock()
        recent = watching(self.opened, now, WATCHING_FOR.total_seconds())
        for gone in set(self.opened) - set(recent):
            del self.opened[gone]
            self.published.pop(gone, None)
            self.notices.pop(gone, None)
        self.stale.update(recent)
        self._wake.set()

    async def tell(self, viewer: str, text: str) -> None:
        """Answer a click on the Home tab: the outcome at the top of the person's Home, published at once."""
        self.notices[viewer] = text
        await self.publish(viewer)

    # --- publishing -----------------------------------------------------------------------------------------------

    async def publish(self, viewer: str, seen: StoreView | None = None) -> None:
        """`seen`: the store as read once for a round of publishes (read for this board alone when not given)."""
        self.published[viewer] = self.clock()
        self.stale.discard(viewer)
        try:
            board = await self.boards.board(viewer, notice=self.notices.get(viewer), seen=seen)
            await self.client.views_publish(user_id=viewer, view=home_view(board, shop=self.shop))
        except SlackApiError as exc:
            log.warning("could not publish the Home tab of %s: %s", viewer, exc.response.get("error"))

    async def run_forever(self) -> None:
        """Publish out-of-date boards, each at most once every `every` seconds."""
        while True:
            self._wake.clear()
            ready, next_at = due_now(sorted(self.stale), self.published, self.clock(), self.every)
            try:
                seen = await self.boards.store_view() if ready else None
            except Exception:  # the database busy, a bug: each board then reads the store itself
                log.exception("could not read the Home tab's orders for %d boards", len(ready))
                seen = None
            for viewer in ready:
                try:
                    await self.publish(viewer, seen)
                except Exception:  # the database busy, a bug: the others' boards still go out
                    log.exception("could not draw the Home tab of %s", viewer)
            self.looked += 1
            await wait_for_wakeup(self._wake, None if next_at is None else max(next_at - self.clock(), 0.0))

    def nudge(self) -> None:
        """Look again now (a test that moved its clock past a window says so)."""
        self._wake.set()

    # --- settings -------------------------------------------------------------------------------------------------

    async def on_setting(self, ack: AsyncAck, body: dict, client: AsyncWebClient) -> None:
        await ack()
        key = body["actions"][0].get("value") or ""
        viewer = body["user"]["id"]
        values = await self.slash.setting_values()
        if key not in values:
            await self.tell(viewer, f"orderbot has no setting {key!r}; open the Home tab again.")
            return
        try:
            await client.views_open(trigger_id=body["trigger_id"], view=setting_modal(key, values[key]))
        except SlackApiError as exc:
            log.warning("Slack did not open the settings form: %s", exc.response.get("error"))
            await self.tell(viewer, "Slack did not open the form in time; click Change again.")

    async def on_setting_submitted(self, ack: AsyncAck, body: dict) -> None:
        """Saved as `/orders settings set key value` (the same checks, audit row and re-classification); the answer
        goes at the top of the person's Home. A setting that changes thresholds re-classifies every open order,
        which can take longer than Slack's 3 s for an ack, so the modal closes first."""
        view = body["view"]
        form = setting_form((view.get("state") or {}).get("values") or {})
        if form.errors:
            await ack(response_action="errors", errors=form.errors)
            return
        await ack()
        key, viewer = view.get("private_metadata") or "", body["user"]["id"]
        self.listeners.spawn(self._change_setting(viewer, key, form.inputs["value"]))

    async def _change_setting(self, viewer: str, key: str, value: str) -> None:
        command = Command("settings", args={"key": key, "value": value})
        answer = await self.slash.run(command, viewer, None, f"settings set {key} {value}")
        assert isinstance(answer, Answer)  # settings never opens a form
        await self.tell(viewer, draw(answer.result, shop=self.shop)["text"])
        self.changed()
