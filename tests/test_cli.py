"""The command line as a person runs it: `python -m bot …` in a subprocess."""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from bot.cli import SCAN_PROGRESS
from bot.domain.rules import REASON_TITLES
from bot.progress import CommandProgress
from bot.sandbox.seed import seed_orders
from bot.sandbox.serving import serve
from bot.sandbox.shopify import SandboxShopify
from bot.sandbox.slack import SandboxSlack
from bot.sandbox.slack_payloads import sign_request
from bot.shopify.operations import REQUIRED_SCOPES
from bot.slack.app import BOT_SCOPES
from tests.conftest import free_port

BASE_ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp")}


async def run_bot(*args: str, env: dict[str, str], cwd: Path, timeout: float = 90) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        cwd=cwd,
        env={**BASE_ENV, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout)
    return process.returncode, out.decode(), err.decode()


async def test_scan_dry_run_sandbox_classifies_the_seeded_store_and_writes_nothing(tmp_path):
    code, out, err = await run_bot("scan", "--dry-run", "--sandbox", env={}, cwd=tmp_path)
    assert code == 0, err
    for title in REASON_TITLES.values():
        assert title in out, title
    assert "STUCK" in out and "(dry run: nothing was changed)" in out
    assert list(tmp_path.iterdir()) == [], "a dry run creates no database"


