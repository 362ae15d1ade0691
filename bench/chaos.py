"""Chaos benchmark: how supportbot recovers when a process, Redis or its primary dies under load.

    python -m bench.chaos [--scenario kill|redis|sentinel|scale|all] [--customers 200] [--rate 40]

The product runs in its production configuration: real `supportbot run` processes configured
only through the environment, the `SendLimits()` defaults (30 messages/s overall per bot, about
1 message/s per chat), the default lease time and shard count. Telegram is the fake Bot API of
fakes/telegram.py, served in this process, enforcing Telegram's sending limits (an over-limit
send gets 429, as Telegram would answer; the count is printed). Redis servers are started here on
free ports (appendonly yes, appendfsync everysec) in a temporary directory that also holds each
process's DATA_DIR; the NLU model is trained once into the shared CACHE_DIR before any bot starts.

Every customer is a chat of its own and sends one message (the texts of bench.fakeproc.TEXTS in
turn). How many answers each text gets when nothing fails is measured first, in a warm-up through
the same processes; "lost" counts customers who got fewer answers than that, "doubled" those who
got more. After the fault the bench waits (at most about 60 s) until every customer has their
answers and nothing is pending in Redis or at the fake, or until nothing has been pending for 5 s
(what is missing then is lost for good), or every bot process has exited.

1. kill: three processes with all roles; one (the one holding the getUpdates lease, the worst
   case) is SIGKILLed 2.5 s into the load and a replacement started at once.
2. redis: one process; Redis is stopped (SIGTERM, then in a second run SIGKILL) 2.5 s into the
   load and started again on the same port with its data 0.5 s after it exited.
3. sentinel: one process connected through REDIS_SENTINELS; the primary of a primary + replica +
   three sentinels is SIGKILLed 2.5 s into the load (skipped when the build has no such setting).
4. scale: one ingress process, one sender process and 1, 2, 3 worker processes; `--messages`
   (2000) messages pushed at once from as many chats. The measure is inbound events committed
   per second, read from the shard streams' consumer group in Redis (worker processes serve no
   HTTP, so no /metrics), and the CPU seconds of each process from /proc; the answers' own rate
   is printed too, capped by Telegram's 30 msg/s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Collection, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.sentinel import Sentinel
from redis.exceptions import RedisError, ResponseError

import bench as bench_package
from bench.fakeproc import TEXTS, percentile
from bench.machine import speed_line
from bots.runtime import load_brain
from bots.settings import Settings
from bots.worker import GROUP as WORKER_GROUP
from fakes.redis_topology import RedisProcess, RedisProcessError, SentinelTopology, TopologyError
from fakes.telegram import FakeTelegram
from handoff.keys import Keys
from handoff.outbox import GROUP as SENDER_GROUP

TOKEN = "123456:CHAOS-token"
PREFIX = "chaos:"
SHARDS: int = Settings.model_fields["ingest_shards"].default
LEASE: float = Settings.model_fields["lease_seconds"].default
WARM_CHAT = 1  # warm-up chats: 1..len(TEXTS)
FIRST_CHAT = 10_000_000  # the load's chats
FAULT_AFTER = 2.5  # seconds into the load
STRAGGLERS = 60.0  # the longest wait for late answers after the fault
QUIET = 5.0  # nothing pending anywhere for this long: what is missing is lost
STABLE = 2.0  # seconds without a shard changing hands: the workers have settled
READY_MARK = " model: "  # "loaded cached model: N intents" on stdout: the process is up
TICKS = os.sysconf("SC_CLK_TCK")
SENTINEL_MASTER = "chaos"
DOWN_AFTER_MS = 5000  # sentinel down-after-milliseconds: a common production choice
CODE_ROOT = Path(bench_package.__file__).resolve().parent.parent  # the bots run this same code
LIMITS = ("limits on: SendLimits() defaults, 30 msg/s overall and 1 msg/s per chat; "
          "the fake Bot API answers over-limit sends with 429 like Telegram")


def now() -> float:
    return time.perf_counter()


# --- child processes ---------------------------------------------------------------------------
def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a live process, from /proc/<pid>/stat (utime, stime)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


class Child:
    """A bot process the bench started; its stdout and stderr go to files in the run's
    directory (the stdout's "model:" line says it is up)."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], directory: Path) -> None:
        self.name = name
        self.out_path = directory / f"{name}.out"
        self.err_path = directory / f"{name}.err"
        with self.out_path.open("wb") as out, self.err_path.open("wb") as err:
            self.process = subprocess.Popen(
                args, env=env, cwd=directory, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                start_new_session=True,  # a Ctrl-C reaches the bench only, which stops us
            )
        self.ready_at: float | None = None
        self.exited_at: float | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def check(self) -> None:
        """Note when the process exited, and when it had its NLU model loaded."""
        if self.exited_at is None and self.process.poll() is not None:
            self.exited_at = now()
        if self.ready_at is None and self.exited_at is None:
            with contextlib.suppress(OSError):
                if READY_MARK in self.out_path.read_text(errors="replace"):
                    self.ready_at = now()

    def send(self, sig: int) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)

    async def wait(self, timeout: float) -> bool:
        """True once the process has exited (polled, so the event loop keeps running)."""
        deadline = now() + timeout
        while self.process.poll() is None:
            if now() > deadline:
                return False
            await asyncio.sleep(0.01)
        self.check()
        return True

    async def stop(self, grace: float = 8.0) -> None:
        """SIGTERM (the bot finishes what is on the wire), SIGKILL after `grace` seconds."""
        self.send(signal.SIGTERM)
        if not await self.wait(grace):
            self.send(signal.SIGKILL)
            await self.wait(5.0)

    def cpu(self) -> float:
        return cpu_seconds(self.pid) or 0.0

    def last_error(self) -> str:
        """The last line of the process's stderr (a traceback's last line names the error)."""
        with contextlib.suppress(OSError):
            lines = [line.strip() for line in
                     self.err_path.read_text(errors="replace").splitlines() if line.strip()]
            if lines:
                return lines[-1][:160]
        return "(nothing on stderr)"

    def exit_text(self, since: float | None = None) -> str:
        """'alive', or the exit code and when (seconds after `since`)."""
        code = self.process.poll()
        if code is None:
            return "alive"
        when = f" {self.exited_at - since:+.1f} s" if since and self.exited_at else ""
        return f"exited with code {code}{when}"


