"""A pool of relay bots that post customers' texts into the desk's topics beside the main bot.

Telegram's limits are per bot: about 20 posts a minute into one group, one a second into one
chat. Every handoff spends the main bot's budget on a topic and a card, and every customer
message relayed into a topic spends it again, so a busy desk waits on its own relays. Relay bots
(`DESK_RELAY_TOKENS`, bots that are admins of the desk group) each bring a budget of their own.

What a relay can and cannot do (Bot API docs; PLATFORMS.md addendum A):

- Cards stay with the main bot: a button press goes to the bot that sent the message (A3), and
  only the main bot listens. Topics too (it created them, and tracks their state), and edits
  (a bot edits only its own messages).
- A relay cannot copy a customer's message: message ids in the customer's private chat with
  the main bot mean nothing to another account, and the relay was never in that chat (A5); nor
  can it reuse the main bot's `file_id`s. So relays post *texts* (a customer's text, merged
  texts, a note), and only into forum topics of a supergroup, where message ids are shared;
  media stay with the main bot.
- Whether K bots really get K times a group's budget is not stated by Telegram's maintainers
  (A1); several desk groups are the other way past the limit.

A post goes to whichever bot with the right to make it can post soonest; on a tie a relay, to
keep the main bot's budget for cards. A relay whose token was revoked (401) or that was removed
from the group (403) is reported once (a log line and a note in the desk) and dropped from the
pool; the post it failed is made by another bot, so nothing it held is lost.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiogram import Bot
from aiogram.exceptions import (
    TelegramForbiddenError,
    TelegramRetryAfter,
    TelegramUnauthorizedError,
)
from aiogram.types import MessageEntity

from bots.telegram.desk.budget import GroupBudget

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Poster:
    """A bot that posts into the desk group, with its own budget there."""

    bot: Bot
    budget: GroupBudget
    name: str  # @username, for the reports
    relay: bool = True


class RelayPool:
    def __init__(self, main: Poster, relays: list[Poster], *,
                 report: Callable[[str], Awaitable[None]] | None = None) -> None:
        self.main = main
        self.relays = list(relays)
        self._report = report  # a note in the desk's General topic

    def pick(self) -> Poster:
        """The bot that can post soonest (a relay on a tie)."""
        return min([*self.relays, self.main],
                   key=lambda poster: (poster.budget.delay(), not poster.relay))

    async def post_text(self, chat_id: int, thread_id: int, text: str,
                        entities: list[MessageEntity] | None) -> int:
        """Post a text into a topic through the pool; the message id."""
        while True:
            poster = self.pick()
            await poster.budget.spend()
            try:
                sent = await poster.bot.send_message(
                    chat_id, text, message_thread_id=thread_id, entities=entities)
            except TelegramRetryAfter as exc:
                if not poster.relay:
                    raise  # the main bot's 429: the desk's retry policy pauses its budget
                poster.budget.pause(exc.retry_after)
                log.warning("desk relay %s: 429, retry after %ss", poster.name, exc.retry_after)
                continue
            except (TelegramUnauthorizedError, TelegramForbiddenError) as exc:
                if not poster.relay:
                    raise
                await self.drop(poster, exc.message)
                continue
            return sent.message_id

    async def drop(self, poster: Poster, reason: str) -> None:
        """Out of the pool for good (until a restart), reported once."""
        if poster not in self.relays:
            return
        self.relays.remove(poster)
        log.error("desk relay %s dropped from the pool: %s", poster.name, reason)
        if self._report is not None:
            await self._report(f"⚠️ Бот-ретранслятор {poster.name} больше не может писать в "
                               f"группу ({reason}) и исключён из пула. Проверьте, что он "
                               f"администратор группы и его токен действителен.")
