"""A pool of bots posting into the desk group: the main bot and the relays.

Telegram's limits are per bot: about 20 posts a minute into one group, one a second into one
chat. Every handoff spends a topic and a card, and every customer message relayed into a topic
spends again, so one bot's budget is the desk's ceiling. Relay bots (`DESK_RELAY_TOKENS`, bots
that are admins of the desk group with Manage topics) each bring a budget of their own.

What each bot can do (Bot API docs; PLATFORMS.md addendum A), and how the desk uses it:

- Topics: any admin with `can_manage_topics` may create, rename, close and reopen them, so the
  bot that can post soonest does it; the desk store keeps their state, not the bot.
- Cards: any bot may post one, but a press on its buttons goes only to the bot that sent it
  (A3), and only that bot may answer the press and edit the card (a bot edits only its own
  messages). So the card's bot is recorded with it, every relay's presses are polled
  (`getUpdates` with `allowed_updates=["callback_query"]`), answers go out through the bot that
  received the press, and re-renders through the bot that posted the card.
- Copies of the customer's messages stay with the main bot: message ids in the customer's
  private chat mean nothing to another account, and the relay was never in that chat (A5); nor
  can it reuse the main bot's `file_id`s. Relays post *texts* (a customer's text, merged
  texts, a note). All of this only in forum topics of a supergroup, where message ids are
  the same for every bot; the queue summary stays with the main bot.
- Whether K bots really get K times a group's budget is not stated by Telegram's maintainers
  (A1); several desk groups are the other way past the limit.

A post goes to whichever bot with the right to make it can post soonest; on a tie a relay, to
keep the main bot's budget for what only it can do. A relay whose token was revoked (401) or
that was removed from the group (403) is reported once (a log line and a note in the desk) and
dropped from the pool; the post it failed is made by another bot, so nothing it held is lost.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from aiogram import Bot
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramRetryAfter,
    TelegramUnauthorizedError,
)
from aiogram.types import MessageEntity

from bots.telegram.desk.budget import GroupBudget

THREAD_GONE = "message thread not found"

log = logging.getLogger(__name__)


T = TypeVar("T")


class PosterGone(Exception):
    """The bot that must make this call (it posted the card) is no longer in the pool."""


@dataclass(eq=False)
class Poster:
    """A bot that posts into the desk group, with its own budget there."""

    bot: Bot
    budget: GroupBudget
    name: str  # @username, for the reports
    relay: bool = True

    @property
    def id(self) -> int:
        return self.bot.id


class RelayPool:
    def __init__(self, main: Poster, relays: list[Poster], *,
                 report: Callable[[str], Awaitable[None]] | None = None) -> None:
        self.main = main
        self.relays = list(relays)
        self.report = report  # a note in the desk's General topic

    def pick(self, relays: bool = True) -> Poster:
        """The bot that can post soonest (a relay on a tie); the main bot alone when the call
        is one only it can make."""
        if not relays or not self.relays:
            return self.main
        return min([*self.relays, self.main],
                   key=lambda poster: (poster.budget.delay(), not poster.relay))

    def by_id(self, bot_id: int) -> Poster | None:
        """The bot with this id, if it is (still) in the pool; 0 is the main bot."""
        if bot_id in (0, self.main.id):
            return self.main
        return next((poster for poster in self.relays if poster.id == bot_id), None)

    async def run(self, call: Callable[[Poster], Awaitable[T]], *, relays: bool = True,
                  poster: Poster | None = None, cost: int = 1) -> tuple[Poster, T]:
        """Make one group call through the pool: paced by the chosen bot's budget.

        `poster`: the call must be made by this bot (an edit of its own message). A relay's 429
        pauses its budget and the call goes to the next bot (or waits for the same one); a
        relay that lost its token or the group is dropped. The main bot's errors propagate
        (the desk's retry policy pauses its budget), as does a refused call, its slot given
        back: Telegram did not count it.
        """
        while True:
            chosen = poster or self.pick(relays)
            if chosen is not self.main and chosen not in self.relays:
                raise PosterGone(chosen.name)
            await chosen.budget.spend(cost)
            try:
                return chosen, await call(chosen)
            except TelegramRetryAfter as exc:
                if not chosen.relay:
                    raise
                chosen.budget.pause(exc.retry_after)
                log.warning("desk relay %s: 429, retry after %ss", chosen.name, exc.retry_after)
            except (TelegramUnauthorizedError, TelegramForbiddenError) as exc:
                if not chosen.relay:
                    raise
                await self.drop(chosen, exc.message)
            except (TelegramBadRequest, TelegramMigrateToChat) as exc:
                if isinstance(exc, TelegramMigrateToChat) or THREAD_GONE in exc.message:
                    chosen.budget.give_back()
                raise

    async def post_text(self, chat_id: int, thread_id: int, text: str,
                        entities: list[MessageEntity] | None) -> int:
        """Post a text into a topic through the pool; the message id."""
        _, sent = await self.run(lambda poster: poster.bot.send_message(
            chat_id, text, message_thread_id=thread_id, entities=entities))
        return sent.message_id

    async def drop(self, poster: Poster, reason: str) -> None:
        """Out of the pool for good (until a restart), reported once."""
        if poster not in self.relays:
            return
        self.relays.remove(poster)
        log.error("desk relay %s dropped from the pool: %s", poster.name, reason)
        if self.report is not None:
            await self.report(f"⚠️ Бот-ретранслятор {poster.name} больше не может писать в "
                              f"группу ({reason}) и исключён из пула. Проверьте, что он "
                              f"администратор группы и его токен действителен.")
