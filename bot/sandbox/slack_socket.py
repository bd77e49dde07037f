"""Slack's Socket Mode, played by the sandbox: the WebSocket behind `apps.connections.open`'s URL, `hello`,
envelopes sent to the app and its acks, pings, and `disconnect`. Mixed into SandboxSlack, which owns the state."""

from __future__ import annotations

import asyncio
import copy
import json
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

from aiohttp import WSMsgType, web

# The envelope types Slack sends, and the reasons it gives when it asks a client to reconnect.
ENVELOPE_TYPES = ("interactive", "slash_commands", "events_api")
DISCONNECT_REASONS = ("refresh_requested", "warning", "link_disabled")
SOCKET_HOST = "applink-sandbox"


@dataclass(frozen=True, slots=True)
class SocketEnvelope:
    """One Socket Mode envelope sent to the app: the whole `message` as sent, and the connection it went to."""

    envelope_id: str
    type: str
    payload: dict[str, Any]
    connection: int
    message: dict[str, Any]
    at: float


@dataclass(frozen=True, slots=True)
class SocketMessage:
    """One text message the app sent over a Socket Mode connection: usually an ack `{"envelope_id", "payload"?}`.
    `message` is None when the text was not a JSON object (`text` keeps it)."""

    connection: int
    message: dict[str, Any] | None
    text: str
    at: float

    @property
    def envelope_id(self) -> str | None:
        return (self.message or {}).get("envelope_id")


@dataclass(slots=True)
class _Socket:
    id: int
    ticket: str
    ws: web.WebSocketResponse
    opened_at: float


