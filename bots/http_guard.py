"""The HTTP server under abuse: how many requests at once, how often per client, how slowly.

- **In flight**: past `max_in_flight` requests being served at once the server answers 503 with
  `Retry-After` at once, instead of queueing them until Redis's connection pool runs dry and
  every request fails with a 500. Telegram and VK deliver again after a 503.
- **Per client** (the API only: the webhook's client is Telegram itself): a token bucket per
  remote address, 429 with `Retry-After` when it is empty; and a client that failed the token
  check `failed_auth_limit` times in a minute is refused with 429 for the rest of that minute,
  so guessing the token costs a minute per handful of tries.
- **Slow bodies** (read with `handoff.jsonbody.read_body`): a body that does not arrive within
  its timeout is a 408 (a client that promised 1,000 bytes and sent 8 held its connection open
  for ever); a client that goes away mid-body is logged as that, in one line, not as our error.
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from bots.ratelimit import TokenBucket
from handoff.jsonbody import ClientGone, SlowBody

log = logging.getLogger("handoff.api")


@dataclass(frozen=True, slots=True)
class GuardConfig:
    max_in_flight: int = 64
    per_client_rate: float = 20.0  # requests a second, per remote address
    per_client_burst: float = 40.0
    failed_auth_limit: int = 10  # wrong tokens per minute before a client is refused
    clients_kept: int = 10_000  # the least recently seen are forgotten


@dataclass(slots=True)
class _Client:
    bucket: TokenBucket
    failures: deque[float]


class Guard:
    def __init__(self, config: GuardConfig = GuardConfig(), *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self._clock = clock
        self.in_flight = 0
        self._clients: OrderedDict[str, _Client] = OrderedDict()

    def _client(self, address: str) -> _Client:
        client = self._clients.get(address)
        if client is None:
            client = self._clients[address] = _Client(
                TokenBucket(self.config.per_client_rate, self.config.per_client_burst,
                            clock=self._clock), deque())
            while len(self._clients) > self.config.clients_kept:
                self._clients.popitem(last=False)
        self._clients.move_to_end(address)
        return client

    def refusal(self, address: str, per_client: bool) -> web.Response | None:
        """A 503 or 429 for a request that must not be served now, else None."""
        if self.in_flight >= self.config.max_in_flight:
            return _refuse(503, "busy", 1.0)
        if not per_client:
            return None
        client = self._client(address)
        now = self._clock()
        while client.failures and client.failures[0] <= now - 60:
            client.failures.popleft()
        if len(client.failures) >= self.config.failed_auth_limit:
            return _refuse(429, "too many wrong tokens", client.failures[0] + 60 - now)
        wait = client.bucket.delay()
        if wait > 0:
            return _refuse(429, "too many requests", wait)
        client.bucket.take()
        return None

    def failed_auth(self, address: str) -> None:
        self._client(address).failures.append(self._clock())

    def middleware(self, per_client_prefix: str = "/api/") -> Middleware:
        """For the whole HTTP server; per-client limits for paths under the prefix."""

        @web.middleware
        async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
            address = request.remote or "?"
            per_client = request.path.startswith(per_client_prefix)
            refused = self.refusal(address, per_client)
            if refused is not None:
                return refused
            self.in_flight += 1
            try:
                response = await handler(request)
            except ClientGone as exc:
                log.info("%s %s from %s: %s", request.method, request.path, address, exc)
                return web.json_response({"error": "client closed the connection"}, status=400)
            except SlowBody as exc:
                log.info("%s %s from %s: %s", request.method, request.path, address, exc)
                return web.json_response({"error": str(exc)}, status=408)
            finally:
                self.in_flight -= 1
            if per_client and response.status == 401:
                self.failed_auth(address)
            return response

        return guard


def _refuse(status: int, error: str, retry_after: float) -> web.Response:
    return web.json_response({"error": error}, status=status,
                             headers={"Retry-After": str(max(1, math.ceil(retry_after)))})

