"""Who is signed in to the operators' console: accounts, one-time login links, sessions.

- **Accounts** (`supportbot console add`): an operator id (`tg:9101` is the same person as at
  the Telegram desk, `web:anna` someone who works in the browser only), a display name and a
  password hash. The hash is scrypt (n=2**14, r=8, p=1, a random 16-byte salt): a password is
  something a person chose, so unlike the API's random tokens (a plain SHA-256 suffices for
  those) it must be slow and memory-hard to guess from a copy of Redis; scrypt is in the
  standard library (no new dependency) and costs ~16 MB and some 50 ms per try. It runs in a
  thread, and is compared in constant time.
- **Login links**: a random 32-byte token, stored only as its SHA-256 with a TTL (10 minutes)
  and taken with GETDEL, so it signs someone in once, in one atomic step.
- **Sessions**: a random cookie (`sb_console`), stored as its SHA-256 with the operator, a CSRF
  token and its times; it ends after 8 idle hours or 24 hours in all (checked against the
  service's clock, with a Redis TTL that cleans up), or at logout. Each request reads the
  person's roles afresh (handoff/access.py), so a revocation signs them out at once.
- **Guessing** is slowed per operator and per address: 5 failures in 15 minutes and further
  tries are refused (429) until the window passes, right password or not.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from redis.asyncio import Redis

from handoff.access import Access
from handoff.api_http import ACTOR, PUBLIC_ROUTES, Actor
from handoff.clock import Clock
from handoff.events import OutboundMessage
from handoff.keys import Keys
from handoff.service import HandoffService
from handoff.tokens import PERMISSIONS

COOKIE = "sb_console"
CSRF_HEADER = "X-CSRF-Token"
LINK_PREFIX = "/console/link/"
LINK_TTL = 600.0
IDLE_SECONDS = 8 * 3600
ABSOLUTE_SECONDS = 24 * 3600
FAILURES_ALLOWED = 5
FAILURE_WINDOW = 15 * 60
SCRYPT = {"n": 2**14, "r": 8, "p": 1, "maxmem": 64 * 1024 * 1024, "dklen": 32}
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: The console's own API routes (added to the API app by bots/web/console.py).
CONSOLE_ROUTES = frozenset({"console_session"})
#: What a signed-in person reaches in the API, by desk role: an operator what an integration
#: token does (conversations, queue, operators, templates); a supervisor also reports, the
#: journal, records, roles and shifts, as a supervisor's token.
OPERATOR_ROUTES = PERMISSIONS["integration"] | CONSOLE_ROUTES
SUPERVISOR_ROUTES = PERMISSIONS["supervisor"] | CONSOLE_ROUTES


# --- passwords -------------------------------------------------------------------------------
def hash_password(password: str, salt: bytes | None = None) -> tuple[str, str]:
    """(salt, hash), both hex; a fresh 16-byte salt unless given."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **SCRYPT)
    return salt.hex(), digest.hex()


def password_matches(password: str, salt: str, expected: str) -> bool:
    _, digest = hash_password(password, bytes.fromhex(salt))
    return hmac.compare_digest(digest, expected)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _strs(raw: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in raw.items()}


# --- accounts ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Account:
    operator: str
    name: str
    created_by: str
    created_at: float


