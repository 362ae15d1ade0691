"""`supportbot journal`, `records` and `deadletters`: what happened, and what failed.

The journal lists transitions newest first, filtered by operator, conversation, action and time;
the dead letters are inbound events the worker gave up on, which can be sent back to be
processed again once the cause is fixed (handoff/audit.py).
"""

from __future__ import annotations

import csv
import json
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import redis.asyncio as aioredis
import typer
from rich.table import Table

from bots.cli.common import EXIT_DATA_ERROR, console, err_console
from bots.cli.inbox import with_redis
from bots.settings import Settings
from handoff.audit import (
    COLUMNS,
    LIMIT_MAX,
    DeadLetter,
    DeadLetters,
    JournalEntry,
    JournalQuery,
    moments,
    read_journal,
)
from handoff.conversations import ConversationStore, Limits
from handoff.keys import Keys
from handoff.records import COLUMNS as RECORD_COLUMNS
from handoff.records import LIMIT_MAX as RECORDS_MAX
from handoff.records import Record, RecordQuery, Records
from handoff.scripts import Scripts

letters_app = typer.Typer(help="Inbound events the bot gave up on: list them, send them back.",
                          no_args_is_help=True)

Moment = Annotated[str | None, typer.Option(
    help="Epoch seconds, YYYY-MM-DD or an ISO time (without an offset: TIMEZONE).")]


def journal_command(
    operator: Annotated[str | None, typer.Option(help="Actor, owner or transfer target.")] = None,
    conversation: Annotated[str | None, typer.Option(help="e.g. tg:42")] = None,
    action: Annotated[str | None, typer.Option(help="claim, reply, close, transfer, …")] = None,
    since: Moment = None,
    until: Moment = None,
    limit: Annotated[int, typer.Option(min=1, max=LIMIT_MAX)] = 100,
    csv_path: Annotated[Path | None, typer.Option(
        "--csv", help="Write the entries as CSV to this file ('-': stdout).")] = None,
) -> None:
    """Transitions newest first: who did what to which conversation, and when."""

    async def work(settings: Settings, client: aioredis.Redis, keys: Keys
                   ) -> tuple[str, list[JournalEntry]]:
        try:
            between = moments(since, until, settings.timezone)
            query = JournalQuery(operator=operator, conversation=conversation, action=action,
                                 limit=limit, **between)
        except ValueError as exc:
            err_console.print(f"[red]{exc}[/red]")
            raise typer.Exit(EXIT_DATA_ERROR) from None
        return settings.timezone, await read_journal(client, keys, query)

    zone, entries = with_redis(work)
    if csv_path is not None:
        _write_csv([list(COLUMNS), *(entry.row() for entry in entries)], csv_path)
        return
    shown = Table("time", "conversation", "action", "actor", "owner", "from → to", "reason",
                  title=f"journal, newest first ({zone})")
    for entry in entries:
        shown.add_row(_when(entry.at, zone), entry.conversation, entry.action, entry.actor,
                      entry.owner, f"{entry.from_state} → {entry.to_state}", entry.reason)
    console.print(shown)
    if not entries:
        console.print("nothing matches", style="dim")


def _letters(settings: Settings, client: aioredis.Redis, keys: Keys) -> DeadLetters:
    return DeadLetters(client, keys, Scripts(client), settings.ingest_shards,
                       settings.stream_maxlen)


@letters_app.command("list")
def list_command(limit: Annotated[int, typer.Option(min=1, max=1000)] = 100) -> None:
    """The dead letters, newest first, with the error that stopped each."""

    async def work(settings: Settings, client: aioredis.Redis, keys: Keys) -> list[DeadLetter]:
        return await _letters(settings, client, keys).list(limit)

    letters = with_redis(work)
    shown = Table("id", "conversation", "stream entry", "error", title="dead letters")
    for letter in letters:
        shown.add_row(letter.id, letter.conversation, letter.entry, letter.error)
    console.print(shown)
    if not letters:
        console.print("none", style="dim")


