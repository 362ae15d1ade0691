"""The VK outbox sender: the one place messages.send and friends are called.

Messages of one dialogue go out in order through a per-peer lane; lanes run concurrently. One
budget per token paces every call (VK: 20 requests a second for a community token), customer
replies ahead of anything else. Errors 6 (too many requests), 9 (flood control) and 10 are
retried with back-off; since every part of a message carries a random_id derived from its id,
a retry of a send that did reach VK is not delivered twice. 901 and friends (the customer does
not accept our messages) mark the customer unreachable and, while a human is on it, say so in
the desk topic; any other error is logged with its code and journaled, and the lane moves on.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis

from bots import metrics
from bots.callbacks import CallbackSigner
from bots.ratelimit import PriorityLimiter, TokenBucket
from bots.vk.client import FLOOD_CONTROL, UNREACHABLE, VkClient, VkError
from bots.vk.outgoing import Uploads, keyboard, random_id, split_text
from handoff.conversations import ConversationStore
from handoff.events import MediaFile, OutboundMessage
from handoff.keys import Keys
from handoff.outbox import OutboxItem, OutboxReader

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class VkLimits:
    requests_per_second: float = 20.0  # per token (community tokens: 20/s)
    max_attempts: int = 5
    backoff_base: float = 0.5
    flood_backoff: float = 5.0  # error 9: VK wants a real pause, not a quick retry
    reclaim_every: float = 30.0


@dataclass(slots=True)
class _Lane:
    queue: deque[OutboxItem] = field(default_factory=deque)
    task: asyncio.Task[None] | None = None


class VkSender:
    def __init__(
        self, client: VkClient, reader: OutboxReader, store: ConversationStore,
        signer: CallbackSigner, redis: Redis, keys: Keys, uploads: Uploads,
        limits: VkLimits = VkLimits(), *, clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._client = client
        self._reader = reader
        self._store = store
        self._signer = signer
        self._redis = redis
        self._keys = keys
        self._uploads = uploads
        self.limits = limits
        self._clock = clock
        self._sleep = sleep
        rate = limits.requests_per_second
        self._budget = PriorityLimiter(TokenBucket(rate, rate, clock=clock))
        self._lanes: dict[int, _Lane] = {}
        self.sent = 0

    async def run(self, stop: asyncio.Event) -> None:
        await self._reader.start()
        for item in await self._reader.pending() + await self._reader.reclaim():
            await self._dispatch(item)
        last_reclaim = self._clock()
        try:
            while not stop.is_set():
                for item in await self._reader.read(block_ms=500):
                    await self._dispatch(item)
                if self._clock() - last_reclaim > self.limits.reclaim_every:
                    last_reclaim = self._clock()
                    for item in await self._reader.reclaim():
                        await self._dispatch(item)
            await self.drain(timeout=2.0)
        finally:  # what is still waiting stays unacked in the stream for the next sender
            tasks = [lane.task for lane in self._lanes.values() if lane.task is not None]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def drain(self, timeout: float | None = None) -> None:
        tasks = [lane.task for lane in self._lanes.values() if lane.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)

    async def _dispatch(self, item: OutboxItem) -> None:
        try:
            peer = int(item.message.peer)
        except ValueError:
            peer = 0
        if item.lane != "customer" or peer <= 0:
            log.error("vk outbox entry %s (%s lane, %s) is not for a VK customer: dropped",
                      item.entry_id, item.lane, item.message.conversation)
            await self._reader.ack(item)
            return
        lane = self._lanes.setdefault(peer, _Lane())
        lane.queue.append(item)
        if lane.task is None or lane.task.done():
            lane.task = asyncio.create_task(self._run_lane(peer, lane))

    async def _run_lane(self, peer: int, lane: _Lane) -> None:
        while lane.queue:
            item = lane.queue[0]
            try:
                await self._deliver(peer, item.message)
            except Exception:  # a bug must not stop the lane: the next message still goes
                log.exception("vk:%d: unexpected failure delivering %s", peer, item.message.id)
            lane.queue.popleft()
            await self._reader.ack(item)
        if self._lanes.get(peer) is lane and not lane.queue:
            del self._lanes[peer]

    async def _deliver(self, peer: int, message: OutboundMessage) -> None:
        try:
            if message.kind == "callback_answer":
                await self._answer(peer, message)
            elif message.kind == "edit":
                await self._edit(peer, message)
            elif message.kind in ("text", "copy"):
                await self._send(peer, message)
            else:
                log.error("vk:%d: %s messages cannot go to a VK customer: dropped",
                          peer, message.kind)
                return
        except VkError as exc:
            await self._failed(peer, message, exc)
            return
        metrics.OUTBOUND.labels("vk", message.lane, "sent").inc()
        if message.created_at:
            metrics.OUTBOUND_DELAY.observe(max(0.0, time.time() - message.created_at))

    async def _call(self, method: str, **params: Any) -> Any:
        """One paced API call, retried with back-off on 6, 9, 10 and network failures."""
        attempt = 0
        while True:
            await self._budget.acquire(0)
            try:
                return await self._client.call(method, **params)
            except VkError as exc:
                attempt += 1
                if not exc.transient or attempt >= self.limits.max_attempts:
                    raise
                base = self.limits.flood_backoff if exc.code == FLOOD_CONTROL \
                    else self.limits.backoff_base
                delay = base * 2 ** (attempt - 1)
                log.warning("vk %s: error %d (%s); retry %d in %.1fs", method, exc.code,
                            exc.message, attempt, delay)
                await self._sleep(delay)

    async def _send(self, peer: int, message: OutboundMessage) -> None:
        text = message.text
        # An operator's message from the desk carries its files in meta (see DeskDecider).
        files = [MediaFile(**f) for f in message.meta.get("files") or ()]
        attachments = [await self._uploads.attachment(peer, f) for f in files]
        if not text and not attachments:  # a sticker, voice, ...: nothing VK could show
            log.info("%s: %s message without text or files not sent to VK", message.conversation,
                     message.kind)
            await self._store.report_to_desk(
                message.conversation, "⚠️ Не отправлено: во ВКонтакте уходят текст, фото и "
                "документы.")
            return
        parts = split_text(text) if text else [""]
        markup = await self._keyboard(message)
        first_id = 0
        for number, part in enumerate(parts):
            last = number == len(parts) - 1
            sent = await self._call(
                "messages.send", peer_id=peer, random_id=random_id(message.id, number),
                message=part or None,
                attachment=",".join(attachments) if last and attachments else None,
                keyboard=markup if last else None, dont_parse_links=1,
            )
            first_id = first_id or int(sent)
            self.sent += 1
        if message.kind == "copy" and message.params.get("message_id"):
            await self._store.remember_mirror(message.conversation,
                                              int(message.params["message_id"]), first_id)

    async def _keyboard(self, message: OutboundMessage) -> str | None:
        if not message.buttons:
            return None
        text_only = await self._redis.sismember(self._keys.text_buttons("vk"),
                                                message.conversation)
        return await keyboard(message.buttons, self._signer, callback=not text_only)

    async def _edit(self, peer: int, message: OutboundMessage) -> None:
        target = await self._store.mirrored(message.conversation, message.params["message_id"])
        if target is None:
            log.info("%s: edit of a message the customer never got: ignored", message.conversation)
            return
        await self._call("messages.edit", peer_id=peer, message_id=target, message=message.text,
                         dont_parse_links=1)

    async def _answer(self, peer: int, message: OutboundMessage) -> None:
        if not message.callback_id:
            return  # a text button: nothing is spinning
        data = json.dumps({"type": "show_snackbar", "text": message.text[:90]},
                          ensure_ascii=False) if message.text else None
        try:
            await self._call("messages.sendMessageEventAnswer", event_id=message.callback_id,
                             user_id=peer, peer_id=peer, event_data=data)
        except VkError as exc:  # expired or already answered: nothing left to stop
            log.info("vk:%d: button press %s not answered (%s)", peer, message.callback_id, exc)

    async def _failed(self, peer: int, message: OutboundMessage, exc: VkError) -> None:
        if exc.code in UNREACHABLE:
            log.warning("vk:%d: unreachable (error %d: %s)", peer, exc.code, exc.message)
            metrics.OUTBOUND.labels("vk", message.lane, "unreachable").inc()
            await self._store.mark_unreachable(message.conversation,
                                               f"VK error {exc.code}: {exc.message}")
            if (await self._store.load(message.conversation)).state != "bot":
                await self._store.report_to_desk(
                    message.conversation,
                    f"⚠️ Не доставлено клиенту во ВКонтакте (ошибка {exc.code}): {exc.message}")
            return
        log.error("%s: message %s not delivered: VK error %d: %s", message.conversation,
                  message.id, exc.code, exc.message)
        metrics.OUTBOUND.labels("vk", message.lane, "failed").inc()
        await self._store.report_delivery_failure(message.conversation, message.id,
                                                  f"VK error {exc.code}: {exc.message}")
