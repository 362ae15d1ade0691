"""Who a widget visitor is: an anonymous id the server made, or a customer the brand's site
signed for (docs/web.md, "Session").

The widget's token is the visitor id and an HMAC of it under a key kept in Redis (one for every
process, made on first use), so a visitor cannot talk as another by changing an id. The brand's
site proves a customer's identity with HMAC-SHA256(WEB_IDENTITY_SECRET, user id), computed on
its server, so the same customer has one conversation on any device.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from redis.asyncio import Redis

from handoff.keys import Keys

_USER = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
_VISITOR = re.compile(r"^[au][A-Za-z0-9_.@-]{1,64}$")


class IdentityError(ValueError):
    """A signed identity that does not verify, or a malformed one; the message says which."""


class Visitors:
    def __init__(self, redis: Redis, keys: Keys, identity_secret: str | None = None) -> None:
        self._redis = redis
        self._keys = keys
        self._identity_secret = identity_secret.encode() if identity_secret else None
        self._secret: bytes | None = None

    async def anonymous(self) -> str:
        return "a" + secrets.token_hex(12)

    def identified(self, user: str, signature: str) -> str:
        """The visitor id of a customer the brand's site signed for; IdentityError otherwise."""
        if self._identity_secret is None:
            raise IdentityError("signed identities are off (WEB_IDENTITY_SECRET is not set)")
        if not _USER.match(user):
            raise IdentityError("identity.user: 1-64 letters, digits or _ . @ -")
        expected = hmac.new(self._identity_secret, user.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature.lower()):
            raise IdentityError("identity.sig does not match identity.user")
        return "u" + user

    async def token(self, visitor: str) -> str:
        return f"{visitor}.{await self._mac(visitor)}"

    async def verify(self, token: str) -> str | None:
        """The visitor a token stands for, None for a forged or malformed one."""
        visitor, _, mac = token.rpartition(".")
        if not _VISITOR.match(visitor) or not mac:
            return None
        return visitor if hmac.compare_digest(await self._mac(visitor), mac) else None

    def valid(self, visitor: str) -> bool:
        return bool(_VISITOR.match(visitor))

    async def _mac(self, visitor: str) -> str:
        if self._secret is None:
            key = self._keys.web_secret()
            await self._redis.set(key, secrets.token_hex(32), nx=True)
            self._secret = bytes.fromhex(str(await self._redis.get(key)))
        return hmac.new(self._secret, visitor.encode(), hashlib.sha256).hexdigest()[:32]
