"""The HTTP server under abuse: how many requests at once, how often per client, how slowly.

- **Bodies first**: a request's body is read (bounded in size and time) before the request
  counts as in flight, since reading it costs no Redis connection. A slow body holds one of
  `max_reading_per_client` places of its address, not one of the server's: 80 bodies that never
  finished held all 64 places and shut Telegram's own deliveries out (bench/abuse).
- **In flight**: past `max_in_flight` requests being served at once the server answers 503 with
  `Retry-After` at once, instead of queueing them until Redis's connection pool runs dry and
  every request fails with a 500. Telegram and VK deliver again after a 503.
- **Per client** (the API only: the webhook's client is Telegram itself): a token bucket per
  remote address, 429 with `Retry-After` when it is empty.
- **Wrong credentials** (any path: a 401 or 403): a client refused `failed_auth_limit` times in a
  minute is refused with 429 for the rest of that minute before any work is done, so guessing
  costs a minute per handful of tries and a flood of wrong secrets costs a lookup each. A
  request carrying the right API token is not locked out with the guesser at its address.
- **The client's address**: the peer's, or behind a proxy listed in `TRUSTED_PROXIES` the last
  address in `X-Forwarded-For` that is not one of them (else every client is the proxy).
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
import hmac
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

from bots import metrics
from bots.ratelimit import TokenBucket
from handoff.jsonbody import ClientGone, SlowBody, read_body

log = logging.getLogger("handoff.api")
server_log = logging.getLogger("bots.http")

HEADER_TIMEOUT = 10.0  # seconds for a whole request head (and for an idle keep-alive)


@dataclass(frozen=True, slots=True)
class GuardConfig:
    max_reading: int = 512  # bodies being received at once, whoever sends them
    max_reading_per_client: int = 8
    max_in_flight: int = 64
    per_client_rate: float = 20.0  # requests a second, per remote address
    per_client_burst: float = 40.0
    per_token_rate: float = 50.0  # requests a second, per bearer token, from every address
    per_token_burst: float = 100.0
    failed_auth_limit: int = 10  # wrong credentials a minute before a client is refused
    clients_kept: int = 10_000  # the least recently seen are forgotten


@dataclass(slots=True)
class _Client:
    bucket: TokenBucket
    failures: deque[float]
    reading: int = 0


class Guard:
    def __init__(self, config: GuardConfig = GuardConfig(), *,
                 clock: Callable[[], float] = time.monotonic, api_token: str | None = None,
                 trusted_proxies: frozenset[str] = frozenset()) -> None:
        self.config = config
        self._clock = clock
        self._authorization = f"Bearer {api_token}".encode() if api_token else None
        self._proxies = trusted_proxies
        self.in_flight = 0
        self.reading = 0
        self._clients: OrderedDict[str, _Client] = OrderedDict()
        self._tokens: OrderedDict[str, TokenBucket] = OrderedDict()

    def address(self, request: web.Request) -> str:
        """The client: the peer, or the last address before the trusted proxies."""
        peer = request.remote or "?"
        if peer not in self._proxies:
            return peer
        forwarded = ",".join(request.headers.getall("X-Forwarded-For", []))
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        return next((hop for hop in reversed(hops) if hop not in self._proxies), peer)

    def authorized(self, authorization: str | None) -> bool:
        """The request carries the right API token (compared in constant time)."""
        return bool(authorization) and self._authorization is not None and hmac.compare_digest(
            (authorization or "").encode("utf-8", "surrogateescape"), self._authorization)

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
        client = self._client(address)
        now = self._clock()
        while client.failures and client.failures[0] <= now - 60:
            client.failures.popleft()
        if len(client.failures) >= self.config.failed_auth_limit \
                and not self.authorized(authorization):
            return _refuse(429, "too many wrong credentials", client.failures[0] + 60 - now)
        if self.in_flight >= self.config.max_in_flight:
            return _refuse(503, "busy", 1.0)
        if not per_client:
            return None
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
            address = self.address(request)
            per_client = request.path.startswith(per_client_prefix)
            refused = self.refusal(address, per_client, request.headers.get("Authorization"))
            if refused is None and request.body_exists:
                refused = await self._receive(request, address)
            if refused is not None:
                metrics.HTTP_REFUSED.labels(str(refused.status)).inc()
                return refused
            # A WebSocket (the chat widget, the console) lives as long as its page: counted
            # among requests being served, 64 open pages would refuse everyone else. Their
            # handlers bound their own number.
            counted = request.headers.get("Upgrade", "").lower() != "websocket"
            self.in_flight += counted
            try:
                response = await handler(request)
            finally:
                self.in_flight -= counted
            if response.status in (401, 403):
                self.failed_auth(address)
            return response

        return guard

    async def _receive(self, request: web.Request, address: str) -> web.Response | None:
        """Read the body (aiohttp keeps it for the handler), in one of the reading places."""
        client = self._client(address)
        if self.reading >= self.config.max_reading \
                or client.reading >= self.config.max_reading_per_client:
            return _refuse(429, "too many unfinished requests", 1.0)
        self.reading += 1
        client.reading += 1
        try:
            await read_body(request)
        except ClientGone as exc:
            log.info("%s %s from %s: %s", request.method, request.path, address, exc)
            return web.json_response({"error": "client closed the connection"}, status=400)
        except SlowBody as exc:
            log.info("%s %s from %s: %s", request.method, request.path, address, exc)
            return web.json_response({"error": str(exc)}, status=408)
        finally:
            self.reading -= 1
            client.reading -= 1
        return None


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

