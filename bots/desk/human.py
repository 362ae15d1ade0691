"""What the bot's turn needs from the human side: the handoff notice, /cancel, ratings."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from datetime import datetime, timezone

from bots import texts
from bots.desk.notices import CustomerNotices
from bots.desk.routing import DeskRouting
from handoff.conversations import ConversationStore
from handoff.events import OutboundMessage, Profile
from handoff.hours import BusinessHours
from handoff.service import HandoffService


class ServiceHumanSide:
    def __init__(self, service: HandoffService, language: str = "ru",
                 routing: DeskRouting | None = None, store: ConversationStore | None = None
                 ) -> None:
        self._service = service
        self.language = language
        # To know a new handoff's desk, when desks keep hours of their own.
        self._routing = routing
        self._store = store

    async def handoff_notice(self, conv: str, priority: str, reason: str = "",
                             tags: tuple[str, ...] = (), profile: Profile | None = None
                             ) -> str:
        """Off hours (of the desk the conversation goes to): when the team answers; otherwise
        the usual wait, honestly estimated."""
        hours = await self._hours(conv, reason, tags, profile)
        now = datetime.fromtimestamp(self._service.clock.now(), tz=timezone.utc)
        if hours is not None and not hours.is_open(now):
            opens = hours.next_open(now)
            return texts.text("handoff_closed_hours", self.language,
                              when=texts.opening(opens, now, self.language))
        estimate = await self._service.estimate_for(priority)
        return texts.text("handoff_wait", self.language, minutes=max(1, round(estimate / 60)))

    async def return_to_bot(self, conv: str, by: str) -> bool:
        """An automation rule hands a waiting or assigned conversation back to the bot."""
        result = await self._service.return_to_bot(
            conv, by, "automation rule", force=True,
            notices=CustomerNotices(self.language).back_to_bot(conv))
        return result.ok

    async def _hours(self, conv: str, reason: str, tags: tuple[str, ...],
                     profile: Profile | None) -> BusinessHours | None:
        """The hours of the conversation's desk. Neither the handoff nor this turn is stored
        yet, so a new conversation's desk is chosen here from what the desk will route by (the
        same rules, with this handoff's reason and tags and the customer's profile), without
        storing the choice."""
        config = self._service.config
        if not config.desk_hours or self._routing is None or self._store is None:
            return config.hours
        fields, transcript = await self._store.snapshot(conv)
        desk = fields.get("desk")
        if not desk:
            fields = {**fields, "handoff_reason": reason, "handoff_tags": ",".join(tags)}
            if profile is not None:
                fields["profile"] = json.dumps(asdict(profile), ensure_ascii=False)
            desk = str(self._routing.choose(conv, fields, transcript).chat_id)
        return config.hours_for(desk)

    async def cancel_wait(self, conv: str) -> bool:
        notice = OutboundMessage(conversation=conv, created_at=time.time(),
                                 text=texts.text("cancelled", self.language))
        result = await self._service.cancel(conv, notices=[notice])
        return result.ok

    async def rate(self, conv: str, score: int) -> bool:
        return (await self._service.rate(conv, score)).ok

    async def comment(self, conv: str, text: str) -> bool:
        return (await self._service.comment(conv, text)).ok