class Children:
    """Every bot process and Redis server the bench starts, so that all of them are stopped
    whatever happens (an error, Ctrl-C)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.bots: list[Child] = []
        self.servers: list[RedisProcess | SentinelTopology] = []
        self._serial = 0

    def unique(self, name: str) -> str:
        self._serial += 1
        return f"{self._serial:02d}-{name}"

    def spawn(self, name: str, args: list[str], env: dict[str, str]) -> Child:
        child = Child(name, args, env, self.directory)
        self.bots.append(child)
        return child

    async def redis(self, name: str) -> RedisProcess:
        """A Redis as production keeps a queue: appendonly yes, appendfsync everysec."""
        server = RedisProcess(self.directory / self.unique(name), appendonly=True,
                              appendfsync="everysec")
        self.servers.append(server)
        await asyncio.to_thread(server.start)
        return server

    async def sentinels(self) -> SentinelTopology:
        """A primary, a replica and three sentinels (quorum 2), the data servers with an AOF."""
        topology = SentinelTopology(self.directory / self.unique("sentinel"),
                                    master_name=SENTINEL_MASTER, appendonly=True,
                                    down_after_ms=DOWN_AFTER_MS, keep_files=True)
        self.servers.append(topology)
        await asyncio.to_thread(topology.start)
        return topology

    async def watch(self) -> None:
        """Every 50 ms: who exited, who is up (exit and ready times to 50 ms)."""
        while True:
            for child in list(self.bots):
                child.check()
            await asyncio.sleep(0.05)

    async def stop_all(self) -> None:
        """The bots first (SIGTERM, then SIGKILL after a grace), then the Redis servers."""
        await asyncio.gather(*(bot.stop() for bot in self.bots if bot.alive))
        servers, self.servers = self.servers, []
        for server in servers:
            await asyncio.to_thread(server.stop)

    def kill_all(self) -> None:
        """The last resort, outside the event loop: SIGKILL every bot, stop every server."""
        for child in self.bots:
            child.send(signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.process.wait(5)
        for server in self.servers:
            with contextlib.suppress(Exception):
                server.stop()


def clean_environ() -> dict[str, str]:
    """This environment less every supportbot setting, so a developer's REDIS_URL or
    OPERATOR_CHAT_ID cannot leak into a run: the bots get the defaults plus what we set."""
    return {k: v for k, v in os.environ.items() if k.lower() not in Settings.model_fields}


@dataclass
class Bench:
    """What the scenarios share: the run's directory, its processes, the model cache."""

    directory: Path
    children: Children
    cache_dir: Path
    customers: int
    rate: float

    def bot(self, role: str, api_url: str, redis_env: dict[str, str]) -> Child:
        """A `supportbot run --role <role>` process, configured as an operator would."""
        name = self.children.unique(f"bot-{role}")
        env = {
            **clean_environ(), **redis_env, "REDIS_PREFIX": PREFIX, "TELEGRAM_BOT_TOKEN": TOKEN,
            "TELEGRAM_API_URL": api_url, "CACHE_DIR": str(self.cache_dir),
            "DATA_DIR": str(self.directory / name), "INGEST_SHARDS": str(SHARDS),
            "LEASE_SECONDS": str(LEASE), "HTTP_PORT": "0", "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(CODE_ROOT),
                                                       os.environ.get("PYTHONPATH")])),
        }
        args = [sys.executable, "-c", "from bots.cli.main import main; main()",
                "run", "--role", role]
        return self.children.spawn(name, args, env)


