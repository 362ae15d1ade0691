"""One embedded Redis per data directory: attach reuses it, the last one out stops it."""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier, Event
from pathlib import Path

import pytest
import redis as sync_redis

from handoff import embedded_redis
from handoff.embedded_redis import STATE_FILE, EmbeddedRedis, EmbeddedRedisError
from handoff.keys import Keys

pytestmark = pytest.mark.skipif(not Path("/proc/self/cwd").exists(),
                                reason="finds the redis-server processes through /proc")

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-c", "from bots.cli.main import main; main()"]
RACERS = 4


def servers_of(data_dir: Path) -> list[int]:
    """The live redis-server processes working in `data_dir`.

    redis-server rewrites its command line (the process title drops `--dir`), but it changes
    into its data directory: /proc/PID/cwd tells."""
    target = str(data_dir.resolve())
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if (proc / "comm").read_text().strip() != "redis-server":
                continue
            if (proc / "stat").read_text().rpartition(")")[2].split()[0] == "Z":
                continue  # exited, waiting for its parent to reap it
            if os.readlink(proc / "cwd") != target:
                continue
        except OSError:  # gone meanwhile, or another user's
            continue
        pids.append(int(proc.name))
    return sorted(pids)


def state_pid(data_dir: Path) -> int:
    pid: int = json.loads((data_dir / STATE_FILE).read_text(encoding="utf-8"))["pid"]
    return pid


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.02)


def client(handle: EmbeddedRedis) -> sync_redis.Redis:
    return sync_redis.Redis.from_url(handle.url, decode_responses=True)


