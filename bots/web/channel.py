"""The web channel (bots/channels.py): the widget's routes and the sender that fills each
visitor's chat stream."""

from __future__ import annotations

import asyncio

from aiohttp import web

from bots.channels import ChannelContext, StartRole
from bots.delivery.files import FileSource
from bots.web.chat import WebChat
from bots.web.files import WebFiles
from bots.web.identity import Visitors
from bots.web.sender import WebSender
from bots.web.wakeups import Wakeups
from bots.web.widget import WidgetConfig, WidgetServer
from handoff.lease import Lease
from handoff.outbox import OutboxReader


class WebChannel:
    name = "web"

    def __init__(self, context: ChannelContext, files: FileSource | None = None) -> None:
        """`files` fetches operators' photos from the Telegram desk (None: no such desk)."""
        settings = context.settings
        self._ctx = context
        self._source = files
        self.chat = WebChat(context.redis, context.keys, context.scripts,
                            Wakeups(context.redis, context.keys))
        self.files = WebFiles(context.redis, context.keys, settings.web_file_days)
        secret = settings.web_identity_secret
        self.visitors = Visitors(context.redis, context.keys,
                                 secret.get_secret_value() if secret else None)
        self.widget = WidgetServer(
            context.ingestor, self.visitors, self.chat, self.files, context.redis,
            context.keys, WidgetConfig(origins=frozenset(settings.web_origin_list),
                                       public_url=settings.web_public_url.rstrip("/")))

    async def prepare(self) -> None:
        """Nothing to learn first."""

    def routes(self) -> list[web.AbstractRouteDef]:
        return self.widget.routes()

    async def start(self, stop: asyncio.Event, roles: set[str], role: StartRole
                    ) -> list[asyncio.Task[None]]:
        if "sender" not in roles:
            return []
        return [role("web-sender", lambda stop: self.sender().run(stop), stop)]

    def sender(self) -> WebSender:
        ctx = self._ctx
        lease = Lease(ctx.redis, ctx.scripts, ctx.keys.lease("sender:web"),
                      ttl=ctx.settings.lease_seconds, owner=ctx.owner)
        return WebSender(OutboxReader(ctx.redis, ctx.keys, "web"), self.chat, ctx.signer,
                         self.files, self._name_of, self._source, lease=lease)

    async def _name_of(self, operator: str) -> str:
        found = await self._ctx.handoff.operator(operator)
        return (found.name if found else "") or ""

    async def close(self) -> None:
        """Before the HTTP server stops: open widgets are told to reconnect (the server waits
        for every handler, and a socket's lasts as long as its page)."""
        await self.widget.close_sockets()
        await self.chat.wakeups.close()