class FakeTerminal(io.StringIO):
    """An output that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def test_off_a_terminal_progress_is_plain_lines():
    out = io.StringIO()
    with CommandProgress(out, "Reading open orders from Shopify", unit="orders read") as progress:
        progress.advance(250)
        progress.line("a line of the command's own")
        progress.advance(12)
    assert out.getvalue().splitlines() == [
        "Reading open orders from Shopify: 250 orders read",
        "a line of the command's own",
        "Reading open orders from Shopify: 262 orders read",
        "Reading open orders from Shopify: done, 262 orders read",
    ]
    counted = io.StringIO()
    with pytest.raises(RuntimeError), CommandProgress(counted, "Changing", unit="changes", total=3) as progress:
        progress.advance()
        raise RuntimeError("Shopify went away")
    assert counted.getvalue().splitlines() == ["Changing: 1 of 3 changes", "Changing: stopped, 1 changes"]


@pytest.mark.parametrize("total", [None, 4])
def test_on_a_terminal_progress_draws_a_bar_with_the_lines_above_it(total):
    terminal = FakeTerminal()
    with CommandProgress(terminal, "Reading open orders from Shopify", unit="orders read", total=total) as progress:
        progress.advance(2)
        progress.line("  added        orders/create")
        progress.advance(2)
    drawn = terminal.getvalue()
    assert "\x1b[" in drawn and "━" in drawn, "an ANSI-drawn bar"
    assert "Reading open orders from Shopify" in drawn and "  added        orders/create" in drawn
    assert ("4/4" if total else "4 orders read") in drawn
    assert "done," not in drawn, "no plain lines on a terminal"


async def test_scan_shows_its_progress_on_stderr_as_plain_lines_off_a_terminal(tmp_path):
    code, out, err = await run_bot("scan", "--dry-run", "--sandbox", env={}, cwd=tmp_path)
    assert code == 0, err
    lines = [line for line in err.splitlines() if line.startswith(SCAN_PROGRESS)]
    checked = int(re.search(r"^(\d+) open orders checked", out, re.M).group(1))
    counts = [int(re.fullmatch(rf"{SCAN_PROGRESS}: (\d+) orders read", line).group(1)) for line in lines[:-1]]
    assert counts == sorted(counts) and counts[-1] == checked
    assert lines[-1] == f"{SCAN_PROGRESS}: done, {checked} orders read"
    assert SCAN_PROGRESS not in out, "the table alone on stdout"


async def test_scan_sandbox_reports_what_reconciliation_found(tmp_path):
    code, out, err = await run_bot("scan", "--sandbox", env={}, cwd=tmp_path)
    assert code == 0, err
    assert "found only by reconciliation" in out


async def test_scan_without_credentials_names_what_is_missing(tmp_path):
    code, _, err = await run_bot("scan", env={}, cwd=tmp_path)
    assert code == 2
    assert err.strip() == "config: SHOPIFY_SHOP is not set; this command needs it (see README, 'Environment')."


@pytest.mark.parametrize("granted", [REQUIRED_SCOPES, ("read_orders", "write_orders")], ids=["all", "missing"])
async def test_check_verifies_credentials_and_scopes_live(tmp_path, now, granted):
    shop = SandboxShopify(seed_orders(now), scopes=granted)
    runner, url = await serve(shop.app)
    env = {"SHOPIFY_SHOP": shop.shop_domain, "SHOPIFY_ACCESS_TOKEN": shop.access_token, "SHOPIFY_API_URL": url}
    code, out, err = await run_bot("check", env=env, cwd=tmp_path)
    await runner.cleanup()
    assert f"connected to {shop.shop_name}" in out
    assert shop.access_token not in out, "secrets are masked"
    if granted == REQUIRED_SCOPES:
        assert code == 0, out + err
        assert "All the access scopes orderbot needs are granted." in out
    else:
        assert code == 1
        missing = [s for s in REQUIRED_SCOPES if s not in granted]
        assert f"Missing access scopes: {', '.join(missing)}." in out


async def test_check_reports_an_unreachable_shop(tmp_path):
    port = free_port()
    env = {
        "SHOPIFY_SHOP": "a.myshopify.com",
        "SHOPIFY_ACCESS_TOKEN": "t",
        "SHOPIFY_API_URL": f"http://127.0.0.1:{port}",
    }
    code, out, _ = await run_bot("check", env=env, cwd=tmp_path)
    assert code == 1
    assert "Shopify: Shopify could not be reached; try again in a minute." in out


async def health_once_serving(http: aiohttp.ClientSession, port: int) -> tuple[int, dict]:
    """Wait for `python -m bot serve` to listen, then return its /healthz status and body."""
    for _ in range(200):
        try:
            async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                return response.status, await response.json()
        except aiohttp.ClientConnectionError:
            await asyncio.sleep(0.05)
    pytest.fail("the server did not start")


async def test_serve_answers_health_checks_and_stops_cleanly_on_sigterm(tmp_path):
    port = free_port()
    env = {**BASE_ENV, "PORT": str(port), "DATABASE_PATH": str(tmp_path / "o.db"), "SHOPIFY_CLIENT_SECRET": "x"}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "serve", env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        async with aiohttp.ClientSession() as http:
            status, body = await health_once_serving(http, port)
        assert status == 200 and body["ok"] is True
    finally:
        process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(), 20)
    assert code == 0


@pytest.mark.parametrize("granted", [tuple(BOT_SCOPES), ("chat:write", "commands")], ids=["all", "missing"])
async def test_check_reads_the_slack_bot_scopes_from_auth_test(tmp_path, granted):
    slack = SandboxSlack(scopes=granted)
    await slack.start()
    env = {
        "SLACK_BOT_TOKEN": slack.bot_token,
        "SLACK_SIGNING_SECRET": "8f742231b10e8888abcd9912345685a5",
        "SLACK_API_URL": slack.api_url,
    }
    code, out, err = await run_bot("check", env=env, cwd=tmp_path)
    await slack.stop()
    assert "Slack: connected as" in out, out + err
    assert slack.bot_token not in out, "secrets are masked"
    if granted == tuple(BOT_SCOPES):
        assert code == 0 and "All the bot scopes orderbot needs are granted." in out
    else:
        assert code == 1
        assert "Missing bot scopes: usergroups:read (admins named by user group in SLACK_ADMINS);" in out


async def test_serve_with_slack_settings_answers_signed_slack_requests(tmp_path):
    slack = SandboxSlack()
    await slack.start()
    port, secret = free_port(), "8f742231b10e8888abcd9912345685a5"
    env = {
        **BASE_ENV,
        "PORT": str(port),
        "DATABASE_PATH": str(tmp_path / "o.db"),
        "SHOPIFY_CLIENT_SECRET": "x",
        "SLACK_BOT_TOKEN": slack.bot_token,
        "SLACK_SIGNING_SECRET": secret,
        "SLACK_CHANNEL_ID": "C0ORDERS",
        "SLACK_API_URL": slack.api_url,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "serve", env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    body = json.dumps({"type": "url_verification", "token": "t", "challenge": "orderbot-challenge"}).encode()
    headers = sign_request(body, secret, content_type="application/json")
    try:
        async with aiohttp.ClientSession() as http:
            await health_once_serving(http, port)
            async with http.post(f"http://127.0.0.1:{port}/slack/events", data=body, headers=headers) as r:
                answer = await r.json()
            assert answer == {"challenge": "orderbot-challenge"}  # Slack's URL check: the signing secret is wired
            forged = sign_request(body, "0" * 32, content_type="application/json")
            async with http.post(f"http://127.0.0.1:{port}/slack/events", data=body, headers=forged) as r:
                assert r.status == 401
    finally:
        process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(), 20)
        await slack.stop()
    assert code == 0
