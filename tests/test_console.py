"""The operators' console through the running bot: signing in (password, one-time link, the
desk's /console), sessions and their expiry, CSRF, acting only as oneself, roles, the console's
API endpoints (notes, tags, bans, templates, the hourly report) and the live socket."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from typer.testing import CliRunner

from bots.cli.main import app
from bots.runtime import Tuning
from bots.settings import Settings
from bots.turns import Brain
from bots.web.console_auth import Accounts, login_link
from fakes.telegram import FakeTelegram
from handoff.clock import FakeClock
from tests.conftest import FAKE_TOKEN
from tests.telegram_harness import BotUnderTest, running_bot, wait_until

DESK = -1001000000001
CUSTOMER = 6001
ANNA, OLGA, PETR = "web:anna", "tg:9101", "tg:9102"
PASSWORD = "correct horse battery"


# --- helpers ---------------------------------------------------------------------------------
def base(bot: BotUnderTest) -> str:
    return f"http://127.0.0.1:{bot.runtime.settings.http_port}"


async def http_up(bot: BotUnderTest) -> None:
    """The HTTP server starts in a task of its own: wait until it answers."""
    async def answers() -> bool:
        try:
            async with aiohttp.ClientSession() as http, http.get(base(bot) + "/healthz") as r:
                return r.status in (200, 503)
        except aiohttp.ClientError:
            return False
    await wait_until(answers, bool, 10, "the HTTP server")


@contextlib.asynccontextmanager
async def browser(bot: BotUnderTest) -> AsyncIterator[aiohttp.ClientSession]:
    """A client that keeps cookies (for 127.0.0.1 too) and does not follow redirects."""
    async with aiohttp.ClientSession(base(bot), cookie_jar=aiohttp.CookieJar(unsafe=True)
                                     ) as http:
        yield http


async def sign_in(http: aiohttp.ClientSession, op: str, password: str = PASSWORD,
                  address: str | None = None) -> aiohttp.ClientResponse:
    """The login form; `address`: the client as a trusted proxy names it."""
    headers = {"X-Forwarded-For": address} if address else {}
    async with http.post("/console/login", data={"operator": op, "password": password},
                         headers=headers, allow_redirects=False) as response:
        await response.read()
        return response


async def session(http: aiohttp.ClientSession) -> tuple[int, dict[str, Any]]:
    async with http.get("/console/api/session") as response:
        return response.status, await response.json()


async def call(http: aiohttp.ClientSession, method: str, path: str, body: Any = None,
               csrf: str | None = None) -> tuple[int, Any]:
    headers = {"X-CSRF-Token": csrf} if csrf else {}
    async with http.request(method, "/console/api" + path, json=body, headers=headers) as r:
        text = await r.text()
        try:
            return r.status, json.loads(text)
        except ValueError:
            return r.status, text


async def account(bot: BotUnderTest, op: str, name: str, *roles: str) -> None:
    await Accounts(bot.runtime.redis, bot.runtime.keys).add(op, name, PASSWORD, "test", 0.0)
    for role in roles or ("operator",):
        await bot.runtime.access.grant(op, role, "test")  # type: ignore[arg-type]


async def handed_off(bot: BotUnderTest, user: int = CUSTOMER) -> str:
    await bot.say(user, "позовите оператора", first_name="Анна")
    conv = f"tg:{user}"
    await wait_until(lambda: bot.conversation(user), lambda c: c.state == "queued", 5,
                     "the handoff")
    return conv


def env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {"REDIS_URL": settings.redis_url or "",
                        "REDIS_PREFIX": settings.redis_prefix}.items():
        monkeypatch.setenv(name, value)


# --- signing in --------------------------------------------------------------------------------
async def test_password_login_right_wrong_and_rate_limited(
    settings: Settings, brain: Brain, monkeypatch: pytest.MonkeyPatch
) -> None:
    env(settings, monkeypatch)
    runner = CliRunner()
    async with running_bot(settings, brain, trusted_proxies="127.0.0.1") as bot:
        await http_up(bot)
        made = await asyncio.to_thread(
            runner.invoke, app, ["console", "add", ANNA, "--name", "Анна"],
            input=f"{PASSWORD}\n{PASSWORD}\n")
        assert made.exit_code == 0, made.output
        short = await asyncio.to_thread(
            runner.invoke, app, ["console", "add", "web:bob", "--name", "Bob"],
            input="short\nshort\n")
        listed = await asyncio.to_thread(runner.invoke, app, ["console", "list"])
        stored = await bot.runtime.redis.hgetall(bot.runtime.keys.console_account(ANNA))
        async with browser(bot) as http:
            assert (await session(http))[0] == 401
            async with http.get("/console") as page:  # not signed in: the login form
                assert page.status == 200 and 'name="password"' in await page.text()
            wrong = await sign_in(http, ANNA, "wrong password")
            assert wrong.status == 401
            unknown = await sign_in(http, "web:nobody", "wrong password")
            assert unknown.status == 401  # the same answer: who exists is not told
            right = await sign_in(http, ANNA)
            assert right.status == 303 and right.headers["Location"] == "/console"
            cookie = right.cookies["sb_console"]
            assert cookie["httponly"] and cookie["samesite"] == "Strict"
            assert cookie["path"] == "/console" and not cookie["secure"]  # plain http here
            status, me = await session(http)
            assert status == 200
            assert me["operator"] == ANNA and me["name"] == "Анна" and me["roles"] == ["operator"]
            assert len(me["csrf"]) >= 32
            async with http.get("/console") as page:
                assert page.status == 200 and "console.js" in await page.text()
                assert "default-src 'self'" in page.headers["Content-Security-Policy"]
        async with browser(bot) as http:  # 5 failures for one operator: then even right is 429
            for n in range(5):
                assert (await sign_in(http, ANNA, "guess", f"10.0.1.{n}")).status == 401
            assert (await sign_in(http, ANNA, address="10.0.1.99")).status == 429
        async with browser(bot) as http:  # 5 failures from one address, whoever they were for
            for n in range(5):
                assert (await sign_in(http, f"web:x{n}", "guess", "10.0.2.1")).status == 401
            limited = await sign_in(http, "web:x9", PASSWORD, "10.0.2.1")
            assert limited.status == 429
            assert (await sign_in(http, "web:x9", "guess", "10.0.2.2")).status == 401
        operator = await bot.runtime.handoff.operator(ANNA)

    assert short.exit_code != 0 and "at least" in short.output
    assert "web:anna" in listed.output and "Анна" in listed.output
    assert PASSWORD not in str(stored) and set(stored) >= {"salt", "hash", "name"}
    assert operator is not None and operator.status == "online"  # registered at first sign-in


async def test_a_login_link_works_once_and_sessions_expire(
    settings: Settings, brain: Brain, monkeypatch: pytest.MonkeyPatch
) -> None:
    env(settings, monkeypatch)
    clock = FakeClock()
    async with running_bot(settings, brain, tuning=Tuning(clock=clock)) as bot:
        await http_up(bot)
        redis, keys = bot.runtime.redis, bot.runtime.keys
        path = await login_link(redis, keys, OLGA, "Ольга")
        assert re.fullmatch(r"/console/link/[A-Za-z0-9_-]{43}", path)
        stored = [key async for key in redis.scan_iter(f"{keys.prefix}console:link:*")]
        assert len(stored) == 1 and path.rsplit("/", 1)[1] not in stored[0]  # kept hashed
        assert 590 <= await redis.ttl(stored[0]) <= 600
        async with browser(bot) as http:
            async with http.get(path, headers={"User-Agent": "TelegramBot (like TwitterBot)"},
                                allow_redirects=False) as preview:
                assert preview.status == 200  # a link preview does not use the link up
            async with http.get(path, allow_redirects=False) as first:
                assert first.status == 303 and first.headers["Location"] == "/console"
            assert (await session(http))[1]["operator"] == OLGA
            async with http.get(path, allow_redirects=False) as again:
                assert again.status == 410
            clock.advance(7 * 3600)  # active within 8 hours: still signed in
            assert (await session(http))[0] == 200
            clock.advance(8 * 3600 + 1)  # idle longer than 8 hours
            assert (await session(http))[0] == 401
        async with browser(bot) as http:  # the absolute limit: 24 hours however active
            async with http.get(await login_link(redis, keys, OLGA, "Ольга"),
                                allow_redirects=False) as response:
                assert response.status == 303
            for _ in range(4):
                clock.advance(6 * 3600 - 60)
                assert (await session(http))[0] == 200
            clock.advance(3600)
            assert (await session(http))[0] == 401
        async with browser(bot) as http:  # logout ends the session (with its CSRF token)
            async with http.get(await login_link(redis, keys, OLGA, "Ольга"),
                                allow_redirects=False):
                pass
            csrf = (await session(http))[1]["csrf"]
            async with http.post("/console/logout") as refused:
                assert refused.status == 403
            async with http.post("/console/logout", headers={"X-CSRF-Token": csrf}) as out:
                assert out.status == 200
            assert (await session(http))[0] == 401
        link_cli = await asyncio.to_thread(CliRunner().invoke, app, ["console", "link", OLGA])
        assert link_cli.exit_code == 0 and "/console/link/" in link_cli.output


async def test_csrf_is_required_and_an_operator_acts_only_as_themselves(
    settings: Settings, brain: Brain
) -> None:
    async with running_bot(settings, brain) as bot:
        await http_up(bot)
        conv = await handed_off(bot)
        await account(bot, ANNA, "Анна")
        await bot.runtime.handoff.set_status(PETR, "online", name="Пётр")
        async with browser(bot) as http:
            await sign_in(http, ANNA)
            csrf = (await session(http))[1]["csrf"]
            before = await bot.runtime.redis.hgetall(bot.runtime.keys.conversation(conv))
            status, body = await call(http, "POST", f"/conversations/{conv}/claim", {})
            assert status == 403 and "CSRF" in body["error"]
            status, _ = await call(http, "POST", f"/conversations/{conv}/claim", {}, "wrong")
            assert status == 403
            assert await bot.runtime.redis.hgetall(bot.runtime.keys.conversation(conv)) == before
            # Claiming "as Пётр": the session's operator claims.
            status, body = await call(http, "POST", f"/conversations/{conv}/claim",
                                      {"operator": PETR}, csrf)
            assert status == 200 and body["conversation"]["owner"] == ANNA
            status, body = await call(http, "POST", f"/conversations/{conv}/reply",
                                      {"operator": PETR, "text": "Здравствуйте!"}, csrf)
            assert status == 200
            # An operator cannot force: closing Пётр's conversation is refused.
            await bot.runtime.handoff.transfer(conv, ANNA, PETR)
            status, body = await call(http, "POST", f"/conversations/{conv}/close",
                                      {"by": PETR, "force": True}, csrf)
            assert status == 409 and body["error"] == "not_owner" and body["owner"] == PETR
            # ...nor set a colleague's status.
            status, _ = await call(http, "POST", f"/operators/{PETR}/status",
                                   {"status": "offline"}, csrf)
            assert status == 403
            status, mine = await call(http, "POST", f"/operators/{ANNA}/status",
                                      {"status": "paused"}, csrf)
            assert status == 200 and mine["status"] == "paused"
        transcript = await bot.runtime.store.transcript(conv)
        conversation = await bot.conversation(CUSTOMER)
        texts = await bot.wait_texts(CUSTOMER, 3)
    assert [e["operator"] for e in transcript if e.get("text") == "Здравствуйте!"] == [ANNA]
    assert "Здравствуйте!" in texts
    assert conversation.state == "assigned" and conversation.owner == PETR


async def test_roles_decide_what_a_session_reaches(settings: Settings, brain: Brain) -> None:
    async with running_bot(settings, brain, desk_supervisors="9100") as bot:
        await http_up(bot)
        await account(bot, ANNA, "Анна")
        await account(bot, "tg:9100", "Руководитель")  # a supervisor from the settings
        async with browser(bot) as operator, browser(bot) as lead:
            await sign_in(operator, ANNA)
            await sign_in(lead, "tg:9100")
            for path in ("/reports/operators?period=7d", "/reports/hourly", "/journal",
                         "/records", "/roles"):
                assert (await call(operator, "GET", path))[0] == 403, path
                assert (await call(lead, "GET", path))[0] == 200, path
            for path in ("/queue", "/operators", "/templates", "/conversations?state=queued"):
                assert (await call(operator, "GET", path))[0] == 200, path
            async with operator.get("/console/supervisor") as page:
                assert page.status == 403
            async with lead.get("/console/supervisor") as page:
                assert page.status == 200 and "supervisor.js" in await page.text()
            assert (await session(lead))[1]["roles"] == ["operator", "supervisor"]
            # A revoked operator is signed out at once.
            await bot.runtime.access.revoke(ANNA, "tg:9100", "уволена")
            assert (await session(operator))[0] == 401
            async with operator.get("/console/static/console.js") as asset:
                assert asset.status == 200 and "text/javascript" in asset.headers["Content-Type"]
            async with operator.get("/console/static/../console_auth.py") as sneaky:
                assert sneaky.status == 404


async def test_notes_tags_bans_templates_and_the_hourly_report(
    settings: Settings, brain: Brain
) -> None:
    async with running_bot(settings, brain, desk_supervisors="9100") as bot:
        await http_up(bot)
        conv = await handed_off(bot)
        await account(bot, "tg:9100", "Руководитель")
        async with browser(bot) as http:
            await sign_in(http, "tg:9100")
            csrf = (await session(http))[1]["csrf"]
            told = len(bot.texts_to(CUSTOMER))
            status, note = await call(http, "POST", f"/conversations/{conv}/note",
                                      {"text": "VIP, осторожно"}, csrf)
            assert status == 200 and note["entry"]["dir"] == "note"
            status, tagged = await call(http, "POST", f"/conversations/{conv}/tags",
                                        {"tags": ["#vip", "возврат", "vip"]}, csrf)
            assert status == 200 and tagged["tags"][-2:] == ["vip", "возврат"]
            assert len(set(tagged["tags"])) == len(tagged["tags"])
            assert (await call(http, "POST", f"/conversations/{conv}/tags",
                               {"tags": ["a,b"]}, csrf))[0] == 400
            status, _ = await call(http, "POST", f"/conversations/{conv}/claim", {}, csrf)
            assert status == 200
            status, _ = await call(http, "POST", f"/conversations/{conv}/close",
                                   {"reason": "решено"}, csrf)
            assert status == 200
            assert (await call(http, "POST", f"/conversations/{conv}/tags",
                               {"tags": ["late"]}, csrf))[0] == 409  # with the bot: no handoff
            status, _ = await call(http, "POST", f"/conversations/{conv}/ban",
                                   {"reason": "спам"}, csrf)
            assert status == 200
            detail = (await call(http, "GET", f"/conversations/{conv}"))[1]
            assert detail["banned"] is True
            status, _ = await call(http, "POST", f"/conversations/{conv}/unban", {}, csrf)
            assert status == 200
            status, again = await call(http, "POST", f"/conversations/{conv}/unban", {}, csrf)
            assert status == 409 and again["detail"] == "not banned"
            status, templates = await call(http, "GET", "/templates")
            assert status == 200 and templates["templates"]
            assert set(templates["templates"][0]) == {"name", "text"}
            status, hourly = await call(http, "GET", "/reports/hourly?period=today")
            assert status == 200 and len(hourly["hours"]) in (23, 24, 25)
            assert sum(h["taken"] for h in hourly["hours"]) == 1
            assert sum(h["closed"] for h in hourly["hours"]) == 1
            status, text = await call(http, "GET", "/reports/hourly?period=7d&format=csv")
            rows = list(csv.reader(io.StringIO(text)))
            assert status == 200 and rows[0][:4] == ["hour", "start", "taken", "closed"]
            assert len(rows) == 1 + 7 * 24 or len(rows) == 1 + 7 * 24 + 1
            assert (await call(http, "GET", "/reports/hourly?period=year"))[0] == 400
        transcript = await bot.runtime.store.transcript(conv, 200)
        journal = await bot.runtime.redis.xrange(bot.runtime.keys.journal())
        texts = bot.texts_to(CUSTOMER)
    notes = [e for e in transcript if e["dir"] == "note"]
    assert notes == [{"at": notes[0]["at"], "dir": "note", "text": "VIP, осторожно",
                      "operator": "tg:9100"}]
    assert all("VIP" not in text for text in texts[told:])  # a note never reaches the customer
    actions = [(f["action"], f.get("actor")) for _, f in journal if f.get("conv") == conv]
    assert ("note", "tg:9100") in actions and ("tag", "tg:9100") in actions
    assert ("ban", "tg:9100") in actions and ("unban", "tg:9100") in actions


async def test_the_socket_says_what_changed(settings: Settings, brain: Brain) -> None:
    async with running_bot(settings, brain) as bot:
        await http_up(bot)
        await account(bot, ANNA, "Анна")
        async with browser(bot) as http:
            await sign_in(http, ANNA)
            origin = {"Origin": base(bot)}
            with pytest.raises(aiohttp.WSServerHandshakeError) as foreign:
                await http.ws_connect("/console/ws", headers={"Origin": "http://evil.example"})
            assert foreign.value.status == 403
            async with http.ws_connect("/console/ws", headers=origin) as ws:
                assert (await ws.receive_json(timeout=5))["type"] == "hello"
                conv = await handed_off(bot)

                async def frame(action: str) -> dict[str, Any]:
                    while True:
                        got = await ws.receive_json(timeout=5)
                        if got.get("action") == action:
                            return got

                assert await frame("handoff") == {"type": "changed", "conv": conv,
                                                  "action": "handoff"}
                await bot.say(CUSTOMER, "я жду")  # a message: told after the worker's commit
                told = await frame("message")
                transcript = await bot.runtime.store.transcript(conv)
                assert told["conv"] == conv and transcript[-1]["text"] == "я жду"
                others = [await http.ws_connect("/console/ws", headers=origin)
                          for _ in range(3)]
                with pytest.raises(aiohttp.WSServerHandshakeError) as many:
                    await http.ws_connect("/console/ws", headers=origin)
                assert many.value.status == 429  # 4 pages per session
                for other in others:
                    await other.close()
            assert bot.runtime.guard.in_flight == 0  # open sockets do not hold the server
        async with aiohttp.ClientSession() as stranger:
            with pytest.raises(aiohttp.WSServerHandshakeError) as anonymous:
                await stranger.ws_connect(base(bot) + "/console/ws", headers=origin)
            assert anonymous.value.status == 401


async def test_the_desk_console_command_sends_a_private_link(
    settings: Settings, brain: Brain
) -> None:
    async with FakeTelegram(token=FAKE_TOKEN) as fake:
        fake.add_group(DESK, "Поддержка", is_forum=True)
        async with running_bot(settings, brain, fake=fake, operator_chat_id=DESK,
                               desk_operators="9101") as bot:
            await http_up(bot)
            fake.push_update(fake.group_message_update(DESK, 9101, "/console",
                                                       first_name="Ольга"))
            (private,) = await bot.wait_texts(9101, 1)
            fake.push_update(fake.group_message_update(DESK, 9555, "/console",
                                                       first_name="Чужой"))
            await wait_until(lambda: [m.get("text", "") for m in fake.messages_to(DESK)],
                             lambda got: any("отправлена" in t for t in got), 5,
                             "the desk's answer")
            await asyncio.sleep(0.3)
            path = private[private.index("/console/link/"):].split()[0]
            assert private.startswith("Вход в консоль") and base(bot) in private
            async with browser(bot) as http:
                async with http.get(path, allow_redirects=False) as response:
                    assert response.status == 303
                status, me = await session(http)
            assert status == 200 and me["operator"] == OLGA and me["name"] == "Ольга"
            assert bot.texts_to(9555) == []  # not a listed operator: no link


async def test_a_transcript_with_many_entries_reads_quickly(settings: Settings, brain: Brain
                                                          ) -> None:
    """The console reads a conversation with its last 200 entries on every change: that must
    stay cheap (a regression guard, not a benchmark)."""
    async with running_bot(settings, brain) as bot:
        await http_up(bot)
        conv = await handed_off(bot)
        await account(bot, ANNA, "Анна")
        async with browser(bot) as http:
            await sign_in(http, ANNA)
            csrf = (await session(http))[1]["csrf"]
            for n in range(30):
                await call(http, "POST", f"/conversations/{conv}/note", {"text": f"n{n}"}, csrf)
            started = time.monotonic()
            status, detail = await call(http, "GET", f"/conversations/{conv}?transcript=200")
            took = time.monotonic() - started
    assert status == 200 and len(detail["transcript"]) >= 30 and took < 1.0


async def test_the_console_serves_a_web_visitor_without_telegram(
    settings: Settings, brain: Brain
) -> None:
    """The web channel alone (as `make run` with no tokens): a visitor of the widget asks for a
    person, an operator signed in by a link takes and answers in the console's API, the socket
    tells of the visitor's messages, and the widget shows the answer under the operator's name."""
    from tests.web_harness import Widget, running_web

    async with running_web(settings, brain) as web, aiohttp.ClientSession() as plain, \
            aiohttp.ClientSession(web.url, cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        widget = Widget(web.url, plain)
        await widget.session()
        await widget.connect()
        conv = f"web:{widget.visitor}"
        async with http.get(await login_link(web.runtime.redis, web.runtime.keys, ANNA,
                                             "Анна"), allow_redirects=False) as signed:
            assert signed.status == 303
        csrf = (await session(http))[1]["csrf"]
        async with http.ws_connect("/console/ws", headers={"Origin": web.url}) as ws:
            await ws.receive_json(timeout=5)  # hello
            await widget.send("позовите оператора")
            await wait_until(lambda: call(http, "GET", "/queue"),
                             lambda got: got[1]["length"] == 1, 10, "the queue")
            status, body = await call(http, "POST", f"/conversations/{conv}/claim", {}, csrf)
            assert status == 200 and body["conversation"]["owner"] == ANNA
            await widget.send("у меня вопрос")
            while (frame := await ws.receive_json(timeout=5)).get("action") != "message":
                pass
            assert frame["conv"] == conv
        status, _ = await call(http, "POST", f"/conversations/{conv}/reply",
                               {"text": "Здравствуйте! Слушаю вас."}, csrf)
        assert status == 200
        shown = await wait_until(lambda: [m for m in widget.shown if m["from"] == "operator"],
                                 lambda got: any("Слушаю" in m["text"] for m in got), 10,
                                 "the answer in the widget")
        await widget.drop()
    assert shown[-1]["name"] == "Анна"
