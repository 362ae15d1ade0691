"""Loading flow files: every syntax or structure mistake is reported with its file and line."""

from __future__ import annotations

import textwrap
from decimal import Decimal
from pathlib import Path

import pytest

from flows.loader import FlowError, load_flows
from flows.model import Ask, ChoiceRule, End, Handoff, If, NumberRule, RegexRule, Say, SetSlots
from flows.texts import ANY_LANGUAGE, SlotRef

HEADER = "version: 1\nflows:\n"


def write(tmp_path: Path, body: str, name: str = "flows.yml", header: str = HEADER) -> Path:
    path = tmp_path / name
    path.write_text(header + textwrap.indent(textwrap.dedent(body), "  "), encoding="utf-8")
    return path


def problems_of(path: Path | list[Path]) -> list[tuple[str, int, str]]:
    with pytest.raises(FlowError) as caught:
        load_flows(path)
    return [(Path(p.file).name, p.line, p.message) for p in caught.value.problems]


def only_problem(path: Path) -> tuple[int, str]:
    found = problems_of(path)
    assert len(found) == 1, found
    return found[0][1], found[0][2]


def test_the_spec_example_loads(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
          order_status:
            description: Where is my order
            intents: [order_status]
            steps:
              - ask: order_number
                text: Назовите номер заказа
                validate:
                  regex: '^\\d{6,10}$'
                error: Попробуйте ещё раз.
                retries: 2
                on_fail: cant_find
              - say: Заказ №{order_number} уже в пути.
                buttons:
                  - {title: Изменить адрес, intent: change_address}
                  - {title: Позвать оператора, flow: human}
              - end
              - id: cant_find
                handoff: {reason: order_not_found, priority: normal, tags: [orders]}
        """,
    )
    flow = load_flows(path)["order_status"]
    assert [ref.name for ref in flow.intents] == ["order_status"]
    assert flow.pos.line == 3 and flow.description == "Where is my order"
    ask, say, end, handoff = flow.steps
    assert isinstance(ask, Ask) and isinstance(ask.rule, RegexRule) and ask.pos.line == 7
    assert ask.on_fail is not None and ask.on_fail.name == "cant_find"
    assert isinstance(say, Say) and say.text.variants[ANY_LANGUAGE][0].parts[1] == SlotRef(
        "order_number"
    )
    assert [b.payload for b in say.buttons] == ["intent:change_address", "flow:human"]
    assert isinstance(end, End) and end.pos.line == 18
    assert isinstance(handoff, Handoff) and handoff.id == "cant_find"
    assert handoff.tags == ("orders",) and handoff.pos.line == 19


def test_scalars_are_read_as_written(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
          f:
            steps:
              - ask: answer
                text: 007
                validate:
                  choice: [да, yes, no, 1.0]
              - set: {flag: yes, cleared: null}
              - ask: n
                text: x
                validate: {number: {min: 1.5, max: 10}}
              - if: {slot: n, gt: 2}
                then: done
              - {id: done, end: on}
        """,
    )
    ask, set_step, number, branch, end = load_flows(path)["f"].steps
    assert isinstance(ask, Ask) and ask.text.variants[ANY_LANGUAGE][0].source == "007"
    assert isinstance(ask.rule, ChoiceRule) and ask.rule.choices == ("да", "yes", "no", "1.0")
    assert isinstance(set_step, SetSlots)
    assert [(name, value and value.source) for name, value in set_step.values] == [
        ("flag", "yes"),
        ("cleared", None),
    ]
    assert isinstance(number, Ask) and number.rule == NumberRule(Decimal("1.5"), Decimal(10))
    assert isinstance(branch, If) and branch.condition.operand == Decimal(2)
    assert isinstance(end, End) and end.text is not None


