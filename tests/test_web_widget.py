"""The web channel end to end over real WebSockets (docs/web.md): the bot answers, a handoff
reaches a person and back, nothing is lost or doubled across reconnects, bad input changes
nothing. The same in a real browser: tests/test_web_widget_browser.py."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import struct
import zlib

import aiohttp

from bots.desk.notices import CustomerNotices
from bots.settings import Settings
from bots.turns import Brain
from fakes.telegram import FakeTelegram
from tests.conftest import FAKE_TOKEN
from tests.telegram_harness import running_bot, wait_until
from tests.test_desk_e2e import CUSTOMER, DESK, OPERATOR_A
from tests.web_harness import Widget, answers, running_web

SECRET = "brand-identity-secret-0123456789"


def png() -> bytes:
    """A valid 1x1 PNG."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))
    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00")) + chunk(b"IEND", b""))


async def test_the_bot_answers_in_the_widget_and_a_reconnect_loses_and_doubles_nothing(
    settings: Settings, brain: Brain
) -> None:
    async with running_web(settings, brain) as web, aiohttp.ClientSession() as http:
        widget = Widget(web.url, http)
        await widget.session()
        assert widget.visitor.startswith("a")
        await widget.connect()
        first = await widget.send("/start")
        (greeting, *_rest) = await widget.replies(1)
        assert greeting["from"] == "bot" and greeting["text"]
        assert first in widget.acks
        assert widget.shown[0]["from"] == "visitor" and widget.shown[0]["id"] == first

        # The connection drops before the ack arrives; the widget sends the message again
        # with the same id on a new socket: stored once, answered once.
        await widget.drop()
        await widget.connect()
        again = await widget.send("как оформить возврат")
        await widget.drop()
        await widget.connect()
        await widget.send("как оформить возврат", message_id=again)
        await wait_until(lambda: widget.acks.count(again), bool, 10, "the ack")
        await widget.replies(2)
        await asyncio.sleep(1.0)  # a doubled answer would arrive by now
        mine = [m for m in widget.shown if m["from"] == "visitor" and m["id"] == again]
        assert len(mine) == 1
        bot_said = [m for m in widget.shown if m["from"] != "visitor"]
        seqs = [m["seq"] for m in widget.shown]
        assert len(seqs) == len(set(seqs))

        # A new page (a reload): the whole history once, in order.
        reloaded = Widget(web.url, http, token=widget.token, visitor=widget.visitor)
        await reloaded.connect()
        await wait_until(lambda: len(reloaded.shown), lambda n: n == len(widget.shown), 5,
                         "the history")
        assert [m["seq"] for m in reloaded.shown] == seqs
        assert len([m for m in reloaded.shown if m["from"] != "visitor"]) == len(bot_said)


async def test_a_handoff_an_operator_reply_and_the_rating_through_the_widget(
    settings: Settings, brain: Brain
) -> None:
    async with running_web(settings, brain) as web, aiohttp.ClientSession() as http:
        widget = Widget(web.url, http)
        await widget.session()
        await widget.connect()
        await widget.send("позовите оператора")
        told = await widget.replies(1)
        assert "очеред" in told[-1]["text"]
        conv = f"web:{widget.visitor}"
        service = web.runtime.handoff
        await wait_until(lambda: service.queue(), bool, 10, "the queue")
        await service.set_status("web:olga", "online", name="Ольга")
        notices = CustomerNotices("ru")
        assert (await service.claim(conv, "web:olga",
                                    notices=notices.joined(conv, "web:olga", "Ольга"))).ok
        assert (await service.reply(conv, "web:olga", "Здравствуйте! Чем помочь?")).ok
        answer = (await widget.replies(3))[-1]
        assert (answer["from"], answer["name"], answer["text"]) == (
            "operator", "Ольга", "Здравствуйте! Чем помочь?")
        assert (await service.close(conv, "web:olga", notices=notices.closed(conv))).ok
        rating = (await widget.replies(4))[-1]
        assert [b["text"] for b in rating["buttons"][0]] == ["1", "2", "3", "4", "5"]
        await widget.press("5")
        await widget.replies(5)  # thanks for the rating
        stats = await service.operator_stats("web:olga")
        assert stats.ratings == 1 and stats.average_rating == 5


