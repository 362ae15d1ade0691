"""The local demo end to end, as a newcomer walks it after `make run` with no tokens: the real
product started as a subprocess (`supportbot run`: no tokens, no REDIS_URL, so the embedded
Redis), the two addresses it prints opened in a headless Chromium. In the shop the visitor asks
the bot and asks for a person; in the console (the printed one-time link, the demo operator
signed in) the conversation arrives live, is taken, answered and closed; the visitor's answer
reaches the console live; the visitor rates 5 and the supervisors' page shows it in today's
CSAT. The console is also checked at phone width. Ctrl+C (SIGINT) then stops the demo cleanly.

Screenshots of the key moments: test-artifacts/screenshots/demo-*.png.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.async_api import Locator, Page, expect

from handoff.embedded_redis import free_port
from tests.browser_harness import Pages, no_horizontal_overflow, screenshot
from tests.test_cli_and_shell import CLI, cli_env
from tests.test_web_widget_browser import ASK_NUMBER, Chat

WAIT = 15_000  # ms, every wait on the product: generous, bounded
QUEUED = re.compile(r"Вы 1-й в очереди")
REPLY = "Здравствуйте! Сейчас посмотрю заказ."
ANSWER = "Заказ 1234567, оформлял вчера."
THANKS = re.compile("Спасибо за оценку")


@dataclass
class Demo:
    """`supportbot run` with no tokens, and what it printed."""

    process: asyncio.subprocess.Process
    base: str = ""
    shop: str = ""
    console: str = ""
    operator: str = ""  # the demo operator's name, as printed
    printed: str = ""
    drains: list[asyncio.Task[None]] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)

    async def stop(self) -> int:
        """Ctrl+C, as the newcomer stops it."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGINT)
        try:
            return await asyncio.wait_for(self.process.wait(), 30)
        finally:
            for task in self.drains:
                with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                    await asyncio.wait_for(task, 5)


async def _drain(stream: asyncio.StreamReader, into: list[str]) -> None:
    """Keep reading the process's output, so that a full pipe never blocks it."""
    while line := await stream.readline():
        into.append(line.decode(errors="replace"))


@pytest.fixture
async def demo(tmp_path: Path) -> AsyncIterator[Demo]:
    """Started the way tests/test_cli_and_shell.py::test_run_without_a_token_starts_the_web_demo
    starts it; the URLs read from what it prints. Stopped here if the test did not stop it."""
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        *CLI, "run", env=cli_env(tmp_path, COLUMNS="200", HTTP_PORT=str(port)), cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    running = Demo(process)
    running.drains.append(asyncio.create_task(_drain(process.stderr, running.stderr)))
    try:
        while "Ctrl+C" not in running.printed:
            line = await asyncio.wait_for(process.stdout.readline(), 120)
            assert line, f"exited early: {running.printed}{''.join(running.stderr)}"
            running.printed += line.decode()
        shop = re.search(r"(http://127\.0\.0\.1:\d+/shop)", running.printed)
        console = re.search(r"(http://127\.0\.0\.1:\d+/console/link/\S+)", running.printed)
        name = re.search(r"signed in as ([^;\n]+);", running.printed)
        assert "embedded Redis" in running.printed and shop and console and name, running.printed
        running.base = f"http://127.0.0.1:{port}"
        running.shop, running.console = shop.group(1), console.group(1)
        running.operator = name.group(1).strip()
        running.drains.append(asyncio.create_task(_drain(process.stdout, [])))
        yield running
    finally:
        if process.returncode is None:
            try:
                await running.stop()
            except asyncio.TimeoutError:
                process.kill()
                await process.wait()


@pytest.fixture
def browser(demo: Demo, pages: Pages) -> Pages:
    """Pages set up after the demo, so closed before the fixture stops it."""
    return pages


async def opened(browser: Pages, viewport: str) -> Page:
    """A page that records its script errors (page.errors)."""
    page = await browser.open(viewport)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.errors = errors  # type: ignore[attr-defined]
    return page