@letters_app.command("requeue")
def requeue_command(
    ids: Annotated[list[str], typer.Argument(help="Dead letter ids, from `deadletters list`.")],
    by: Annotated[str, typer.Option(help="Who sends them back (journaled).")] = "cli",
) -> None:
    """Send dead letters back to be processed again (each at most once)."""

    async def work(settings: Settings, client: aioredis.Redis, keys: Keys) -> list[str | None]:
        letters = _letters(settings, client, keys)
        return [await letters.requeue(letter, by, time.time()) for letter in ids]

    failed = False
    for letter, entry in zip(ids, with_redis(work), strict=True):
        if entry is None:
            err_console.print(f"[red]{letter}: no such dead letter, or its event is "
                              f"unreadable[/red]")
            failed = True
        else:
            console.print(f"{letter}: requeued as {entry}", highlight=False)
    if failed:
        raise typer.Exit(EXIT_DATA_ERROR)


records_app = typer.Typer(help="Finished handoffs: search them, export one with its transcript.",
                          no_args_is_help=True)


@records_app.command("search")
def records_search_command(
    customer: Annotated[str | None, typer.Option(help="A conversation id or a name.")] = None,
    operator: Annotated[str | None, typer.Option(help="The owner or who closed it.")] = None,
    tag: Annotated[str | None, typer.Option()] = None,
    rating: Annotated[int | None, typer.Option(min=1, max=5)] = None,
    text: Annotated[str | None, typer.Option(help="Words said during the handoff.")] = None,
    since: Moment = None,
    until: Moment = None,
    limit: Annotated[int, typer.Option(min=1, max=RECORDS_MAX)] = 50,
    csv_path: Annotated[Path | None, typer.Option(
        "--csv", help="Write the records as CSV to this file ('-': stdout).")] = None,
) -> None:
    """Finished handoffs newest first: customer, operators, tags, times, rating."""

    async def work(settings: Settings, client: aioredis.Redis, keys: Keys
                   ) -> tuple[str, list[Record]]:
        try:
            between = moments(since, until, settings.timezone)
            query = RecordQuery(customer=customer, operator=operator, tag=tag, rating=rating,
                                text=text, limit=limit, **between)
        except ValueError as exc:
            err_console.print(f"[red]{exc}[/red]")
            raise typer.Exit(EXIT_DATA_ERROR) from None
        return settings.timezone, await _records(client, keys).search(query)

    zone, found = with_redis(work)
    if csv_path is not None:
        _write_csv([list(RECORD_COLUMNS), *(record.row() for record in found)], csv_path)
        return
    shown = Table("closed", "conversation", "customer", "outcome", "operator", "tags",
                  "rating", "comment", title=f"finished handoffs, newest first ({zone})")
    for record in found:
        shown.add_row(_when(record.closed, zone), record.conversation, record.customer,
                      record.outcome, record.owner or record.closed_by, ",".join(record.tags),
                      str(record.rating or ""), record.comment)
    console.print(shown)
    console.print("export one: supportbot records export CONVERSATION CLOSED "
                  "(CLOSED: the close time in --csv, epoch seconds)" if found else "nothing "
                  "matches", style="dim")


@records_app.command("export")
def records_export_command(
    conversation: Annotated[str, typer.Argument(help="e.g. tg:42")],
    closed: Annotated[float, typer.Argument(help="The close time (epoch seconds, from --csv).")],
    out: Annotated[Path | None, typer.Option(help="A JSON file (default: stdout).")] = None,
) -> None:
    """One finished handoff with everything said during it, as JSON."""

    async def work(_settings: Settings, client: aioredis.Redis, keys: Keys
                   ) -> dict[str, Any] | None:
        records = _records(client, keys)
        record = await records.record(conversation, closed)
        return None if record is None else await records.export(record)

    exported = with_redis(work)
    if exported is None:
        err_console.print(f"[red]{conversation}: no handoff closed at {closed}[/red]")
        raise typer.Exit(EXIT_DATA_ERROR)
    text = json.dumps(exported, ensure_ascii=False, indent=2)
    if out is None:
        sys.stdout.write(text + "\n")
    else:
        out.write_text(text + "\n", encoding="utf-8")
        console.print(f"written to {out}", highlight=False)


def _records(client: aioredis.Redis, keys: Keys) -> Records:
    return Records(client, keys, ConversationStore(client, keys, Scripts(client), Limits()))


def _write_csv(table: list[list[str]], path: Path) -> None:
    if str(path) == "-":
        csv.writer(sys.stdout).writerows(table)
        return
    with path.open("w", encoding="utf-8", newline="") as file:
        csv.writer(file).writerows(table)
    console.print(f"written to {path}", highlight=False)


def _when(moment: float, zone: str) -> str:
    return datetime.fromtimestamp(moment, ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M:%S")
