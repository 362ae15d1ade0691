"""A fake VK API server for driving the real vk_api client over HTTP in tests.

    async with FakeVk() as fake:
        client = VkClient(fake.token, fake.group_id, fake.url)
        fake.push(fake.message_new(1001, "привет"))   # delivered by Bots Long Poll

Behaviour comes from ../shared/PLATFORMS.md (VK part):

* `POST /method/<name>` with form fields; answers `{"response": ...}` or
  `{"error": {"error_code", "error_msg", "request_params"}}`, both with HTTP 200. A wrong
  `access_token` is error 5. Unknown methods are error 3.
* messages.send: `random_id` required; a repeated `(peer_id, random_id)` is answered with the
  first message's id and not delivered again; `message` (at most 9000 characters, else 914)
  or `attachment` required (100); `keyboard` must be JSON (911); a user who denied the
  community's messages gives 901. Errors can be injected per method (`fail_next`).
* Long poll (`groups.getLongPollServer` -> `server`, `key`, `ts`): `fakes/vk_longpoll.py`.
* The wall (comment events, wall.createComment, wall.deleteComment, groups.ban, and error 27
  for a community token on user-only methods; `admin_token` is a user token): `fakes/vk_wall.py`.
* Uploads: photos/docs `get*UploadServer` hand out `/upload/<kind>` URLs; the saved
  attachment ids are remembered with the uploaded bytes. Customers' files are served from
  `/files/<name>` (what a photo's `url` points at).
"""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from typing_extensions import Self

from fakes.vk_longpoll import ERRORS, LongPoll, VkApiFailure
from fakes.vk_wall import Wall

TEXT_LIMIT = 9000
ERRORS.update({
    3: "Unknown method passed", 5: "User authorization failed: invalid access_token",
    6: "Too many requests per second", 9: "Flood control", 10: "Internal server error",
    100: "One of the parameters specified was missing or invalid",
    901: "Can't send messages for users without permission",
    911: "Keyboard format is invalid", 914: "Message is too long",
})


@dataclass
class Sent:
    id: int
    peer_id: int
    text: str
    attachment: str = ""
    keyboard: dict[str, Any] | None = None
    random_id: int = 0
    at: float = field(default_factory=time.perf_counter)  # arrival (benchmarks' latency)


@dataclass
class _Failure:
    method: str
    code: int
    times: int


@dataclass
class Upload:
    kind: str
    name: str
    data: bytes
    attachment: str = ""


@dataclass
class VkState:
    users: dict[int, dict[str, Any]] = field(default_factory=dict)
    denied: set[int] = field(default_factory=set)
    sent: list[Sent] = field(default_factory=list)
    calls: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    answers: list[dict[str, str]] = field(default_factory=list)
    edits: list[dict[str, str]] = field(default_factory=list)
    uploads: list[Upload] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)


