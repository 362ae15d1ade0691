"""The operators' console and the supervisors' pages in a real browser (headless Chromium)
against the running bot with a Telegram customer (the fake Bot API) and the Telegram desk:
sign in by a one-time link, take, reply, close (the customer gets the rating keyboard); a
take raced against «Взять» in the desk; the layouts at phone and desktop widths, with
screenshots in test-artifacts/screenshots/.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from playwright.async_api import Page, expect

from bots.settings import Settings
from bots.turns import Brain
from bots.web.console_auth import login_link
from fakes.telegram import FakeTelegram
from tests.browser_harness import Pages, no_horizontal_overflow, screenshot
from tests.conftest import FAKE_TOKEN
from tests.telegram_harness import BotUnderTest, running_bot, wait_until
from tests.test_console import http_up

DESK = -1001000000001
CUSTOMER = 6001
OLGA, PETR, LEAD = 9101, 9102, 9100
expect.set_options(timeout=10_000)


def buttons(message: dict[str, Any]) -> dict[str, str]:
    keyboard = (message.get("reply_markup") or {}).get("inline_keyboard", [])
    return {b["text"]: b.get("callback_data", "") for row in keyboard for b in row}


@pytest.fixture
async def bot(settings: Settings, brain: Brain) -> AsyncIterator[BotUnderTest]:
    async with FakeTelegram(token=FAKE_TOKEN) as fake:
        fake.add_group(DESK, "Поддержка", is_forum=True)
        async with running_bot(settings, brain, fake=fake, operator_chat_id=DESK,
                               desk_supervisors=str(LEAD)) as running:
            await http_up(running)
            yield running


@pytest.fixture
def browser(bot: BotUnderTest, pages: Pages) -> Pages:
    """Pages set up after the bot, so closed before it stops."""
    return pages


def base(bot: BotUnderTest) -> str:
    return f"http://127.0.0.1:{bot.runtime.settings.http_port}"


async def signed_in(bot: BotUnderTest, browser: Pages, viewport: str, operator: int,
                    name: str, page_path: str = "/console") -> Page:
    page = await browser.open(viewport)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.errors = errors  # type: ignore[attr-defined]
    link = await login_link(bot.runtime.redis, bot.runtime.keys, f"tg:{operator}", name)
    await page.goto(base(bot) + link)
    await expect(page.locator("#me")).to_contain_text(name)
    if page_path != "/console":
        await page.goto(base(bot) + page_path)
    return page


async def handed_off(bot: BotUnderTest, user: int = CUSTOMER, name: str = "Анна") -> None:
    await bot.say(user, "позовите оператора", first_name=name, username="anna")
    await wait_until(lambda: bot.conversation(user), lambda c: c.state == "queued", 5,
                     "the handoff")


async def open_in_list(page: Page, name: str) -> None:
    item = page.locator("#queue-list .conv-item button", has_text=name)
    await expect(item).to_be_visible()
    await item.click()
    await expect(page.locator("#chat-name")).to_have_text(name)


# --- the whole conversation ---------------------------------------------------------------
async def test_an_operator_takes_answers_and_closes_in_the_console(
    bot: BotUnderTest, browser: Pages
) -> None:
    page = await signed_in(bot, browser, "desktop", OLGA, "Ольга")
    await expect(page.locator("#list-empty")).to_have_text("Очередь пуста.")
    await handed_off(bot)  # the page hears of it over /console/ws, without a reload
    await expect(page.locator("#queue-count")).to_have_text("1")
    await open_in_list(page, "Анна")
    await expect(page.locator("#transcript .msg-in").first).to_contain_text("позовите оператора")
    await expect(page.locator("#profile")).to_contain_text("@anna")
    await screenshot(page, "console-desktop-queued")

    await page.locator("#act-take").click()
    await expect(page.locator("#chat-owner")).to_have_text("Разговор ведёте вы.")
    await expect(page.locator("#mine-count")).to_have_text("1")
    told = len(bot.texts_to(CUSTOMER))
    hostile = '<img src=x onerror="window.__pwned=1"> Здравствуйте, Анна!'
    await page.locator("#text").fill(hostile)
    await page.locator("#send").click()
    got = await bot.wait_texts(CUSTOMER, told + 1)
    assert hostile in got[told:]
    await expect(page.locator("#transcript .msg-operator").last).to_contain_text("Здравствуйте")

    await bot.say(CUSTOMER, "<b>где</b> мой заказ?")  # the customer answers: shown live
    await expect(page.locator("#transcript .msg-in").last).to_have_text(
        re.compile(r"<b>где</b> мой заказ\?"))
    assert await page.evaluate("() => window.__pwned") is None
    assert await page.locator("#transcript b").count() == 0  # text, never HTML

    await page.locator('input[name="mode"][value="note"]').check()
    await page.locator("#text").fill("Клиент VIP")
    await page.locator("#send").click()
    await expect(page.locator("#transcript .msg-note")).to_contain_text("Клиент VIP")
    await page.locator("#tag-input").fill("vip возврат")
    await page.locator("#tag-form button").click()
    await expect(page.locator("#tags")).to_contain_text("#возврат")
    await screenshot(page, "console-desktop-assigned")
    (thread,) = bot.fake.topics_of(DESK)  # the Telegram desk saw the reply and the note
    await wait_until(lambda: [m.get("text", "") for m in bot.fake.messages_to(DESK, thread)],
                     lambda got: any(t.startswith("💬 Ольга (консоль): <img") for t in got)
                     and "📝 Ольга (заметка): Клиент VIP" in got, 10, "the echo in the topic")

    await page.locator("#act-close").click()
    await page.locator("#reason-input").fill("решено")
    await page.locator("#reason-ok").click()
    rating = await wait_until(lambda: bot.fake.messages_to(CUSTOMER),
                              lambda m: buttons(m[-1]).keys() >= {"1", "5"}, 10,
                              "the rating keyboard")
    assert set(buttons(rating[-1])) == {"1", "2", "3", "4", "5"}
    assert all("VIP" not in m.get("text", "") for m in rating)  # the note stayed inside
    await expect(page.locator("#mine-count")).to_have_text("0")
    conversation = await bot.conversation(CUSTOMER)
    assert conversation.state == "bot"
    assert page.errors == []  # type: ignore[attr-defined]


async def test_a_take_in_the_console_races_a_take_in_the_desk(
    bot: BotUnderTest, browser: Pages
) -> None:
    page = await signed_in(bot, browser, "desktop", OLGA, "Ольга")
    await handed_off(bot)
    (thread,) = await wait_until(lambda: bot.fake.topics_of(DESK), bool, 5, "the topic")
    cards = await wait_until(
        lambda: [m for m in bot.fake.messages_to(DESK, thread) if "Взять" in buttons(m)],
        bool, 5, "the card")
    await open_in_list(page, "Анна")

    press = bot.fake.callback_update(PETR, buttons(cards[0])["Взять"],
                                     message_id=cards[0]["message_id"], chat_id=DESK,
                                     first_name="Пётр")
    await asyncio.gather(page.locator("#act-take").click(),
                         asyncio.to_thread(bot.fake.push_update, press))
    conversation = await wait_until(lambda: bot.conversation(CUSTOMER),
                                    lambda c: c.state == "assigned", 5, "a winner")
    (answer,) = [call.params for call in await bot.fake.wait_for("answerCallbackQuery")]
    if conversation.owner == f"tg:{OLGA}":  # the console won: the desk was told who has it
        assert "уже ведёт Ольга" in answer.get("text", "")
        await expect(page.locator("#chat-owner")).to_have_text("Разговор ведёте вы.")
    else:  # the desk won: the console says who has it
        assert conversation.owner == f"tg:{PETR}" and not answer.get("text")
        await expect(page.locator("#toast")).to_contain_text("Разговор уже ведёт Пётр")
        await expect(page.locator("#chat-owner")).to_have_text("Разговор ведёт Пётр.")
        await expect(page.locator("#act-take")).to_be_hidden()
    assert len(bot.texts_to(CUSTOMER)) == len(set(bot.texts_to(CUSTOMER)))  # one «joined»


async def test_the_console_loses_a_take_it_comes_second_to(
    bot: BotUnderTest, browser: Pages
) -> None:
    """The deterministic half of the race: the desk takes first, then the console tries."""
    page = await signed_in(bot, browser, "phone", OLGA, "Ольга")
    await handed_off(bot)
    (thread,) = await wait_until(lambda: bot.fake.topics_of(DESK), bool, 5, "the topic")
    cards = await wait_until(
        lambda: [m for m in bot.fake.messages_to(DESK, thread) if "Взять" in buttons(m)],
        bool, 5, "the card")
    await open_in_list(page, "Анна")
    await page.evaluate("() => { window.WebSocket.prototype.send = () => {}; }")
    bot.fake.push_update(bot.fake.callback_update(
        PETR, buttons(cards[0])["Взять"], message_id=cards[0]["message_id"], chat_id=DESK,
        first_name="Пётр"))
    await wait_until(lambda: bot.conversation(CUSTOMER), lambda c: c.owner == f"tg:{PETR}",
                     5, "the desk's take")
    take = page.locator("#act-take")
    if await take.is_visible():  # the live update may already have hidden the button
        await take.click()
        await expect(page.locator("#toast")).to_contain_text("Разговор уже ведёт Пётр")
    await expect(page.locator("#chat-owner")).to_have_text("Разговор ведёт Пётр.")
    await screenshot(page, "console-phone-taken-by-another")


# --- layouts -----------------------------------------------------------------------------------
@pytest.mark.parametrize("viewport", ["phone", "desktop"])
async def test_the_console_and_the_reports_fit_phone_and_desktop(
    bot: BotUnderTest, browser: Pages, viewport: str
) -> None:
    await handed_off(bot)
    await handed_off(bot, 6002, "Константин Константинопольский-Длиннофамильный")
    page = await signed_in(bot, browser, viewport, LEAD, "Руководитель Смены")
    await expect(page.locator("#queue-count")).to_have_text("2")
    await no_horizontal_overflow(page)
    await screenshot(page, f"console-{viewport}-queue")
    await open_in_list(page, "Анна")
    await page.locator("#act-take").click()
    await expect(page.locator("#chat-owner")).to_have_text("Разговор ведёте вы.")
    await page.locator("#text").fill("Добрый день! " * 30)
    await page.locator("#send").click()
    await expect(page.locator("#transcript .msg-operator")).to_have_count(1)
    await no_horizontal_overflow(page)
    await screenshot(page, f"console-{viewport}-chat")
    if viewport == "phone":
        await page.locator("#card-toggle").click()
        await expect(page.locator("#card")).to_be_visible()
        await no_horizontal_overflow(page)
        await screenshot(page, "console-phone-card")
        await page.locator("#card-close").click()
        await expect(page.locator("#card")).to_be_hidden()
        await page.locator("#back").click()
        await expect(page.locator("#mine-list")).to_be_visible()  # taken: among mine
    await page.locator("#act-close").click() if viewport == "desktop" else None
    if viewport == "desktop":
        await page.locator("#reason-ok").click()
        await expect(page.locator("#mine-count")).to_have_text("0")
        rating = await wait_until(lambda: bot.fake.messages_to(CUSTOMER),
                                  lambda m: "5" in buttons(m[-1]), 10, "the rating keyboard")
        bot.fake.push_update(bot.fake.callback_update(
            CUSTOMER, buttons(rating[-1])["4"], message_id=rating[-1]["message_id"]))
        await wait_until(lambda: bot.runtime.redis.hgetall(
            bot.runtime.keys.ratings(f"tg:{LEAD}")), lambda r: r.get("4") == "1", 5, "a rating")

    await page.goto(base(bot) + "/console/supervisor")
    await expect(page.locator("#period-label")).not_to_be_empty()
    for chart in ("#chart-volume", "#chart-reaction", "#chart-csat"):
        await expect(page.locator(f"{chart} .uplot")).to_be_visible()
    await expect(page.locator("#operators tr")).to_have_count(1)
    await expect(page.locator("#operators")).to_contain_text("Руководитель Смены")
    csv = page.locator('a[data-csv="operators"]')
    assert await csv.get_attribute("href") == (
        "/console/api/reports/operators?period=today&format=csv")
    await no_horizontal_overflow(page)
    await screenshot(page, f"supervisor-{viewport}-today")
    await page.get_by_role("button", name="7 дней").click()
    await expect(page.locator('a[data-csv="hourly"]').first).to_have_attribute(
        "href", "/console/api/reports/hourly?period=7d&format=csv")
    await no_horizontal_overflow(page)
    await page.locator("#chart-csat").scroll_into_view_if_needed()
    await screenshot(page, f"supervisor-{viewport}-7d")
    async with page.expect_download() as download:
        await page.locator('a[data-csv="hourly"]').first.click()
    saved = await (await download.value).path()
    assert saved is not None and saved.read_text(encoding="utf-8").startswith("hour,start,")
    assert page.errors == []  # type: ignore[attr-defined]


async def test_an_operator_gets_a_403_page_for_the_reports(bot: BotUnderTest,
                                                           browser: Pages) -> None:
    page = await signed_in(bot, browser, "phone", OLGA, "Ольга", "/console/supervisor")
    await expect(page.locator("h1")).to_have_text("Нет доступа")
    await expect(page.locator("#supervisor-link")).to_have_count(0)
    await no_horizontal_overflow(page)
    await screenshot(page, "supervisor-phone-403")
    login = await browser.open("phone")
    await login.goto(base(bot) + "/console")
    await expect(login.get_by_role("button", name="Войти")).to_be_visible()
    await no_horizontal_overflow(login)
    await screenshot(login, "console-phone-login")


async def test_a_transfer_back_to_the_queue_and_to_a_colleague(
    bot: BotUnderTest, browser: Pages
) -> None:
    await bot.runtime.handoff.set_status(f"tg:{PETR}", "online", name="Пётр")
    page = await signed_in(bot, browser, "phone", OLGA, "Ольга")
    await handed_off(bot)
    await open_in_list(page, "Анна")
    await page.locator("#act-take").click()
    await expect(page.locator("#chat-owner")).to_have_text("Разговор ведёте вы.")
    await page.locator("#act-transfer").click()
    options = page.locator("#transfer-to option")
    await expect(options).to_have_count(2)
    await expect(options.nth(1)).to_contain_text("Пётр — в сети, 0/")
    await no_horizontal_overflow(page)
    await screenshot(page, "console-phone-transfer")
    await page.locator("#transfer-reason").fill("конец смены")
    await page.get_by_role("button", name="Передать", exact=True).last.click()
    await expect(page.locator("#toast")).to_contain_text("Разговор вернулся в очередь")
    await wait_until(lambda: bot.conversation(CUSTOMER), lambda c: c.state == "queued", 5,
                     "back in the queue")
    await expect(page.locator("#act-take")).to_be_visible()
    await page.locator("#act-take").click()
    await expect(page.locator("#chat-owner")).to_have_text("Разговор ведёте вы.")
    await page.locator("#act-transfer").click()
    await page.locator("#transfer-to").select_option(f"tg:{PETR}")
    await page.get_by_role("button", name="Передать", exact=True).last.click()
    await expect(page.locator("#chat-owner")).to_have_text("Разговор ведёт Пётр.")
    conversation = await bot.conversation(CUSTOMER)
    assert conversation.owner == f"tg:{PETR}"
