"""`supportbot shell`: chat with the bot in a terminal through the real runtime.

Messages go through the same stream, worker, flows and outbox as Telegram's (channel `shell`),
so what a trainer sees here is what a customer gets. Each reply shows the intent, confidence
and the flow steps taken.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable

from rich.console import Console

from bots.runtime import Runtime
from handoff.events import InboundEvent, InboundKind, OutboundMessage, OutButton, Profile
from handoff.outbox import OutboxReader

HELP = (
    "Type a message. A number presses a button of the last reply. "
    "/start greets, /state shows the conversation, /reset starts over, /quit leaves."
)


class ShellSession:
    """One terminal customer; `say()` returns the bot's replies to one message."""

    def __init__(self, runtime: Runtime, user: str = "local", first_name: str = "Тренер") -> None:
        self.runtime = runtime
        self.conversation = f"shell:{user}"
        self.profile = Profile(user_id=user, first_name=first_name)
        self._reader = OutboxReader(runtime.redis, runtime.keys, "shell", f"shell-{user}")
        self.buttons: list[OutButton] = []

    async def start(self) -> None:
        await self._reader.start()

    async def say(self, text: str) -> list[OutboundMessage]:
        kind: InboundKind = "command" if text.startswith("/") else "text"
        return await self._send(InboundEvent(
            event_id=f"shell:{uuid.uuid4().hex}", conversation=self.conversation, kind=kind,
            profile=self.profile, text=text, received_at=time.time(),
        ))

    async def press(self, index: int) -> list[OutboundMessage]:
        button = self.buttons[index]
        data = await (await self.runtime.signer()).encode(button.payload)
        return await self._send(InboundEvent(
            event_id=f"shell:{uuid.uuid4().hex}", conversation=self.conversation, kind="button",
            profile=self.profile, payload=data, callback_id="shell", received_at=time.time(),
        ))

    async def reset(self) -> None:
        keys = self.runtime.keys
        await self.runtime.redis.delete(
            keys.conversation(self.conversation), keys.transcript(self.conversation)
        )
        await self.runtime.redis.zrem(keys.queue(), self.conversation)
        self.buttons = []

    async def _send(self, event: InboundEvent, timeout: float = 10.0) -> list[OutboundMessage]:
        (entry,) = await self.runtime.ingestor.ingest([event])
        conv_key = self.runtime.keys.conversation(self.conversation)
        deadline = time.monotonic() + timeout
        while await self.runtime.redis.hget(conv_key, "last_event") != entry:
            if time.monotonic() > deadline:
                raise TimeoutError("the worker did not answer in time")
            await asyncio.sleep(0.002)
        replies = []
        for item in await self._reader.read(block_ms=1):
            await self._reader.ack(item)
            if item.message.kind == "text":
                replies.append(item.message)
        if replies and replies[-1].buttons:
            self.buttons = [button for row in replies[-1].buttons for button in row]
        elif replies:
            self.buttons = []
        return replies


async def run_shell(runtime: Runtime, console: Console,
                    read_line: Callable[[str], Awaitable[str]] | None = None) -> None:
    stop = asyncio.Event()
    worker_task = asyncio.create_task((await runtime.worker()).run(stop))
    session = ShellSession(runtime)
    await session.start()
    ask = read_line or (lambda prompt: asyncio.to_thread(console.input, prompt))
    console.print(f"[dim]{HELP}[/dim]")
    try:
        await _show(console, await session.say("/start"))
        while True:
            try:
                line = (await ask("[bold cyan]вы>[/bold cyan] ")).strip()
            except (EOFError, KeyboardInterrupt):
                break
            if not line:
                continue
            if line in ("/quit", "/exit"):
                break
            await _handle_line(session, console, line)
    finally:
        stop.set()
        worker_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await worker_task


async def _handle_line(session: ShellSession, console: Console, line: str) -> None:
    if line == "/reset":
        await session.reset()
        console.print("[dim]conversation reset[/dim]")
        return
    if line == "/state":
        conv = await session.runtime.store.load(session.conversation)
        console.print(
            f"[dim]state={conv.state} version={conv.version} dialogue={conv.dialogue}[/dim]"
        )
        return
    if line.isdigit() and 1 <= int(line) <= len(session.buttons):
        replies = await session.press(int(line) - 1)
    else:
        replies = await session.say(line)
    await _show(console, replies)
    conv = await session.runtime.store.load(session.conversation)
    if conv.state != "bot":
        console.print(f"[yellow]conversation is {conv.state}: a human answers from here; "
                      "the bot stays silent (/reset to start over)[/yellow]")


async def _show(console: Console, replies: list[OutboundMessage]) -> None:
    shown_trace = False
    for reply in replies:
        trace = reply.bot
        if trace is not None and trace.intent is not None and not shown_trace:
            shown_trace = True
            console.print(
                f"[dim]  intent={trace.intent} confidence={trace.confidence:.2f}[/dim]"
            )
            for step in trace.steps:
                console.print(f"[dim]  · {step}[/dim]")
        console.print(f"[bold green]бот>[/bold green] {reply.text}", highlight=False)
        flat = [button for row in reply.buttons for button in row]
        for number, button in enumerate(flat, 1):
            target = button.url or button.payload
            console.print(f"      [cyan]{number}[/cyan]. {button.title} [dim]({target})[/dim]")
