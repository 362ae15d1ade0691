"""Sending a notice: recipients in batches into the customer outboxes, at the senders' pace.

Each recipient is decided by one call of lua/notice_send.lua (sent, or skipped with a reason),
so a run killed at any point is resumed by running it again: what was decided stays decided and
nobody gets the notice twice. The senders pace delivery by each platform's limits; the run only
keeps each outbox's backlog under `max_backlog`, so a notice to many customers never stands in
front of the bot's answers to customers who are talking to it now (both share the customer lane).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from handoff.conversations import channel_of
from handoff.events import OutboundMessage
from handoff.keys import Keys
from handoff.notices import Notice, NoticeError, Notices
from handoff.outbox import GROUP
from handoff.scripts import Scripts

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RunLimits:
    batch: int = 20  # recipients decided between looks at the outboxes
    # Entries an outbox may hold undelivered before the run waits: with a batch more, about
    # 4 s of VK's 20 requests a second, the most a live customer's answer waits behind it.
    max_backlog: int = 60
    poll: float = 0.2  # seconds between looks at a full outbox
    transcript_max: int = 200
    outbox_maxlen: int = 100_000


async def backlog(redis: Redis, stream: str, limit: int) -> int:
    """Entries of a customer outbox not yet delivered (read or unread by its sender), counted
    up to `limit + 1`: Redis 6.2 has no group lag, so the unread ones are read past the group's
    last delivered id."""
    try:
        groups = await redis.xinfo_groups(stream)
    except ResponseError:  # no such stream: nothing waits
        return 0
    group = next((g for g in groups if str(g["name"]) == GROUP), None)
    if group is None:  # no sender ever started on it
        return int(await redis.xlen(stream))
    unread = await redis.xrange(stream, min=f"({group['last-delivered-id']}", max="+",
                                count=limit + 1)
    return int(group["pending"]) + len(unread or [])


class NoticeRun:
    def __init__(self, redis: Redis, keys: Keys, scripts: Scripts, notices: Notices,
                 limits: RunLimits = RunLimits(),
                 on_progress: Callable[[Notice], Any] | None = None) -> None:
        self._redis = redis
        self._keys = keys
        self._scripts = scripts
        self._notices = notices
        self.limits = limits
        self._on_progress = on_progress
        self.waited = 0.0  # seconds spent waiting for a full outbox

    async def run(self, notice_id: str, stop: asyncio.Event | None = None) -> Notice:
        """Send (or resume sending) the notice; returns it with its counts, at the end or
        when `stop` is set (then it stays `sending`, to be resumed)."""
        stop = stop or asyncio.Event()
        notice = await self._notices.get(notice_id)
        if notice is None:
            raise NoticeError(f"no notice {notice_id}")
        if notice.status == "cancelled":
            raise NoticeError(f"notice {notice_id} was cancelled")
        await self._notices.set_status(notice_id, "sending")
        self._progress(notice)
        for batch in await self._notices.undecided(notice_id, self.limits.batch):
            await self._room_for(batch, stop)
            if stop.is_set():
                break
            outcomes = await self._send(notice, batch)
            if "cancelled" in outcomes:
                break
            notice = await self._notices.get(notice_id) or notice
            self._progress(notice)
        final = await self._notices.get(notice_id) or notice
        if final.status == "sending" and final.decided >= final.total:
            await self._notices.set_status(notice_id, "done")
            final = await self._notices.get(notice_id) or final
        self._progress(final)
        return final

    def _progress(self, notice: Notice) -> None:
        if self._on_progress is not None:
            self._on_progress(notice)

    async def _room_for(self, batch: list[str], stop: asyncio.Event) -> None:
        for channel in sorted({channel_of(conv) for conv in batch}):
            stream = self._keys.outbox(channel, "customer")
            started = time.monotonic()
            while not stop.is_set() and await backlog(
                    self._redis, stream, self.limits.max_backlog) > self.limits.max_backlog:
                await asyncio.sleep(self.limits.poll)
            self.waited += time.monotonic() - started

    async def _send(self, notice: Notice, batch: list[str]) -> list[str]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for conv in batch:
                pipe.hget(self._keys.conversation(conv), "route")
            routes = [str(route or "") for route in await pipe.execute()]
        outcomes = []
        for conv, route in zip(batch, routes, strict=True):
            for _attempt in range(3):  # the customer may write from their other network now
                outcome, detail = await self._one(notice, conv, route)
                if outcome != "moved":
                    break
                route = detail
            else:
                log.warning("notice %s: %s keeps changing networks; left for a resume",
                            notice.id, conv)
            outcomes.append(outcome)
        return outcomes

    async def _one(self, notice: Notice, conv: str, route: str) -> tuple[str, str]:
        now = time.time()
        message = OutboundMessage(conversation=conv, text=notice.text, created_at=now,
                                  route=route if route != conv else "")
        entry = {"at": now, "dir": "out", "text": notice.text, "notice": notice.id}
        args = {"conv": conv, "route": route, "message": message.to_json(),
                "entry": json.dumps(entry, ensure_ascii=False),
                "transcript_max": self.limits.transcript_max,
                "outbox_maxlen": self.limits.outbox_maxlen}
        keys = [self._keys.notice(notice.id), self._keys.notice_done(notice.id),
                self._keys.conversation(conv), self._keys.transcript(conv),
                self._keys.outbox(channel_of(route or conv), "customer")]
        outcome, detail = await self._scripts["notice_send"](
            keys=keys, args=[json.dumps(args, ensure_ascii=False)])
        return str(outcome), str(detail)
