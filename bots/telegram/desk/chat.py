"""The desk group's chat id: the configured one, or the supergroup it migrated to.

A basic group that is upgraded to a supergroup gets a new id. Telegram says so twice: a service
message in the old group (`migrate_to_chat_id`) and one in the new (`migrate_from_chat_id`), and
an error on the next post into the old one. Whoever learns of it first records it here, in Redis,
so every process follows: the sender posts into the new group and the ingress takes operators'
messages from it (before, the ingress read the id once at start and ignored the migrated group
until a restart).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from bots.desk.store import DeskStore

log = logging.getLogger(__name__)

REFRESH = 5.0  # seconds: how stale a process's idea of the desk chat may be


class DeskChat:
    def __init__(self, store: DeskStore, configured: int, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.configured = configured
        self._clock = clock
        self._chat: int | None = None
        self._read_at = -REFRESH

    async def id(self) -> int:
        """The current id (re-read from Redis at most every REFRESH seconds)."""
        if self._chat is None or self._clock() - self._read_at >= REFRESH:
            self._chat = await self.store.chat() or self.configured
            self._read_at = self._clock()
        return self._chat

    async def migrate(self, old: int, new: int) -> None:
        """Record that `old` became `new` (nothing when `old` is not the desk)."""
        if old != await self.id() or old == new:
            return
        log.warning("desk group %d migrated to supergroup %d", old, new)
        await self.store.migrated(new)
        self._chat, self._read_at = new, self._clock()
