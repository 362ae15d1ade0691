"""What the runtime needs from each network it talks to (Telegram, VK, the web).

The runtime builds the shared parts once, whatever channels are configured: the HTTP server
(each channel adds its routes), the worker, the reloader and the desk's scheduler. A channel
brings the rest: how messages come in (webhook routes, pollers) and the sender that takes its
outbox. Everything a channel uses is given to its constructor (`ChannelContext`), so a channel
can be built and tested without a runtime.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from aiohttp import web
from redis.asyncio import Redis

from bots.callbacks import CallbackSigner
from bots.settings import Settings
from handoff.conversations import ConversationStore
from handoff.ingest import Ingestor
from handoff.keys import Keys
from handoff.scripts import Scripts
from handoff.service import HandoffService

if TYPE_CHECKING:
    from bots.runtime import Tuning

Role = Callable[[asyncio.Event], Awaitable[None]]
# Starts a role the way the runtime supervises them (bots/health.py): (name, run, stop).
StartRole = Callable[[str, Role, asyncio.Event], "asyncio.Task[None]"]


@dataclass(frozen=True, slots=True)
class ChannelContext:
    settings: Settings
    redis: Redis
    keys: Keys
    scripts: Scripts
    store: ConversationStore
    ingestor: Ingestor
    handoff: HandoffService
    signer: CallbackSigner
    tuning: Tuning
    owner: str  # this process's lease owner token


class Channel(Protocol):
    name: str

    async def prepare(self) -> None:
        """Learn what the routes need from the platform (the bot's own id); before `routes`."""
        ...

    def routes(self) -> list[web.AbstractRouteDef]:
        """Endpoints on the runtime's HTTP server (a webhook, the widget)."""
        ...

    async def start(self, stop: asyncio.Event, roles: set[str], role: StartRole
                    ) -> list[asyncio.Task[None]]:
        """The channel's roles among `roles` (`ingress`, `sender`), once HTTP is served."""
        ...

    async def close(self) -> None:
        """Release the platform client and end open connections; after every role stopped,
        before the HTTP server stops."""
        ...