async def test_bad_input_is_refused_and_changes_nothing(settings: Settings, brain: Brain) -> None:
    async with running_web(settings, brain, web_origins="https://shop.example.com") as web, \
            aiohttp.ClientSession() as http:
        widget = Widget(web.url, http)
        await widget.session()
        # A forged token: the socket is closed with 4401 (the widget starts a new session).
        forged = await http.ws_connect(f"{web.url}/widget/ws?token={widget.visitor}.0000")
        await forged.receive()
        assert forged.close_code == 4401
        # A site that may not embed the widget.
        async with http.post(f"{web.url}/widget/session", json={},
                             headers={"Origin": "https://evil.example.com"}) as refused:
            assert refused.status == 403
        async with http.post(f"{web.url}/widget/session", json={},
                             headers={"Origin": "https://shop.example.com"}) as allowed:
            assert allowed.headers["Access-Control-Allow-Origin"] == "https://shop.example.com"
        await widget.connect()
        await widget.send("x" * 4001, message_id="toolong")
        assert widget.ws is not None
        await widget.ws.send_json({"type": "button", "id": "b1", "data": ""})
        await widget.ws.send_json({"type": "image", "id": "i1", "file": "nonexistent-file-id-x"})
        await widget.ws.send_json({"type": "shout", "id": "s1"})
        await wait_until(lambda: len(widget.errors), lambda n: n == 4, 5, "four refusals")
        assert [e["id"] for e in widget.errors] == ["toolong", "b1", "i1", "s1"]
        assert "4000" in widget.errors[0]["error"]
        await asyncio.sleep(0.5)
        assert widget.shown == [] and widget.acks == []
        stream = web.runtime.keys.web_chat(f"web:{widget.visitor}")
        assert await web.runtime.redis.xlen(stream) == 0
        # The rate limit: 20 a minute, the 21st refused.
        for number in range(21):
            await widget.send(f"сообщение {number}", message_id=f"m{number}")
        await wait_until(lambda: len(widget.errors), lambda n: n == 5, 10, "the limit")
        assert widget.errors[-1]["id"] == "m20" and "20 a minute" in widget.errors[-1]["error"]
        # Not JSON at all: the socket is closed.
        await widget.ws.send_str("<script>")
        await wait_until(lambda: widget.ws is not None and widget.ws.closed, bool, 5, "closed")


async def test_images_both_ways_and_signed_identities(settings: Settings, brain: Brain) -> None:
    async with running_web(settings, brain, web_identity_secret=SECRET) as web, \
            aiohttp.ClientSession() as http:
        sig = hmac.new(SECRET.encode(), b"42", hashlib.sha256).hexdigest()
        widget = Widget(web.url, http)
        session = await widget.session({"user": "42", "name": "Анна", "sig": sig})
        assert session["visitor"] == "u42"
        other = Widget(web.url, http)
        async with http.post(f"{web.url}/widget/session", json={
                "identity": {"user": "42", "sig": "0" * 64}}) as forged:
            assert forged.status == 403
        del other

        form = aiohttp.FormData()
        form.add_field("file", b"<svg onload=alert(1)>", filename="x.png",
                       content_type="image/png")
        async with http.post(f"{web.url}/widget/upload?token={widget.token}",
                             data=form) as refused:
            assert refused.status == 400 and "PNG" in (await refused.json())["error"]
        form = aiohttp.FormData()
        form.add_field("file", png(), filename="photo.png", content_type="image/png")
        async with http.post(f"{web.url}/widget/upload?token={widget.token}",
                             data=form) as uploaded:
            file_id = (await uploaded.json())["file"]
        async with http.get(f"{web.url}/widget/files/{file_id}") as served:
            assert served.headers["Content-Type"] == "image/png"
            assert served.headers["X-Content-Type-Options"] == "nosniff"
            assert await served.read() == png()

        await widget.connect()
        assert widget.ws is not None
        await widget.ws.send_json({"type": "image", "id": "photo1", "file": file_id,
                                   "text": "вот чек"})
        await wait_until(lambda: widget.shown, bool, 5, "the photo shown")
        assert widget.shown[0]["image"] == f"/widget/files/{file_id}"
        profile = await web.runtime.store.load("web:u42")
        assert profile.profile is not None and profile.profile.first_name == "Анна"


async def test_a_widget_visitor_links_their_telegram_conversation(
    settings: Settings, brain: Brain
) -> None:
    async with running_bot(settings, brain) as bot, aiohttp.ClientSession() as http:
        base = f"http://127.0.0.1:{bot.runtime.settings.http_port}"
        await wait_until(lambda: answers(http, base + "/healthz"), bool, 10, "HTTP")
        replies = await bot.exchange(CUSTOMER, "/link")
        code = re.search(r"[A-Z0-9]{4}-[A-Z0-9]{4}", replies[-1])
        assert code is not None
        widget = Widget(base, http)
        await widget.session()
        await widget.connect()
        await widget.send(code.group(0))
        (linked,) = await widget.replies(1)
        assert "аккаунты связаны" in linked["text"]
        web = await bot.runtime.store.load(f"web:{widget.visitor}")
        assert web.id == f"tg:{CUSTOMER}"  # one conversation, one history, one queue place


