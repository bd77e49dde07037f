"""Persist-then-ack under kill -9: every delivery that got a 200 is in the database after the server died mid-burst,
and the restarted server processes what the dead one left pending."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import uuid
from contextlib import closing
from pathlib import Path

from bot.shopify.webhooks import sign
from tests.conftest import free_port

SECRET = "crash-secret"


def request(webhook_id: str, number: int) -> bytes:
    body = json.dumps(
        {
            "id": number,
            "admin_graphql_api_id": f"gid://shopify/Order/{number}",
            "name": f"#{number}",
            "created_at": "2026-11-20T10:00:00Z",
            "updated_at": "2026-11-26T10:00:00Z",
            "financial_status": "paid",
            "fulfillment_status": None,
            "total_price": "12.00",
            "currency": "EUR",
        }
    ).encode()
    head = (
        f"POST /shopify/webhooks HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n"
        f"X-Shopify-Topic: orders/updated\r\nX-Shopify-Hmac-Sha256: {sign(body, SECRET)}\r\n"
        f"X-Shopify-Webhook-Id: {webhook_id}\r\n\r\n"
    ).encode()
    return head + body


async def start_server(env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "serve", env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


async def wait_listening(port: int) -> None:
    for _ in range(400):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.05)
    raise AssertionError("the server did not start")


async def post_until_killed(port: int, answered: set[str], first_number: int) -> None:
    """16 keep-alive connections post distinct deliveries until the server dies under them."""
    numbers = iter(range(first_number, first_number + 100_000))

    async def connection() -> None:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            while True:
                webhook_id = str(uuid.uuid4())
                writer.write(request(webhook_id, next(numbers)))
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                )
                await reader.readexactly(length)
                if head.startswith(b"HTTP/1.1 200"):
                    answered.add(webhook_id)
        except (OSError, asyncio.IncompleteReadError):
            return

    await asyncio.gather(*(connection() for _ in range(16)))


async def test_no_acknowledged_delivery_is_lost_when_the_server_is_killed(tmp_path: Path):
    db = tmp_path / "orderbot.db"
    port = free_port()
    env = {**os.environ, "DATABASE_PATH": str(db), "SHOPIFY_CLIENT_SECRET": SECRET, "PORT": str(port)}
    env = {k: v for k, v in env.items() if not k.startswith(("SHOPIFY_SHOP", "SHOPIFY_ACCESS", "SLACK_"))}
    answered: set[str] = set()
    for run in range(3):
        server = await start_server(env)
        await wait_listening(port)
        asyncio.get_running_loop().call_later(0.7, server.send_signal, signal.SIGKILL)
        await post_until_killed(port, answered, first_number=run * 100_000)
        await asyncio.wait_for(server.wait(), 20)
    with closing(sqlite3.connect(db)) as conn:
        stored = {row[0] for row in conn.execute("SELECT webhook_id FROM inbox")}
    print(f"answered {len(answered)}, stored {len(stored)}, lost {len(answered - stored)}")
    assert len(answered) > 100, "the burst was too small to mean anything"
    assert answered <= stored

    server = await start_server(env)
    try:
        await wait_listening(port)
        for _ in range(400):
            with closing(sqlite3.connect(db)) as conn:
                pending = conn.execute("SELECT count(*) FROM inbox WHERE status = 'pending'").fetchone()[0]
            if not pending:
                break
            await asyncio.sleep(0.05)
        assert pending == 0, "the restarted server processes what the killed ones left"
    finally:
        server.send_signal(signal.SIGTERM)
        await asyncio.wait_for(server.wait(), 20)
