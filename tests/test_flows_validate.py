"""`validate_flows`: each kind of problem, with its severity, file and line."""

from __future__ import annotations

import textwrap
from pathlib import Path

from flows.loader import load_flows
from flows.validate import validate_flows

RESERVED = """\
version: 1
flows:
  start:
    steps: [{say: hi}]
  fallback:
    steps: [{say: what?}]
  fallback_handoff:
    steps: [{handoff: {reason: fallback}}]
"""
FIRST_LINE = RESERVED.count("\n") + 1  # the line the tested flows start at


Where = int | str


def check(
    tmp_path: Path,
    body: str,
    known: set[str] | None = None,
    sources: dict[str, tuple[str, int]] | None = None,
) -> list[tuple[Where, str, str]]:
    """(where, severity, message) of each problem: a line counted from the start of `body`
    for problems in the flows file, else `file:line`."""
    path = tmp_path / "flows.yml"
    path.write_text(RESERVED + textwrap.indent(textwrap.dedent(body), "  "), encoding="utf-8")
    problems = validate_flows(load_flows(path), known, sources)
    return [
        (
            p.line - FIRST_LINE + 1 if p.file == str(path) else f"{p.file}:{p.line}",
            p.severity,
            p.message,
        )
        for p in problems
    ]


def test_clean_flows_have_no_problems(tmp_path: Path) -> None:
    body = """\
    order:
      intents: [order]
      steps:
        - {ask: number, text: "Номер?", on_fail: help}
        - say: "Заказ {number}, {first_name}"
          buttons: [{title: Ещё, intent: order}, {title: Сайт, url: "https://x.ru"}]
        - end
        - {id: help, goto: "flow:fallback_handoff"}
    """
    assert check(tmp_path, body, known={"order", "out_of_scope"}) == []


def test_missing_reserved_flows_are_errors(tmp_path: Path) -> None:
    path = tmp_path / "f.yml"
    path.write_text("flows:\n  start:\n    steps: [end]\n", encoding="utf-8")
    problems = validate_flows(load_flows(path))
    assert [(p.file, p.line, p.severity, p.message) for p in problems] == [
        (str(path), 0, "error", "the reserved flow 'fallback' is missing"),
        (str(path), 0, "error", "the reserved flow 'fallback_handoff' is missing"),
    ]


def test_jumps_and_buttons_that_lead_nowhere(tmp_path: Path) -> None:
    body = """\
    f:
      intents: [f]
      steps:
        - goto: nowhere
        - {if: {slot: first_name, exists: true}, then: "flow:nope", else: gone}
        - {ask: x, text: q, on_fail: lost}
        - say: s
          buttons: [{title: t, flow: missing}]
    """
    assert check(tmp_path, body) == [
        (4, "error", "no step 'nowhere' in flow 'f'"),
        (5, "error", "no flow 'nope'"),
        (5, "error", "no step 'gone' in flow 'f'"),
        (5, "warning", "step 2 of flow 'f' can never run: nothing leads to it"),
        (6, "error", "no step 'lost' in flow 'f'"),
        (8, "error", "button: no flow 'missing'"),
    ]


def test_intents_against_the_training_data(tmp_path: Path) -> None:
    body = """\
    f:
      intents: [known, unknown, out_of_scope, known]
      steps:
        - say: s
          buttons: [{title: a, intent: untrained}]
    g:
      intents: [known]
      steps: [end]
    """
    known = {"known", "spare", "other", "out_of_scope"}
    found = check(tmp_path, body, known, sources={"spare": ("nlu/data/x.yml", 12)})
    unhandled = "has training data but no flow handles it (it goes to fallback)"
    owner = f"{tmp_path / 'flows.yml'}:{FIRST_LINE}"
    assert sorted(found, key=str) == sorted(
        [
            (1 - FIRST_LINE, "warning", f"intent 'other' {unhandled}"),  # no source: line 0
            ("nlu/data/x.yml:12", "warning", f"intent 'spare' {unhandled}"),
            (1, "warning", "intent 'known' is listed 2 times"),
            (2, "error", "intent 'unknown' has no training data"),
            (2, "error", "out_of_scope always goes to fallback; it cannot start a flow"),
            (5, "error", "button: intent 'untrained' has no training data"),
            (5, "error", "button: no flow handles intent 'untrained'"),
            (7, "error", f"intent 'known' is already handled by flow 'f' ({owner})"),
        ],
        key=str,
    )