def figure(page: Page, label: str) -> Locator:
    """The value of one of the supervisors' page's team figures («Команда за период»)."""
    term = page.locator("dt").filter(has_text=re.compile(f"^{re.escape(label)}$"))
    return page.locator("#totals div").filter(has=term).locator("dd")


async def test_the_local_demo_from_the_shop_to_the_console_and_the_rating(
    demo: Demo, browser: Pages
) -> None:
    # The shop: the visitor asks the bot.
    shop = await opened(browser, "desktop")
    chat = Chat(shop)
    await shop.goto(demo.shop)
    await chat.open()
    await chat.say("где мой заказ")
    await expect(chat.bubbles("visitor")).to_have_text(["где мой заказ"], timeout=WAIT)
    await expect(chat.bot()).to_have_text([ASK_NUMBER], timeout=WAIT)  # the order number?

    # The console, by the printed one-time link: the demo operator is signed in, live.
    console = await opened(browser, "desktop")
    await console.goto(demo.console)
    await expect(console.locator("#me")).to_contain_text(demo.operator, timeout=WAIT)
    await expect(console.locator("#live")).to_have_class(re.compile(r"\bon\b"), timeout=WAIT)
    await expect(console.locator("#list-empty")).to_have_text("Очередь пуста.")
    await expect(console.locator("#supervisor-link")).to_be_visible()

    # The visitor asks for a person: their place in the queue.
    await chat.say("позовите оператора")
    await expect(chat.bot().filter(has_text=QUEUED)).to_have_count(1, timeout=WAIT)
    await expect(chat.root.locator(".msg.pending")).to_have_count(0, timeout=WAIT)
    await no_horizontal_overflow(shop)
    await screenshot(shop, "demo-1-widget-answered")

    # The conversation arrives in the console's queue without a reload; taken.
    conv = f"web:{await chat.stored('visitor')}"
    await expect(console.locator("#queue-count")).to_have_text("1", timeout=WAIT)
    item = console.locator(f'#queue-list .conv-item[data-conv="{conv}"] button')
    await expect(item).to_be_visible(timeout=WAIT)
    await expect(item).to_contain_text("Сайт")
    await item.click()
    transcript = console.locator("#transcript")
    await expect(transcript.locator(".msg-in")).to_contain_text(
        ["где мой заказ", "позовите оператора"], timeout=WAIT)
    await expect(transcript.locator(".msg-bot").first).to_contain_text(ASK_NUMBER)
    await console.locator("#act-take").click()
    await expect(console.locator("#chat-owner")).to_have_text("Разговор ведёте вы.",
                                                              timeout=WAIT)
    await expect(console.locator("#mine-count")).to_have_text("1", timeout=WAIT)
    await expect(console.locator("#queue-count")).to_have_text("0", timeout=WAIT)
    await expect(console.locator(f'#mine-list .conv-item[data-conv="{conv}"]')).to_be_visible()
    await no_horizontal_overflow(console)
    await screenshot(console, "demo-2-console-taken")
    await expect(chat.bot().last).to_contain_text(  # the widget is told a person joined
        "К разговору подключился оператор", timeout=WAIT)

    # The operator answers from the console: the widget shows it under the operator's name.
    await console.locator("#text").fill(REPLY)
    await console.locator("#send").click()
    await expect(transcript.locator(".msg-operator").last).to_contain_text(REPLY, timeout=WAIT)
    await expect(console.locator("#text")).to_have_value("")
    operator = chat.root.locator(".msg.operator")
    await expect(operator).to_have_count(1, timeout=WAIT)
    await expect(operator.locator(".who")).to_have_text(demo.operator)
    await expect(operator.locator(".bubble")).to_have_text(REPLY)
    await screenshot(shop, "demo-3-widget-operator-reply")

    # The same console at phone width (the same session, in a phone-sized browser).
    phone = await opened(browser, "phone")
    await phone.context.add_cookies(await console.context.cookies())  # type: ignore[arg-type]
    await phone.goto(demo.base + "/console")
    await expect(phone.locator("#me")).to_contain_text(demo.operator, timeout=WAIT)
    await expect(phone.locator("#live")).to_have_class(re.compile(r"\bon\b"), timeout=WAIT)
    await phone.locator("#tab-mine").click()
    await expect(phone.locator("#mine-count")).to_have_text("1", timeout=WAIT)
    await no_horizontal_overflow(phone)
    await phone.locator(f'#mine-list .conv-item[data-conv="{conv}"] button').click()
    phone_transcript = phone.locator("#transcript")
    await expect(phone_transcript.locator(".msg-operator").last).to_contain_text(
        REPLY, timeout=WAIT)
    await expect(phone.locator("#chat-owner")).to_have_text("Разговор ведёте вы.")
    await expect(phone.locator("#list-empty")).to_be_hidden()

    # The visitor answers: in the console's transcript live (on both pages).
    await chat.say(ANSWER)
    await expect(transcript.locator(".msg-in").last).to_contain_text(ANSWER, timeout=WAIT)
    await expect(phone_transcript.locator(".msg-in").last).to_contain_text(ANSWER,
                                                                          timeout=WAIT)
    await expect(transcript.locator(".msg-in")).to_contain_text(
        ["где мой заказ", "позовите оператора", ANSWER])
    await expect(phone.locator("#text")).to_be_in_viewport()
    await expect(phone.locator("#send")).to_be_in_viewport()
    await no_horizontal_overflow(phone)
    await screenshot(phone, "demo-4-console-phone-chat")

    # Closed in the console: the widget asks for a rating 1-5; 5; thanks.
    await console.locator("#act-close").click()
    await console.locator("#reason-input").fill("решено")
    await console.locator("#reason-ok").click()
    await expect(console.locator("#toast")).to_contain_text("Разговор закрыт", timeout=WAIT)
    await expect(console.locator("#mine-count")).to_have_text("0", timeout=WAIT)
    await expect(console.locator("#chat-owner")).to_have_text("", timeout=WAIT)
    rating = chat.bot().last.locator("xpath=..").locator(".choice")
    await expect(rating).to_have_text(["1", "2", "3", "4", "5"], timeout=WAIT)
    await expect(chat.bot().last).to_contain_text("Оцените")
    before = await chat.bot().count()
    await chat.root.get_by_role("button", name="5", exact=True).click()
    await expect(chat.bot()).to_have_count(before + 1, timeout=WAIT)
    await expect(chat.bot().last).to_contain_text(THANKS)
    await expect(chat.root.locator(".choice.chosen")).to_have_text("5")
    await no_horizontal_overflow(shop)
    await screenshot(shop, "demo-5-widget-rated")

    # The supervisors' page (the demo operator is a supervisor): today's CSAT is the 5.
    await console.locator("#supervisor-link").click()
    await expect(console).to_have_url(demo.base + "/console/supervisor", timeout=WAIT)
    await expect(console.locator("#period-label")).not_to_be_empty(timeout=WAIT)
    await expect(console.locator('.periods button[data-period="today"]')).to_have_attribute(
        "aria-pressed", "true")
    await expect(figure(console, "CSAT")).to_have_text("5.00", timeout=WAIT)
    await expect(figure(console, "Оценок")).to_have_text("1")
    await expect(figure(console, "Взято")).to_have_text("1")
    await expect(figure(console, "Закрыто")).to_have_text("1")
    row = console.locator("#operators tr")
    await expect(row).to_have_count(1)
    await expect(row.locator("th")).to_have_text(demo.operator)
    await expect(row.locator("td").nth(11)).to_have_text("5.00")  # CSAT
    await expect(row.locator("td").nth(12)).to_have_text("1")  # ratings
    await expect(row.locator(".dist")).to_have_attribute("title", "1: 0, 2: 0, 3: 0, 4: 0, 5: 1")
    for chart in ("#chart-volume", "#chart-reaction", "#chart-csat"):
        await expect(console.locator(f"{chart} .uplot")).to_be_visible()
    await no_horizontal_overflow(console)
    await screenshot(console, "demo-6-supervisor")

    for page in (shop, console, phone):
        assert page.errors == [], page.errors  # type: ignore[attr-defined]

    # Ctrl+C: the demo stops cleanly, its pages still open.
    assert await demo.stop() == 0, "".join(demo.stderr)[-4000:]
