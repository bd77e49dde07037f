"""The daily digest: what it says, built from the store's figures with `now` passed in, and when it is due.
Pure: no I/O.

It says: how many orders are stuck, by reason, and the change since the last posted digest; the ten stuck longest;
what the team did in the last 24 hours (actions done, by action and by person, and how many failed or were refused);
how many orders were resolved in the last 24 hours and the median time to resolve; webhook health (deliveries
received, repeats dropped, deliveries set aside, stuck orders only reconciliation found); and at most one
bulk suggestion (archive the orders fulfilled long ago that are still open). `digest_text` renders it for a terminal;
bot/slack/digest_blocks.py renders it for Slack.

When: at a local time of day in a time zone (`next_digest_at`). A zoneinfo computation, not apscheduler's
CronTrigger: "09:00 tomorrow" is `datetime.combine(tomorrow, 09:00, zone)`, which is DST-correct by construction (the
day after a change is 23 or 25 hours later), and the timer must re-read the clock anyway after each sleep (the
machine may sleep, the shop's time zone may be learned late), which a trigger object does not save us.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from bot.domain.durations import format_duration
from bot.domain.rules import REASON_TITLES, REASONS

WINDOW = timedelta(hours=24)  # "the last 24 hours" of team activity, resolutions and webhooks
OLDEST_SHOWN = 10
ARCHIVE_AFTER = timedelta(days=30)  # fulfilled this long ago and still open: suggest archiving
ARCHIVE_COMMAND = "archive fulfilled older:30d"  # the `/orders` text that does it (shown as a bulk preview first)


@dataclass(frozen=True, slots=True)
class StuckOrder:
    order_id: str  # gid://shopify/Order/…
    name: str
    reason: str
    since: datetime


@dataclass(frozen=True, slots=True)
class AuditCount:
    """How many audit rows share (action, actor, outcome) in the window."""

    action: str
    actor: str
    outcome: str
    count: int


@dataclass(frozen=True, slots=True)
class WebhookHealth:
    received: int  # deliveries stored in the window
    duplicates: int  # deliveries dropped as repeats
    found_by_reconcile: int  # stuck orders that no webhook told us about; reconciliation found them
    parked: int = 0  # deliveries that could not be processed and were set aside (bot/domain/retries.py)

    @property
    def parked_words(self) -> str:
        """The sentence about parked deliveries; empty when there were none."""
        if not self.parked:
            return ""
        verb = "was" if self.parked == 1 else "were"
        return (
            f"{plural(self.parked, 'delivery', 'deliveries')} could not be processed and {verb} set aside:"
            " the server's log says why."
        )


@dataclass(frozen=True, slots=True)
class DigestFacts:
    """What the store knows, as plain values: everything the digest is built from."""

    stuck_counts: Mapping[str, int]  # reason -> stuck orders now
    previous_counts: Mapping[str, int] | None  # the same at the last posted digest; None: there was none
    oldest: Sequence[StuckOrder]  # stuck longest first
    activity: Sequence[AuditCount]  # audit rows in the window
    resolve_times: Sequence[timedelta]  # of each order resolved in the window: resolved - stuck since
    webhooks: WebhookHealth
    archive_candidates: int  # open orders fully fulfilled more than ARCHIVE_AFTER ago


@dataclass(frozen=True, slots=True)
class ReasonCount:
    reason: str
    count: int
    change: int | None  # since the last digest; None when there was no digest before

    @property
    def title(self) -> str:
        return reason_title(self.reason)


@dataclass(frozen=True, slots=True)
class TeamActivity:
    done: int
    by_action: tuple[tuple[str, int], ...]  # (action id, done), most first
    by_person: tuple[tuple[str, int], ...]  # (actor, done), most first
    failed: int
    refused: int


@dataclass(frozen=True, slots=True)
class Suggestion:
    """One bulk action worth doing; `command` is the `/orders` text that previews it."""

    label: str
    command: str
    count: int


@dataclass(frozen=True, slots=True)
class Digest:
    day: date  # in the digest's time zone
    at: datetime
    shop: str | None  # my-store.myshopify.com, for links to the admin
    stuck: tuple[ReasonCount, ...]  # reasons stuck now or at the last digest, in the rules' order
    total_stuck: int
    total_change: int | None
    oldest: tuple[StuckOrder, ...]
    team: TeamActivity
    resolved: int
    median_to_resolve: timedelta | None
    webhooks: WebhookHealth
    suggestion: Suggestion | None

    @property
    def counts(self) -> dict[str, int]:
        """Stuck orders by reason, as the next digest compares with."""
        return {r.reason: r.count for r in self.stuck if r.count}

    def url(self, order: StuckOrder) -> str | None:
        """The order in the Shopify admin (as blocks.admin_url, from the id alone)."""
        if not self.shop:
            return None
        handle = self.shop.removesuffix(".myshopify.com")
        return f"https://admin.shopify.com/store/{handle}/orders/{order.order_id.rsplit('/', 1)[1]}"


def build_digest(facts: DigestFacts, *, now: datetime, zone: tzinfo, shop: str | None) -> Digest:
    previous = facts.previous_counts
    order = {reason: i for i, reason in enumerate(REASONS)}
    reasons = sorted(
        {r for r, n in facts.stuck_counts.items() if n} | {r for r, n in (previous or {}).items() if n},
        key=lambda r: (order.get(r, len(order)), r),
    )
    counts = facts.stuck_counts
    stuck = tuple(ReasonCount(r, counts.get(r, 0), _change(r, counts, previous)) for r in reasons)
    total = sum(counts.values())
    return Digest(
        day=digest_day(now, zone),
        at=now,
        shop=shop,
        stuck=stuck,
        total_stuck=total,
        total_change=None if previous is None else total - sum(previous.values()),
        oldest=tuple(sorted(facts.oldest, key=lambda o: o.since)[:OLDEST_SHOWN]),
        team=team_activity(facts.activity),
        resolved=len(facts.resolve_times),
        median_to_resolve=statistics.median(facts.resolve_times) if facts.resolve_times else None,
        webhooks=facts.webhooks,
        suggestion=_archive_suggestion(facts.archive_candidates),
    )


def _change(reason: str, now: Mapping[str, int], before: Mapping[str, int] | None) -> int | None:
    return None if before is None else now.get(reason, 0) - before.get(reason, 0)


def team_activity(rows: Iterable[AuditCount]) -> TeamActivity:
    by_action: Counter[str] = Counter()
    by_person: Counter[str] = Counter()
    failed = refused = 0
    for row in rows:
        if row.outcome == "done":
            by_action[row.action] += row.count
            by_person[row.actor] += row.count
        elif row.outcome == "failed":
            failed += row.count
        elif row.outcome == "refused":
            refused += row.count
    return TeamActivity(
        done=sum(by_action.values()),
        by_action=_most_first(by_action),
        by_person=_most_first(by_person),
        failed=failed,
        refused=refused,
    )


def _most_first(counts: Counter[str]) -> tuple[tuple[str, int], ...]:
    return tuple(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def _archive_suggestion(count: int) -> Suggestion | None:
    if count <= 0:
        return None
    days = ARCHIVE_AFTER.days
    return Suggestion(f"Archive {plural(count, 'order')} fulfilled over {days} days ago", ARCHIVE_COMMAND, count)


# --- when ------------------------------------------------------------------------------------------------------------


def digest_day(now: datetime, zone: tzinfo) -> date:
    """The day a digest made at `now` is for: the date in the digest's time zone."""
    return now.astimezone(zone).date()


