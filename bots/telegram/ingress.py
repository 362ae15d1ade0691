"""What polling and the webhook share: raw updates in, stored events out."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import Any

from bots import metrics
from bots.telegram.desk.chat import DeskChat
from bots.telegram.updates import UNRESOLVED, UpdateRejected, parse_update
from handoff.events import InboundEvent
from handoff.ingest import Ingestor

log = logging.getLogger(__name__)


class TelegramIngress:
    def __init__(
        self, ingestor: Ingestor, bot_id: int, *, desks: Sequence[DeskChat] = (),
        relay: bool = False,
    ) -> None:
        self._ingestor = ingestor
        self.bot_id = bot_id
        self.desks = list(desks)  # every desk group (the first one's store resolves threads)
        # A desk relay's updates: only presses on the cards it posted are ours (the main bot
        # receives everything else in the group too).
        self.relay = relay

    async def accept(self, raw_updates: Sequence[Any]) -> int | None:
        """Store a batch; return the highest update_id seen (to confirm), None if there was none.

        Malformed updates are logged and confirmed too: Telegram would only send them again.
        Raises when Redis fails, so nothing gets confirmed that was not stored.
        """
        highest: int | None = None
        events: list[InboundEvent] = []
        desk_chats = await self._desk_chats(raw_updates)
        for raw in raw_updates:
            try:
                update_id, event = parse_update(raw, self.bot_id, desk_chats)
            except UpdateRejected as exc:
                log.warning("telegram update rejected: %s", exc)
                metrics.INBOUND.labels("telegram", "rejected").inc()
                raw_id = raw.get("update_id") if isinstance(raw, dict) else None
                if isinstance(raw_id, int):
                    highest = max(highest or raw_id, raw_id)
                continue
            highest = max(highest or update_id, update_id)
            if event is not None and self.relay:
                event = dataclasses.replace(event, via=self.bot_id) \
                    if event.kind == "desk_button" else None
            if event is None:
                metrics.INBOUND.labels("telegram", "ignored").inc()
            else:
                events.append(event)
        events = await self._resolve_desk(events)
        for entry in await self._ingestor.ingest(events):
            metrics.INBOUND.labels("telegram", "stored" if entry else "duplicate").inc()
        return highest

    async def _desk_chats(self, raw_updates: Sequence[Any]) -> set[int]:
        """The desk chats for this batch, following a migration Telegram reports in it."""
        for raw in raw_updates:
            message = raw.get("message") if isinstance(raw, dict) else None
            chat = message.get("chat") if isinstance(message, dict) else None
            chat_id = chat.get("id") if isinstance(chat, dict) else None
            if not isinstance(chat_id, int):
                continue
            assert isinstance(message, dict)
            moved_to, moved_from = message.get("migrate_to_chat_id"), \
                message.get("migrate_from_chat_id")
            for desk in self.desks:
                if isinstance(moved_to, int):
                    await desk.migrate(chat_id, moved_to)
                elif isinstance(moved_from, int):
                    await desk.migrate(moved_from, chat_id)
        return {await desk.id() for desk in self.desks}

    async def _resolve_desk(self, events: list[InboundEvent]) -> list[InboundEvent]:
        """Give desk events their conversation: the customer whose topic (or thread) they are in.

        Events in the General topic or an unknown thread belong to the desk itself
        (`desk:<chat>`): commands such as /queue or /online.
        """
        flat = sorted({key for event in events if event.conversation == UNRESOLVED
                       for key in _lookup_keys(event)})
        resolved = await self.desks[0].store.conversations_of(flat) \
            if self.desks and flat else {}
        return [event if event.conversation != UNRESOLVED else dataclasses.replace(
                    event, conversation=_first(resolved, _lookup_keys(event))
                    or f"desk:{event.chat_id}")
                for event in events]


def _first(resolved: dict[str, str], keys: list[str]) -> str:
    return next((resolved[key] for key in keys if key in resolved), "")

def _lookup_keys(event: InboundEvent) -> list[str]:
    """Where to look: the forum topic first, then (reply-thread fallback) the message replied to
    or, for a button, the message it is on."""
    keys = []
    if event.thread_id:
        keys.append(f"{event.chat_id}:{event.thread_id}")
    if event.reply_to:
        keys.append(f"{event.chat_id}:m{event.reply_to}")
    if event.kind == "desk_button" and event.message_id:
        keys.append(f"{event.chat_id}:m{event.message_id}")
    return keys
