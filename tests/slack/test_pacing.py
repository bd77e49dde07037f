"""The channel pace shared by the outbox, bulk progress and the digest: one call per pace, counted from the call's
start and from Slack's answer."""

from __future__ import annotations

import asyncio
import itertools

from bot.slack.pacing import ChannelPacer


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_channel_is_free_a_pace_after_a_call_began_and_a_pace_after_slack_answered():
    clock = Clock()
    pacer = ChannelPacer(1.0, clock)
    assert pacer.free_at("C1") <= clock.now
    pacer.began("C1")
    assert pacer.free_at("C1") == 1001.0
    clock.now += 0.7  # a slow answer
    pacer.answered("C1")
    assert pacer.free_at("C1") == 1001.7
    assert pacer.free_at("C2") <= clock.now, "channels are paced apart"


def test_a_start_holds_every_channel_and_a_429_holds_one_for_its_retry_after():
    clock = Clock()
    pacer = ChannelPacer(1.0, clock)
    pacer.hold_all()
    assert pacer.free_at("C1") == pacer.free_at("C2") == 1001.0
    pacer.hold("C1", 30.0)
    assert pacer.free_at("C1") == 1030.0 and pacer.free_at("C2") == 1001.0


async def test_calls_taking_turns_on_one_channel_are_a_pace_apart():
    loop = asyncio.get_running_loop()
    pacer = ChannelPacer(0.05, loop.time)
    started: list[float] = []

    async def call() -> None:
        async with pacer.turn("C1"):
            started.append(loop.time())
            await asyncio.sleep(0.01)  # Slack takes a while to answer

    await asyncio.gather(*(call() for _ in range(4)))
    gaps = [b - a for a, b in itertools.pairwise(started)]
    assert len(started) == 4 and all(gap >= 0.06 - 0.002 for gap in gaps), gaps
