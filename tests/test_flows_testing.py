"""The conversation-test runner, on the small fixture flows with a dictionary NLU."""

from __future__ import annotations

import random
import textwrap
from pathlib import Path

import pytest

from flows.engine import FlowEngine
from flows.loader import load_flows
from flows.testing import (
    ConversationResult,
    ConversationTest,
    ConversationTestError,
    load_conversation_tests,
    run_conversation,
)
from nlu.entities import EntityExtractor
from nlu.types import OUT_OF_SCOPE, ParseResult

FLOWS = load_flows(Path(__file__).parent / "data" / "flows_small")


class DictNLU:
    """An NLUBackend that knows a fixed set of texts, and finds entities with an extractor."""

    name = "dict"

    def __init__(self, intents: dict[str, str], entities: EntityExtractor | None = None) -> None:
        self._intents = intents
        self._entities = entities

    async def parse(self, text: str) -> ParseResult:
        intent = self._intents.get(text, OUT_OF_SCOPE)
        entities = self._entities.extract(text) if self._entities is not None else ()
        return ParseResult(text, intent, 0.8 if intent != OUT_OF_SCOPE else 0.1, entities=entities)

    def known_intents(self) -> frozenset[str]:
        return frozenset(self._intents.values())


NLU = DictNLU({"где мой заказ": "order_status", "оценка": "rate", "человека": "human"})


def engine() -> FlowEngine:
    return FlowEngine(FLOWS, rng=random.Random(0))


def cases_from(tmp_path: Path, text: str) -> list[ConversationTest]:
    path = tmp_path / "conv.yml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return load_conversation_tests(path)


async def run_one(tmp_path: Path, steps: str) -> ConversationResult:
    text = "tests:\n  - name: t\n    slots: {first_name: Аня}\n    steps:\n"
    [case] = cases_from(tmp_path, text + textwrap.indent(textwrap.dedent(steps), "      "))
    return await run_conversation(case, engine, NLU)


async def test_a_conversation_that_matches_passes(tmp_path: Path) -> None:
    result = await run_one(
        tmp_path,
        """\
        - user: /start
          bot: аня
          buttons: [Где мой заказ, Оператор, Сайт]
        - click: Где мой заказ
          intent: order_status
          bot: [номер заказа]
        - user: "12"
          bot: [6–10 цифр, Назовите номер]
          buttons: []
        - user: "1234567"
          bot: заказ №1234567
        - click: Позвать оператора
          bot: []
          handoff: customer_request
        """,
    )
    assert result.passed, result.report()
    assert result.transcript[:2] == (
        "> /start",
        "< Добрый день, Аня! [Где мой заказ] [Оператор] [Сайт]",
    )
    assert result.transcript[-1] == "= handoff customer_request (normal)"


