"""The Rasa backend against a real Rasa server (`scripts/rasa-server.sh serve`).

Runs when RASA_URL (default http://127.0.0.1:5005) answers `/model/parse`; otherwise it is
skipped and the reason (what the probe got) is printed in pytest's summary.
"""

from __future__ import annotations

import os

import pytest

from bots.turns import Brain
from nlu.data import load_training_data
from nlu.rasa import RasaBackend, probe
from nlu.types import OUT_OF_SCOPE
from tests.test_nlu_demo import HELDOUT

RASA_URL = os.environ.get("RASA_URL", "http://127.0.0.1:5005")


@pytest.fixture
async def live_url() -> str:
    why = await probe(RASA_URL, timeout=5.0)
    if why is not None:
        pytest.skip(f"no Rasa server at {RASA_URL} ({why}); start one with "
                    "scripts/rasa-server.sh serve, or set RASA_URL")
    return RASA_URL


async def test_real_rasa_parses_the_held_out_phrasings(live_url: str, brain: Brain) -> None:
    nlu = RasaBackend(live_url, brain.nlu, threshold=0.35, timeout=5.0)
    examples = [e for e in load_training_data(HELDOUT).examples if e.intent != OUT_OF_SCOPE]
    hits = 0
    for example in examples:
        result = await nlu.parse(example.text)
        assert not nlu.down, f"Rasa stopped answering at {example.text!r}"
        hits += result.intent == example.intent
        assert result.ranking and result.ranking[0].name in brain.nlu.known_intents()
    # Rasa trained by the script on the demo data: far better than chance on 32 intents
    assert hits / len(examples) > 0.6
