"""The Telegram outbox sender: the one place outbound Bot API calls are made.

Messages of one chat go out in order through a per-chat lane; lanes run concurrently, so a chat
that waits on `retry_after` never holds up the others. Pacing follows Telegram's published limits
(about 1 message/s per chat with a short burst, 20/min per group, 30/s overall), customer replies
take the overall budget before desk messages. 429 waits `retry_after`; transient errors are retried
with back-off; 403 marks the customer unreachable instead of retrying forever; anything else that
fails for good is logged and written to the journal.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from bots.callbacks import CallbackSigner
from bots.delivery.lanes import Lane, LaneSender
from bots.delivery.policy import Delivery, RetryPolicy
from bots.ratelimit import (
    Budget,
    Combined,
    PriorityLimiter,
    SlidingWindow,
    TokenBucket,
    per_second,
)
from bots.telegram.desk.desks import Desks
from bots.telegram.desk.sender import ALBUM_WAIT
from bots.telegram.errors import classify_telegram
from handoff.conversations import ConversationStore
from handoff.events import OutboundMessage
from handoff.lease import Lease
from handoff.outbox import OutboxItem, OutboxReader

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SendLimits:
    per_chat_rate: float = 1.0
    per_chat_burst: float = 3.0
    per_group_per_minute: float = 20.0
    desk_per_second: float = 1.0  # the desk group is a chat too (its own clock: see Tuning)
    overall_rate: float = 30.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)


class TelegramSender(LaneSender):
    channel = "telegram"

    def __init__(
        self, bot: Bot, reader: OutboxReader, store: ConversationStore, signer: CallbackSigner,
        limits: SendLimits = SendLimits(), *, lease: Lease | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep, desk: Desks | None = None,
    ) -> None:
        super().__init__(reader, lease)
        self._bot = bot
        self._store = store
        self._signer = signer
        self.limits = limits
        self._clock = clock
        self._sleep = sleep
        self._overall = PriorityLimiter(per_second(limits.overall_rate, clock=clock))
        self._buckets: dict[int, Budget] = {}
        self.delivery = Delivery(
            "telegram", classify_telegram, store, limits.retry, sleep=sleep,
            on_unreachable=self._tell_desk_unreachable)
        self.sent = 0
        self.desk = desk  # when an operator desk is configured

    def companions(self, stop: asyncio.Event) -> list[asyncio.Task[None]]:
        return [asyncio.create_task(self.desk.run(stop), name="desk")] if self.desk else []

    async def route(self, item: OutboxItem) -> bool:
        if item.lane != "desk":
            return False
        if self.desk is None:
            log.error("desk message for %s but no OPERATOR_CHAT_ID: dropped",
                      item.message.conversation)
            await self.ack(item)
        else:
            await self.desk.enqueue(item)
        return True

    def peer(self, item: OutboxItem) -> int | None:
        try:
            return int(item.message.peer)
        except ValueError:
            log.error("outbox entry %s: bad chat id %r", item.entry_id, item.message.peer)
            return None

    def _chat_bucket(self, chat_id: int) -> Budget:
        """The chat's budget outlives its lane: a lane ends whenever its queue drains."""
        bucket = self._buckets.get(chat_id)
        if bucket is None:
            if len(self._buckets) > 10_000:  # forget chats whose budget is full again
                self._buckets = {k: b for k, b in self._buckets.items() if not b.full()}
            bucket = self._buckets[chat_id] = self._new_bucket(chat_id)
        return bucket

    def _new_bucket(self, chat_id: int) -> Budget:
        if chat_id < 0:  # groups and supergroups: so many per any minute
            limit = max(1, int(self.limits.per_group_per_minute))
            return Combined(
                TokenBucket(self.limits.per_chat_rate, self.limits.per_chat_burst,
                            clock=self._clock),
                SlidingWindow(limit, 61.0, clock=self._clock),
            )
        # A little under Telegram's own numbers: request jitter bunches paced sends up.
        return TokenBucket(self.limits.per_chat_rate * 0.95,
                           max(1.0, self.limits.per_chat_burst - 1), clock=self._clock)

    async def deliver(self, chat_id: int, item: OutboxItem, lane: Lane) -> list[OutboxItem]:
        parts = await self._album_parts(lane, item)
        message = item.message
        bucket = self._chat_bucket(chat_id)

        async def once() -> None:
            if message.kind == "callback_answer":
                await self._answer_callback(message)
            else:
                await self._pace(bucket, item, len(parts))
                await self._send(chat_id, message, [part.message for part in parts])

        await self.delivery.run(message, once, pause=bucket.pause)
        return parts

    async def _tell_desk_unreachable(self, message: OutboundMessage, reason: str) -> None:
        """A human is on it: tell them in the topic."""
        if message.lane == "customer" and (
                await self._store.load(message.conversation)).state != "bot":
            await self._store.report_to_desk(message.conversation,
                                             f"⚠️ Не доставлено клиенту: {reason}")

    async def _album_parts(self, lane: Lane, item: OutboxItem) -> list[OutboxItem]:
        """The rest of an album an operator sent, so the customer gets it as one album.

        Parts are separate updates with no "last part" marker: wait a moment after the
        first part was committed, then take every part of the same album from the lane.
        """
        album = item.message.album
        if not album:
            return []
        await self._sleep(max(0.0, item.message.created_at + ALBUM_WAIT - time.time()))
        parts = [queued for queued in lane.queue
                 if queued is not item and queued.message.album == album]
        for part in parts:
            lane.queue.remove(part)
        return parts

    async def _pace(self, bucket: Budget, item: OutboxItem, more: int = 0) -> None:
        """One request against the chat's budget; each message it makes (an album's parts
        too) against the overall one."""
        wait = bucket.delay()
        if wait > 0:
            await self._sleep(wait)
        bucket.take()
        message = item.message
        since = message.bot.received_at if message.bot and message.bot.received_at else \
            message.created_at
        for _message in range(1 + more):
            await self._overall.acquire(0 if item.lane == "customer" else 1, since)

    async def _send(
        self, chat_id: int, message: OutboundMessage, parts: list[OutboundMessage]
    ) -> None:
        if message.copy is not None and parts:
            await self._copy_album(chat_id, [message, *parts])
        elif message.copy is not None:
            copied = await self._bot.copy_message(
                chat_id, message.copy.from_chat, message.copy.message_id)
            await self._store.remember_mirror(
                message.conversation, message.copy.message_id, copied.message_id)
        elif message.kind == "edit":
            await self._edit(chat_id, message)
        else:
            markup = await self._keyboard(message)
            await self._bot.send_message(chat_id, message.text, reply_markup=markup)
        self.sent += 1

    async def _copy_album(self, chat_id: int, parts: list[OutboundMessage]) -> None:
        """copyMessages keeps the album together; its ids must be strictly increasing."""
        originals = sorted((part.copy for part in parts if part.copy is not None),
                           key=lambda original: original.message_id)
        copies = await self._bot.copy_messages(
            chat_id, originals[0].from_chat, [original.message_id for original in originals])
        if len(copies) != len(parts):  # uncopyable parts were skipped: which is unknown
            log.warning("tg:%d: %d of %d album parts copied", chat_id, len(copies), len(parts))
            return
        for original, copy in zip(originals, copies, strict=True):  # edits are mirrored too
            await self._store.remember_mirror(
                parts[0].conversation, original.message_id, copy.message_id)

    async def _edit(self, chat_id: int, message: OutboundMessage) -> None:
        target = await self._store.mirrored(message.conversation, message.edit_of)
        if target is None:
            log.info("%s: edit of a message the customer never got: ignored", message.conversation)
            return
        try:
            await self._bot.edit_message_text(message.text, chat_id=chat_id, message_id=target)
        except TelegramBadRequest as exc:
            if "there is no text in the message" in exc.message:
                await self._bot.edit_message_caption(
                    chat_id=chat_id, message_id=target, caption=message.text
                )
            elif "not modified" not in exc.message:
                raise

    async def _answer_callback(self, message: OutboundMessage) -> None:
        try:
            await self._bot.answer_callback_query(
                message.callback_id, text=message.text or None, show_alert=message.alert
            )
        except TelegramBadRequest as exc:  # the query expired: nothing left to stop spinning
            log.info("callback %s not answered: %s", message.callback_id, exc.message)

    async def _keyboard(self, message: OutboundMessage) -> InlineKeyboardMarkup | None:
        if not message.buttons:
            return None
        rows = []
        for row in message.buttons:
            buttons = []
            for button in row:
                if button.url:
                    buttons.append(InlineKeyboardButton(text=button.title, url=button.url))
                else:
                    data = await self._signer.encode(button.payload)
                    buttons.append(InlineKeyboardButton(text=button.title, callback_data=data))
            rows.append(buttons)
        return InlineKeyboardMarkup(inline_keyboard=rows)
