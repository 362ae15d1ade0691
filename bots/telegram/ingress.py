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
        self, ingestor: Ingestor, bot_id: int, *, desk: DeskChat | None = None,
    ) -> None:
        self._ingestor = ingestor
        self.bot_id = bot_id
        self.desk = desk

    async def accept(self, raw_updates: Sequence[Any]) -> int | None:
        """Store a batch; return the highest update_id seen (to confirm), None if there was none.

        Malformed updates are logged and confirmed too: Telegram would only send them again.
        Raises when Redis fails, so nothing gets confirmed that was not stored.
        """
        highest: int | None = None
        events: list[InboundEvent] = []
        desk_chat = await self._desk_chat(raw_updates)
        for raw in raw_updates:
            try:
                update_id, event = parse_update(raw, self.bot_id, desk_chat)
            except UpdateRejected as exc:
                log.warning("telegram update rejected: %s", exc)
                metrics.INBOUND.labels("telegram", "rejected").inc()
                raw_id = raw.get("update_id") if isinstance(raw, dict) else None
                if isinstance(raw_id, int):
                    highest = max(highest or raw_id, raw_id)
                continue
            highest = max(highest or update_id, update_id)
            if event is None:
                metrics.INBOUND.labels("telegram", "ignored").inc()
            else:
                events.append(event)
        events = await self._resolve_desk(events)
        for entry in await self._ingestor.ingest(events):
            metrics.INBOUND.labels("telegram", "stored" if entry else "duplicate").inc()
        return highest

    async def _desk_chat(self, raw_updates: Sequence[Any]) -> int | None:
        """The desk chat for this batch, following a migration Telegram reports in it."""
        if self.desk is None:
            return None
        for raw in raw_updates:
            message = raw.get("message") if isinstance(raw, dict) else None
            chat = message.get("chat") if isinstance(message, dict) else None
            chat_id = chat.get("id") if isinstance(chat, dict) else None
            if not isinstance(chat_id, int):
                continue
            assert isinstance(message, dict)
            moved_to, moved_from = message.get("migrate_to_chat_id"), \
                message.get("migrate_from_chat_id")
            if isinstance(moved_to, int):
                await self.desk.migrate(chat_id, moved_to)
            elif isinstance(moved_from, int):
                await self.desk.migrate(moved_from, chat_id)
        return await self.desk.id()

    async def _resolve_desk(self, events: list[InboundEvent]) -> list[InboundEvent]:
        """Give desk events their conversation: the customer whose topic (or thread) they are in.

        Events in the General topic or an unknown thread belong to the desk itself
        (`desk:<chat>`): commands such as /queue or /online.
        """
        flat = sorted({key for event in events if event.conversation == UNRESOLVED
                       for key in _lookup_keys(event)})
        resolved = await self.desk.store.conversations_of(flat) if self.desk and flat else {}
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
