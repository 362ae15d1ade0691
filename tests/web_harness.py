"""The bot with the web channel only (no Telegram, no VK), as `supportbot run` starts it with
no tokens, and a widget client that speaks docs/web.md's protocol over a real WebSocket."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from bots.runtime import Runtime, Tuning
from bots.settings import Settings
from bots.turns import Brain
from tests.telegram_harness import wait_until


@dataclass
class WebUnderTest:
    runtime: Runtime
    url: str  # http://127.0.0.1:<port>
    stop: asyncio.Event
    task: asyncio.Task[None]


@contextlib.asynccontextmanager
async def running_web(settings: Settings, brain: Brain, *, tuning: Tuning | None = None,
                      **overrides: Any) -> AsyncIterator[WebUnderTest]:
    values = settings.model_dump()
    values.update(telegram_bot_token=None, vk_token=None, operator_chat_id=None, **overrides)
    configured = Settings(_env_file=None, **values)  # type: ignore[call-arg]
    runtime = await Runtime.open(configured, brain=brain, tuning=tuning or Tuning())
    stop = asyncio.Event()
    task = asyncio.create_task(runtime.run(stop, {"ingress", "worker", "sender"}))
    url = f"http://127.0.0.1:{configured.http_port}"
    try:
        async with aiohttp.ClientSession() as http:
            await wait_until(lambda: answers(http, url + "/healthz"), bool, 10, "HTTP")
        yield WebUnderTest(runtime, url, stop, task)
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 20)
        await runtime.close()


async def answers(http: aiohttp.ClientSession, url: str) -> bool:
    """Whether the bot's HTTP server is up yet (it starts beside the other roles)."""
    try:
        async with http.get(url) as response:
            return response.status < 500
    except aiohttp.ClientConnectorError:
        return False


@dataclass
class Widget:
    """One visitor's widget: a session, a socket, the messages it has shown."""

    base: str
    http: aiohttp.ClientSession
    token: str = ""
    visitor: str = ""
    seq: str = "0"
    shown: list[dict[str, Any]] = field(default_factory=list)
    acks: list[str] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    ws: aiohttp.ClientWebSocketResponse | None = None
    _reader: asyncio.Task[None] | None = None

    async def session(self, identity: dict[str, str] | None = None) -> dict[str, Any]:
        body = {"identity": identity} if identity else {}
        async with self.http.post(f"{self.base}/widget/session", json=body) as response:
            data: dict[str, Any] = await response.json()
            response.raise_for_status()
        self.token, self.visitor = data["token"], data["visitor"]
        return data

    async def connect(self) -> None:
        self.ws = await self.http.ws_connect(f"{self.base}/widget/ws?token={self.token}")
        await self.ws.send_json({"type": "hello", "after": self.seq})
        self._reader = asyncio.create_task(self._read(self.ws))

    async def drop(self) -> None:
        """The connection is lost (the widget keeps what it showed)."""
        if self._reader is not None:
            self._reader.cancel()
        if self.ws is not None:
            await self.ws.close()

    async def send(self, text: str, message_id: str | None = None) -> str:
        message_id = message_id or uuid.uuid4().hex
        assert self.ws is not None
        await self.ws.send_json({"type": "message", "id": message_id, "text": text})
        return message_id

    async def press(self, title: str) -> None:
        data = next(b["data"] for m in reversed(self.shown) for row in m["buttons"]
                    for b in row if b["text"] == title)
        assert self.ws is not None
        await self.ws.send_json({"type": "button", "id": uuid.uuid4().hex, "data": data})

    async def replies(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """The first `count` messages from the bot or operators, once shown."""
        return list(await wait_until(
            lambda: [m for m in self.shown if m["from"] != "visitor"],
            lambda got: len(got) >= count, timeout, f"{count} replies"))

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for message in ws:
            data = json.loads(message.data)
            if data["type"] == "ack":
                self.acks.append(data["id"])
            elif data["type"] == "error":
                self.errors.append(data)
            elif data["type"] == "message" and _after(data["seq"], self.seq):
                self.seq = data["seq"]
                self.shown.append(data)


def _after(seq: str, last: str) -> bool:
    if last == "0":
        return True
    return tuple(map(int, seq.split("-"))) > tuple(map(int, last.split("-")))
