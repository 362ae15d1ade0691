"""What the customer is told when a human side action changes their conversation; one place
for the desk and the HTTP API alike."""

from __future__ import annotations

import time
from collections.abc import Sequence

from bots import texts
from bots.turns import SUMMARY_PRIORITY, desk_bookkeeping
from handoff.conversations import desk_priority
from handoff.events import OutboundMessage, OutButton


class CustomerNotices:
    def __init__(self, language: str = "ru") -> None:
        self.language = language

    def joined(self, conv: str, operator: str, name: str = "") -> Sequence[OutboundMessage]:
        text = (texts.text("operator_joined", self.language, name=name) if name
                else texts.text("operator_joined_auto", self.language))
        return [OutboundMessage(conversation=conv, text=text, created_at=time.time())]

    def requeued(self, conv: str) -> Sequence[OutboundMessage]:
        """Their operator went offline for longer than the grace period."""
        return [OutboundMessage(conversation=conv, created_at=time.time(),
                                text=texts.text("operator_left", self.language))]

    def transferred_to_queue(self, conv: str) -> Sequence[OutboundMessage]:
        return [OutboundMessage(conversation=conv, created_at=time.time(),
                                text=texts.text("back_in_queue", self.language))]

    def closed(self, conv: str) -> Sequence[OutboundMessage]:
        """The 1-5 rating keyboard (its buttons come back as `rate:N` payloads)."""
        row = tuple(OutButton(title=str(score), payload=f"rate:{score}") for score in range(1, 6))
        return [OutboundMessage(conversation=conv, text=texts.text("closed_rate", self.language),
                                buttons=(row,), created_at=time.time())]

    def back_to_bot(self, conv: str) -> Sequence[OutboundMessage]:
        return [OutboundMessage(conversation=conv, created_at=time.time(),
                                text=texts.text("back_to_bot", self.language))]


class DeskEcho:
    """What the desk shows when an integration acts through the HTTP API, so operators in the
    group see the same card, topic, queue summary and conversation as after their own taps."""

    def changed(self, conv: str, priority: str) -> Sequence[OutboundMessage]:
        return desk_bookkeeping(conv, priority)

    def replied(self, conv: str, operator: str, text: str) -> Sequence[OutboundMessage]:
        return [OutboundMessage(conversation=conv, lane="desk", created_at=time.time(),
                                text=f"💬 {operator} (API): {text}",
                                priority=desk_priority("normal", 2))]

    def operators_changed(self) -> Sequence[OutboundMessage]:
        return [OutboundMessage(conversation="desk:api", kind="summary", lane="desk",
                                created_at=time.time(),
                                coalesce="summary", priority=SUMMARY_PRIORITY)]
