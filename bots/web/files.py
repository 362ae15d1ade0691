"""Images in web conversations: what visitors upload and what operators send them, kept in
Redis for `WEB_FILE_DAYS` and served by an unguessable id.

The type is read from the bytes, never taken from the upload's name or header, so a file that
only calls itself an image is refused, and it is served with that type and `nosniff`.
"""

from __future__ import annotations

import base64
import secrets

from redis.asyncio import Redis

from handoff.keys import Keys

MAX_BYTES = 5 * 1024 * 1024
_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


class FileError(ValueError):
    """Not an image we keep, or too large; the message says which."""


def image_type(data: bytes) -> str | None:
    for magic, kind in _SIGNATURES:
        if data.startswith(magic):
            return kind
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


class WebFiles:
    def __init__(self, redis: Redis, keys: Keys, days: float = 30.0) -> None:
        self._redis = redis
        self._keys = keys
        self._ttl = int(days * 86400)

    async def store(self, data: bytes) -> str:
        if len(data) > MAX_BYTES:
            raise FileError(f"the image is larger than {MAX_BYTES // (1024 * 1024)} MB")
        kind = image_type(data)
        if kind is None:
            raise FileError("only PNG, JPEG, GIF and WebP images can be sent")
        file_id = secrets.token_urlsafe(18)
        key = self._keys.web_file(file_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            # base64: the client decodes replies as text (one client for the whole product)
            pipe.hset(key, mapping={"type": kind, "data": base64.b64encode(data).decode()})
            pipe.expire(key, self._ttl)
            await pipe.execute()
        return file_id

    async def load(self, file_id: str) -> tuple[str, bytes] | None:
        kind, data = await self._redis.hmget(self._keys.web_file(file_id), "type", "data")
        if kind is None or data is None:
            return None
        return str(kind), base64.b64decode(data)
