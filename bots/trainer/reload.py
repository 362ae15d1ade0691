"""Hot reload of flows and NLU data in every process, without dropping a message.

A request (desk `/reload`, SIGHUP, `supportbot reload`) bumps a version in Redis and publishes
it. Each worker process has a `BrainReloader`: woken by the publication, or by its own poll of
the version (pub/sub drops messages while a connection is down), it validates the files, builds
the new brain off the event loop (training only when the data changed: `nlu.cache`) and swaps
it in one assignment. Turns in flight finish with the brain they started with
(`TurnDecider.decide` takes one reference per turn); nothing waits or is dropped. A file with
errors keeps the running brain; the problems (file:line) go to the log and to the desk topic
the request came from, reported once however many processes found them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from redis.asyncio import Redis

from bots.rules.files import rules_problems
from bots.rules.loader import RulesError
from bots.settings import Settings
from bots.turns import Brain
from flows.loader import FlowError, load_flows
from flows.validate import validate_flows
from handoff.keys import Keys
from nlu.data import DataError, load_training_data
from nlu.types import Problem
from nlu.validate import check_training_data

log = logging.getLogger(__name__)

SHOWN_PROBLEMS = 10  # problems listed in the desk; the log gets all of them
REPORTED_TTL = 3600

BrainLoader = Callable[[Settings], Brain]
Report = Callable[[str, str], Awaitable[None]]  # (desk conversation, text)


@dataclass(frozen=True, slots=True)
class Outcome:
    ok: bool
    problems: list[Problem] = field(default_factory=list)
    seconds: float = 0.0
    intents: int = 0

    def text(self) -> str:
        if self.ok:
            return (f"♻️ Сценарии и NLU перезагружены за {self.seconds:.1f} с "
                    f"({self.intents} интентов).")
        lines = [f"⚠️ Не перезагружено, работает прежняя версия. Ошибки "
                 f"({len(self.problems)}):"]
        lines += [str(problem) for problem in self.problems[:SHOWN_PROBLEMS]]
        if len(self.problems) > SHOWN_PROBLEMS:
            lines.append(f"… и ещё {len(self.problems) - SHOWN_PROBLEMS}")
        return "\n".join(lines)


def check_files(settings: Settings) -> list[Problem]:
    """The errors `supportbot validate` would report for these files (warnings pass)."""
    problems: list[Problem] = []
    try:
        data = load_training_data(settings.nlu_data_dir)
    except DataError as exc:
        return exc.problems
    problems += check_training_data(data)
    try:
        flows = load_flows(settings.flows_dir)
    except FlowError as exc:
        return problems + exc.problems
    sources = {name: (examples[0].file, examples[0].line)
               for name, examples in data.intents.items() if examples}
    problems += validate_flows(flows, set(data.intents), sources)
    problems += rules_problems(settings, set(data.intents))
    return [problem for problem in problems if problem.severity == "error"]


async def request_reload(redis: Redis, keys: Keys, *, by: str, reply_to: str = "") -> int:
    """Ask every process to reload; returns the request's version."""
    version = int(await redis.hincrby(keys.reload(), "version", 1))
    await redis.hset(keys.reload(), mapping={"by": by, "reply_to": reply_to,
                                             "at": str(time.time())})
    await redis.publish(keys.reload_channel(), str(version))
    log.info("reload %d requested by %s", version, by)
    return version


class BrainReloader:
    def __init__(
        self, redis: Redis, keys: Keys, settings: Settings, load: BrainLoader,
        swap: Callable[[Brain], None], report: Report, *, poll: float = 5.0,
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._settings = settings
        self._load = load
        self._swap = swap
        self._report = report
        self._poll = poll
        self._lock = asyncio.Lock()
        self.seen = 0  # the last request version acted on
        self.reloads = 0  # brains swapped in (for tests and logs)

    async def start(self) -> None:
        """A process that starts has just loaded the files: earlier requests are done."""
        self.seen = await self._version()

    async def run(self, stop: asyncio.Event) -> None:
        await self.start()
        pubsub = self._redis.pubsub()
        await pubsub.subscribe(self._keys.reload_channel())
        try:
            while not stop.is_set():
                with contextlib.suppress(asyncio.TimeoutError):
                    await pubsub.get_message(ignore_subscribe_messages=True, timeout=self._poll)
                await self.check()
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()  # type: ignore[no-untyped-call,unused-ignore]  # typed in redis 7

    async def check(self) -> Outcome | None:
        """Reload if a request came since the last one seen; the outcome, None if none."""
        version = await self._version()
        if version <= self.seen:
            return None
        self.seen = version
        outcome = await self.reload()
        await self._tell(version, outcome)
        return outcome

    async def reload(self) -> Outcome:
        async with self._lock:  # two requests in a row build one brain after the other
            started = time.perf_counter()
            problems = await asyncio.to_thread(check_files, self._settings)
            if problems:
                for problem in problems:
                    log.error("reload refused: %s", problem)
                return Outcome(False, problems)
            try:
                brain = await asyncio.to_thread(self._load, self._settings)
            except (DataError, FlowError, RulesError) as exc:  # the files changed meanwhile
                return Outcome(False, list(exc.problems))
            self._swap(brain)
            self.reloads += 1
            outcome = Outcome(True, seconds=time.perf_counter() - started,
                              intents=len(brain.nlu.known_intents()))
            log.info("reloaded flows and NLU in %.2f s", outcome.seconds)
            return outcome

    async def _tell(self, version: int, outcome: Outcome) -> None:
        kind = "ok" if outcome.ok else "error"
        first = await self._redis.set(self._keys.reload_reported(version, kind), "1", nx=True,
                                      ex=REPORTED_TTL)
        reply_to = await self._redis.hget(self._keys.reload(), "reply_to")
        if first and reply_to:
            await self._report(str(reply_to), outcome.text())

    async def _version(self) -> int:
        raw = await self._redis.hget(self._keys.reload(), "version")
        return int(raw) if raw else 0
