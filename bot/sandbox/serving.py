"""Start an aiohttp application on a free local port: for the sandboxes, the tests, the demo and the real server."""

from aiohttp import web

from bot.web import LINGER_SECONDS, LISTEN_BACKLOG


async def serve(app: web.Application, host: str = "127.0.0.1", port: int = 0) -> tuple[web.AppRunner, str]:
    """Start `app` and return its runner (call `await runner.cleanup()` to stop) and base URL, without a trailing
    slash. Port 0 lets the OS choose a free port, which is then read back from the listening socket."""
    runner = web.AppRunner(app, lingering_time=LINGER_SECONDS)
    await runner.setup()
    await web.TCPSite(runner, host, port, backlog=LISTEN_BACKLOG).start()
    bound_host, bound_port = runner.addresses[0][:2]
    shown_host = f"[{bound_host}]" if ":" in bound_host else bound_host
    return runner, f"http://{shown_host}:{bound_port}"
