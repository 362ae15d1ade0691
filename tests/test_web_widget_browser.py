"""The chat widget in a real browser (headless Chromium) against the real bot with the web
channel: the demo shop page, a question the demo bot answers, hostile text, lost connections
and lost acknowledgements, a reload, images, a stale token, another site embedding the widget,
and the layout at phone and desktop widths (screenshots in test-artifacts/screenshots/).

docs/web.md is the contract; the widget is bots/web/static/widget.js.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import re
import struct
import zlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp.web import Application, AppRunner, Request, Response, TCPSite
from playwright.async_api import Locator, Page, WebSocket, WebSocketRoute, expect

from bots.desk.notices import CustomerNotices
from bots.settings import Settings
from bots.turns import Brain
from handoff.embedded_redis import free_port
from tests.browser_harness import Pages, no_horizontal_overflow, screenshot
from tests.telegram_harness import wait_until
from tests.web_harness import WebUnderTest, Widget, running_web

ASK_NUMBER = re.compile("Подскажите номер заказа")
ORDER_PACKED = re.compile(r"Заказ №1234567 собран")
NOT_UNDERSTOOD = re.compile("не понял", re.IGNORECASE)
SECRET = "s" * 32  # WEB_IDENTITY_SECRET of the test that signs a customer
XSS = '<img src=x onerror="window.__pwned=1">'
expect.set_options(timeout=10_000)  # the bot's answers, not only the page's own changes


@pytest.fixture
async def web(settings: Settings, brain: Brain, request: pytest.FixtureRequest
              ) -> AsyncIterator[WebUnderTest]:
    """The bot with the web channel; settings overridden by an indirect parameter."""
    async with running_web(settings, brain, **getattr(request, "param", {})) as running:
        yield running


@pytest.fixture
def browser(web: WebUnderTest, pages: Pages) -> Pages:
    """Pages set up after the bot, so closed before it stops (teardown runs in reverse)."""
    return pages


class Chat:
    """The widget on a page, as a visitor uses it, and the frames its sockets carried (under
    page.route_web_socket: the frames the route passed on to the server)."""

    def __init__(self, page: Page, lang: str = "ru") -> None:
        self.page = page
        self.root = page.locator("supportbot-chat")
        ru = lang == "ru"
        self.launcher = page.get_by_role(
            "button", name="Открыть чат поддержки" if ru else "Open the support chat")
        self.input = page.get_by_role("textbox", name="Сообщение" if ru else "Message")
        self.panel = self.root.locator(".panel")
        self.status = self.root.locator(".status")
        self.sent: list[dict[str, Any]] = []
        self.received: list[dict[str, Any]] = []
        page.on("websocket", self._watch)

    def _watch(self, ws: WebSocket) -> None:
        if "/widget/ws" not in ws.url:
            return
        ws.on("framesent", lambda payload: self.sent.append(json.loads(payload)))
        ws.on("framereceived", lambda payload: self.received.append(json.loads(payload)))

    async def open(self) -> None:
        await self.launcher.click()
        await expect(self.panel).to_be_visible()
        await expect(self.input).to_be_focused()

    async def say(self, text: str) -> None:
        await self.input.fill(text)
        await self.input.press("Enter")

    def bubbles(self, who: str = "") -> Locator:
        return self.root.locator(f".msg.{who} .bubble" if who else ".msg .bubble")

    def bot(self) -> Locator:
        return self.bubbles("bot")

    async def texts(self) -> list[str]:
        return [text.strip() for text in await self.bubbles().all_inner_texts()]

    def frames(self, kind: str, sent: bool = True) -> list[dict[str, Any]]:
        return [f for f in (self.sent if sent else self.received) if f.get("type") == kind]

    async def stored(self, name: str) -> Any:
        """What the widget keeps in localStorage under `name` (session, visitor, seq...)."""
        raw = await self.page.evaluate(
            "name => Object.entries(localStorage).find(([k]) => k.endsWith(':' + name))?.[1]",
            name)
        return json.loads(raw) if raw is not None else None

    async def token(self) -> str:
        return str((await self.stored("session"))["token"])


async def conversation_on_server(base: str, token: str) -> list[dict[str, Any]]:
    """Everything the server holds for this visitor: a second widget that showed nothing yet."""
    async with aiohttp.ClientSession() as http:
        widget = Widget(base, http, token=token)
        await widget.connect()
        try:
            await asyncio.sleep(0.5)
            return list(widget.shown)
        finally:
            await widget.drop()


@contextlib.asynccontextmanager
async def brand_site(html: str) -> AsyncIterator[str]:
    """The brand's own site: another origin (another port), on loopback like the bot, since
    Chromium keeps pages of public addresses off local ones."""
    async def page(_request: Request) -> Response:
        return Response(text=html, content_type="text/html")

    app = Application()
    app.router.add_get("/", page)
    runner = AppRunner(app)
    await runner.setup()
    port = free_port()
    site = TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield f"http://localhost:{port}/"
    finally:
        await runner.cleanup()


def png(width: int = 24, height: int = 16) -> bytes:
    """A small orange PNG, made here (no files in the repository for it)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    rows = b"".join(b"\x00" + b"\xff\x8c\x00" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
            + chunk(b"IEND", b""))


