"""Long polling of getUpdates under a Redis lease (Telegram allows one poller per token).

getUpdates is called over plain aiohttp rather than through aiogram's Bot so that each update is
validated on its own: one malformed update must not make the whole batch unreadable.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import aiohttp

from bots.health import FatalRoleError
from bots.telegram.ingress import TelegramIngress
from bots.telegram.updates import ALLOWED_UPDATES
from handoff.jsonbody import scrub
from handoff.lease import Lease

log = logging.getLogger(__name__)


class PollingError(FatalRoleError):
    """Polling cannot go on (the token was rejected)."""


class TelegramPoller:
    def __init__(
        self, api_url: str, token: str, ingress: TelegramIngress, lease: Lease, *,
        timeout: int = 25, limit: int = 100, allowed_updates: list[str] | None = None,
        name: str = "TELEGRAM_BOT_TOKEN",
    ) -> None:
        self.name = name  # whose token, in the error when Telegram rejects it
        self._url = f"{api_url}/bot{token}/getUpdates"
        self._ingress = ingress
        self._lease = lease
        self.timeout = timeout
        self.limit = limit
        self.offset: int | None = None
        self.allowed_updates = allowed_updates or ALLOWED_UPDATES

    async def run(self, stop: asyncio.Event) -> None:
        if not await self._lease.acquire(stop):
            return
        log.info("polling Telegram (lease %s)", self._lease.key)
        backoff = 0.5
        client_timeout = aiohttp.ClientTimeout(total=self.timeout + 15)
        try:
            async with aiohttp.ClientSession(timeout=client_timeout) as session:
                while not stop.is_set() and not self._lease.lost.is_set():
                    try:
                        await self._poll_once(session, stop)
                        backoff = 0.5
                    except PollingError:
                        raise
                    except (aiohttp.ClientError, asyncio.TimeoutError, RuntimeError,
                            ValueError) as exc:  # ValueError: not JSON (a proxy's 502 page)
                        log.warning("getUpdates failed (%s: %s); retrying in %.1fs",
                                    type(exc).__name__, exc, backoff)
                        await asyncio.sleep(backoff)
                        backoff = min(backoff * 2, 30.0)
        finally:
            await self._lease.release()

    async def _poll_once(self, session: aiohttp.ClientSession, stop: asyncio.Event) -> None:
        params: dict[str, Any] = {
            "timeout": self.timeout, "limit": self.limit, "allowed_updates": self.allowed_updates,
        }
        if self.offset is not None:
            params["offset"] = self.offset
        body = await self._request(session, params, stop)
        if body is None:  # stopping: the long poll was abandoned
            return
        if not isinstance(body, dict) or not body.get("ok"):
            self._fail(body)
            return
        updates = body.get("result") or []
        highest = await self._ingress.accept(updates)  # stored before the offset moves on
        if highest is not None:
            self.offset = highest + 1

    async def _request(
        self, session: aiohttp.ClientSession, params: dict[str, Any], stop: asyncio.Event
    ) -> Any:
        """The JSON answer, or None when `stop` was set first (a long poll can take 25 s)."""

        async def call() -> Any:
            async with session.post(self._url, json=params) as response:
                # Lone surrogates would make the batch unstorable, and so repeated for ever.
                return scrub(await response.json(content_type=None))

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

    def _fail(self, body: Any) -> None:
        code = body.get("error_code") if isinstance(body, dict) else None
        description = body.get("description", body) if isinstance(body, dict) else body
        if code == 401:
            raise PollingError(f"Telegram rejected {self.name} (401 Unauthorized)")
        if code == 409:
            raise RuntimeError(f"conflict: {description}")
        retry_after = (body.get("parameters") or {}).get("retry_after") if isinstance(body, dict) \
            else None
        raise RuntimeError(f"getUpdates error {code}: {description}"
                           + (f" (retry after {retry_after}s)" if retry_after else ""))
