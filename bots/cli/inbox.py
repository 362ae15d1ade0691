"""`supportbot inbox`: what the bot did not understand, grouped, exported and labelled.

`list` numbers the groups of similar messages (largest first); `assign INTENT --group N` (or
`--ids`) appends the group's messages to the intent's YAML file and marks them done. Group
numbers come from the same window and order as the listing, so they hold until new messages
arrive; `assign` shows what it will teach and asks before writing (`--yes` skips the question).
`replies`, `totemplate` and `toflow` turn an operator's reply in a conversation into a desk
template or a flow answer draft (see docs/trainers.md).
"""

from __future__ import annotations

import asyncio
import csv
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, TypeVar

import redis.asyncio as aioredis
import typer
from rich.progress import Progress, SpinnerColumn, TextColumn
from rich.table import Table

from bots.cli.common import EXIT_DATA_ERROR, console, err_console, settings_or_exit
from bots.desk.templates import TemplateError, Templates
from bots.redis_connect import redis_client
from bots.settings import Settings
from bots.trainer.inbox import InboxGroup, grouped, label
from bots.trainer.knowledge import FlowDrafts, OperatorReply, operator_replies
from handoff.conversations import ConversationStore, Limits
from handoff.inbox import READ_MAX, Inbox, is_entry_id
from handoff.keys import Keys
from handoff.scripts import Scripts
from nlu.data import DataError

app = typer.Typer(
    help="Messages the bot did not understand: grouped, exported, taught to intents.",
    no_args_is_help=True,
)
T = TypeVar("T")

DaysOption = Annotated[int, typer.Option(min=1, max=366, help="Look at the last N days.")]
LimitOption = Annotated[int, typer.Option(min=1, max=READ_MAX, help="Newest entries read.")]


@asynccontextmanager
async def open_redis(settings: Settings) -> AsyncIterator[aioredis.Redis]:
    """The bot's own Redis (bots/redis_connect.py): REDIS_SENTINELS, REDIS_URL, or the embedded
    server of the data directory.

    Attaching reuses the server of a running bot, so a command sees its data and a reload
    request reaches it; with no bot running, the server started here stops again at the end."""
    client, embedded, _where = redis_client(settings)
    try:
        yield client
    finally:
        await client.aclose()  # first: stop() counts any connection still open as another user
        if embedded is not None:
            embedded.stop()


def with_redis(work: Callable[[Settings, aioredis.Redis, Keys], Awaitable[T]]) -> T:
    settings = settings_or_exit()

    async def run() -> T:
        async with open_redis(settings) as client:
            return await work(settings, client, Keys(settings.redis_prefix))

    return asyncio.run(run())


async def _groups(client: aioredis.Redis, keys: Keys, days: int, limit: int,
                  ) -> list[InboxGroup]:
    since = time.time() - days * 86400
    entries = await Inbox(client, keys).entries(since=since, limit=limit)
    columns = (SpinnerColumn(), TextColumn("{task.description}"))
    with Progress(*columns, console=err_console, transient=True) as bar:
        bar.add_task(f"grouping {len(entries)} messages", total=None)
        return await asyncio.to_thread(grouped, entries)


@app.command("list")
def list_command(
    days: DaysOption = 30, limit: LimitOption = 2000,
    show: Annotated[int, typer.Option(help="Show the members of group N.")] = 0,
) -> None:
    """Open messages grouped by similarity, with counts and the NLU's best guesses."""
    groups = with_redis(lambda _s, client, keys: _groups(client, keys, days, limit))
    if not groups:
        console.print("The inbox is empty: the bot understood everything in the period.")
        return
    if show:
        _print_members(_group(groups, show))
        return
    table = Table("#", "messages", "convs", "example", "NLU guessed",
                  title=f"inbox: {sum(len(g.entries) for g in groups)} open messages, "
                        f"last {days} days")
    for group in groups:
        guesses = ", ".join(f"{name} ×{n}" for name, n in group.guesses)
        table.add_row(str(group.number), str(len(group.entries)), str(group.conversations),
                      group.text, guesses or "—")
    console.print(table)
    console.print("Members: supportbot inbox list --show N · teach: supportbot inbox assign "
                  "INTENT --group N", highlight=False)