class Accounts:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys

    async def add(self, op: str, name: str, password: str, by: str, now: float) -> bool:
        """Create or replace (a new password) an account; True when it is new."""
        salt, digest = await asyncio.to_thread(hash_password, password)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.sadd(self._keys.console_accounts(), op)
            pipe.hset(self._keys.console_account(op), mapping={
                "name": name, "salt": salt, "hash": digest, "created_by": by,
                "created_at": repr(now)})
            added, _ = await pipe.execute()
        return bool(added)

    async def get(self, op: str) -> tuple[Account, str, str] | None:
        """The account with its salt and hash."""
        raw = _strs(await self._redis.hgetall(self._keys.console_account(op)))
        if not raw.get("hash"):
            return None
        return (Account(op, raw.get("name", op), raw.get("created_by", ""),
                        float(raw.get("created_at", 0))), raw["salt"], raw["hash"])

    async def verify(self, op: str, password: str) -> Account | None:
        """The account when the password is right. An unknown operator costs the same scrypt
        as a known one, so the time taken does not tell which operators exist."""
        found = await self.get(op)
        salt, expected = (found[1], found[2]) if found else ("00" * 16, "00" * 32)
        right = await asyncio.to_thread(password_matches, password, salt, expected)
        return found[0] if found and right else None

    async def list(self) -> list[Account]:
        ops = sorted(str(op) for op in await self._redis.smembers(self._keys.console_accounts()))
        found = [await self.get(op) for op in ops]
        return [item[0] for item in found if item is not None]

    async def remove(self, op: str, sessions: Sessions) -> bool:
        """Delete the account and sign its sessions out; False when there was none."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(self._keys.console_account(op))
            pipe.srem(self._keys.console_accounts(), op)
            removed, _ = await pipe.execute()
        await sessions.end_all(op)
        return bool(removed)


# --- login links -------------------------------------------------------------------------------
async def login_link(redis: Redis, keys: Keys, operator: str, name: str,
                     ttl: float = LINK_TTL) -> str:
    """A one-time path that signs `operator` in: `/console/link/<token>` (valid `ttl` s)."""
    token = secrets.token_urlsafe(32)
    await redis.set(keys.console_link(_digest(token)),
                    json.dumps({"operator": operator, "name": name}, ensure_ascii=False),
                    px=max(1, int(ttl * 1000)))
    return LINK_PREFIX + token


async def private_link(service: HandoffService, operator: str, name: str) -> bool:
    """Send a Telegram operator a login link in their private chat with the bot (the desk's
    `/console`); False for someone the bot cannot write to privately (not a tg: id)."""
    if not operator.startswith("tg:"):
        return False
    base: Any = await service.redis.get(service.keys.console_url())
    path = await login_link(service.redis, service.keys, operator, name)
    message = OutboundMessage(
        conversation=operator, created_at=time.time(),
        text=(f"Вход в консоль операторов (ссылка одноразовая, действует "
              f"{LINK_TTL / 60:.0f} минут):\n{base or ''}{path}"))
    await service.redis.xadd(service.keys.outbox("tg", "customer"), {"m": message.to_json()},
                             maxlen=service.config.outbox_maxlen, approximate=True)
    return True


async def redeem_link(redis: Redis, keys: Keys, token: str) -> tuple[str, str] | None:
    """(operator, name) of a link not used yet, which this call uses up; else None."""
    if not token or len(token) > 128:
        return None
    raw: Any = await redis.getdel(keys.console_link(_digest(token)))
    if raw is None:
        return None
    data = json.loads(raw)
    return str(data["operator"]), str(data.get("name") or data["operator"])


# --- sessions ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Session:
    digest: str
    operator: str
    name: str
    csrf: str
    created_at: float
    roles: frozenset[str] = frozenset()

    @property
    def supervisor(self) -> bool:
        return "supervisor" in self.roles

    def reaches(self, route: str) -> bool:
        return route in (SUPERVISOR_ROUTES if self.supervisor else OPERATOR_ROUTES)


class Sessions:
    def __init__(self, redis: Redis, keys: Keys, clock: Clock, access: Access) -> None:
        self._redis = redis
        self._keys = keys
        self._clock = clock
        self._access = access

    async def start(self, op: str, name: str) -> str:
        """A new session; returns the cookie's value (kept only as its digest)."""
        token = secrets.token_urlsafe(32)
        digest, now = _digest(token), self._clock.now()
        key = self._keys.console_session(digest)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={"operator": op, "name": name,
                                    "csrf": secrets.token_urlsafe(32),
                                    "created_at": repr(now), "seen_at": repr(now)})
            pipe.expire(key, IDLE_SECONDS)
            pipe.sadd(self._keys.console_sessions(op), digest)
            pipe.expire(self._keys.console_sessions(op), ABSOLUTE_SECONDS)
            await pipe.execute()
        return token

    async def find(self, token: str, *, touch: bool = True) -> Session | None:
        """The live session of a cookie, its idle timer restarted (unless not `touch`: an open
        page's socket checking it is no activity); None when there is none, it expired, or its
        operator may no longer act (revoked, or no longer listed)."""
        if not token or len(token) > 128:
            return None
        digest = _digest(token)
        key = self._keys.console_session(digest)
        raw = _strs(await self._redis.hgetall(key))
        if not raw.get("operator"):
            return None
        now = self._clock.now()
        created, seen = float(raw.get("created_at", 0)), float(raw.get("seen_at", 0))
        if now - seen > IDLE_SECONDS or now - created > ABSOLUTE_SECONDS:
            await self._end(digest, raw["operator"])
            return None
        op = raw["operator"]
        if not await self._access.may_act(op):
            await self._end(digest, op)
            return None
        if touch:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.hset(key, "seen_at", repr(now))
                pipe.expire(key, max(1, int(min(IDLE_SECONDS,
                                                ABSOLUTE_SECONDS - (now - created)))))
                await pipe.execute()
        roles = frozenset(await self._access.roles_of(op)) | {"operator"}
        return Session(digest, op, raw.get("name") or op, raw.get("csrf", ""), created, roles)

    async def end(self, session: Session) -> None:
        await self._end(session.digest, session.operator)

    async def end_all(self, op: str) -> None:
        digests = [str(d) for d in await self._redis.smembers(self._keys.console_sessions(op))]
        async with self._redis.pipeline(transaction=True) as pipe:
            for digest in digests:
                pipe.delete(self._keys.console_session(digest))
            pipe.delete(self._keys.console_sessions(op))
            await pipe.execute()

    async def _end(self, digest: str, op: str) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(self._keys.console_session(digest))
            pipe.srem(self._keys.console_sessions(op), digest)
            await pipe.execute()


