"""The only reader of os.environ: one frozen Settings, with every problem named in plain English.

`load_settings()` collects every problem before failing, so a person fixes their `.env` in one pass.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import time, timedelta
from pathlib import Path
from urllib.parse import urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv import dotenv_values

from bot.domain.durations import parse_duration, parse_time_of_day
from bot.domain.retention import DEFAULT_AUDIT_DAYS, DEFAULT_DAYS, MAX_DAYS, MIN_DAYS
from bot.shopify.version import API_VERSION

DEFAULT_API_VERSION = API_VERSION  # the version every GraphQL document is validated against
SECRET_FIELDS = frozenset(
    {"slack_bot_token", "slack_signing_secret", "slack_app_token", "shopify_access_token", "shopify_client_secret"}
)


class ConfigError(Exception):
    """Raised with one plain-English line per problem."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Settings:
    slack_bot_token: str | None = None
    slack_signing_secret: str | None = None
    slack_channel_id: str | None = None
    slack_app_token: str | None = None
    slack_admins: tuple[str, ...] = ()
    slack_api_url: str = "https://slack.com/api/"
    shopify_shop: str | None = None
    shopify_access_token: str | None = None
    shopify_client_id: str | None = None
    shopify_client_secret: str | None = None
    shopify_api_version: str = DEFAULT_API_VERSION
    shopify_api_url: str | None = None
    database_path: str = "orderbot.db"
    smtp_url: str | None = None
    smtp_from: str | None = None
    digest_time: time = time(9, 0)
    timezone: str | None = None  # None: the shop's time zone
    scan_interval: timedelta = timedelta(minutes=15)
    port: int = 3000
    retention_days: int = DEFAULT_DAYS  # processed deliveries, sent Slack messages, scans … are kept this long
    audit_retention_days: int = DEFAULT_AUDIT_DAYS  # 0: the audit log is kept forever

    @property
    def shopify_base_url(self) -> str:
        if self.shopify_api_url:
            return self.shopify_api_url.rstrip("/")
        return f"https://{self.shopify_shop}"

    @property
    def graphql_url(self) -> str:
        return f"{self.shopify_base_url}/admin/api/{self.shopify_api_version}/graphql.json"

    @property
    def has_shopify_credentials(self) -> bool:
        return bool(self.shopify_shop and (self.shopify_access_token or self.shopify_client_id))

    @property
    def has_slack_credentials(self) -> bool:
        return bool(self.slack_bot_token and self.slack_signing_secret)

    def masked(self) -> dict[str, str]:
        """Every setting as text for `check`, secrets shown only by their last four characters."""
        shown = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value in (None, "", ()):
                text = "(not set)"
            elif f.name in SECRET_FIELDS:
                text = f"…{str(value)[-4:]}" if len(str(value)) > 8 else "****"
            elif isinstance(value, tuple):
                text = ", ".join(value)
            else:
                text = str(value)
            shown[f.name.upper()] = text
        return shown


_SHOP = re.compile(r"^[a-z0-9][a-z0-9-]*\.myshopify\.com$")
_API_VERSION = re.compile(r"^(\d{4}-(01|04|07|10)|unstable)$")
# A user id starts with U, or with W for an Enterprise Grid (organisation-wide) user; a user group id with S.
_SLACK_ADMIN = re.compile(r"^[UWS][A-Z0-9]{2,}$")
_CHANNEL = re.compile(r"^[CGD][A-Z0-9]{2,}$")


