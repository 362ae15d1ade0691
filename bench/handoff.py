"""The human handoff, measured: how fast a card reaches the desk, how many claims Redis takes,
and a burst of 300 handoffs into one desk under Telegram's per-group limit.

    python -m bench.handoff [--count 1000] [--rate 50] [--burst 300] [--scale 60]

1. Latency: customers ask for a person ("позовите оператора"); from the update being pushed at
   the fake Bot API to the customer's card arriving there (a topic is created first). The
   fake runs in its own process; the figure includes two loopback HTTP hops, so it is an upper
   bound of the bot's internal time. The desk's group limit is lifted for this part only.
2. Claims per second against Redis (the claim Lua script, contended by two operators each).
   Beside it, the same with Telegram's limits on (what a desk sees in production): `--paced`
   customers, one every 7 s, the rate one group's budget allows (a handoff costs two posts).
3. Burst: `--burst` handoffs within one minute, with the fake enforcing 20 posts per minute
   per group and per bot (topics and edits count, as Telegram counts them): into one desk by
   the main bot alone, with 2 and 5 relay bots, and into two desk groups (routed by the stable
   hash), each with and without two texts per waiting customer. Time is
   compressed `--scale` times for the desk's pacing and the fake's limits alike, so the half
   hour it takes runs in a minute and a half; the figure printed is in uncompressed time. Angry
   customers (priority high) arrive last and must jump the queue. "Desk posts per handoff"
   counts every call that posted into the group (topics, cards, edits, the summary).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from bench.chaos import print_rows
from bench.fakeproc import FakeTelegramProcess, percentile
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
DESKS = (DESK, -1009999999998)  # the burst with two desk groups
ANGRY = "это безобразие, верните деньги немедленно"
PACED_EVERY = 7.0  # seconds between handoffs: a group's 20 posts a minute, two per handoff
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
    task = asyncio.create_task(runtime.run(stop, {"ingress", "worker", "sender"}))
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


async def paced_latency(settings: Settings, brain: Brain, count: int) -> None:
    """Handoffs at a rate one group's budget allows, Telegram's limits on: push -> card."""
    async with FakeTelegram(token=TOKEN, enforce_limits=True) as fake:
        fake.add_group(DESK, "Поддержка", is_forum=True)
        configured = Settings(_env_file=None, **{  # type: ignore[call-arg]
            **settings.model_dump(), "telegram_api_url": fake.url, "operator_chat_id": DESK})
        runtime = await Runtime.open(configured, brain=brain)
        stop = asyncio.Event()
        task = asyncio.create_task(runtime.run(stop, {"ingress", "worker", "sender"}))
        try:
            pushed = {}
            for number in range(count):
                update = fake.push_update(fake.text_update(
                    30_000_000 + number, POLITE, first_name=f"L{number}"))
                pushed[f"👤 L{number} "] = fake.pushed_at[update["update_id"]]
                await asyncio.sleep(PACED_EVERY)
            await asyncio.sleep(5)
            arrived = {}
            for call in fake.calls_of("sendMessage"):
                text = str(call.params.get("text", ""))
                for name, at in pushed.items():
                    if name in text and call.ok and name not in arrived:
                        arrived[name] = (call.at - at) * 1000
            took = sorted(arrived.values()) or [float("nan")]
            print(f"handoff latency with Telegram's limits on, {count} customers, one every "
                  f"{PACED_EVERY:g} s: cards {len(arrived)}/{count}  "
                  f"p50 {percentile(took, 0.5):.0f} ms  max {max(took):.0f} ms  "
                  f"429s {len(fake.limit_violations)}", flush=True)
        finally:
            stop.set()
            await task
            await _clean(runtime, settings.redis_prefix)
            await runtime.close()


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


RELAY_TOKENS = [f"{700_000 + n}:BENCH-relay-{n}-token" for n in range(1, 6)]
WRITES = ["номер заказа 1234567", "жду ответа уже неделю"]  # what a waiting customer adds


async def burst(settings: Settings, brain: Brain, count: int, scale: float, *,
                relays: int, writes: int, desks: int = 1) -> dict[str, str]:
    clock = ScaledClock(scale)
    groups = DESKS[:desks]
    async with FakeTelegram(token=TOKEN, enforce_limits=True, clock=clock.now) as fake:
        for number, group in enumerate(groups):
            fake.add_group(group, f"Поддержка {number + 1}", is_forum=True)
        for number, token in enumerate(RELAY_TOKENS[:relays]):
            fake.add_bot(token, f"bench_relay{number + 1}_bot", groups=tuple(groups))
        configured = Settings(_env_file=None, **{  # type: ignore[call-arg]
            **settings.model_dump(), "telegram_api_url": fake.url, "operator_chat_id": DESK,
            "operator_chat_ids": ",".join(f"desk{n + 1}={g}" for n, g in enumerate(groups)),
            "desk_relay_tokens": ",".join(RELAY_TOKENS[:relays]) or None})
        tuning = Tuning(desk_clock=clock.now, desk_sleep=clock.sleep)
        runtime = await Runtime.open(configured, brain=brain, tuning=tuning)
        stop = asyncio.Event()
        task = asyncio.create_task(runtime.run(stop, {"ingress", "worker", "sender"}))
        try:
            return {"desks": str(desks), **await _burst(fake, clock, count, relays, writes)}
        finally:
            stop.set()
            await task
            await _clean(runtime, settings.redis_prefix)
            await runtime.close()


async def _burst(fake: FakeTelegram, clock: ScaledClock, count: int, relays: int,
                 writes: int) -> dict[str, str]:
    angry = count // 6
    start = clock.now()
    for number in range(count):  # all within one (compressed) minute; the angry ones last
        while clock.now() < start + 60 * number / count:
            await asyncio.sleep(0.001)
        text = ANGRY if number >= count - angry else POLITE
        chat = 20_000_000 + number
        fake.push_update(fake.text_update(chat, text, first_name=f"B{number}"))
        for line in WRITES[:writes]:
            fake.push_update(fake.text_update(chat, f"{line} (B{number})",
                                              first_name=f"B{number}"))
    expected = count * (1 + writes)
    cards: list[dict[str, Any]] = []
    last_card = last_text = float("nan")
    deadline = time.monotonic() + 60 * 60 / clock.factor + 30
    while time.monotonic() < deadline:
        posted = _all_desk_messages(fake)
        if len(cards) < count:
            cards = [m for m in posted if "👤 B" in m.get("text", "")]
            last_card = clock.now() - start
        texts = sum(m.get("text", "").count("(B") for m in posted
                    if "👤 B" not in m.get("text", ""))
        if texts < count * writes:
            last_text = clock.now() - start
        if len(cards) >= count and texts >= count * writes:
            break
        await asyncio.sleep(0.05)
    high = [i for i, card in enumerate(cards) if "приоритет: высокий" in card.get("text", "")]
    posts = _desk_posts(fake)
    by_relays = sum(1 for method in POSTING for c in fake.calls_of(method)
                    if c.ok and c.bot in fake.relay_ids())
    return {
        "relays": str(relays), "customer texts": str(writes),
        "cards": f"{len(cards)}/{count}",
        "texts in topics": f"{texts}/{count * writes}" if writes else "-",
        "last card": f"{last_card / 60:.1f} min",
        "last text": f"{last_text / 60:.1f} min" if writes else "-",
        "angry cards at": f"{high[0] + 1 if high else '-'}..{high[-1] + 1 if high else '-'}",
        "posts per handoff": f"{sum(posts.values()) / count:.2f}",
        "by relays": str(by_relays),
        "429s": str(len(fake.limit_violations)),
        "lost": str(expected - len(cards) - texts) if writes else str(count - len(cards)),
    }


def print_burst(rows: list[dict[str, str]], count: int, scale: float) -> None:
    print_rows(f"burst of {count} handoffs within one minute (Telegram's limits "
               f"on, per bot; time compressed x{scale:.0f}, figures in real minutes; the last "
               f"sixth are angry customers, who must jump the queue):",
               [list(row.values()) for row in rows], list(rows[0]))


# Calls that post into the group (each a message or a service message Telegram counts).
POSTING = {"sendMessage": "messages", "copyMessage": "messages", "sendPhoto": "messages",
           "sendDocument": "messages", "createForumTopic": "topics created",
           "editForumTopic": "topic renames", "closeForumTopic": "topic closes",
           "reopenForumTopic": "topic reopens", "editMessageText": "edits",
           "editMessageReplyMarkup": "edits"}


def _desk_posts(fake: FakeTelegram) -> dict[str, int]:
    counted: dict[str, int] = {}
    for method, name in POSTING.items():
        done = [c for c in fake.calls_of(method) if c.ok and c.params.get("chat_id") in DESKS]
        if done:
            counted[name] = counted.get(name, 0) + len(done)
    return counted


def _all_desk_messages(fake: FakeTelegram) -> list[dict[str, Any]]:
    """Every bot message in the desk, over all topics, in the order they were sent."""
    found = []
    for call in fake.calls_of("sendMessage") + fake.calls_of("copyMessage"):
        if call.params.get("chat_id") in DESKS and call.ok:
            text = call.params.get("text", "")
            if call.method == "copyMessage":  # the text of the customer's message it copied
                source = fake.chat(call.params["from_chat_id"]).messages.get(
                    int(call.params["message_id"]), {})
                text = source.get("text", "")
            found.append({"text": text, "at": call.at})
    found.sort(key=lambda message: message["at"])
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
    parser.add_argument("--paced", type=int, default=8)
    parser.add_argument("--parts", default="latency,paced,claims,burst",
                        help="which parts to run, comma-separated")
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
            parts = set(args.parts.split(","))
            if "latency" in parts:
                asyncio.run(latency(settings, brain, args.count, args.rate))
            if "paced" in parts:
                asyncio.run(paced_latency(settings, brain, args.paced))
            if "claims" in parts:
                asyncio.run(claims(settings))
            if "burst" not in parts:
                return
            rows = [asyncio.run(burst(settings, brain, args.burst, args.scale, relays=relays,
                                      writes=writes, desks=desks))
                    for writes in (0, 2) for desks, relays in ((1, 0), (1, 2), (1, 5), (2, 0))]
            print_burst(rows, args.burst, args.scale)
        finally:
            if server:
                server.stop()


if __name__ == "__main__":
    main()