@app.command()
def export(
    path: Annotated[Path, typer.Argument(help="CSV file to write.")],
    days: DaysOption = 30, limit: LimitOption = READ_MAX,
) -> None:
    """Every open message with its group, conversation, time, reason and guesses, as CSV."""
    groups = with_redis(lambda _s, client, keys: _groups(client, keys, days, limit))
    with path.open("w", encoding="utf-8", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["id", "group", "time_utc", "conversation", "text", "reason",
                         "guess_1", "confidence_1", "guesses"])
        rows = 0
        for group in groups:
            for entry in group.entries:
                top = entry.guesses[0] if entry.guesses else ("", 0.0)
                writer.writerow([
                    entry.id, group.number, _when(entry.at), entry.conv, entry.text, entry.miss,
                    top[0], f"{top[1]:.3f}" if top[0] else "",
                    "; ".join(f"{name} {score:.3f}" for name, score in entry.guesses),
                ])
                rows += 1
    console.print(f"{rows} messages in {len(groups)} groups written to {path}", highlight=False)


@app.command()
def assign(
    intent: Annotated[str, typer.Argument(help="The intent the messages are examples of.")],
    group: Annotated[int, typer.Option(help="Group number from `inbox list`.")] = 0,
    ids: Annotated[str, typer.Option(help="Comma-separated entry ids (from export).")] = "",
    new_intent: Annotated[bool, typer.Option(help="Start the intent if it is new.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
    days: DaysOption = 30, limit: LimitOption = 2000,
) -> None:
    """Append a group's (or some ids') messages to INTENT's YAML file; mark them done."""
    if bool(group) == bool(ids):
        err_console.print("[red]give either --group N or --ids[/red]")
        raise typer.Exit(EXIT_DATA_ERROR)

    async def work(settings: Settings, client: aioredis.Redis, keys: Keys) -> None:
        inbox = Inbox(client, keys)
        if group:
            entries = list(_group(await _groups(client, keys, days, limit), group).entries)
        else:
            wanted = [part.strip() for part in ids.split(",") if part.strip()]
            bad = [part for part in wanted if not is_entry_id(part)]
            if bad:
                err_console.print(f"[red]not inbox ids:[/red] {', '.join(bad)}")
                raise typer.Exit(EXIT_DATA_ERROR)
            entries = [entry for entry in await inbox.get(wanted) if not entry.done]
        if not entries:
            err_console.print("nothing open to assign")
            raise typer.Exit(EXIT_DATA_ERROR)
        _print_members(InboxGroup(group, tuple(entries)))
        if not yes and not typer.confirm(f"Teach these {len(entries)} as {intent}?"):
            raise typer.Exit(1)
        try:
            done = await label(inbox, settings.nlu_data_dir, entries, intent,
                               new_intent=new_intent)
        except DataError as exc:
            for problem in exc.problems:
                err_console.print(str(problem), highlight=False, markup=False)
            raise typer.Exit(EXIT_DATA_ERROR) from None
        console.print(f"{len(done.appended.added)} examples added to {done.appended.file}; "
                      f"{len(done.marked)} inbox entries done", highlight=False)
        for text, why in done.appended.skipped:
            console.print(f"skipped {text!r}: {why}", highlight=False)
        console.print("Apply: /reload in the desk, or SIGHUP to the bot.")

    with_redis(work)


@app.command()
def dismiss(
    ids: Annotated[str, typer.Option(help="Comma-separated entry ids.")] = "",
    group: Annotated[int, typer.Option(help="Group number from `inbox list`.")] = 0,
    days: DaysOption = 30, limit: LimitOption = 2000,
) -> None:
    """Mark messages done without teaching them (noise, spam, off-topic)."""

    async def work(_settings: Settings, client: aioredis.Redis, keys: Keys) -> int:
        if group:
            chosen = [e.id for e in _group(await _groups(client, keys, days, limit), group).entries]
        else:
            chosen = [part.strip() for part in ids.split(",") if is_entry_id(part.strip())]
        return await Inbox(client, keys).resolve(chosen, "dismissed")

    console.print(f"{with_redis(work)} entries dismissed")


# --- operators' replies -> knowledge ----------------------------------------------------
ConvArgument = Annotated[str, typer.Argument(help="Conversation id, e.g. tg:42.")]
NumberArgument = Annotated[int, typer.Argument(help="Reply number from `inbox replies`.")]


def _replies(conv: str) -> list[OperatorReply]:
    async def work(_settings: Settings, client: aioredis.Redis, keys: Keys
                   ) -> list[OperatorReply]:
        store = ConversationStore(client, keys, Scripts(client), Limits())
        return await operator_replies(store, conv)

    return with_redis(work)


@app.command()
def replies(conv: ConvArgument) -> None:
    """The operators' replies in a conversation, numbered for totemplate / toflow."""
    found = _replies(conv)
    table = Table("#", "time (UTC)", "operator", "text", title=f"operator replies in {conv}")
    for reply in found:
        table.add_row(str(reply.number), _when(reply.at), reply.operator, reply.text)
    console.print(table if found else f"No operator replies in {conv}.")


@app.command()
def totemplate(conv: ConvArgument, number: NumberArgument,
               name: Annotated[str, typer.Argument(help="Template name.")]) -> None:
    """Save an operator's reply as the desk template NAME (/t NAME)."""
    settings = settings_or_exit()
    reply = _reply(conv, number)
    try:
        replaced = Templates(settings.templates_path).add(name, reply.text)
    except TemplateError as exc:
        err_console.print(f"[red]not saved:[/red] {exc}")
        raise typer.Exit(EXIT_DATA_ERROR) from None
    console.print(f"template {name} {'replaced' if replaced else 'added'} in "
                  f"{settings.templates_path}", highlight=False)


@app.command()
def toflow(conv: ConvArgument, number: NumberArgument,
           intent: Annotated[str, typer.Argument(help="The intent the answer is for.")]) -> None:
    """Save an operator's reply as a flow answer draft for INTENT (FLOW_DRAFTS_FILE)."""
    settings = settings_or_exit()
    reply = _reply(conv, number)
    drafts = FlowDrafts(settings.flow_drafts_path)
    try:
        flow_id = drafts.add(intent, reply.text, f"{conv}, {reply.operator}")
    except ValueError as exc:
        err_console.print(f"[red]not saved:[/red] {exc}")
        raise typer.Exit(EXIT_DATA_ERROR) from None
    console.print(f"draft flow {flow_id} added to {drafts.path}", highlight=False)


def _reply(conv: str, number: int) -> OperatorReply:
    found = {reply.number: reply for reply in _replies(conv)}
    if number not in found:
        err_console.print(f"[red]no reply #{number} in {conv}[/red] (see: inbox replies {conv})")
        raise typer.Exit(EXIT_DATA_ERROR)
    return found[number]


def _group(groups: list[InboxGroup], number: int) -> InboxGroup:
    if not 1 <= number <= len(groups):
        err_console.print(f"[red]no group {number}[/red] (there are {len(groups)})")
        raise typer.Exit(EXIT_DATA_ERROR)
    return groups[number - 1]


def _print_members(group: InboxGroup) -> None:
    table = Table("id", "time (UTC)", "conversation", "text", "reason", "NLU guessed",
                  title=f"group {group.number}" if group.number else "selected")
    for entry in group.entries:
        guess = f"{entry.guesses[0][0]} {entry.guesses[0][1]:.2f}" if entry.guesses else "—"
        table.add_row(entry.id, _when(entry.at), entry.conv, entry.text, entry.miss, guess)
    console.print(table)


def _when(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M")

