"""Conversation tests: scripted dialogues run through a real NLU and the engine in memory.

The file format is described in docs/flows.md. `load_conversation_tests` reads files (problems
at file:line); `run_conversation` plays one test against a fresh engine and reports the first
step whose reply differs from the script.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from flows.engine import DialogueState, FlowEngine, Reply, Turn, TurnResult
from flows.testing_files import (
    ConversationTest,
    ConversationTestError,
    Expect,
    ScriptStep,
    load_conversation_tests,
)
from flows.texts import fold
from nlu.types import NLUBackend

__all__ = [
    "ConversationResult",
    "ConversationTest",
    "ConversationTestError",
    "Mismatch",
    "load_conversation_tests",
    "run_conversation",
]

#: What a customer's `/start` becomes: the runtime sends it to the engine as this payload.
START_COMMAND = "/start"
START_PAYLOAD = "flow:start"

EngineFactory = Callable[[], FlowEngine]


@dataclass(frozen=True, slots=True)
class Mismatch:
    step: int  # 1-based
    line: int
    what: str  # intent | bot | buttons | handoff | click
    expected: str
    got: str

    def __str__(self) -> str:
        where = f"step {self.step} (line {self.line}) {self.what}"
        return f"{where}: expected {self.expected}, got {self.got}"


@dataclass(frozen=True, slots=True)
class ConversationResult:
    test: ConversationTest
    mismatch: Mismatch | None
    transcript: tuple[str, ...] = field(default_factory=tuple)

    @property
    def passed(self) -> bool:
        return self.mismatch is None

    def report(self) -> str:
        """The failure (if any) and the dialogue up to it, for pytest and `supportbot test -v`."""
        head = f"{self.test.location}: {self.test.name}"
        lines = [head if self.passed else f"{head}\n  {self.mismatch}"]
        lines += (f"    {line}" for line in self.transcript)
        return "\n".join(lines)


async def run_conversation(
    test: ConversationTest, engine_factory: EngineFactory, nlu: NLUBackend
) -> ConversationResult:
    engine = engine_factory()
    state = DialogueState(slots=dict(test.slots))
    transcript: list[str] = []
    previous: tuple[Reply, ...] = ()
    for number, step in enumerate(test.steps, 1):
        turn = await _turn(step, previous, nlu)
        if isinstance(turn, str):
            mismatch = Mismatch(number, step.line, "click", repr(step.click), turn)
            return ConversationResult(test, mismatch, tuple(transcript))
        result = engine.handle(state, turn)
        transcript += _transcript(step, result)
        found = _compare(step.expect, result)
        if found is not None:
            return ConversationResult(test, Mismatch(number, step.line, *found), tuple(transcript))
        state, previous = result.state, result.replies
    return ConversationResult(test, None, tuple(transcript))


async def _turn(step: ScriptStep, previous: Sequence[Reply], nlu: NLUBackend) -> Turn | str:
    """The engine input for a script step, or why a click cannot be made."""
    if step.user is not None:
        if step.user.strip() == START_COMMAND:
            return Turn(payload=START_PAYLOAD)
        return Turn(text=step.user, parse=await nlu.parse(step.user))
    titles = [button.title for reply in previous for button in reply.buttons]
    for reply in reversed(previous):
        for button in reply.buttons:
            if button.title == step.click:
                if button.payload is None:
                    return f"a link button ({button.url}): no message reaches the bot"
                return Turn(payload=button.payload)
    return f"no such button; the previous turn had {_quoted(titles) or 'no buttons'}"


def _compare(expect: Expect, result: TurnResult) -> tuple[str, str, str] | None:
    """(what, expected, got) for the first expectation the turn does not meet."""
    if expect.intent is not None and result.intent != expect.intent:
        return "intent", repr(expect.intent), f"{result.intent!r} ({result.confidence:.2f})"
    replies = [reply.text for reply in result.replies]
    if expect.bot is not None and not _bot_matches(expect.bot, expect.bot_is_list, replies):
        wanted = _quoted(expect.bot)
        expected = (
            f"replies containing {wanted}" if expect.bot_is_list else f"a reply containing {wanted}"
        )
        return "bot", expected, _quoted(replies) or "no reply"
    if expect.buttons is not None:
        titles = [button.title for button in result.replies[-1].buttons] if result.replies else []
        if titles != list(expect.buttons):
            return "buttons", f"[{_quoted(expect.buttons)}]", f"[{_quoted(titles)}]"
    if expect.handoff is not None:
        got = result.handoff.reason if result.handoff else None
        if got != expect.handoff:
            return "handoff", repr(expect.handoff), repr(got) if got else "no handoff"
    return None


def _bot_matches(expected: Sequence[str], one_per_reply: bool, replies: Sequence[str]) -> bool:
    # Containment ignoring case (and ё/е) keeps scripts readable and robust to text variants.
    folded = [fold(reply) for reply in replies]
    if one_per_reply:
        return len(expected) == len(folded) and all(
            fold(part) in reply for part, reply in zip(expected, folded, strict=True)
        )
    return any(fold(expected[0]) in reply for reply in folded)


def _quoted(values: Sequence[str]) -> str:
    return ", ".join(repr(value) for value in values)


def _transcript(step: ScriptStep, result: TurnResult) -> list[str]:
    said = step.user if step.user is not None else f"[{step.click}]"
    intent = f"  ({result.intent} {result.confidence:.2f})" if result.intent else ""
    lines = [f"> {said}{intent}"]
    for reply in result.replies:
        buttons = "".join(f" [{button.title}]" for button in reply.buttons)
        lines.append(f"< {reply.text}{buttons}")
    if result.handoff is not None:
        lines.append(f"= handoff {result.handoff.reason} ({result.handoff.priority})")
    return lines