def test_without_training_data_the_intent_checks_are_skipped(tmp_path: Path) -> None:
    body = """\
    f:
      intents: [anything]
      steps: [end]
    """
    assert check(tmp_path, body, known=None) == []


def test_steps_that_can_never_run_are_reported_once_per_stretch(tmp_path: Path) -> None:
    body = """\
    f:
      intents: [f]
      steps:
        - goto: c
        - say: dead 1
        - say: dead 2
        - {id: c, if: {slot: first_name, exists: true}, then: e, else: e}
        - say: dead 3
        - {id: e, handoff: {reason: r}}
        - say: dead 4
    """
    assert check(tmp_path, body) == [
        (5, "warning", "step 2 of flow 'f' can never run: nothing leads to it"),
        (8, "warning", "step 5 of flow 'f' can never run: nothing leads to it"),
        (10, "warning", "step 7 of flow 'f' can never run: nothing leads to it"),
    ]


def test_loops_without_an_ask(tmp_path: Path) -> None:
    body = """\
    spin:
      intents: [spin]
      steps:
        - {id: top, say: again}
        - goto: top
    maybe:
      intents: [maybe]
      steps:
        - {id: top, if: {slot: first_name, exists: true}, then: top}
    ping:
      intents: [ping]
      steps: [{goto: "flow:pong"}]
    pong:
      steps: [{goto: "flow:ping"}]
    asking:
      intents: [asking]
      steps:
        - {id: top, ask: x, text: q}
        - goto: top
    """
    found = check(tmp_path, body)
    assert [(where, severity) for where, severity, _ in found] == [
        (4, "error"),
        (9, "warning"),
        (12, "error"),
    ]
    stop = "the engine stops a turn after 100 steps and hands off"
    assert found[0][2] == f"these steps loop without an ask (spin step 1 → spin step 2); {stop}"
    assert "(ping step 1 → pong step 1)" in found[2][2]


def test_slots_that_nothing_fills(tmp_path: Path) -> None:
    body = """\
    f:
      intents: [f]
      steps:
        - ask: asked
          text: q
        - say: "{first_name}, {nick}, {{literal}}"
        - set: {nick: "{first_name}", label: "{nowhere}"}
        - {if: {slot: ghost, exists: true}, then: done}
        - id: done
          end: {ru: "{asked} {typo}", en: "{asked}"}
    """
    assert check(tmp_path, body) == [
        (7, "error", "{nowhere} is never filled: no ask or set stores slot 'nowhere'"),
        (8, "warning", "if: slot 'ghost' is never filled by an ask or set"),
        (10, "error", "{typo} is never filled: no ask or set stores slot 'typo'"),
    ]


def test_button_titles_and_value_buttons(tmp_path: Path) -> None:
    title = "x" * 65
    body = f"""\
    f:
      intents: [f]
      steps:
        - say: s
          buttons:
            - {{title: {title}, flow: start}}
            - {{title: ok, value: v}}
        - ask: a
          text: q
          buttons: [{{title: same, value: a}}, {{title: same, value: b}}]
    """
    assert check(tmp_path, body) == [
        (6, "error", "button title longer than 64 characters"),
        (7, "warning", "a value button only answers an ask: put it on the ask step"),
        (8, "warning", "two buttons are titled 'same'"),
    ]


def test_flows_that_can_never_start(tmp_path: Path) -> None:
    body = """\
    orphan:
      steps: [end]
    by_button:
      steps: [end]
    by_goto:
      steps: [end]
    entry:
      intents: [entry]
      steps:
        - say: s
          buttons: [{title: b, flow: by_button}]
        - goto: "flow:by_goto"
    """
    assert check(tmp_path, body) == [
        (1, "warning", "flow 'orphan' can never start: no intents, buttons or goto lead to it")
    ]


def test_fallback_handoff_should_reach_a_handoff(tmp_path: Path) -> None:
    path = tmp_path / "f.yml"
    text = RESERVED.replace("[{handoff: {reason: fallback}}]", "[{goto: 'flow:human'}]")
    path.write_text(text + "  human:\n    steps: [{say: a}, {handoff: {reason: r}}]\n")
    assert validate_flows(load_flows(path)) == []
    path.write_text(RESERVED.replace("[{handoff: {reason: fallback}}]", "[{say: bye}]"))
    [problem] = validate_flows(load_flows(path))
    assert (problem.line, problem.severity) == (7, "warning")
    assert problem.message == "flow 'fallback_handoff' never reaches a handoff step"
