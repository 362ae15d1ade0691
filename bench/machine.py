"""How fast this machine runs Python right now, printed beside the figures.

The machines here vary about 2x between days (shared cores), and every latency figure moves
with them; one calibration line makes two runs' figures comparable.
"""

from __future__ import annotations

import os
import time


def python_loop_seconds(iterations: int = 10_000_000) -> float:
    """CPU seconds for a plain loop of additions (0.23 s here on 2026-12-02)."""
    start = time.process_time()
    total = 0
    for number in range(iterations):
        total += number
    return time.process_time() - start


def speed_line() -> str:
    return (f"machine: {os.cpu_count()} cores; 10M Python additions in "
            f"{python_loop_seconds():.2f} s of CPU (the lower, the faster)")