@pytest.mark.parametrize(
    ("body", "line", "message"),
    [
        ("  f:\n    steps:\n      - say: [a\n", 6, "YAML syntax"),
        ("  f:\n    steps: []\n", 4, "flow 'f' has no steps"),
        ("  f:\n    intents: [a]\n", 3, "flow 'f' needs steps"),
        ("  Bad-Id:\n    steps: [end]\n", 3, "flow id 'Bad-Id'"),
        ("  f:\n    steps: [end]\n    colour: red\n", 5, "unknown key 'colour' in flow 'f'"),
        ("  f:\n    steps: [end]\n    steps: [end]\n", 5, "duplicate key 'steps'"),
        ("  f:\n    steps:\n      - shout: hi\n", 5, "a step needs exactly one of"),
        ("  f:\n    steps:\n      - {say: a, end: b}\n", 5, "found say and end"),
        ("  f:\n    steps:\n      - {say: a, text: b}\n", 5, "unknown key 'text' in a say step"),
        ("  f:\n    steps:\n      - ask: x\n", 5, "an ask step needs text"),
        ("  f:\n    steps:\n      - {ask: 'a b', text: q}\n", 5, "'a b' is not a slot name"),
        ("  f:\n    steps:\n      - {ask: x, text: q, retries: -1}\n", 5, "retries must be"),
        ("  f:\n    steps:\n      - {ask: x, text: q, on_fail: 'flow:A'}\n", 5, "on_fail 'flow:A'"),
        ("  f:\n    steps:\n      - {say: 'a {b'}\n", 5, "stray '{' at column 3"),
        ("  f:\n    steps:\n      - {say: 'a } b'}\n", 5, "stray '}'"),
        ("  f:\n    steps:\n      - say: {first_name}, hi\n", 5, "did not find expected key"),
        ("  f:\n    steps:\n      - say: {first_name}\n", 5, "quote a text that starts with '{'"),
        ("  f:\n    steps:\n      - say: {en: hi}\n", 5, "needs a 'ru' text"),
        ("  f:\n    steps:\n      - say: {ru: a, de: b}\n", 5, "unknown language 'de'"),
        ("  f:\n    steps:\n      - say: []\n", 5, "empty list of variants"),
        ("  f:\n    steps:\n      - say: ''\n", 5, "say must be a non-empty text"),
        ("  f:\n    steps:\n      - say: a\n        buttons: x\n", 6, "buttons must be a list"),
    ],
)
def test_structure_problems_point_at_their_line(
    tmp_path: Path, body: str, line: int, message: str
) -> None:
    found_line, found = only_problem(write(tmp_path, body))
    assert message in found
    assert found_line == line


BUTTONS = """\
  f:
    steps:
      - say: a
        buttons:
          - {title: ok}
          - {title: ok, intent: a, flow: b}
          - {intent: a}
          - {title: ok, flow: Nope}
          - {title: ok, url: "ftp://x"}
          - {title: [a, b], intent: a}
          - {title: ok, colour: red, intent: a}
"""


def test_button_problems(tmp_path: Path) -> None:
    assert [(line, message) for _, line, message in problems_of(write(tmp_path, BUTTONS))] == [
        (7, "a button needs exactly one of intent, flow, value, url"),
        (8, "a button needs exactly one of intent, flow, value, url"),
        (9, "a button needs a title"),
        (10, "'Nope' is not a flow id ([a-z0-9_]+)"),
        (11, "a button url must start with https://, http:// or tg://"),
        (12, "a button title cannot have variants"),
        (13, "unknown key 'colour' in a button (expected: flow, intent, title, url, value)"),
    ]


VALIDATE = """\
  f:
    steps:
      - {ask: a, text: q, validate: {regex: '(unclosed'}}
      - {ask: a, text: q, validate: {regex: a, choice: [b]}}
      - {ask: a, text: q, validate: {number: {min: 5, max: 1}}}
      - {ask: a, text: q, validate: {number: {min: many}}}
      - {ask: a, text: q, validate: {choice: []}}
      - {ask: a, text: q, validate: {choice: [Да, да]}}
      - {ask: a, text: q, validate: {length: 3}}
"""


def test_validate_rule_problems(tmp_path: Path) -> None:
    found = [(line, message) for _, line, message in problems_of(write(tmp_path, VALIDATE))]
    assert [line for line, _ in found] == [5, 6, 7, 8, 9, 10, 11]
    assert found[0][1].startswith("bad regex in validate: missing ), unterminated subpattern")
    assert found[1][1] == "validate needs exactly one of regex, number, choice"
    assert found[2][1] == "number: min 5 is greater than max 1"
    assert found[3][1] == "min must be a number"
    assert found[4][1] == "choice needs at least one value"
    assert "the same value twice" in found[5][1]
    assert "unknown key 'length' in validate" in found[6][1]


