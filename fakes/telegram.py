"""A fake Telegram Bot API server for driving the real aiogram ``Bot`` over HTTP in tests.

    async with FakeTelegram() as fake:
        bot = Bot(fake.token, session=AiohttpSession(api=TelegramAPIServer.from_base(fake.url)))
        fake.push_update(fake.text_update(42, "/start"))
        [call] = await fake.wait_for("sendMessage")

Behaviour comes from ../shared/PLATFORMS.md (TELEGRAM part) and the Bot API server source:

* Answers are ``{"ok": true, "result": ...}`` with HTTP 200, or ``{"ok": false, "error_code",
  "description", "parameters"?}`` with the same HTTP status (aiogram maps errors by status).
  A wrong token is 401 "Unauthorized"; an unknown method 404 "Not Found". Method names are
  case-insensitive, like the real server. Results are complete objects aiogram validates.
* Updates, long polling, 409 conflicts and webhooks: ``fakes/telegram_delivery.py``.
* Sending, copying, editing (texts 1-4096 characters, HTML tags not counted, Markdown counted
  raw; captions 0-1024): ``telegram_methods.py``; media and files: ``telegram_media.py``;
  chats, members and forum topics: ``telegram_chats.py``; update builders:
  ``telegram_updates.py``.
* Chats: a positive id is a private chat with that user; groups exist only after
  ``add_group`` (otherwise "Bad Request: chat not found").
* Sending limits (``enforce_limits=True``): ``telegram_limits.py``: 1 msg/s per chat with a
  burst of 3, 20 msgs/min per group, 30 msgs/s overall (the Bot FAQ numbers quoted in
  PLATFORMS.md T3; the burst size is ours). Message-producing methods count (send*,
  copyMessage(s), forwardMessage(s)), and in groups edits and topic calls that post a service
  message too (PLATFORMS.md addendum A2); answers and chat actions do not.
* Several bots (``add_bot``: relay bots, admins of the groups given): each token has its own
  limits; a relay has no private chats ("bot can't initiate conversation with a user"), cannot
  copy from a chat it is not in, cannot use another bot's ``file_id``, edits only its own
  messages; a press on its button goes to its own updates, not the main bot's; ``remove_bot``
  and ``revoke_bot`` make its calls fail with Telegram's 403 and 401 texts.
"""

from __future__ import annotations

import asyncio
import copy
import inspect
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from typing_extensions import Self

from fakes.telegram_chats import ChatMethods
from fakes.telegram_delivery import UpdateDelivery, dumps
from fakes.telegram_limits import LimitViolation
from fakes.telegram_methods import CONTENT_KEYS
from fakes.telegram_state import Call, ChatState, acting_token
from fakes.telegram_updates import UpdateBuilders
from fakes.telegram_wire import ApiError, UploadedFile, ok, read_request

__all__ = ["Call", "FakeTelegram", "LimitViolation", "UploadedFile", "WaitTimeout"]


class WaitTimeout(AssertionError, TimeoutError):
    """``wait_for`` gave up; an AssertionError for pytest, a TimeoutError for callers."""


@dataclass
class _Failure:
    method: str
    error: ApiError
    chat_id: Any
    times: int


BAD_GATEWAY_PAGE = ("<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
                    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.18.0"
                    "</center>\r\n</body>\r\n</html>\r\n")