# --- what Redis and the fake say -------------------------------------------------------------
class Observer:
    """What the bench reads in Redis (it never writes): backlogs, lease holders, counts.
    Every method answers None while Redis does not."""

    def __init__(self, client: aioredis.Redis) -> None:
        self.redis = client
        self.keys = Keys(PREFIX)

    async def close(self) -> None:
        with contextlib.suppress(RedisError, OSError):
            await self.redis.aclose()

    async def _groups(self, streams: list[str], group: str) -> list[tuple[int, dict[str, Any]]]:
        """(XLEN, the group's XINFO GROUPS entry or {}) of each stream, in one round trip."""
        pipe = self.redis.pipeline(transaction=False)
        for stream in streams:
            pipe.xlen(stream)
            pipe.xinfo_groups(stream)
        replies = await pipe.execute(raise_on_error=False)
        found = []
        for length, groups in zip(replies[::2], replies[1::2], strict=True):
            if isinstance(length, BaseException) and not isinstance(length, ResponseError):
                raise length
            info: dict[str, Any] = next(
                (g for g in groups if g.get("name") == group), {}) if isinstance(groups, list) \
                else {}
            found.append((length if isinstance(length, int) else 0, info))
        return found

    def _inbound(self) -> list[str]:
        return [self.keys.inbound_stream(shard) for shard in range(SHARDS)]

    async def backlog(self, *, outbox: bool = True) -> int | None:
        """Inbound events not committed yet plus (`outbox`) answers not sent and acked yet."""
        try:
            found = await self._groups(self._inbound(), WORKER_GROUP)
            if outbox:
                found += await self._groups([self.keys.outbox("tg", "customer")], SENDER_GROUP)
        except (RedisError, OSError):
            return None
        total = 0
        for length, info in found:
            if not info:
                total += length  # no consumer group yet: every entry is waiting
                continue
            lag = info.get("lag")
            total += int(info.get("pending") or 0) + (1 if lag is None else int(lag))
        return total

    async def counts(self) -> tuple[int, int] | None:
        """(inbound events stored, inbound events committed) over every shard."""
        try:
            found = await self._groups(self._inbound(), WORKER_GROUP)
        except (RedisError, OSError):
            return None
        stored = sum(length for length, _ in found)
        committed = sum(int(info.get("entries-read") or 0) - int(info.get("pending") or 0)
                        for _, info in found)
        return stored, committed

    async def holder(self, key: str) -> int | None:
        """The pid in a lease's owner token (host:pid:random), or None."""
        try:
            owner = await self.redis.get(key)
        except (RedisError, OSError):
            return None
        parts = str(owner or "").rsplit(":", 2)
        return int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else None

    async def shard_holders(self) -> list[int | None]:
        return [await self.holder(self.keys.shard_lease(s)) for s in range(SHARDS)]

    async def poller(self, bot_id: int) -> int | None:
        return await self.holder(self.keys.lease(f"tg-poll:{bot_id}"))

    async def leases_of(self, pid: int) -> list[str]:
        """The named leases (getUpdates poller, sender, ...) `pid` holds, shards aside."""
        names = []
        with contextlib.suppress(RedisError, OSError):
            async for key in self.redis.scan_iter(match=self.keys.lease("*"), count=100):
                if await self.holder(str(key)) == pid:
                    names.append(str(key).removeprefix(self.keys.lease("")))
        return sorted(names)

    async def has_data(self) -> bool:
        """Any key under the bots' prefix (they really use this Redis)."""
        try:
            async for _key in self.redis.scan_iter(match=f"{PREFIX}*", count=100):
                return True
        except (RedisError, OSError):
            return False
        return False


def answer_times(fake: FakeTelegram, chats: Collection[int]) -> dict[int, list[float]]:
    """When each answer to `chats` arrived at the fake: successful sendMessage calls only (a
    send the fake refused with 429 is not an answer; its retry is)."""
    found: dict[int, list[float]] = {}
    for call in fake.calls_of("sendMessage"):
        chat = call.params.get("chat_id")
        if call.ok and isinstance(chat, int) and chat in chats:
            found.setdefault(chat, []).append(call.at)
    return found


async def pending_updates(fake: FakeTelegram) -> int:
    """Updates the fake still holds (not yet confirmed by a getUpdates offset)."""
    _status, body = await fake.execute("getWebhookInfo", {}, via="bench")
    return int(body["result"]["pending_update_count"])


async def wait_ready(bots: Sequence[Child], timeout: float) -> str | None:
    """None once every bot has its NLU model loaded; else why not."""
    deadline = now() + timeout
    while now() < deadline:
        for bot in bots:
            bot.check()
            if not bot.alive:
                return f"{bot.name} {bot.exit_text()} at start-up: {bot.last_error()}"
        if all(bot.ready_at is not None for bot in bots):
            return None
        await asyncio.sleep(0.1)
    return f"not up within {timeout:.0f} s"


async def warm_up(fake: FakeTelegram, observer: Observer, bots: Sequence[Child]
                  ) -> dict[str, int] | str:
    """Each of TEXTS once, from a chat of its own, once the bots are up; the answers counted
    when nothing is pending any more: what a customer gets when nothing fails, the yardstick
    of "lost" and "doubled". A string says what went wrong instead."""
    why = await wait_ready(bots, 120)
    if why is not None:
        return why
    chats = {WARM_CHAT + n: text for n, text in enumerate(TEXTS)}
    for chat, text in chats.items():
        fake.push_update(fake.text_update(chat, text))
    deadline = now() + 45
    while now() < deadline:
        await asyncio.sleep(0.2)
        if len(answer_times(fake, chats)) == len(chats) and await observer.backlog() == 0 \
                and await pending_updates(fake) == 0:
            await asyncio.sleep(0.5)
            times = answer_times(fake, chats)
            return {text: len(times[chat]) for chat, text in chats.items()}
        if not any(bot.alive for bot in bots):
            return "every bot process exited during the warm-up"
    return "warm-up: not every text was answered within 45 s"


