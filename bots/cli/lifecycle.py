"""How a running bot (`supportbot run`, the demo) answers the operating system's signals."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bots.runtime import Runtime


def stop_event(runtime: Runtime) -> asyncio.Event:
    """Set by SIGINT and SIGTERM (the roles finish what is on the wire, then stop); SIGHUP
    asks every process to reload flows, NLU and rules."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    with contextlib.suppress(NotImplementedError):
        loop.add_signal_handler(signal.SIGHUP, runtime.request_reload_soon, "SIGHUP")
    return stop
