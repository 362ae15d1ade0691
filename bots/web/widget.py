"""The chat widget's HTTP side: the script, the session, the socket, images (docs/web.md).

A visitor's message is acknowledged only once it is stored in the inbound stream (the same
ingest as Telegram's and VK's, deduplicated by the widget's own message id), and added to their
chat stream with that id as its once-key, so a message the widget sends again after a
reconnect is neither lost nor doubled. What the visitor sees comes from the chat stream only:
the socket replays it after the `seq` the widget showed last, then follows it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from dataclasses import dataclass, replace
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web
from redis.asyncio import Redis

from bots.web.chat import ChatEntry, WebChat, frame
from bots.web.files import FileError, WebFiles
from bots.web.identity import IdentityError, Visitors
from bots.web.wakeups import POLL_SECONDS
from handoff.events import InboundEvent, InboundKind, MediaFile, Profile
from handoff.ingest import Ingestor
from handoff.keys import Keys

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
TEXT_MAX = 4000
FRAME_MAX = 64 * 1024
HELLO_SECONDS = 10.0  # a socket that does not say hello in time is closed
BAD_TOKEN = 4401  # close code: the widget gets a new session
_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_SEQ = re.compile(r"^(0|\d{1,20}-\d{1,20})$")
_FILE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
COOKIE = "sb_visitor"
YEAR = 365 * 86400


@dataclass(frozen=True, slots=True)
class WidgetConfig:
    origins: frozenset[str] = frozenset()  # empty: any site may embed the widget
    per_minute: int = 20  # a visitor's messages a minute
    max_sockets: int = 5000  # open widgets this process serves at once
    public_url: str = ""  # how the desk reaches /widget/files (empty: the request's origin)


class FrameError(ValueError):
    """A frame the widget should not have sent; the message is what the widget is told."""


class WidgetServer:
    def __init__(self, ingestor: Ingestor, visitors: Visitors, chat: WebChat, files: WebFiles,
                 redis: Redis, keys: Keys, config: WidgetConfig = WidgetConfig()) -> None:
        self._ingestor = ingestor
        self._visitors = visitors
        self._chat = chat
        self._files = files
        self._redis = redis
        self._keys = keys
        self.config = config
        self.sockets: set[web.WebSocketResponse] = set()

    def routes(self) -> list[web.AbstractRouteDef]:
        return [
            web.get("/widget.js", self._script),
            web.get("/shop", self._shop),
            web.static("/static", STATIC),
            web.post("/widget/session", self.session),
            web.options("/widget/session", self._preflight),
            web.get("/widget/ws", self.socket),
            web.post("/widget/upload", self.upload),
            web.options("/widget/upload", self._preflight),
            web.get("/widget/files/{file}", self.file),
        ]

    # --- pages and the script ------------------------------------------------------------
    async def _script(self, _request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC / "widget.js", headers={
            "Content-Type": "text/javascript; charset=utf-8", "Cache-Control": "max-age=300"})

    async def _shop(self, _request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC / "shop.html", headers={
            "Content-Type": "text/html; charset=utf-8"})

    # --- the session -----------------------------------------------------------------------
    async def session(self, request: web.Request) -> web.Response:
        origin = self._origin(request)
        try:
            body = json.loads(await request.text() or "{}") if request.body_exists else {}
        except ValueError:
            return self._cors(web.json_response({"error": "the body is not JSON"}, status=400),
                              origin)
        identity = body.get("identity") if isinstance(body, dict) else None
        anonymous = False
        if isinstance(identity, dict):
            try:
                visitor = self._visitors.identified(str(identity.get("user", "")),
                                                    str(identity.get("sig", "")))
            except IdentityError as exc:
                return self._cors(web.json_response({"error": str(exc)}, status=403), origin)
            name = str(identity.get("name") or "")[:64]
            if name:
                await self._redis.set(self._keys.web_profile(visitor), name, ex=YEAR)
        else:
            visitor = await self._visitors.verify(request.cookies.get(COOKIE, "")) or \
                await self._visitors.anonymous()
            anonymous = True
        token = await self._visitors.token(visitor)
        response = web.json_response({"visitor": visitor, "token": token, "ws": "/widget/ws"})
        if anonymous:
            response.set_cookie(COOKIE, token, max_age=YEAR, httponly=True, samesite="Lax",
                                secure=request.secure, path="/")
        return self._cors(response, origin)

    async def _preflight(self, request: web.Request) -> web.Response:
        origin = self._origin(request)
        return self._cors(web.Response(status=204, headers={
            "Access-Control-Allow-Methods": "POST", "Access-Control-Max-Age": "600",
            "Access-Control-Allow-Headers": "Content-Type"}), origin)

    def _origin(self, request: web.Request) -> str:
        """The calling site when it may embed the widget (403 otherwise); "" when the request
        is not cross-origin."""
        origin = request.headers.get("Origin", "")
        own = f"{request.scheme}://{request.host}"
        if not origin or origin == own:
            return ""
        if self.config.origins and origin not in self.config.origins:
            log.info("widget request from %s refused: not in WEB_ORIGINS", origin)
            # Readable by that page (CORS), so its widget says so instead of retrying.
            raise web.HTTPForbidden(text="this site may not embed the chat (WEB_ORIGINS)",
                                    headers={"Access-Control-Allow-Origin": origin})
        return origin

    @staticmethod
    def _cors(response: web.Response, origin: str) -> web.Response:
        if origin:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Allow-Credentials"] = "true"
            response.headers["Vary"] = "Origin"
        return response

    # --- the socket ------------------------------------------------------------------------
    async def socket(self, request: web.Request) -> web.WebSocketResponse:
        self._origin(request)
        if len(self.sockets) >= self.config.max_sockets:
            raise web.HTTPServiceUnavailable(text="too many open chats", headers={
                "Retry-After": "5"})
        visitor = await self._visitors.verify(request.query.get("token", ""))
        ws = web.WebSocketResponse(heartbeat=25.0, max_msg_size=FRAME_MAX)
        await ws.prepare(request)
        self.sockets.add(ws)
        try:
            return await self._converse(ws, request, visitor)
        finally:
            self.sockets.discard(ws)

    async def close_sockets(self) -> None:
        """The bot stops: every open widget is told to come back (1012, service restart),
        which it does with its `seq`, losing nothing."""
        for ws in list(self.sockets):
            await ws.close(code=WSCloseCode.SERVICE_RESTART, message=b"restarting")

    async def _converse(self, ws: web.WebSocketResponse, request: web.Request,
                        visitor: str | None) -> web.WebSocketResponse:
        if visitor is None:
            await ws.close(code=BAD_TOKEN, message=b"bad token: start a new session")
            return ws
        conv = f"web:{visitor}"
        try:
            after = await self._hello(ws)
        except FrameError as exc:
            await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=str(exc).encode()[:120])
            return ws
        follower = asyncio.create_task(self._follow(ws, conv, after))
        profile = await self._profile(visitor, request)
        try:
            async for message in ws:
                data = _json(message.data) if message.type == WSMsgType.TEXT else None
                if data is None:  # not the protocol at all: nothing to answer
                    await ws.close(code=WSCloseCode.UNSUPPORTED_DATA,
                                   message=b"send JSON frames (docs/web.md)")
                    break
                await self._received(ws, conv, profile, request, data)
        finally:
            follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await follower
        return ws

    async def _hello(self, ws: web.WebSocketResponse) -> str:
        try:
            message = await asyncio.wait_for(ws.receive(), HELLO_SECONDS)
        except asyncio.TimeoutError:
            raise FrameError("say hello first") from None
        data = _json(message.data) if message.type == WSMsgType.TEXT else None
        if not data or data.get("type") != "hello":
            raise FrameError("the first frame must be hello")
        after = str(data.get("after") or "0")
        if not _SEQ.match(after):
            raise FrameError("hello.after must be a seq the server sent, or 0")
        return after

    async def _follow(self, ws: web.WebSocketResponse, conv: str, after: str) -> None:
        """What the widget has not shown yet, then everything new, in order: woken when the
        conversation's stream grows (bots/web/wakeups.py), and looking anyway now and then."""
        seq = after
        wake = self._chat.wakeups.register(conv)
        try:
            while not ws.closed:
                wake.clear()  # before reading: a notice during the read wakes the next wait
                for entry, raw in await self._chat.after(conv, seq):
                    await ws.send_json(frame(entry, raw))
                    seq = entry
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(wake.wait(), POLL_SECONDS)
        except ConnectionError:
            return  # the page went away mid-send; it resumes from its own seq next time
        finally:
            self._chat.wakeups.unregister(conv, wake)

    async def _received(self, ws: web.WebSocketResponse, conv: str, profile: Profile,
                        request: web.Request, data: dict[str, Any]) -> None:
        client_id = str(data.get("id", ""))
        try:
            if not _ID.match(client_id):
                raise FrameError("a frame is a JSON object with an id of 1-64 letters or digits")
            event, echo = await self._event(conv, profile, request, data, client_id)
            once = self._keys.web_sent(f"in:{event.event_id}")
            # A resend of a message stored already is acknowledged, never refused by the limit.
            if not await self._redis.exists(once) and \
                    not await self._within_limit(profile.user_id):
                raise FrameError(f"too many messages: at most {self.config.per_minute} a minute")
        except FrameError as exc:
            await ws.send_json({"type": "error", "id": client_id, "error": str(exc)})
            return
        if echo is not None:
            # Shown before it reaches the bot, so the answer always comes after the question
            # in the visitor's chat. Should the ingest fail, there is no ack: the widget sends
            # again under the same id, and both steps are done once.
            await self._chat.append(conv, echo, f"in:{event.event_id}")
        await self._ingestor.ingest([event])  # raises on a Redis failure: then no ack
        await ws.send_json({"type": "ack", "id": client_id})

    async def _event(self, conv: str, profile: Profile, request: web.Request,
                     data: dict[str, Any], client_id: str
                     ) -> tuple[InboundEvent, ChatEntry | None]:
        kind = data.get("type")
        now = time.time()
        event = InboundEvent(event_id=f"{conv}:{client_id}", conversation=conv, kind="text",
                             profile=profile, received_at=now)
        if kind == "message":
            text = _text(data.get("text"))
            event_kind: InboundKind = "command" if text.startswith("/") else "text"
            return (replace(event, kind=event_kind, text=text),
                    ChatEntry("visitor", text, client_id=client_id, at=now))
        if kind == "button":
            payload = data.get("data")
            if not isinstance(payload, str) or not 0 < len(payload) <= 512:
                raise FrameError("button.data must be the data of a button the server sent")
            return replace(event, kind="button", payload=payload, callback_id="web"), None
        if kind == "image":
            file_id = str(data.get("file", ""))
            if not _FILE.match(file_id) or await self._files.load(file_id) is None:
                raise FrameError("image.file must be the id of an uploaded image")
            caption = _text(data.get("text") or " ").strip()
            path = f"/widget/files/{file_id}"
            url = (self.config.public_url or f"{request.scheme}://{request.host}") + path
            return (replace(event, kind="media", media="photo", text=caption,
                            files=(MediaFile("photo", url=url, name="photo.jpg"),)),
                    ChatEntry("visitor", caption, image=path, client_id=client_id, at=now))
        raise FrameError("type must be message, button or image")

    async def _within_limit(self, visitor: str) -> bool:
        key = self._keys.web_rate(visitor, int(time.time() // 60))
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, 120)
            count, _ = await pipe.execute()
        return int(count) <= self.config.per_minute

    async def _profile(self, visitor: str, request: web.Request) -> Profile:
        name = await self._redis.get(self._keys.web_profile(visitor))
        language = request.headers.get("Accept-Language", "")[:2].lower()
        # An anonymous visitor has no name: "Гость 9f3a" tells two of them apart in the desk.
        shown = str(name) if name else f"Гость {visitor[-4:]}"
        return Profile(user_id=visitor, first_name=shown,
                       language_code=language if language.isalpha() else "")

    # --- images ----------------------------------------------------------------------------
    async def upload(self, request: web.Request) -> web.Response:
        origin = self._origin(request)
        if await self._visitors.verify(request.query.get("token", "")) is None:
            return self._cors(web.json_response({"error": "bad token"}, status=401), origin)
        data = await _uploaded(request)
        if data is None:
            return self._cors(web.json_response(
                {"error": "send a multipart form with a file field"}, status=400), origin)
        try:
            file_id = await self._files.store(data)
        except FileError as exc:
            return self._cors(web.json_response({"error": str(exc)}, status=400), origin)
        return self._cors(web.json_response(
            {"file": file_id, "url": f"/widget/files/{file_id}"}), origin)

    async def file(self, request: web.Request) -> web.Response:
        file_id = request.match_info["file"]
        found = await self._files.load(file_id) if _FILE.match(file_id) else None
        if found is None:
            raise web.HTTPNotFound(text="no such image")
        kind, data = found
        return web.Response(body=data, headers={
            "Content-Type": kind, "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, max-age=86400",
            "Content-Security-Policy": "default-src 'none'"})


async def _uploaded(request: web.Request) -> bytes | None:
    """The `file` part of a multipart body. The HTTP guard has read the body already (bounded
    in size and time), so it is parsed from those bytes rather than streamed again."""
    if request.content_type != "multipart/form-data":
        return None
    head = f"Content-Type: {request.headers['Content-Type']}\r\n\r\n".encode()
    message = BytesParser(policy=policy.HTTP).parsebytes(head + await request.read())
    for part in message.iter_parts():
        if part.get_param("name", header="content-disposition") == "file":
            payload = part.get_payload(decode=True)
            return payload if isinstance(payload, bytes) else None
    return None


def _json(raw: str) -> dict[str, Any] | None:
    try:
        data = json.loads(raw)
    except (TypeError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise FrameError("text must be a non-empty string")
    if len(value) > TEXT_MAX:
        raise FrameError(f"text is longer than {TEXT_MAX} characters")
    return value.strip()
