"""Appending examples to the Rasa NLU YAML files, keeping their comments and layout.

ruamel.yaml's round trip rewrites only the example block that grows (its indentation is guessed
from the file), so a trainer's diff shows just the new lines. Writes are atomic (temporary
file, rename) and serialised by a lock file beside the data, because the desk's `/learn` in one
worker process and `supportbot inbox assign` may append at the same moment.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.scalarstring import LiteralScalarString
from ruamel.yaml.util import load_yaml_guess_indent

from nlu.annotations import parse_annotations
from nlu.data import DataError, load_training_data
from nlu.normalize import normalize
from nlu.types import Problem

NEW_INTENTS_FILE = "learned.yml"  # where intents that exist nowhere yet are started
MAX_EXAMPLE = 300  # longer messages are stories, not examples
_NEW_FILE = """version: "3.1"
# Intents started from the trainers' inbox (supportbot inbox assign --new-intent).
# Move them to a topical file when they grow; every *.yml here is training data.
nlu:
"""


@dataclass(slots=True)
class Appended:
    file: Path | None = None
    added: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (text, why)


def clean_example(text: str) -> str:
    """One line, single spaces: how a message becomes an example."""
    return " ".join(text.split())


def append_examples(
    data_dir: Path, intent: str, texts: Sequence[str], *, new_intent: bool = False
) -> Appended:
    """Add `texts` as examples of `intent` to the file that defines it.

    Raises DataError when the data cannot be read or the intent is unknown (and `new_intent`
    is not set). Texts already taught (to this or another intent, compared normalised) or
    holding entity markup are skipped with the reason, never written.
    """
    with locked(data_dir):
        data = load_training_data(data_dir)
        if intent not in data.intents and not new_intent:
            raise DataError([Problem(str(data_dir), 0, f"unknown intent {intent!r}")])
        taught = {normalize(example.text): example.intent for example in data.examples}
        result = Appended()
        for text in texts:
            example = clean_example(text)
            why = _refusal(example, taught)
            if why:
                result.skipped.append((text, why))
                continue
            taught[normalize(example)] = intent
            result.added.append(example)
        examples = data.intents.get(intent)
        target = Path(examples[0].file) if examples else data_dir / NEW_INTENTS_FILE
        result.file = target
        if result.added:
            _append(target, intent, result.added)
        return result


def _refusal(example: str, taught: dict[str, str]) -> str:
    if not example:
        return "empty"
    if len(example) > MAX_EXAMPLE:
        return f"longer than {MAX_EXAMPLE} characters"
    if parse_annotations(example)[0] != example:
        return "looks like entity markup ([text](entity))"
    known = taught.get(normalize(example))
    if known is not None:
        return f"already an example of {known}"
    return ""


def _append(path: Path, intent: str, examples: Sequence[str]) -> None:
    lines = "".join(f"      - {e}\n" for e in examples)
    if not path.exists():
        write_atomic(path, f"{_NEW_FILE}  - intent: {intent}\n    examples: |\n{lines}")
        return
    source = path.read_text(encoding="utf-8")
    _, indent, block_indent = load_yaml_guess_indent(source)
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 4096  # never fold a long example onto two lines
    yaml.indent(mapping=block_indent or 2, sequence=indent or 4, offset=block_indent or 2)
    document: Any = yaml.load(source)
    items = document["nlu"]
    item = next((i for i in items if isinstance(i, dict) and i.get("intent") == intent), None)
    if item is None:
        item = {"intent": intent, "examples": LiteralScalarString("")}
        items.append(item)
    block = str(item.get("examples") or "")
    if block and not block.endswith("\n"):
        block += "\n"
    item["examples"] = LiteralScalarString(block + "".join(f"- {e}\n" for e in examples))
    out = io.StringIO()
    yaml.dump(document, out)
    write_atomic(path, out.getvalue())


def write_atomic(path: Path, text: str) -> None:
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".learn-", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def locked(directory: Path, name: str = ".learn.lock") -> Iterator[None]:
    """An exclusive lock across processes; a hidden file, so never read as data."""
    with open(directory / name, "a", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