# --- the load and its outcome --------------------------------------------------------------
@dataclass
class Load:
    """`customers` chats, one message each, `rate` per second; when each was pushed."""

    customers: int
    rate: float
    answers_per_text: dict[str, int]
    pushed: dict[int, float] = field(default_factory=dict)
    started: float = 0.0

    @staticmethod
    def text(chat: int) -> str:
        return TEXTS[(chat - FIRST_CHAT) % len(TEXTS)]

    @property
    def chats(self) -> range:
        return range(FIRST_CHAT, FIRST_CHAT + self.customers)

    def expected(self, chat: int) -> int:
        return self.answers_per_text[self.text(chat)]

    def total_expected(self) -> int:
        return sum(self.expected(chat) for chat in self.chats)

    async def drive(self, fake: FakeTelegram, fault_at: float,
                    fault: Callable[[], Coroutine[Any, Any, None]]) -> asyncio.Task[None]:
        """Push the messages on schedule; `fault_at` s in, start `fault` as a task of its own
        (the load keeps its pace while the fault plays out). Returns that task."""
        start = self.started = now()
        task: asyncio.Task[None] | None = None
        for number, chat in enumerate(self.chats):
            due = start + number / self.rate
            if task is None and due >= start + fault_at:
                await asyncio.sleep(max(0.0, start + fault_at - now()))
                task = asyncio.create_task(fault())
            await asyncio.sleep(max(0.0, due - now()))
            fake.push_update(fake.text_update(chat, self.text(chat)))
            self.pushed[chat] = now()
        return task or asyncio.create_task(fault())

    def complete(self, times: dict[int, list[float]]) -> bool:
        return all(len(times.get(chat, ())) >= self.expected(chat) for chat in self.chats)


@dataclass(frozen=True)
class Tally:
    """Customers short of answers (lost) or with more than expected (doubled)."""

    lost: int
    missing: int
    doubled: int
    extra: int

    @classmethod
    def of(cls, load: Load, times: dict[int, list[float]]) -> Tally:
        short = [load.expected(c) - len(times.get(c, ())) for c in load.chats]
        return cls(sum(1 for d in short if d > 0), sum(d for d in short if d > 0),
                   sum(1 for d in short if d < 0), -sum(d for d in short if d < 0))

    def lost_text(self) -> str:
        return f"{self.lost} customers ({self.missing} answers missing)"

    def doubled_text(self) -> str:
        return f"{self.doubled} customers ({self.extra} answers extra)"


async def settle(fake: FakeTelegram, observer: Observer, load: Load, bots: Sequence[Child],
                 deadline: float) -> str:
    """Wait for the stragglers; returns how the wait ended: every customer answered and nothing
    pending (then 1.5 s more for a duplicate to show), nothing pending for QUIET s (what is
    missing is lost), every bot gone, or the deadline."""
    quiet_since: float | None = None
    while now() < deadline:
        await asyncio.sleep(0.25)
        if not any(bot.alive for bot in bots):
            return "every bot process had exited"
        idle = await observer.backlog() == 0 and await pending_updates(fake) == 0
        quiet_since = (quiet_since or now()) if idle else None
        if idle and load.complete(answer_times(fake, load.chats)):
            await asyncio.sleep(1.5)
            return "every customer answered, nothing pending"
        if quiet_since is not None and now() - quiet_since >= QUIET:
            return f"nothing pending for {QUIET:.0f} s: what is missing is lost"
    return "timed out: still pending at the end of the wait"


def spread(values: list[float], of: int) -> str:
    """p50/p99 in seconds, and how many of `of` messages the values cover."""
    if not values:
        return f"none of {of} answered"
    text = f"p50 {statistics.median(values):.2f} s, p99 {percentile(values, 0.99):.2f} s"
    return text + (f" ({len(values)} of {of} answered)" if len(values) < of else f" ({of} msgs)")


def latencies(load: Load, times: dict[int, list[float]], start: float, end: float
              ) -> tuple[list[float], int]:
    """First-answer latency of the messages pushed in [start, end), and how many there were."""
    chats = [c for c, at in load.pushed.items() if start <= at < end]
    return [times[c][0] - load.pushed[c] for c in chats if c in times], len(chats)


def answers_resume(times: dict[int, list[float]], moment: float, bot: Child) -> str:
    """Seconds from `moment` to the first answer of any kind: the pipeline flowing again."""
    after = [at for chat in times.values() for at in chat if at >= moment]
    if after:
        return f"{min(after) - moment:.2f} s"
    return "never: " + ("the bot exited" if not bot.alive else "no answer in the wait")


def first_answer_after(load: Load, times: dict[int, list[float]], moment: float,
                       bot: Child) -> str:
    """Seconds from `moment` to the first answer to a message pushed after it."""
    firsts = [times[c][0] for c, at in load.pushed.items() if at >= moment and c in times]
    if firsts:
        return f"{min(firsts) - moment:.2f} s"
    return "never: " + ("the bot exited" if not bot.alive else "no such answer in the wait")


def longest_gap(times: dict[int, list[float]], moment: float) -> str:
    """The longest silence in the answers from `moment` until the last answer."""
    after = sorted(at for chat in times.values() for at in chat if at >= moment)
    if not after:
        return "no answer at all after it"
    gaps = [b - a for a, b in zip([moment, *after], after, strict=False)]
    return f"{max(gaps):.2f} s"


