"""The VK channel's parts, built from the settings: client, ingress, poller, Callback API
routes and sender. The runtime decides which of them run (`Runtime.run_vk`)."""

from __future__ import annotations

from aiogram import Bot
from aiohttp import web
from redis.asyncio import Redis

from bots.callbacks import CallbackSigner
from bots.settings import Settings
from bots.vk.callback import callback_routes
from bots.vk.client import VkClient
from bots.vk.ingress import VkIngress
from bots.vk.outgoing import Uploads
from bots.vk.polling import VkPoller
from bots.vk.sender import VkLimits, VkSender
from handoff.conversations import ConversationStore
from handoff.ingest import Ingestor
from handoff.keys import Keys
from handoff.lease import Lease
from handoff.outbox import OutboxReader
from handoff.scripts import Scripts


class VkChannel:
    def __init__(self, settings: Settings, ingestor: Ingestor, store: ConversationStore,
                 redis: Redis, keys: Keys, scripts: Scripts, owner: str) -> None:
        if settings.vk_token is None or settings.vk_group_id is None:
            raise RuntimeError("VK_TOKEN and VK_GROUP_ID are not set")
        self.settings = settings
        self.client = VkClient(settings.vk_token.get_secret_value(), settings.vk_group_id,
                               settings.vk_api_url)
        self._redis = redis
        self._keys = keys
        self._scripts = scripts
        self._store = store
        self._owner = owner
        self.ingress = VkIngress(ingestor, self.client, redis, keys)

    def routes(self) -> list[web.RouteDef]:
        """The Callback API endpoint (callback mode), for the runtime's HTTP server."""
        if self.settings.vk_mode != "callback":
            return []
        assert self.settings.vk_confirmation and self.settings.vk_secret is not None
        return callback_routes(self.ingress, self.settings.vk_confirmation,
                               self.settings.vk_secret.get_secret_value())

    def poller(self) -> VkPoller | None:
        if self.settings.vk_mode != "longpoll":
            return None
        lease = Lease(self._redis, self._scripts,
                      self._keys.lease(f"vk-poll:{self.client.group_id}"),
                      ttl=self.settings.lease_seconds, owner=self._owner)
        return VkPoller(self.client, self.ingress, lease, wait=self.settings.vk_poll_wait)

    def sender(self, signer: CallbackSigner, telegram: Bot | None) -> VkSender:
        """`telegram` downloads what operators attach in the desk (None: no desk)."""
        lease = Lease(self._redis, self._scripts,
                      self._keys.lease(f"sender:vk:{self.client.group_id}"),
                      ttl=self.settings.lease_seconds, owner=self._owner)
        return VkSender(
            self.client, OutboxReader(self._redis, self._keys, "vk"), self._store, signer,
            self._redis, self._keys, Uploads(self.client, telegram),
            VkLimits(requests_per_second=self.settings.vk_requests_per_second), lease=lease,
        )

    def close(self) -> None:
        self.client.close()
