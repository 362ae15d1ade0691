"""A web visitor's conversation as the widget shows it: one Redis stream per conversation,
whose entry ids are the `seq` of docs/web.md.

Everything the widget shows goes through here: the visitor's own messages once stored, the
bot's and the operators' through the web sender. The socket replays the stream after the `seq`
the widget last showed, then follows it, so a reconnect, a reload or a restart of the bot loses
nothing and shows nothing twice.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from bots.web.wakeups import Wakeups
from handoff.keys import Keys
from handoff.scripts import Scripts

KEPT = 1000  # entries a conversation's stream keeps: a long history is the desk's, not ours
SENT_TTL = 7 * 86400  # how long a delivered message is remembered against redelivery


@dataclass(frozen=True, slots=True)
class ChatEntry:
    sender: str  # "bot", "operator" or "visitor"
    text: str = ""
    buttons: tuple[tuple[tuple[str, str], ...], ...] = ()  # rows of (title, signed data)
    image: str = ""  # a URL path under /widget/files/
    name: str = ""  # the operator's
    client_id: str = ""  # the visitor's message id (sender "visitor")
    at: float = 0.0

    def fields(self) -> list[str]:
        buttons = [[{"text": title, "data": data} for title, data in row] for row in self.buttons]
        return ["from", self.sender, "text", self.text, "buttons",
                json.dumps(buttons, ensure_ascii=False), "image", self.image, "name", self.name,
                "id", self.client_id, "at", repr(self.at)]


def frame(seq: str, raw: dict[str, str]) -> dict[str, Any]:
    """A stream entry as the socket's `message` frame."""
    return {"type": "message", "seq": seq, "from": raw.get("from", "bot"),
            "text": raw.get("text", ""), "buttons": json.loads(raw.get("buttons") or "[]"),
            "image": raw.get("image", ""), "name": raw.get("name", ""),
            "id": raw.get("id", ""), "at": float(raw.get("at") or 0)}


class WebChat:
    def __init__(self, redis: Redis, keys: Keys, scripts: Scripts, wakeups: Wakeups) -> None:
        self._redis = redis
        self._keys = keys
        self._scripts = scripts
        self.wakeups = wakeups

    async def append(self, conv: str, entry: ChatEntry, once_key: str) -> str:
        """Add `entry` unless `once_key` (a message's id) was added before; its seq or ''."""
        reply = await self._scripts["web_deliver"](
            keys=[self._keys.web_chat(conv), self._keys.web_sent(once_key)],
            args=[KEPT, SENT_TTL, *entry.fields()])
        if reply:
            await self.wakeups.publish(conv)
        return str(reply or "")

    async def after(self, conv: str, seq: str) -> list[tuple[str, dict[str, str]]]:
        """Entries after `seq` ("0": all), oldest first."""
        entries: Any = await self._redis.xrange(self._keys.web_chat(conv),
                                                f"({seq}" if seq != "0" else "-", count=KEPT)
        return [(str(i), dict(f)) for i, f in entries]
