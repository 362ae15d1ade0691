"""What polling and the webhook share: raw updates in, stored events out."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from bots import metrics
from bots.telegram.updates import UpdateRejected, parse_update
from handoff.events import InboundEvent
from handoff.ingest import Ingestor

log = logging.getLogger(__name__)


class TelegramIngress:
    def __init__(self, ingestor: Ingestor, bot_id: int) -> None:
        self._ingestor = ingestor
        self.bot_id = bot_id

    async def accept(self, raw_updates: Sequence[Any]) -> int | None:
        """Store a batch; return the highest update_id seen (to confirm), None if there was none.

        Malformed updates are logged and confirmed too: Telegram would only send them again.
        Raises when Redis fails, so nothing gets confirmed that was not stored.
        """
        highest: int | None = None
        events: list[InboundEvent] = []
        for raw in raw_updates:
            try:
                update_id, event = parse_update(raw, self.bot_id)
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
        for entry in await self._ingestor.ingest(events):
            metrics.INBOUND.labels("telegram", "stored" if entry else "duplicate").inc()
        return highest
