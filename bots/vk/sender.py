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
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis

from bots.callbacks import CallbackSigner
from bots.delivery.lanes import Lane, LaneSender
from bots.delivery.policy import Delivery, Outcome, Permanent, RetryPolicy, Transient, Unreachable
from bots.ratelimit import PriorityLimiter, per_second
from bots.vk.client import FLOOD_CONTROL, UNREACHABLE, VkClient, VkError
from bots.vk.outgoing import Uploads, keyboard, random_id, split_text
from handoff.conversations import ConversationStore
from handoff.events import OutboundMessage
from handoff.keys import Keys
from handoff.lease import Lease
from handoff.outbox import OutboxItem, OutboxReader

log = logging.getLogger(__name__)


FLOOD_BACKOFF = 5.0  # seconds before the first retry after error 9


@dataclass(frozen=True, slots=True)
class VkLimits:
    requests_per_second: float = 20.0  # per token (community tokens: 20/s)
    retry: RetryPolicy = field(default_factory=RetryPolicy)


def classify_vk(exc: Exception) -> Outcome | None:
    """VK's error codes (https://dev.vk.com/reference/errors) as delivery outcomes."""
    if not isinstance(exc, VkError):
        return None
    reason = f"VK error {exc.code}: {exc.message}"
    if exc.code in UNREACHABLE:
        return Unreachable(reason)
    if exc.transient:
        # 9 (flood control): VK wants a real pause, not a quick retry.
        return Transient(reason, backoff=FLOOD_BACKOFF if exc.code == FLOOD_CONTROL else None)
    return Permanent(reason)


class VkSender(LaneSender):
    channel = "vk"

    def __init__(
        self, client: VkClient, reader: OutboxReader, store: ConversationStore,
        signer: CallbackSigner, redis: Redis, keys: Keys, uploads: Uploads,
        limits: VkLimits = VkLimits(), *, lease: Lease | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        super().__init__(reader, lease)
        self._client = client
        self._store = store
        self._signer = signer
        self._redis = redis
        self._keys = keys
        self._uploads = uploads
        self.limits = limits
        rate = limits.requests_per_second
        self._budget = PriorityLimiter(per_second(rate, clock=clock))
        self.delivery = Delivery("vk", classify_vk, store, limits.retry, sleep=sleep,
                                 on_unreachable=self._tell_desk_unreachable)
        self.sent = 0

    def peer(self, item: OutboxItem) -> int | None:
        try:
            peer = int(item.message.peer)
        except ValueError:
            peer = 0
        if item.lane != "customer" or peer <= 0:
            log.error("vk outbox entry %s (%s lane, %s) is not for a VK customer: dropped",
                      item.entry_id, item.lane, item.message.conversation)
            return None
        return peer

    async def deliver(self, peer: int, item: OutboxItem, lane: Lane) -> list[OutboxItem]:
        """The whole message is retried: every part carries a random_id derived from the
        message's id, so VK drops a part that did arrive the first time."""
        message = item.message
        if message.kind == "callback_answer":
            await self._answer(peer, message)
        elif message.kind == "edit":
            await self.delivery.run(message, lambda: self._edit(peer, message))
        elif message.kind in ("text", "copy"):
            await self.delivery.run(message, lambda: self._send(peer, message))
        else:
            log.error("vk:%d: %s messages cannot go to a VK customer: dropped",
                      peer, message.kind)
        return []

    async def _tell_desk_unreachable(self, message: OutboundMessage, reason: str) -> None:
        if (await self._store.load(message.conversation)).state != "bot":
            await self._store.report_to_desk(
                message.conversation, f"⚠️ Не доставлено клиенту во ВКонтакте ({reason})")

    async def _call(self, method: str, **params: Any) -> Any:
        """One API call against the token's budget (customer replies first)."""
        await self._budget.acquire(0)
        return await self._client.call(method, **params)

    async def _send(self, peer: int, message: OutboundMessage) -> None:
        text = message.text
        # An operator's message from the desk carries its files in meta (see DeskDecider).
        files = list(message.files)
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
        if message.copy is not None:
            await self._store.remember_mirror(message.conversation, message.copy.message_id,
                                              first_id)

    async def _keyboard(self, message: OutboundMessage) -> str | None:
        if not message.buttons:
            return None
        text_only = await self._redis.sismember(self._keys.text_buttons("vk"),
                                                message.conversation)
        return await keyboard(message.buttons, self._signer, callback=not text_only)

    async def _edit(self, peer: int, message: OutboundMessage) -> None:
        target = await self._store.mirrored(message.conversation, message.edit_of)
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
