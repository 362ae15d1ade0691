"""The sender of wall comment threads (`vk-wall:` conversations): operators' actions in VK.

It reads the `vk-wall` outbox. An operator's message is a public answer as the community
(wall.createComment, `from_group`, under the thread's last comment); the desk's wall actions
(kind `wall`, bots/desk/wall.py) send the author a private message and say so publicly, delete
a comment, or ban the author from the community. Everything else — the handoff notices a
customer of a private chat gets (an operator joined, the rating keyboard) — is not said in
public and is dropped. Each action is journaled with its operator, and its outcome (or VK's
error: 27 when a community token lacks the right, 901 when the author does not accept the
community's messages) is told in the topic.

Token types (VKCOM/vk-api-schema): wall.createComment and messages.send take the community
token; wall.deleteComment and groups.ban only a user token (`VK_ADMIN_TOKEN`, a community
administrator's). Without it those actions are refused at the desk and here.

A board topic's thread (`vk-wall:topic-77_5`) is answered with board.createComment (`group_id`,
`topic_id`, `message`, `from_group=1`, `guid`), which the schema (5.199) allows a user token
only — so VK_ADMIN_TOKEN, `from_group=1` posting as the community — and its comments are
deleted with board.deleteComment, which takes the community token; a ban is groups.ban as above.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import Redis

from bots.delivery.lanes import Lane, LaneSender
from bots.delivery.policy import Delivery
from bots.ratelimit import PriorityLimiter, per_second
from bots.vk.client import VkClient, VkError
from bots.vk.outgoing import random_id
from bots.vk.sender import classify_vk
from bots.vk.wall import MISSING_ADMIN
from bots.vk.wall_events import DELETED, is_topic, post_of
from handoff.conversations import ConversationStore
from handoff.events import OutboundMessage
from handoff.keys import Keys
from handoff.lease import Lease
from handoff.outbox import OutboxItem, OutboxReader

log = logging.getLogger(__name__)

DM_PUBLIC_REPLY = "Ответили вам в личных сообщениях."
JOURNAL_MAXLEN = 100_000
REQUESTS_PER_SECOND = 3.0  # the community token's 20/s are mostly the private chats'


class WallSender(LaneSender):
    channel = "vk-wall"

    def __init__(
        self, client: VkClient, admin: VkClient | None, reader: OutboxReader,
        store: ConversationStore, redis: Redis, keys: Keys, *, lease: Lease | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(reader, lease)
        self._client = client
        self._admin = admin
        self._store = store
        self._redis = redis
        self._keys = keys
        self._budget = PriorityLimiter(per_second(REQUESTS_PER_SECOND, clock=clock))
        self.delivery = Delivery("vk-wall", classify_vk, store)

    def peer(self, item: OutboxItem) -> int | None:
        try:
            return post_of(item.message.conversation)[1]  # one lane per post
        except ValueError:
            log.error("vk-wall outbox entry %s is not for a wall thread (%s): dropped",
                      item.entry_id, item.message.conversation)
            return None

    async def deliver(self, peer: int, item: OutboxItem, lane: Lane) -> list[OutboxItem]:
        message = item.message
        if message.kind == "wall":
            await self._action(message)
        elif message.kind in ("text", "copy") and message.operator:
            await self._public_answer(message)
        else:  # handoff notices, edits: nothing an operator meant to say in public
            log.info("%s: %s message not posted on the wall", message.conversation, message.kind)
        return []

    # --- actions ----------------------------------------------------------------------
    async def _public_answer(self, message: OutboundMessage, text: str | None = None,
                             comment: int = 0) -> None:
        conv = message.conversation
        text = message.text if text is None else text
        if not text:
            await self._store.report_to_desk(conv, "⚠️ На стену уходит только текст.")
            return
        if not comment:
            comment, _author = await self._last_comment(conv)
        failure = await self._run(message, lambda: self._comment(conv, text, comment,
                                                                 message.id))
        if failure is not None:
            await self._store.report_to_desk(
                conv, f"⚠️ Публичный ответ не опубликован ({_reason(failure)}).")
        await self._journal(conv, "wall_reply", message.operator, failure,
                            comment=str(comment))

    async def _action(self, message: OutboundMessage) -> None:
        action: dict[str, Any] = json.loads(message.text)
        conv, what = message.conversation, str(action.get("do"))
        comment, author = await self._last_comment(conv)
        if action.get("comment"):  # the operator named the comment: its author, not the last
            comment = int(action["comment"])
            author = await self._author_of(conv, comment)
        if not comment or not author:
            await self._store.report_to_desk(conv, "⚠️ В этом разговоре нет комментария автора.")
            return
        if what == "dm":
            await self._dm(message, author, comment, str(action.get("text") or ""))
        elif what == "reply":  # an automation rule's template, replying to its comment
            await self._public_answer(message, str(action.get("text") or ""), comment)
        elif what == "delete":
            await self._delete(message, comment)
        elif what == "ban":
            await self._ban(message, author, action)
        else:
            log.error("%s: unknown wall action %r dropped", conv, what)

    async def _dm(self, message: OutboundMessage, author: int, comment: int, text: str) -> None:
        conv = message.conversation
        failure = await self._run(message, lambda: self._call(
            self._client, "messages.send", peer_id=author, random_id=random_id(message.id),
            message=text, dont_parse_links=1))
        if failure is None:
            failure = await self._run(message, lambda: self._comment(
                conv, DM_PUBLIC_REPLY, comment, message.id + ":dm"))
            note = ("✉️ Написали автору в личные сообщения и ответили под комментарием: "
                    f"«{DM_PUBLIC_REPLY}»") if failure is None else (
                "✉️ Написали автору в личные сообщения, но публичный ответ не опубликован "
                f"({_reason(failure)}).")
        else:
            note = (f"⚠️ Не удалось написать автору в личные сообщения ({_reason(failure)}): "
                    "он не разрешил сообществу писать ему. Ответьте публично.") \
                if failure.code in (901, 902) else \
                f"⚠️ Не удалось написать автору в личные сообщения ({_reason(failure)})."
        await self._store.report_to_desk(conv, note)
        await self._journal(conv, "wall_dm", message.operator, failure, user=str(author))

    async def _delete(self, message: OutboundMessage, comment: int) -> None:
        conv = message.conversation
        owner, post = post_of(conv)
        if is_topic(conv):  # board.deleteComment takes the community token
            failure = await self._run(message, lambda: self._call(
                self._client, "board.deleteComment", group_id=-owner, topic_id=post,
                comment_id=comment))
            await self._deleted(message, comment, failure)
            return
        admin = self._admin
        if admin is None:
            await self._store.report_to_desk(conv, MISSING_ADMIN)
            await self._journal(conv, "wall_delete", message.operator,
                                VkError(27, "no VK_ADMIN_TOKEN"), comment=str(comment))
            return
        failure = await self._run(message, lambda: self._call(
            admin, "wall.deleteComment", owner_id=owner, comment_id=comment))
        await self._deleted(message, comment, failure)

    async def _deleted(self, message: OutboundMessage, comment: int,
                       failure: VkError | None) -> None:
        conv = message.conversation
        await self._store.report_to_desk(conv, (
            f"🗑 Комментарий {comment} удалён." if failure is None
            else f"⚠️ Комментарий не удалён ({_reason(failure)})."))
        await self._journal(conv, "wall_delete", message.operator, failure, comment=str(comment))

    async def _ban(self, message: OutboundMessage, author: int, action: dict[str, Any]) -> None:
        conv = message.conversation
        days, reason, note = int(action.get("days") or 0), int(action.get("reason") or 0), \
            str(action.get("note") or "")
        admin = self._admin
        if admin is None:
            await self._store.report_to_desk(conv, MISSING_ADMIN)
            await self._journal(conv, "wall_ban", message.operator,
                                VkError(27, "no VK_ADMIN_TOKEN"), user=str(author))
            return
        end = int(time.time()) + days * 86400 if days else None
        failure = await self._run(message, lambda: self._call(
            admin, "groups.ban", group_id=self._client.group_id, owner_id=author,
            end_date=end, reason=reason, comment=note or None, comment_visible=1))
        term = f"на {days} дн." if days else "навсегда"
        await self._store.report_to_desk(conv, (
            f"⛔ Автор https://vk.com/id{author} заблокирован в сообществе {term}"
            f"{': ' + note if note else ''}." if failure is None
            else f"⚠️ Автор не заблокирован ({_reason(failure)})."))
        await self._journal(conv, "wall_ban", message.operator, failure, user=str(author),
                            days=str(days), ban_reason=str(reason))

    # --- helpers ----------------------------------------------------------------------
    async def _comment(self, conv: str, text: str, reply_to: int, guid: str) -> Any:
        owner, post = post_of(conv)
        if is_topic(conv):  # a board topic: no reply_to there, the comment goes to the end
            if self._admin is None:  # board.createComment: a user token only (error 27)
                raise VkError(27, "no VK_ADMIN_TOKEN (board.createComment takes a user token)")
            return await self._call(
                self._admin, "board.createComment", group_id=-owner, topic_id=post,
                message=text, from_group=1, guid=guid)
        return await self._call(
            self._client, "wall.createComment", owner_id=owner, post_id=post,
            from_group=self._client.group_id, message=text, reply_to_comment=reply_to or None,
            guid=guid)  # VK drops a repeated guid: a retry is not posted twice

    async def _call(self, client: VkClient, method: str, **params: Any) -> Any:
        await self._budget.acquire(0)
        return await client.call(method, **params)

    async def _run(self, message: OutboundMessage, call: Callable[[], Awaitable[Any]]
                   ) -> VkError | None:
        """The call, retried on VK's transient errors; the error VK finally gave, if any."""
        failure: list[VkError] = []

        async def attempt() -> None:
            try:
                await call()
            except VkError as exc:
                if exc.transient:
                    raise
                failure.append(exc)

        if not await self.delivery.run(message, attempt):
            return failure[-1] if failure else VkError(0, "not delivered")
        return failure[-1] if failure else None

    async def _last_comment(self, conv: str) -> tuple[int, int]:
        """The thread's last comment by a visitor still on the wall, and its author."""
        gone: set[int] = set()
        for entry in reversed(await self._store.transcript(conv, last=200)):
            if entry.get("dir") != "in" or not entry.get("comment"):
                continue
            comment = int(entry["comment"])
            if "edit_of" in entry:  # an edit, or a deletion (a restore comes back as new)
                if entry.get("text") == DELETED:
                    gone.add(comment)
                continue
            if comment not in gone:
                return comment, int(entry.get("author") or 0)
        return 0, 0

    async def _author_of(self, conv: str, comment: int) -> int:
        """Who wrote `comment` in this thread (0: not a comment of this thread)."""
        for entry in await self._store.transcript(conv, last=200):
            if entry.get("dir") == "in" and int(entry.get("comment") or 0) == comment \
                    and "edit_of" not in entry:
                return int(entry.get("author") or 0)
        return 0

    async def _journal(self, conv: str, action: str, actor: str, failure: VkError | None,
                       **details: str) -> None:
        fields = {"conv": conv, "action": action, "actor": actor, "at": str(time.time()),
                  "reason": "ok" if failure is None else _reason(failure), **details}
        await self._redis.xadd(self._keys.journal(), fields,  # type: ignore[arg-type]
                               maxlen=JOURNAL_MAXLEN, approximate=True)


def _reason(failure: VkError) -> str:
    return f"VK error {failure.code}: {failure.message}"
