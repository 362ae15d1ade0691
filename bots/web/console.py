"""The operators' console (`/console`) and the supervisors' pages (`/console/supervisor`).

The console is a face on the HTTP API, not a second implementation of it: the same app as
/api/v1 (handoff/api.py) is mounted at `/console/api` with the session as its auth strategy
(bots/web/console_auth.py), so every take, reply or close is the same Lua transition, raced
fairly against the Telegram desk and echoed to it. What lives here is the rest: the login form,
one-time links, the pages and their assets, and a WebSocket (`/console/ws`) that says which
conversation changed (bots/web/console_live.py) so a page refetches only that.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import html
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from aiohttp import WSMsgType, web
from aiohttp.typedefs import Handler
from redis.exceptions import RedisError

from bots.desk.notices import CustomerNotices, DeskEcho
from bots.settings import Settings
from bots.trainer.stats import TrainerStats
from bots.web.console_auth import (
    COOKIE,
    CSRF_HEADER,
    IDLE_SECONDS,
    SESSION,
    Accounts,
    LoginLimiter,
    Session,
    Sessions,
    redeem_link,
    session_auth,
)
from bots.web.console_live import LiveFeed
from handoff.api import create_api_app
from handoff.api_models import ID_RE
from handoff.audit import DeadLetters
from handoff.conversations import desk_priority
from handoff.events import OutboundMessage

if TYPE_CHECKING:
    from bots.runtime import Runtime

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
ASSETS = {
    "console.js": "text/javascript", "console.css": "text/css",
    "supervisor.js": "text/javascript",
    "vendor/uPlot.iife.min.js": "text/javascript", "vendor/uPlot.min.css": "text/css",
}
SOCKETS_PER_SESSION = 4
SOCKET_CHECK_SECONDS = 60.0  # an open socket re-checks its session this often
# Link previewers fetch a URL posted in a chat before anyone taps it: they must not use up
# a one-time link (Telegram's is "TelegramBot (like TwitterBot)").
PREVIEWERS = ("telegrambot", "twitterbot", "facebookexternalhit", "slackbot", "whatsapp",
              "discordbot", "vkshare", "skypeuripreview", "linkedinbot")
CSP = ("default-src 'self'; img-src 'self' data: https:; style-src 'self'; script-src 'self'; "
       "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")


def console_app(runtime: Runtime) -> web.Application:
    """The console as an aiohttp application, mounted at /console by `Runtime.http_app`."""
    return Console(runtime).app()


def public_base(settings: Settings) -> str:
    """Where people reach the bot's HTTP server, for links: WEB_PUBLIC_URL, else the webhook's
    base URL, else HTTP_HOST:HTTP_PORT (loopback when it listens on every interface)."""
    for url in (getattr(settings, "web_public_url", ""), settings.telegram_webhook_url):
        if url:
            return str(url).rstrip("/")
    host = settings.http_host if settings.http_host not in ("0.0.0.0", "::", "") \
        else "127.0.0.1"
    return f"http://{host}:{settings.http_port}"


class ConsoleDeskEcho(DeskEcho):
    """The Telegram desk's echo of console actions: replies and notes under the operator's name
    (the session's), marked as made in the console."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}

    def replied(self, conv: str, operator: str, text: str) -> Sequence[OutboundMessage]:
        return [self._line(conv, f"💬 {self.names.get(operator, operator)} (консоль): {text}")]

    def noted(self, conv: str, operator: str, text: str) -> Sequence[OutboundMessage]:
        return [self._line(conv, f"📝 {self.names.get(operator, operator)} (заметка): {text}")]

    @staticmethod
    def _line(conv: str, text: str) -> OutboundMessage:
        return OutboundMessage(conversation=conv, lane="desk", text=text[:4000],
                               priority=desk_priority("normal", 2))


class Console:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        self.redis, self.keys = runtime.redis, runtime.keys
        self.sessions = Sessions(runtime.redis, runtime.keys, runtime.handoff.clock,
                                 runtime.access)
        self.accounts = Accounts(runtime.redis, runtime.keys)
        self.limiter = LoginLimiter(runtime.redis, runtime.keys)
        self.live = LiveFeed(runtime.redis, runtime.keys, runtime.settings.ingest_shards)
        self.echo = ConsoleDeskEcho()
        self._sockets: dict[str, int] = {}  # session digest -> sockets open in this process
        self._open: set[web.WebSocketResponse] = set()

    def app(self) -> web.Application:
        app = web.Application(middlewares=[_headers])
        app.add_routes([
            web.get("", self.page), web.get("/", self.page),
            web.get("/supervisor", self.supervisor_page),
            web.post("/login", self.login),
            web.get("/link/{token}", self.link),
            web.post("/logout", self.logout),
            web.get("/ws", self.socket),
            web.get("/static/{name:.+}", self.asset),
        ])
        app.add_subapp("/api", self.api())
        app.on_startup.append(self._announce)
        app.on_shutdown.append(self._close_sockets)
        app.on_cleanup.append(self._cleanup)
        return app

    def api(self) -> web.Application:
        runtime = self.runtime
        api = create_api_app(
            runtime.handoff, runtime.store, auth=session_auth(self.session),
            notices=CustomerNotices(self.settings.language),
            stats=TrainerStats(self.redis, self.keys),
            desk=self.echo if self.settings.operator_chat_id is not None else None,
            dead_letters=DeadLetters(self.redis, self.keys, runtime.scripts,
                                     self.settings.ingest_shards, self.settings.stream_maxlen,
                                     runtime.handoff.config.journal_maxlen),
            access=runtime.access, templates=runtime.templates)
        api.router.add_get("/session", self.session_info, name="console_session")
        return api

    async def _announce(self, _app: web.Application) -> None:
        """Say where the console is reached, for the desk's /console links (a worker process
        builds them and may serve no HTTP itself)."""
        try:
            await self.redis.set(self.keys.console_url(), public_base(self.settings))
        except (RedisError, OSError) as exc:  # the server starts while Redis is away too
            log.warning("console: its address is not announced: %s", exc)

    async def _close_sockets(self, _app: web.Application) -> None:
        """The server stops: pages reconnect to another process (or to this one, restarted)."""
        for ws in list(self._open):
            await ws.close(code=1001, message=b"server shutdown")

    async def _cleanup(self, _app: web.Application) -> None:
        await self.live.close()

    # --- who is signed in ----------------------------------------------------------------
    async def session(self, request: web.Request) -> Session | None:
        """The request's live session (looked up once per request)."""
        if SESSION not in request:
            found = await self.sessions.find(request.cookies.get(COOKIE, ""))
            if found is not None:
                self.echo.names[found.operator] = found.name
            request[SESSION] = found
        return request[SESSION]

    async def session_info(self, request: web.Request) -> web.Response:
        session = await self.session(request)
        assert session is not None  # the API's auth let the request through
        return web.json_response({"operator": session.operator, "name": session.name,
                                  "roles": sorted(session.roles), "csrf": session.csrf})

    async def _signed_in(self, request: web.Request, op: str, name: str) -> web.Response:
        """Start a session and go to the console; the operator is registered (online) when
        the service has never heard of them, as a desk member's first action does."""
        if await self.runtime.handoff.operator(op) is None:
            await self.runtime.handoff.set_status(op, "online", name=name)
        token = await self.sessions.start(op, name)
        response = web.Response(status=303, headers={"Location": _next(request)})
        response.set_cookie(COOKIE, token, path="/console", httponly=True, samesite="Strict",
                            secure=self._https(request), max_age=IDLE_SECONDS * 3)
        log.info("console: %s signed in", op)
        return response

    def _https(self, request: web.Request) -> bool:
        if request.secure:
            return True
        return (request.remote in self.settings.trusted_proxy_addresses
                and request.headers.get("X-Forwarded-Proto", "").lower() == "https")

    # --- pages ---------------------------------------------------------------------------
    async def page(self, request: web.Request) -> web.StreamResponse:
        if await self.session(request) is None:
            return login_page(request.path)
        return _file("console.html")

    async def supervisor_page(self, request: web.Request) -> web.StreamResponse:
        session = await self.session(request)
        if session is None:
            return login_page("/console/supervisor")
        if not session.supervisor:
            return message_page(403, "Нет доступа", "Эта страница — для руководителей. "
                                "Роль выдаёт руководитель: /grant в столе.")
        return _file("supervisor.html")

    async def asset(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name not in ASSETS:
            raise web.HTTPNotFound()
        response = web.FileResponse(STATIC / name, headers={
            "Content-Type": ASSETS[name], "Cache-Control": "no-cache"})
        return response

    # --- signing in and out --------------------------------------------------------------
    async def login(self, request: web.Request) -> web.StreamResponse:
        if not _same_origin(request, allow_missing=True):
            return message_page(403, "Нет доступа", "Форма входа отправлена с другого сайта.")
        form = await request.post()
        op, password = str(form.get("operator", "")).strip(), str(form.get("password", ""))
        address = self.runtime.guard.address(request)
        if await self.limiter.blocked(op, address):
            return login_page(str(form.get("next", "")), status=429, error=(
                "Слишком много неудачных попыток. Попробуйте через 15 минут."))
        account = await self.accounts.verify(op, password) if ID_RE.fullmatch(op) else None
        if account is None:
            await self.limiter.failed(op, address)
            log.info("console: failed login for %r from %s", op[:80], address)
            return login_page(str(form.get("next", "")), status=401,
                              error="Неверный логин или пароль.")
        await self.limiter.succeeded(op)
        if not await self.runtime.access.may_act(op):
            return message_page(403, "Нет доступа", "У вас нет доступа к столу операторов.")
        return await self._signed_in(request, op, account.name)

    async def link(self, request: web.Request) -> web.StreamResponse:
        agent = request.headers.get("User-Agent", "").lower()
        if any(bot in agent for bot in PREVIEWERS):  # not a person: leave the link unused
            return message_page(200, "Вход в консоль", "Откройте ссылку в браузере.")
        found = await redeem_link(self.redis, self.keys, request.match_info["token"])
        if found is None:
            return message_page(410, "Ссылка недействительна", (
                "Ссылка уже использована или устарела. Получите новую: /console в столе "
                "операторов."))
        op, name = found
        if not await self.runtime.access.may_act(op):
            return message_page(403, "Нет доступа", "У вас нет доступа к столу операторов.")
        return await self._signed_in(request, op, name)

    async def logout(self, request: web.Request) -> web.Response:
        session = await self.session(request)
        if session is None:
            return web.json_response({"error": "unauthorized"}, status=401)
        if not hmac.compare_digest(request.headers.get(CSRF_HEADER, "").encode(),
                                   session.csrf.encode()):
            return web.json_response({"error": "forbidden: missing or wrong CSRF token"},
                                     status=403)
        await self.sessions.end(session)
        response = web.json_response({"ok": True})
        response.del_cookie(COOKIE, path="/console")
        return response

    # --- live updates --------------------------------------------------------------------
    async def socket(self, request: web.Request) -> web.StreamResponse:
        session = await self.session(request)
        if session is None:
            return web.json_response({"error": "unauthorized"}, status=401)
        if not _same_origin(request, allow_missing=False):
            return web.json_response({"error": "forbidden: wrong Origin"}, status=403)
        if self._sockets.get(session.digest, 0) >= SOCKETS_PER_SESSION:
            return web.json_response({"error": "too many open pages"}, status=429)
        ws = web.WebSocketResponse(heartbeat=30.0, max_msg_size=4096)
        await ws.prepare(request)
        self._sockets[session.digest] = self._sockets.get(session.digest, 0) + 1
        try:  # (the HTTP guard does not count an open socket as a request in flight)
            await self._feed(ws, request.cookies.get(COOKIE, ""))
        finally:
            left = self._sockets.get(session.digest, 1) - 1
            if left > 0:
                self._sockets[session.digest] = left
            else:
                self._sockets.pop(session.digest, None)
        return ws

    async def _feed(self, ws: web.WebSocketResponse, cookie: str) -> None:
        """Changes to the page until it goes away, the server stops, or the session ends
        (re-checked every minute without counting as activity)."""
        queue = self.live.subscribe()
        reader = asyncio.create_task(_drain(ws))
        self._open.add(ws)
        try:
            await ws.send_json({"type": "hello"})
            while not reader.done():
                getter = asyncio.ensure_future(queue.get())
                done, _ = await asyncio.wait({getter, reader}, timeout=SOCKET_CHECK_SECONDS,
                                             return_when=asyncio.FIRST_COMPLETED)
                if getter in done:
                    await ws.send_json(getter.result())
                    continue
                getter.cancel()
                if not done and await self.sessions.find(cookie, touch=False) is None:
                    await ws.close(code=4401, message=b"signed out")
        except (ConnectionResetError, RuntimeError):
            pass  # the page went away mid-send
        finally:
            self._open.discard(ws)
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
            await self.live.unsubscribe(queue)


async def _drain(ws: web.WebSocketResponse) -> None:
    """Read until the page closes the socket (it sends nothing the server needs)."""
    async for message in ws:
        if message.type in (WSMsgType.ERROR, WSMsgType.CLOSE):
            break


@web.middleware
async def _headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return message_page(exc.status, "Ошибка", exc.reason)
    if isinstance(response, web.WebSocketResponse) or response.prepared:
        return response
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def _same_origin(request: web.Request, *, allow_missing: bool) -> bool:
    """The request's Origin is this server (a form or socket from another site is refused)."""
    origin = request.headers.get("Origin")
    if origin is None or origin == "null":
        return allow_missing and origin is None
    return urlsplit(origin).netloc == request.host


def _next(request: web.Request) -> str:
    """Where to go after signing in: the page the form was shown on, if it is a console one."""
    wanted = request.query.get("next", "")
    return wanted if wanted in ("/console", "/console/supervisor") else "/console"


def _file(name: str) -> web.FileResponse:
    return web.FileResponse(STATIC / name, headers={"Content-Type": "text/html; charset=utf-8",
                                                    "Cache-Control": "no-store"})


def message_page(status: int, title: str, text: str) -> web.Response:
    return _html(status, title, f"<h1>{html.escape(title)}</h1><p>{html.escape(text)}</p>"
                 '<p><a href="/console">Консоль</a></p>')


def login_page(next_path: str = "/console", *, status: int = 200, error: str = ""
               ) -> web.Response:
    target = next_path if next_path in ("/console", "/console/supervisor") else "/console"
    alert = f'<p class="error" role="alert">{html.escape(error)}</p>' if error else ""
    body = f"""<h1>Консоль операторов</h1>{alert}
<form method="post" action="/console/login?next={html.escape(target)}" class="login">
<label>Логин <input name="operator" autocomplete="username" required
 placeholder="web:anna или tg:123456" autocapitalize="none" spellcheck="false"></label>
<label>Пароль <input name="password" type="password" autocomplete="current-password"
 required></label>
<button type="submit" class="primary">Войти</button>
</form>
<p class="hint">Оператор стола в Telegram может войти без пароля: команда /console в столе
пришлёт ссылку для входа в личные сообщения с ботом.</p>"""
    return _html(status, "Вход — консоль операторов", body)


def _html(status: int, title: str, body: str) -> web.Response:
    page = f"""<!doctype html>
<html lang="ru"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>{html.escape(title)}</title>
<link rel="stylesheet" href="/console/static/console.css">
</head><body class="plain"><main class="plain-box">{body}</main></body></html>"""
    return web.Response(status=status, text=page, content_type="text/html", charset="utf-8")

