"""The human handoff, measured: how fast a card reaches the desk, how many claims Redis takes,
and a burst of 300 handoffs into one desk under Telegram's per-group limit.

    python -m bench.handoff [--count 1000] [--rate 50] [--burst 300] [--scale 60]

1. Latency: customers ask for a person ("позовите оператора"); from the update being pushed at
   the fake Bot API to the customer's card arriving there (a topic is created first). The
   fake runs in its own process; the figure includes two loopback HTTP hops, so it is an upper
   bound of the bot's internal time. The desk's group limit is lifted for this part only.
2. Claims per second against Redis (the claim Lua script, contended by two operators each).
3. Burst: `--burst` handoffs within one minute into one desk, with the fake enforcing 20
   messages per minute per group. Time is compressed `--scale` times for the desk's pacing and
   the fake's limits alike, so the 15 minutes it takes run in 15 seconds; the figure printed is
   in uncompressed time. Angry customers (priority high) arrive last and must jump the queue.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from bench.fakeproc import FakeTelegramProcess
from bench.handoff_claims import claims_per_second
from bench.machine import speed_line
from bots.runtime import Runtime, Tuning, load_brain
from bots.settings import Settings, load_settings
from bots.telegram.sender import SendLimits
from bots.turns import Brain
from fakes.telegram import FakeTelegram
from handoff.embedded_redis import EmbeddedRedis, free_port
from handoff.keys import Keys
from handoff.scripts import Scripts

TOKEN = "123456:BENCH-token"
DESK = -1009999999999
ANGRY = "это безобразие, верните деньги немедленно"
POLITE = "позовите оператора"


class ScaledClock:
    """Time running `factor` times faster, for the desk's pacing and the fake's limits."""

    def __init__(self, factor: float) -> None:
        self.factor = factor
        self._start = time.monotonic()

    def now(self) -> float:
        return self._start + (time.monotonic() - self._start) * self.factor

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds / self.factor)


async def latency(settings: Settings, brain: Brain, count: int, rate: float) -> None:
    fake = FakeTelegramProcess(TOKEN)
    fake.add_group(DESK)
    configured = Settings(_env_file=None, **{  # type: ignore[call-arg]
        **settings.model_dump(), "telegram_api_url": fake.url, "operator_chat_id": DESK})
    tuning = Tuning(send_limits=SendLimits(overall_rate=10_000, per_group_per_minute=1e7,
                                           desk_per_second=1e7))
    runtime = await Runtime.open(configured, brain=brain, tuning=tuning)
    stop = asyncio.Event()
    task = asyncio.create_task(runtime.run_telegram(stop, {"ingress", "worker", "sender"}))
    try:
        await fake.handoffs(20, 20, DESK)  # warm-up
        whole, own, told = await fake.handoffs(rate, count, DESK)
        print(f"handoff latency, {count} customers asking for a person at {rate:.0f}/s:")
        print(f"  update pushed -> card at the fake:  cards {whole.answered}/{whole.sent}  "
              f"p50 {whole.p50_ms:.2f} ms  p99 {whole.p99_ms:.2f} ms  max {whole.max_ms:.2f} ms")
        print(f"  internal (the fake's own time out): p50 {own.p50_ms:.2f} ms  "
              f"p99 {own.p99_ms:.2f} ms  max {own.max_ms:.2f} ms")
        print(f"  the customer told their place:     told {told.answered}/{told.sent}  "
              f"p50 {told.p50_ms:.2f} ms  p99 {told.p99_ms:.2f} ms  max {told.max_ms:.2f} ms",
              flush=True)
    finally:
        stop.set()
        await task
        await _clean(runtime, settings.redis_prefix)
        await runtime.close()
        fake.close()


async def claims(settings: Settings) -> None:
    runtime_keys = Keys(settings.redis_prefix + "claims:")
    assert settings.redis_url is not None
    redis = aioredis.Redis.from_url(settings.redis_url, decode_responses=True)
    try:
        figures = await claims_per_second(redis, runtime_keys, Scripts(redis))
        print("claims against Redis: " + "  ".join(
            f"{name} {value:,.1f}" if isinstance(value, float) else f"{name} {value}"
            for name, value in figures.items()), flush=True)
    finally:
        async for key in redis.scan_iter(match=f"{runtime_keys.prefix}*", count=1000):
            await redis.delete(key)
        await redis.aclose()


async def burst(settings: Settings, brain: Brain, count: int, scale: float) -> None:
    clock = ScaledClock(scale)
    async with FakeTelegram(token=TOKEN, enforce_limits=True, clock=clock.now) as fake:
        fake.add_group(DESK, "Поддержка", is_forum=True)
        configured = Settings(_env_file=None, **{  # type: ignore[call-arg]
            **settings.model_dump(), "telegram_api_url": fake.url, "operator_chat_id": DESK})
        tuning = Tuning(desk_clock=clock.now, desk_sleep=clock.sleep)
        runtime = await Runtime.open(configured, brain=brain, tuning=tuning)
        stop = asyncio.Event()
        task = asyncio.create_task(runtime.run_telegram(stop, {"ingress", "worker", "sender"}))
        try:
            await _burst(fake, runtime, clock, count)
        finally:
            stop.set()
            await task
            await _clean(runtime, settings.redis_prefix)
            await runtime.close()


async def _burst(fake: FakeTelegram, runtime: Runtime, clock: ScaledClock, count: int) -> None:
    angry = count // 6
    start = clock.now()
    for number in range(count):  # all within one (compressed) minute; the angry ones last
        while clock.now() < start + 60 * number / count:
            await asyncio.sleep(0.001)
        text = ANGRY if number >= count - angry else POLITE
        fake.push_update(fake.text_update(20_000_000 + number, text, first_name=f"B{number}"))
    cards: list[dict[str, Any]] = []
    deadline = time.monotonic() + 60 * 30 / clock.factor + 30
    while time.monotonic() < deadline:
        cards = [m for m in _all_desk_messages(fake) if "👤 B" in m.get("text", "")]
        if len(cards) >= count:
            break
        await asyncio.sleep(0.05)
    elapsed = clock.now() - start
    high = [i for i, card in enumerate(cards) if "приоритет: высокий" in card.get("text", "")]

    def told() -> int:
        return sum(1 for n in range(count) if any(
            "в очереди" in m.get("text", "") for m in fake.messages_to(20_000_000 + n)))

    notices, until = told(), time.monotonic() + 60
    while notices < count and time.monotonic() < until:  # customers' replies go at 30/s
        await asyncio.sleep(0.2)
        notices = told()
    print(f"burst of {count} handoffs within one minute into one desk "
          f"(20 msg/min per group, time compressed x{clock.factor:.0f}):")
    print(f"  cards delivered {len(cards)}/{count}, customers told their place {notices}/{count}, "
          f"429s from the fake {len(fake.limit_violations)}")
    print(f"  last card after {elapsed / 60:.1f} min; {len(high)} angry customers' cards at "
          f"positions {high[0] + 1 if high else '-'}..{high[-1] + 1 if high else '-'} "
          f"(they asked last)", flush=True)


def _all_desk_messages(fake: FakeTelegram) -> list[dict[str, Any]]:
    """Every bot message in the desk, over all topics, in the order they were sent."""
    found = []
    for call in fake.calls_of("sendMessage"):
        if call.params.get("chat_id") == DESK and call.ok:
            found.append({"text": call.params.get("text", "")})
    return found


async def _clean(runtime: Runtime, prefix: str) -> None:
    async for key in runtime.redis.scan_iter(match=f"{prefix}*", count=1000):
        await runtime.redis.delete(key)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--burst", type=int, default=300)
    parser.add_argument("--scale", type=float, default=20.0)
    args = parser.parse_args()
    print(speed_line(), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        base = load_settings()
        server = None if base.redis_url else EmbeddedRedis(Path(tmp) / "r", persist=False).start()
        try:
            settings = load_settings(
                _env_file=None, redis_url=base.redis_url or (server.url if server else None),
                redis_prefix=f"benchh{int(time.time())}:", telegram_bot_token=TOKEN,
                http_port=free_port(), telegram_poll_timeout=5, log_level="WARNING",
                cache_dir=base.cache_dir, data_dir=Path(tmp),
            )
            brain = load_brain(settings)
            asyncio.run(latency(settings, brain, args.count, args.rate))
            asyncio.run(claims(settings))
            asyncio.run(burst(settings, brain, args.burst, args.scale))
        finally:
            if server:
                server.stop()


if __name__ == "__main__":
    main()