class Servers:
    """Attaches to one data directory; whatever a test leaves behind is stopped afterwards."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.handles: list[EmbeddedRedis] = []

    def attach(self) -> EmbeddedRedis:
        handle = EmbeddedRedis.attach(self.data_dir)
        self.handles.append(handle)
        return handle

    def clean_up(self) -> None:
        for handle in self.handles:
            with contextlib.suppress(Exception):  # a failed test's server: kill it below
                handle.stop()
        for pid in servers_of(self.data_dir):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not servers_of(self.data_dir), "the left-over servers are gone")


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Servers]:
    servers = Servers(tmp_path / "redis")
    try:
        yield servers
    finally:
        servers.clean_up()


def test_two_attaches_share_one_server(servers: Servers) -> None:
    first = servers.attach()
    second = servers.attach()

    assert second.url == first.url
    assert servers_of(servers.data_dir) == [state_pid(servers.data_dir)]
    with client(first) as one, client(second) as other:
        one.set("shared", "yes")
        assert other.get("shared") == "yes"


def test_the_first_stop_leaves_the_server_to_the_second(servers: Servers) -> None:
    first, second = servers.attach(), servers.attach()
    pid = state_pid(servers.data_dir)
    with client(first) as writer:
        writer.set("note", "written through the first")

    with client(second) as reader:
        reader.ping()  # connected before the first one leaves, like a running bot
        first.stop()
        assert reader.get("note") == "written through the first"
    assert servers_of(servers.data_dir) == [pid]
    assert state_pid(servers.data_dir) == pid


def test_the_last_stop_shuts_the_server_down_and_keeps_its_data(servers: Servers) -> None:
    first, second = servers.attach(), servers.attach()
    pid = state_pid(servers.data_dir)
    with client(first) as writer:
        writer.set("kept", "across restarts")
    first.stop()
    second.stop()

    assert servers_of(servers.data_dir) == []
    assert not (servers.data_dir / STATE_FILE).exists()
    third = servers.attach()  # a new server, reading the AOF the old one wrote on its way out
    assert state_pid(servers.data_dir) != pid
    with client(third) as reader:
        assert reader.get("kept") == "across restarts"


def test_a_killed_server_is_replaced(servers: Servers) -> None:
    first = servers.attach()
    killed = state_pid(servers.data_dir)
    os.kill(killed, signal.SIGKILL)
    wait_for(lambda: killed not in servers_of(servers.data_dir), "the server died")

    second = servers.attach()
    fresh = state_pid(servers.data_dir)
    assert fresh != killed
    assert servers_of(servers.data_dir) == [fresh]
    with client(second) as check:
        assert check.ping()

    first.stop()  # its server is gone: the new one, and the state file naming it, stay
    assert servers_of(servers.data_dir) == [fresh]
    assert state_pid(servers.data_dir) == fresh


def test_a_server_outlives_the_process_that_started_it(servers: Servers) -> None:
    """Whoever started the server may exit without stopping it; a later process stops it."""
    code = ("import sys; from pathlib import Path; from handoff.embedded_redis import "
            "EmbeddedRedis; print(EmbeddedRedis.attach(Path(sys.argv[1])).url)")
    started = subprocess.run([sys.executable, "-c", code, str(servers.data_dir)], cwd=ROOT,
                             capture_output=True, text=True, timeout=60, check=True)
    pid = state_pid(servers.data_dir)

    later = servers.attach()
    assert later.url == started.stdout.strip()
    assert servers_of(servers.data_dir) == [pid]
    later.stop()
    assert servers_of(servers.data_dir) == []
    assert not (servers.data_dir / STATE_FILE).exists()
    log = (servers.data_dir / "redis.log").read_text(encoding="utf-8")
    assert "ready to exit" in log  # a clean shutdown (AOF synced), not the kill that follows


def _race_to_attach(data_dir: str, start: Barrier, report: Queue[str], release: Event) -> None:
    """In a child process: attach when every racer is ready, report, stop when told to."""
    start.wait(timeout=60)
    handle = EmbeddedRedis.attach(Path(data_dir))
    report.put(handle.url)
    release.wait(timeout=120)
    handle.stop()


def test_racing_processes_end_up_with_one_server(servers: Servers) -> None:
    context = multiprocessing.get_context("spawn")
    start, release = context.Barrier(RACERS), context.Event()
    report: Queue[str] = context.Queue()
    racers = [context.Process(target=_race_to_attach,
                              args=(str(servers.data_dir), start, report, release))
              for _ in range(RACERS)]
    for racer in racers:
        racer.start()
    try:
        urls = {report.get(timeout=90) for _ in racers}
        assert len(urls) == 1
        assert servers_of(servers.data_dir) == [state_pid(servers.data_dir)]
    finally:
        release.set()
        for racer in racers:
            racer.join(timeout=60)
        report.close()
    assert [racer.exitcode for racer in racers] == [0] * RACERS
    assert servers_of(servers.data_dir) == []
    assert not (servers.data_dir / STATE_FILE).exists()


def test_a_server_that_cannot_start_is_a_readable_error(
    servers: Servers, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        monkeypatch.setattr(embedded_redis, "free_port", lambda: taken.getsockname()[1])
        with pytest.raises(EmbeddedRedisError, match="redis-server exited"):
            servers.attach()
    monkeypatch.undo()

    assert not (servers.data_dir / STATE_FILE).exists()
    assert servers_of(servers.data_dir) == []
    assert servers.attach().url.startswith("redis://127.0.0.1:")  # the lock was let go


def test_the_cli_talks_to_the_running_server(tmp_path: Path, servers: Servers) -> None:
    """`supportbot reload` with no REDIS_URL while the bot's embedded server runs."""
    assert servers.data_dir == tmp_path / "redis"  # where DATA_DIR=tmp_path puts it
    running = servers.attach()
    pid = state_pid(servers.data_dir)
    keys = Keys("e2e:")
    with client(running) as redis:
        redis.hset(keys.reload(), "version", 41)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "REDIS_"))}
    env |= {"DATA_DIR": str(tmp_path), "CACHE_DIR": str(tmp_path / "cache"),
            "REDIS_PREFIX": keys.prefix}

    result = subprocess.run([*CLI, "reload"], env=env, cwd=tmp_path, capture_output=True,
                            text=True, timeout=120)

    assert result.returncode == 0, result.stderr
    assert "reload #42 requested" in result.stdout
    with client(running) as redis:
        assert redis.hget(keys.reload(), "version") == "42"
    assert servers_of(servers.data_dir) == [pid]  # and the CLI left it running for the bot
    log = (servers.data_dir / "redis.log").read_text(encoding="utf-8")
    assert log.count("Ready to accept connections") == 1  # no second server came and went
