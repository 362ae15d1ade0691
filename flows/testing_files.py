"""Reading conversation-test files (`tests/conversations/*.yml`) with file:line problems."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from flows.loader import FlowError, flow_files
from flows.model import Pos
from flows.yamlnodes import YAML_LOADER, Node, Reader, line_of
from nlu.types import Problem

_STEP_KEYS = ("user", "click", "intent", "bot", "buttons", "handoff")


class ConversationTestError(FlowError):
    """Conversation-test files that cannot be read; `problems` point at file and line."""


@dataclass(frozen=True, slots=True)
class Expect:
    intent: str | None = None
    bot: tuple[str, ...] | None = None
    bot_is_list: bool = False  # a list means one entry per reply, in order
    buttons: tuple[str, ...] | None = None
    handoff: str | None = None


@dataclass(frozen=True, slots=True)
class ScriptStep:
    """`user` types a text, `click` presses a button of the previous turn by its title."""

    line: int
    user: str | None = None
    click: str | None = None
    expect: Expect = Expect()


@dataclass(frozen=True, slots=True)
class ConversationTest:
    name: str
    steps: tuple[ScriptStep, ...]
    file: str
    line: int
    slots: Mapping[str, str] = field(default_factory=dict, hash=False)

    @property
    def location(self) -> str:
        return f"{self.file}:{self.line}"


def load_conversation_tests(paths: str | Path | Sequence[str | Path]) -> list[ConversationTest]:
    """The tests of every file (a directory gives its `*.yml`); raises ConversationTestError."""
    files, problems = flow_files(paths)
    tests: list[ConversationTest] = []
    for file in files:
        reader = Reader(str(file))
        tests += _read_file(reader, file)
        problems += reader.problems
    if problems:
        raise ConversationTestError(problems)
    return tests


def _read_file(r: Reader, file: Path) -> list[ConversationTest]:
    try:
        root = yaml.compose(file.read_text(encoding="utf-8"), Loader=YAML_LOADER)
    except (OSError, UnicodeDecodeError) as exc:
        r.problems.append(Problem(r.file, 0, f"cannot read the file: {exc}"))
        return []
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 0
        r.problems.append(Problem(r.file, line, f"YAML syntax: {exc.problem or exc.context}"))
        return []
    if root is None:
        return []
    entries = r.mapping(root, "a conversation-test file", ("tests",))
    if entries is None:
        return []
    if "tests" not in entries:
        r.error(root, "a conversation-test file needs a 'tests:' list")
        return []
    parsed = [_read_test(r, node) for node in r.sequence(entries["tests"], "tests") or []]
    tests = [test for test in parsed if test is not None]
    first_line: dict[str, int] = {}
    for test in tests:
        line = first_line.setdefault(test.name, test.line)
        if line != test.line:
            r.error_at(
                Pos(r.file, test.line), f"test name '{test.name}' is already used at line {line}"
            )
    return tests


def _read_test(r: Reader, node: Node) -> ConversationTest | None:
    entries = r.mapping(node, "a test", ("name", "slots", "steps"))
    if entries is None:
        return None
    if "name" not in entries or "steps" not in entries:
        r.error(node, "a test needs a name and steps")
        return None
    reported = len(r.problems)
    name = r.string(entries["name"], "name")
    slots = _read_slots(r, entries["slots"]) if "slots" in entries else {}
    items = r.sequence(entries["steps"], "steps")
    if items == []:
        r.error(entries["steps"], "a test needs at least one step")
    steps = [_read_step(r, item) for item in items or []]
    if name is None or len(r.problems) > reported:
        return None
    return ConversationTest(
        name, tuple(step for step in steps if step is not None), r.file, line_of(node), slots
    )


def _read_slots(r: Reader, node: Node) -> dict[str, str]:
    slots = {}
    for name, value_node in (r.mapping(node, "slots") or {}).items():
        value = r.string(value_node, f"slot '{name}'")
        if value is not None:
            slots[name] = value
    return slots


def _read_step(r: Reader, node: Node) -> ScriptStep | None:
    entries = r.mapping(node, "a test step", _STEP_KEYS)
    if entries is None:
        return None
    actions = [key for key in ("user", "click") if key in entries]
    if len(actions) != 1:
        r.error(node, "a test step needs exactly one of user, click")
        return None
    action = r.string(entries[actions[0]], actions[0])
    expect = Expect(
        intent=r.string(entries["intent"], "intent") if "intent" in entries else None,
        bot=_read_bot(r, entries["bot"]) if "bot" in entries else None,
        bot_is_list="bot" in entries and isinstance(entries["bot"], yaml.SequenceNode),
        buttons=_read_titles(r, entries["buttons"]) if "buttons" in entries else None,
        handoff=r.string(entries["handoff"], "handoff") if "handoff" in entries else None,
    )
    if action is None:
        return None
    if actions[0] == "user":
        return ScriptStep(line_of(node), user=action, expect=expect)
    return ScriptStep(line_of(node), click=action, expect=expect)


def _read_bot(r: Reader, node: Node) -> tuple[str, ...] | None:
    if isinstance(node, yaml.SequenceNode):
        texts = r.strings(node, "bot")
        return None if texts is None else tuple(texts)  # [] expects no reply at all
    text = r.string(node, "bot")
    return None if text is None else (text,)


def _read_titles(r: Reader, node: Node) -> tuple[str, ...] | None:
    titles = r.strings(node, "buttons")
    return None if titles is None else tuple(titles)
