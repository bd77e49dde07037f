"""When a webhook delivery that could not be processed is tried again, and when orderbot stops trying. Pure.

Two kinds of failure:
- the body itself: unreadable (no body, not JSON) or not the shape orderbot reads. The same bytes fail the same way
  every time, so the delivery is parked at once;
- anything else (Shopify unavailable or refusing, an unexpected error): tried again after 1, 4, 16 and 64 minutes,
  and parked when the fifth try fails too, about an hour and a half after the first: longer than most Shopify
  outages, and the reconciliation scan re-reads open orders meanwhile.
A parked delivery keeps its reason and the fields orderbot reads; it is counted in /healthz and the daily digest.
Waiting or parked, a delivery never holds back the others.
"""

from __future__ import annotations

from datetime import datetime, timedelta

RETRY_DELAYS = (timedelta(minutes=1), timedelta(minutes=4), timedelta(minutes=16), timedelta(minutes=64))
MAX_TRIES = len(RETRY_DELAYS) + 1


def next_try(tries: int, now: datetime) -> datetime | None:
    """After the `tries`-th failed try (1 for the first): when to try again; None when the delivery is parked."""
    if tries > len(RETRY_DELAYS):
        return None
    return now + RETRY_DELAYS[tries - 1]
