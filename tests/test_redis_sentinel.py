"""Redis Sentinel: parsing REDIS_SENTINELS, a client that follows a failover, and what an AOF
keeps across a SIGKILL. The topology tests run real redis-server processes (fakes/redis_topology);
`pytest -s` shows the measured seconds."""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from redis.asyncio.sentinel import SentinelConnectionPool
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError
from redis.exceptions import TimeoutError as RedisTimeoutError

from fakes.redis_topology import LOCALHOST, RedisProcess, SentinelTopology
from handoff.embedded_redis import free_port
from handoff.sentinel import parse_sentinels, sentinel_client

FAILOVER_BOUND = 20.0  # seconds from the kill until writes succeed again
WRITE_INTERVAL = 0.01
RETRYABLE = (RedisConnectionError, RedisTimeoutError, ReadOnlyError)


# --- parse_sentinels ------------------------------------------------------------------------
@pytest.mark.parametrize(("value", "expected"), [
    ("h1:26379", [("h1", 26379)]),
    ("h1:26379, h2:26380 ,h3:1", [("h1", 26379), ("h2", 26380), ("h3", 1)]),
    ("10.0.0.5:65535", [("10.0.0.5", 65535)]),
    ("[::1]:26379,[fe80::1%eth0]:26380", [("::1", 26379), ("fe80::1%eth0", 26380)]),
])
def test_parse_sentinels_accepts(value: str, expected: list[tuple[str, int]]) -> None:
    assert parse_sentinels(value) == expected


@pytest.mark.parametrize(("value", "message"), [
    ("", "no sentinel addresses"),
    ("   ", "no sentinel addresses"),
    ("h1:26379,,h2:26380", "#2 is empty"),
    ("h1:26379,", "#2 is empty"),
    ("h1", "'h1': missing port"),
    ("h1:", "'h1:': missing port"),
    (":26379", "missing or malformed host"),
    ("h 1:26379", "missing or malformed host"),
    ("h1:abc", "port 'abc' is not a number"),
    ("h1:-1", "port '-1' is not a number"),
    ("h1:+5", "port '+5' is not a number"),
    ("h1:0", "port 0 is out of range"),
    ("h1:65536", "port 65536 is out of range"),
    ("::1:26379", "IPv6 address in brackets"),
    ("[::1:26379", "unclosed '['"),
    ("[::1]", "missing ':port'"),
    ("[::1]26379", "missing ':port'"),
    ("[]:26379", "missing or malformed host"),
])
def test_parse_sentinels_rejects(value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("+", r"\+")):
        parse_sentinels(value)


# --- a writer that counts what succeeds -----------------------------------------------------
@dataclass
class Writes:
    ok_times: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    samples: dict[str, str] = field(default_factory=dict)

    def ok_after(self, moment: float) -> list[float]:
        return [t for t in self.ok_times if t > moment]


async def write_loop(client: aioredis.Redis, key: str, writes: Writes, stop: asyncio.Event) -> None:
    """INCR every ~10 ms; a failed call backs off briefly and tries again: the client has to
    recover by itself, calls failing meanwhile is expected."""
    backoff = WRITE_INTERVAL
    while not stop.is_set():
        try:
            await client.incr(key)
        except RETRYABLE as exc:
            name = type(exc).__name__
            writes.errors[name] += 1
            writes.samples.setdefault(name, str(exc)[:120])
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 0.2)
            continue
        writes.ok_times.append(time.monotonic())
        backoff = WRITE_INTERVAL
        await asyncio.sleep(WRITE_INTERVAL)


async def until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(0.05)


# --- failover through sentinel_client -------------------------------------------------------
@pytest.fixture
def topology(tmp_path: Path) -> Iterator[SentinelTopology]:
    topo = SentinelTopology(tmp_path / "sentinel")
    try:
        topo.start()  # stops what it started if it fails
        yield topo
    finally:
        topo.stop()