async def test_a_shop_visitor_asks_where_their_order_is(
        web: WebUnderTest, browser: Pages) -> None:
    page = await browser.open("desktop")
    chat = Chat(page)
    await page.goto(web.url + "/shop")
    await expect(page.get_by_role("heading", name="Всё для уютного дома")).to_be_visible()
    await expect(chat.panel).to_be_hidden()
    await chat.open()

    await chat.say("где мой заказ")
    await expect(chat.bubbles("visitor")).to_have_text(["где мой заказ"])
    await expect(chat.bot()).to_have_text([ASK_NUMBER])
    await expect(chat.root.locator(".msg.pending")).to_have_count(0)
    await expect(chat.input).to_have_value("")

    await chat.say("1234567")
    await expect(chat.bot().nth(1)).to_contain_text(ORDER_PACKED)
    button = chat.root.get_by_role("button", name="Изменить адрес")
    await expect(button).to_be_visible()
    answer = next(f for f in chat.frames("message", sent=False)
                  if ORDER_PACKED.search(f["text"]))
    data = next(b["data"] for row in answer["buttons"] for b in row
                if b["text"] == "Изменить адрес")

    await button.click()
    await expect(chat.bot()).to_have_count(3)
    await expect(chat.bot().nth(2)).to_contain_text("адрес")
    pressed = chat.frames("button")
    assert [f["data"] for f in pressed] == [data]
    assert pressed[0]["id"] in [f["id"] for f in chat.frames("ack", sent=False)]
    # every frame the widget sent is one of the table's, hello first
    assert chat.sent[0] == {"type": "hello", "after": "0"}
    assert {f["type"] for f in chat.sent} <= {"hello", "message", "button", "image"}


async def test_html_in_a_message_is_shown_as_text_and_never_runs(
        web: WebUnderTest, browser: Pages) -> None:
    page = await browser.open("desktop")
    chat = Chat(page)
    await page.goto(web.url + "/shop")
    await chat.open()
    await chat.say(XSS)
    await expect(chat.bubbles("visitor")).to_have_text([XSS])
    await expect(chat.bot()).to_have_count(1)  # the bot's "not understood": a round trip
    await expect(chat.root.locator(".msg.pending")).to_have_count(0)
    assert await chat.root.locator(".log img").count() == 0
    assert await page.evaluate("typeof window.__pwned") == "undefined"
    assert await page.evaluate("document.querySelectorAll('img[src=x]').length") == 0


