"""The team's report as the desk shows it (`/stats [period]`): one paragraph per operator."""

from __future__ import annotations

from collections.abc import Sequence

from handoff.operators import Operator
from handoff.reports import Durations, Figures, Report

_STATUS = {"online": "на линии", "paused": "пауза", "offline": "не в сети"}


def stats_text(report: Report, operators: Sequence[Operator], queue_length: int) -> str:
    team = report.team
    lines = [f"📊 {report.period.label}",
             f"В очереди: {queue_length}. Взято {team.counts['taken']}, закрыто "
             f"{team.counts['closed']}, возвращено боту {team.counts['returned']}, передано "
             f"{team.counts['transferred']}; {_rating(team)}"]
    known = {op.id: op for op in operators}
    for op_id in sorted(set(known) | set(report.operators)):
        operator = known.get(op_id)
        name = (operator.name or op_id) if operator else op_id
        now = (f"{_STATUS.get(operator.status, operator.status)}, в работе "
               f"{operator.load}/{operator.capacity}") if operator else "нет статуса"
        figures = report.operators.get(op_id, Figures())
        counts = figures.counts
        lines.append(
            f"\n{name}: {now}\n"
            f"взято {counts['taken']}, закрыто {counts['closed']}, боту {counts['returned']}, "
            f"передано {counts['transferred']}, пик {figures.peak_parallel} чат.\n"
            f"первая реакция {_times(figures.durations.get('first_reaction'))}; ответ "
            f"{_times(figures.durations.get('response'))}; разговор "
            f"{_times(figures.durations.get('handle'))}\n{_rating(figures)}")
    return "\n".join(lines)


def _times(measured: Durations | None) -> str:
    if measured is None or measured.p50 is None or measured.p90 is None:
        return "—"
    return f"p50 {_duration(measured.p50)}, p90 {_duration(measured.p90)}"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} с"
    if seconds < 7200:
        return f"{seconds / 60:.0f} мин"
    return f"{seconds / 3600:.1f} ч"


def _rating(figures: Figures) -> str:
    if not figures.ratings:
        return "оценок нет"
    spread = " ".join(f"{score}★{n}" for score, n in figures.distribution.items() if n)
    return f"оценка {figures.average_rating:.1f} ({figures.ratings}: {spread})"
