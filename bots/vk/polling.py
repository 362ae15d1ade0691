"""Bots Long Poll under a Redis lease: one process polls a community at a time.

groups.getLongPollServer (through vk_api, off the event loop) gives `server`, `key` and `ts`;
the a_check long poll itself is plain aiohttp so that stopping never waits out a 25-second
request in a thread. `ts` moves on only after the batch is in Redis. `failed` answers follow
the rules: 1 -> go on from the `ts` in the answer (history partly lost), 2 -> new key, same
ts (the key expired), 3 -> new key and new ts (information lost).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

import aiohttp

from bots.health import FatalRoleError
from bots.vk.client import VkClient, VkError
from bots.vk.ingress import VkIngress
from handoff.jsonbody import scrub
from handoff.lease import Lease

log = logging.getLogger(__name__)


class PollingError(FatalRoleError):
    """Polling cannot go on (the token or group was rejected)."""


FATAL_CODES = frozenset({5, 15, 27, 100})  # bad token, no access, group token needed, bad group


@dataclass(slots=True)
class PollServer:
    server: str
    key: str
    ts: str


class VkPoller:
    def __init__(self, client: VkClient, ingress: VkIngress, lease: Lease, *,
                 wait: int = 25) -> None:
        self._client = client
        self._ingress = ingress
        self._lease = lease
        self.wait = wait
        self.poll: PollServer | None = None
        self.recoveries: dict[int, int] = {1: 0, 2: 0, 3: 0}

    async def run(self, stop: asyncio.Event) -> None:
        if not await self._lease.acquire(stop):
            return
        log.info("polling VK community %d (lease %s)", self._client.group_id, self._lease.key)
        backoff = 0.5
        timeout = aiohttp.ClientTimeout(total=self.wait + 15)
        try:
            async with aiohttp.ClientSession(timeout=timeout) as session:
                while not stop.is_set() and not self._lease.lost.is_set():
                    try:
                        await self._poll_once(session, stop)
                        backoff = 0.5
                    except VkError as exc:
                        if exc.code in FATAL_CODES:
                            raise PollingError(f"VK refused long polling: {exc}") from None
                        await self._pause(stop, backoff, exc)
                        backoff = min(backoff * 2, 30.0)
                    except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
                        await self._pause(stop, backoff, exc)
                        backoff = min(backoff * 2, 30.0)
        finally:
            await self._lease.release()

    async def _pause(self, stop: asyncio.Event, seconds: float, why: Exception) -> None:
        log.warning("vk long poll failed (%s); retrying in %.1fs", why, seconds)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)

    async def _server(self, keep_ts: str | None = None) -> PollServer:
        got = await self._client.call("groups.getLongPollServer", group_id=self._client.group_id)
        return PollServer(str(got["server"]), str(got["key"]), keep_ts or str(got["ts"]))

    async def _poll_once(self, session: aiohttp.ClientSession, stop: asyncio.Event) -> None:
        if self.poll is None:
            self.poll = await self._server()
        poll = self.poll
        params = {"act": "a_check", "key": poll.key, "ts": poll.ts, "wait": str(self.wait)}
        body = await _until_stopped(session, poll.server, params, stop)
        if body is None:
            return
        body = scrub(body)  # lone surrogates would make the batch unstorable, for ever
        if not isinstance(body, dict):
            raise ValueError(f"long poll answer is not an object: {body!r:.200}")
        failed = body.get("failed")
        if failed is not None:
            self._recover(int(failed), body)
            if failed in (2, 3):
                self.poll = await self._server(keep_ts=poll.ts if failed == 2 else None)
            return
        await self._ingress.accept(body.get("updates") or [])  # stored before ts moves on
        poll.ts = str(body["ts"])

    def _recover(self, failed: int, body: dict[str, Any]) -> None:
        if failed not in self.recoveries:
            raise ValueError(f"long poll failed={failed}: unknown")
        self.recoveries[failed] += 1
        log.warning("vk long poll failed=%d: %s", failed,
                    {1: "events may be lost, going on from the new ts", 2: "key expired",
                     3: "information lost, new key and ts"}[failed])
        if failed == 1 and self.poll is not None:
            self.poll.ts = str(body["ts"])


async def _until_stopped(session: aiohttp.ClientSession, url: str, params: dict[str, str],
                         stop: asyncio.Event) -> Any:
    """The JSON answer, or None when `stop` was set first (a long poll can take 25 s)."""

    async def call() -> Any:
        async with session.get(url, params=params) as response:
            response.raise_for_status()
            return await response.json(content_type=None)

    request = asyncio.ensure_future(call())
    stopping = asyncio.ensure_future(stop.wait())
    try:
        done, _ = await asyncio.wait({request, stopping}, return_when=asyncio.FIRST_COMPLETED)
        return request.result() if request in done else None
    finally:
        for future in (request, stopping):
            if not future.done():
                future.cancel()
                with contextlib.suppress(BaseException):
                    await future
