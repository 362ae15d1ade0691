"""Delivers the desk lane of the outbox into the operators' group.

One forum group takes about 20 bot posts a minute in total, edits and topic changes included
(`budget.GroupBudget`), so desk items wait in one priority queue: urgent conversations' cards
and messages first, then by arrival; per conversation the order holds. Items with the same
`coalesce` key replace each other while they wait (one card render, one queue summary). A 429
is waited out however often it comes: a card is never given up for the group's limit.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest, TelegramMigrateToChat
from aiogram.types import (
    InlineKeyboardMarkup,
    Message,
    MessageEntity,
    ReplyParameters,
    URLInputFile,
    User,
)
from redis.asyncio import Redis

from bots.callbacks import CallbackSigner
from bots.delivery.policy import Delivery, Moved, RetryPolicy
from bots.desk.queue import DeskQueue, Queued, mergeable
from bots.desk.routing import DeskGroup
from bots.desk.store import card_of_this_handoff, in_chat
from bots.telegram.desk.budget import GroupBudget
from bots.telegram.desk.cards import CardData, card_keyboard, card_text
from bots.telegram.desk.relays import THREAD_GONE, Poster, PosterGone, RelayPool
from bots.telegram.desk.summary import SummarySource, summary_text
from bots.telegram.desk.topics import Place, Topics
from bots.telegram.errors import classify_telegram
from bots.turns import SUMMARY_PRIORITY
from handoff.conversations import Conversation, ConversationStore
from handoff.events import MediaFile, OutboundMessage
from handoff.keys import Keys
from handoff.outbox import OutboxItem

log = logging.getLogger(__name__)

# Seconds between two renders of the queue summary, unless an operator asks (/queue): an edit
# spends the group's budget like a message, and the summary is a glance, cards are not.
SUMMARY_EVERY = 20.0
SUMMARY_EVERY_BUSY = 60.0  # the same while other desk items wait for the group's budget
ALBUM_WAIT = 0.6  # seconds after an album's first part before it is relayed as one
CAPTION_LIMIT = 1024
# The group's limit is waited out however long it lasts (a card given up on is a customer
# nobody takes); other failures are retried as on every lane.
DESK_RETRY = RetryPolicy(max_waits=1_000_000)


class DeskRouter(Protocol):
    """Which desk group a conversation belongs to, with several (bots/telegram/desk/desks.py)."""

    async def desk_of(self, conv: str) -> int: ...

    def forward(self, item: OutboxItem, desk: int) -> None: ...

    def name_of(self, desk: int) -> str: ...


class DeskSender:
    def __init__(
        self, bot: Bot, redis: Redis, keys: Keys, store: ConversationStore,
        signer: CallbackSigner, topics: Topics, summary: SummarySource,
        ack: Callable[[OutboxItem], Awaitable[None]], *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep, concurrency: int = 4,
        retry: RetryPolicy = DESK_RETRY, timezone: str = "Europe/Moscow",
        may_send: Callable[[], Awaitable[bool]] | None = None,
        desk: DeskGroup | None = None,
    ) -> None:
        self._bot = bot
        # Which desk group this is (with several: OPERATOR_CHAT_IDS), and the router that knows
        # where each conversation belongs (set by Desks).
        self.desk = desk
        self.router: DeskRouter | None = None
        self._redis = redis
        self._keys = keys
        self._store = store
        self._signer = signer
        self.topics = topics
        self._snapshot = summary
        self._ack = ack
        self._may_send = may_send  # the sender's lease is surely ours (see LaneSender)
        self.pool: RelayPool = topics.pool
        self.pool.report = self._report_in_desk
        self.budget: GroupBudget = self.pool.main.budget
        self._tz = ZoneInfo(timezone)  # the team's, for the times of merged texts
        self.queue = DeskQueue(clock, every=SUMMARY_EVERY, every_busy=SUMMARY_EVERY_BUSY,
                               asked_below=SUMMARY_PRIORITY)
        self._spent: list[OutboxItem] = []  # acknowledged without posting (see enqueue)
        self._summary_task: asyncio.Task[None] | None = None
        # A few deliveries at once, never two of one conversation: its topic stays in order.
        self.concurrency = concurrency
        self._in_flight: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self.delivery = Delivery("telegram", classify_telegram, store, retry, sleep=sleep)
        self.delivered = 0

    def enqueue(self, item: OutboxItem) -> None:
        if item.message.kind == "summary":
            # Acknowledged at once: a summary is a view of the queue, re-rendered on its next
            # change, so a render lost to a crash loses nothing, and nothing stays pending.
            self._spent.append(item)
        self.queue.push(item)
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        try:
            await self._loop(stop)
        finally:
            # Nothing may outlive the bot's HTTP session; unsent items stay in the stream.
            pending = [*self._in_flight, *([self._summary_task] if self._summary_task else [])]
            try:
                if pending:  # a moment for deliveries already on the wire
                    await asyncio.wait(pending, timeout=2.0)
            finally:
                # Also when shutdown cancels us again during that moment: a delivery left
                # running would post after the session closed, on a session of its own.
                for task in pending:
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)

    async def _loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            for spent in self._spent:
                await self._ack(spent)
            self._spent.clear()
            summary_busy = self._summary_task is not None and not self._summary_task.done()
            summary = None if summary_busy else self.queue.summary_due()
            if summary is not None:
                self._summary_task = asyncio.create_task(self._summary_once(summary))
                continue
            queued = None
            if len(self._in_flight) < self.concurrency:
                queued, superseded = self.queue.take()
                self._spent.extend(superseded)  # a newer render of the same thing waits
            if queued is None:
                wait = self.queue.summary_wait()
                await self._idle(stop, None if wait == float("inf") else max(wait, 0.05))
                continue
            task = asyncio.create_task(self._deliver_queued(queued))
            self._in_flight.add(task)
            task.add_done_callback(functools.partial(self._finished, queued=queued))

    def _finished(self, task: asyncio.Task[None], *, queued: Queued) -> None:
        self._in_flight.discard(task)
        self.queue.done(queued)
        self._wake.set()

    async def _deliver_queued(self, queued: Queued) -> None:
        item = queued.item
        if self._may_send is not None and not await self._may_send():
            return  # the next holder of the lease posts it (it stays unacknowledged)
        if await self._elsewhere(item):
            return  # acknowledged by the desk it belongs to, once delivered there
        parts = await self._album(item)
        merged: list[OutboxItem] = []
        if not parts and mergeable(item.message):
            await self.budget.ready()  # what queued behind it meanwhile goes in the same post
            # When the group's budget is short, ten lines cost one post instead of ten.
            merged = self.queue.run_behind(item)
        try:
            if merged:
                await self._deliver(OutboxItem(item.lane, item.entry_id, replace(
                    item.message, kind="text", copy=None,
                    text=merged_text([item.message, *(m.message for m in merged)], self._tz))))
                parts = merged
            else:
                await self._deliver(item, [p.message.copy.message_id for p in parts
                                           if p.message.copy is not None])
        except Exception:
            log.exception("desk: %s for %s failed", item.message.kind, item.message.conversation)
        for done in (item, *parts):
            await self._ack(done)

    async def _elsewhere(self, item: OutboxItem) -> bool:
        """With several desks: an item of a conversation that belongs to another desk (it was
        moved while the item waited here) goes on to that desk. True when it went on."""
        message = item.message
        if self.desk is None or self.router is None or message.conversation.startswith("desk:"):
            return False
        if message.kind == "move":
            return await self._moved_away(item)
        owner = await self.router.desk_of(message.conversation)  # (remembered: no I/O)
        if owner == self.desk.chat_id:
            return False
        self.router.forward(item, owner)
        return True

    async def _moved_away(self, item: OutboxItem) -> bool:
        """`/transfer desk`: the old desk says where the conversation went and closes its
        topic, the conversation is routed to the new desk, and the item goes on to it (which
        posts a topic and a card there). False when this is the desk it moved to (the item
        renders the card here)."""
        assert self.desk is not None and self.router is not None
        message, target = item.message, int(item.message.text)
        if target == self.desk.chat_id:
            return False
        fields, _ = await self._store.snapshot(message.conversation, last=1)
        chat_id = await self.topics.chat_id()
        shown_here = in_chat(fields.get("topic", ""), chat_id) is not None \
            or in_chat(fields.get("anchor", ""), chat_id) is not None
        try:
            if shown_here:
                note = (f"➡️ Разговор передан в стол «{self.router.name_of(target)}». Тема "
                        f"закрыта: продолжение — там.")
                await self._deliver(OutboxItem(item.lane, item.entry_id, replace(
                    message, kind="text", text=note)))
                conv = Conversation.from_hash(message.conversation, fields)
                await self.topics.show_state(conv.id, conv.profile, "bot",
                                             shown=fields.get("topic_shown", ""))
        except Exception:  # the move itself must happen: the customer is waiting there
            log.exception("desk: %s's old topic not closed", message.conversation)
        await self.topics.store.moved(message.conversation, target)
        self.router.forward(item, target)
        return True

    async def _album(self, item: OutboxItem) -> list[OutboxItem]:
        """The other parts of an album the customer sent, so it lands in the topic as one.

        Telegram delivers an album as separate messages with no "last part" marker: wait a
        moment after the first part, then take every queued part of the same album.
        """
        message = item.message
        if not message.album:
            return []
        await asyncio.sleep(max(0.0, message.created_at + ALBUM_WAIT - time.time()))
        return self.queue.album_parts(item)

    async def _summary_once(self, item: OutboxItem) -> None:
        if self._may_send is not None and not await self._may_send():
            return
        try:
            await self._deliver(item)
        except Exception:
            log.exception("desk: queue summary failed")
        self._wake.set()  # (acknowledged when it was enqueued)

    async def _idle(self, stop: asyncio.Event, timeout: float | None) -> None:
        self._wake.clear()
        waiter = asyncio.ensure_future(self._wake.wait())
        stopper = asyncio.ensure_future(stop.wait())
        await asyncio.wait({waiter, stopper}, timeout=timeout,
                           return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        stopper.cancel()

    async def _deliver(self, item: OutboxItem, more: list[int] | None = None) -> None:
        """One desk post or edit under the shared retry policy; a moved group or a deleted
        topic is followed (bounded), and a post given up on is journaled."""
        message = item.message

        async def once() -> None:
            try:
                await self._deliver_once(message, more or [])
            except TelegramMigrateToChat as exc:  # (its budget slot was given back)
                await self.topics.migrate(exc.migrate_to_chat_id)
                raise Moved(f"desk group migrated to {exc.migrate_to_chat_id}") from exc
            except TelegramBadRequest as exc:
                if THREAD_GONE not in exc.message:
                    raise
                await self.topics.forget(message.conversation)
                raise Moved("topic deleted") from exc

        if await self.delivery.run(message, once, pause=self.budget.pause):
            self.delivered += 1

    async def _deliver_once(self, message: OutboundMessage, more: list[int]) -> None:
        if message.kind == "callback_answer":
            # Only the bot that received the press may answer it (a relay's card's press).
            answering = (self.pool.by_id(message.via) or self.pool.main).bot
            try:
                await answering.answer_callback_query(
                    message.callback_id, text=message.text or None, show_alert=message.alert
                )
            except TelegramBadRequest as exc:  # expired: nothing left to stop spinning
                log.info("desk callback not answered: %s", exc.message)
            return None
        if message.kind == "summary":
            return await self._post_summary()
        conv_id = message.conversation
        if conv_id.startswith("desk:"):
            chat_id = await self.topics.chat_id()
            await self.pool.run(lambda poster: poster.bot.send_message(chat_id, message.text))
            return None
        fields, transcript = await self._store.snapshot(conv_id)
        conv = Conversation.from_hash(conv_id, fields)
        if message.kind == "move":  # moved here: its topic and card, as for a handoff
            message = replace(message, kind="card")
        if message.kind in ("card", "topic") and not _shown_in_desk(conv, fields, message.kind):
            # Closed before its card went out (the customer cancelled while the card waited
            # behind the group's limit): no topic and no card for what nobody needs to take.
            log.info("%s: closed before the desk showed it; card and topic skipped", conv_id)
            return None
        if message.kind == "topic":
            state = "banned" if conv.banned else conv.state
            return await self.topics.show_state(
                conv_id, conv.profile, state, shown=fields.get("topic_shown", ""))
        place = await self.topics.place(conv_id, conv.profile, conv.state, known=fields)
        if message.kind == "card":
            return await self._post_card(conv, fields, transcript, place)
        if place.thread_id is not None and self.pool.relays and relayable(message, more) and (
                message.kind != "copy" or self.budget.short()):
            # A text any bot can post: whichever has budget (a copy keeps the customer's
            # formatting, so it goes through a relay only when the main bot would wait).
            text, entities = with_mentions(message.text, list(message.mention))
            await self.pool.post_text(place.chat_id, place.thread_id, text, entities)
            return None
        if message.files and message.copy is None:  # another platform's photos/documents (VK)
            sent_id = await self._send_files(place, message)
        else:
            sent_id = await self._post_by_main(place, message, more)
        await self.topics.remember_message(conv_id, place, sent_id)
        return None

    async def _post_by_main(self, place: Place, message: OutboundMessage,
                            more: list[int]) -> int:
        """A copy of the customer's message (only the main bot was in their chat), or a post
        outside forum topics (message ids there are the main bot's own)."""
        reply = ReplyParameters(message_id=place.reply_to) if place.reply_to else None
        copy = message.copy
        if copy is not None and more:
            ids = sorted([copy.message_id, *more])
            _, copies = await self.pool.run(lambda p: p.bot.copy_messages(
                place.chat_id, copy.from_chat, ids, message_thread_id=place.thread_id,
            ), relays=False, cost=1 + len(more))  # each part of an album is a message
            for part in copies[1:]:
                await self.topics.remember_message(message.conversation, place, part.message_id)
            return copies[0].message_id
        if copy is not None:
            _, copied = await self.pool.run(lambda p: p.bot.copy_message(
                place.chat_id, copy.from_chat, copy.message_id,
                message_thread_id=place.thread_id, reply_parameters=reply,
            ), relays=False)
            return copied.message_id
        text, entities = with_mentions(message.text, list(message.mention))
        _, sent = await self.pool.run(lambda p: p.bot.send_message(
            place.chat_id, text, message_thread_id=place.thread_id,
            reply_parameters=reply, entities=entities,
        ), relays=False)
        return sent.message_id

    async def _report_in_desk(self, text: str) -> None:
        """A note in the desk's General topic, for what operators and admins must fix."""
        try:
            chat_id = await self.topics.chat_id()
            await self.pool.run(lambda p: p.bot.send_message(chat_id, text), relays=False)
        except Exception as exc:  # the report is best effort; the log line is already there
            log.warning("desk: a report could not be posted: %s", exc)

    async def _send_files(self, place: Place, message: OutboundMessage) -> int:
        """Photos and documents from a platform Telegram cannot copy from, fetched from their
        URLs (aiogram downloads and uploads them); the text is the first file's caption. An
        upload needs no `file_id`, so in a forum topic any bot of the pool may make it."""
        relays = place.thread_id is not None
        text = message.text
        if len(text) > CAPTION_LIMIT:  # too long for a caption: a message of its own first
            await self.pool.run(lambda p: p.bot.send_message(
                place.chat_id, text, message_thread_id=place.thread_id), relays=relays)
            text = ""
        sent_id = 0
        for number, file in enumerate(message.files):
            caption = text if number == 0 and text else None
            _, sent = await self.pool.run(
                functools.partial(_upload, place, file, caption), relays=relays)
            await self.topics.remember_message(message.conversation, place, sent.message_id)
            sent_id = sent_id or sent.message_id
        return sent_id

    async def _post_card(
        self, conv: Conversation, fields: dict[str, str], transcript: list[dict[str, Any]],
        place: Place,
    ) -> None:
        conv_id = conv.id
        owner = fields.get("owner", "")
        owner_name = ""
        if owner:
            owner_name = str(await self._redis.hget(self._keys.operator(owner), "name") or owner)
        handoff = fields.get("handoffs", "0")  # the number of the conversation's handoff
        data = CardData(
            conversation=conv, fields=fields,
            transcript=transcript, owner_name=owner_name,
            earlier=max(int(fields.get("closed", 0)), int(handoff) - 1),
        )
        text, keyboard = card_text(data), await card_keyboard(conv, self._signer)
        card_id = in_chat(fields.get("card", ""), place.chat_id)
        # Only the bot that posted the card may edit it (and receives its presses); a relay
        # dropped since leaves it as it is, and a new card is posted.
        card_bot = self.pool.by_id(int(fields.get("card_bot") or 0))
        # A card belongs to one handoff. A later one gets a card of its own: operators are
        # notified of a new post, never of an edit far up the topic. The closing render (state
        # "bot") still goes to the card of the handoff that just ended.
        if card_id is not None and card_bot is not None and (
                conv.state == "bot" or card_of_this_handoff(fields)):
            if await self._edit_in_place(card_bot, place.chat_id, card_id, text, keyboard):
                return
        elif card_id is not None and card_bot is not None:
            await self._retire_card(card_bot, place.chat_id, card_id)
        reply = ReplyParameters(message_id=place.reply_to) if place.reply_to else None
        # In a forum topic any bot of the pool may post it (its presses are polled too).
        poster, sent = await self.pool.run(lambda p: p.bot.send_message(
            place.chat_id, text, message_thread_id=place.thread_id, reply_markup=keyboard,
            reply_parameters=reply,
        ), relays=place.thread_id is not None)
        await self.topics.store.card_posted(conv_id, place.chat_id, sent.message_id, handoff,
                                            bot=poster.id)
        await self.topics.remember_message(conv_id, place, sent.message_id)

    async def _edit_in_place(
        self, poster: Poster, chat_id: int, message_id: int, text: str,
        keyboard: InlineKeyboardMarkup | None = None,
    ) -> bool:
        """Re-render a card or the summary by the bot that posted it; False when it is gone
        (post a new one instead)."""
        try:
            await self.pool.run(lambda p: p.bot.edit_message_text(
                text, chat_id=chat_id, message_id=message_id, reply_markup=keyboard),
                poster=poster)
        except PosterGone:
            return False
        except TelegramBadRequest as exc:
            if "message to edit not found" in exc.message:
                return False
            if "not modified" not in exc.message:
                raise
        return True

    async def _retire_card(self, poster: Poster, chat_id: int, message_id: int) -> None:
        """An earlier handoff's card keeps its text as history but loses its buttons (its
        closing render may have been coalesced away by the new handoff's)."""
        try:
            await self.pool.run(lambda p: p.bot.edit_message_reply_markup(
                chat_id=chat_id, message_id=message_id, reply_markup=None), poster=poster)
        except PosterGone:
            pass
        except TelegramBadRequest as exc:  # gone, or already without buttons
            log.info("desk: earlier card %d:%d not retired: %s", chat_id, message_id,
                     exc.message)

    async def _post_summary(self) -> None:
        chat_id = await self.topics.chat_id()
        text = summary_text(await self._snapshot())
        summary = in_chat(await self.topics.store.summary(), chat_id)
        if summary is not None and await self._edit_in_place(self.pool.main, chat_id, summary,
                                                              text):
            return
        _, sent = await self.pool.run(lambda p: p.bot.send_message(chat_id, text), relays=False)
        await self.topics.store.set_summary(chat_id, sent.message_id)


async def _upload(place: Place, file: MediaFile, caption: str | None, poster: Poster) -> Message:
    if file.kind == "photo":
        return await poster.bot.send_photo(place.chat_id, URLInputFile(file.url),
                                           caption=caption, message_thread_id=place.thread_id)
    return await poster.bot.send_document(
        place.chat_id, URLInputFile(file.url, filename=file.name or None), caption=caption,
        message_thread_id=place.thread_id)


def relayable(message: OutboundMessage, more: list[int]) -> bool:
    """A text a relay bot can post (no album, no file, nothing only the main bot can copy)."""
    return (not more and not message.files and not message.album and bool(message.text)
            and (message.kind == "text" or (message.kind == "copy" and message.said_at > 0)))


def merged_text(messages: list[OutboundMessage], tz: ZoneInfo) -> str:
    """One post for several customer texts, each line with the time it was written."""
    return "\n".join(
        f"[{datetime.fromtimestamp(m.said_at, tz):%H:%M:%S}] {m.text}" for m in messages)


def _shown_in_desk(conv: Conversation, fields: dict[str, str], kind: str) -> bool:
    """Whether the desk should render this conversation's card (or topic state): always while
    a handoff is on; back with the bot, only what the desk already shows of it."""
    if conv.state != "bot" or conv.banned:
        return True
    if kind == "topic":
        return bool(fields.get("topic"))
    return card_of_this_handoff(fields)


def with_mentions(text: str, user_ids: list[int]) -> tuple[str, list[MessageEntity] | None]:
    """Append a mention of each user (a notification for them even without a username)."""
    if not user_ids:
        return text, None
    entities = []
    for number, user_id in enumerate(user_ids, 1):
        label = f"@{number}"
        text += " " + label
        entities.append(MessageEntity(
            type="text_mention", offset=len(text.encode("utf-16-le")) // 2 - len(label),
            length=len(label), user=User(id=user_id, is_bot=False, first_name=label),
        ))
    return text, entities
