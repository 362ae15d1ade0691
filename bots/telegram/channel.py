"""The Telegram channel: the bot's updates (webhook or long polling), its sender, and the
operators' desk (forum groups, relay bots) the sender drives."""

from __future__ import annotations

import asyncio
import functools
import logging

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramUnauthorizedError
from aiohttp import web

from bots.channels import ChannelContext, StartRole
from bots.delivery.lanes import held_surely
from bots.desk.store import DeskStore
from bots.telegram.desk.budget import GroupBudget
from bots.telegram.desk.chat import DeskChat
from bots.telegram.desk.desks import Desks
from bots.telegram.desk.relays import Poster, RelayPool
from bots.telegram.desk.sender import DeskSender
from bots.telegram.desk.summary import DESK_QUEUE_SCAN, SHOWN, DeskSnapshot, QueueLine
from bots.telegram.desk.topics import Topics
from bots.telegram.files import TelegramFiles
from bots.telegram.ingress import TelegramIngress
from bots.telegram.polling import PollingError, TelegramPoller
from bots.telegram.sender import TelegramSender
from bots.telegram.session import telegram_bot
from bots.telegram.updates import ALLOWED_UPDATES
from bots.telegram.webhook import WEBHOOK_PATH, webhook_routes
from handoff.lease import Lease
from handoff.outbox import OutboxReader
from handoff.queue import QueueItem

log = logging.getLogger(__name__)


