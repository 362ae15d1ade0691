"""The VK channel (bots/channels.py): client, ingress, poller, Callback API routes and
sender, built from the settings; the runtime says which roles run."""

from __future__ import annotations

import asyncio

from aiohttp import web

from bots.channels import ChannelContext, StartRole
from bots.delivery.files import FileSource
from bots.vk.callback import callback_routes
from bots.vk.client import VkClient
from bots.vk.ingress import VkIngress
from bots.vk.outgoing import Uploads
from bots.vk.polling import VkPoller
from bots.vk.sender import VkLimits, VkSender
from bots.vk.wall import configure as configure_wall
from bots.vk.wall_sender import WallSender
from handoff.lease import Lease
from handoff.outbox import OutboxReader


class VkChannel:
    name = "vk"

    def __init__(self, context: ChannelContext, files: FileSource | None = None) -> None:
        """`files` fetches what operators attach in the desk (None: no desk)."""
        settings = context.settings
        if settings.vk_token is None or settings.vk_group_id is None:
            raise RuntimeError("VK_TOKEN and VK_GROUP_ID are not set")
        self.settings = settings
        self.client = VkClient(settings.vk_token.get_secret_value(), settings.vk_group_id,
                               settings.vk_api_url)
        self._ctx = context
        self._redis = context.redis
        self._keys = context.keys
        self._scripts = context.scripts
        self._files = files
        admin = settings.vk_admin_token
        self.admin_client = None if admin is None else VkClient(
            admin.get_secret_value(), settings.vk_group_id, settings.vk_api_url)
        self.ingress = VkIngress(context.ingestor, self.client, context.redis, context.keys,
                                 context.store, self.admin_client)
        configure_wall(admin=admin is not None)

    async def prepare(self) -> None:
        """Nothing to learn first: the community is configured (VK_GROUP_ID)."""

    async def start(self, stop: asyncio.Event, roles: set[str], role: StartRole
                    ) -> list[asyncio.Task[None]]:
        tasks = []
        poller = self.poller() if "ingress" in roles else None
        if poller is not None:
            tasks.append(role("vk-poller", poller.run, stop))
        if "sender" in roles:
            tasks.append(role("vk-sender", lambda stop: self.sender().run(stop), stop))
            tasks.append(role("vk-wall-sender", lambda stop: self.wall_sender().run(stop), stop))
        return tasks

    async def close(self) -> None:
        self.client.close()
        if self.admin_client is not None:
            self.admin_client.close()

    def routes(self) -> list[web.AbstractRouteDef]:
        """The Callback API endpoint (callback mode), for the runtime's HTTP server."""
        if self.settings.vk_mode != "callback":
            return []
        assert self.settings.vk_confirmation and self.settings.vk_secret is not None
        return list(callback_routes(self.ingress, self.settings.vk_confirmation,
                                    self.settings.vk_secret.get_secret_value()))

    def poller(self) -> VkPoller | None:
        if self.settings.vk_mode != "longpoll":
            return None
        lease = Lease(self._redis, self._scripts,
                      self._keys.lease(f"vk-poll:{self.client.group_id}"),
                      ttl=self.settings.lease_seconds, owner=self._ctx.owner)
        return VkPoller(self.client, self.ingress, lease, wait=self.settings.vk_poll_wait)

    def sender(self) -> VkSender:
        lease = Lease(self._redis, self._scripts,
                      self._keys.lease(f"sender:vk:{self.client.group_id}"),
                      ttl=self.settings.lease_seconds, owner=self._ctx.owner)
        return VkSender(
            self.client, OutboxReader(self._redis, self._keys, "vk"), self._ctx.store,
            self._ctx.signer, self._redis, self._keys, Uploads(self.client, self._files),
            VkLimits(requests_per_second=self.settings.vk_requests_per_second), lease=lease,
        )

    def wall_sender(self) -> WallSender:
        """Operators' public answers and actions on the community's wall (bots/vk/wall.py)."""
        lease = Lease(self._redis, self._scripts,
                      self._keys.lease(f"sender:vk-wall:{self.client.group_id}"),
                      ttl=self.settings.lease_seconds, owner=self._ctx.owner)
        return WallSender(self.client, self.admin_client,
                          OutboxReader(self._redis, self._keys, "vk-wall"), self._ctx.store,
                          self._redis, self._keys, lease=lease)
