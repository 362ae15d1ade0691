"""Bots Long Poll of the fake VK server, plus builders of the events it (or the Callback API)
delivers.

Events are numbered; `ts` is the number of the next event to read. The fake keeps its whole
history, so `groups.getLongPollServer` hands out the `ts` of the oldest event nobody has read
yet. Injected `failed` answers (`fail_poll`) follow the documented recovery: 1 carries a new
`ts`, 2 expires the key (the old `ts` stays good), 3 expires the key and wants a new `ts`.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import secrets
import time
from collections import deque
from typing import Any

from aiohttp import web

MAX_WAIT = 2.0  # seconds a test's a_check is held at most, whatever `wait` says
ERRORS: dict[int, str] = {}  # error_msg per code (filled in by fakes/vk.py)


class VkApiFailure(Exception):
    """Answered as `{"error": {"error_code": code, "error_msg": message}}`."""

    def __init__(self, code: int, message: str = "") -> None:
        super().__init__(code)
        self.code = code
        self.message = message or ERRORS.get(code, "Unknown error")


class LongPoll:
    @property
    def url(self) -> str:
        raise NotImplementedError

    def __init__(self, group_id: int) -> None:
        self.group_id = group_id
        self.events: list[dict[str, Any]] = []
        self.key = secrets.token_hex(8)
        self.unread = 1  # number of the oldest event no a_check has returned yet
        self.poll_failures: deque[int] = deque()
        self.a_checks = 0
        self._new = asyncio.Event()
        self._closing = False
        self._event_ids = itertools.count(1)
        self._message_ids = itertools.count(1000)

    # --- delivery -----------------------------------------------------------------------
    def push(self, event: dict[str, Any]) -> dict[str, Any]:
        self.events.append(event)
        self._new.set()
        return event

    def fail_poll(self, failed: int) -> None:
        """The next a_check answers `{"failed": N}` (2 and 3 also expire the key)."""
        self.poll_failures.append(failed)
        self._new.set()

    def end_long_polls(self) -> None:
        self._closing = True
        self._new.set()

    def m_groups_getLongPollServer(self, p: dict[str, str]) -> dict[str, Any]:
        if int(p.get("group_id", 0)) != self.group_id:
            raise VkApiFailure(100, "group_id is invalid")
        return {"key": self.key, "server": f"{self.url}/lp", "ts": str(self.unread)}

    async def a_check(self, request: web.Request) -> web.Response:
        self.a_checks += 1
        q = request.query
        if q.get("act") != "a_check":
            return web.json_response({"failed": 4})
        deadline = time.monotonic() + min(float(q.get("wait", 25)), MAX_WAIT)
        while True:
            if self.poll_failures:
                return web.json_response(self._failure(self.poll_failures.popleft()))
            if q.get("key") != self.key:
                return web.json_response({"failed": 2})
            ts = int(q.get("ts", 0))
            if ts <= len(self.events) or self._closing or time.monotonic() >= deadline:
                break
            self._new.clear()
            try:
                await asyncio.wait_for(self._new.wait(), deadline - time.monotonic())
            except asyncio.TimeoutError:
                break
        ts = max(int(q.get("ts", 1)), 1)
        batch = self.events[ts - 1:]
        self.unread = max(self.unread, len(self.events) + 1)
        return web.json_response({"ts": str(len(self.events) + 1), "updates": batch})

    def _failure(self, failed: int) -> dict[str, Any]:
        if failed == 1:
            return {"failed": 1, "ts": str(self.unread)}
        self.key = secrets.token_hex(8)
        return {"failed": failed}

    # --- event builders -----------------------------------------------------------------
    def _wrap(self, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
        return {"type": kind, "object": obj, "group_id": self.group_id,
                "event_id": secrets.token_hex(20), "v": "5.199"}

    def message_new(self, user_id: int, text: str = "", *, payload: Any = None,
                    attachments: list[dict[str, Any]] | None = None,
                    button_actions: tuple[str, ...] = ("text", "callback", "open_link"),
                    ) -> dict[str, Any]:
        message: dict[str, Any] = {
            "id": next(self._message_ids), "date": int(time.time()), "peer_id": user_id,
            "from_id": user_id, "text": text, "attachments": attachments or [],
            "conversation_message_id": next(self._event_ids), "out": 0,
        }
        if payload is not None:
            message["payload"] = json.dumps(payload)
        info = {"button_actions": list(button_actions), "keyboard": True,
                "inline_keyboard": True, "carousel": True, "lang_id": 0}
        return self._wrap("message_new", {"message": message, "client_info": info})

    def message_event(self, user_id: int, payload: Any) -> dict[str, Any]:
        return self._wrap("message_event", {
            "user_id": user_id, "peer_id": user_id, "event_id": secrets.token_hex(6),
            "payload": payload, "conversation_message_id": next(self._event_ids)})

    def message_edit(self, user_id: int, message_id: int, text: str) -> dict[str, Any]:
        """A customer edited their message: the Callback/Long Poll API's `message_edit`, whose
        object is the message itself (https://dev.vk.com/ru/api/community-events/json-schema)."""
        return self._wrap("message_edit", {
            "id": message_id, "date": int(time.time()), "update_time": int(time.time()),
            "peer_id": user_id, "from_id": user_id, "text": text, "attachments": [],
            "conversation_message_id": next(self._event_ids), "out": 0})

    def message_deny(self, user_id: int) -> dict[str, Any]:
        return self._wrap("message_deny", {"user_id": user_id})

    def photo(self, url: str) -> dict[str, Any]:
        return {"type": "photo", "photo": {"id": next(self._event_ids), "owner_id": 1, "sizes": [
            {"type": "s", "url": url + "?s", "width": 75, "height": 56},
            {"type": "x", "url": url, "width": 604, "height": 453}]}}

    def callback_body(self, event: dict[str, Any], secret: str) -> dict[str, Any]:
        """What the Callback API POSTs for an event."""
        return {**event, "secret": secret}
