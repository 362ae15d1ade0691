"""What the bot's turn needs from the human side: the handoff notice, /cancel, ratings."""

from __future__ import annotations

import time
from datetime import datetime, timezone

from bots import texts
from handoff.events import OutboundMessage
from handoff.service import HandoffService


class ServiceHumanSide:
    def __init__(self, service: HandoffService, language: str = "ru") -> None:
        self._service = service
        self.language = language

    async def handoff_notice(self, conv: str, priority: str) -> str:
        """Off hours: when the team answers; otherwise the usual wait, honestly estimated."""
        hours = self._service.config.hours
        now = datetime.fromtimestamp(self._service.clock.now(), tz=timezone.utc)
        if hours is not None and not hours.is_open(now):
            opens = hours.next_open(now)
            return texts.text("handoff_closed_hours", self.language,
                              when=texts.opening(opens, now, self.language))
        estimate = await self._service.estimate_for(priority)
        return texts.text("handoff_wait", self.language, minutes=max(1, round(estimate / 60)))

    async def cancel_wait(self, conv: str) -> bool:
        notice = OutboundMessage(conversation=conv, created_at=time.time(),
                                 text=texts.text("cancelled", self.language))
        result = await self._service.cancel(conv, notices=[notice])
        return result.ok

    async def rate(self, conv: str, score: int) -> bool:
        return (await self._service.rate(conv, score)).ok

    async def comment(self, conv: str, text: str) -> bool:
        return (await self._service.comment(conv, text)).ok
