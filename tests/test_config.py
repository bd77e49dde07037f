"""Configuration: every variable of README's table with its default, and one plain line per problem."""

from __future__ import annotations

import subprocess
import sys
from datetime import time, timedelta

import pytest

from bot.config import ConfigError, Settings, load_settings
from bot.sandbox.schema import SCHEMA_PATH
from bot.shopify.version import API_VERSION


def test_defaults_with_an_empty_environment(tmp_path):
    settings = load_settings({}, env_file=None)
    assert settings == Settings()
    assert settings.shopify_api_version == API_VERSION
    assert settings.database_path == "orderbot.db"
    assert settings.digest_time == time(9, 0)
    assert settings.scan_interval == timedelta(minutes=15)
    assert settings.slack_api_url == "https://slack.com/api/"
    assert settings.port == 3000
    assert settings.retention_days == 30
    assert settings.audit_retention_days == 400


def test_every_variable_is_read(tmp_path):
    env = {
        "SLACK_BOT_TOKEN": "xoxb-1-2-abc",
        "SLACK_SIGNING_SECRET": "0123456789abcdef0123",
        "SLACK_CHANNEL_ID": "C0123ABCD",
        "SLACK_APP_TOKEN": "xapp-1-abc",
        "SLACK_ADMINS": "U01ABC, S02DEF",
        "SLACK_API_URL": "http://127.0.0.1:9/api/",
        "SHOPIFY_SHOP": "my-store.myshopify.com",
        "SHOPIFY_ACCESS_TOKEN": "shpat_x",
        "SHOPIFY_CLIENT_ID": "cid",
        "SHOPIFY_CLIENT_SECRET": "csecret",
        "SHOPIFY_API_VERSION": "2026-04",
        "SHOPIFY_API_URL": "http://127.0.0.1:8",
        "DATABASE_PATH": str(tmp_path / "o.db"),
        "SMTP_URL": "smtps://u:p@mail.example.com:465",
        "SMTP_FROM": "shop@example.com",
        "DIGEST_TIME": "07:30",
        "TIMEZONE": "Europe/Stockholm",
        "SCAN_INTERVAL": "5m",
        "PORT": "8080",
        "RETENTION_DAYS": "14",
        "AUDIT_RETENTION_DAYS": "0",
    }
    s = load_settings(env, env_file=None)
    assert s.slack_admins == ("U01ABC", "S02DEF")
    assert s.graphql_url == "http://127.0.0.1:8/admin/api/2026-04/graphql.json"
    assert s.digest_time == time(7, 30)
    assert s.scan_interval == timedelta(minutes=5)
    assert s.port == 8080
    assert s.timezone == "Europe/Stockholm"
    assert s.database_path == str(tmp_path / "o.db")
    assert (s.retention_days, s.audit_retention_days) == (14, 0)


def test_the_graphql_url_defaults_to_the_shop():
    s = load_settings({"SHOPIFY_SHOP": "my-store.myshopify.com", "SHOPIFY_ACCESS_TOKEN": "t"}, env_file=None)
    assert s.graphql_url == f"https://my-store.myshopify.com/admin/api/{API_VERSION}/graphql.json"


def test_the_api_version_asked_for_is_the_version_of_the_schema_the_repo_holds():
    """Every document is validated against (and the sandbox executes) bot/sandbox/admin-<version>.graphql; Shopify
    must be asked for that same version. Moving on: replace the schema file, set API_VERSION, run the tests."""
    held = sorted(path.name for path in SCHEMA_PATH.parent.glob("admin-*.graphql"))
    assert held == [f"admin-{API_VERSION}.graphql"], (
        f"bot/sandbox holds {held}, but bot/shopify/version.py asks Shopify for {API_VERSION}: keep one schema file "
        "and set API_VERSION to its version"
    )
    assert SCHEMA_PATH.is_file()
    assert Settings().shopify_api_version == API_VERSION
    assert load_settings({}, env_file=None).graphql_url.endswith(f"/admin/api/{API_VERSION}/graphql.json")


def test_every_problem_is_named_once():
    env = {
        "SLACK_BOT_TOKEN": "xoxp-user-token",
        "SHOPIFY_SHOP": "https://my-store.com",
        "SCAN_INTERVAL": "soon",
        "DIGEST_TIME": "25:00",
        "TIMEZONE": "Mars/Olympus",
        "SLACK_ADMINS": "bob",
        "PORT": "http",
    }
    with pytest.raises(ConfigError) as caught:
        load_settings(env, env_file=None)
    problems = caught.value.problems
    for name in (
        "SLACK_BOT_TOKEN",
        "SHOPIFY_SHOP",
        "SCAN_INTERVAL",
        "DIGEST_TIME",
        "TIMEZONE",
        "SLACK_ADMINS",
        "PORT",
        "SLACK_SIGNING_SECRET",
    ):
        assert sum(name in p for p in problems) >= 1, name
    assert all("\n" not in p and p.endswith(".") for p in problems)


def test_slack_admins_takes_enterprise_grid_user_ids():
    """On Enterprise Grid a user's id starts with W (a global id), not U: both are people, S is a user group."""
    s = load_settings({"SLACK_ADMINS": "W012A3CDE, U01ABC,S02DEF"}, env_file=None)
    assert s.slack_admins == ("W012A3CDE", "U01ABC", "S02DEF")
    with pytest.raises(ConfigError) as caught:
        load_settings({"SLACK_ADMINS": "W012A3CDE, w0lower, T0TEAM"}, env_file=None)
    (problem,) = caught.value.problems
    assert "'w0lower', 'T0TEAM' are not Slack user ids (U… or W…)" in problem


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("RETENTION_DAYS", "1"),  # a webhook Shopify sends again would no longer be known as a repeat
        ("RETENTION_DAYS", "0"),
        ("RETENTION_DAYS", "30d"),
        ("RETENTION_DAYS", "99999999"),
        ("AUDIT_RETENTION_DAYS", "2"),
        ("AUDIT_RETENTION_DAYS", "-1"),
        ("AUDIT_RETENTION_DAYS", "forever"),
    ],
)
def test_a_retention_window_that_is_too_short_or_not_days_is_refused(name, value):
    with pytest.raises(ConfigError) as caught:
        load_settings({name: value}, env_file=None)
    (problem,) = caught.value.problems
    assert problem.startswith(f"{name} must be a whole number of days from 3 to 36500")
    assert f"(got {value!r})" in problem


def test_a_dotenv_file_is_honoured_and_the_environment_wins(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("DATABASE_PATH=from-file.db\nPORT=4000\n")
    s = load_settings({"PORT": "5000"}, env_file=env_file)
    assert s.database_path == "from-file.db"
    assert s.port == 5000


def test_secrets_are_masked():
    s = load_settings(
        {"SHOPIFY_SHOP": "a.myshopify.com", "SHOPIFY_ACCESS_TOKEN": "shpat_secretvalue1234"}, env_file=None
    )
    shown = s.masked()
    assert shown["SHOPIFY_ACCESS_TOKEN"] == "…1234"
    assert "secretvalue" not in " ".join(shown.values())


def test_the_cli_prints_problems_without_a_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "bot", "check"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"SCAN_INTERVAL": "often", "PATH": "/usr/bin:/bin"},
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("config: SCAN_INTERVAL")
    assert "Traceback" not in result.stderr