OTHER_STEPS = """\
  f:
    steps:
      - {if: {slot: a}, then: x}
      - {if: {slot: a, equals: b, in: [c]}, then: x}
      - {if: {slot: a, equals: b}}
      - {if: {slot: a, matches: '['}, then: x}
      - {if: {slot: a, exists: maybe}, then: x}
      - {if: {slot: a, gt: lots}, then: x}
      - {goto: 'bad target'}
      - {set: {'1x': a}}
      - {set: {}}
      - {handoff: {priority: high}}
      - {handoff: {reason: r, priority: asap}}
      - {handoff: {reason: r, tags: x}}
      - {id: 'a b', end}
      - {id: dup, end}
      - {id: dup, end}
"""


def test_other_step_problems(tmp_path: Path) -> None:
    found = [(line, message) for _, line, message in problems_of(write(tmp_path, OTHER_STEPS))]
    assert found == [
        (5, "a condition needs slot and exactly one of equals, not_equals, in, matches, exists, "
            "gt, lt"),
        (6, "a condition needs slot and exactly one of equals, not_equals, in, matches, exists, "
            "gt, lt"),
        (7, "an if step needs then, else or both"),
        (8, "bad regex in matches: unterminated character set at position 0"),
        (9, "exists must be true or false"),
        (10, "gt must be a number"),
        (11, "goto 'bad target' is not a step id or flow:<flow id>"),
        (12, "'1x' is not a slot name (letters, digits, _)"),
        (13, "set needs at least one slot"),
        (14, "handoff needs a reason"),
        (15, "priority must be one of low, normal, high, urgent"),
        (16, "tags must be a list"),
        (17, "step id 'a b' may only use letters, digits, _ and -"),
        (19, "step id 'dup' is already used at line 18"),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("", 0, None),
        ("- a\n", 1, "a flow file must be a mapping"),
        ("version: 2\nflows: {}\n", 1, "unsupported version (this engine reads 1)"),
        ("version: 1\n", 1, "a flow file needs a 'flows:' mapping"),
        ("flows: []\n", 1, "flows must be a mapping"),
        ("flows: {}\nextra: 1\n", 2, "unknown key 'extra' in a flow file"),
        ("flows:\n  f:\n    steps: [end]\n  f:\n    steps: [end]\n", 4, "duplicate key 'f'"),
        ("a: [\n", 2, "YAML syntax"),
        ("a: 1\n---\nb: 2\n", 2, "YAML syntax"),
    ],
)
def test_file_level_problems(tmp_path: Path, text: str, line: int, message: str | None) -> None:
    path = tmp_path / "f.yml"
    path.write_text(text, encoding="utf-8")
    if message is None:
        assert len(load_flows(path)) == 0
        return
    assert only_problem(path)[0] == line
    assert message in only_problem(path)[1]


def test_a_directory_is_read_in_name_order_and_ids_are_unique_across_files(
    tmp_path: Path,
) -> None:
    write(tmp_path, "  b:\n    steps: [end]\n", name="2.yml")
    write(tmp_path, "  a:\n    steps: [end]\n  b:\n    steps: [end]\n", name="1.yml")
    (tmp_path / "notes.txt").write_text("not a flow file")
    assert problems_of(tmp_path) == [("2.yml", 3, "flow 'b' is already defined at "
                                      f"{tmp_path / '1.yml'}:5")]  # fmt: skip
    (tmp_path / "2.yml").unlink()
    flows = load_flows(tmp_path)
    assert list(flows.flows) == ["a", "b"] and flows.files == (str(tmp_path / "1.yml"),)


def test_missing_paths_empty_directories_and_bad_bytes(tmp_path: Path) -> None:
    (tmp_path / "bad.yml").write_bytes(b"\xff\xfe flows")
    (tmp_path / "empty").mkdir()
    found = problems_of([tmp_path / "missing.yml", tmp_path / "empty", tmp_path / "bad.yml"])
    assert [(name, line) for name, line, _ in found] == [
        ("missing.yml", 0),
        ("empty", 0),
        ("bad.yml", 0),
    ]
    assert "cannot read the file" in found[2][2]


def test_every_problem_of_every_file_is_reported_at_once(tmp_path: Path) -> None:
    write(tmp_path, "  f:\n    steps: [{say: ''}, {goto: ''}]\n", name="a.yml")
    write(tmp_path, "  g:\n    steps: 3\n", name="b.yml")
    assert [(name, line) for name, line, _ in problems_of(tmp_path)] == [
        ("a.yml", 4),
        ("a.yml", 4),
        ("b.yml", 4),
    ]
