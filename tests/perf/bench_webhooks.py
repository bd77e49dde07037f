"""Webhook ingest benchmark: the real server (HMAC, dedupe, durable group commit, processing) against a bare aiohttp
handler that only checks the HMAC and answers 200, measured in the same run with the same load.

    python tests/perf/bench_webhooks.py [--requests 20000] [--connections 32]

Each server runs in its own process; the load comes from this process over keep-alive connections with pre-built,
pre-signed requests (a minimal HTTP/1.1 client, so the client is not the bottleneck). One request in ten repeats an
earlier webhook id, to exercise deduplication. Prints deliveries per second, p50/p99 latency, and the ratio.
Exits non-zero when the real server reaches less than 0.6 of the bare handler's throughput.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from aiohttp import web

from bot.shopify.webhooks import sign, verify_hmac

SECRET = "bench-secret"
TARGET_RATIO = 0.6


def bare_server(port: int) -> None:
    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        if not verify_hmac(body, request.headers.get("X-Shopify-Hmac-Sha256"), SECRET):
            return web.json_response({"ok": False}, status=401)
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/shopify/webhooks", handle)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build_requests(count: int) -> list[bytes]:
    requests = []
    for i in range(count):
        original = i if i % 10 else max(i - 5, 0)  # every tenth repeats an earlier delivery
        order_id = 5_000_000_000_000 + original
        body = json.dumps(
            {
                "id": order_id,
                "admin_graphql_api_id": f"gid://shopify/Order/{order_id}",
                "name": f"#{original}",
                "created_at": "2026-11-20T10:00:00Z",
                "updated_at": "2026-11-26T10:00:00Z",
                "financial_status": "paid",
                "fulfillment_status": None,
                "total_price": "49.00",
                "currency": "EUR",
                "tags": "",
                "test": False,
                "email": f"buyer{original}@example.com",
                "line_items": [{"title": "Linen shirt", "quantity": 1}],
            }
        ).encode()
        head = (
            "POST /shopify/webhooks HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nX-Shopify-Topic: orders/updated\r\n"
            f"X-Shopify-Hmac-Sha256: {sign(body, SECRET)}\r\nX-Shopify-Webhook-Id: bench-{original}\r\n"
            f"X-Shopify-Event-Id: event-{original}\r\nX-Shopify-Shop-Domain: bench.myshopify.com\r\n\r\n"
        ).encode()
        requests.append(head + body)
    return requests


async def one_connection(port: int, queue: list[bytes], latencies: list[float], statuses: dict[int, int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    while queue:
        request = queue.pop()
        start = time.perf_counter()
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(
            next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
        )
        await reader.readexactly(length)
        latencies.append(time.perf_counter() - start)
        status = int(head.split(b" ", 2)[1])
        statuses[status] = statuses.get(status, 0) + 1
    writer.close()


async def load(port: int, requests: list[bytes], connections: int) -> dict[str, float]:
    queue = list(reversed(requests))
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    start = time.perf_counter()
    await asyncio.gather(*(one_connection(port, queue, latencies, statuses) for _ in range(connections)))
    elapsed = time.perf_counter() - start
    latencies.sort()
    return {
        "rps": len(latencies) / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
        "ok": statuses.get(200, 0),
        "errors": len(latencies) - statuses.get(200, 0),
    }


def wait_until_listening(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"server on {port} did not start")


def run(
    label: str, command: list[str], env: dict[str, str], port: int, requests: list[bytes], connections: int
) -> dict[str, float]:
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until_listening(port)
        asyncio.run(load(port, requests[:500], connections))  # warm-up, not measured
        result = asyncio.run(load(port, requests[500:], connections))
    finally:
        server.terminate()
        server.wait(timeout=20)
    print(
        f"{label:<28} {result['rps']:>8.0f} deliveries/s   p50 {result['p50_ms']:6.2f} ms   "
        f"p99 {result['p99_ms']:6.2f} ms   200s {result['ok']:.0f}   errors {result['errors']:.0f}"
    )
    return result


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--bare-server", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_server:
        bare_server(args.bare_server)
        return 0
    requests = build_requests(args.requests + 500)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SHOPIFY_", "SLACK_"))}
    with tempfile.TemporaryDirectory() as tmp:
        bare_port, real_port = free_port(), free_port()
        bare = run(
            "bare HMAC + 200",
            [sys.executable, __file__, "--bare-server", str(bare_port)],
            env,
            bare_port,
            requests,
            args.connections,
        )
        db = Path(tmp) / "bench.db"
        real_env = {**env, "DATABASE_PATH": str(db), "SHOPIFY_CLIENT_SECRET": SECRET, "PORT": str(real_port)}
        real = run(
            "orderbot (durable, deduped)",
            [sys.executable, "-m", "bot", "serve"],
            real_env,
            real_port,
            requests,
            args.connections,
        )
        with sqlite3.connect(db) as conn:
            stored = conn.execute("SELECT count(*) FROM inbox").fetchone()[0]
    unique = len({r.split(b"X-Shopify-Webhook-Id: ")[1].split(b"\r\n")[0] for r in requests})
    ratio = real["rps"] / bare["rps"]
    print(f"stored {stored} deliveries for {unique} unique webhook ids (duplicates dropped: {len(requests) - stored})")
    print(f"ratio orderbot / bare: {ratio:.2f} (target >= {TARGET_RATIO})")
    if stored != unique:
        print("FAIL: stored deliveries differ from unique deliveries")
        return 1
    return 0 if ratio >= TARGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
