"""Loading flow files: YAML syntax and structure, reported as file:line problems.

`load_flows` either returns a complete `FlowSet` or raises `FlowError` with every problem it
found in every file, so a trainer fixes them all in one round instead of one per run.
Cross-references (targets, intents, reserved flows) are `flows.validate`'s job.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import yaml

from flows.model import FLOW_ID, Flow, FlowSet, IntentRef, Pos, Step
from flows.parse_steps import parse_step
from flows.yamlnodes import YAML_LOADER, Node, Reader, is_null, line_of
from nlu.types import Problem

FILE_VERSION = 1
PathLike = str | Path


class FlowError(Exception):
    """Flow files that cannot be loaded; `problems` point at file and line."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(problem) for problem in problems))
        self.problems = problems


def flow_files(paths: PathLike | Sequence[PathLike]) -> tuple[list[Path], list[Problem]]:
    """The files to read: a directory gives its `*.yml` files in name order."""
    given = [Path(paths)] if isinstance(paths, str | Path) else [Path(p) for p in paths]
    files: list[Path] = []
    problems: list[Problem] = []
    for path in given:
        if path.is_dir():
            found = sorted(path.glob("*.yml"))
            if not found:
                problems.append(Problem(str(path), 0, "no *.yml flow files in this directory"))
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            problems.append(Problem(str(path), 0, "no such file or directory"))
    return files, problems


def load_flows(paths: PathLike | Sequence[PathLike]) -> FlowSet:
    files, problems = flow_files(paths)
    flows: dict[str, Flow] = {}
    for file in files:
        reader = Reader(str(file))
        for flow in _read_file(reader, file):
            if flow.id in flows:
                first = flows[flow.id].pos
                reader.error_at(flow.pos, f"flow '{flow.id}' is already defined at {first}")
            else:
                flows[flow.id] = flow
        problems.extend(reader.problems)
    if problems:
        raise FlowError(problems)
    return FlowSet(flows, tuple(str(file) for file in files))


def _read_file(r: Reader, file: Path) -> list[Flow]:
    try:
        source = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        r.problems.append(Problem(r.file, 0, f"cannot read the file: {exc}"))
        return []
    try:
        root = yaml.compose(source, Loader=YAML_LOADER)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 0
        r.problems.append(Problem(r.file, line, f"YAML syntax: {exc.problem or exc.context}"))
        return []
    except yaml.YAMLError as exc:
        r.problems.append(Problem(r.file, 0, f"YAML syntax: {exc}"))
        return []
    if root is None or is_null(root):
        return []  # an empty file holds no flows; validate reports what is then missing
    return _read_document(r, root)


def _read_document(r: Reader, root: Node) -> list[Flow]:
    entries = r.mapping(root, "a flow file", ("version", "flows"))
    if entries is None:
        return []
    if "version" in entries and str(entries["version"].value) != str(FILE_VERSION):
        r.error(entries["version"], f"unsupported version (this engine reads {FILE_VERSION})")
        return []
    if "flows" not in entries:
        r.error(root, "a flow file needs a 'flows:' mapping")
        return []
    flows_node = entries["flows"]
    found = r.mapping(flows_node, "flows") or {}
    key_lines = _key_lines(flows_node)
    flows = (_read_flow(r, flow_id, node, key_lines[flow_id]) for flow_id, node in found.items())
    return [flow for flow in flows if flow is not None]


def _key_lines(node: Node) -> dict[str, int]:
    if not isinstance(node, yaml.MappingNode):
        return {}
    return {str(key.value): line_of(key) for key, _ in node.value}


def _read_flow(r: Reader, flow_id: str, node: Node, line: int) -> Flow | None:
    pos = Pos(r.file, line)
    if not FLOW_ID.fullmatch(flow_id):
        r.error_at(pos, f"flow id '{flow_id}' may only use a-z, 0-9 and _")
        return None
    entries = r.mapping(node, f"flow '{flow_id}'", ("description", "intents", "steps"))
    if entries is None:
        return None
    if "steps" not in entries:
        r.error_at(pos, f"flow '{flow_id}' needs steps")
        return None
    description = ""
    if "description" in entries:
        description = r.string(entries["description"], "description") or ""
    intents = _intents(r, entries["intents"]) if "intents" in entries else ()
    steps = _steps(r, entries["steps"], flow_id)
    if steps is None:
        return None
    return Flow(flow_id, steps, pos, intents, description)


def _intents(r: Reader, node: Node) -> tuple[IntentRef, ...]:
    items = r.sequence(node, "intents") or []
    refs = []
    for item in items:
        name = r.string(item, "an intent")
        if name is not None:
            refs.append(IntentRef(name, r.pos(item)))
    return tuple(refs)


def _steps(r: Reader, node: Node, flow_id: str) -> tuple[Step, ...] | None:
    items = r.sequence(node, "steps")
    if items is None:
        return None
    if not items:
        r.error(node, f"flow '{flow_id}' has no steps")
        return None
    steps = [parse_step(r, item) for item in items]
    seen: dict[str, Pos] = {}
    for step in steps:
        if step is None or step.id is None:
            continue
        if step.id in seen:
            first = seen[step.id].line
            r.error_at(step.pos, f"step id '{step.id}' is already used at line {first}")
        seen.setdefault(step.id, step.pos)
    if None in steps:
        return None
    return tuple(step for step in steps if step is not None)
