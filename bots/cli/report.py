"""`supportbot report operators`: the team's figures over a period, as tables or CSV.

The same report as `GET /api/v1/reports/operators` (handoff/reports.py), in the team's time
zone (TIMEZONE) unless `--tz` says otherwise.
"""

from __future__ import annotations

import csv
import sys
import time
from pathlib import Path
from typing import Annotated

import redis.asyncio as aioredis
import typer
from rich.table import Table

from bots.cli.common import EXIT_DATA_ERROR, console, err_console, settings_or_exit
from bots.cli.inbox import with_redis
from bots.settings import Settings
from handoff.keys import Keys
from handoff.reports import (
    COLUMNS,
    NAMED_PERIODS,
    Report,
    ReportError,
    ReportPeriod,
    read_report,
    rows,
)

app = typer.Typer(help="Reports on the team: who answered what, how fast and how well.",
                  no_args_is_help=True)

_LABELS = {"taken": "taken", "closed": "closed", "returned": "to bot",
           "transferred": "transferred", "first_reaction_p50": "1st reaction p50",
           "first_reaction_p90": "p90", "response_p50": "response p50", "response_p90": "p90",
           "handle_p50": "handle p50", "handle_p90": "p90", "peak_parallel": "peak chats",
           "csat_avg": "CSAT", "ratings": "ratings", "comments": "comments"}


@app.command("operators")
def operators_command(
    period: Annotated[str | None, typer.Option(
        help=f"One of {', '.join(NAMED_PERIODS)} (default: today).")] = None,
    first: Annotated[str | None, typer.Option("--from", help="First day, YYYY-MM-DD.")] = None,
    last: Annotated[str | None, typer.Option("--to", help="Last day, YYYY-MM-DD.")] = None,
    tz: Annotated[str | None, typer.Option(help="Time zone (default: TIMEZONE).")] = None,
    csv_path: Annotated[Path | None, typer.Option(
        "--csv", help="Write the report as CSV to this file ('-': stdout).")] = None,
) -> None:
    """Per operator, channel and tag: conversations taken, closed, returned, transferred; first
    reaction, response and handle time; peak parallel chats; CSAT and comments."""
    zone = tz or settings_or_exit().timezone
    try:
        chosen = ReportPeriod.parse(period, first, last, zone, time.time())
    except (ReportError, ValueError) as exc:
        err_console.print(f"[red]period: {exc}[/red]")
        raise typer.Exit(EXIT_DATA_ERROR) from None

    async def work(_settings: Settings, client: aioredis.Redis, keys: Keys) -> Report:
        return await read_report(client, keys, chosen, time.time())

    report = with_redis(work)
    if csv_path is None:
        _print(report)
    elif str(csv_path) == "-":
        csv.writer(sys.stdout).writerows([list(COLUMNS), *rows(report)])
    else:
        with csv_path.open("w", encoding="utf-8", newline="") as file:
            csv.writer(file).writerows([list(COLUMNS), *rows(report)])
        console.print(f"written to {csv_path}", highlight=False)


def _print(report: Report) -> None:
    shown = [c for c in COLUMNS if c in _LABELS]
    index = {c: i for i, c in enumerate(COLUMNS)}
    table = Table("", *(_LABELS[c] for c in shown), title=f"team, {report.period.label}")
    for row in rows(report):
        name = "team" if row[0] == "team" else f"{row[0]} {row[1]}"
        table.add_row(name, *(_seconds(c, row[index[c]]) for c in shown))
    console.print(table)
    if report.comments:
        comments = Table("operator", "conversation", "score", "comment", title="comments")
        for comment in report.comments[:20]:
            comments.add_row(comment.op, comment.conv, str(comment.score or ""), comment.text)
        console.print(comments)
    console.print("durations: p50/p90 from histograms (docs/reports.md); — means none measured",
                  style="dim")


def _seconds(column: str, value: str) -> str:
    if not value:
        return "—"
    if column.endswith(("_p50", "_p90")):
        seconds = float(value)
        return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"
    return value
