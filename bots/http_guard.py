"""The HTTP server under abuse: how many requests at once, how often per client, how slowly.

- **In flight**: past `max_in_flight` requests being served at once the server answers 503 with
  `Retry-After` at once, instead of queueing them until Redis's connection pool runs dry and
  every request fails with a 500. Telegram and VK deliver again after a 503.
- **Per client** (the API only: the webhook's client is Telegram itself): a token bucket per
  remote address, 429 with `Retry-After` when it is empty; and a client that failed the token
  check `failed_auth_limit` times in a minute is refused with 429 for the rest of that minute,
  so guessing the token costs a minute per handful of tries.
- **Per token** (the API): a bucket per bearer token presented, whatever address it comes
  from, so one integration spread over many hosts (or one leaked token) cannot take the whole
  server; 429 with `Retry-After` as above. Tokens are kept only as digests.
- **Slow headers**: a connection that has not sent a whole request head within `HEADER_TIMEOUT`
  seconds of connecting (or of its previous answer) is closed. aiohttp has no header timeout of
  its own; its keep-alive timer, which runs from the moment a connection opens and closes it if
  no complete request has arrived, is exactly one when set short (aiohttp's default is an hour,
  so 1,500 half-open connections stayed open).
- **Slow bodies** (read with `handoff.jsonbody.read_body`): a body that does not arrive within
  its timeout is a 408 (a client that promised 1,000 bytes and sent 8 held its connection open
  for ever); a client that goes away mid-body is logged as that, in one line, not as our error.
- **Malformed requests** that aiohttp's parser rejects (a NUL in a header, a bad method) get
  aiohttp's 400 and one INFO line naming the client and the kind of error, not an ERROR with a
  traceback that quotes the offending header (an `Authorization` header included).
"""

from __future__ import annotations

import hashlib
import logging
import math
import sys
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.typedefs import Handler, Middleware

from bots.ratelimit import TokenBucket
from handoff.jsonbody import ClientGone, SlowBody

log = logging.getLogger("handoff.api")
server_log = logging.getLogger("bots.http")

HEADER_TIMEOUT = 10.0  # seconds for a whole request head (and for an idle keep-alive)


@dataclass(frozen=True, slots=True)
class GuardConfig:
    max_in_flight: int = 64
    per_client_rate: float = 20.0  # requests a second, per remote address
    per_client_burst: float = 40.0
    per_token_rate: float = 50.0  # requests a second, per bearer token, from every address
    per_token_burst: float = 100.0
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
        self._tokens: OrderedDict[str, TokenBucket] = OrderedDict()

    def _client(self, address: str) -> _Client:
        client = self._clients.get(address)
        if client is None:
            client = self._clients[address] = _Client(
                TokenBucket(self.config.per_client_rate, self.config.per_client_burst,
                            clock=self._clock), deque())
            _forget_oldest(self._clients, self.config.clients_kept)
        self._clients.move_to_end(address)
        return client

    def _token(self, authorization: str) -> TokenBucket:
        digest = hashlib.blake2b(authorization.encode("utf-8", "surrogateescape"),
                                 digest_size=16).hexdigest()
        bucket = self._tokens.get(digest)
        if bucket is None:
            bucket = self._tokens[digest] = TokenBucket(
                self.config.per_token_rate, self.config.per_token_burst, clock=self._clock)
            _forget_oldest(self._tokens, self.config.clients_kept)
        self._tokens.move_to_end(digest)
        return bucket

    def refusal(self, address: str, per_client: bool,
                authorization: str | None = None) -> web.Response | None:
        """A 503 or 429 for a request that must not be served now, else None. `authorization`
        is the request's Authorization header, for the per-token limit."""
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
        buckets = [client.bucket]
        if authorization:
            buckets.append(self._token(authorization))
        wait = max(bucket.delay() for bucket in buckets)
        if wait > 0:
            return _refuse(429, "too many requests", wait)
        for bucket in buckets:
            bucket.take()
        return None

    def failed_auth(self, address: str) -> None:
        self._client(address).failures.append(self._clock())

    def middleware(self, per_client_prefix: str = "/api/") -> Middleware:
        """For the whole HTTP server; per-client limits for paths under the prefix."""

        @web.middleware
        async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
            address = request.remote or "?"
            per_client = request.path.startswith(per_client_prefix)
            refused = self.refusal(address, per_client, request.headers.get("Authorization"))
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


def _forget_oldest(seen: OrderedDict[str, Any], kept: int) -> None:
    while len(seen) > kept:
        seen.popitem(last=False)


class _ServerLog(logging.LoggerAdapter[logging.Logger]):
    """aiohttp's server logger, with requests its parser rejected told in one line.

    aiohttp logs those with `logger.exception(...)`, whose traceback quotes the raw header line
    (a token in an Authorization header with a NUL in it). A client sending bytes that are not
    HTTP is the client's problem: INFO, the address and the kind of error, no quote."""

    def exception(self, msg: object, *args: object, exc_info: Any = True,
                  **kwargs: Any) -> None:
        error = exc_info if isinstance(exc_info, BaseException) else sys.exc_info()[1]
        if isinstance(error, HttpProcessingError):
            remote = args[0] if args else "?"
            kind = (error.message or "").strip().splitlines()[:1] or ["malformed request"]
            server_log.info("malformed HTTP request from %s: %s (answered %d)",
                            remote, kind[0].rstrip(":"), error.code)
            return
        self.logger.exception(msg, *args, exc_info=exc_info, **kwargs)


def http_runner(app: web.Application) -> web.AppRunner:
    """The runner every HTTP server of the bot uses: no access log (a line per request at
    webhook rates), the header timeout, and malformed requests logged in one line."""
    return web.AppRunner(app, access_log=None, keepalive_timeout=HEADER_TIMEOUT,
                         logger=_ServerLog(logging.getLogger("aiohttp.server")))


def _refuse(status: int, error: str, retry_after: float) -> web.Response:
    return web.json_response({"error": error}, status=status,
                             headers={"Retry-After": str(max(1, math.ceil(retry_after)))})

