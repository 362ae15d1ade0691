"""Train Rasa on an exported project and parse test texts in-process: bench.nlu_vs_rasa's Rasa side.

Runs inside the Rasa venv (Python 3.10, Rasa 3.6), not the project's:

    RASA_VENV/bin/python scripts/rasa_eval.py PROJECT_DIR TEXTS.json OUT.json

PROJECT_DIR is what `supportbot nlu export-rasa` writes; TEXTS.json a JSON list of strings.
OUT.json gets `{"train_seconds", "results": [{"parse": <Rasa's parse answer>, "seconds"}]}`.
Times exclude importing Rasa and TensorFlow (as the embedded side excludes importing sklearn);
parse times are of `Agent.parse_message`, what Rasa's `/model/parse` endpoint runs, without HTTP.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any


def main(project: Path, texts_file: Path, out: Path) -> None:
    from rasa.core.agent import Agent
    from rasa.model_training import train_nlu

    texts = json.loads(texts_file.read_text(encoding="utf-8"))
    start = time.perf_counter()
    model = train_nlu(
        config=str(project / "config.yml"),
        nlu_data=str(project / "data" / "nlu.yml"),
        output=str(project / "models"),
    )
    train_seconds = time.perf_counter() - start
    if model is None:
        sys.exit("rasa_eval: training produced no model")
    agent = Agent.load(model)
    results = asyncio.run(_parse_all(agent, texts))
    report = {"train_seconds": train_seconds, "model": str(model), "results": results}
    out.write_text(json.dumps(report, ensure_ascii=False, default=float), encoding="utf-8")


async def _parse_all(agent: Any, texts: list[str]) -> list[dict[str, Any]]:
    await agent.parse_message(texts[0] if texts else "warm-up")  # first call builds graphs
    results = []
    for text in texts:
        start = time.perf_counter()
        parse = await agent.parse_message(text)
        results.append({"parse": parse, "seconds": time.perf_counter() - start})
    return results


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
