"""Operators' replies become knowledge: a desk template, or a draft answer for a flow.

Drafts go to one YAML file outside FLOWS_DIR (`FLOW_DRAFTS_FILE`, default
DATA_DIR/flow-drafts.yml) written in the flows format, so a trainer reviews a draft, moves it
into a flows file and runs `supportbot validate`; nothing reaches customers unreviewed. The
file is edited by ruamel.yaml's round trip, keeping the trainer's comments and edits.
"""

from __future__ import annotations

import io
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.scalarstring import LiteralScalarString

from bots.trainer.nlu_files import locked, write_atomic
from handoff.conversations import ConversationStore

INTENT = re.compile(r"^[A-Za-z0-9_]{1,64}$")
_DRAFTS_HEADER = """\
# Flow answers drafted from operators' replies (/toflow; supportbot inbox toflow).
# Not read by the bot: FLOWS_DIR is.
# Review a draft, move it into a file in FLOWS_DIR and run `supportbot validate`.
version: 1
flows:
"""


@dataclass(frozen=True, slots=True)
class OperatorReply:
    number: int  # 1-based among the conversation's operator replies shown, oldest first
    text: str
    operator: str
    at: float
    message_id: int = 0  # the operator's message in the desk (what a /toflow reply points at)


async def operator_replies(store: ConversationStore, conv: str, last: int = 200
                           ) -> list[OperatorReply]:
    """The operators' text messages to the customer among the last `last` transcript entries."""
    entries = await store.transcript(conv, last)
    replies = [entry for entry in entries
               if entry.get("dir") == "out" and entry.get("operator") and entry.get("text")
               and "edit_of" not in entry]
    return [OperatorReply(number, str(entry["text"]), str(entry["operator"]),
                          float(entry.get("at", 0)), int(entry.get("message_id", 0)))
            for number, entry in enumerate(replies, start=1)]


class FlowDrafts:
    def __init__(self, path: Path) -> None:
        self.path = path

    def add(self, intent: str, text: str, source: str) -> str:
        """Append a draft flow answering `intent` with `text`; returns the draft's flow id."""
        if not INTENT.match(intent):
            raise ValueError("intent: letters, digits and _ only")
        text = text.strip()
        if not text:
            raise ValueError("the answer is empty")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with locked(self.path.parent, f".{self.path.name}.lock"):
            yaml = YAML()
            yaml.width = 4096
            yaml.indent(mapping=2, sequence=4, offset=2)
            source_text = (self.path.read_text(encoding="utf-8") if self.path.exists()
                           else _DRAFTS_HEADER)
            document: Any = yaml.load(source_text)
            if document.get("flows") is None:
                document["flows"] = CommentedMap()
            flows = document["flows"]
            number = 1 + sum(1 for name in flows if str(name).startswith(f"{intent.lower()}_draft"))
            flow_id = f"{intent.lower()}_draft_{number}"
            flows[flow_id] = {
                "description": f"draft: {source}, {time.strftime('%Y-%m-%d %H:%M', time.gmtime())}"
                               " UTC",
                "intents": [intent],
                "steps": [{"say": LiteralScalarString(text) if "\n" in text else text}],
            }
            write_atomic(self.path, _dump(yaml, document))
        return flow_id


def _dump(yaml: YAML, document: Any) -> str:
    out = io.StringIO()
    yaml.dump(document, out)
    return out.getvalue()
