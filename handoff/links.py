"""One customer on two networks: linking a Telegram and a VK account, explicitly.

`/link` in one network gives a one-time code (`offer`); typing it in the other links the two
(`accept`): the conversation that asked is the *home*, the one that typed the code becomes its
*alias*. From then on `ConversationStore.load(alias)` returns the home, so both networks share
one state, one queue place, one desk topic and one history, and every commit made while the
customer speaks records where they wrote from (`route`): replies go there. `unlink` undoes it.
Nothing is ever linked by guessing (names, phone numbers): only a code the customer typed.

Codes are 8 characters from an unambiguous alphabet, written `XXXX-XXXX` (about 10^12 of
them, valid 10 minutes, spent on use), so a stranger cannot guess one and an order number is
never mistaken for one.
"""

from __future__ import annotations

import re
import secrets
import time

from redis.asyncio import Redis

from handoff.keys import Keys
from handoff.scripts import Scripts

ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
CODE = re.compile(r"^\s*([A-Za-z0-9]{4})-([A-Za-z0-9]{4})\s*$")
COPIED = 20  # transcript entries of the alias shown in the home's history


class Links:
    def __init__(self, redis: Redis, keys: Keys, scripts: Scripts, *, ttl: int = 600,
                 journal_maxlen: int = 100_000, transcript_max: int = 200) -> None:
        self._redis = redis
        self._keys = keys
        self._scripts = scripts
        self.ttl = ttl
        self._journal_maxlen = journal_maxlen
        self._transcript_max = transcript_max

    @staticmethod
    def parse_code(text: str) -> str | None:
        """The code in a message that is nothing but a code, normalised; else None."""
        match = CODE.match(text)
        return f"{match[1]}-{match[2]}".upper() if match else None

    async def offer(self, conv: str) -> str:
        """A fresh one-time code that links another network's account to `conv`."""
        while True:
            code = "-".join("".join(secrets.choice(ALPHABET) for _ in range(4))
                            for _ in range(2))
            if await self._redis.set(self._keys.link_code(code), conv, nx=True, ex=self.ttl):
                return code

    async def accept(self, code: str, alias: str) -> str:
        """Link `alias` to the conversation that offered `code`: `ok`, or why not: `unknown`
        (no such code, or expired), `same_channel`, `already_linked`, `busy` (the alias is
        with an operator)."""
        home = await self._redis.get(self._keys.link_code(code))
        if home is None:
            return "unknown"
        home = str(home)
        if home.split(":", 1)[0] == alias.split(":", 1)[0]:
            return "same_channel"
        return str(await self._scripts["link"](
            keys=[self._keys.link_code(code), self._keys.conversation(home),
                  self._keys.conversation(alias), self._keys.transcript(home),
                  self._keys.transcript(alias), self._keys.journal()],
            args=[home, alias, time.time(), self._journal_maxlen, self._transcript_max, COPIED],
        ))

    async def unlink(self, home: str, alias: str) -> bool:
        done = await self._scripts["unlink"](
            keys=[self._keys.conversation(home), self._keys.conversation(alias),
                  self._keys.transcript(home), self._keys.journal()],
            args=[home, alias, time.time(), self._journal_maxlen, self._transcript_max],
        )
        return str(done) == "ok"
