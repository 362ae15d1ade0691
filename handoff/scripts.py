"""Lua scripts of handoff/lua, registered once per client and called by EVALSHA."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

LUA_DIR = Path(__file__).parent / "lua"


INCLUDE = "--!include "


@cache
def _source(name: str) -> str:
    """The script's text, with each `--!include NAME` line replaced by lua/NAME.lua: Redis
    scripts cannot share functions, and the report counters must be the same in every script
    that counts (there is one copy of them in the repository, pasted at load time)."""
    lines = (LUA_DIR / f"{name}.lua").read_text(encoding="utf-8").splitlines()
    return "\n".join(
        _source(line.removeprefix(INCLUDE).strip()) if line.startswith(INCLUDE) else line
        for line in lines
    ) + "\n"


class Scripts:
    """Holds the registered scripts of one Redis client (redis-py reloads them after a flush)."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._scripts: dict[str, AsyncScript] = {}

    def __getitem__(self, name: str) -> AsyncScript:
        script = self._scripts.get(name)
        if script is None:
            script = self._redis.register_script(_source(name))
            self._scripts[name] = script
        return script
