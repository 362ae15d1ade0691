"""Every conversation test in tests/conversations/*.yml, each as its own pytest case.

They run through the real embedded NLU trained on nlu/data (once per session) and the shipped
flows, exactly as `supportbot test` runs them.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from bots.settings import DEFAULT_FLOWS_DIR, DEFAULT_NLU_DIR, PACKAGE_ROOT, Settings
from flows.engine import FlowEngine
from flows.loader import load_flows
from flows.model import FlowSet
from flows.testing import (
    ConversationTest,
    ConversationTestError,
    load_conversation_tests,
    run_conversation,
)
from nlu.cache import load_or_train
from nlu.data import load_training_data
from nlu.embedded import EmbeddedClassifier

CONVERSATIONS = PACKAGE_ROOT / "tests" / "conversations"


def _cases() -> list[ConversationTest | ConversationTestError]:
    # A broken test file becomes one failing case instead of a collection error that would
    # stop the whole pytest session.
    try:
        return list(load_conversation_tests(sorted(CONVERSATIONS.glob("*.yml"))))
    except ConversationTestError as exc:
        return [exc]


def _case_id(case: ConversationTest | ConversationTestError) -> str:
    if isinstance(case, ConversationTestError):
        return "unreadable-test-files"
    return f"{Path(case.file).stem}:{case.line}:{case.name}"


CASES = _cases()


def _default(name: str) -> object:
    return Settings.model_fields[name].default


@pytest.fixture(scope="module")
def shipped_flows() -> FlowSet:
    return load_flows(DEFAULT_FLOWS_DIR)


@pytest.fixture(scope="session")
def classifier(model_cache: Path) -> EmbeddedClassifier:
    data = load_training_data(DEFAULT_NLU_DIR)
    threshold = _default("nlu_threshold")
    assert isinstance(threshold, float)
    model, _ = load_or_train(data, cache_dir=model_cache, threshold=threshold)
    return model


def test_there_are_conversation_tests() -> None:
    assert CASES, f"no conversation tests in {CONVERSATIONS}"


@pytest.mark.parametrize("case", CASES, ids=_case_id)
async def test_conversation(
    case: ConversationTest | ConversationTestError,
    shipped_flows: FlowSet,
    classifier: EmbeddedClassifier,
) -> None:
    if isinstance(case, ConversationTestError):
        pytest.fail(str(case))
    language, misses = _default("language"), _default("misses_before_handoff")
    assert isinstance(language, str) and isinstance(misses, int)

    def engine() -> FlowEngine:
        return FlowEngine(shipped_flows, language, misses, rng=random.Random(0))

    result = await run_conversation(case, engine, classifier)
    assert result.passed, result.report()