# --- output -----------------------------------------------------------------------------------
def print_rows(title: str, rows: Sequence[Sequence[str]], header: Sequence[str] = ()) -> None:
    """The title, then the rows as aligned columns (the first one is the label)."""
    print(title)
    table = [list(header), *map(list, rows)] if header else [list(r) for r in rows]
    columns = max(map(len, table), default=0)
    widths = [max(len(r[i]) for r in table if i < len(r)) for i in range(columns)]
    for row in table:
        print("  " + "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
    print(flush=True)


# --- 1. SIGKILL of a process -----------------------------------------------------------------
@dataclass
class KillFault:
    """SIGKILL `victim`, start a replacement at once."""

    victim: Child
    replace: Callable[[], Child]
    at: float = 0.0
    replacement: Child | None = None

    async def __call__(self) -> None:
        self.at = now()
        self.victim.send(signal.SIGKILL)
        self.replacement = self.replace()


def plain_observer(server: RedisProcess) -> Observer:
    return Observer(aioredis.Redis.from_url(server.url, decode_responses=True, socket_timeout=1.0,
                                            socket_connect_timeout=1.0))


async def scenario_kill(bench: Bench) -> None:
    processes = 3
    title = (f"kill: SIGKILL of 1 of {processes} `supportbot run` processes (all roles) under "
             f"load, a replacement started at once; {bench.customers} customers at "
             f"{bench.rate:.0f}/s, one message each; lease {LEASE:g} s, {SHARDS} shards;\n"
             f"  {LIMITS}")
    try:
        redis = await bench.children.redis("redis-kill")
    except RedisProcessError as exc:
        print_rows(title, [(f"failed: {str(exc).splitlines()[0]}",)])
        return
    async with FakeTelegram(token=TOKEN, enforce_limits=True) as fake:
        observer = plain_observer(redis)
        env = {"REDIS_URL": redis.url}
        try:
            bots = [bench.bot("all", fake.url, env) for _ in range(processes)]
            expected = await warm_up(fake, observer, bots)
            # As in production: every process up and the shards spread before the load.
            if not isinstance(expected, str):
                await shards_settled(observer, {bot.pid for bot in bots}, LEASE * 2 + 10)
            rows = [(f"failed: {expected}",)] if isinstance(expected, str) else \
                await kill_run(bench, fake, observer, bots, expected, env)
        finally:
            await observer.close()
            await bench.children.stop_all()
    print_rows(title, rows)


async def kill_run(bench: Bench, fake: FakeTelegram, observer: Observer, bots: list[Child],
                   expected: dict[str, int], env: dict[str, str]) -> list[tuple[str, str]]:
    """The load, the kill of the process holding the getUpdates lease (the worst one to lose:
    nothing comes in until its lease runs out), the wait for stragglers, the figures."""
    poller = await observer.poller(int(fake.get_me()["id"]))
    shards = await observer.shard_holders()
    victim = next((b for b in bots if b.pid == poller), bots[0])
    leases = await observer.leases_of(victim.pid)
    load = Load(bench.customers, bench.rate, expected)
    fault = KillFault(victim, lambda: bench.bot("all", fake.url, env))
    await (await load.drive(fake, fault_time(load), fault))
    survivors = [b for b in bots if b is not victim]
    survivors += [fault.replacement] if fault.replacement else []
    ended = await settle(fake, observer, load, survivors, fault.at + STRAGGLERS)
    times = answer_times(fake, load.chats)
    tally = Tally.of(load, times)
    held = "".join(f"lease {name}, " for name in leases)
    ready = fault.replacement.ready_at if fault.replacement else None
    before, n_before = latencies(load, times, 0.0, fault.at)
    after, n_after = latencies(load, times, fault.at, fault.at + 5.0)
    return [
        ("killed", f"pid {victim.pid}, {fault.at - load.started:.1f} s into the load (it held "
                   f"{held}{sum(1 for s in shards if s == victim.pid)}/{SHARDS} shards)"),
        ("replacement up", f"{ready - fault.at:.1f} s after the kill (NLU model loaded)"
         if ready else "not up by the end of the wait"),
        ("answers expected", f"{load.total_expected()} to {load.customers} customers (answers "
                             f"per text, from the warm-up: {answer_counts(expected)})"),
        ("lost", tally.lost_text()),
        ("doubled", tally.doubled_text()),
        ("last in-flight answer after the kill", in_flight(load, times, fault.at)),
        ("longest gap in answers after the kill", longest_gap(times, fault.at)),
        ("latency, sent before the kill", spread(before, n_before)),
        ("latency, sent in the 5 s after the kill", spread(after, n_after)),
        ("429s from the fake Bot API", str(len(fake.limit_violations))),
        ("wait ended", ended),
    ]


def fault_time(load: Load) -> float:
    """FAULT_AFTER seconds into the load, or half-way through a shorter one."""
    return min(FAULT_AFTER, load.customers / load.rate / 2)


def answer_counts(expected: dict[str, int]) -> str:
    """'1 x10, 2 x2': how many texts get how many answers."""
    counts = sorted(set(expected.values()))
    return ", ".join(f"{n} x{sum(1 for v in expected.values() if v == n)}" for n in counts)


def in_flight(load: Load, times: dict[int, list[float]], kill_at: float) -> str:
    """Seconds from the kill to the last answer of a message pushed before it; how many such
    messages never got all their answers."""
    chats = [c for c, at in load.pushed.items() if at < kill_at]
    short = sum(1 for c in chats if len(times.get(c, ())) < load.expected(c))
    lasts = [times[c][-1] for c in chats if c in times]
    text = f"{max(lasts) - kill_at:.2f} s" if lasts else "no answer at all"
    return text + (f" ({short} of {len(chats)} still short of answers: timed out)"
                   if short else f" (all {len(chats)} answered)")


# --- 2. Redis restart --------------------------------------------------------------------------
@dataclass
class RedisRestart:
    """Stop Redis with `sig`, start it again on the same port with its data 0.5 s after it
    exited."""

    server: RedisProcess
    sig: signal.Signals
    at: float = 0.0
    up_at: float | None = None
    error: str = ""

    async def __call__(self) -> None:
        self.at = now()
        await asyncio.to_thread(self.server.stop, self.sig)
        await asyncio.sleep(0.5)
        try:
            await asyncio.to_thread(self.server.start, 30.0)
            self.up_at = now()
        except RedisProcessError as exc:
            self.error = str(exc).splitlines()[0]


async def scenario_redis(bench: Bench) -> None:
    signals = (signal.SIGTERM, signal.SIGKILL)
    columns = [await redis_run(bench, sig) for sig in signals]
    print_rows(f"redis: Redis (appendonly yes, appendfsync everysec) stopped {FAULT_AFTER:g} s "
               f"into the load and restarted on its port 0.5 s after it exited; 1 `supportbot "
               f"run` process (all roles); {bench.customers} customers at {bench.rate:.0f}/s;\n"
               f"  {LIMITS}", transpose(columns), ["", *(sig.name for sig in signals)])
    for sig, column in zip(signals, columns, strict=True):
        print(f"  {sig.name}: the bot's last stderr line: {column.get('stderr', '-')}")
    print(flush=True)


def transpose(columns: list[dict[str, str]]) -> list[list[str]]:
    """Rows of (label, value in each column) from one dict per column."""
    labels = list(dict.fromkeys(k for column in columns for k in column if k != "stderr"))
    return [[label, *(column.get(label, "-") for column in columns)] for label in labels]


async def redis_run(bench: Bench, sig: signal.Signals) -> dict[str, str]:
    """One restart under load; the figures of one column."""
    try:
        redis = await bench.children.redis(f"redis-{sig.name.lower()}")
    except RedisProcessError as exc:
        return {"result": f"failed: {str(exc).splitlines()[0]}"}
    async with FakeTelegram(token=TOKEN, enforce_limits=True) as fake:
        observer = plain_observer(redis)
        bot = bench.bot("all", fake.url, {"REDIS_URL": redis.url})
        try:
            expected = await warm_up(fake, observer, [bot])
            if isinstance(expected, str):
                return {"result": f"failed: {expected}", "stderr": bot.last_error()}
            load = Load(bench.customers, bench.rate, expected)
            fault = RedisRestart(redis, sig)
            await (await load.drive(fake, fault_time(load), fault))
            up = fault.up_at or now()
            ended = await settle(fake, observer, load, [bot], up + STRAGGLERS)
            times = answer_times(fake, load.chats)
            tally = Tally.of(load, times)
            return {
                "redis down (signal -> answering again)": f"{up - fault.at:.2f} s"
                if fault.up_at else f"did not come back: {fault.error}",
                "lost": tally.lost_text(), "doubled": tally.doubled_text(),
                "answers flow again after the restart": answers_resume(times, up, bot),
                # Behind the outage's backlog: the customers who waited longest go first.
                "first answer to a message sent after it": first_answer_after(
                    load, times, up, bot),
                "bot process (times from the signal)": bot.exit_text(fault.at),
                "429s from the fake Bot API": str(len(fake.limit_violations)),
                "wait ended": ended, "stderr": bot.last_error(),
            }
        finally:
            await observer.close()
            await bench.children.stop_all()


# --- 3. Sentinel failover ----------------------------------------------------------------------
def sentinel_support() -> str | None:
    """None when this build's settings know REDIS_SENTINELS and REDIS_SENTINEL_MASTER."""
    if {"redis_sentinels", "redis_sentinel_master"} <= Settings.model_fields.keys():
        return None
    return "REDIS_SENTINELS not supported by this build"


@dataclass
class PrimaryKill:
    """SIGKILL the primary; note when a sentinel names a new primary that takes writes."""

    topology: SentinelTopology
    at: float = 0.0
    failover: float | None = None
    error: str = ""

    async def __call__(self) -> None:
        self.at = now()
        await asyncio.to_thread(self.topology.kill_primary)
        try:
            self.failover = await asyncio.to_thread(self.topology.wait_failover, 30.0)
        except TopologyError as exc:
            self.error = str(exc).splitlines()[0]


async def scenario_sentinel(bench: Bench) -> None:
    title = (f"sentinel: SIGKILL of the Redis primary {FAULT_AFTER:g} s into the load (primary + "
             f"replica + 3 sentinels, quorum 2, down-after-milliseconds {DOWN_AFTER_MS}, AOF "
             f"everysec); 1 `supportbot run` process (all roles) with REDIS_SENTINELS; "
             f"{bench.customers} customers at {bench.rate:.0f}/s;\n  {LIMITS}")
    unsupported = sentinel_support()
    if unsupported:
        print_rows(title, [(f"skipped: {unsupported}",)])
        return
    try:
        topology = await bench.children.sentinels()
        rows = await sentinel_run(bench, topology)
    except (TopologyError, RedisProcessError) as exc:
        rows = [(f"failed: {str(exc).splitlines()[0]}",)]
    finally:
        await bench.children.stop_all()
    print_rows(title, rows)


async def sentinel_run(bench: Bench, topology: SentinelTopology) -> list[tuple[str, ...]]:
    """The bot connected through the sentinels; the primary killed under load; the figures."""
    env = {"REDIS_SENTINELS": ",".join(f"{h}:{p}" for h, p in topology.sentinels),
           "REDIS_SENTINEL_MASTER": topology.master_name}
    client: aioredis.Redis = Sentinel(topology.sentinels, socket_timeout=1.0).master_for(
        topology.master_name, decode_responses=True, socket_timeout=1.0)
    async with FakeTelegram(token=TOKEN, enforce_limits=True) as fake:
        observer = Observer(client)
        bot = bench.bot("all", fake.url, env)
        try:
            expected = await warm_up(fake, observer, [bot])
            if isinstance(expected, str):
                return [(f"skipped: {expected}",)]
            if not await observer.has_data():
                return [("skipped: the bot does not use the sentinels' primary (no keys there)",)]
            load = Load(bench.customers, bench.rate, expected)
            fault = PrimaryKill(topology)
            await (await load.drive(fake, fault_time(load), fault))
            ended = await settle(fake, observer, load, [bot], fault.at + STRAGGLERS)
            times = answer_times(fake, load.chats)
            tally = Tally.of(load, times)
            rows: list[tuple[str, ...]] = [
                ("failover (kill -> new primary takes writes)",
                 f"{fault.failover:.2f} s" if fault.failover else f"timed out: {fault.error}"),
                # From the new primary on: before it, the sender still delivers what it had.
                ("answers flow again after the failover",
                 answers_resume(times, fault.at + (fault.failover or 0.0), bot)),
                ("first answer to a message sent after it",
                 first_answer_after(load, times, fault.at, bot)),
                ("lost (a failover may drop acknowledged writes)", tally.lost_text()),
                ("doubled", tally.doubled_text()),
                ("bot process (times from the kill)", bot.exit_text(fault.at)),
                ("429s from the fake Bot API", str(len(fake.limit_violations))),
                ("wait ended", ended),
            ]
            return rows + ([] if bot.alive else [("the bot's last stderr line", bot.last_error())])
        finally:
            await observer.close()


# --- 4. Throughput with 1, 2, 3 workers ------------------------------------------------------
@dataclass
class ScaleRow:
    """One line of the scale table (text cells, "-" where nothing was measured)."""

    workers: int
    committed_per_s: str = "-"
    stored_in: str = "-"
    committed_in: str = "-"
    shards: str = "-"
    worker_cpu: str = "-"
    ingress_cpu: str = "-"
    sender_cpu: str = "-"
    answers_per_s: str = "-"

    def cells(self) -> list[str]:
        return [str(self.workers), self.committed_per_s, self.stored_in, self.committed_in,
                self.shards, self.worker_cpu, self.ingress_cpu, self.sender_cpu,
                self.answers_per_s]


SCALE_HEADER = ["workers", "committed/s", "all stored", "all committed", "shards held",
                "CPU s per worker", "CPU s ingress", "CPU s sender", "answers/s (limits on)"]


async def scenario_scale(bench: Bench, messages: int) -> None:
    rows: list[ScaleRow] = []
    notes: list[str] = []
    try:
        redis = await bench.children.redis("redis-scale")
        async with FakeTelegram(token=TOKEN, enforce_limits=True) as fake:
            observer = plain_observer(redis)
            try:
                await scale_runs(bench, fake, observer, messages, rows, notes, redis.url)
            finally:
                await observer.close()
                await bench.children.stop_all()
    except RedisProcessError as exc:
        notes.append(f"failed: {str(exc).splitlines()[0]}")
    print_rows(f"scale: inbound events committed per second by N `supportbot run --role worker` "
               f"processes, and the CPU seconds each process used meanwhile;\n"
               f"  1 `--role ingress` + 1 `--role sender` process; {messages} messages from "
               f"{messages} chats pushed at once per row; {SHARDS} shards;\n"
               f"  answers/s: the answers themselves, paced by Telegram's limits ({LIMITS})",
               [r.cells() for r in rows], SCALE_HEADER)
    for note in notes:
        print(f"  {note}")
    print(flush=True)


async def scale_runs(bench: Bench, fake: FakeTelegram, observer: Observer, messages: int,
                     rows: list[ScaleRow], notes: list[str], url: str) -> None:
    """The ingress and sender stay; the workers are started anew (all at once) for each N."""
    env = {"REDIS_URL": url}
    ingress, sender = bench.bot("ingress", fake.url, env), bench.bot("sender", fake.url, env)
    for n in (1, 2, 3):
        workers = [bench.bot("worker", fake.url, env) for _ in range(n)]
        row = ScaleRow(n)
        rows.append(row)
        why = await scale_ready(fake, observer, [ingress, sender, *workers], workers, n == 1)
        if why:
            notes.append(f"{n} workers: {why}")
        else:
            await measure(fake, observer, messages, row, (ingress, sender, workers),
                          FIRST_CHAT + n * 1_000_000)
        await asyncio.gather(*(worker.stop(10.0) for worker in workers))
    notes.append("shards held: per worker, read from the shard leases when the messages were "
                 "pushed (whoever holds a shard does its work)")


async def scale_ready(fake: FakeTelegram, observer: Observer, bots: list[Child],
                      workers: list[Child], warm: bool) -> str | None:
    """Every process up, (the first time) a warm-up answered, every shard held by one of these
    workers and nothing left over in the inbound streams; else what is wrong."""
    why = await wait_ready(bots, 120)
    if why is None and warm:
        result = await warm_up(fake, observer, bots)
        why = result if isinstance(result, str) else None
    if why is not None:
        return why
    pids = {w.pid for w in workers}
    if await shards_settled(observer, pids, LEASE * 2 + 10):
        return None
    return "the shards were not all taken by the new workers in time"


async def shards_settled(observer: Observer, pids: set[int], timeout: float) -> bool:
    """True once every shard is held by one of `pids`, no holder changed for STABLE seconds
    (the workers have spread the shards, if they do) and nothing waits in the inbound
    streams."""
    deadline = now() + timeout
    last: list[int | None] = []
    since = now()
    while now() < deadline:
        holders = await observer.shard_holders()
        if holders != last:
            last, since = holders, now()
        if now() - since >= STABLE and all(h in pids for h in holders) \
                and await observer.backlog(outbox=False) == 0:
            return True
        await asyncio.sleep(0.2)
    return False


async def measure(fake: FakeTelegram, observer: Observer, messages: int, row: ScaleRow,
                  procs: tuple[Child, Child, list[Child]], first_chat: int) -> None:
    """Push `messages` at once; poll Redis every 50 ms for the stored and committed counts;
    the CPU each process used from the push until the last commit."""
    ingress, sender, workers = procs
    holders = await observer.shard_holders()
    row.shards = "+".join(str(sum(1 for h in holders if h == w.pid)) for w in workers)
    base = await observer.counts() or (0, 0)
    everyone = (ingress, sender, *workers)
    cpu = {c.pid: c.cpu() for c in everyone}
    start = now()
    for number in range(messages):
        fake.push_update(fake.text_update(first_chat + number, TEXTS[number % len(TEXTS)]))
    stored_at = committed_at = None
    while now() < start + 60 and committed_at is None:
        await asyncio.sleep(0.05)
        counts = await observer.counts()
        if counts is not None and stored_at is None and counts[0] - base[0] >= messages:
            stored_at = now()
        if counts is not None and counts[1] - base[1] >= messages:
            committed_at = now()
    end = committed_at or now()
    used = {c.pid: c.cpu() - cpu[c.pid] for c in everyone}
    row.committed_per_s = f"{messages / (end - start):.0f}" if committed_at else "timed out"
    row.stored_in = f"{stored_at - start:.2f} s" if stored_at else "timed out"
    row.committed_in = f"{end - start:.2f} s" if committed_at else "timed out (60 s)"
    row.worker_cpu = "+".join(f"{used[w.pid]:.1f}" for w in workers)
    row.ingress_cpu, row.sender_cpu = f"{used[ingress.pid]:.1f}", f"{used[sender.pid]:.1f}"
    window = max(end - start, 5.0)  # at least 5 s: the sender's first burst would inflate it
    await asyncio.sleep(max(0.0, start + window - now()))
    sent = sum(1 for c in fake.calls_of("sendMessage") if c.ok and start <= c.at < start + window)
    row.answers_per_s = f"{sent / window:.1f}"


# --- main ------------------------------------------------------------------------------------
SCENARIOS = ("kill", "redis", "sentinel", "scale")


async def run(bench: Bench, scenarios: Sequence[str], messages: int) -> int:
    """The chosen scenarios in turn; one that fails is reported and the others still run."""
    watcher = asyncio.create_task(bench.children.watch())
    failed = 0
    try:
        for name in scenarios:
            started = now()
            try:
                if name == "scale":
                    await scenario_scale(bench, messages)
                else:
                    await {"kill": scenario_kill, "redis": scenario_redis,
                           "sentinel": scenario_sentinel}[name](bench)
            except Exception:
                failed += 1
                print(f"{name}: the bench failed (not the bot):", flush=True)
                traceback.print_exc()
            finally:
                await bench.children.stop_all()
            print(f"({name} took {now() - started:.0f} s)\n", flush=True)
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        await bench.children.stop_all()
    return failed


def pretrain(directory: Path) -> Path:
    """Train (or load) the NLU model once into the shared cache, before any bot starts, so
    the processes load it instead of training it side by side."""
    cache_dir: Path = Settings.model_fields["cache_dir"].default
    started = now()
    load_brain(Settings(_env_file=None, cache_dir=cache_dir,  # type: ignore[call-arg]
                        data_dir=directory / "bench"))
    print(f"NLU model ready in {now() - started:.1f} s (cache {cache_dir})", flush=True)
    return cache_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--scenario", choices=[*SCENARIOS, "all"], default="all")
    parser.add_argument("--customers", type=int, default=200)
    parser.add_argument("--rate", type=float, default=40.0)
    parser.add_argument("--messages", type=int, default=2000,
                        help="messages pushed per row of the scale scenario")
    args = parser.parse_args()
    if args.customers < 1 or args.rate <= 0 or args.messages < 1:
        parser.error("--customers, --rate and --messages must be positive")
    print(speed_line(), flush=True)
    scenarios = SCENARIOS if args.scenario == "all" else (args.scenario,)
    with tempfile.TemporaryDirectory(prefix="chaos-") as tmp:
        children = Children(Path(tmp))
        try:
            bench = Bench(Path(tmp), children, pretrain(Path(tmp)), args.customers, args.rate)
            failed = asyncio.run(run(bench, scenarios, args.messages))
        except KeyboardInterrupt:
            print("interrupted: every process the bench started is stopped", file=sys.stderr)
            raise SystemExit(130) from None
        finally:
            children.kill_all()
    if failed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