class FakeTelegram(ChatMethods, UpdateBuilders, UpdateDelivery):
    def __init__(
        self,
        token: str = "123456:TEST-token",
        enforce_limits: bool = False,
        clock: Callable[[], float] = time.monotonic,
        *,
        allowed_updates: list[str] | None = None,
    ) -> None:
        super().__init__(token, enforce_limits, clock, allowed_updates)
        self.internal_errors: list[BaseException] = []  # bugs in the fake (answered with 500)
        self._methods = {name[2:].lower(): name[2:] for name in dir(self) if name.startswith("m_")}
        self._failures: list[_Failure] = []
        self._gateway_errors: dict[str, int] = {}  # method -> how many 502 pages to answer
        self._delays: dict[str, float] = {}
        self._waiters: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []
        self._runner: web.AppRunner | None = None
        self._port = 0

    # --- lifecycle ------------------------------------------------------------------------
    @property
    def url(self) -> str:
        if not self._port:
            raise RuntimeError("FakeTelegram is not started")
        return f"http://127.0.0.1:{self._port}"

    async def start(self) -> None:
        app = web.Application(client_max_size=60 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_get("/file/bot{token}/{path:.+}", self._download)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self._port = self._runner.addresses[0][1]
        self._serving = True

    async def close(self) -> None:
        self._serving = False
        self._end_long_poll()
        if self._client is not None:
            await self._client.close()
        if self._runner is not None:
            await self._runner.cleanup()
        self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # --- HTTP -----------------------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.Response:
        arrived = time.perf_counter()
        params, files = await read_request(request)
        method = request.match_info["method"].lower()
        if self._gateway_errors.get(method, 0) > 0:
            self._gateway_errors[method] -= 1
            return web.Response(status=502, text=BAD_GATEWAY_PAGE, content_type="text/html")
        bot = self.bot_by_token(request.match_info["token"])
        if bot is None:
            error = ApiError(401, "Unauthorized")
            status, body = self._record(request.match_info["method"], params, files, arrived, error)
        else:
            acting_token.set(bot.token)  # this request's task acts as that bot
            status, body = await self.execute(
                request.match_info["method"], params, files, arrived=arrived
            )
        return web.json_response(body, status=status, dumps=dumps)

    async def _download(self, request: web.Request) -> web.StreamResponse:
        record = self.file_by_path(request.match_info["path"])
        bot = self.bot_by_token(request.match_info["token"])
        if bot is None or record is None or not self.usable_by(record, bot):
            return web.json_response({"ok": False, "error_code": 404, "description": "Not Found"},
                                     status=404)  # fmt: skip
        return web.Response(body=record.data, content_type="application/octet-stream")

    async def execute(
        self,
        method: str,
        params: dict[str, Any],
        files: dict[str, UploadedFile] | None = None,
        *,
        arrived: float | None = None,
        via: str = "http",
    ) -> tuple[int, dict[str, Any]]:
        """Run one Bot API method as if requested over HTTP; returns (status, body)."""
        arrived = time.perf_counter() if arrived is None else arrived
        files = files or {}
        name = self._methods.get(method.lower())
        if name is None:
            return self._record(method, params, files, arrived, ApiError(404, "Not Found"), via)
        call = Call(name, params, arrived, files=files, via=via, bot=self.acting.id)
        self.calls.append(call)
        self._notify()
        try:
            if delay := self._delays.get(name.lower()):
                await asyncio.sleep(delay)
            self._injected_failure(name, params)
            result = getattr(self, "m_" + name)(params, files)
            if inspect.isawaitable(result):
                result = await result
            status, body = 200, ok(result)
        except ApiError as error:
            status, body = error.error_code, error.body()
        except Exception as exc:  # a bug in the fake: make it loud, not a hang
            self.internal_errors.append(exc)
            status, body = 500, ApiError(500, f"Internal Server Error: fake: {exc!r}").body()
        call.status, call.response = status, body
        self._notify()
        return status, body

    def _record(
        self,
        method: str,
        params: dict[str, Any],
        files: dict[str, UploadedFile],
        arrived: float,
        error: ApiError,
        via: str = "http",
    ) -> tuple[int, dict[str, Any]]:
        call = Call(method, params, arrived, error.body(), error.error_code, files, via)
        self.calls.append(call)
        self._notify()
        return error.error_code, error.body()

    # --- recorded calls -------------------------------------------------------------------
    def calls_of(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method.lower() == method.lower()]

    def reset_calls(self) -> None:
        self.calls.clear()

    def _notify(self) -> None:
        for check, future in list(self._waiters):
            if not future.done() and check():
                future.set_result(None)

    async def wait_for(
        self,
        method: str,
        *,
        count: int = 1,
        predicate: Callable[[Call], bool] | None = None,
        timeout: float = 5.0,
    ) -> list[Call]:
        """All answered calls of ``method`` matching ``predicate``, once there are ``count``."""

        def matching() -> list[Call]:
            return [
                c
                for c in self.calls_of(method)
                if c.response is not None and (predicate is None or predicate(c))
            ]

        if len(found := matching()) >= count:
            return found
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiter = (lambda: len(matching()) >= count, future)
        self._waiters.append(waiter)
        try:
            await asyncio.wait_for(future, timeout)
        except asyncio.TimeoutError:
            seen = [c.method for c in self.calls[-20:]]
            raise WaitTimeout(
                f"{len(matching())}/{count} {method} calls after {timeout}s; last calls: {seen}"
            ) from None
        finally:
            self._waiters.remove(waiter)
        return matching()

    async def wait_until(self, condition: Callable[[], bool], *, timeout: float = 5.0) -> None:
        """Wait until ``condition()`` holds; re-checked whenever a request arrives or is
        answered, an update is pushed or a getUpdates starts waiting (no polling loop)."""
        if condition():
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiter = (condition, future)
        self._waiters.append(waiter)
        try:
            await asyncio.wait_for(future, timeout)
        except asyncio.TimeoutError:
            raise WaitTimeout(f"condition still false after {timeout}s") from None
        finally:
            self._waiters.remove(waiter)

    def messages_to(
        self,
        chat_id: int,
        thread_id: int | None = None,
        *,
        include_incoming: bool = False,
        include_service: bool = False,
    ) -> list[dict[str, Any]]:
        """Snapshots of the messages the bot (or one of its relays) sent to ``chat_id`` (and
        topic), oldest first, with edits applied and deleted ones gone. ``reply_markup`` is what
        the bot sent, of any keyboard type."""
        chat = self._chats.get(chat_id)
        if chat is None:
            return []
        ours = {bot.id for bot in self._bots.values()}
        return [
            copy.deepcopy(m)
            for m in chat.messages.values()
            if (include_incoming or (m.get("from") or {}).get("id") in ours)
            and (include_service or any(k in m for k in CONTENT_KEYS))
            and (thread_id is None or m.get("message_thread_id") == thread_id)
        ]

    def topics_of(self, chat_id: int) -> dict[int, dict[str, Any]]:
        """Open and closed topics of a forum: thread id -> ForumTopic fields + is_closed."""
        chat = self._chats.get(chat_id)
        return copy.deepcopy(chat.topics) if chat else {}

    # --- chats and failure injection ------------------------------------------------------
    def add_group(
        self,
        chat_id: int,
        title: str = "Operators",
        *,
        is_forum: bool = True,
        can_manage_topics: bool = True,
    ) -> dict[str, Any]:
        """Register a group the bot is an admin of (a supergroup when forum or -100…)."""
        if chat_id >= 0:
            raise ValueError("group ids are negative")
        kind = "supergroup" if is_forum or str(chat_id).startswith("-100") else "group"
        chat = ChatState(chat_id, kind, title, is_forum, can_manage_topics)
        chat.next_message_id = 2  # 1 is the group's creation (and the General topic's root)
        self._chats[chat_id] = chat
        return chat.as_chat()

    def migrate_group(self, old_id: int, new_id: int) -> None:
        """Upgrade a group: sends to ``old_id`` fail with migrate_to_chat_id=new_id."""
        old = self._chats.get(old_id) or ChatState(old_id, "group", f"Chat {old_id}")
        self._chats[old_id] = old
        old.migrated_to = new_id
        if new_id not in self._chats:
            self._chats[new_id] = ChatState(new_id, "supergroup", old.title)

    def block_user(self, chat_id: int) -> None:
        self.chat(chat_id).blocked = True

    def unblock_user(self, chat_id: int) -> None:
        self.chat(chat_id).blocked = False

    def deactivate_user(self, chat_id: int) -> None:
        self.chat(chat_id).deactivated = True

    def delay(self, method: str, seconds: float) -> None:
        """Answer ``method`` ``seconds`` later (0 removes the delay)."""
        self._delays[method.lower()] = seconds

    def gateway_error_next(self, method: str, times: int = 1) -> None:
        """Answer the next ``times`` calls of ``method`` with the HTML "502 Bad Gateway" page
        of the nginx in front of the Bot API (seen in production during Telegram's outages):
        not JSON at all."""
        self._gateway_errors[method.lower()] = times

    def fail_next(
        self,
        method: str,
        *,
        error_code: int | None = None,
        description: str | None = None,
        retry_after: int = 1,
        chat_id: int | str | None = None,
        times: int = 1,
        migrate_to_chat_id: int | None = None,
    ) -> None:
        """Answer the next ``times`` calls of ``method`` (to ``chat_id``, if given) with an error.

        Defaults: 429 "Too Many Requests: retry after N" with parameters.retry_after=N; with
        ``migrate_to_chat_id``, 400 "Bad Request: group chat was upgraded to a supergroup chat".
        ``retry_after`` is only sent with 429.
        """
        code = error_code or (400 if migrate_to_chat_id is not None else 429)
        parameters: dict[str, int] = {}
        if code == 429:
            parameters["retry_after"] = retry_after
        if migrate_to_chat_id is not None:
            parameters["migrate_to_chat_id"] = migrate_to_chat_id
        if description is None:
            description = {
                429: f"Too Many Requests: retry after {retry_after}",
                403: "Forbidden: bot was blocked by the user",
                401: "Unauthorized",
                409: "Conflict: terminated by other getUpdates request; "
                "make sure that only one bot instance is running",
            }.get(code, "Internal Server Error" if code >= 500 else "Bad Request: injected error")
            if migrate_to_chat_id is not None:
                description = "Bad Request: group chat was upgraded to a supergroup chat"
        error = ApiError(code, description, parameters or None)
        self._failures.append(_Failure(method.lower(), error, chat_id, times))

    def _injected_failure(self, method: str, params: dict[str, Any]) -> None:
        for failure in self._failures:
            if failure.method != method.lower() or failure.times <= 0:
                continue
            if failure.chat_id is not None and str(failure.chat_id) != str(params.get("chat_id")):
                continue
            failure.times -= 1
            raise failure.error
