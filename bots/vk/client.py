"""vk_api behind an asyncio face: every blocking call runs in a small thread pool.

vk_api hard-codes its API host (api.vk.ru in 11.10, api.vk.com before), so the requests
session it is given sends those calls to the configured `VK_API_URL` instead (the tests'
fake, or a proxy). vk_api's own handling of error 6 (sleep in the calling thread, retry) is
switched off: the sender retries with back-off on the event loop and keeps its own pace.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import requests
import vk_api
from vk_api.exceptions import ApiError, ApiHttpError

log = logging.getLogger(__name__)

API_VERSION = "5.199"
HARDCODED_HOSTS = ("https://api.vk.ru", "https://api.vk.com")
TOO_MANY_REQUESTS = 6
FLOOD_CONTROL = 9
INTERNAL_ERROR = 10
RETRIED = frozenset({TOO_MANY_REQUESTS, FLOOD_CONTROL, INTERNAL_ERROR})
# The customer cannot be written to: deleted/banned, blacklisted us, no permission, privacy.
UNREACHABLE = frozenset({18, 900, 901, 902})

T = TypeVar("T")


class VkError(Exception):
    """An API answer with an error (`code` as VK numbers it) or a transport failure (code 0)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"[{code}] {message}")
        self.code = code
        self.message = message

    @property
    def transient(self) -> bool:
        return self.code == 0 or self.code in RETRIED


class _Rebased(requests.Session):
    """A session that sends vk_api's hard-coded API host to `base` instead."""

    def __init__(self, base: str) -> None:
        super().__init__()
        self.base = base.rstrip("/")

    def request(self, method: str | bytes, url: str | bytes, *args: Any,
                **kwargs: Any) -> requests.Response:
        text = url.decode() if isinstance(url, bytes) else url
        for host in HARDCODED_HOSTS:
            if text.startswith(host + "/"):
                text = self.base + text[len(host):]
                break
        return super().request(method, text, *args, **kwargs)


class VkClient:
    def __init__(self, token: str, group_id: int, api_url: str = "https://api.vk.com", *,
                 threads: int = 4, timeout: float = 30.0) -> None:
        self.group_id = group_id
        self.timeout = timeout
        self._session = _Rebased(api_url)
        self._vk = vk_api.VkApiGroup(token=token, api_version=API_VERSION, session=self._session)
        self._vk.RPS_DELAY = 0  # paced by the sender's own budget, not by sleeping in a thread
        self._vk.error_handlers.pop(TOO_MANY_REQUESTS, None)
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="vk")
        self._files = requests.Session()  # uploads and downloads: any host, no rebasing

    async def call(self, method: str, **params: Any) -> Any:
        """One API method; raises VkError with VK's code (0: the request never got an answer)."""
        values = {k: v for k, v in params.items() if v is not None}
        return await self._run(lambda: self._vk.method(method, values))

    async def upload(self, url: str, field: str, name: str, content: bytes) -> Any:
        """POST a file to an upload server VK handed out; its JSON answer."""

        def post() -> Any:
            response = self._files.post(url, files={field: (name, content)}, timeout=self.timeout)
            response.raise_for_status()
            return response.json()

        return await self._run(post)

    async def download(self, url: str) -> bytes:
        def get() -> bytes:
            response = self._files.get(url, timeout=self.timeout)
            response.raise_for_status()
            return response.content

        return await self._run(get)

    async def _run(self, work: Callable[[], T]) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._pool, work)
        except ApiError as exc:
            raise VkError(int(exc.code), str(exc.error.get("error_msg", ""))) from None
        except ApiHttpError as exc:
            raise VkError(0, f"HTTP {exc.response.status_code}") from None
        except (requests.RequestException, ValueError) as exc:
            raise VkError(0, f"{type(exc).__name__}: {exc}") from None

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._session.close()
        self._files.close()