async def test_offline_and_back_loses_nothing_and_doubles_nothing(
        web: WebUnderTest, browser: Pages) -> None:
    page = await browser.open("desktop")
    chat = Chat(page)
    await page.goto(web.url + "/shop")
    await chat.open()
    await chat.say("где мой заказ")
    await expect(chat.bot()).to_have_text([ASK_NUMBER])
    await expect(chat.status).to_be_hidden()

    await page.context.set_offline(True)
    await expect(chat.status).to_have_text("Соединение…")
    await chat.say("1234567")
    mine = chat.root.locator(".msg.visitor", has_text="1234567")
    await expect(mine).to_have_class(re.compile(r"\bpending\b"))
    await page.wait_for_timeout(1500)  # a back-off retry or two, all failing offline
    await page.context.set_offline(False)

    await expect(chat.bot().nth(1)).to_contain_text(ORDER_PACKED)
    await expect(chat.status).to_be_hidden()
    await page.wait_for_timeout(1000)  # time for a duplicate to show, if there were one
    await expect(chat.root.locator(".msg.pending")).to_have_count(0)
    await expect(mine).to_have_count(1)
    await expect(chat.bot()).to_have_count(2)
    number = [f for f in chat.frames("message") if f["text"] == "1234567"]
    assert len({f["id"] for f in number}) == 1
    acks = [f for f in chat.frames("ack", sent=False) if f["id"] == number[0]["id"]]
    assert len(acks) == 1
    answers = [f for f in chat.frames("message", sent=False)
               if ORDER_PACKED.search(f["text"])]
    assert len(answers) == 1
    assert [f["after"] for f in chat.frames("hello")][-1] != "0"

    # and the server holds each message once
    held = await conversation_on_server(web.url, await chat.token())
    assert [m["text"] for m in held if m["from"] == "visitor"] == ["где мой заказ", "1234567"]
    assert len([m for m in held if ORDER_PACKED.search(m["text"])]) == 1


async def test_a_message_whose_ack_was_lost_is_sent_again_and_stored_once(
        web: WebUnderTest, browser: Pages) -> None:
    """The socket dies after the server stored a message and before its ack arrived: the widget
    sends it again, with the same id, and the server neither stores nor answers it twice."""
    page = await browser.open("desktop")
    chat = Chat(page)
    lose_the_answers = asyncio.Event()  # to the next message: its ack, its echo, all
    dropped = asyncio.Event()

    async def route(ws: WebSocketRoute) -> None:
        server = ws.connect_to_server()
        cut = False  # from here on nothing from the server reaches the page

        def to_server(message: str | bytes) -> None:
            nonlocal cut
            if lose_the_answers.is_set() and json.loads(message)["type"] == "message":
                lose_the_answers.clear()
                cut = True
            server.send(message)

        async def to_page(message: str | bytes) -> None:
            if not cut:
                ws.send(message)
            elif json.loads(message)["type"] == "ack" and not dropped.is_set():
                dropped.set()  # the server has stored it; the page will never know
                await server.close()
                await ws.close(code=4000, reason="the network lost the ack")

        ws.on_message(to_server)
        server.on_message(to_page)

    await page.route_web_socket(re.compile(r"/widget/ws"), route)
    await page.goto(web.url + "/shop")
    await chat.open()
    await chat.say("где мой заказ")
    await expect(chat.bot()).to_have_text([ASK_NUMBER])

    lose_the_answers.set()
    await chat.say("1234567")
    await asyncio.wait_for(dropped.wait(), 10)
    await expect(chat.bot().nth(1)).to_contain_text(ORDER_PACKED)
    await page.wait_for_timeout(1000)
    await expect(chat.root.locator(".msg.pending")).to_have_count(0)
    await expect(chat.root.locator(".msg.visitor", has_text="1234567")).to_have_count(1)
    await expect(chat.bot()).to_have_count(2)

    sends = [f for f in chat.frames("message") if f["text"] == "1234567"]
    assert len(sends) == 2 and sends[0]["id"] == sends[1]["id"]  # resent, same id
    held = await conversation_on_server(web.url, await chat.token())
    assert [m["text"] for m in held if m["from"] == "visitor"] == ["где мой заказ", "1234567"]
    assert len([m for m in held if ORDER_PACKED.search(m["text"])]) == 1
    assert len([m for m in held if m["from"] == "bot"]) == 2