async def test_client_writes_again_after_the_primary_is_killed(
    topology: SentinelTopology,
) -> None:
    client = sentinel_client(topology.sentinels, topology.master_name, socket_timeout=1.0)
    writes, stop = Writes(), asyncio.Event()
    writer = asyncio.create_task(write_loop(client, "failover:counter", writes, stop))
    try:
        await until(lambda: len(writes.ok_times) >= 20, 5.0, "writes before the kill")
        old_port = await asyncio.to_thread(topology.kill_primary)
        killed_at = time.monotonic()
        acknowledged_before = len(writes.ok_times)
        sentinel_seconds = await asyncio.to_thread(topology.wait_failover, FAILOVER_BOUND)
        await until(lambda: len(writes.ok_after(killed_at)) >= 20,
                    FAILOVER_BOUND - (time.monotonic() - killed_at), "writes after the failover")
    finally:
        stop.set()
        await writer
    try:
        new_port = await asyncio.to_thread(topology.primary_port)
        pool = client.connection_pool
        assert isinstance(pool, SentinelConnectionPool)
        counter = int(await client.get("failover:counter") or 0)
    finally:
        await client.aclose()

    unavailable = writes.ok_after(killed_at)[0] - killed_at
    before = [t for t in writes.ok_times if t <= killed_at]
    print(f"\nfailover: primary :{old_port} SIGKILLed, new primary :{new_port}; sentinels "
          f"reported it after {sentinel_seconds:.2f} s, the client wrote again after "
          f"{unavailable:.2f} s (gap between successful writes "
          f"{writes.ok_after(killed_at)[0] - before[-1]:.2f} s)")
    print(f"failover: {len(writes.ok_times)} INCRs acknowledged, the counter on the new primary "
          f"is {counter} ({acknowledged_before - min(counter, acknowledged_before)} acknowledged "
          f"before the kill were lost); errors meanwhile: {dict(writes.errors)}")
    for name, sample in writes.samples.items():
        print(f"failover: e.g. {name}: {sample}")
    assert new_port != old_port
    assert pool.master_address == (LOCALHOST, new_port)  # the same client found the new primary
    assert unavailable < FAILOVER_BOUND


async def test_readonly_from_a_demoted_primary_sends_the_next_call_to_the_primary(
    tmp_path: Path,
) -> None:
    """A sentinel that has not yet learnt of a failover still names the old primary, which may
    already be a replica: its READONLY must drop the connection, so the next call asks again."""
    primary = RedisProcess(tmp_path / "primary")
    replica = RedisProcess(tmp_path / "replica", replicaof=(LOCALHOST, primary.port))
    try:
        await asyncio.to_thread(primary.start)
        await asyncio.to_thread(replica.start)  # read-only from the start, synced or not
        # No sentinel listens there: discovery is replaced below, the address is never dialled.
        client = sentinel_client([(LOCALHOST, free_port())], "supportbot", socket_timeout=1.0)
        try:
            pool = client.connection_pool
            assert isinstance(pool, SentinelConnectionPool)
            answers = iter([(LOCALHOST, replica.port)])  # first the stale answer, then the truth

            async def discover_master(_service: str) -> tuple[str, int]:
                return next(answers, (LOCALHOST, primary.port))

            pool.sentinel_manager.discover_master = discover_master
            with pytest.raises(RedisConnectionError, match="previous master is now a slave"):
                await client.incr("readonly:counter")
            assert await client.incr("readonly:counter") == 1
            assert pool.master_address == (LOCALHOST, primary.port)
        finally:
            await client.aclose()
    finally:
        replica.stop()
        primary.stop()


# --- what an AOF keeps across SIGKILL -------------------------------------------------------
async def test_sigkill_restart_keeps_writes_older_than_the_fsync(tmp_path: Path) -> None:
    server = RedisProcess(tmp_path / "aof", appendonly=True, appendfsync="everysec")
    client: aioredis.Redis | None = None
    try:
        await asyncio.to_thread(server.start)
        client = aioredis.Redis.from_url(server.url, decode_responses=True)
        await client.mset({f"early:{i}": str(i) for i in range(100)})
        await asyncio.sleep(1.6)  # everysec: an fsync has run since these were acknowledged
        await client.set("late", "1")
        old_pid = server.pid
        await asyncio.to_thread(server.restart, signal.SIGKILL)
        assert server.pid != old_pid
        # The same client: its pooled connection died with the server, it reconnects.
        assert await client.get("early:0") == "0"
        assert await client.get("early:99") == "99"
        late = await client.get("late")
        print(f"\naof: after SIGKILL, a write acknowledged just before the kill survived: "
              f"{late == '1'} (its write() precedes the reply; everysec risks it only if the "
              f"machine itself goes down)")
    finally:
        if client is not None:
            await client.aclose()
        server.stop()
