"""Signed button payloads: what goes into a platform's callback data and how it is checked.

Callback data comes back from the customer's device, so it is never trusted: it carries an HMAC
made with a key only the server has. Payloads too long for the platform's limit (Telegram: 64
bytes) travel as a digest that resolves through a Redis hash written when the button was sent.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from redis.asyncio import Redis

from handoff.keys import Keys

SIG_LEN = 10
SEPARATOR = "|"
DIGEST_MARK = "#"


class ForgedCallback(ValueError):
    """Callback data that this server did not produce (bad signature, unknown digest, junk)."""


class CallbackSigner:
    def __init__(self, secret: bytes, redis: Redis, keys: Keys, *, max_bytes: int = 64) -> None:
        self._secret = secret
        self._redis = redis
        self._keys = keys
        self.max_bytes = max_bytes

    def _sign(self, body: str) -> str:
        mac = hmac.new(self._secret, body.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode()[:SIG_LEN]

    async def encode(self, payload: str) -> str:
        data = f"{payload}{SEPARATOR}{self._sign(payload)}"
        if len(data.encode()) <= self.max_bytes and not payload.startswith(DIGEST_MARK):
            return data
        digest = DIGEST_MARK + hashlib.sha256(payload.encode()).hexdigest()[:16]
        await self._redis.hset(self._keys.callback_payloads(), digest, payload)
        return f"{digest}{SEPARATOR}{self._sign(digest)}"

    async def decode(self, data: str) -> str:
        body, sep, signature = data.rpartition(SEPARATOR)
        if not sep or not body or not hmac.compare_digest(signature, self._sign(body)):
            raise ForgedCallback("bad signature")
        if not body.startswith(DIGEST_MARK):
            return body
        payload = await self._redis.hget(self._keys.callback_payloads(), body)
        if payload is None:
            raise ForgedCallback("unknown digest")
        return str(payload)


def derive_secret(*material: str) -> bytes:
    """A signing key derived from secrets the deployment already has (e.g. the bot token)."""
    return hashlib.sha256("\x00".join(("supportbot-callbacks", *material)).encode()).digest()
