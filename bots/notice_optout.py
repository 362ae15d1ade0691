"""`/stop` and `/notices on|off`: a customer's choice about proactive notices (docs/notices.md).

The choice is the conversation flag `notices_off`, set or cleared by the turn's own commit, so
it is in Redis the moment the confirmation is queued; lua/notice_send.lua skips a conversation
with the flag. `/start` does not undo `/stop`: an explicit choice stays until the customer
changes it with `/notices on`.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

from handoff.events import InboundEvent, OutboundMessage

FLAG = "notices_off"

_TEXTS = {
    "off": {
        "ru": "Готово: рассылок от нас больше не будет. Вернуть их: /notices on. "
              "На ваши вопросы мы отвечаем как обычно.",
        "en": "Done: no more announcements from us. To get them again, send /notices on. "
              "We still answer your questions as usual.",
    },
    "on": {
        "ru": "Готово: вы снова будете получать наши рассылки. Отписаться: /stop.",
        "en": "Done: you will get our announcements again. To stop them, send /stop.",
    },
}


class Decided(Protocol):
    """The parts of bots.turns.Decision this command fills."""

    transcript: list[dict[str, Any]]
    outbox: list[OutboundMessage]
    flag: str
    unflag: str


def choice(event: InboundEvent) -> str:
    """"off", "on", or "" when the event is not a notices command."""
    if event.kind != "command":
        return ""
    words = event.text.lower().split()
    command = words[0].split("@")[0] if words else ""
    if command in ("/stop", "/unsubscribe"):
        return "off"
    if command == "/notices":
        argument = words[1] if len(words) > 1 else ""
        return {"on": "on", "off": "off", "stop": "off"}.get(argument, "")
    return ""


def notices_command(event: InboundEvent, decision: Decided, language: str) -> bool:
    """Handles the command (flag, confirmation in the customer's language); False if it is
    not one."""
    which = choice(event)
    if not which:
        return False
    if which == "off":
        decision.flag = FLAG
    else:
        decision.unflag = FLAG
    text = _TEXTS[which].get(language, _TEXTS[which]["ru"])
    decision.outbox.append(OutboundMessage(conversation=event.conversation, text=text,
                                           created_at=time.time()))
    decision.transcript.append({"at": time.time(), "dir": "out", "text": text})
    return True
