"""How long finished history is kept: a window for operational history (processed webhook deliveries, sent Slack
messages, scans, counters, digests, ended bulk runs), a longer one for the audit log, and for what the digest's chart
draws (resolutions, daily stuck snapshots) the history window or the chart's days, whichever is longer. Pure.

Why a window of days is safe for deduplication: an inbox row is what makes a redelivered webhook a duplicate. Shopify
retries a failed delivery 8 times over 4 hours (19 times over 48 hours before September 2024) and says a delivery may
rarely arrive up to a day late; the same body replayed later is refused by its identity only while its row is kept,
and after that an older copy of an order still never replaces a newer one (orders.updated_at). MIN_DAYS keeps the
window well above all of these, and above the digest's 24 hours.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.domain.digest_chart import CHART_DAYS

MIN_DAYS = 3
MAX_DAYS = 36_500  # a century: longer is "forever", and would not fit in a date
DEFAULT_DAYS = 30
DEFAULT_AUDIT_DAYS = 400
CHART_KEPT_DAYS = CHART_DAYS + 1  # a day to spare: the cutoff is a moment, the chart draws whole days


@dataclass(frozen=True, slots=True)
class Retention:
    """`history_days` for operational history; `audit_days` for the audit log, 0 to keep it forever."""

    history_days: int = DEFAULT_DAYS
    audit_days: int = DEFAULT_AUDIT_DAYS

    def __post_init__(self) -> None:
        if not MIN_DAYS <= self.history_days <= MAX_DAYS:
            raise ValueError(f"history is kept {MIN_DAYS} to {MAX_DAYS} days, not {self.history_days}")
        if self.audit_days != 0 and not MIN_DAYS <= self.audit_days <= MAX_DAYS:
            raise ValueError(
                f"the audit log is kept forever (0) or {MIN_DAYS} to {MAX_DAYS} days, not {self.audit_days}"
            )

    def history_cutoff(self, now: datetime) -> datetime:
        """Finished history from before this goes."""
        return now - timedelta(days=self.history_days)

    def chart_cutoff(self, now: datetime) -> datetime:
        """What the digest's chart draws goes once older than this: never within the chart's days."""
        return now - timedelta(days=max(self.history_days, CHART_KEPT_DAYS))

    def audit_cutoff(self, now: datetime) -> datetime | None:
        """Audit rows from before this go; None: the audit log is kept forever."""
        return now - timedelta(days=self.audit_days) if self.audit_days else None
