"""Command line: `python -m bot serve | scan | check | setup-webhooks | demo | digest`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import web
from tabulate import tabulate

from bot.config import ConfigError, Settings, load_settings, require
from bot.domain.durations import format_duration
from bot.domain.rules import REASON_TITLES
from bot.flows.digests import terminal_digest
from bot.flows.service import ScanReport, Service
from bot.progress import CommandProgress
from bot.setup_webhooks import setup_webhooks_command
from bot.shopify.client import ShopifyClient, ShopifyError, client_from_settings
from bot.shopify.operations import REQUIRED_SCOPES
from bot.shopify.version import API_VERSION
from bot.slack.app import BOT_SCOPES
from bot.store import Store
from bot.web import LINGER_SECONDS, LISTEN_BACKLOG, create_app

log = logging.getLogger("bot")

CHART_FILE = "orderbot-digest-chart.png"
SCAN_PROGRESS = "Reading open orders from Shopify"
LOG_LEVEL = logging.INFO
# Libraries logged at another level than LOG_LEVEL (tests/log_guard.py checks what the tests log at these levels):
# aiohttp logs every request; slack_sdk logs whole request and response bodies at DEBUG, customer names and emails
# among them (a notice's modal).
LIBRARY_LOG_LEVELS = {"aiohttp.access": logging.WARNING, "slack_sdk": logging.INFO}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="orderbot", description="Finds Shopify orders that are stuck.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="run the server: webhooks, health check and the reconcile timer")
    scan = commands.add_parser("scan", help="reconcile open orders with Shopify now and show the verdicts")
    scan.add_argument("--dry-run", action="store_true", help="print the verdicts; change nothing")
    scan.add_argument("--sandbox", action="store_true", help="use the built-in sandbox store (no credentials)")
    commands.add_parser("check", help="show the configuration and check the credentials live")
    digest = commands.add_parser("digest", help="the daily digest, from the database (the server posts it to Slack)")
    digest.add_argument("--print", action="store_true", required=True, help="print it here")
    digest.add_argument(
        "--chart", type=Path, default=Path(CHART_FILE), help=f"where to write its chart (PNG; default ./{CHART_FILE})"
    )
    demo = commands.add_parser("demo", help="play a day against built-in sandboxes of Shopify, Slack and email")
    demo.add_argument("--keep-running", action="store_true", help="leave the server and the sandboxes up afterwards")
    webhooks = commands.add_parser("setup-webhooks", help="subscribe the shop to every topic orderbot handles")
    webhooks.add_argument("--url", required=True, help="where Shopify sends them: https://HOST/shopify/webhooks")
    webhooks.add_argument("--dry-run", action="store_true", help="print what would change; change nothing")
    webhooks.add_argument("--prune", action="store_true", help="also remove the app's subscriptions to other URLs")
    args = parser.parse_args(argv)
    if args.command == "demo":  # needs no settings: it ignores the environment and .env, and logs to its own file
        from bot.demo import run_demo

        return run_demo(keep_running=args.keep_running)
    configure_logging()
    try:
        settings = load_settings()
        if args.command == "serve":
            return serve(settings)
        if args.command == "scan":
            exists = Path(settings.database_path).exists()  # a dry run must not create the database
            return asyncio.run(
                scan_command(settings, dry_run=args.dry_run, sandbox=args.sandbox, database_exists=exists)
            )
        if args.command == "setup-webhooks":
            return asyncio.run(setup_webhooks_command(settings, url=args.url, dry_run=args.dry_run, prune=args.prune))
        if args.command == "digest":
            return digest_command(settings, chart=args.chart)
        return asyncio.run(check_command(settings))
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"config: {problem}", file=sys.stderr)
        return 2
    except ShopifyError as exc:
        print(f"shopify: {exc}", file=sys.stderr)
        return 1


def configure_logging() -> None:
    """One line per event on stderr, at LOG_LEVEL, libraries at LIBRARY_LOG_LEVELS."""
    logging.basicConfig(level=LOG_LEVEL, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for name, level in LIBRARY_LOG_LEVELS.items():
        logging.getLogger(name).setLevel(level)


def serve(settings: Settings) -> int:
    web.run_app(
        create_app(settings),
        port=settings.port,
        backlog=LISTEN_BACKLOG,
        lingering_time=LINGER_SECONDS,
        print=lambda text: log.info(text.strip()),
    )
    return 0


# --- scan -------------------------------------------------------------------------------------------------------


@asynccontextmanager
async def sandbox_shopify() -> AsyncIterator[ShopifyClient]:
    """The built-in sandbox store, served on 127.0.0.1, and a client pointed at it."""
    from bot.sandbox.seed import seed_orders
    from bot.sandbox.serving import serve as serve_app
    from bot.sandbox.shopify import SandboxShopify

    sandbox = SandboxShopify(seed_orders(datetime.now(UTC)))
    runner, base_url = await serve_app(sandbox.app)
    graphql_url = f"{base_url}/admin/api/{API_VERSION}/graphql.json"
    client = ShopifyClient(graphql_url=graphql_url, access_token=sandbox.access_token)
    try:
        yield client
    finally:
        await client.close()
        await runner.cleanup()


async def scan_command(settings: Settings, *, dry_run: bool, sandbox: bool, database_exists: bool) -> int:
    if not sandbox:
        require(settings, "SHOPIFY_SHOP")
        if not settings.has_shopify_credentials:
            require(settings, "SHOPIFY_ACCESS_TOKEN")
    if sandbox and not dry_run:
        settings = replace(settings, database_path=":memory:")
    store = Store(settings.database_path)
    if not dry_run or database_exists:
        await store.open()
    try:
        with CommandProgress(sys.stderr, SCAN_PROGRESS, unit="orders read") as progress:
            if sandbox:
                async with sandbox_shopify() as client:
                    report = await Service(store, client).reconcile(dry_run=dry_run, progress=progress.advance)
            else:
                client = client_from_settings(settings)
                try:
                    report = await Service(store, client).reconcile(dry_run=dry_run, progress=progress.advance)
                finally:
                    await client.close()
    finally:
        if store.is_open:
            await store.close()
    print(render_scan(report, dry_run=dry_run))
    return 0


def render_scan(report: ScanReport, *, dry_run: bool) -> str:
    rows = []
    ordered = sorted(report.classified, key=lambda ov: (not ov[1].stuck, ov[1].since or ov[0].created_at))
    for order, verdict in ordered:
        stuck_for = verdict.stuck_for(report.started_at)
        rows.append(
            [
                order.name,
                "STUCK" if verdict.stuck else verdict.status,
                REASON_TITLES.get(verdict.reason, "") if verdict.reason else "",
                format_duration(stuck_for) if stuck_for is not None and verdict.stuck else "",
                verdict.severity if verdict.stuck else "",
                verdict.explanation,
            ]
        )
    table = tabulate(
        rows,
        headers=["Order", "Status", "Reason", "Stuck for", "Severity", "Why"],
        maxcolwidths=[None, None, None, None, None, 70],
    )
    stuck = len(report.stuck)
    summary = f"{len(report.classified)} open orders checked, {stuck} stuck"
    if not dry_run:
        summary += f", {len(report.missed_by_webhooks)} found only by reconciliation"
    return f"{table}\n\n{summary}." + (" (dry run: nothing was changed)" if dry_run else "")


# --- digest -----------------------------------------------------------------------------------------------------


def digest_command(settings: Settings, *, chart: Path) -> int:
    if not Path(settings.database_path).exists():
        print(f"No database at {settings.database_path}: run `python -m bot scan` or `serve` first.", file=sys.stderr)
        return 1
    from bot.slack.digest_chart import TITLE, chart_png

    text, series = asyncio.run(
        terminal_digest(settings.database_path, timezone=settings.timezone, shop=settings.shopify_shop)
    )
    chart.write_bytes(chart_png(series))
    print(text)
    print(f"\nChart ({TITLE.lower()}, and the median time to resolve): {chart.resolve()}")
    return 0


# --- check ------------------------------------------------------------------------------------------------------


async def check_command(settings: Settings) -> int:
    print("Configuration:")
    for name, value in settings.masked().items():
        print(f"  {name:<24} {value}")
    problems = 0
    client = client_from_settings(settings)
    if client is None:
        print("\nShopify: no credentials set (SHOPIFY_SHOP and SHOPIFY_ACCESS_TOKEN); skipped the live check.")
    else:
        try:
            shop, scopes = await client.shop_and_scopes()
            missing = [s for s in REQUIRED_SCOPES if s not in scopes and not _implied(s, scopes)]
            print(
                f"\nShopify: connected to {shop['name']} ({shop['myshopifyDomain']}), time zone {shop['ianaTimezone']}."
            )
            if missing:
                problems += 1
                print(f"  Missing access scopes: {', '.join(missing)}. Grant them in the app's configuration.")
            else:
                print("  All the access scopes orderbot needs are granted.")
        except ShopifyError as exc:
            problems += 1
            print(f"\nShopify: {exc}")
        finally:
            await client.close()
    if not settings.has_slack_credentials:
        print("Slack: no credentials set (SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET); skipped the live check.")
    else:
        problems += await _check_slack(settings)
    return 1 if problems else 0


def _implied(scope: str, granted: set[str]) -> bool:
    """Shopify grants read_x implicitly with write_x."""
    return scope.startswith("read_") and f"write_{scope[5:]}" in granted


async def _check_slack(settings: Settings) -> int:
    from slack_sdk.errors import SlackApiError
    from slack_sdk.web.async_client import AsyncWebClient

    from bot.slack.proxies import use_proxy_for

    client = use_proxy_for(
        AsyncWebClient(token=settings.slack_bot_token, base_url=settings.slack_api_url), settings.slack_api_url
    )
    try:
        auth = await client.auth_test()
    except SlackApiError as exc:
        print(f"Slack: the bot token was refused ({exc.response.get('error')}).")
        return 1
    except OSError as exc:
        print(f"Slack: could not reach {settings.slack_api_url} ({exc.__class__.__name__}).")
        return 1
    print(f"Slack: connected as {auth['user']} in {auth['team']}.")
    granted = {s.strip() for s in (auth.headers.get("x-oauth-scopes") or "").split(",")}
    missing = [f"{scope} ({why})" for scope, why in BOT_SCOPES.items() if scope not in granted]
    if missing:
        print("  Missing bot scopes: " + "; ".join(missing) + ". Add them (manifest.yml) and reinstall the app.")
        return 1
    print("  All the bot scopes orderbot needs are granted.")
    return 0
