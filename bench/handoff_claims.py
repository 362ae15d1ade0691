"""Claim operations per second against Redis: the claim script under contention.

    python -m bench.handoff_claims [--operators 200] [--conversations 5000] [--contenders 2]
                                   [--concurrency 64]

Queues `conversations` conversations, gives `operators` online operators enough capacity for all
of them, then fires `contenders` claims per conversation from random operators at once
(asyncio.gather over a pool of `concurrency` connections): one wins, the others are refused
`taken` (or `capacity`). Every attempt counts as a claim operation. REDIS_URL selects the server;
without it an embedded throw-away one is started.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import redis.asyncio as aioredis

from handoff.config import MAX_CAPACITY, HandoffConfig
from handoff.conversations import Handoff
from handoff.embedded_redis import EmbeddedRedis
from handoff.keys import Keys
from handoff.scripts import Scripts
from handoff.service import HandoffService


async def claims_per_second(
    redis: aioredis.Redis, keys: Keys, scripts: Scripts, *, operators: int = 100,
    conversations: int = 5000, contenders: int = 2, concurrency: int = 64, seed: int = 1,
) -> dict[str, float]:
    """Run the contended claims and return their figures. At most `concurrency` claims are in
    flight (all are gathered at once; a semaphore keeps the latency a claim's own time rather
    than its wait for a pooled connection)."""
    service = HandoffService(redis, keys, scripts, HandoffConfig())
    # Room for twice the conversations, so refusals are mostly `taken`, not `capacity`.
    capacity = min(MAX_CAPACITY, math.ceil(2 * conversations / operators))
    ops = [f"bench:{n}" for n in range(operators)]
    for op in ops:
        await service.set_status(op, "online", capacity=capacity)
    convs = [f"bench:{n}" for n in range(conversations)]
    await _enqueue(redis, keys, convs)
    rng = random.Random(seed)
    attempts = [(conv, op) for conv in convs for op in rng.sample(ops, contenders)]
    rng.shuffle(attempts)
    latencies: list[float] = []
    in_flight = asyncio.Semaphore(concurrency)

    async def claim(conv: str, op: str) -> bool:
        async with in_flight:
            started = time.perf_counter()
            result = await service.claim(conv, op)
            latencies.append(time.perf_counter() - started)
            return result.ok

    await service.claim("bench:none", ops[0])  # loads the script: not part of the figure
    calls, usec = await _script_stats(redis)
    started = time.perf_counter()
    won = await asyncio.gather(*(claim(conv, op) for conv, op in attempts))
    seconds = time.perf_counter() - started
    calls_after, usec_after = await _script_stats(redis)
    latencies.sort()
    await _clean(redis, keys, convs, ops)
    server_usec = (usec_after - usec) / max(1, calls_after - calls)
    return {
        "claims": len(attempts), "won": sum(won), "seconds": round(seconds, 3),
        "claims_per_second": round(len(attempts) / seconds, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 2),
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 2),
        # Time Redis itself spends per script call: its ceiling is 1e6 / this per core.
        "server_usec_per_claim": round(server_usec, 1),
    }


async def _script_stats(redis: aioredis.Redis) -> tuple[int, float]:
    """EVALSHA calls and their total microseconds so far (INFO commandstats, server-wide)."""
    stats = (await redis.info("commandstats")).get("cmdstat_evalsha", {})
    return int(stats.get("calls", 0)), float(stats.get("usec", 0))


async def _enqueue(redis: aioredis.Redis, keys: Keys, convs: list[str]) -> None:
    """The fields commit_turn.lua writes on a handoff, pipelined (setup is not measured)."""
    now = time.time()
    score = Handoff(reason="bench").score(now)
    async with redis.pipeline(transaction=False) as pipe:
        for conv in convs:
            pipe.hset(keys.conversation(conv), mapping={
                "state": "queued", "version": 1, "handoff_reason": "bench",
                "handoff_priority": "normal", "handoff_tags": "", "queued_at": repr(now),
            })
            pipe.zadd(keys.queue(), {conv: score})
        await pipe.execute()


async def _clean(redis: aioredis.Redis, keys: Keys, convs: list[str], ops: list[str]) -> None:
    """Delete what the run wrote, by name (no SCAN over a shared server)."""
    names = [keys.queue(), keys.waiting(), keys.journal(), keys.wait_samples(),
             keys.operators(), keys.outbox("bench", "customer")]
    names += [keys.conversation(conv) for conv in convs]
    names += [name for op in ops for name in (keys.operator(op), keys.operator_convs(op))]
    for start in range(0, len(names), 1000):
        await redis.delete(*names[start:start + 1000])


async def _run(url: str, args: argparse.Namespace) -> dict[str, float]:
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=args.concurrency, decode_responses=True
    )
    redis = aioredis.Redis(connection_pool=pool)
    try:
        keys = Keys(f"bench{uuid.uuid4().hex[:8]}:")
        return await claims_per_second(
            redis, keys, Scripts(redis), operators=args.operators,
            conversations=args.conversations, contenders=args.contenders,
            concurrency=args.concurrency,
        )
    finally:
        await redis.aclose()
        await pool.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--operators", type=int, default=200)
    parser.add_argument("--conversations", type=int, default=5000)
    parser.add_argument("--contenders", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    url = os.environ.get("REDIS_URL")
    with tempfile.TemporaryDirectory() as tmp:
        server = None if url else EmbeddedRedis(Path(tmp) / "redis", persist=False).start()
        try:
            figures = asyncio.run(_run(server.url if server else str(url), args))
        finally:
            if server:
                server.stop()
    print(f"redis: {'REDIS_URL' if url else 'embedded'}; {args.operators} operators, "
          f"{args.conversations} conversations, {args.contenders} claims each, "
          f"{args.concurrency} connections")
    print(f"{figures['claims']:.0f} claims ({figures['won']:.0f} won) in "
          f"{figures['seconds']:.2f} s: {figures['claims_per_second']:.0f} claims/s, "
          f"latency p50 {figures['p50_ms']:.2f} ms, p99 {figures['p99_ms']:.2f} ms; "
          f"Redis spends {figures['server_usec_per_claim']:.1f} µs per claim")


if __name__ == "__main__":
    main()
