"""Human durations ("15m", "48h", "2d", "1w", "1d12h") to and from timedelta, and times of day ("09:00"). Pure."""

from __future__ import annotations

import re
from datetime import time, timedelta

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PART = re.compile(r"(\d+)\s*([smhdw])")
_WHOLE = re.compile(r"^\s*(?:\d+\s*[smhdw]\s*)+$")
_TIME_OF_DAY = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


def parse_time_of_day(text: str) -> time:
    """ "09:00" or "9:00" (24-hour clock). Raises ValueError with a plain message."""
    match = _TIME_OF_DAY.match(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not a time of day; use the 24-hour clock, like 09:00 or 17:30")
    return time(int(match[1]), int(match[2]))


def parse_duration(text: str) -> timedelta:
    """Parse "90s", "15m", "48h", "2d", "1w" or a sum like "1d12h". Raises ValueError with a plain message."""
    cleaned = text.strip().lower()
    if not _WHOLE.match(cleaned):
        raise ValueError(f"{text!r} is not a duration; use a number and a unit, like 15m, 48h, 2d or 1w")
    seconds = sum(int(n) * _UNITS[unit] for n, unit in _PART.findall(cleaned))
    if seconds <= 0:
        raise ValueError(f"{text!r} must be longer than zero")
    return timedelta(seconds=seconds)


def format_duration(delta: timedelta) -> str:
    """The largest two units, rounded down: 3d 4h, 5h 12m, 45m, 30s."""
    seconds = int(delta.total_seconds())
    if seconds < 60:
        return f"{max(seconds, 0)}s"
    parts = []
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
        if len(parts) == 2:
            break
    return " ".join(parts)
