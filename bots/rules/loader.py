"""Loading the rules file: every problem as `file:line: message`, all of them in one round.

Unknown keys are refused, regexes compiled, and the names a rule refers to (intents, the
operators' templates, desk groups) checked against what exists when the caller knows it.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml

from bots.rules.model import PRIORITIES, Do, Rule, RuleSet, When
from flows.model import Pos
from flows.yamlnodes import YAML_LOADER, Node, Reader, is_null, line_of
from nlu.types import Problem

FILE_VERSION = 1
NAME = re.compile(r"^[a-z0-9_]{1,48}$")
CHANNELS = ("tg", "vk", "web", "vk-wall")  # vk-wall: comments on the community's posts
HOURS = re.compile(r"^(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})$")
WHEN_KEYS = ("intent", "keywords", "regex", "channel", "tag", "language", "hours", "vip",
             "silent_minutes")
DO_KEYS = ("tags", "priority", "route", "template", "close", "return_to_bot", "hide_comment")
MESSAGE_ONLY = ("intent", "keywords", "regex")
NO_ADMIN = ("hide_comment needs VK_ADMIN_TOKEN (a community administrator's token): the "
            "community token cannot delete comments")


class RulesError(Exception):
    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(problem) for problem in problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class Known:
    """What rules may name; None: not known here, not checked."""

    intents: Collection[str] | None = None
    templates: Mapping[str, str] | None = None
    desks: Mapping[str, int] | None = None  # name -> chat id
    wall: bool | None = None  # comments can be deleted (VK with VK_ADMIN_TOKEN)


def load_rules(path: str | Path, known: Known = Known(), timezone: str = "Europe/Moscow",
               *, optional: bool = False) -> RuleSet:
    """The rules of `path`; a missing file is no rules when `optional`. Raises RulesError."""
    file = Path(path)
    zone = ZoneInfo(timezone)
    if optional and not file.exists():
        return RuleSet(timezone=zone, file=str(file))
    r = Reader(str(file))
    try:
        source = file.read_text(encoding="utf-8")
        root = yaml.compose(source, Loader=YAML_LOADER)
    except (OSError, UnicodeDecodeError) as exc:
        raise RulesError([Problem(str(file), 0, f"cannot read the file: {exc}")]) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 0
        raise RulesError([Problem(str(file), line,
                                  f"YAML syntax: {exc.problem or exc.context}")]) from None
    except yaml.YAMLError as exc:
        raise RulesError([Problem(str(file), 0, f"YAML syntax: {exc}")]) from None
    if root is None or is_null(root):
        return RuleSet(timezone=zone, file=str(file))
    ruleset = _document(r, root, known, zone)
    if r.problems:
        raise RulesError(r.problems)
    return ruleset


def _document(r: Reader, root: Node, known: Known, zone: ZoneInfo) -> RuleSet:
    entries = r.mapping(root, "a rules file", ("version", "vip", "rules")) or {}
    if "version" in entries and str(entries["version"].value) != str(FILE_VERSION):
        r.error(entries["version"], f"unsupported version (this bot reads {FILE_VERSION})")
    vip = frozenset(r.strings(entries["vip"], "vip") or []) if "vip" in entries else frozenset()
    for item in entries["vip"].value if "vip" in entries and vip else []:
        if ":" not in str(item.value):
            r.error(item, f"a VIP is a conversation id such as tg:123456, not {item.value!r}")
    rules: list[Rule] = []
    seen: dict[str, int] = {}
    for item in r.sequence(entries["rules"], "rules") or [] if "rules" in entries else []:
        rule = _rule(r, item, known)
        if rule is None:
            continue
        if rule.name in seen:
            r.error(item, f"rule '{rule.name}' is already defined at line {seen[rule.name]}")
        seen.setdefault(rule.name, rule.pos.line)
        rules.append(rule)
    return RuleSet(tuple(rules), vip, zone, r.file)


def _rule(r: Reader, node: Node, known: Known) -> Rule | None:
    entries = r.mapping(node, "a rule", ("name", "when", "do", "stop"))
    if entries is None:
        return None
    for required in ("name", "when", "do"):
        if required not in entries:
            r.error(node, f"a rule needs '{required}'")
    if any(key not in entries for key in ("name", "when", "do")):
        return None
    name = r.string(entries["name"], "name") or ""
    if name and not NAME.fullmatch(name):
        r.error(entries["name"], f"rule name '{name}' may only use a-z, 0-9 and _")
    when = _when(r, entries["when"], known)
    do = _do(r, entries["do"], known)
    stop = bool(r.boolean(entries["stop"], "stop")) if "stop" in entries else False
    if when is None or do is None:
        return None
    _check_fit(r, entries, when, do)
    return Rule(name, Pos(r.file, line_of(node)), when, do, stop)


def _names(r: Reader, node: Node, what: str) -> list[str]:
    """A text or a list of texts."""
    if isinstance(node, yaml.SequenceNode):
        return r.strings(node, what) or []
    one = r.string(node, what)
    return [one] if one else []


def _when(r: Reader, node: Node, known: Known) -> When | None:
    entries = r.mapping(node, "when", WHEN_KEYS)
    if entries is None:
        return None
    if not entries:
        r.error(node, "'when' needs at least one condition")
    intents = [name for name in _names(r, entries["intent"], "intent")] \
        if "intent" in entries else []
    if known.intents is not None:
        for item in _items(entries.get("intent")):
            if str(item.value) not in known.intents:
                r.error(item, f"unknown intent '{item.value}' (no training data)")
    channels = _names(r, entries["channel"], "channel") if "channel" in entries else []
    for item in _items(entries.get("channel")):
        if str(item.value) not in CHANNELS:
            r.error(item, f"unknown channel '{item.value}' (one of {', '.join(CHANNELS)})")
    regex = None
    if "regex" in entries and (pattern := r.string(entries["regex"], "regex")):
        try:
            regex = re.compile(pattern, re.IGNORECASE)
        except re.error as exc:
            r.error(entries["regex"], f"bad regex: {exc}")
    return When(
        intents=frozenset(intents),
        keywords=tuple(normal(word) for word in _names(r, entries["keywords"], "keywords"))
        if "keywords" in entries else (),
        regex=regex, channels=frozenset(channels),
        tags=frozenset(t.lower() for t in _names(r, entries["tag"], "tag"))
        if "tag" in entries else frozenset(),
        languages=frozenset(x.lower() for x in _names(r, entries["language"], "language"))
        if "language" in entries else frozenset(),
        hours=_hours(r, entries["hours"]) if "hours" in entries else None,
        vip=r.boolean(entries["vip"], "vip") if "vip" in entries else None,
        silent_minutes=r.integer(entries["silent_minutes"], "silent_minutes", 1)
        if "silent_minutes" in entries else None,
    )


def _items(node: Node | None) -> list[Node]:
    if node is None:
        return []
    if isinstance(node, yaml.SequenceNode):
        return [item for item in node.value if isinstance(item, yaml.ScalarNode)]
    return [node] if isinstance(node, yaml.ScalarNode) else []


def _hours(r: Reader, node: Node) -> tuple[int, int] | None:
    text = r.string(node, "hours")
    found = HOURS.fullmatch(text.strip()) if text else None
    if found is None:
        if text:
            r.error(node, "hours must be HH:MM-HH:MM, e.g. 22:00-08:00 (in TIMEZONE)")
        return None
    h1, m1, h2, m2 = (int(part) for part in found.groups())
    if h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59 or (h2 == 24 and m2):
        r.error(node, f"hours {text!r}: not a time of day")
        return None
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if start == end:
        r.error(node, f"hours {text!r}: an empty span")
        return None
    return start, end


def _do(r: Reader, node: Node, known: Known) -> Do | None:
    entries = r.mapping(node, "do", DO_KEYS)
    if entries is None:
        return None
    if not entries:
        r.error(node, "'do' needs at least one action")
    tags = tuple(t.replace(",", "")[:32] for t in _names(r, entries["tags"], "tags")) \
        if "tags" in entries else ()
    priority = _text(r, entries, "priority")
    if priority and priority not in PRIORITIES:
        r.error(entries["priority"], f"priority must be one of {', '.join(PRIORITIES)}")
    desk, chat = _text(r, entries, "route"), None
    if desk and known.desks is not None:
        chat = known.desks.get(desk)
        if chat is None:
            names = ", ".join(known.desks) or "none configured in OPERATOR_CHAT_IDS"
            r.error(entries["route"], f"no desk group named '{desk}' (desks: {names})")
    template, text = _text(r, entries, "template"), ""
    if template and known.templates is not None:
        text = known.templates.get(template, "")
        if template not in known.templates:
            r.error(entries["template"], f"no operators' template named '{template}'")
    close, notice = _close(r, entries["close"]) if "close" in entries else (False, "")
    back = bool(r.boolean(entries["return_to_bot"], "return_to_bot")) \
        if "return_to_bot" in entries else False
    hide = False
    if "hide_comment" in entries:
        hide = bool(r.boolean(entries["hide_comment"], "hide_comment"))
        if hide and known.wall is False:
            r.error(entries["hide_comment"], NO_ADMIN)
    return Do(tags, priority, desk, chat, template, text, close, notice, back, hide)


def _text(r: Reader, entries: dict[str, Node], key: str) -> str:
    return (r.string(entries[key], key) or "") if key in entries else ""


def _close(r: Reader, node: Node) -> tuple[bool, str]:
    """`close: true` or `close: {notice: TEXT}`."""
    if isinstance(node, yaml.MappingNode):
        entries = r.mapping(node, "close", ("notice",)) or {}
        notice = r.string(entries["notice"], "notice") if "notice" in entries else ""
        return True, notice or ""
    return bool(r.boolean(node, "close")), ""


def _check_fit(r: Reader, entries: dict[str, Node], when: When, do: Do) -> None:
    """Message rules act in the customer's turn, timed ones from the scheduler: each kind
    takes the conditions and actions it can honour."""
    where = entries["when"]
    if when.timed:
        conditions = r.keys(where)
        for key in MESSAGE_ONLY:
            if key in conditions:
                r.error(where, f"'{key}' needs a message: it cannot go with silent_minutes")
        if not (do.close or do.return_to_bot):
            r.error(entries["do"], "a rule with silent_minutes must close or return_to_bot")
        if do.close and do.return_to_bot:
            r.error(entries["do"], "close and return_to_bot together: pick one")
        extra = [name for name, used in (("tags", do.tags), ("priority", do.priority),
                                         ("route", do.desk), ("hide_comment", do.hide_comment))
                 if used]
        if extra:
            r.error(entries["do"], f"{', '.join(extra)}: not available with silent_minutes "
                                   f"(the conversation is closed or returned)")
    else:
        if do.close:
            r.error(entries["do"], "close needs silent_minutes in 'when' (close after N "
                                   "minutes of the customer's silence)")


def normal(text: str) -> str:
    return text.lower().replace("ё", "е")
