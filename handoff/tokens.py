"""HTTP API tokens per role, stored hashed, revocable.

`API_TOKEN` (the settings) stays the administrator's token. Others are made with `supportbot
tokens create NAME --role ROLE`, shown once, and kept only as their SHA-256: a copy of Redis
does not give anyone access. A token is a random 32-byte secret, so a plain hash is enough (no
password stretching needed: there is nothing to guess). Each role reaches only its routes
(`PERMISSIONS`); a token of another role gets 403, an unknown or revoked one 401.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from typing import Any, Literal, get_args

from redis.asyncio import Redis

from handoff.keys import Keys

TokenRole = Literal["admin", "supervisor", "integration", "reports"]
TOKEN_ROLES: tuple[TokenRole, ...] = get_args(TokenRole)
PREFIX = "sbt_"

_CONVERSATIONS = frozenset({"list", "read", "claim", "reply", "transfer", "close",
                            "return_to_bot", "note", "tags", "ban", "unban", "templates",
                            "queue", "operators", "operator_status"})
_READING = frozenset({"stats", "operator_report", "hourly_report", "journal", "records",
                      "record_export", "metrics"})
_RUNNING = frozenset({"dead_letters", "requeue", "roles", "grant_role", "revoke_role",
                      "operator_shift"})
_NOTICES = frozenset({"notices", "notice", "notice_resume"})  # handoff/api_notices.py
#: The routes (by name, handoff/api.py) each role reaches; admin reaches all.
PERMISSIONS: dict[TokenRole, frozenset[str]] = {
    "integration": _CONVERSATIONS,
    "reports": _READING,
    "supervisor": _CONVERSATIONS | _READING | _RUNNING | _NOTICES,
}


def allowed(role: TokenRole, route: str) -> bool:
    return role == "admin" or route in PERMISSIONS.get(role, frozenset())


@dataclass(frozen=True, slots=True)
class TokenInfo:
    name: str
    role: TokenRole
    created_at: float
    created_by: str


class ApiTokens:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys

    async def create(self, name: str, role: TokenRole, by: str, now: float) -> str:
        """A new token, returned once; ValueError for a taken name or an unknown role."""
        if role not in TOKEN_ROLES:
            raise ValueError(f"role must be one of {', '.join(TOKEN_ROLES)}")
        if not name.strip() or len(name) > 64:
            raise ValueError("a token needs a name of 1-64 characters")
        token = PREFIX + secrets.token_urlsafe(32)
        digest = _digest(token)
        info = json.dumps({"name": name, "role": role, "created_at": now, "created_by": by})
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hsetnx(self._keys.api_token_names(), name, digest)
            pipe.hsetnx(self._keys.api_tokens(), digest, info)
            added, _ = await pipe.execute()
        if not added:
            await self._redis.hdel(self._keys.api_tokens(), digest)
            raise ValueError(f"a token named {name!r} exists: revoke it first")
        return token

    async def role_of(self, token: str) -> TokenRole | None:
        raw: Any = await self._redis.hget(self._keys.api_tokens(), _digest(token))
        if raw is None:
            return None
        role = json.loads(raw).get("role")
        return role if role in TOKEN_ROLES else None

    async def revoke(self, name: str) -> bool:
        digest: Any = await self._redis.hget(self._keys.api_token_names(), name)
        if digest is None:
            return False
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hdel(self._keys.api_tokens(), digest)
            pipe.hdel(self._keys.api_token_names(), name)
            await pipe.execute()
        return True

    async def list(self) -> list[TokenInfo]:
        raw: Any = await self._redis.hvals(self._keys.api_tokens())
        found = [json.loads(item) for item in raw]
        return sorted((TokenInfo(str(i["name"]), i["role"], float(i["created_at"]),
                                 str(i["created_by"])) for i in found), key=lambda t: t.name)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