async def test_entities_of_the_nlu_fill_the_questions(tmp_path: Path) -> None:
    # This NLU's regex takes 5 digits where the flow's rule wants 6-10: such a number is rejected.
    nlu = DictNLU(
        dict.fromkeys(["где мой заказ", "где мой заказ 1234567", "где мой заказ 12345"],
                      "order_status"),
        EntityExtractor({"order_number": [r"\b\d{5,10}\b"]}, {}, {}),
    )  # fmt: skip
    cases = cases_from(
        tmp_path,
        """\
        tests:
          - name: the number in the question is not asked for
            steps:
              - user: где мой заказ 1234567
                bot: [Заказ №1234567 в пути]
          - name: a number the flow rejects gets the error and the question
            steps:
              - user: где мой заказ 12345
                bot: [6–10 цифр, Назовите номер заказа]
              - user: "7654321"
                bot: [Заказ №7654321 в пути]
          - name: no number, the question as before
            steps:
              - user: где мой заказ
                bot: [Назовите номер заказа]
              - user: мой номер 7654321
                bot: [Заказ №7654321 в пути]
        """,
    )
    results = [await run_conversation(case, engine, nlu) for case in cases]
    assert [result.report() for result in results if not result.passed] == []
    assert len(results) == 3


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        (
            "- user: где мой заказ\n  intent: rate\n",
            "step 1 (line 5) intent: expected 'rate', got 'order_status' (0.80)",
        ),
        (
            "- user: где мой заказ\n  bot: адрес\n",
            "step 1 (line 5) bot: expected a reply containing 'адрес', got 'Назовите номер заказа'",
        ),
        (
            "- user: где мой заказ\n- user: '1'\n  bot: [Назовите]\n",
            "step 2 (line 6) bot: expected replies containing 'Назовите', "
            "got 'Номер заказа — это 6–10 цифр.', 'Назовите номер заказа'",
        ),
        (
            "- user: /start\n  buttons: [Где мой заказ]\n",
            "step 1 (line 5) buttons: expected ['Где мой заказ'], "
            "got ['Где мой заказ', 'Оператор', 'Сайт']",
        ),
        (
            "- user: человека\n  handoff: complaint\n",
            "step 1 (line 5) handoff: expected 'complaint', got 'customer_request'",
        ),
        (
            "- user: /start\n  handoff: fallback\n",
            "step 1 (line 5) handoff: expected 'fallback', got no handoff",
        ),
        (
            "- user: ыыы\n  bot: []\n",
            "step 1 (line 5) bot: expected replies containing , "
            "got 'Я не понял вас. Переформулируйте, пожалуйста.'",
        ),
        (
            "- user: /start\n- click: Доставка\n",
            "step 2 (line 6) click: expected 'Доставка', got no such button; the previous turn "
            "had 'Где мой заказ', 'Оператор', 'Сайт'",
        ),
        (
            "- click: Где мой заказ\n",
            "step 1 (line 5) click: expected 'Где мой заказ', got no such button; "
            "the previous turn had no buttons",
        ),
        (
            "- user: /start\n- click: Сайт\n",
            "step 2 (line 6) click: expected 'Сайт', got a link button (https://example.com): "
            "no message reaches the bot",
        ),
    ],
)
async def test_the_first_mismatch_is_reported(tmp_path: Path, steps: str, expected: str) -> None:
    result = await run_one(tmp_path, steps)
    assert not result.passed
    assert str(result.mismatch) == expected
    assert result.report().startswith(f"{tmp_path / 'conv.yml'}:2: t\n  {expected}")


async def test_each_test_starts_from_a_fresh_state(tmp_path: Path) -> None:
    cases = cases_from(
        tmp_path,
        """\
        tests:
          - name: first miss
            steps: [{user: ыыы}]
          - name: still the first miss
            steps: [{user: ыыы, bot: "Я не понял"}]
        """,
    )
    results = [await run_conversation(case, engine, NLU) for case in cases]
    assert all(result.passed for result in results)
    assert results[1].transcript[-1].startswith("< Я не понял")


def test_files_load_with_positions(tmp_path: Path) -> None:
    (tmp_path / "b.yml").write_text("tests:\n  - name: b\n    steps: [{user: x}]\n")
    (tmp_path / "a.yml").write_text("tests:\n  - name: a\n    steps:\n      - {click: X, bot: y}\n")
    cases = load_conversation_tests(tmp_path)
    assert [(case.name, Path(case.file).name, case.line) for case in cases] == [
        ("a", "a.yml", 2),
        ("b", "b.yml", 2),
    ]
    step = cases[0].steps[0]
    assert (step.click, step.user, step.line, step.expect.bot) == ("X", None, 4, ("y",))


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("tests: [{name: a}]\n", 1, "a test needs a name and steps"),
        ("tests: [{name: a, steps: []}]\n", 1, "a test needs at least one step"),
        ("tests: [{name: a, steps: [{bot: x}]}]\n", 1, "exactly one of user, click"),
        ("tests: [{name: a, steps: [{user: x, click: y}]}]\n", 1, "exactly one of user, click"),
        ("tests: [{name: a, steps: [{user: x, says: y}]}]\n", 1, "unknown key 'says'"),
        ("tests: [{name: a, steps: [{user: x, buttons: y}]}]\n", 1, "buttons must be a list"),
        ("tests: [{name: a, slots: [x], steps: [{user: x}]}]\n", 1, "slots must be a mapping"),
        ("tests:\n  - {name: a, steps: [{user: x}]}\n  - {name: a, steps: [{user: y}]}\n", 3,
         "test name 'a' is already used at line 2"),
        ("tests: {}\n", 1, "tests must be a list"),
        ("flows: {}\n", 1, "unknown key 'flows'"),
        ("tests: [\n", 2, "YAML syntax"),
    ],
)  # fmt: skip
def test_file_problems_point_at_their_line(
    tmp_path: Path, text: str, line: int, message: str
) -> None:
    path = tmp_path / "t.yml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConversationTestError) as caught:
        load_conversation_tests(path)
    problem = caught.value.problems[0]
    assert (problem.file, problem.line) == (str(path), line)
    assert message in problem.message