class TelegramChannel:
    name = "tg"

    def __init__(self, context: ChannelContext) -> None:
        settings = context.settings
        if settings.telegram_bot_token is None:
            raise RuntimeError("TELEGRAM_BOT_TOKEN is not set")
        self._ctx = context
        self.bot = telegram_bot(settings.telegram_bot_token.get_secret_value(),
                                settings.telegram_api_url)
        self.username = ""  # the bot's @username, known after prepare()
        self._ingress: TelegramIngress | None = None
        self._relay_bots: list[Bot] = []
        # One list per process: its sender and ingress agree at once on a migrated group.
        store = DeskStore(context.redis, context.keys)
        self.desk_chats = [
            DeskChat(store.of_desk(None if number == 0 else desk.chat_id), desk.chat_id)
            for number, desk in enumerate(settings.desk_groups)]

    def files(self) -> TelegramFiles:
        """Operators' photos in the desk, for channels that send them on (VK, the web)."""
        return TelegramFiles(self.bot)

    async def prepare(self) -> None:
        me = await self.bot.get_me()
        log.info("Telegram bot @%s (id %d)", me.username, me.id)
        self.username = me.username or ""
        self._ingress = TelegramIngress(self._ctx.ingestor, me.id, desks=self.desk_chats)

    def routes(self) -> list[web.AbstractRouteDef]:
        settings = self._ctx.settings
        if settings.telegram_mode != "webhook":
            return []
        assert self._ingress is not None, "prepare() first"
        secret = settings.telegram_webhook_secret
        if settings.telegram_webhook_url is None or secret is None:
            raise RuntimeError("webhook mode needs TELEGRAM_WEBHOOK_URL and "
                               "TELEGRAM_WEBHOOK_SECRET")
        return list(webhook_routes(self._ingress, secret.get_secret_value()))

    async def start(self, stop: asyncio.Event, roles: set[str], role: StartRole
                    ) -> list[asyncio.Task[None]]:
        tasks = []
        if "ingress" in roles:
            tasks += await self._start_ingress(stop, role)
        if "sender" in roles:
            async def send(stop: asyncio.Event) -> None:
                await (await self.sender()).run(stop)

            tasks.append(role("sender", send, stop))
        return tasks

    async def close(self) -> None:
        await self.bot.session.close()
        for relay in self._relay_bots:
            await relay.session.close()
        self._relay_bots.clear()

    # --- ingress -------------------------------------------------------------------------
    async def _start_ingress(self, stop: asyncio.Event, role: StartRole
                             ) -> list[asyncio.Task[None]]:
        """The webhook (HTTP is served already, so Telegram can reach it at once) or the
        poller; and the relay bots' pollers."""
        ctx, settings = self._ctx, self._ctx.settings
        assert self._ingress is not None, "prepare() first"
        tasks = []
        if settings.telegram_mode == "webhook":
            secret = settings.telegram_webhook_secret
            assert settings.telegram_webhook_url is not None and secret is not None
            await self.bot.set_webhook(
                settings.telegram_webhook_url.rstrip("/") + WEBHOOK_PATH,
                secret_token=secret.get_secret_value(), allowed_updates=ALLOWED_UPDATES,
            )
        else:
            await self.bot.delete_webhook(drop_pending_updates=False)
            lease = Lease(ctx.redis, ctx.scripts, ctx.keys.lease(f"tg-poll:{self.bot.id}"),
                          ttl=settings.lease_seconds, owner=ctx.owner)
            poller = TelegramPoller(settings.telegram_api_url, self.bot.token, self._ingress,
                                    lease, timeout=settings.telegram_poll_timeout)
            tasks.append(role("poller", poller.run, stop))
        if self.desk_chats:
            for token in settings.relay_tokens:
                tasks.append(role(f"relay-poller:{token.split(':', 1)[0]}",
                                  functools.partial(self._poll_relay, token), stop))
        return tasks

    async def _poll_relay(self, token: str, stop: asyncio.Event) -> None:
        """Presses on the cards a desk relay posted reach only that relay: poll them (in both
        modes; a relay has no webhook of its own). A token Telegram rejects is reported and
        left alone until a restart: the desk goes on with the other bots."""
        ctx, settings = self._ctx, self._ctx.settings
        relay = telegram_bot(token, settings.telegram_api_url)
        try:
            me = await relay.get_me()
            await relay.delete_webhook(drop_pending_updates=False)
        except TelegramUnauthorizedError as exc:
            log.error("desk relay %s…: its presses are not polled: %s",
                      token.split(":", 1)[0], exc.message)
            await stop.wait()
            return
        finally:
            await relay.session.close()
        lease = Lease(ctx.redis, ctx.scripts, ctx.keys.lease(f"tg-poll:{me.id}"),
                      ttl=settings.lease_seconds, owner=ctx.owner)
        poller = TelegramPoller(
            settings.telegram_api_url, token,
            TelegramIngress(ctx.ingestor, me.id, desks=self.desk_chats, relay=True), lease,
            timeout=settings.telegram_poll_timeout, allowed_updates=["callback_query"],
            name=f"desk relay @{me.username}")
        try:
            await poller.run(stop)
        except PollingError as exc:
            log.error("%s; its presses are no longer polled", exc)
            await stop.wait()

    # --- the sender and the desk ---------------------------------------------------------
    async def sender(self) -> TelegramSender:
        """A fresh sender (and desk sender) for each run: one at a time per bot token. The
        desk's posts are acknowledged in the same outbox, under the same lease."""
        ctx = self._ctx
        lease = Lease(ctx.redis, ctx.scripts, ctx.keys.lease(f"sender:tg:{self.bot.id}"),
                      ttl=ctx.settings.lease_seconds, owner=ctx.owner)
        reader = OutboxReader(ctx.redis, ctx.keys, "tg")
        return TelegramSender(self.bot, reader, ctx.store, ctx.signer, ctx.tuning.send_limits,
                              lease=lease, desk=await self._desks(reader, lease))

    async def _desks(self, reader: OutboxReader, lease: Lease) -> Desks | None:
        """A DeskSender per desk group, each with budgets of its own for the main bot and the
        relays (Telegram's limits are per bot and per group)."""
        ctx = self._ctx
        if not self.desk_chats:
            return None
        relays = await self._relays()
        routing = ctx.settings.desk_routing()
        senders = {}
        for desk, chat in zip(routing.desks, self.desk_chats, strict=True):
            pool = RelayPool(Poster(self.bot, self._group_budget(), "main", relay=False),
                             [Poster(relay, self._group_budget(), name)
                              for relay, name in relays])
            senders[desk.chat_id] = DeskSender(
                self.bot, ctx.redis, ctx.keys, ctx.store, ctx.signer,
                Topics(pool, chat), functools.partial(self.desk_snapshot, desk.chat_id),
                reader.ack, may_send=functools.partial(held_surely, lease),
                clock=ctx.tuning.desk_clock, sleep=ctx.tuning.desk_sleep,
                timezone=ctx.settings.timezone, desk=desk)
        return Desks(senders, routing, self.desk_chats[0].store, ctx.store)

    def _group_budget(self) -> GroupBudget:
        """One bot's budget in the desk group (Telegram's limits are per bot)."""
        tuning = self._ctx.tuning
        limits = tuning.send_limits
        return GroupBudget(limits.per_group_per_minute, limits.desk_per_second,
                           clock=tuning.desk_clock, sleep=tuning.desk_sleep)

    async def _relays(self) -> list[tuple[Bot, str]]:
        """The relay bots of the desk and their @usernames; a token Telegram rejects is
        reported at start and left out."""
        relays = []
        for token in self._ctx.settings.relay_tokens:
            relay = telegram_bot(token, self._ctx.settings.telegram_api_url)
            try:
                me = await relay.get_me()
            except TelegramAPIError as exc:
                log.error("desk relay %s… left out: %s", token.split(":", 1)[0], exc.message)
                await relay.session.close()
                continue
            self._relay_bots.append(relay)
            relays.append((relay, f"@{me.username}"))
        if relays:
            log.info("desk relays: %s", ", ".join(name for _, name in relays))
        return relays

    async def desk_snapshot(self, desk: int | None = None) -> DeskSnapshot:
        """What the queue summary in a desk's General topic shows: that desk's queue (with
        several desks, the others' lengths too, for supervisors)."""
        handoff, desks = self._ctx.handoff, self._ctx.settings.desk_groups
        if desk is None or len(desks) < 2:
            items = await handoff.queue(limit=SHOWN)
            queued, others = await handoff.queue_length(), dict[str, int]()
        else:
            items, queued, others = await self._desk_queue(desk)
        profiles = await self._ctx.store.profiles([item.conv for item in items])
        lines = [
            QueueLine(item.conv, profile.display_name if profile else item.conv, item.priority,
                      item.reason, item.queued_at, item.escalated)
            for item, profile in zip(items, profiles, strict=True)
        ]
        operators = await handoff.operators()
        online = [o.name or o.id for o in operators if o.status == "online"]
        return DeskSnapshot(lines, sum(o.load for o in operators), online, queued, others)

    async def _desk_queue(self, desk: int) -> tuple[list[QueueItem], int, dict[str, int]]:
        """One desk's part of the queue (its first SHOWN, its length) and the other desks'
        lengths. A conversation not routed yet counts for the first desk."""
        desks = self._ctx.settings.desk_groups
        items = await self._ctx.handoff.queue(limit=DESK_QUEUE_SCAN)
        routed = await DeskStore(self._ctx.redis, self._ctx.keys).desks_of(
            [i.conv for i in items])
        counts = {d.chat_id: 0 for d in desks}
        mine = []
        for item, owner in zip(items, routed, strict=True):
            owner = owner if owner in counts else desks[0].chat_id
            counts[owner] += 1
            if owner == desk:
                mine.append(item)
        others = {d.name: counts[d.chat_id] for d in desks if d.chat_id != desk}
        return mine[:SHOWN], counts[desk], others
