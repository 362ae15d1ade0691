"""What changed, for the console's open pages: `{"type": "changed", "conv", "action"}`.

One reader per process, however many pages are open, blocks on two kinds of stream at once and
hands each change to every subscribed socket:

- **The journal** (`Keys.journal`): every transition script writes an entry with `conv` and
  `action` in the same atomic step as the change (handoff, claim, reply, transfer, close, tag,
  note, ban, …), so a page hears of each one after it happened, whoever made it: the console,
  the Telegram desk, the API, the SLA timers.
- **The inbound shards** (`Keys.inbound_stream`): messages are not journaled, and a customer
  writing to an operator (or an operator writing in the Telegram topic) changes only the
  transcript. Every message from every channel enters through these streams, so they are the
  one place to watch — but an entry there is the message *before* the worker committed it. The
  worker's commit stores the entry's id as the conversation's `last_event`, so the change is
  told once `last_event` has reached that id (or after a few seconds: an event the worker
  drops changes nothing anyway). Conversations with the bot are skipped (the console shows only
  handed-off ones; a handoff itself is journaled).

A page that fell behind (its queue full) or a reader that lost Redis gets `{"type": "resync"}`
and refetches everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from handoff.keys import Keys

log = logging.getLogger(__name__)

Frame = dict[str, str]
QUEUE_SIZE = 256
BLOCK_MS = 2000  # under the client's socket timeout (redis-py's default is 5 s)
COMMIT_WAIT = 3.0  # seconds to wait for the worker's commit of a message
COMMIT_POLL = 0.05


class LiveFeed:
    def __init__(self, redis: Redis, keys: Keys, shards: int) -> None:
        self._redis = redis
        self._keys = keys
        self._shards = shards
        self._subscribers: set[asyncio.Queue[Frame]] = set()
        self._reader: asyncio.Task[None] | None = None
        self._waits: set[asyncio.Task[None]] = set()

    def subscribe(self) -> asyncio.Queue[Frame]:
        queue: asyncio.Queue[Frame] = asyncio.Queue(QUEUE_SIZE)
        self._subscribers.add(queue)
        if self._reader is None or self._reader.done():
            self._reader = asyncio.create_task(self._run(), name="console-live")
        return queue

    async def unsubscribe(self, queue: asyncio.Queue[Frame]) -> None:
        self._subscribers.discard(queue)
        if not self._subscribers:
            await self.close()

    async def close(self) -> None:
        tasks = [t for t in (self._reader, *self._waits) if t is not None]
        self._reader = None
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._waits.clear()

    def publish(self, frame: Frame) -> None:
        for queue in list(self._subscribers):
            try:
                queue.put_nowait(frame)
            except asyncio.QueueFull:  # a page that does not keep up refetches everything
                with contextlib.suppress(asyncio.QueueEmpty):
                    while True:
                        queue.get_nowait()
                queue.put_nowait({"type": "resync"})

    # --- the reader --------------------------------------------------------------------------
    def _streams(self) -> list[str]:
        return [self._keys.journal(),
                *(self._keys.inbound_stream(shard) for shard in range(self._shards))]

    async def _run(self) -> None:
        failed = False
        while True:
            try:
                positions = await self._ends()
                if failed:
                    self.publish({"type": "resync"})
                    failed = False
                while True:
                    reply: Any = await self._redis.xread(
                        positions, count=200, block=BLOCK_MS)  # type: ignore[arg-type]
                    for stream, entries in reply or ():
                        for entry_id, fields in entries:
                            positions[str(stream)] = str(entry_id)
                            await self._entry(str(stream), str(entry_id), fields)
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                if not failed:
                    log.warning("console live updates: %s; retrying", exc)
                failed = True
                await asyncio.sleep(1.0)

    async def _ends(self) -> dict[str, str]:
        """Where each stream ends now ("$" would skip whatever arrives between two reads)."""
        streams = self._streams()
        async with self._redis.pipeline(transaction=False) as pipe:
            for stream in streams:
                pipe.xrevrange(stream, count=1)
            lasts = await pipe.execute()
        return {stream: (str(last[0][0]) if last else "0-0")
                for stream, last in zip(streams, lasts, strict=True)}

    async def _entry(self, stream: str, entry_id: str, fields: dict[str, str]) -> None:
        if stream == self._keys.journal():
            self.publish({"type": "changed", "conv": fields.get("conv", ""),
                          "action": fields.get("action", "")})
            return
        try:
            conv = str(json.loads(fields["e"])["conversation"])
        except (KeyError, TypeError, ValueError):
            return
        task = asyncio.create_task(self._after_commit(conv, entry_id))
        self._waits.add(task)
        task.add_done_callback(self._waits.discard)

    async def _after_commit(self, conv: str, entry_id: str) -> None:
        """Tell of a message once the worker committed it (its `last_event` reached the
        entry), unless the conversation is with the bot."""
        key = self._keys.conversation(conv)
        state, last, linked = await self._redis.hmget(key, ["state", "last_event", "linked_to"])
        if linked:  # a linked customer's other network: the conversation is the home one
            conv, key = str(linked), self._keys.conversation(str(linked))
            state, last = await self._redis.hmget(key, ["state", "last_event"])
        if state not in ("queued", "assigned"):
            return
        deadline = asyncio.get_running_loop().time() + COMMIT_WAIT
        while not _reached(last, entry_id) and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(COMMIT_POLL)
            last = await self._redis.hget(key, "last_event")
        self.publish({"type": "changed", "conv": conv, "action": "message"})


def _reached(last: Any, entry_id: str) -> bool:
    """Whether the committed entry `last` is `entry_id` or a later one of the same shard."""
    if not last:
        return False
    try:
        return _stream_id(str(last)) >= _stream_id(entry_id)
    except ValueError:
        return False


def _stream_id(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)