# --- guessing ----------------------------------------------------------------------------------
class LoginLimiter:
    """Failed logins counted per operator and per address in Redis (every process shares
    them), each for a fixed window from its first failure."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys

    def _scopes(self, op: str, address: str) -> list[str]:
        return [self._keys.console_failures(f"op:{op}"),
                self._keys.console_failures(f"ip:{address}")]

    async def blocked(self, op: str, address: str) -> bool:
        counts = await self._redis.mget(self._scopes(op, address))
        return any(int(count or 0) >= FAILURES_ALLOWED for count in counts)

    async def failed(self, op: str, address: str) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            for key in self._scopes(op, address):
                pipe.incr(key)
                pipe.expire(key, FAILURE_WINDOW, nx=True)
            await pipe.execute()

    async def succeeded(self, op: str) -> None:
        await self._redis.delete(self._keys.console_failures(f"op:{op}"))


# --- the API under a session ---------------------------------------------------------------
SESSION: web.RequestKey[Session | None] = web.RequestKey("console.session")
SessionOf = Callable[[web.Request], Awaitable[Session | None]]


def session_auth(session_of: SessionOf) -> Middleware:
    """The API's auth strategy for the console (handoff/api.py `create_api_app(auth=...)`):
    a live session, its CSRF token on every request that changes something, and its roles'
    routes; the session's operator is who acts (`Actor`)."""

    @web.middleware
    async def auth(request: web.Request, handler: Handler) -> web.StreamResponse:
        route = request.match_info.route.name
        if route in PUBLIC_ROUTES:
            return await handler(request)
        session = await session_of(request)
        if session is None:
            return web.json_response({"error": "unauthorized"}, status=401)
        if request.method not in SAFE_METHODS and not hmac.compare_digest(
                request.headers.get(CSRF_HEADER, "").encode(), session.csrf.encode()):
            return web.json_response({"error": "forbidden: missing or wrong CSRF token"},
                                     status=403)
        if route is not None and not session.reaches(route):
            return web.json_response(
                {"error": "forbidden: this needs a supervisor" if route in SUPERVISOR_ROUTES
                 else "forbidden"}, status=403)
        request[ACTOR] = Actor(session.operator, session.supervisor)
        return await handler(request)

    return auth
