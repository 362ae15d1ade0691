"""Redis behind Sentinel: a client that always talks to whichever server is the primary now.

Production runs a primary, one or more replicas and (at least) three sentinels;
`REDIS_SENTINELS=host:port,...` lists the sentinels and `REDIS_SENTINEL_MASTER` names the primary
they monitor. The client built here asks a sentinel where the primary is each time it opens a
connection, so after a failover its next connection goes to the promoted replica: the same client
object keeps working, callers only see errors while the failover runs.

What a failover can lose. Redis replicates asynchronously: the primary acknowledges a write before
any replica has it. When the primary dies, the writes it acknowledged in its last moments (usually
milliseconds' worth, more when a replica lags) never reached the replica that gets promoted, and are
gone although the client was told OK. A primary cut off from the sentinels by a partition keeps
accepting writes from clients on its side until it is demoted, and those are discarded when it
rejoins as a replica. `min-replicas-to-write N` (with `min-replicas-max-lag`) makes a primary refuse
writes unless N replicas are recent, which bounds the partition case to that lag, at the price of
refusing all writes while replicas are down. `WAIT numreplicas timeout` after a write blocks until
that many replicas have it, so a caller learns that one write is replicated; it is no transaction
(a timed-out WAIT leaves the write on the primary) and the promoted replica may not be one that had
it. Neither makes Redis strongly consistent: treat its data as surviving most failovers, not all.

What callers see during a failover (redis-py's `redis.asyncio.sentinel`, read for this module):
`ConnectionError` while the dead primary refuses or resets connections; `MasterNotFoundError` (a
`ConnectionError`) once the sentinels mark it down and until they switch to the new primary;
`TimeoutError` after `socket_timeout` when the primary's host hangs instead of refusing; and
`ConnectionError("The previous master is now a slave")` when a connection reaches a demoted
primary (its `READONLY` reply makes redis-py drop that connection, so the next call asks the
sentinels again). How long it lasts is `down-after-milliseconds` (the sentinels' default is 30 s)
plus an election and the promotion, about one to two seconds more.
"""

from __future__ import annotations

import re
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool

DEFAULT_CONNECT_TIMEOUT = 2.0  # seconds; a reachable server on the network accepts in well under
_PORT = re.compile(r"[0-9]+")


def parse_sentinels(value: str) -> list[tuple[str, int]]:
    """`"h1:26379, h2:26380"` -> `[("h1", 26379), ("h2", 26380)]`; IPv6 as `[::1]:26379`.

    Raises `ValueError` naming the first bad entry: empty, no port, a port that is not a number or
    out of range."""
    if not value.strip():
        raise ValueError("no sentinel addresses given: expected host:port,host:port,...")
    return [_parse_address(part.strip(), number)
            for number, part in enumerate(value.split(","), start=1)]


def _parse_address(part: str, number: int) -> tuple[str, int]:
    if not part:
        raise ValueError(f"sentinel address #{number} is empty (a stray comma?)")
    where = f"sentinel address #{number} {part!r}"
    host, port = _split_host_port(part, where)
    if not host or any(char.isspace() for char in host):
        raise ValueError(f"{where}: missing or malformed host (expected host:port)")
    return host, _parse_port(port, where)


def _split_host_port(part: str, where: str) -> tuple[str, str]:
    if part.startswith("["):
        host, bracket, rest = part[1:].partition("]")
        if not bracket:
            raise ValueError(f"{where}: unclosed '[' (write IPv6 as [::1]:26379)")
        if not rest.startswith(":"):
            raise ValueError(f"{where}: missing ':port' after the address")
        return host, rest[1:]
    host, colon, port = part.rpartition(":")
    if not colon:
        raise ValueError(f"{where}: missing port (expected host:port)")
    if ":" in host:  # an unbracketed IPv6 address: no telling where the address ends
        raise ValueError(f"{where}: write an IPv6 address in brackets, as [::1]:26379")
    return host, port


def _parse_port(port: str, where: str) -> int:
    if not port:
        raise ValueError(f"{where}: missing port (expected host:port)")
    if not _PORT.fullmatch(port):
        raise ValueError(f"{where}: port {port!r} is not a number")
    number = int(port)
    if not 1 <= number <= 65535:
        raise ValueError(f"{where}: port {number} is out of range 1-65535")
    return number


class SentinelRedis(Redis):
    """The primary's client; closing it also closes its connections to the sentinels.

    redis-py's `Sentinel` keeps one client per sentinel, which `master_for` clients do not close:
    left open they are garbage-collected with a ResourceWarning."""

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        await super().aclose(close_connection_pool)
        closes_pool = close_connection_pool or (
            close_connection_pool is None and self.auto_close_connection_pool
        )
        pool = self.connection_pool
        if closes_pool and isinstance(pool, SentinelConnectionPool):
            manager: Sentinel = pool.sentinel_manager
            await manager.aclose()


def sentinel_client(
    sentinels: list[tuple[str, int]],
    master: str,
    *,
    decode_responses: bool = True,
    socket_timeout: float = 5.0,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    retry: Retry | None = None,
) -> Redis:
    """A client for the current primary of `master`, found through `sentinels`.

    `socket_timeout` bounds a command on a primary that hangs; `connect_timeout` (at most
    `socket_timeout`) bounds connecting to the primary and each whole exchange with a sentinel,
    which answers in milliseconds when alive: a dead one costs that long before the next is asked.
    `retry` is redis-py's per-command retry; by default none (redis-py's choice for Sentinel):
    errors reach the caller at once. A retry policy hides short failovers but may run a command
    twice when a reply was lost after the server executed it (INCR, LPUSH, ...).
    """
    if not sentinels:
        raise ValueError("no sentinels given")
    connect = min(connect_timeout, socket_timeout)
    manager = Sentinel(
        sentinels,
        sentinel_kwargs={
            "socket_timeout": connect,
            "socket_connect_timeout": connect,
            "socket_keepalive": True,
        },
    )
    options: dict[str, Any] = {
        "decode_responses": decode_responses,
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": connect,
        "socket_keepalive": True,
    }
    if retry is not None:
        options["retry"] = retry
    client: Redis = manager.master_for(master, redis_class=SentinelRedis, **options)
    return client
