"""The desk lane over several desk groups: each group has its own DeskSender (its budget, queue,
topics and summary), and each item goes to the desk its conversation belongs to.

A conversation is routed when the desk first hears of it (its handoff's card) by the rules in
`bots/desk/routing.py`, and the choice is stored in its hash, so it stays in that desk in every
process and after restarts, until `/transfer desk` moves it. With one desk nothing is read:
everything goes to it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict

from bots.desk.routing import DeskRouting
from bots.desk.store import DeskStore
from bots.telegram.desk.sender import DeskSender
from handoff.conversations import ConversationStore
from handoff.outbox import OutboxItem

log = logging.getLogger(__name__)

REMEMBERED = 10_000  # conversations whose desk this process keeps in memory


class Desks:
    def __init__(self, senders: dict[int, DeskSender], routing: DeskRouting,
                 store: DeskStore, conversations: ConversationStore) -> None:
        self.senders = senders  # by the desk's configured chat id, the first desk first
        self.routing = routing
        self._store = store
        self._conversations = conversations
        self._desk_of: OrderedDict[str, int] = OrderedDict()
        for sender in senders.values():
            sender.router = self

    @property
    def home(self) -> DeskSender:
        return next(iter(self.senders.values()))

    async def run(self, stop: asyncio.Event) -> None:
        await asyncio.gather(*(sender.run(stop) for sender in self.senders.values()))

    async def enqueue(self, item: OutboxItem) -> None:
        message = item.message
        if message.kind == "summary" and not message.conversation.startswith("desk:-"):
            for sender in self.senders.values():  # the queue changed: every desk's view did
                sender.enqueue(item)
            return
        (await self._sender_for(message.conversation)).enqueue(item)

    def name_of(self, desk: int) -> str:
        found = self.routing.by_chat(desk)
        return found.name if found else str(desk)

    def forward(self, item: OutboxItem, desk: int) -> None:
        """A conversation moved to another desk (`/transfer desk`): its items go on to the
        desk it now belongs to (the move item shows it there)."""
        self._remember(item.message.conversation, desk)
        self.senders.get(desk, self.home).enqueue(item)

    async def _sender_for(self, conv: str) -> DeskSender:
        if len(self.senders) == 1:
            return self.home
        if conv.startswith("desk:"):  # a desk-wide message: the desk it came from, or home
            chat = conv.split(":", 1)[1]
            for desk, sender in self.senders.items():
                if chat in (str(desk), str(await sender.topics.chat_id())):
                    return sender
            return self.home
        return self.senders.get(await self.desk_of(conv), self.home)

    async def desk_of(self, conv: str) -> int:
        """The desk `conv` belongs to: remembered, else read (and routed when it is new)."""
        known = self._desk_of.get(conv)
        return known if known is not None else await self._route(conv)

    async def _route(self, conv: str) -> int:
        fields, transcript = await self._conversations.snapshot(conv)
        stored = fields.get("desk")
        if stored and stored.lstrip("-").isdigit():
            desk = int(stored)
        else:
            chosen = self.routing.choose(conv, fields, transcript)
            desk = await self._store.routed(conv, chosen.chat_id)
            log.info("%s: routed to desk %s", conv, chosen.name)
        self._remember(conv, desk)
        return desk

    def _remember(self, conv: str, desk: int) -> None:
        self._desk_of[conv] = desk
        self._desk_of.move_to_end(conv)
        while len(self._desk_of) > REMEMBERED:
            self._desk_of.popitem(last=False)