async def test_a_web_visitor_in_the_telegram_desk_with_a_photo_each_way(
    settings: Settings, brain: Brain
) -> None:
    async with FakeTelegram(token=FAKE_TOKEN) as tg:
        tg.add_group(DESK, "Поддержка", is_forum=True)
        async with running_bot(settings, brain, fake=tg, operator_chat_id=DESK) as bot, \
                aiohttp.ClientSession() as http:
            base = f"http://127.0.0.1:{bot.runtime.settings.http_port}"
            await wait_until(lambda: answers(http, base + "/healthz"), bool, 10, "HTTP")
            widget = Widget(base, http)
            await widget.session()
            await widget.connect()
            await widget.send("позовите оператора")
            await wait_until(lambda: tg.topics_of(DESK), bool, 10, "the visitor's topic")
            (thread,) = tg.topics_of(DESK)
            card = await wait_until(
                lambda: [m for m in tg.messages_to(DESK, thread) if m.get("reply_markup")],
                bool, 10, "the card")
            name = f"Гость {widget.visitor[-4:]}"
            assert tg.topics_of(DESK)[thread]["name"] == f"🟡 {name} · web"
            assert f"👤 {name} · чат на сайте" in card[0]["text"]

            # The operator writes in the topic (which takes it), then sends a photo.
            tg.push_update(tg.group_message_update(DESK, OPERATOR_A, "Здравствуйте!",
                                                   thread_id=thread, first_name="Ольга"))
            tg.push_update(tg.group_media_update(DESK, OPERATOR_A, "photo", thread_id=thread,
                                                 caption="вот схема", first_name="Ольга"))
            replies = await wait_until(
                lambda: [m for m in widget.shown if m["from"] == "operator"],
                lambda got: len(got) >= 2, 10, "the operator's text and photo")
            assert replies[0]["text"] == "Здравствуйте!"
            photo = replies[1]
            assert photo["text"] == "вот схема" and photo["image"].startswith("/widget/files/")
            async with http.get(base + photo["image"]) as served:
                assert served.headers["Content-Type"] == "image/jpeg"

            # The visitor's photo reaches the topic, fetched from the widget's file.
            form = aiohttp.FormData()
            form.add_field("file", png(), filename="receipt.png", content_type="image/png")
            async with http.post(f"{base}/widget/upload?token={widget.token}",
                                 data=form) as uploaded:
                file_id = (await uploaded.json())["file"]
            assert widget.ws is not None
            await widget.ws.send_json({"type": "image", "id": "receipt", "file": file_id,
                                       "text": "вот чек"})
            posted = await wait_until(
                lambda: [m for m in tg.messages_to(DESK, thread) if "photo" in m], bool, 10,
                "the visitor's photo in the topic")
            assert posted[-1]["caption"].endswith("вот чек")


async def test_stopping_the_bot_tells_open_widgets_to_come_back(
    settings: Settings, brain: Brain
) -> None:
    async with running_web(settings, brain) as web, aiohttp.ClientSession() as http:
        widget = Widget(web.url, http)
        await widget.session()
        await widget.connect()
        await widget.send("/start")
        await widget.replies(1)
        web.stop.set()
        await asyncio.wait_for(web.task, 5)  # not held up by the open page
        assert widget.ws is not None
        await wait_until(lambda: widget.ws is not None and widget.ws.closed, bool, 5, "closed")
        assert widget.ws.close_code == 1012  # service restart: the widget reconnects


async def test_a_bot_restart_loses_nothing_the_widget_has_not_shown(
    settings: Settings, brain: Brain
) -> None:
    """The chat lives in Redis: a question sent just before the bot stopped is answered
    (by the bot that stopped, or by the next one from the pending stream), and the widget,
    back on the next bot from its own seq, sees the answer once."""
    async with aiohttp.ClientSession() as http:
        async with running_web(settings, brain) as first:
            widget = Widget(first.url, http)
            await widget.session()
            await widget.connect()
            await widget.send("/start")
            await widget.replies(1)
            question = await widget.send("как оформить возврат")
            await wait_until(lambda: question in widget.acks, bool, 5, "stored")
            await widget.drop()  # the page goes away at once; then the bot stops
        async with running_web(settings, brain) as second:
            widget.base = second.url
            await widget.connect()
            asked = await wait_until(
                lambda: [n for n, m in enumerate(widget.shown) if m["id"] == question],
                bool, 10, "the question in the history")
            await wait_until(lambda: widget.shown[asked[0] + 1:], bool, 10, "its answer")
            await asyncio.sleep(1.0)  # a doubled answer would be here by now
        texts = [m["text"] for m in widget.shown]
        assert len(asked) == 1 and len(texts) == len(set(texts))
        assert len({m["seq"] for m in widget.shown}) == len(widget.shown)