async def test_a_refused_message_is_marked_and_can_be_sent_again(
        web: WebUnderTest, browser: Pages) -> None:
    """The server refuses a message (here the network answers for it, as the rate limit would):
    the bubble says so, and Retry sends it again under the same id."""
    page = await browser.open("desktop")
    chat = Chat(page)
    refuse = asyncio.Event()
    refused: list[str] = []

    async def route(ws: WebSocketRoute) -> None:
        server = ws.connect_to_server()

        def to_server(message: str | bytes) -> None:
            frame = json.loads(message)
            if refuse.is_set() and frame["type"] == "message":
                refuse.clear()
                refused.append(frame["id"])
                ws.send(json.dumps({"type": "error", "id": frame["id"],
                                    "error": "too many messages: at most 20 a minute"}))
                return
            server.send(message)

        ws.on_message(to_server)

    await page.route_web_socket(re.compile(r"/widget/ws"), route)
    await page.goto(web.url + "/shop")
    await chat.open()
    refuse.set()
    await chat.say("где мой заказ")
    failed = chat.root.locator(".msg.failed")
    await expect(failed).to_have_count(1)
    await expect(failed.locator(".meta")).to_contain_text("Не отправлено")
    assert await chat.stored("pending") == []  # refused: not resent by itself

    await failed.get_by_role("button", name="Повторить").click()
    await expect(chat.bot()).to_have_text([ASK_NUMBER])
    await expect(chat.root.locator(".msg.failed, .msg.pending")).to_have_count(0)
    await expect(chat.bubbles("visitor")).to_have_text(["где мой заказ"])
    assert [f["id"] for f in chat.frames("message")] == refused  # the same id, once stored


async def test_a_reload_shows_the_same_history_once(
        web: WebUnderTest, browser: Pages) -> None:
    page = await browser.open("desktop")
    chat = Chat(page)
    await page.goto(web.url + "/shop")
    await chat.open()
    await chat.say("где мой заказ")
    await expect(chat.bot()).to_have_count(1)
    await chat.say("1234567")
    await expect(chat.bot().nth(1)).to_contain_text(ORDER_PACKED)
    await expect(chat.root.locator(".msg.pending")).to_have_count(0)
    before = await chat.texts()
    last_seq = chat.frames("message", sent=False)[-1]["seq"]
    assert len(before) == 4

    chat.sent.clear()
    await page.reload()
    await chat.open()
    await expect(chat.bubbles()).to_have_count(4)
    # connected again, asking only for what came after the last message shown
    await wait_until(lambda: chat.frames("hello"), bool, 10, "hello after the reload")
    assert chat.frames("hello") == [{"type": "hello", "after": last_seq}]
    await page.wait_for_timeout(1000)
    assert await chat.texts() == before

    await chat.say("где мой заказ")  # and the conversation goes on
    await expect(chat.bot()).to_have_count(3)
    assert (await chat.texts())[:4] == before


async def test_a_message_unsent_at_a_reload_is_sent_after_it(
        web: WebUnderTest, browser: Pages) -> None:
    """Written while the server did not hear (frames lost on the way), then the page reloaded:
    the message is shown again, pending, and sent with its id; answered once."""
    page = await browser.open("desktop")
    chat = Chat(page)
    deaf = asyncio.Event()

    async def route(ws: WebSocketRoute) -> None:
        server = ws.connect_to_server()
        ws.on_message(lambda message: None if deaf.is_set() else server.send(message))

    await page.route_web_socket(re.compile(r"/widget/ws"), route)
    await page.goto(web.url + "/shop")
    await chat.open()
    await chat.say("где мой заказ")
    await expect(chat.bot()).to_have_count(1)

    deaf.set()
    await chat.say("1234567")
    await expect(chat.root.locator(".msg.pending")).to_have_count(1)
    [unsent] = await chat.stored("pending")
    deaf.clear()
    await page.reload()
    await chat.open()
    await expect(chat.bot().nth(1)).to_contain_text(ORDER_PACKED)
    await page.wait_for_timeout(1000)
    await expect(chat.root.locator(".msg.pending")).to_have_count(0)
    texts = await chat.texts()
    assert len(texts) == 4 and texts[0::2] == ["где мой заказ", "1234567"]
    assert ASK_NUMBER.search(texts[1]) and ORDER_PACKED.search(texts[3])
    assert [f["id"] for f in chat.frames("message") if f["text"] == "1234567"] == [unsent["id"]]
    assert await chat.stored("pending") == []


