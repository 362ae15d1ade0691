"""The fake Bot API and the load generator in a child process, so that benchmarks measure the
bot's own work: the fake's HTTP parsing and bookkeeping run on the other core.

Times are `time.perf_counter()` (CLOCK_MONOTONIC on Linux), comparable across the processes.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import statistics
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

TEXTS = [
    "где мой заказ", "сколько стоит доставка в казань", "хочу вернуть товар", "спасибо",
    "не проходит оплата", "какой у вас режим работы", "здравствуйте", "есть ли пункты выдачи",
    "как отменить заказ", "промокод не работает", "как связаться с вами", "до скольки вы работаете",
]


@dataclass(frozen=True)
class Run:
    rate: float
    sent: int
    answered: int
    p50_ms: float
    p99_ms: float
    max_ms: float

    def line(self) -> str:
        return (f"  {self.rate:7.0f} msg/s  sent {self.sent:5d}  answered {self.answered:5d}  "
                f"p50 {self.p50_ms:6.2f} ms  p99 {self.p99_ms:6.2f} ms  max {self.max_ms:7.2f} ms")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summarize(rate: float, sent: int, latencies_ms: list[float]) -> Run:
    if not latencies_ms:
        nan = float("nan")
        return Run(rate, sent, 0, nan, nan, nan)
    return Run(rate, sent, len(latencies_ms), statistics.median(latencies_ms),
               percentile(latencies_ms, 0.99), max(latencies_ms))


async def _drive(fake: Any, rate: float, seconds: float, first_chat: int) -> Run:
    """Each message from its own chat; latency = first sendMessage to that chat - push time."""
    fake.reset_calls()
    total = int(rate * seconds)
    pushed: dict[int, float] = {}
    start = time.perf_counter()
    for number in range(total):
        delay = start + number / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        chat = first_chat + number
        fake.push_update(fake.text_update(chat, TEXTS[number % len(TEXTS)]))
        pushed[chat] = time.perf_counter()
    deadline = time.perf_counter() + 15
    while time.perf_counter() < deadline:
        if len({c.params.get("chat_id") for c in fake.calls_of("sendMessage")}) >= total:
            break
        await asyncio.sleep(0.05)
    first_reply: dict[int, float] = {}
    for call in fake.calls_of("sendMessage"):
        chat = int(call.params["chat_id"])
        if chat in pushed and chat not in first_reply:
            first_reply[chat] = call.at
    return summarize(rate, total, [(first_reply[c] - pushed[c]) * 1000 for c in first_reply])


async def _handoffs(fake: Any, rate: float, count: int, first_chat: int, desk: int
                    ) -> tuple[Run, Run, Run]:
    """Each customer asks for a person once. Three figures: the whole way (the update pushed ->
    its card, a desk message naming the customer, arriving); the bot's own part of it: from the
    getUpdates answer carrying the update leaving the fake, to the card arriving, less the
    fake's time serving the topic's createForumTopic on the way; and the customer's side: the
    update pushed -> the message telling them their place in the queue arriving."""
    fake.reset_calls()
    fake.served.clear()
    pushed: dict[str, float] = {}
    start = time.perf_counter()
    for number in range(count):
        delay = start + number / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        name = f"C{first_chat + number}"
        fake.push_update(fake.text_update(first_chat + number, "позовите оператора",
                                          first_name=name))
        pushed[name] = time.perf_counter()
    cards: dict[str, float] = {}
    deadline = time.perf_counter() + 30
    while time.perf_counter() < deadline and len(cards) < count:
        await asyncio.sleep(0.05)
        for call in fake.calls_of("sendMessage"):
            if call.params.get("chat_id") != desk or "Взять" not in str(call.params):
                continue
            name = str(call.params.get("text", "")).split("👤 ", 1)[-1].split(" ", 1)[0]
            if name in pushed and name not in cards:
                cards[name] = call.at
    whole = summarize(rate, count, [(cards[n] - pushed[n]) * 1000 for n in cards])
    told: dict[int, float] = {}
    for call in fake.calls_of("sendMessage"):
        chat = call.params.get("chat_id")
        if isinstance(chat, int) and chat > 0 and chat not in told and (
                "в очереди" in str(call.params.get("text", ""))):
            told[chat] = call.at
    place = summarize(rate, count, [(at - pushed[f"C{chat}"]) * 1000
                                    for chat, at in told.items() if f"C{chat}" in pushed])
    polls = sorted(done for method, _start, done, _name in fake.served if method == "getupdates")
    topics = {name: done - start for method, start, done, name in fake.served
              if method == "createforumtopic"}
    own = []
    for name, arrived in cards.items():
        left = next((done for done in polls if done >= pushed[name]), None)
        if left is not None:
            own.append((arrived - left - topics.get(name, 0.0)) * 1000)
    return whole, summarize(rate, count, own), place


def _child(conn: Connection, token: str) -> None:
    from aiohttp import web

    from fakes.telegram import FakeTelegram

    class TimedFake(FakeTelegram):
        """Remembers how long it took to serve each call (its own time, not the bot's)."""

        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.served: list[tuple[str, float, float, str]] = []

        async def _handle(self, request: web.Request) -> web.Response:
            start = time.perf_counter()
            response = await super()._handle(request)
            method = request.match_info["method"].lower()
            name = ""
            if method == "createforumtopic" and self.calls:
                name = str(self.calls[-1].params.get("name", "")).split(" ")[1]
            self.served.append((method, start, time.perf_counter(), name))
            return response

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        async with TimedFake(token=token) as fake:
            conn.send(fake.url)
            while True:
                command = await loop.run_in_executor(None, conn.recv)
                if command[0] == "stop":
                    return
                if command[0] == "group":
                    fake.add_group(command[1], "Поддержка", is_forum=True)
                    conn.send(None)
                elif command[0] == "handoffs":
                    conn.send(await _handoffs(fake, *command[1:]))
                else:
                    _, rate, seconds, first_chat = command
                    conn.send(await _drive(fake, rate, seconds, first_chat))

    asyncio.run(serve())


class FakeTelegramProcess:
    def __init__(self, token: str) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child_conn = context.Pipe()
        self._process = context.Process(target=_child, args=(child_conn, token), daemon=True)
        self._process.start()
        self.url: str = self._conn.recv()
        self._next_chat = 10_000_000

    async def drive(self, rate: float, seconds: float) -> Run:
        first, self._next_chat = self._next_chat, self._next_chat + int(rate * seconds) + 1
        self._conn.send(("drive", rate, seconds, first))
        loop = asyncio.get_running_loop()
        run: Run = await loop.run_in_executor(None, self._conn.recv)
        return run

    def add_group(self, chat_id: int) -> None:
        self._conn.send(("group", chat_id))
        self._conn.recv()

    async def handoffs(self, rate: float, count: int, desk: int) -> tuple[Run, Run, Run]:
        first, self._next_chat = self._next_chat, self._next_chat + count + 1
        self._conn.send(("handoffs", rate, count, first, desk))
        loop = asyncio.get_running_loop()
        runs: tuple[Run, Run, Run] = await loop.run_in_executor(None, self._conn.recv)
        return runs

    def close(self) -> None:
        self._conn.send(("stop",))
        self._process.join(10)
        if self._process.is_alive():
            self._process.kill()
