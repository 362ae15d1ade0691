"""Pipeline latency: an update arriving at the (fake) Bot API -> the bot's reply reaching it.

    python -m bench.pipeline [--seconds 8] [--rates 50,200] [--no-search] [--channel vk|web]

Everything real but Telegram: aiogram, aiohttp, Redis (REDIS_URL or an embedded server), the
ingest stream, the worker, NLU + flows and the outbox sender. Every message comes from its own
chat, so Telegram's per-chat pacing never applies; the overall 30 msg/s budget is raised for the
run (it is Telegram's rule, not our latency) and the report says so.

`--channel web`: the chat widget's path, a visitor's message sent over the widget's WebSocket
-> the bot's reply arriving on that socket (clients in this process, one visitor per message;
the widget has no platform limit to raise).

`--channel vk`: the same for VK, an event in (Bots Long Poll of the fake VK API, served in this
process) -> the reply's messages.send reaching the fake, through the real vk_api. Every event
is a new customer, so each also costs a users.get (first contact); VK's 20 requests/s per token
is raised for the run, as is Telegram's overall budget.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.fakeproc import TEXTS, FakeTelegramProcess, Run, summarize
from bench.machine import speed_line
from bots.runtime import Runtime, Tuning, load_brain
from bots.settings import Settings, load_settings
from bots.telegram.sender import SendLimits
from bots.turns import Brain
from handoff.embedded_redis import EmbeddedRedis, free_port

TOKEN = "123456:BENCH-token"
TARGET_P99_MS = 50.0


async def bench(args: argparse.Namespace, settings: Settings, brain: Brain) -> None:
    fake = FakeTelegramProcess(TOKEN)
    configured = Settings(_env_file=None, **{  # type: ignore[call-arg]
        **settings.model_dump(), "telegram_api_url": fake.url})
    tuning = Tuning(send_limits=SendLimits(overall_rate=10_000))
    runtime = await Runtime.open(configured, brain=brain, tuning=tuning)
    stop = asyncio.Event()
    task = asyncio.create_task(runtime.run(stop, {"ingress", "worker", "sender"}))
    try:
        await fake.drive(50, 1.0)  # warm-up
        print("latency, update in -> reply out (each message from its own chat):")
        for rate in args.rates:
            cpu = time.process_time()
            run = await fake.drive(rate, args.seconds)
            per_message = (time.process_time() - cpu) / max(run.sent, 1) * 1000
            print(f"{run.line()}  bot CPU {per_message:.2f} ms/msg", flush=True)
        if args.search:
            best = await search(fake, args.seconds)
            print(f"highest sustained rate with p99 < {TARGET_P99_MS:.0f} ms: {best:.0f} msg/s")
    finally:
        stop.set()
        await task
        # The run's keys go: REDIS_URL may point at a server that is kept.
        async for key in runtime.redis.scan_iter(match=f"{settings.redis_prefix}*", count=1000):
            await runtime.redis.delete(key)
        await runtime.close()
        fake.close()


async def bench_vk(args: argparse.Namespace, settings: Settings, brain: Brain) -> None:
    from fakes.vk import FakeVk  # the fake's code lives with the tests

    vk = FakeVk()
    await vk.start()
    configured = Settings(_env_file=None, **{  # type: ignore[call-arg]
        **settings.model_dump(), "telegram_bot_token": None, "vk_token": vk.token,
        "vk_group_id": vk.group_id, "vk_api_url": vk.url, "vk_poll_wait": 1,
        "vk_requests_per_second": 10_000})
    runtime = await Runtime.open(configured, brain=brain)
    stop = asyncio.Event()
    task = asyncio.create_task(runtime.run(stop, {"ingress", "worker", "sender"}))
    try:
        await drive_vk(vk, 50, 1.0, 1)  # warm-up
        print("VK latency, event in -> messages.send out (each event a new customer):")
        for number, rate in enumerate(args.rates, 1):
            cpu = time.process_time()
            run = await drive_vk(vk, rate, args.seconds, number * 1_000_000)
            per_message = (time.process_time() - cpu) / max(run.sent, 1) * 1000
            print(f"{run.line()}  CPU (bot + fake) {per_message:.2f} ms/msg", flush=True)
    finally:
        stop.set()
        await task
        async for key in runtime.redis.scan_iter(match=f"{settings.redis_prefix}*", count=1000):
            await runtime.redis.delete(key)
        await runtime.close()
        await vk.close()


async def bench_web(args: argparse.Namespace, settings: Settings, brain: Brain) -> None:
    import aiohttp

    configured = Settings(_env_file=None, **{  # type: ignore[call-arg]
        **settings.model_dump(), "telegram_bot_token": None, "web_enabled": True})
    runtime = await Runtime.open(configured, brain=brain)
    stop = asyncio.Event()
    task = asyncio.create_task(runtime.run(stop, {"ingress", "worker", "sender"}))
    base = f"http://127.0.0.1:{configured.http_port}"
    try:
        limits = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=limits) as http:
            await _until_up(http, base)
            await drive_web(http, base, 20, 1.0)  # warm-up
            print("web latency, widget message sent -> bot reply on the socket "
                  "(each message a new visitor; clients in this process):")
            for rate in args.rates:
                cpu = time.process_time()
                run = await drive_web(http, base, rate, args.seconds)
                per_message = (time.process_time() - cpu) / max(run.sent, 1) * 1000
                print(f"{run.line()}  CPU (bot + clients) {per_message:.2f} ms/msg", flush=True)
    finally:
        stop.set()
        await task
        async for key in runtime.redis.scan_iter(match=f"{settings.redis_prefix}*", count=1000):
            await runtime.redis.delete(key)
        await runtime.close()


async def _until_up(http: Any, base: str) -> None:
    for _attempt in range(100):
        try:
            async with http.get(base + "/healthz"):
                return
        except OSError:
            await asyncio.sleep(0.1)
    raise RuntimeError("the bot's HTTP server did not start")


async def drive_web(http: Any, base: str, rate: float, seconds: float) -> Run:
    """Visitors connected first (a socket each, as pages with the widget open), then one
    message each at `rate`; latency = the first bot frame on that socket - the send."""
    total = int(rate * seconds)
    sockets = []
    for _number in range(total):
        async with http.post(base + "/widget/session", json={}) as response:
            answer = await response.json()
            if "token" not in answer:
                raise RuntimeError(f"the widget session was refused: {answer}")
            token = answer["token"]
        ws = await http.ws_connect(f"{base}/widget/ws?token={token}")
        await ws.send_json({"type": "hello", "after": "0"})
        sockets.append(ws)
    latencies: list[float] = []

    async def one(ws: Any, text: str, at: float) -> None:
        await asyncio.sleep(max(0.0, at - time.perf_counter()))
        sent = time.perf_counter()
        await ws.send_json({"type": "message", "id": f"m{int(sent * 1e6)}", "text": text})
        try:
            await asyncio.wait_for(first_reply(ws), 15)
            latencies.append((time.perf_counter() - sent) * 1000)
        except asyncio.TimeoutError:
            return
        finally:
            await ws.close()

    async def first_reply(ws: Any) -> None:
        async for message in ws:
            frame = message.json()
            if frame.get("type") == "message" and frame.get("from") == "bot":
                return

    start = time.perf_counter() + 0.2
    await asyncio.gather(*(one(ws, TEXTS[n % len(TEXTS)], start + n / rate)
                           for n, ws in enumerate(sockets)))
    return summarize(rate, total, latencies)


async def drive_vk(vk: Any, rate: float, seconds: float, first_user: int) -> Run:
    """Each event from its own user; latency = the first messages.send to them - push time."""
    total = int(rate * seconds)
    pushed: dict[int, float] = {}
    start = time.perf_counter()
    for number in range(total):
        delay = start + number / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        user = first_user + number
        vk.push(vk.message_new(user, TEXTS[number % len(TEXTS)]))
        pushed[user] = time.perf_counter()
    first: dict[int, float] = {}
    deadline = time.perf_counter() + 15
    while time.perf_counter() < deadline and len(first) < total:
        await asyncio.sleep(0.05)
        for sent in vk.state.sent:
            if sent.peer_id in pushed and sent.peer_id not in first:
                first[sent.peer_id] = sent.at
    return summarize(rate, total, [(first[u] - pushed[u]) * 1000 for u in first])


async def search(fake: FakeTelegramProcess, seconds: float) -> float:
    best = 0.0
    print(f"searching the highest rate with p99 < {TARGET_P99_MS:.0f} ms:")
    for rate in (100, 150, 200, 300, 400, 500, 650, 800, 1000):
        run = await fake.drive(rate, seconds / 2)
        print(run.line(), flush=True)
        if run.answered < run.sent or run.p99_ms >= TARGET_P99_MS:
            break
        best = rate
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rates", type=lambda s: [float(x) for x in s.split(",")],
                        default=[50.0, 200.0])
    parser.add_argument("--no-search", dest="search", action="store_false")
    parser.add_argument("--channel", choices=["telegram", "vk", "web"], default="telegram")
    args = parser.parse_args()
    print(speed_line(), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        server = None
        base = load_settings()
        if base.redis_url is None:
            server = EmbeddedRedis(Path(tmp) / "redis", persist=False).start()
        try:
            settings = load_settings(
                _env_file=None, redis_url=base.redis_url or (server.url if server else None),
                redis_prefix=f"bench{int(time.time())}:", telegram_bot_token=TOKEN,
                http_port=free_port(), telegram_poll_timeout=5, log_level="WARNING",
                cache_dir=base.cache_dir, data_dir=Path(tmp),
            )
            started = time.perf_counter()
            brain = load_brain(settings)
            print(f"brain ready in {time.perf_counter() - started:.2f} s "
                  f"(redis: {'REDIS_URL' if base.redis_url else 'embedded'})")
            run = {"vk": bench_vk, "web": bench_web}.get(args.channel, bench)
            asyncio.run(run(args, settings, brain))
        finally:
            if server:
                server.stop()


if __name__ == "__main__":
    main()