class SocketMode:
    """The Socket Mode half of SandboxSlack (which sets up the attributes used here in its __init__)."""

    app_id: str

    @property
    def connected_sockets(self) -> int:
        """How many Socket Mode connections are open now."""
        return sum(1 for socket in self._sockets.values() if not socket.ws.closed)

    async def wait_for_socket(self, within: float = 5.0, *, opened: int = 1) -> None:
        """Wait until a Socket Mode connection is open and at least `opened` have been opened in all (to wait for a
        reconnection, pass one more than `sockets_opened` was)."""
        deadline = asyncio.get_running_loop().time() + within
        while not (self.connected_sockets and self.sockets_opened >= opened):
            if asyncio.get_running_loop().time() > deadline:
                opened_so_far = self.sockets_opened
                raise TimeoutError(f"no Socket Mode connection within {within} s ({opened_so_far} opened so far)")
            await asyncio.sleep(0.01)

    async def send_envelope(
        self,
        type: str,
        payload: dict[str, Any],
        accepts_response_payload: bool = False,
        *,
        within: float = 3.0,
        retry_attempt: int = 0,
        retry_reason: str = "",
    ) -> dict[str, Any]:
        """Deliver an envelope to the newest open connection, as Slack does, and return the app's ack once it comes
        (`{"envelope_id": ..., "payload"?: ...}`); TimeoutError after `within` seconds (Slack's limit is 3 s).

        `events_api` envelopes carry `retry_attempt` and `retry_reason`; `interactive` and `slash_commands` do not."""
        if type not in ENVELOPE_TYPES:
            raise ValueError(f"unknown envelope type {type!r}: one of {', '.join(ENVELOPE_TYPES)}")
        socket = self._newest_socket()
        envelope_id = str(uuid.uuid4())
        message: dict[str, Any] = {
            "envelope_id": envelope_id,
            "payload": copy.deepcopy(payload),
            "type": type,
            "accepts_response_payload": accepts_response_payload,
        }
        if type == "events_api":
            message.update(retry_attempt=retry_attempt, retry_reason=retry_reason)
        ack: asyncio.Future[dict] = asyncio.get_running_loop().create_future()
        self._pending_acks[envelope_id] = ack
        self.envelopes.append(
            SocketEnvelope(envelope_id, type, copy.deepcopy(payload), socket.id, copy.deepcopy(message), self._clock())
        )
        try:
            await socket.ws.send_json(message)
            async with asyncio.timeout(within):  # not wait_for: on 3.11 it can swallow a cancel
                return await ack
        except TimeoutError:
            raise TimeoutError(f"no ack for {type} envelope {envelope_id} within {within} s") from None
        finally:
            self._pending_acks.pop(envelope_id, None)

    async def ping_socket(self, within: float = 3.0) -> None:
        """Ping the newest connection, as Slack's servers do, and wait for the client's pong."""
        socket = self._newest_socket()
        data = f"sandbox-ping:{secrets.token_hex(4)}".encode()
        pong: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pongs[data] = pong
        try:
            await socket.ws.ping(data)
            async with asyncio.timeout(within):
                await pong
        except TimeoutError:
            raise TimeoutError(f"no pong within {within} s") from None
        finally:
            self._pongs.pop(data, None)

    async def disconnect_sockets(self, reason: str = "refresh_requested") -> None:
        """Send Slack's `disconnect` message on every open connection: the client is to fetch a new URL and reconnect.
        The connections stay open until the client closes them (Slack closes them some seconds later)."""
        if reason not in DISCONNECT_REASONS:
            raise ValueError(f"unknown disconnect reason {reason!r}: one of {', '.join(DISCONNECT_REASONS)}")
        message = {"type": "disconnect", "reason": reason, "debug_info": {"host": SOCKET_HOST}}
        for socket in list(self._sockets.values()):
            if not socket.ws.closed:
                await socket.ws.send_json(message)

    async def close_sockets(self, code: int = 1001) -> None:
        """Close every Socket Mode connection from Slack's side (the client then reconnects unless it is closing)."""
        sockets = list(self._sockets.values())
        await asyncio.gather(*(s.ws.close(code=code) for s in sockets if not s.ws.closed), return_exceptions=True)

    def _newest_socket(self) -> _Socket:
        open_sockets = [socket for socket in self._sockets.values() if not socket.ws.closed]
        if not open_sockets:
            raise RuntimeError("no Socket Mode connection is open: wait_for_socket() first")
        return open_sockets[-1]

    async def _socket(self, request: web.Request) -> web.StreamResponse:
        """A Socket Mode connection: hello, then envelopes out and acks in. Pings are answered here (autoping off) so
        that pongs to `ping_socket` can be seen."""
        ticket = request.match_info["ticket"]
        if self._stopping or ticket not in self._tickets:
            return web.Response(status=404, text="invalid_ticket")
        ws = web.WebSocketResponse(autoping=False)
        await ws.prepare(request)
        self.sockets_opened += 1
        socket = _Socket(self.sockets_opened, ticket, ws, self._clock())
        self._sockets[socket.id] = socket
        try:
            await ws.send_json(
                {
                    "type": "hello",
                    "num_connections": self.connected_sockets,
                    "debug_info": {"host": SOCKET_HOST, "build_number": 1, "approximate_connection_time": 18060},
                    "connection_info": {"app_id": self.app_id},
                }
            )
            async for message in ws:
                if message.type == WSMsgType.PING:
                    await ws.pong(message.data)
                elif message.type == WSMsgType.PONG:
                    pong = self._pongs.get(bytes(message.data))
                    if pong is not None and not pong.done():
                        pong.set_result(None)
                elif message.type == WSMsgType.TEXT:
                    self._on_socket_text(socket, message.data)
        finally:
            del self._sockets[socket.id]
        return ws

    def _on_socket_text(self, socket: _Socket, text: str) -> None:
        try:
            message = json.loads(text)
        except ValueError:
            message = None
        message = message if isinstance(message, dict) else None
        received = SocketMessage(socket.id, copy.deepcopy(message), text, self._clock())
        self.socket_messages.append(received)
        ack = self._pending_acks.get(received.envelope_id or "")
        if ack is not None and not ack.done():
            ack.set_result(copy.deepcopy(message))
