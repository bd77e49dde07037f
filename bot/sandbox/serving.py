"""Start an aiohttp application on a free local port: for the sandboxes, the tests, the demo and the real server."""

from aiohttp import web

# Shopify may open hundreds of connections at once in a burst; with aiohttp's default listen backlog (128) the
# kernel drops the rest and their clients retry a second later (measured: 70 of 200 answers took over 1 s).
LISTEN_BACKLOG = 1024
# After refusing a body it did not read (a 413), aiohttp reads and discards the rest for this long so that the client
# sees the answer; its default, 10 s, also held every shutdown after such a request that long.
LINGER_SECONDS = 1.0


async def serve(app: web.Application, host: str = "127.0.0.1", port: int = 0) -> tuple[web.AppRunner, str]:
    """Start `app` and return its runner (call `await runner.cleanup()` to stop) and base URL, without a trailing
    slash. Port 0 lets the OS choose a free port, which is then read back from the listening socket."""
    runner = web.AppRunner(app, lingering_time=LINGER_SECONDS)
    await runner.setup()
    await web.TCPSite(runner, host, port, backlog=LISTEN_BACKLOG).start()
    bound_host, bound_port = runner.addresses[0][:2]
    shown_host = f"[{bound_host}]" if ":" in bound_host else bound_host
    return runner, f"http://{shown_host}:{bound_port}"
