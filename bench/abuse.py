"""Abuse benchmark: what an attacker flooding each entry point of supportbot costs the customers
who write at the same time.

    python -m bench.abuse [--entry webhook|callback|api|polling|longpoll|all] [--seconds 15]

The product runs in its production configuration, as in bench/chaos.py: one real `supportbot
run` process (all roles) per entry point, configured only through the environment; its own Redis
(started here on a free port, appendonly everysec); the NLU model trained once into the shared
CACHE_DIR before any bot starts; LOG_LEVEL=WARNING. Telegram is the fake Bot API of
fakes/telegram.py and VK the fake VK API of fakes/vk.py, both served in this process; the fake
Bot API enforces Telegram's sending limits (30 msg/s overall, about 1 msg/s per chat: an
over-limit send gets 429, as Telegram would answer, and is counted), the fake VK does not (the
bot paces itself to 20 requests/s; the peak it reached is printed).

Ordinary customers: each writes one message (the texts of bench.fakeproc.TEXTS in turn) from a
chat of their own, `--rate` (5) a second, delivered the way the platform delivers in that mode:
pushed for getUpdates / Bots Long Poll, or POSTed to the bot's webhook / Callback API endpoint
with the right secret. A POST the bot refuses (503, 429, a timeout) is delivered again 1 s
later, until the end of the wait, as Telegram and VK deliver again after a non-2xx answer (they
back off more); those refusals are the "deliveries refused" column. Latency: from the first
delivery attempt to the fake receiving the first successful sendMessage / messages.send to that
chat. A customer with no answer when the wait ends (30 s after the attack) is unanswered.

Each entry point gets a warm-up (each text once), then a row "no attack" (`--baseline` seconds
of customers) and one row per attack (`--seconds` of customers while the attack runs):

1. webhook (TELEGRAM_MODE=webhook). "no secret": POSTs with a wrong secret or none, 2 MB bodies
   and nested JSON with a wrong secret, slow bodies with a wrong secret (the secret header is
   checked before the body is read). With the right secret (leaked), so that they reach the body
   reader and the parser: "junk bodies" (garbage JSON, `[` x 100,000, 2 MB, UTF-16), then
   "slow bodies" (Content-Length promised, a few bytes sent, a byte every 2 s).
2. callback (VK Callback API; the secret is inside the body, so nothing is authenticated before
   the body has arrived): "junk, wrong secrets" (a message_new with a wrong secret, a wrong
   group_id, confirmation requests with a wrong secret, garbage, nested, 2 MB, not an object,
   UTF-16), then "slow bodies".
3. api (customers over Telegram long polling; API_TOKEN set): GET /api/v1/queue, /conversations,
   /operators, /stats as fast as possible with the right token; then wrong tokens, none, 2 MB
   bodies, with one request in four carrying the right token from the same address. Every
   attacker request comes from 127.0.0.2 (customers' deliveries from 127.0.0.1, as Telegram's
   and VK's come from their own addresses), so per-client limits apply to all of the attacker
   at once.
4. polling (Telegram long polling): a chat sends `--flood-rate` (50) hostile texts a second (a
   4,096-letter word, random code points, 1,000-word rambles, control and bidi characters);
   then another chat sends the shop's ordinary questions at that rate (hostile texts are not
   understood, and two misses hand a chat to a person, after which it is not answered by the
   bot; questions keep the chat with the bot). The answers the flooding chat got are counted.
5. longpoll (VK Bots Long Poll): the same floods through VK.

The HTTP attacker is a process of its own, forked before anything else starts, with
`--connections` (8) connections firing one request after another round-robin over its shapes
(the "fast" rows), or `--slow` (80, more than the HTTP guard's 64 requests in flight)
connections each holding a slow body, opening another as soon as one is answered (the "slow"
rows); on a 2-core machine it shares the cores with the bot, as the customers' answers do.
Columns: requests the attacker sent; refused, by HTTP status (the guard's 503 among them); 5xx
of any kind; other outcomes (2xx, connection errors, requests not answered when the attack
ended); customers answered/sent and their p50/p95/max latency; the customers' deliveries the bot
refused; inbound events the bot stored during the row (customers' and attacker's, read in
Redis); the bot's CPU while attacked (100 % = one core); lines the bot logged on stderr (ERROR
lines and tracebacks). The per-shape outcomes and the bot's most frequent log lines follow each
table.
Exit status 1 when the bot exited, a customer went unanswered, or the bench itself failed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import math
import multiprocessing
import os
import random
import signal
import statistics
import sys
import tempfile
import traceback
from abc import ABC, abstractmethod
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Protocol

import aiohttp

from bench.chaos import (
    CODE_ROOT,
    PREFIX,
    Bench,
    Child,
    Children,
    Observer,
    clean_environ,
    cpu_seconds,
    now,
    plain_observer,
    pretrain,
    print_rows,
    wait_ready,
)
from bench.fakeproc import TEXTS, percentile
from bench.machine import speed_line
from bots.http_guard import GuardConfig
from bots.telegram.webhook import SECRET_HEADER, WEBHOOK_PATH
from bots.vk.callback import CALLBACK_PATH
from fakes.redis_topology import RedisProcessError
from fakes.telegram import FakeTelegram, WaitTimeout
from fakes.vk import FakeVk
from handoff.embedded_redis import free_port

HOST = "127.0.0.1"
ATTACKER = "127.0.0.2"  # another client of this machine: the bot tells it from Telegram and VK
TOKEN = "123456:ABUSE-token"
WEBHOOK_SECRET = "abuse-webhook-secret-0123456789"
VK_SECRET = "abuse-vk-secret-0123456789"
VK_CONFIRMATION = "abuse-confirmation"
API_TOKEN = "abuse-api-token-0123456789abcdef"
WRONG = "wrong-secret-0123456789abcdef"
WARM_PEER = 1  # warm-up chats: 1..len(TEXTS)
FIRST_PEER = 10_000_000  # each phase's customers: FIRST_PEER + phase * PHASE_PEERS + n
PHASE_PEERS = 100_000
FLOOD_PEER = 9_000_000  # the flooding chats of the polling and longpoll attacks
STRAGGLERS = 30.0  # seconds after the attack (or the baseline) for the last answers
RETRY = 1.0  # seconds before a refused delivery is delivered again
POST_TIMEOUT = 15.0  # seconds a delivery or an attacker's request may take
TRICKLE = 2.0  # seconds between two bytes of a slow body
PROMISED = 1_000_000  # the Content-Length a slow body promises (under the 1 MiB body limit)
TEXT_MAX = 4096  # characters of a Telegram message (and of the hostile texts)
BIG = 2 * 1024 * 1024
BOT_ARGS = [sys.executable, "-c", "from bots.cli.main import main; main()", "run"]
IN_FLIGHT = GuardConfig().max_in_flight


# --- the attacker's requests ---------------------------------------------------------------
@dataclass(frozen=True)
class Shot:
    """One shape of hostile request; a slow one sends its head and a trickle of body."""

    kind: str
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass(frozen=True)
class Plan:
    label: str
    fast: tuple[Shot, ...]
    slow: tuple[Shot, ...] = ()


def update_body() -> bytes:
    """A well-formed Telegram update (what a stranger who read the docs would send)."""
    return json.dumps({"update_id": 1, "message": {
        "message_id": 1, "date": 0, "text": "привет", "chat": {"id": 7, "type": "private"},
        "from": {"id": 7, "is_bot": False, "first_name": "A"}}}).encode()


def vk_body(**changes: Any) -> bytes:
    """A message_new Callback API body for group 77 (FakeVk's), with `changes` applied."""
    vk = FakeVk()
    return json.dumps({**vk.message_new(7, "привет"), "secret": WRONG, **changes}).encode()


JSON = {"Content-Type": "application/json"}
GARBAGE = b"{oops"
NESTED = b"[" * 100_000
HUGE = b'{"pad": "' + b"x" * BIG + b'"}'
UTF16 = '{"update_id": 1}'.encode("utf-16")


def webhook_stranger_plan() -> Plan:
    """What someone without the secret can send: it is checked before the body is read."""
    wrong = {**JSON, SECRET_HEADER: WRONG}
    return Plan("no secret", (
        Shot("wrong secret", "POST", WEBHOOK_PATH, wrong, update_body()),
        Shot("no secret", "POST", WEBHOOK_PATH, JSON, update_body()),
        Shot("2 MB, wrong secret", "POST", WEBHOOK_PATH, wrong, HUGE),
        Shot("nested, wrong secret", "POST", WEBHOOK_PATH, wrong, NESTED),
    ), (Shot("slow body, wrong secret", "POST", WEBHOOK_PATH, wrong),))


def webhook_junk_plan() -> Plan:
    """Bodies with the right secret (a leaked one): they reach the body reader and the parser."""
    right = {**JSON, SECRET_HEADER: WEBHOOK_SECRET}
    shapes = [("garbage JSON", GARBAGE), ("nested JSON", NESTED), ("2 MB", HUGE),
              ("UTF-16", UTF16)]
    return Plan("leaked secret: junk bodies",
                tuple(Shot(kind, "POST", WEBHOOK_PATH, right, body) for kind, body in shapes))


def webhook_slow_plan() -> Plan:
    right = {**JSON, SECRET_HEADER: WEBHOOK_SECRET}
    return Plan("leaked secret: slow bodies", (),
                (Shot("slow body", "POST", WEBHOOK_PATH, right),))


def callback_junk_plan() -> Plan:
    shapes = [("wrong secret", vk_body()), ("wrong group_id", vk_body(group_id=78)),
              ("confirmation, wrong secret", vk_body(type="confirmation")),
              ("garbage", GARBAGE), ("nested", NESTED), ("2 MB", HUGE),
              ("not an object", b"[1, 2, 3]"), ("UTF-16", vk_body().decode().encode("utf-16"))]
    return Plan("junk, wrong secrets",
                tuple(Shot(kind, "POST", CALLBACK_PATH, JSON, body) for kind, body in shapes))


def callback_slow_plan() -> Plan:
    """No secret needed: it is inside the body, which must arrive before it is checked."""
    return Plan("slow bodies", (), (Shot("slow body", "POST", CALLBACK_PATH, JSON),))


def api_token_plan() -> Plan:
    right = {"Authorization": f"Bearer {API_TOKEN}"}
    return Plan("right token, flat out", tuple(
        Shot(f"GET {path}", "GET", f"/api/v1/{path}", right)
        for path in ("queue", "conversations?state=queued", "operators", "stats")))


def api_wrong_plan() -> Plan:
    wrong = {"Authorization": f"Bearer {WRONG}"}
    right = {"Authorization": f"Bearer {API_TOKEN}"}
    return Plan("wrong tokens (+ the right one)", (
        Shot("wrong token", "GET", "/api/v1/queue", wrong),
        Shot("no token", "GET", "/api/v1/queue"),
        Shot("2 MB, wrong token", "POST", "/api/v1/operators/api:x/status",
             {**wrong, **JSON}, HUGE),
        Shot("right token, same address", "GET", "/api/v1/queue", right)))


PLANS: dict[str, Callable[[], Plan]] = {
    "webhook-stranger": webhook_stranger_plan,
    "webhook-junk": webhook_junk_plan,
    "webhook-slow": webhook_slow_plan,
    "callback-junk": callback_junk_plan,
    "callback-slow": callback_slow_plan,
    "api-token": api_token_plan,
    "api-wrong": api_wrong_plan,
}


# --- the attacker's process ----------------------------------------------------------------
@dataclass(frozen=True)
class Order:
    plan: str
    port: int
    seconds: float
    connections: int
    slow: int


Outcomes = dict[str, dict[str, int]]  # shape -> outcome (a status, an error's name) -> count


async def fire(session: aiohttp.ClientSession, base: str, shot: Shot) -> str:
    """One request; its status, or the name of the error it ended in."""
    try:
        async with session.request(shot.method, base + shot.path, headers=shot.headers,
                                   data=shot.body or None) as response:
            await response.read()
            return str(response.status)
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
        return type(exc).__name__


async def fast(session: aiohttp.ClientSession, base: str, shots: Sequence[Shot], first: int,
               deadline: float, outcomes: defaultdict[str, Counter[str]]) -> None:
    """One connection's requests, one after another, round-robin over the shapes."""
    number = first
    while now() < deadline:
        shot = shots[number % len(shots)]
        number += 1
        outcomes[shot.kind][await fire(session, base, shot)] += 1


def slow_head(port: int, shot: Shot) -> bytes:
    lines = [f"{shot.method} {shot.path} HTTP/1.1", f"Host: {HOST}:{port}",
             f"Content-Length: {PROMISED}", *(f"{k}: {v}" for k, v in shot.headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + b'{"update_id": 1'


async def await_status(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                       deadline: float) -> str:
    """A byte of body every TRICKLE s until the status line comes (or the attack ends)."""
    while (left := deadline - now()) > 0:
        try:
            line = await asyncio.wait_for(reader.readline(), min(TRICKLE, left))
        except asyncio.TimeoutError:
            writer.write(b" ")
            await writer.drain()
            continue
        parts = line.split()
        return parts[1].decode() if len(parts) > 1 and parts[1].isdigit() else "closed"
    return "no answer by the end"


async def hold(port: int, shot: Shot, deadline: float) -> str:
    """One slow body: the head, a few bytes, then a trickle; how it ended."""
    try:
        reader, writer = await asyncio.open_connection(HOST, port, local_addr=(ATTACKER, 0))
    except OSError as exc:
        await asyncio.sleep(0.2)
        return type(exc).__name__
    try:
        writer.write(slow_head(port, shot))
        await writer.drain()
        return await await_status(reader, writer, deadline)
    except OSError as exc:
        return type(exc).__name__
    finally:
        writer.close()


async def slow(port: int, shot: Shot, deadline: float,
               outcomes: defaultdict[str, Counter[str]]) -> None:
    while now() < deadline:
        outcomes[shot.kind][await hold(port, shot, deadline)] += 1


async def attack(order: Order, started: Callable[[], None]) -> Outcomes:
    """Every connection of the plan busy until `order.seconds` have passed."""
    plan = PLANS[order.plan]()
    outcomes: defaultdict[str, Counter[str]] = defaultdict(Counter)
    connector = aiohttp.TCPConnector(limit=order.connections, local_addr=(ATTACKER, 0))
    timeout = aiohttp.ClientTimeout(total=POST_TIMEOUT)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        started()
        deadline = now() + order.seconds
        base = f"http://{HOST}:{order.port}"
        holders = order.slow if plan.slow else 0
        await asyncio.gather(
            *(fast(session, base, plan.fast, n, deadline, outcomes)
              for n in range(order.connections if plan.fast else 0)),
            *(slow(order.port, plan.slow[n % len(plan.slow)], deadline, outcomes)
              for n in range(holders)))
    return {kind: dict(found) for kind, found in outcomes.items()}


def attacker_loop(conn: Connection) -> None:
    """The forked attacker: runs each order it is sent, says when it starts, sends the
    outcomes; None (or the bench gone) ends it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the bench stops it
    while True:
        try:
            order = conn.recv()
        except EOFError:
            return
        if order is None:
            return
        conn.send(asyncio.run(attack(order, lambda: conn.send("attacking"))))


class AttackerProcess:
    """The HTTP attacker in a process of its own, forked before the bench starts anything (no
    event loop, no sockets yet), so it starts at once without importing the bot again."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("fork")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=attacker_loop, args=(child,), daemon=True,
                                        name="abuse-attacker")
        self._process.start()
        child.close()

    async def receive(self, timeout: float) -> Any:
        deadline = now() + timeout
        while not self._conn.poll():
            if now() > deadline or not self._process.is_alive():
                raise RuntimeError("the attacker process did not answer")
            await asyncio.sleep(0.05)
        try:
            return self._conn.recv()
        except EOFError:
            raise RuntimeError("the attacker process exited") from None

    async def begin(self, order: Order) -> None:
        self._conn.send(order)
        if await self.receive(30.0) != "attacking":
            raise RuntimeError("the attacker process did not start attacking")

    def close(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self._conn.send(None)
        self._process.join(5)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(5)


# --- hostile texts -------------------------------------------------------------------------
FLOODERS = itertools.count()
LETTERS = "абвгдежзийклмнопрстуфхцчшщъыьэюяabcdefghijklmnopqrstuvwxyz"
CONTROLS = [chr(c) for c in range(32)] + ["\x7f", "\u200b", "\u200e", "\u200f", "\u202e",
                                          "\u2066", "\u2069", "\ufeff", "\u0301", "\ufffd"]
WORDS = [*" ".join(TEXTS).split(), "заказ", "доставка", "оператор", "почему", "опять"]


def code_point(rng: random.Random) -> str:
    """Any code point but a surrogate (Telegram and VK deliver valid UTF-8)."""
    while True:
        value = rng.randrange(0x20, 0x110000)
        if not 0xD800 <= value <= 0xDFFF:
            return chr(value)


def hostile_texts(rng: random.Random) -> Iterator[str]:
    """A 4,096-letter word, 2,000 random code points (under 4,096 UTF-16 units), a 1,000-word
    ramble cut at 4,096 characters, 1,000 characters thick with control and bidi marks."""
    while True:
        yield "".join(rng.choice(LETTERS) for _ in range(TEXT_MAX))
        yield "".join(code_point(rng) for _ in range(2000))
        yield " ".join(rng.choice(WORDS) for _ in range(1000))[:TEXT_MAX]
        yield "".join(rng.choice(CONTROLS if rng.random() < 0.5 else LETTERS)
                      for _ in range(1000))


# --- how customers reach the bot -----------------------------------------------------------
class Channel(ABC):
    """How a customer's message reaches the bot, and where the bot's answers show."""

    def __init__(self) -> None:
        self.refused: Counter[str] = Counter()  # deliveries the bot refused (made again)
        self.retry_until = math.inf

    @abstractmethod
    async def send(self, peer: int, text: str) -> None:
        """One message from `peer`, delivered as the platform would."""

    @abstractmethod
    def answers(self) -> dict[int, list[float]]:
        """When each successful send to each chat arrived at the fake."""

    @abstractmethod
    async def ready(self, timeout: float) -> str | None:
        """None once the bot takes messages this way; else why not."""

    @abstractmethod
    def platform_note(self) -> str: ...

    async def deliver(self, post: Callable[[], Awaitable[str]]) -> None:
        """POST until accepted ("ok"), again RETRY s after each refusal, until retry_until."""
        while (outcome := await post()) != "ok":
            self.refused[outcome] += 1
            if now() + RETRY > self.retry_until:
                return
            await asyncio.sleep(RETRY)


class TelegramPolling(Channel):
    def __init__(self, fake: FakeTelegram) -> None:
        super().__init__()
        self.fake = fake

    async def send(self, peer: int, text: str) -> None:
        self.fake.push_update(self.fake.text_update(peer, text))

    def answers(self) -> dict[int, list[float]]:
        found: dict[int, list[float]] = {}
        for call in self.fake.calls_of("sendMessage"):
            chat = call.params.get("chat_id")
            if call.ok and isinstance(chat, int):
                found.setdefault(chat, []).append(call.at)
        return found

    async def ready(self, timeout: float) -> str | None:
        try:
            await self.fake.wait_until(lambda: self.fake.is_long_polling, timeout=timeout)
        except WaitTimeout:
            return f"no getUpdates long poll within {timeout:.0f} s"
        return None

    def platform_note(self) -> str:
        return (f"the fake Bot API refused {len(self.fake.limit_violations)} sends with 429 "
                "(over Telegram's limits) in this entry's whole run")


class TelegramWebhook(TelegramPolling):
    async def send(self, peer: int, text: str) -> None:
        update = self.fake.text_update(peer, text)
        await self.deliver(lambda: self.post(update))

    async def post(self, update: dict[str, Any]) -> str:
        try:
            status = await asyncio.wait_for(self.fake.deliver_webhook(update), POST_TIMEOUT)
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            return type(exc).__name__
        return "ok" if 200 <= status < 300 else str(status)

    async def ready(self, timeout: float) -> str | None:
        try:
            await self.fake.wait_for("setWebhook", timeout=timeout)
        except WaitTimeout:
            return f"no setWebhook within {timeout:.0f} s"
        return None


class VkLongPoll(Channel):
    def __init__(self, vk: FakeVk) -> None:
        super().__init__()
        self.vk = vk

    def event(self, peer: int, text: str) -> dict[str, Any]:
        if peer not in self.vk.state.users:
            self.vk.add_user(peer, "Иван")
        return self.vk.message_new(peer, text)

    async def send(self, peer: int, text: str) -> None:
        self.vk.push(self.event(peer, text))

    def answers(self) -> dict[int, list[float]]:
        found: dict[int, list[float]] = {}
        for sent in self.vk.state.sent:
            found.setdefault(sent.peer_id, []).append(sent.at)
        return found

    async def ready(self, timeout: float) -> str | None:
        deadline = now() + timeout
        while self.vk.a_checks == 0:
            if now() > deadline:
                return f"no long poll request within {timeout:.0f} s"
            await asyncio.sleep(0.1)
        return None

    def platform_note(self) -> str:
        times = sorted(sent.at for sent in self.vk.state.sent)
        peak = max((sum(1 for t in times[i:i + 200] if t < start + 1.0)
                    for i, start in enumerate(times)), default=0)
        return (f"the fake VK took {len(times)} messages.send in this entry's whole run, at "
                f"most {peak} in one second (the bot paces itself to 20 requests/s)")


class VkCallback(VkLongPoll):
    def __init__(self, vk: FakeVk, session: aiohttp.ClientSession, url: str) -> None:
        super().__init__(vk)
        self.session = session
        self.url = url

    async def send(self, peer: int, text: str) -> None:
        body = self.vk.callback_body(self.event(peer, text), VK_SECRET)
        await self.deliver(lambda: self.post(body))

    async def post(self, body: dict[str, Any]) -> str:
        try:
            async with self.session.post(self.url, json=body,
                                         timeout=aiohttp.ClientTimeout(POST_TIMEOUT)) as answer:
                text = await answer.text()
                return "ok" if answer.status == 200 and text == "ok" else str(answer.status)
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            return type(exc).__name__

    async def ready(self, timeout: float) -> str | None:
        body = {"type": "confirmation", "group_id": self.vk.group_id, "secret": VK_SECRET}
        deadline = now() + timeout
        while await self.post(body) != "200":  # the confirmation code is not "ok"
            if now() > deadline:
                return f"the Callback API endpoint did not answer within {timeout:.0f} s"
            await asyncio.sleep(0.2)
        return None


# --- the attacks -----------------------------------------------------------------------------
@dataclass
class AttackOutcome:
    sent: int
    kinds: Outcomes
    extra: str = ""

    def totals(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for found in self.kinds.values():
            total.update(found)
        return total


class Attack(Protocol):
    label: str

    async def start(self) -> None: ...

    async def finish(self) -> None: ...

    def outcome(self) -> AttackOutcome: ...


class HttpAttack:
    """An order for the attacker process; `finish` waits for its outcomes."""

    def __init__(self, attacker: AttackerProcess, order: Order) -> None:
        self.attacker = attacker
        self.order = order
        self.label = PLANS[order.plan]().label
        self.kinds: Outcomes = {}

    async def start(self) -> None:
        await self.attacker.begin(self.order)

    async def finish(self) -> None:
        self.kinds = await self.attacker.receive(self.order.seconds + POST_TIMEOUT + 15)

    def outcome(self) -> AttackOutcome:
        return AttackOutcome(sum(sum(k.values()) for k in self.kinds.values()), self.kinds)


class FloodAttack:
    """One chat sending `texts` at `rate` a second through `channel`."""

    def __init__(self, channel: Channel, rate: float, seconds: float, what: str,
                 texts: Iterator[str]) -> None:
        self.channel = channel
        self.rate = rate
        self.seconds = seconds
        self.label = f"1 chat, {rate:g} {what}/s"
        self.texts = texts
        self.peer = FLOOD_PEER + next(FLOODERS)  # a fresh chat for each flood
        self.pushed = 0
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._flood())

    async def _flood(self) -> None:
        start = now()
        for number in range(round(self.rate * self.seconds)):
            await asyncio.sleep(max(0.0, start + number / self.rate - now()))
            await self.channel.send(self.peer, next(self.texts))
            self.pushed += 1

    async def finish(self) -> None:
        if self._task is not None:
            await self._task

    def outcome(self) -> AttackOutcome:
        answers = len(self.channel.answers().get(self.peer, ()))
        return AttackOutcome(self.pushed, {}, f"{answers} answers to it by the row's end")


# --- one phase: customers, with or without an attack ----------------------------------------
@dataclass
class LogMark:
    """Where the bot's stderr stood; what it logged since."""

    path: Path
    offset: int = 0

    @classmethod
    def of(cls, bot: Child) -> LogMark:
        return cls(bot.err_path, bot.err_path.stat().st_size if bot.err_path.exists() else 0)

    def lines(self) -> list[str]:
        with contextlib.suppress(OSError), self.path.open("rb") as log:
            log.seek(self.offset)
            return log.read().decode(errors="replace").splitlines()
        return []


def is_error(line: str) -> bool:
    return " ERROR " in line or " CRITICAL " in line or line.startswith("Traceback")


def frequent(lines: list[str], top: int = 2) -> str:
    """The most frequent log lines, timestamps cut off."""
    counts = Counter(line.split(" ", 2)[-1][:110] for line in lines if line[:2].isdigit())
    return "; ".join(f"{text!r} x{n}" for text, n in counts.most_common(top)) or "-"


@dataclass
class PhaseResult:
    label: str
    sent: int
    latencies_ms: list[float]
    refused: Counter[str]
    attack: AttackOutcome | None = None
    cpu_share: float | None = None
    log: list[str] = field(default_factory=list)
    stored: int | None = None  # inbound events the bot stored during the phase

    @property
    def unanswered(self) -> int:
        return self.sent - len(self.latencies_ms)

    def attack_cells(self) -> list[str]:
        if self.attack is None:
            return ["-", "-", "-", "-"]
        if not self.attack.kinds:
            return [str(self.attack.sent), "-", "-", self.attack.extra]
        totals = self.attack.totals()
        statuses = {k: n for k, n in totals.items() if k.isdigit()}
        refused = {k: n for k, n in statuses.items() if int(k) >= 400}
        other = {k: n for k, n in totals.items() if k not in refused}
        fives = sum(n for k, n in statuses.items() if int(k) >= 500)
        return [str(self.attack.sent), counts(refused) or "0", str(fives), counts(other) or "-"]

    def cells(self) -> list[str]:
        lat = self.latencies_ms
        spread = [f"{statistics.median(lat):.0f}", f"{percentile(lat, 0.95):.0f}",
                  f"{max(lat):.0f}"] if lat else ["-", "-", "-"]
        cpu = f"{self.cpu_share:.0%}" if self.cpu_share is not None else "-"
        errors = sum(1 for line in self.log if is_error(line))
        return [self.label, *self.attack_cells(), f"{len(lat)}/{self.sent}", *spread,
                counts(self.refused) or "0", "?" if self.stored is None else str(self.stored),
                cpu, f"{len(self.log)} ({errors})"]


HEADER = ["attack", "attacker sent", "refused (status:count)", "5xx", "other outcomes",
          "customers answered/sent", "p50 ms", "p95 ms", "max ms", "deliveries refused",
          "events stored", "bot CPU", "log lines (errors)"]


def counts(found: dict[str, int] | Counter[str]) -> str:
    return " ".join(f"{k}:{n}" for k, n in sorted(found.items()) if n)


async def drive(channel: Channel, first_peer: int, rate: float, seconds: float
                ) -> tuple[dict[int, float], list[asyncio.Task[None]]]:
    """`rate` customers a second for `seconds`, each from a chat of their own."""
    pushed: dict[int, float] = {}
    tasks: list[asyncio.Task[None]] = []
    start = now()
    for number in range(max(1, round(rate * seconds))):
        await asyncio.sleep(max(0.0, start + number / rate - now()))
        peer = first_peer + number
        pushed[peer] = now()
        tasks.append(asyncio.create_task(channel.send(peer, TEXTS[number % len(TEXTS)])))
    return pushed, tasks


async def wait_answered(channel: Channel, pushed: dict[int, float], bot: Child,
                        deadline: float) -> bool:
    """True once every customer of `pushed` has an answer; False at the deadline or when the
    bot has exited."""
    while now() < deadline and bot.alive:
        answers = channel.answers()
        if all(peer in answers for peer in pushed):
            return True
        await asyncio.sleep(0.2)
    return False


async def settle(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def settled_counts(observer: Observer, quiet: float = 0.6, most: float = 5.0
                         ) -> tuple[int, int] | None:
    """The inbound counts once they held still for `quiet` s (the last events of a flood may
    still be on their way), or after `most` s."""
    deadline = now() + most
    last = await observer.counts()
    while now() < deadline:
        await asyncio.sleep(quiet)
        counts = await observer.counts()
        if counts == last:
            break
        last = counts
    return last


def first_answers(channel: Channel, pushed: dict[int, float]) -> list[float]:
    """Milliseconds from each customer's first delivery attempt to their first answer."""
    answers = channel.answers()
    found = []
    for peer, at in pushed.items():
        after = [t for t in answers.get(peer, ()) if t >= at]
        if after:
            found.append((min(after) - at) * 1000)
    return found


# --- the entry points ------------------------------------------------------------------------
@dataclass
class Entry:
    name: str
    title: str
    channel: Channel
    env: dict[str, str]
    port: int
    attacks: list[Attack]


@dataclass
class Runner:
    bench: Bench
    attacker: AttackerProcess
    seconds: float
    baseline: float
    flood_rate: float
    connections: int
    slow: int
    failures: list[str] = field(default_factory=list)

    def http(self, plan: str, port: int) -> HttpAttack:
        return HttpAttack(self.attacker,
                          Order(plan, port, self.seconds, self.connections, self.slow))

    def floods(self, channel: Channel) -> list[Attack]:
        """Hostile texts; then the shop's ordinary questions, which keep the chat with the bot
        (hostile texts are not understood, and two misses hand the chat to a person)."""
        return [FloodAttack(channel, self.flood_rate, self.seconds, "hostile texts",
                            hostile_texts(random.Random(20261202))),
                FloodAttack(channel, self.flood_rate, self.seconds, "ordinary questions",
                            itertools.cycle(TEXTS))]

    def spawn(self, entry: Entry, redis_url: str) -> Child:
        """`supportbot run` (all roles), configured as an operator would."""
        name = self.bench.children.unique(f"bot-{entry.name}")
        env = {
            **clean_environ(), **entry.env, "REDIS_URL": redis_url, "REDIS_PREFIX": PREFIX,
            "CACHE_DIR": str(self.bench.cache_dir), "DATA_DIR": str(self.bench.directory / name),
            "HTTP_HOST": HOST, "HTTP_PORT": str(entry.port), "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(CODE_ROOT),
                                                       os.environ.get("PYTHONPATH")])),
        }
        return self.bench.children.spawn(name, BOT_ARGS, env)

    async def run(self, entry: Entry) -> None:
        """The entry's bot and Redis, its phases, its table; everything stopped after."""
        started = now()
        rows: list[list[str]] = []
        notes: list[str] = []
        try:
            rows, notes = await self.phases(entry)
        except (RedisProcessError, RuntimeError) as exc:
            self.failures.append(f"{entry.name}: the bench failed: {exc}")
            rows = [[f"failed: {exc}"]]
        finally:
            await self.bench.children.stop_all()
        print_rows(entry.title, rows, HEADER if len(rows[0]) > 1 else ())
        for note in notes:
            print(f"  {note}")
        print(f"  ({entry.name} took {now() - started:.0f} s)\n", flush=True)

    async def phases(self, entry: Entry) -> tuple[list[list[str]], list[str]]:
        redis = await self.bench.children.redis(f"redis-{entry.name}")
        bot = self.spawn(entry, redis.url)
        why = await wait_ready([bot], 120) or await entry.channel.ready(30.0) \
            or await self.warm_up(entry.channel, bot)
        if why is not None:
            self.failures.append(f"{entry.name}: {why}")
            return [[f"failed: {why}"]], [f"the bot's last stderr line: {bot.last_error()}"]
        observer = plain_observer(redis)
        try:
            results = [await self.phase(bot, entry.channel, observer, None, 0)]
            for number, attack in enumerate(entry.attacks, 1):
                if not bot.alive:
                    break
                results.append(await self.phase(bot, entry.channel, observer, attack, number))
        finally:
            await observer.close()
        return [r.cells() for r in results], self.judge(entry, bot, results)

    async def warm_up(self, channel: Channel, bot: Child) -> str | None:
        """Each text once, all answered: the model and the code paths are warm."""
        channel.retry_until = now() + 45
        pushed, tasks = await drive(channel, WARM_PEER, 20.0, len(TEXTS) / 20.0)
        answered = await wait_answered(channel, pushed, bot, now() + 45)
        await settle(tasks)
        return None if answered else "warm-up: not every text was answered within 45 s"

    async def phase(self, bot: Child, channel: Channel, observer: Observer,
                    attack: Attack | None, number: int) -> PhaseResult:
        """Customers for `baseline` (no attack) or `seconds` s while `attack` runs; then the
        wait for their answers."""
        seconds = self.seconds if attack else self.baseline
        mark, channel.refused = LogMark.of(bot), Counter()
        before = await observer.counts()
        channel.retry_until = now() + seconds + STRAGGLERS
        if attack is not None:
            await attack.start()
        cpu, began = cpu_seconds(bot.pid), now()
        pushed, tasks = await drive(channel, FIRST_PEER + number * PHASE_PEERS,
                                    self.bench.rate, seconds)
        if attack is not None:
            await attack.finish()
        used, ended = cpu_seconds(bot.pid), now()
        await wait_answered(channel, pushed, bot, ended + STRAGGLERS)
        await settle(tasks)
        after = await settled_counts(observer)
        share = (used - cpu) / (ended - began) if used is not None and cpu is not None else None
        return PhaseResult(attack.label if attack else "no attack", len(pushed),
                           first_answers(channel, pushed), channel.refused,
                           attack.outcome() if attack else None, share, mark.lines(),
                           after[0] - before[0] if after and before else None)

    def judge(self, entry: Entry, bot: Child, results: list[PhaseResult]) -> list[str]:
        """The notes under the table; a failure for an exited bot or an unanswered customer."""
        bot.check()
        notes = [entry.channel.platform_note()]
        for result in results:
            if result.attack is not None and result.attack.kinds:
                notes.append(f"{result.label}, per shape: " + "; ".join(
                    f"{kind} {counts(found)}" for kind, found in result.attack.kinds.items()))
            if result.log:
                notes.append(f"{result.label}, the bot's most frequent log lines: "
                             f"{frequent(result.log)}")
            if result.unanswered:
                self.failures.append(f"{entry.name}, {result.label}: {result.unanswered} of "
                                     f"{result.sent} customers unanswered")
        if not bot.alive:
            self.failures.append(f"{entry.name}: the bot {bot.exit_text()}: {bot.last_error()}")
            notes.append(f"the bot {bot.exit_text()}; its last stderr line: {bot.last_error()}")
        return notes

    def telegram_env(self, fake: FakeTelegram) -> dict[str, str]:
        return {"TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_API_URL": fake.url}

    def vk_env(self, vk: FakeVk, mode: str) -> dict[str, str]:
        return {"VK_TOKEN": vk.token, "VK_GROUP_ID": str(vk.group_id), "VK_API_URL": vk.url,
                "VK_MODE": mode, "VK_CONFIRMATION": VK_CONFIRMATION, "VK_SECRET": VK_SECRET}

    def customers(self) -> str:
        return (f"customers: {self.bench.rate:g}/s, one message each from a chat of their own, "
                f"{self.baseline:g} s without and {self.seconds:g} s with each attack")


LIMITS = ("the fake Bot API enforces Telegram's limits (30 msg/s overall, 1 msg/s per chat, "
          "burst 3)")


FLOODING = "a chat floods the bot (hostile texts, then ordinary questions)"


async def entry_webhook(runner: Runner) -> None:
    port = free_port()
    async with FakeTelegram(token=TOKEN, enforce_limits=True) as fake:
        env = {**runner.telegram_env(fake), "TELEGRAM_MODE": "webhook",
               "TELEGRAM_WEBHOOK_URL": f"http://{HOST}:{port}",
               "TELEGRAM_WEBHOOK_SECRET": WEBHOOK_SECRET}
        title = (f"webhook: Telegram POSTs to {WEBHOOK_PATH} with the secret header; "
                 f"{runner.customers()};\n  attacker: {runner.connections} connections + "
                 f"{runner.slow} slow bodies; {LIMITS}")
        await runner.run(Entry("webhook", title, TelegramWebhook(fake), env, port, [
            runner.http(plan, port)
            for plan in ("webhook-stranger", "webhook-junk", "webhook-slow")]))


async def entry_callback(runner: Runner) -> None:
    port = free_port()
    async with FakeVk() as vk, aiohttp.ClientSession() as session:
        channel = VkCallback(vk, session, f"http://{HOST}:{port}{CALLBACK_PATH}")
        title = (f"callback: VK POSTs events to {CALLBACK_PATH}, the secret inside the body; "
                 f"{runner.customers()};\n  attacker: {runner.connections} connections + "
                 f"{runner.slow} slow bodies")
        await runner.run(Entry("callback", title, channel, runner.vk_env(vk, "callback"), port,
                               [runner.http("callback-junk", port),
                                runner.http("callback-slow", port)]))


async def entry_api(runner: Runner) -> None:
    port = free_port()
    async with FakeTelegram(token=TOKEN, enforce_limits=True) as fake:
        env = {**runner.telegram_env(fake), "API_TOKEN": API_TOKEN}
        title = (f"api: the HTTP API at /api/v1 flooded from 127.0.0.2 (per-client limit "
                 f"{GuardConfig().per_client_rate:g}/s, burst {GuardConfig().per_client_burst:g}; "
                 f"{GuardConfig().failed_auth_limit} wrong tokens a minute lock the address out);"
                 f"\n  customers over Telegram long polling; {runner.customers()}; "
                 f"attacker: {runner.connections} connections")
        await runner.run(Entry("api", title, TelegramPolling(fake), env, port, [
            runner.http("api-token", port), runner.http("api-wrong", port)]))


async def entry_polling(runner: Runner) -> None:
    async with FakeTelegram(token=TOKEN, enforce_limits=True) as fake:
        channel = TelegramPolling(fake)
        title = (f"polling: Telegram long polling; {FLOODING}; {runner.customers()};\n"
                 f"  {LIMITS}")
        await runner.run(Entry("polling", title, channel, runner.telegram_env(fake), free_port(),
                               runner.floods(channel)))


async def entry_longpoll(runner: Runner) -> None:
    async with FakeVk() as vk:
        channel = VkLongPoll(vk)
        title = f"longpoll: VK Bots Long Poll; {FLOODING}; {runner.customers()}"
        await runner.run(Entry("longpoll", title, channel, runner.vk_env(vk, "longpoll"),
                               free_port(), runner.floods(channel)))


ENTRIES: dict[str, Callable[[Runner], Awaitable[None]]] = {
    "webhook": entry_webhook, "callback": entry_callback, "api": entry_api,
    "polling": entry_polling, "longpoll": entry_longpoll,
}


# --- main ------------------------------------------------------------------------------------
async def run(runner: Runner, entries: Sequence[str]) -> None:
    """The chosen entry points in turn; one the bench fails on is reported, the others run."""
    try:
        for name in entries:
            try:
                await ENTRIES[name](runner)
            except Exception:
                runner.failures.append(f"{name}: the bench failed (not the bot)")
                print(f"{name}: the bench failed (not the bot):", flush=True)
                traceback.print_exc()
            finally:
                await runner.bench.children.stop_all()
    finally:
        await runner.bench.children.stop_all()


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--entry", choices=[*ENTRIES, "all"], default="all")
    parser.add_argument("--seconds", type=float, default=15.0, help="of each attack")
    parser.add_argument("--baseline", type=float, default=5.0, help="of the row without attack")
    parser.add_argument("--rate", type=float, default=5.0, help="customers a second")
    parser.add_argument("--flood-rate", type=float, default=50.0,
                        help="hostile texts a second from the flooding chat")
    parser.add_argument("--connections", type=int, default=8,
                        help="the HTTP attacker's connections firing requests")
    parser.add_argument("--slow", type=int, default=80,
                        help=f"connections holding slow bodies (the guard allows {IN_FLIGHT} "
                             "requests in flight)")
    args = parser.parse_args()
    if min(args.seconds, args.baseline, args.rate, args.flood_rate, args.connections) <= 0 \
            or args.slow < 0:
        parser.error("durations, rates and --connections must be positive, --slow >= 0")
    return args


def main() -> None:
    args = arguments()
    attacker = AttackerProcess()  # forked first: no threads, loop or sockets to inherit yet
    print(speed_line(), flush=True)
    entries = list(ENTRIES) if args.entry == "all" else [args.entry]
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="abuse-") as tmp:
        children = Children(Path(tmp))
        try:
            bench = Bench(Path(tmp), children, pretrain(Path(tmp)),
                          round(args.rate * args.seconds), args.rate)
            runner = Runner(bench, attacker, args.seconds, args.baseline, args.flood_rate,
                            args.connections, args.slow)
            asyncio.run(run(runner, entries))
            failures = runner.failures
        except KeyboardInterrupt:
            print("interrupted: every process the bench started is stopped", file=sys.stderr)
            raise SystemExit(130) from None
        finally:
            children.kill_all()
            attacker.close()
    for failure in failures:
        print(f"FAILED: {failure}")
    if failures:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
