"""`supportbot run` with no tokens: the whole loop on one machine, in a browser.

The same runtime as production (embedded Redis, the worker, flows, the handoff service, the
desk's scheduler) with the web channel only. It prints two addresses: a demo shop page with the
chat widget, and the operators' console with a demo operator already signed in, so a newcomer
can ask the bot, ask for a person, take the conversation, answer, close and see the rating.
"""

from __future__ import annotations

import asyncio

from rich.console import Console

from bots.cli.lifecycle import stop_event
from bots.settings import Settings

DEMO_OPERATOR = "web:demo"
DEMO_NAME = "Демо-оператор"
LINK_TTL = 24 * 3600.0  # the demo link outlives a lunch break


async def run_demo(settings: Settings, console: Console) -> None:
    from bots.runtime import Runtime
    from bots.web.console_auth import login_link

    runtime = await Runtime.open(settings, progress=lambda m: console.print(f"[dim]{m}[/dim]"))
    stop = stop_event(runtime)
    try:
        # The demo operator may see everything, supervisors' pages too.
        await runtime.access.grant(DEMO_OPERATOR, "supervisor", "demo")
        await runtime.handoff.set_status(DEMO_OPERATOR, "online", name=DEMO_NAME)
        link = await login_link(runtime.redis, runtime.keys, DEMO_OPERATOR, DEMO_NAME,
                                ttl=LINK_TTL)
        base = demo_base(settings)
        task = asyncio.create_task(runtime.run(stop, {"ingress", "worker", "sender"}))
        await _listening(settings, task)
        console.print(
            "[bold]No tokens set: the local demo is running.[/bold]\n"
            f"  the shop, with the chat widget:  [link]{base}/shop[/link]\n"
            f"  the operators' console:          [link]{base}{link}[/link]"
            f"  (signed in as {DEMO_NAME}; the link works once)\n"
            "Ask the bot in the shop, ask for a person, take the chat in the console, answer, "
            "close.\nThe terminal chat is `supportbot shell`. To connect Telegram or VK, see "
            "README.md. Ctrl+C stops.")
        await task
    finally:
        stop.set()
        await runtime.close()


async def _listening(settings: Settings, task: asyncio.Task[None]) -> None:
    """Until the HTTP server accepts connections: the addresses are printed only once they
    work (or the run's error surfaces)."""
    host = "127.0.0.1" if settings.http_host in ("0.0.0.0", "::", "") else settings.http_host
    while not task.done():
        try:
            _reader, writer = await asyncio.open_connection(host, settings.http_port)
        except OSError:
            await asyncio.sleep(0.1)
            continue
        writer.close()
        return
    task.result()


def demo_base(settings: Settings) -> str:
    host = settings.http_host
    if host in ("0.0.0.0", "::", ""):  # listening everywhere: this machine is reachable here
        host = "127.0.0.1"
    return f"http://{host}:{settings.http_port}"