class FakeVk(LongPoll, Wall):
    def __init__(self, token: str = "vk-test-token", group_id: int = 77) -> None:
        LongPoll.__init__(self, group_id)
        Wall.__init__(self)  # the community wall: fakes/vk_wall.py
        self.token = token
        self.group_id = group_id
        self.state = VkState()
        self._failures: list[_Failure] = []
        self._by_random: dict[tuple[int, int], int] = {}
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._port = 0

    @property
    def url(self) -> str:
        if not self._port:
            raise RuntimeError("FakeVk is not started")
        return f"http://127.0.0.1:{self._port}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/method/{method}", self._handle)
        app.router.add_get("/lp", self.a_check)
        app.router.add_post("/upload/{kind}", self._upload)
        app.router.add_get("/files/{name}", self._file)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self._port = self._runner.addresses[0][1]

    async def close(self) -> None:
        self.end_long_polls()
        if self._runner is not None:
            await self._runner.cleanup()
        self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # --- set-up -------------------------------------------------------------------------
    def add_user(self, user_id: int, first: str, last: str = "", city: str = "") -> None:
        user: dict[str, Any] = {"id": user_id, "first_name": first, "last_name": last,
                                "screen_name": f"id{user_id}", "can_access_closed": True}
        if city:
            user["city"] = {"id": 1, "title": city}
        self.state.users[user_id] = user

    def deny(self, user_id: int) -> None:
        """The user forbade the community's messages: messages.send answers 901."""
        self.state.denied.add(user_id)

    def fail_next(self, method: str, code: int, times: int = 1) -> None:
        self._failures.append(_Failure(method, code, times))

    def serve_file(self, name: str, data: bytes) -> str:
        self.state.files[name] = data
        return f"{self.url}/files/{name}"

    def sent_to(self, peer: int) -> list[Sent]:
        return [m for m in self.state.sent if m.peer_id == peer]

    def calls_of(self, method: str) -> list[dict[str, str]]:
        return [params for name, params in self.state.calls if name == method]

    # --- HTTP ---------------------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = {k: str(v) for k, v in (await request.post()).items()}
        self.state.calls.append((method, params))
        try:
            if not self.valid_token(params.get("access_token", "")):
                raise VkApiFailure(5)
            self.check_token_type(method, params.get("access_token", ""))
            self._injected(method)
            handler = getattr(self, "m_" + method.replace(".", "_"), None)
            if handler is None:
                raise VkApiFailure(3)
            body: dict[str, Any] = {"response": handler(params)}
        except VkApiFailure as exc:
            request_params = [{"key": k, "value": v} for k, v in params.items()
                              if k != "access_token"]
            body = {"error": {"error_code": exc.code, "error_msg": exc.message,
                              "request_params": request_params}}
        return web.json_response(body)

    def _injected(self, method: str) -> None:
        for failure in self._failures:
            if failure.method == method and failure.times > 0:
                failure.times -= 1
                raise VkApiFailure(failure.code)

    async def _upload(self, request: web.Request) -> web.Response:
        kind = request.match_info["kind"]
        form = await request.post()
        part = form.get("photo" if kind == "photo" else "file")
        if not isinstance(part, web.FileField):
            return web.json_response({"error": "no file"})
        upload = Upload(kind, part.filename, part.file.read())
        self.state.uploads.append(upload)
        token = str(len(self.state.uploads) - 1)
        if kind == "photo":
            return web.json_response({"server": 1, "photo": json.dumps([{"u": token}]),
                                      "hash": "h" + token})
        return web.json_response({"file": "f" + token})

    async def _file(self, request: web.Request) -> web.Response:
        data = self.state.files.get(request.match_info["name"])
        if data is None:
            return web.Response(status=404)
        return web.Response(body=data, content_type="application/octet-stream")

    # --- methods ------------------------------------------------------------------------
    def m_messages_send(self, p: dict[str, str]) -> int:
        if "random_id" not in p or "peer_id" not in p:
            raise VkApiFailure(100, "random_id and peer_id are required")
        peer, random_id = int(p["peer_id"]), int(p["random_id"])
        if not p.get("message") and not p.get("attachment"):
            raise VkApiFailure(100, "message is empty or invalid")
        if len(p.get("message", "")) > TEXT_LIMIT:
            raise VkApiFailure(914)
        keyboard = json.loads(p["keyboard"]) if p.get("keyboard") else None
        if keyboard is not None and not isinstance(keyboard.get("buttons"), list):
            raise VkApiFailure(911)
        if peer in self.state.denied:
            raise VkApiFailure(901)
        if (peer, random_id) in self._by_random:  # a retry: the first send stands
            return self._by_random[(peer, random_id)]
        message_id = next(self._ids)
        self._by_random[(peer, random_id)] = message_id
        self.state.sent.append(Sent(message_id, peer, p.get("message", ""),
                                    p.get("attachment", ""), keyboard, random_id))
        return message_id

    def m_messages_edit(self, p: dict[str, str]) -> int:
        self.state.edits.append(p)
        return 1

    def m_messages_sendMessageEventAnswer(self, p: dict[str, str]) -> int:
        self.state.answers.append(p)
        return 1

    def m_users_get(self, p: dict[str, str]) -> list[dict[str, Any]]:
        ids = [int(i) for i in p.get("user_ids", "").split(",") if i]
        fields = p.get("fields", "").split(",")
        found = []
        for user_id in ids:
            user = dict(self.state.users.get(user_id) or {
                "id": user_id, "first_name": "DELETED", "last_name": "",
                "deactivated": "deleted"})
            if "city" not in fields:
                user.pop("city", None)
            found.append(user)
        return found

    def m_photos_getMessagesUploadServer(self, p: dict[str, str]) -> dict[str, Any]:
        return {"upload_url": f"{self.url}/upload/photo", "album_id": -3,
                "group_id": self.group_id}

    def m_photos_saveMessagesPhoto(self, p: dict[str, str]) -> list[dict[str, Any]]:
        upload = self._uploaded(json.loads(p["photo"])[0]["u"])
        photo_id = next(self._ids)
        upload.attachment = f"photo{-self.group_id}_{photo_id}_k{photo_id}"
        return [{"id": photo_id, "owner_id": -self.group_id, "access_key": f"k{photo_id}"}]

    def m_docs_getMessagesUploadServer(self, p: dict[str, str]) -> dict[str, Any]:
        return {"upload_url": f"{self.url}/upload/doc"}

    def m_docs_save(self, p: dict[str, str]) -> dict[str, Any]:
        upload = self._uploaded(p["file"].removeprefix("f"))
        doc_id = next(self._ids)
        upload.attachment = f"doc{-self.group_id}_{doc_id}"
        return {"type": "doc", "doc": {"id": doc_id, "owner_id": -self.group_id,
                                       "title": p.get("title", upload.name)}}

    def _uploaded(self, token: str) -> Upload:
        try:
            return self.state.uploads[int(token)]
        except (ValueError, IndexError):
            raise VkApiFailure(100, "invalid upload") from None
