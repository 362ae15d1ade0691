"""`supportbot notices`: proactive notices to a segment of customers (docs/notices.md).

`preview` shows the count, the first recipients and the text as customers will see it; `send`
creates the notice (its recipients fixed at that moment) and sends it with a progress bar;
`resume` continues one a crash or Ctrl-C interrupted (nobody gets it twice); `list` and `show`
give the counts. The bot's senders deliver at each platform's pace, so they must be running.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from pathlib import Path
from typing import Annotated

import redis.asyncio as aioredis
import typer
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from bots.cli.common import EXIT_DATA_ERROR, console, err_console
from bots.cli.inbox import with_redis
from bots.settings import Settings
from handoff.keys import Keys
from handoff.notice_run import NoticeRun, RunLimits
from handoff.notices import OUTCOMES, Notice, NoticeError, Notices, Preview, Segment, segment_of
from handoff.scripts import Scripts

app = typer.Typer(help="Notices to a segment of customers: preview, send, resume, list.",
                  no_args_is_help=True)

Ids = Annotated[list[str] | None, typer.Option(
    "--ids", help="Conversation ids (tg:42,vk:7001); repeat or separate with commas.")]
Channel = Annotated[str, typer.Option(help="Only customers on this channel: tg, vk or web.")]
Since = Annotated[str, typer.Option(
    help="Only customers who wrote since: 7d, 24h, 90m, a date or an ISO time.")]
Tag = Annotated[str, typer.Option(help="Only conversations with this tag.")]
Text = Annotated[str, typer.Option(help="The notice's text.")]
TextFile = Annotated[Path | None, typer.Option(help="Read the text from this file instead.")]
SHOWN = 10  # recipients listed by a preview


def _text(text: str, text_file: Path | None) -> str:
    if text_file is not None:
        return text_file.read_text(encoding="utf-8")
    if not text.strip():
        err_console.print("[red]Give the notice's text: --text or --text-file.[/red]")
        raise typer.Exit(EXIT_DATA_ERROR)
    return text


def _segment(settings: Settings, ids: list[str] | None, channel: str, since: str, tag: str
             ) -> Segment:
    try:
        return segment_of(ids or (), channel, since, tag, settings.timezone)
    except ValueError as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(EXIT_DATA_ERROR) from None


def _refused(exc: NoticeError) -> typer.Exit:
    err_console.print(f"[red]{exc}[/red]")
    return typer.Exit(EXIT_DATA_ERROR)


def _show_preview(segment: Segment, preview: Preview) -> None:
    console.print(f"Segment: {segment.describe()}")
    console.print(f"[bold]{preview.count}[/bold] recipient(s); now skipped: "
                  f"{preview.opted_out} opted out (/stop), {preview.unreachable} unreachable")
    if preview.unknown:
        console.print(f"[yellow]No conversation: {', '.join(preview.unknown)}[/yellow]")
    if preview.recipients:
        more = preview.count - SHOWN
        console.print("First: " + ", ".join(preview.recipients[:SHOWN])
                      + (f" … and {more} more" if more > 0 else ""))
    console.print(Panel(preview.text, title="as customers will see it", expand=False))


@app.command("preview")
def preview_command(ids: Ids = None, channel: Channel = "", since: Since = "", tag: Tag = "",
                    text: Text = "", text_file: TextFile = None) -> None:
    """How many customers a notice would reach, the first of them, and its text."""
    body = _text(text, text_file)

    async def work(settings: Settings, client: aioredis.Redis, keys: Keys) -> None:
        segment = _segment(settings, ids, channel, since, tag)
        try:
            preview = await Notices(client, keys, language=settings.language).preview(
                segment, body)
        except NoticeError as exc:
            raise _refused(exc) from None
        _show_preview(segment, preview)

    with_redis(work)


@app.command("send")
def send_command(ids: Ids = None, channel: Channel = "", since: Since = "", tag: Tag = "",
                 text: Text = "", text_file: TextFile = None,
                 by: Annotated[str, typer.Option(help="Who sends it (the journal's actor).")]
                 = "cli",
                 yes: Annotated[bool, typer.Option("--yes", help="Do not ask.")] = False) -> None:
    """Create the notice (recipients fixed now) and send it, with a progress bar."""
    body = _text(text, text_file)

    async def work(settings: Settings, client: aioredis.Redis, keys: Keys) -> None:
        segment = _segment(settings, ids, channel, since, tag)
        notices = Notices(client, keys, language=settings.language)
        try:
            preview = await notices.preview(segment, body)
            _show_preview(segment, preview)
            if not yes and not await asyncio.to_thread(
                    typer.confirm, f"Send it to {preview.count} customer(s)?"):
                raise typer.Exit(1)
            notice = await notices.create(segment, body, by)
        except NoticeError as exc:
            raise _refused(exc) from None
        console.print(f"Notice [bold]{notice.id}[/bold] created; if this stops, "
                      f"`supportbot notices resume {notice.id}` continues it.")
        await _run(client, keys, notices, notice.id)

    with_redis(work)


@app.command("resume")
def resume_command(notice_id: Annotated[str, typer.Argument(help="The notice's id.")]) -> None:
    """Continue a notice that was interrupted: nobody gets it twice."""

    async def work(settings: Settings, client: aioredis.Redis, keys: Keys) -> None:
        await _run(client, keys, Notices(client, keys, language=settings.language), notice_id)

    with_redis(work)


@app.command("cancel")
def cancel_command(notice_id: Annotated[str, typer.Argument(help="The notice's id.")]) -> None:
    """Stop a notice: recipients not reached yet never get it (a running send stops)."""

    async def work(_settings: Settings, client: aioredis.Redis, keys: Keys) -> None:
        notices = Notices(client, keys)
        if await notices.get(notice_id) is None:
            raise _refused(NoticeError(f"no notice {notice_id}"))
        await notices.set_status(notice_id, "cancelled")
        console.print(f"Notice {notice_id} cancelled.")

    with_redis(work)


@app.command("reindex")
def reindex_command() -> None:
    """Once after the upgrade that added notices: index the customers who wrote before it
    (a scan of the conversations' keys; the index is kept up to date from then on)."""

    async def work(_settings: Settings, client: aioredis.Redis, keys: Keys) -> int:
        return await Notices(client, keys).reindex()

    console.print(f"{with_redis(work)} customer(s) added to the index.")


@app.command("list")
def list_command(limit: Annotated[int, typer.Option(min=1, max=1000)] = 20) -> None:
    """The latest notices with their counts."""

    async def work(_settings: Settings, client: aioredis.Redis, keys: Keys) -> list[Notice]:
        return await Notices(client, keys).latest(limit)

    found = with_redis(work)
    if not found:
        console.print("No notices yet.")
        return
    table = Table("id", "created", "by", "status", "total", *OUTCOMES, "segment",
                  title="notices, newest first")
    for notice in found:
        table.add_row(notice.id, _when(notice.created_at), notice.created_by, notice.status,
                      str(notice.total), *(str(notice.counts.get(o, 0)) for o in OUTCOMES),
                      notice.segment.describe())
    console.print(table)


@app.command("show")
def show_command(notice_id: Annotated[str, typer.Argument(help="The notice's id.")]) -> None:
    """One notice: its text, segment and counts, with the deliveries the platforms refused."""

    async def work(_settings: Settings, client: aioredis.Redis, keys: Keys
                   ) -> tuple[Notice | None, list[str]]:
        notices = Notices(client, keys)
        return await notices.get(notice_id), await notices.undelivered(notice_id)

    notice, refused = with_redis(work)
    if notice is None:
        raise _refused(NoticeError(f"no notice {notice_id}"))
    console.print(Panel(notice.text, title=f"notice {notice.id}", expand=False))
    console.print(f"Segment: {notice.segment.describe()}; created {_when(notice.created_at)} "
                  f"by {notice.created_by}; status {notice.status}")
    console.print(_summary(notice, len(refused)))
    if refused:
        console.print("Refused by the platform: " + ", ".join(refused[:50]))


def _summary(notice: Notice, refused: int) -> str:
    c = notice.counts
    return (f"total {notice.total}: sent {c.get('sent', 0)} (of which the platform refused "
            f"{refused}), skipped: opted out {c.get('opted_out', 0)}, unreachable "
            f"{c.get('unreachable', 0)}, banned {c.get('banned', 0)}, gone "
            f"{c.get('missing', 0)}; not decided yet {notice.total - notice.decided}")


async def _run(client: aioredis.Redis, keys: Keys, notices: Notices, notice_id: str) -> None:
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=err_console) as bar:
        task = bar.add_task(f"notice {notice_id}", total=None)

        def progress(notice: Notice) -> None:
            bar.update(task, total=notice.total, completed=notice.decided,
                       description=f"notice {notice_id}: {notice.counts.get('sent', 0)} sent")

        stop = asyncio.Event()  # Ctrl-C or SIGTERM: stop between batches, resumable
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):  # not main thread
                loop.add_signal_handler(sig, stop.set)
        try:
            final = await NoticeRun(client, keys, Scripts(client), notices, RunLimits(),
                                    on_progress=progress).run(notice_id, stop)
        except NoticeError as exc:
            raise _refused(exc) from None
    if stop.is_set():
        console.print(f"Stopped; `supportbot notices resume {notice_id}` continues it.")
    console.print(f"Notice {notice_id}: {final.status}. "
                  + _summary(final, len(await notices.undelivered(notice_id))))
    console.print("Queued for the senders, which deliver at each platform's pace; "
                  f"`supportbot notices show {notice_id}` for what the platforms refused.")


def _when(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(at))
