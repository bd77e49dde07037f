"""manifest.yml is a valid Slack app manifest whose URLs point at routes the server serves."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlparse

import jsonschema
import yaml

from bot.domain.commands import ACTION_COMMANDS, INFO_COMMANDS
from bot.slack.app import BOT_SCOPES

ROOT = Path(__file__).parent.parent


def test_manifest_validates_against_slacks_schema():
    manifest = yaml.safe_load((ROOT / "manifest.yml").read_text())
    schema = json.loads((ROOT / "tests" / "data" / "manifest.schema.1.0.0.json").read_text())
    jsonschema.validate(manifest, schema)


def test_manifest_urls_use_the_slack_route():
    manifest = yaml.safe_load((ROOT / "manifest.yml").read_text())
    urls = [c["url"] for c in manifest["features"]["slash_commands"]]
    urls.append(manifest["settings"]["interactivity"]["request_url"])
    urls.append(manifest["settings"]["event_subscriptions"]["request_url"])
    assert {urlparse(u).path for u in urls} == {"/slack/events"}
    assert [c["command"] for c in manifest["features"]["slash_commands"]] == ["/orders"]


def test_manifest_asks_for_exactly_the_bot_scopes_the_code_uses():
    manifest = yaml.safe_load((ROOT / "manifest.yml").read_text())
    assert manifest["oauth_config"]["scopes"]["bot"] == list(BOT_SCOPES)


def test_orders_escapes_mentions_and_its_usage_hint_names_real_subcommands():
    """`should_escape: true` makes Slack send `@maria` as `<@U…|maria>`, the form `/orders log @person` parses."""
    manifest = yaml.safe_load((ROOT / "manifest.yml").read_text())
    (orders,) = manifest["features"]["slash_commands"]
    assert orders["should_escape"] is True
    hinted = [part.split()[0] for part in orders["usage_hint"].split("|")]
    assert hinted and set(hinted) <= set(ACTION_COMMANDS) | set(INFO_COMMANDS), hinted


def test_manifest_enables_the_home_tab_and_its_event():
    manifest = yaml.safe_load((ROOT / "manifest.yml").read_text())
    assert manifest["features"]["app_home"]["home_tab_enabled"] is True
    assert manifest["settings"]["event_subscriptions"]["bot_events"] == ["app_home_opened"]