def scheduled_at(day: date, at: time, zone: tzinfo) -> datetime:
    """The moment the clock in `zone` shows `at` on `day`, in UTC. A time in the hour skipped when clocks go forward
    is read with the offset before the change (02:30 becomes 03:30); of an hour that repeats, the first."""
    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC)


def digest_due(now: datetime, at: time, zone: tzinfo) -> bool:
    """Today's digest time (in `zone`) has come. After midnight it is the next day's digest that waits."""
    return now >= scheduled_at(digest_day(now, zone), at, zone)


def next_digest_at(now: datetime, at: time, zone: tzinfo) -> datetime:
    """The next moment, after `now`, at which the digest is due."""
    day = digest_day(now, zone)
    today = scheduled_at(day, at, zone)
    return today if now < today else scheduled_at(day + timedelta(days=1), at, zone)


# --- for a terminal --------------------------------------------------------------------------------------------------


def signed(change: int) -> str:
    return f"+{change}" if change > 0 else ("±0" if change == 0 else str(change))


def reason_title(reason: str) -> str:
    return REASON_TITLES.get(reason, reason.replace("_", " "))


def action_words(action: str) -> str:
    return action.replace("_", " ")


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    return f"{count:,} {noun if count == 1 else nouns or noun + 's'}"


def digest_text(digest: Digest) -> str:
    """The digest as plain text, for `python -m bot digest --print`."""
    lines = [f"orderbot daily digest for {digest.day:%A %d %B %Y}", ""]
    headline = f"Stuck orders: {digest.total_stuck:,}"
    if digest.total_change is not None:
        headline += f" ({signed(digest.total_change)} since the last digest)"
    lines.append(headline)
    for r in digest.stuck:
        change = f" ({signed(r.change)})" if r.change is not None else ""
        lines.append(f"  {r.title}: {r.count:,}{change}")
    if digest.oldest:
        lines += ["", "Stuck longest:"]
        for o in digest.oldest:
            url = digest.url(o)
            lines.append(
                f"  {o.name}  {reason_title(o.reason)}, for {format_duration(digest.at - o.since)}"
                + (f"  {url}" if url else "")
            )
    team = digest.team
    lines += ["", "The team, last 24 hours:"]
    if team.done:
        lines.append("  Done: " + ", ".join(f"{action_words(a)} {n:,}" for a, n in team.by_action))
        lines.append("  By person: " + ", ".join(f"{who} {n:,}" for who, n in team.by_person))
    else:
        lines.append("  No actions done.")
    if team.failed or team.refused:
        lines.append(f"  Failed: {team.failed:,}; refused: {team.refused:,}")
    lines.append(f"  Orders resolved: {digest.resolved:,}" + _median_words(digest))
    hooks = digest.webhooks
    lines += [
        "",
        f"Webhooks, last 24 hours: {plural(hooks.received, 'delivery', 'deliveries')} received, "
        f"{plural(hooks.duplicates, 'duplicate')} dropped; "
        f"{plural(hooks.found_by_reconcile, 'stuck order')} found only by reconciliation."
        + (f" {hooks.parked_words}" if hooks.parked else ""),
    ]
    if digest.suggestion:
        lines += ["", f"Suggestion: {digest.suggestion.label}: /orders {digest.suggestion.command}"]
    return "\n".join(lines)


def _median_words(digest: Digest) -> str:
    if digest.median_to_resolve is None:
        return ""
    return f", median time to resolve {format_duration(digest.median_to_resolve)}"
