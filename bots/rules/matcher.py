"""Which rules fire: pure functions over the facts of a turn (or of a silent conversation)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from bots.rules.loader import normal
from bots.rules.model import Rule, RuleSet, When


@dataclass(frozen=True, slots=True)
class Facts:
    conv: str  # tg:123456: its channel is the part before the colon
    at: datetime  # aware; compared in the rules' TIMEZONE
    text: str = ""
    intent: str = ""  # "" when the bot did not parse the message (a human has it)
    tags: frozenset[str] = field(default_factory=frozenset)
    language: str = ""  # the customer's app language: "ru", "en-US"
    silent_seconds: float | None = None  # timed rules: how long the customer has been silent
    channel: str = ""  # where the customer wrote from; "": the conversation's own channel


def fired(ruleset: RuleSet, facts: Facts, rules: Iterable[Rule] | None = None) -> list[Rule]:
    """The rules that fire, in file order; a firing rule with `stop: true` ends the list."""
    out = []
    for rule in ruleset.message_rules if rules is None else rules:
        if matches(rule.when, facts, ruleset):
            out.append(rule)
            if rule.stop:
                break
    return out


def fired_timed(ruleset: RuleSet, facts: Facts) -> list[Rule]:
    return fired(ruleset, facts, ruleset.timed_rules)


def matches(when: When, facts: Facts, ruleset: RuleSet) -> bool:
    text = normal(facts.text)
    language = facts.language.lower()
    local = facts.at.astimezone(ruleset.timezone)
    checks = (
        not when.intents or facts.intent in when.intents,
        not when.keywords or any(word in text for word in when.keywords),
        when.regex is None or when.regex.search(facts.text) is not None,
        not when.channels or (facts.channel or facts.conv.split(":", 1)[0]) in when.channels,
        not when.tags or bool(when.tags & {t.lower() for t in facts.tags}),
        not when.languages or language in when.languages
        or language.split("-", 1)[0] in when.languages,
        when.hours is None or in_hours(when.hours, local.hour * 60 + local.minute),
        when.vip is None or (facts.conv in ruleset.vip) == when.vip,
        when.silent_minutes is None or (facts.silent_seconds is not None
                                        and facts.silent_seconds >= when.silent_minutes * 60),
    )
    return all(checks)


def in_hours(span: tuple[int, int], minute: int) -> bool:
    """[start, end) in minutes of the day; a span over midnight (22:00-08:00) wraps."""
    start, end = span
    return start <= minute < end if start < end else minute >= start or minute < end
