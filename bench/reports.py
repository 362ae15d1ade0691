"""The team's report, measured: how long `GET /api/v1/reports/operators` takes to read a month
of 100,000 handled conversations.

    python -m bench.reports [--conversations 100000] [--operators 40] [--days 30]

The counters are written by the same Lua functions the transition scripts call
(handoff/lua/lib_report.lua, through handoff/lua/bench_report.lua): each conversation is
queued, taken, answered three times, closed and rated at times spread over the period, by one
of the operators, on one of three channels, with up to two of five tags. Then the report of
the whole period (and of one day) is read as the API reads it, several times; the figures are
the median and the slowest read. A report reads one hash per hour, so its time follows the
period's length and the team's size, not the traffic.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

import redis.asyncio as aioredis

from bench.machine import speed_line
from bots.settings import load_settings
from handoff.embedded_redis import EmbeddedRedis
from handoff.keys import Keys
from handoff.reports import HOUR_DAYS, ReportPeriod, read_report, report_args
from handoff.scripts import Scripts

CHANNELS = ("tg", "vk", "web")
TAGS = ("refund", "delivery", "vip", "payments", "returns")
BATCH = 1000
READS = 7


async def fill(client: aioredis.Redis, keys: Keys, count: int, operators: int, end: float,
               days: int) -> float:
    """Write `count` conversations' counters; returns the seconds it took."""
    rng = random.Random(7)
    script = Scripts(client)["bench_report"]
    started = time.perf_counter()
    for first in range(0, count, BATCH):
        async with client.pipeline(transaction=False) as pipe:
            for number in range(first, min(first + BATCH, count)):
                queued = end - rng.uniform(0, days * 86400)
                claimed = queued + rng.expovariate(1 / 90)
                replies = [claimed + rng.expovariate(1 / 45)]
                for _ in range(2):
                    replies.append(replies[-1] + rng.expovariate(1 / 120))
                args = {
                    "conv": f"{rng.choice(CHANNELS)}:{number}",
                    "op": f"op{rng.randrange(operators)}",
                    "tags": ",".join(rng.sample(TAGS, rng.randrange(3))),
                    "queued": queued, "claimed": claimed, "replies": replies,
                    "closed": replies[-1] + rng.expovariate(1 / 60),
                    "score": rng.choice((3, 4, 5, 5, 5)), "parallel": rng.randint(1, 5),
                    "report": report_args(keys),
                }
                await script(keys=[], args=[json.dumps(args)], client=pipe)
            await pipe.execute()
    return time.perf_counter() - started


async def reads(client: aioredis.Redis, keys: Keys, period: ReportPeriod) -> tuple[float, float,
                                                                                    int]:
    timings, taken = [], 0
    for _ in range(READS):
        started = time.perf_counter()
        report = await read_report(client, keys, period, time.time())
        timings.append(time.perf_counter() - started)
        taken = report.team.counts["taken"]
    return statistics.median(timings), max(timings), taken


async def run(url: str, count: int, operators: int, days: int) -> None:
    keys = Keys(f"benchr{int(time.time())}:")
    end = time.time()
    async with aioredis.from_url(url, decode_responses=True) as client:
        seconds = await fill(client, keys, count, operators, end, days)
        print(f"written: {count} conversations by {operators} operators over {days} days, "
              f"in {seconds:.1f} s ({count / seconds:.0f} conversations/s through the scripts)")
        month = ReportPeriod.parse("30d", None, None, "Europe/Moscow", end)
        day = ReportPeriod.parse("today", None, None, "Europe/Moscow", end)
        for label, period in (("30 days", month), ("today", day)):
            median, slowest, taken = await reads(client, keys, period)
            print(f"report of {label}: {taken} conversations taken, read in "
                  f"{median * 1000:.0f} ms median, {slowest * 1000:.0f} ms slowest of {READS}")
        read = month.counter_keys(keys, end)
        hour_keys = [keys.report_hour(h) for h in month.hours]
        day_keys = [keys.report_day(d) for d in range(int(month.start // 86400),
                                                      int(month.end // 86400) + 1)]
        print(f"hashes read for 30 days: {len(read)} (days inside, hours at the edges); "
              f"memory: {await _memory(client, hour_keys) / 1e6:.1f} MB of hourly counters (kept "
              f"{HOUR_DAYS} days), {await _memory(client, day_keys) / 1e6:.1f} MB of daily ones")


async def _memory(client: aioredis.Redis, names: list[str]) -> int:
    async with client.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.memory_usage(name)
        return sum(n or 0 for n in await pipe.execute())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--operators", type=int, default=40)
    parser.add_argument("--days", type=int, default=30)
    args = parser.parse_args()
    print(speed_line(), flush=True)
    base = load_settings()
    with tempfile.TemporaryDirectory() as tmp:
        server = None if base.redis_url else EmbeddedRedis(Path(tmp) / "r", persist=False).start()
        try:
            url = base.redis_url or (server.url if server else "")
            asyncio.run(run(url, args.conversations, args.operators, args.days))
        finally:
            if server is not None:
                server.stop()


if __name__ == "__main__":
    main()