def load_settings(environ: Mapping[str, str] | None = None, env_file: str | Path | None = ".env") -> Settings:
    """Read settings from `environ` (default os.environ) over an optional `.env` file; raise ConfigError."""
    values: dict[str, str] = {}
    if env_file and Path(env_file).is_file():
        values.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    values.update(os.environ if environ is None else environ)
    env = {k: v.strip() for k, v in values.items() if isinstance(v, str) and v.strip()}
    problems: list[str] = []
    parsed: dict[str, object] = {}

    def take(name: str, check=None, message: str = "", convert=lambda v: v) -> None:
        if name not in env:
            return
        raw = env[name]
        if check is not None and not check(raw):
            problems.append(f"{name} {message} (got {_shown(name, raw)}).")
            return
        try:
            parsed[name.lower()] = convert(raw)
        except ValueError as exc:
            problems.append(f"{name}: {exc}.")

    take("SLACK_BOT_TOKEN", lambda v: v.startswith("xoxb-"), "must be a bot token starting with xoxb-")
    take("SLACK_SIGNING_SECRET", lambda v: re.fullmatch(r"[0-9a-f]{16,}", v), "must be the app's hex signing secret")
    take("SLACK_APP_TOKEN", lambda v: v.startswith("xapp-"), "must be an app-level token starting with xapp-")
    take("SLACK_CHANNEL_ID", _CHANNEL.match, "must be a channel id like C0123456789, not a channel name")
    take("SLACK_ADMINS", convert=_parse_admins)
    take("SLACK_API_URL", _is_http_url, "must be an http(s) URL")
    take("SHOPIFY_SHOP", _SHOP.match, "must be the shop's my-store.myshopify.com domain")
    take("SHOPIFY_ACCESS_TOKEN")
    take("SHOPIFY_CLIENT_ID")
    take("SHOPIFY_CLIENT_SECRET")
    take("SHOPIFY_API_VERSION", _API_VERSION.match, "must look like 2026-04 (a quarterly version) or unstable")
    take("SHOPIFY_API_URL", _is_http_url, "must be an http(s) URL")
    take(
        "DATABASE_PATH",
        _in_existing_directory,
        "must be in a directory that exists: create it, or mount the persistent disk there",
    )
    take(
        "SMTP_URL",
        lambda v: urlparse(v).scheme in ("smtp", "smtps") and urlparse(v).hostname,
        "must look like smtp://user:pass@host:587 or smtps://user:pass@host:465",
    )
    take("SMTP_FROM", lambda v: "@" in v, "must be an email address")
    take("DIGEST_TIME", convert=parse_time_of_day)
    take("TIMEZONE", convert=_check_timezone)
    take("SCAN_INTERVAL", convert=_parse_interval)
    take("PORT", lambda v: v.isdigit() and 0 < int(v) < 65536, "must be a port number", int)
    take(
        "RETENTION_DAYS",
        lambda v: v.isdigit() and MIN_DAYS <= int(v) <= MAX_DAYS,
        f"must be a whole number of days from {MIN_DAYS} to {MAX_DAYS}, so that a webhook Shopify sends again"
        " is still known as a repeat",
        int,
    )
    take(
        "AUDIT_RETENTION_DAYS",
        lambda v: v.isdigit() and (int(v) == 0 or MIN_DAYS <= int(v) <= MAX_DAYS),
        f"must be a whole number of days from {MIN_DAYS} to {MAX_DAYS}, or 0 to keep the audit log forever",
        int,
    )

    if "SHOPIFY_CLIENT_ID" in env and "SHOPIFY_CLIENT_SECRET" not in env:
        problems.append("SHOPIFY_CLIENT_ID is set but SHOPIFY_CLIENT_SECRET is not; set both to get a token.")
    if ("SHOPIFY_ACCESS_TOKEN" in env or "SHOPIFY_CLIENT_ID" in env) and "SHOPIFY_SHOP" not in env:
        problems.append("SHOPIFY_SHOP is missing; set it to your my-store.myshopify.com domain.")
    if "SLACK_BOT_TOKEN" in env and "SLACK_SIGNING_SECRET" not in env:
        problems.append("SLACK_SIGNING_SECRET is missing; copy it from the Slack app's Basic Information page.")
    if "SMTP_URL" in env and "SMTP_FROM" not in env:
        problems.append("SMTP_FROM is missing; set the address customer emails come from.")
    if problems:
        raise ConfigError(problems)
    return Settings(**parsed)


def require(settings: Settings, *names: str) -> None:
    """Raise ConfigError naming every variable in `names` that a command needs and is not set."""
    missing = [n for n in names if not getattr(settings, n.lower())]
    if missing:
        raise ConfigError([f"{n} is not set; this command needs it (see README, 'Environment')." for n in missing])


def _is_http_url(value: str) -> bool:
    parsed = urlparse(value)
    return parsed.scheme in ("http", "https") and bool(parsed.netloc)


def _shown(name: str, raw: str) -> str:
    """A refused value as a problem repeats it: a secret only by its length and, for a Slack token, its kind
    (`xoxp-` …), which says what was pasted without printing the secret into a log."""
    if name.lower() not in SECRET_FIELDS:
        return repr(raw[:40])
    kind = re.match(r"x[a-z]{3}-", raw)
    return f"{len(raw)} characters" + (f" starting {kind[0]!r}" if kind else "") + ", not shown"


def _in_existing_directory(path: str) -> bool:
    """Not creating the directory is the point: a path with a typo, or a disk not mounted, would otherwise start
    with an empty database on a disk that does not last."""
    return path == ":memory:" or Path(path).parent.is_dir()


def _parse_admins(value: str) -> tuple[str, ...]:
    ids = tuple(part.strip() for part in value.split(",") if part.strip())
    bad = [i for i in ids if not _SLACK_ADMIN.match(i)]
    if len(bad) == 1:
        raise ValueError(f"{bad[0][:40]!r} is not a Slack user id (U… or W…) or user-group id (S…)")
    if bad:
        listed = ", ".join(repr(b[:40]) for b in bad)
        raise ValueError(f"{listed} are not Slack user ids (U… or W…) or user-group ids (S…)")
    return ids


def _check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{value!r} is not a time zone name like Europe/Stockholm") from None
    return value


def _parse_interval(value: str) -> timedelta:
    interval = parse_duration(value)
    if interval < timedelta(minutes=1):
        raise ValueError("must be at least 1m, to stay within Shopify's rate limits")
    return interval
