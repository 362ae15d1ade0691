"""The rules' data: what a rule matches (`When`) and what it does (`Do`), as loaded."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import tzinfo
from zoneinfo import ZoneInfo

from flows.model import Pos

PRIORITIES = ("low", "normal", "high", "urgent")


@dataclass(frozen=True, slots=True)
class When:
    """Every condition given must hold; a list matches when any of its items does."""

    intents: frozenset[str] = frozenset()
    keywords: tuple[str, ...] = ()  # normalised: lower case, ё -> е
    regex: re.Pattern[str] | None = None
    channels: frozenset[str] = frozenset()
    tags: frozenset[str] = frozenset()  # any of the conversation's handoff tags
    languages: frozenset[str] = frozenset()
    hours: tuple[int, int] | None = None  # minutes of the day [start, end) in TIMEZONE
    vip: bool | None = None  # True: only the VIP list; False: only those not on it
    silent_minutes: int | None = None  # timed: the customer has not replied for N minutes

    @property
    def timed(self) -> bool:
        return self.silent_minutes is not None


@dataclass(frozen=True, slots=True)
class Do:
    tags: tuple[str, ...] = ()
    priority: str = ""
    desk: str = ""  # a desk group's name (OPERATOR_CHAT_IDS)
    desk_chat: int | None = None  # its chat id, when the desks were known at load
    template: str = ""  # the operators' template by name
    template_text: str = ""  # its text as of the load
    close: bool = False
    notice: str = ""  # said before the rating keyboard when a timed rule closes
    return_to_bot: bool = False
    hide_comment: bool = False  # a VK wall comment that matched is deleted

    def describe(self) -> list[str]:
        """What the rule does, one item per action (for the journal and `rules test`)."""
        done = []
        if self.tags:
            done.append("tags " + ",".join(self.tags))
        if self.priority:
            done.append(f"priority {self.priority}")
        if self.desk:
            done.append(f"route {self.desk}")
        if self.template:
            done.append(f"template {self.template}")
        if self.close:
            done.append("close" + (" with a notice" if self.notice else ""))
        if self.return_to_bot:
            done.append("return to the bot")
        if self.hide_comment:
            done.append("hide the comment")
        return done


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    pos: Pos
    when: When
    do: Do
    stop: bool = False


@dataclass(frozen=True, slots=True)
class RuleSet:
    rules: tuple[Rule, ...] = ()
    vip: frozenset[str] = frozenset()  # conversation ids, e.g. tg:123456
    timezone: tzinfo = field(default_factory=lambda: ZoneInfo("Europe/Moscow"))
    file: str = ""

    @property
    def message_rules(self) -> tuple[Rule, ...]:
        return tuple(rule for rule in self.rules if not rule.when.timed)

    @property
    def timed_rules(self) -> tuple[Rule, ...]:
        return tuple(rule for rule in self.rules if rule.when.timed)


NO_RULES = RuleSet()
