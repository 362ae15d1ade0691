"""Update delivery of the fake: push_update + getUpdates long polling, and webhooks.

getUpdates (PLATFORMS.md T4 and the Bot API server's Client.cpp): ``offset`` confirms (drops)
every update with a smaller id, a negative offset keeps only the last ``-offset``; ``timeout``
long-polls and returns as soon as an update is pushed; ``limit`` is clamped to 1-100;
``allowed_updates`` filters updates pushed later (default: all but chat_member,
message_reaction and message_reaction_count; filtered ones land in ``dropped_updates``).
A new long-polling getUpdates terminates the one still waiting, which gets 409 "Conflict:
terminated by other getUpdates request; make sure that only one bot instance is running"
(Client.cpp ``abort_long_poll``). With a webhook set getUpdates is 409 "Conflict: can't use
getUpdates method while webhook is active; use deleteWebhook to delete the webhook first", and
setWebhook ends a waiting getUpdates with 409 "Conflict: terminated by setWebhook request".
Webhook URLs are not checked for HTTPS or ports, so a local receiver works; updates are
POSTed only by ``deliver_webhook`` (``push_update`` queues for getUpdates only).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import re
import time
from typing import Any

from aiohttp import ClientResponse, ClientSession, MultipartReader

from fakes.telegram_state import BotIdentity, FakeState
from fakes.telegram_wire import ApiError, UploadedFile, bad_request, read_multipart

DEFAULT_EXCLUDED_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
MESSAGE_UPDATES = ("message", "edited_message", "channel_post", "edited_channel_post")
TERMINATED_BY_OTHER = (
    "Conflict: terminated by other getUpdates request; "
    "make sure that only one bot instance is running"
)
_SECRET = re.compile(r"[A-Za-z0-9_-]*")


def dumps(value: Any) -> str:
    """UTF-8 JSON like Telegram's; a lone surrogate a test put in a text (which UTF-8 cannot
    carry) goes out as a \\u escape, the one way JSON can carry it."""
    text = json.dumps(value, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(value)
    return text


def _well_formed(message: dict[str, Any]) -> bool:
    if not isinstance(message.get("message_id"), int):
        return False
    chat = message.get("chat")
    return isinstance(chat, dict) and isinstance(chat.get("id"), int)


class UpdateDelivery(FakeState):
    _long_poll: asyncio.Future[None] | None = None
    _client: ClientSession | None = None
    _serving = False

    def _notify(self) -> None:  # wakes wait_for/wait_until; FakeTelegram implements it
        raise NotImplementedError

    async def execute(
        self,
        method: str,
        params: dict[str, Any],
        files: dict[str, UploadedFile] | None = None,
        *,
        arrived: float | None = None,
        via: str = "http",
    ) -> tuple[int, dict[str, Any]]:
        raise NotImplementedError

    @property
    def is_long_polling(self) -> bool:
        """A getUpdates request is waiting for updates right now."""
        return self._long_poll is not None and not self._long_poll.done()

    def _end_long_poll(self, error: ApiError | None = None) -> None:
        if self._long_poll is not None and not self._long_poll.done():
            if error is None:
                self._long_poll.set_result(None)
            else:
                self._long_poll.set_exception(error)

    def push_update(self, update: dict[str, Any]) -> dict[str, Any]:
        """Queue an update for getUpdates and wake a waiting poller. A missing update_id is
        assigned (also in the caller's dict); malformed updates are queued as they are."""
        update = self._prepare(update)
        if self._for_relay(update):
            return update
        kind = next((k for k in update if k != "update_id"), "")
        allowed = set(self._allowed_updates)
        if (kind not in allowed) if allowed else (kind in DEFAULT_EXCLUDED_UPDATES):
            self.dropped_updates.append(update)
            return update
        self._updates.append(update)
        self._end_long_poll()
        self._notify()
        return update

    def _for_relay(self, update: dict[str, Any]) -> bool:
        """A press on a relay's button goes to that relay, not to the main bot ("the message
        sent by the bot with the callback button", PLATFORMS.md A3); group messages also reach
        every relay that is an admin there ("admins receive all messages", A4)."""
        query = update.get("callback_query")
        message = query.get("message") if isinstance(query, dict) else None
        sender = (message.get("from") or {}).get("id") if isinstance(message, dict) else None
        relays = {bot.id: bot for bot in self._bots.values() if bot.token != self.token}
        if isinstance(query, dict):
            self._query_bots[str(query.get("id"))] = sender if sender in relays else self.bot_id
        if sender in relays:
            self._relay_receives(relays[sender], update)
            return True
        posted = update.get("message")
        chat = posted.get("chat") if isinstance(posted, dict) else None
        if isinstance(chat, dict) and chat.get("type") in ("group", "supergroup") \
                and isinstance(chat.get("id"), int):
            members = self._chats.get(chat["id"])
            for relay in relays.values():
                if members is not None and relay.id in members.member_bots:
                    self._relay_receives(relay, update)
        return False

    def _relay_receives(self, relay: BotIdentity, update: dict[str, Any]) -> None:
        kind = next((k for k in update if k != "update_id"), "")
        if relay.allowed_updates and kind not in relay.allowed_updates:
            return
        relay.updates.append(update)
        relay.arrived.set()
        self._notify()

    async def _relay_get_updates(self, relay: BotIdentity, p: dict[str, Any]) -> Any:
        """getUpdates with a relay's token: its own updates, the same offset and long-poll
        rules (a relay never has a webhook here)."""
        offset, limit = int(p.get("offset") or 0), min(max(int(p.get("limit") or 100), 1), 100)
        timeout = min(max(float(p.get("timeout") or 0), 0.0), 50.0)
        if isinstance(p.get("allowed_updates"), list):
            relay.allowed_updates = list(p["allowed_updates"])
        if offset > 0:
            relay.updates[:] = [u for u in relay.updates if u["update_id"] >= offset]
        if not relay.updates and timeout > 0 and self._serving:
            relay.arrived.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(relay.arrived.wait(), timeout)
        return relay.updates[:limit]

    def _prepare(self, update: dict[str, Any]) -> dict[str, Any]:
        """Number the caller's dict (so pushing it again is a true duplicate), then work on a
        copy. Well-formed messages are stored so copyMessage/forwardMessage find them."""
        update.setdefault("update_id", self._next_update_id)
        update = copy.deepcopy(update)
        if isinstance(update["update_id"], int):
            self._next_update_id = max(self._next_update_id, update["update_id"] + 1)
        for key in MESSAGE_UPDATES:
            message = update.get(key)
            if isinstance(message, dict) and _well_formed(message):
                self.store(copy.deepcopy(message))
        query = update.get("callback_query")
        if isinstance(query, dict):
            self._callback_queries.setdefault(str(query.get("id")), False)
        self.pushed_at[update["update_id"]] = time.perf_counter()
        return update

    async def m_getUpdates(self, p: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        if self.acting.token != self.token:
            return await self._relay_get_updates(self.acting, p)
        if self._webhook is not None:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset, limit = int(p.get("offset") or 0), min(max(int(p.get("limit") or 100), 1), 100)
        timeout = min(max(float(p.get("timeout") or 0), 0.0), 50.0)
        if isinstance(p.get("allowed_updates"), list):
            self._allowed_updates = list(p["allowed_updates"])
        if offset > 0:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        elif offset < 0:
            self._updates = self._updates[offset:]
        if self._updates or timeout <= 0 or not self._serving:
            return self._updates[:limit]
        self._end_long_poll(ApiError(409, TERMINATED_BY_OTHER))
        waiting = self._long_poll = asyncio.get_running_loop().create_future()
        self._notify()
        try:
            await asyncio.wait_for(waiting, timeout)
        except asyncio.TimeoutError:
            pass
        finally:
            if self._long_poll is waiting:
                self._long_poll = None
        return self._updates[:limit]

    # --- updates: webhook -----------------------------------------------------------------
    def m_setWebhook(self, p: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        secret = p.get("secret_token")
        if secret is not None:
            if len(str(secret)) > 256:
                raise bad_request("secret token is too long")
            if not _SECRET.fullmatch(str(secret)):
                raise bad_request("secret token contains unallowed characters")
        if p.get("drop_pending_updates"):
            self._updates.clear()
        if isinstance(p.get("allowed_updates"), list):
            self._allowed_updates = list(p["allowed_updates"])
        if not p.get("url"):
            self._webhook = None
            return True
        self._webhook = {
            "url": str(p["url"]),
            "secret_token": secret,
            "max_connections": p.get("max_connections", 40),
            "ip_address": p.get("ip_address"),
        }
        self._end_long_poll(ApiError(409, "Conflict: terminated by setWebhook request"))
        return True

    def m_deleteWebhook(self, p: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        if self.acting.token != self.token:
            return True  # a relay has no webhook here
        self._webhook = None
        if p.get("drop_pending_updates"):
            self._updates.clear()
        return True

    def m_getWebhookInfo(self, p: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        info: dict[str, Any] = {
            "url": (self._webhook or {}).get("url", ""),
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }
        if self._webhook is not None:
            info["max_connections"] = self._webhook["max_connections"]
            if self._webhook["ip_address"]:
                info["ip_address"] = self._webhook["ip_address"]
            if self._allowed_updates:
                info["allowed_updates"] = list(self._allowed_updates)
        if self._webhook_error is not None:
            info["last_error_date"], info["last_error_message"] = self._webhook_error
        return info

    def m_getMe(self, p: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        return self.get_me()

    async def deliver_webhook(
        self, update: dict[str, Any], *, url: str | None = None, secret: str | None = None
    ) -> int:
        """POST ``update`` (update_id assigned if missing) to the webhook like Telegram does,
        with X-Telegram-Bot-Api-Secret-Token when a secret is set or given. A method returned
        in a 2xx answer body (aiogram's reply-in-webhook) is executed and recorded with
        ``via="webhook-reply"``. Returns the HTTP status."""
        target = url or (self._webhook or {}).get("url")
        if not target:
            raise RuntimeError("no webhook set (setWebhook) and no url given")
        if secret is None:
            secret = (self._webhook or {}).get("secret_token")
        update = self._prepare(update)
        headers = {"Content-Type": "application/json"}
        if secret:
            headers["X-Telegram-Bot-Api-Secret-Token"] = secret
        if self._client is None or self._client.closed:
            self._client = ClientSession()
        async with self._client.post(target, data=dumps(update), headers=headers) as response:
            status = response.status
            if 200 <= status < 300:
                params, files = await self._webhook_reply(response)
                if isinstance(params.get("method"), str):
                    await self.execute(params.pop("method"), params, files, via="webhook-reply")
            else:
                message = f"Wrong response from the webhook: {status} {response.reason}"
                self._webhook_error = (int(time.time()), message)
        return status

    @staticmethod
    async def _webhook_reply(
        response: ClientResponse,
    ) -> tuple[dict[str, Any], dict[str, UploadedFile]]:
        if response.content_type.startswith("multipart/"):
            return await read_multipart(MultipartReader(response.headers, response.content))
        if response.content_type == "application/json":
            body = await response.json()
            return (body, {}) if isinstance(body, dict) else ({}, {})
        return {}, {}
