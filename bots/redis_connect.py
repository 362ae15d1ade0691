"""The one way every command connects to Redis: REDIS_SENTINELS, REDIS_URL or the embedded
server of DATA_DIR (shared by every process on that directory, see handoff/embedded_redis.py).

Start-up waits for Redis instead of failing: in a compose file or after a reboot the bot often
starts before its Redis answers, and a bot that exits then needs a human to start it again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import redis.asyncio as aioredis
from redis.exceptions import (
    AuthenticationError,
    AuthenticationWrongNumberOfArgsError,
    ResponseError,
)

from bots.backoff import Backoff, describe
from bots.settings import Settings
from handoff.embedded_redis import EmbeddedRedis
from handoff.sentinel import parse_sentinels, sentinel_client

log = logging.getLogger(__name__)


class RedisUrlError(ValueError):
    """REDIS_URL cannot be parsed; `str()` is one line naming the variable."""


def rejected_credentials(exc: BaseException) -> bool:
    """Redis refused the password or user: waiting will not change that, a person must."""
    if isinstance(exc, (AuthenticationError, AuthenticationWrongNumberOfArgsError)):
        return True
    return isinstance(exc, ResponseError) and any(word in str(exc)
                                                  for word in ("NOAUTH", "WRONGPASS"))


def redis_client(settings: Settings) -> tuple[aioredis.Redis, EmbeddedRedis | None, str]:
    """A client (not yet connected), the embedded server it uses if any, and where it points."""
    if settings.redis_sentinels:
        client = sentinel_client(parse_sentinels(settings.redis_sentinels),
                                 settings.redis_sentinel_master)
        return client, None, (f"the primary '{settings.redis_sentinel_master}' of the "
                              f"sentinels {settings.redis_sentinels}")
    if settings.redis_url:
        try:
            client = aioredis.Redis.from_url(settings.redis_url, decode_responses=True)
        except ValueError as exc:
            raise RedisUrlError(f"REDIS_URL {_without_password(settings.redis_url)!r} is "
                                f"malformed: {exc}") from exc
        return client, None, _without_password(settings.redis_url)
    embedded = EmbeddedRedis.attach(Path(settings.data_dir) / "redis")
    return aioredis.Redis.from_url(embedded.url, decode_responses=True), embedded, \
        f"the embedded Redis at {embedded.url}"


async def wait_until_up(client: aioredis.Redis, where: str,
                        say: Callable[[str], None] | None = None) -> None:
    """PING until Redis answers, saying once that we wait and retrying with back-off.

    A rejected password is raised at once: it is a configuration error, not an outage."""
    backoff = Backoff(first=0.2, cap=5.0)
    told = False
    while True:
        try:
            await client.ping()
            if told:
                log.info("Redis answers: %s", where)
            return
        except Exception as exc:  # any failure to answer is worth waiting out...
            if rejected_credentials(exc):  # ...but a wrong password
                raise
            if not told:
                (say or log.warning)(f"waiting for Redis ({where}): {describe(exc)}")
                told = True
            await backoff.wait()


def _without_password(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if "@" not in rest:
        return url
    return f"{scheme}{sep}***@{rest.split('@', 1)[1]}"