async def test_an_image_is_uploaded_sent_and_shown(
        web: WebUnderTest, browser: Pages) -> None:
    page = await browser.open("desktop")
    chat = Chat(page)
    await page.goto(web.url + "/shop")
    await chat.open()
    await chat.input.fill("вот фото")
    await chat.root.locator("input[type=file]").set_input_files(
        files=[{"name": "parcel.png", "mimeType": "image/png", "buffer": png()}])
    image = chat.root.locator(".msg.visitor img")
    await expect(image).to_have_count(1)
    await expect(chat.root.locator(".msg.pending")).to_have_count(0)
    await expect(image).to_have_attribute("src", re.compile(r"/widget/files/[\w-]+$"))
    await expect(chat.bubbles("visitor")).to_have_text(["вот фото"])
    assert await image.evaluate("img => img.complete && img.naturalWidth") == 24
    frame = chat.frames("image")[0]
    assert frame["text"] == "вот фото" and frame["file"]
    assert await image.evaluate("img => img.closest('a').target") == "_blank"


async def test_an_operator_answers_by_name_while_the_widget_is_closed(
        web: WebUnderTest, browser: Pages) -> None:
    page = await browser.open("phone")
    chat = Chat(page)
    await page.goto(web.url + "/shop")
    await chat.open()
    await chat.say("позовите оператора")
    await expect(chat.bot().last).to_contain_text("очеред")
    conv = f"web:{await chat.stored('visitor')}"
    service = web.runtime.handoff
    await wait_until(lambda: service.queue(), bool, 10, "the queue")
    await service.set_status("web:olga", "online", name="Ольга")
    notices = CustomerNotices("ru")
    assert (await service.claim(conv, "web:olga",
                                notices=notices.joined(conv, "web:olga", "Ольга"))).ok

    await chat.input.press("Escape")
    await expect(chat.panel).to_be_hidden()
    badge = chat.root.locator(".badge")
    await expect(badge).to_be_hidden()
    assert (await service.reply(conv, "web:olga", f"Ольга на связи {XSS}")).ok
    await expect(badge).to_be_visible()
    await expect(page.get_by_role("button", name=re.compile("новых сообщений"))).to_be_visible()

    await chat.launcher.click()
    await expect(badge).to_be_hidden()
    operator = chat.root.locator(".msg.operator").last
    await expect(operator.locator(".who")).to_have_text("Ольга")
    await expect(operator.locator(".bubble")).to_have_text(f"Ольга на связи {XSS}")
    assert await page.evaluate("typeof window.__pwned") == "undefined"

    assert (await service.close(conv, "web:olga", notices=notices.closed(conv))).ok
    five = chat.root.get_by_role("button", name="5", exact=True)
    await expect(five).to_be_visible()
    replies = await chat.bot().count()
    await five.click()
    await expect(chat.bot()).to_have_count(replies + 1)  # thanks for the rating
    stats = await service.operator_stats("web:olga")
    assert stats.ratings == 1 and stats.average_rating == 5


async def test_a_stale_token_is_replaced_by_a_new_session(
        web: WebUnderTest, browser: Pages) -> None:
    page = await browser.open("desktop")
    chat = Chat(page)
    await page.goto(web.url + "/shop")
    key = f"supportbot:{web.url}:session"
    stale = {"token": "a0123456789abcdef.0123456789abcdef", "visitor": "", "user": None,
             "ws": "/widget/ws"}
    await page.evaluate("([k, v]) => localStorage.setItem(k, v)", [key, json.dumps(stale)])
    await page.reload()
    await chat.open()
    await chat.say("где мой заказ")
    await expect(chat.bot()).to_have_text([ASK_NUMBER])
    assert await chat.token() != stale["token"]


