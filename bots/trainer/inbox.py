"""The trainers' inbox put to work: similar messages grouped, a batch labelled into the data.

`handoff.inbox` stores and marks entries; `nlu.inbox` groups texts; `bots.trainer.nlu_files`
writes the examples. Labelling writes the YAML first and marks the entries afterwards, so a
crash in between leaves them open, and labelling them again finds them already taught (to the
same intent) and only marks them.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bots.trainer.nlu_files import Appended, append_examples
from handoff.inbox import Inbox, InboxEntry
from nlu.inbox import group_texts


@dataclass(frozen=True, slots=True)
class InboxGroup:
    number: int  # 1-based, in the order shown (largest first)
    entries: tuple[InboxEntry, ...]

    @property
    def text(self) -> str:
        """The group's first message: the one the others were found similar to."""
        return self.entries[0].text

    @property
    def conversations(self) -> int:
        return len({entry.conv for entry in self.entries})

    @property
    def guesses(self) -> list[tuple[str, int]]:
        """The NLU's best guesses over the group's messages, most frequent first."""
        return Counter(e.top_guess for e in self.entries if e.top_guess).most_common(3)


@dataclass(slots=True)
class Labelled:
    intent: str
    appended: Appended = field(default_factory=Appended)
    marked: list[str] = field(default_factory=list)  # inbox ids now done
    left_open: list[InboxEntry] = field(default_factory=list)  # refused: see appended.skipped


def grouped(entries: Sequence[InboxEntry]) -> list[InboxGroup]:
    indices = group_texts([entry.text for entry in entries])
    return [InboxGroup(number, tuple(entries[i] for i in group))
            for number, group in enumerate(indices, start=1)]


async def label(
    inbox: Inbox, data_dir: Path, entries: Sequence[InboxEntry], intent: str, *,
    new_intent: bool = False,
) -> Labelled:
    """Teach `entries` as examples of `intent` and mark them done.

    Raises `nlu.data.DataError` (unreadable data, unknown intent) before anything changes.
    Entries refused as examples (markup, taught to another intent) stay open."""
    appended = await asyncio.to_thread(
        append_examples, data_dir, intent, [entry.text for entry in entries],
        new_intent=new_intent,
    )
    same = f"already an example of {intent}"
    refused = {text for text, why in appended.skipped if why != same}
    result = Labelled(intent, appended)
    result.left_open = [entry for entry in entries if entry.text in refused]
    result.marked = [entry.id for entry in entries if entry.text not in refused and entry.id]
    await inbox.resolve(result.marked, f"intent:{intent}")
    return result