@pytest.mark.parametrize("web", [{"web_identity_secret": SECRET}], indirect=True)
async def test_another_site_embeds_the_widget_in_english(
        web: WebUnderTest, browser: Pages) -> None:
    """A brand's page on another origin, a signed customer, data-lang="en": CORS, identity."""
    page = await browser.open("desktop")
    sig = hmac.new(SECRET.encode(), b"42", hashlib.sha256).hexdigest()
    html = (f'<!doctype html><html><body><h1>Brand</h1><script src="{web.url}/widget.js"'
            f' async data-lang="en" data-user="42" data-name="Anna" data-sig="{sig}">'
            "</script></body></html>")
    chat = Chat(page, lang="en")
    async with brand_site(html) as brand:
        await page.goto(brand)
        await chat.open()
        await expect(chat.root.get_by_role("dialog", name="Support")).to_be_visible()
        await chat.say("где мой заказ")
        await expect(chat.bot()).to_have_text([ASK_NUMBER])
        assert await chat.stored("visitor") == "u42"


@pytest.mark.parametrize("web", [{"web_identity_secret": SECRET}], indirect=True)
async def test_a_wrong_signature_is_refused_and_the_widget_says_so(
        web: WebUnderTest, browser: Pages) -> None:
    page = await browser.open("phone")
    html = (f'<!doctype html><html><body><script src="{web.url}/widget.js" async'
            f' data-user="42" data-sig="{"0" * 64}"></script></body></html>')
    chat = Chat(page)
    async with brand_site(html) as brand:
        await page.goto(brand)
        await chat.open()
        await expect(chat.status).to_have_text(re.compile("Чат сейчас недоступен"))
        await page.wait_for_timeout(1000)  # and it does not keep asking
    assert chat.sent == []
    assert await chat.stored("session") is None


@pytest.mark.parametrize("viewport", ["phone", "desktop"])
async def test_the_widget_fits_the_screen(
        web: WebUnderTest, browser: Pages, viewport: str) -> None:
    page = await browser.open(viewport)
    chat = Chat(page)
    await page.goto(web.url + "/shop")
    await expect(chat.launcher).to_be_visible()
    await no_horizontal_overflow(page)
    await screenshot(page, f"shop-{viewport}")

    await chat.open()
    await no_horizontal_overflow(page)
    await expect(chat.input).to_be_in_viewport()
    await expect(chat.root.get_by_role("button", name="Отправить")).to_be_in_viewport()
    await expect(chat.root.get_by_role("button", name="Прикрепить изображение")
                 ).to_be_in_viewport()
    box = await chat.panel.bounding_box()
    assert box is not None
    size = page.viewport_size
    assert size is not None
    if viewport == "phone":  # the whole screen
        assert (box["x"], box["y"], box["width"], box["height"]) == (
            0, 0, size["width"], size["height"])
    else:  # a panel in the bottom-right corner
        assert (box["width"], box["height"]) == (380, 600)
        assert size["width"] - 40 < box["x"] + box["width"] <= size["width"]
        assert box["y"] + box["height"] <= size["height"]

    await chat.say("где мой заказ")
    await expect(chat.bot()).to_have_count(1)
    await chat.say("1234567")
    await expect(chat.bot().nth(1)).to_contain_text(ORDER_PACKED)
    await expect(chat.root.get_by_role("button", name="Изменить адрес")).to_be_visible()
    await no_horizontal_overflow(page)
    await page.wait_for_timeout(200)
    await screenshot(page, f"widget-{viewport}")

    await chat.input.press("Escape")
    await expect(chat.panel).to_be_hidden()
    await expect(chat.launcher).to_be_focused()
