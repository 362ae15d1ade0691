"""Real `redis-server` processes on 127.0.0.1, for tests and benchmarks that need Redis to fail.

`RedisProcess` is one server that can be killed (SIGKILL) and restarted on the same port and
directory, to see what its persistence keeps. `SentinelTopology` is what production runs: a
primary, a replica and three sentinels (quorum 2), whose primary can be killed to watch a failover.

Both are synchronous and block (a start waits for PING, `wait_failover` for seconds): from async
code call them through `asyncio.to_thread`. The binary is the project's own
(`handoff.embedded_redis.find_redis_server`); a sentinel is that binary run with `--sentinel`,
which every full redis-server build supports. Each process gets its own directory holding its
config file (written once, so a restart reads what `CONFIG REWRITE` or a sentinel left there),
data and log.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from handoff.embedded_redis import find_redis_server, free_port

LOCALHOST = "127.0.0.1"
READY_TIMEOUT = 10.0  # seconds for one server to answer PING
STOP_TIMEOUT = 10.0  # seconds a signalled server gets to exit before SIGKILL
POLL = 0.02
LOG_TAIL_LINES = 20
PORT_ATTEMPTS = 3
PROBE_KEY = "redis_topology:probe"
APPENDFSYNC = ("always", "everysec", "no")


class RedisProcessError(RuntimeError):
    pass


def _quote(value: str) -> str:
    """A config-file string: redis-server splits lines on spaces, quotes keep paths whole."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _admin(port: int, timeout: float = 0.5) -> redis.Redis:
    """A short-lived client that fails fast: the helpers poll, they never wait on one call."""
    return redis.Redis(
        host=LOCALHOST, port=port, socket_timeout=timeout, socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0), decode_responses=True,
    )


def _command(port: int, *args: str) -> Any:
    """One command on a fresh connection (redis-py types the reply Awaitable-or-Any: Any)."""
    with _admin(port) as client:
        return client.execute_command(*args)


def _pairs(reply: Any) -> dict[str, Any]:
    """A sentinel's description of an instance: redis-py hands some as a dict, some as a flat
    [key, value, ...] list."""
    if isinstance(reply, dict):
        return reply
    return dict(zip(reply[::2], reply[1::2], strict=True))


class RedisProcess:
    """One redis-server bound to 127.0.0.1, its config, data and log in `directory`.

    `appendonly` turns the AOF on, fsynced per `appendfsync`; `replicaof` makes it a replica."""

    def __init__(
        self, directory: Path, *, port: int | None = None, appendonly: bool = False,
        appendfsync: str = "everysec", replicaof: tuple[str, int] | None = None,
    ) -> None:
        if appendfsync not in APPENDFSYNC:
            raise ValueError(f"appendfsync must be one of {APPENDFSYNC}, not {appendfsync!r}")
        self.directory = directory
        self.appendonly = appendonly
        self.appendfsync = appendfsync
        self.replicaof = replicaof
        self._port = port or free_port()
        self._port_is_ours = port is None
        self._process: subprocess.Popen[bytes] | None = None
        self._started_once = False

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"redis://{LOCALHOST}:{self._port}/0"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def config_path(self) -> Path:
        return self.directory / "redis.conf"

    @property
    def log_path(self) -> Path:
        return self.directory / "redis.log"

    def start(self, timeout: float = READY_TIMEOUT) -> RedisProcess:
        """Starts the server and returns once it answers PING (its data loaded)."""
        if self.running:
            return self
        self.directory.mkdir(parents=True, exist_ok=True)
        if self._started_once:  # a restart: same port, and the config file as the server left it
            self._launch(timeout)
            return self
        for attempt in range(1, PORT_ATTEMPTS + 1):
            self._write_config()
            try:
                self._launch(timeout)
            except RedisProcessError as exc:
                # free_port() only found a port free a moment ago; another process may have
                # bound it since. Retry on a new one, unless the caller chose the port.
                if not self._port_is_ours or attempt == PORT_ATTEMPTS or "in use" not in str(exc):
                    raise
                self._port = free_port()
            else:
                break
        self._started_once = True
        return self

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = STOP_TIMEOUT) -> None:
        """Signals the server and waits for it to exit; SIGKILL if it has not within `timeout`."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(sig)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def kill(self) -> None:
        """SIGKILL: no shutdown, no last fsync, as when the machine's OOM killer strikes."""
        self.stop(signal.SIGKILL)

    def restart(
        self, sig: signal.Signals = signal.SIGTERM, timeout: float = READY_TIMEOUT
    ) -> RedisProcess:
        """Stops the server with `sig` and starts it again on the same port and directory."""
        self.stop(sig)
        return self.start(timeout)

    def _config_lines(self) -> list[str]:
        lines = [
            'save ""',  # no RDB snapshots: persistence is the AOF or nothing, never both
            f"appendonly {'yes' if self.appendonly else 'no'}",
            f"appendfsync {self.appendfsync}",
            "repl-diskless-sync-delay 0",  # a replica's first sync starts now, not in 5 s
        ]
        if self.replicaof is not None:
            lines.append(f"replicaof {self.replicaof[0]} {self.replicaof[1]}")
        return lines

    def _extra_args(self) -> list[str]:
        return []

    def _write_config(self) -> None:
        common = [
            f"port {self._port}", f"bind {LOCALHOST}", "protected-mode yes", "daemonize no",
            f"dir {_quote(str(self.directory))}", f"logfile {_quote(str(self.log_path))}",
        ]
        self.config_path.write_text("\n".join([*common, *self._config_lines()]) + "\n")

    def _launch(self, timeout: float) -> None:
        args = [find_redis_server(), str(self.config_path), *self._extra_args()]
        # Errors before the log file opens (a bad config line) go to stderr: keep them in a file,
        # not a pipe nobody drains.
        with (self.directory / "stderr.log").open("ab") as err:
            self._process = subprocess.Popen(
                args, stdout=err, stderr=err, stdin=subprocess.DEVNULL, cwd=self.directory
            )
        self._wait_ready(self._process, timeout)

    def _wait_ready(self, process: subprocess.Popen[bytes], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self._answers(process.pid):
            status = process.poll()
            if status is not None:
                self._process = None
                raise RedisProcessError(self._failure(f"exited with status {status}"))
            if time.monotonic() > deadline:
                self.kill()
                raise RedisProcessError(self._failure(f"did not answer within {timeout:.0f} s"))
            time.sleep(POLL)

    def _answers(self, pid: int) -> bool:
        """PONG from *this* process: PING fails while the AOF loads, and another program may have
        taken the port first (then ours exits with "Address already in use")."""
        try:
            with _admin(self._port, timeout=0.2) as client:
                if not client.execute_command("PING"):
                    return False
                info: dict[str, Any] = client.execute_command("INFO", "server")
        except RedisError:
            return False
        return info.get("process_id") == pid

    def _failure(self, what: str) -> str:
        return (f"redis-server on port {self._port} ({self.directory}) {what}; "
                f"the end of its logs:\n{self.log_tail()}")

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """The last lines of the server's log and of its stderr, for error messages."""
        tails = []
        for path in (self.log_path, self.directory / "stderr.log"):
            with contextlib.suppress(OSError):
                tails += path.read_text(errors="replace").splitlines()[-lines:]
        return "\n".join(tails) or "(no log)"

    def __enter__(self) -> RedisProcess:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class SentinelProcess(RedisProcess):
    """A sentinel monitoring `master_name` at `primary`; its config file is its own, writable,
    since sentinels record what they learn (peers, replicas, the current epoch) in it."""

    def __init__(
        self, directory: Path, *, master_name: str, primary: tuple[str, int], quorum: int = 2,
        down_after_ms: int = 1000, failover_timeout_ms: int = 3000, port: int | None = None,
    ) -> None:
        super().__init__(directory, port=port)
        self.master_name = master_name
        self.primary = primary
        self.quorum = quorum
        self.down_after_ms = down_after_ms
        self.failover_timeout_ms = failover_timeout_ms

    def _config_lines(self) -> list[str]:
        name, (host, port) = self.master_name, self.primary
        return [
            f"sentinel monitor {name} {host} {port} {self.quorum}",
            f"sentinel down-after-milliseconds {name} {self.down_after_ms}",
            f"sentinel failover-timeout {name} {self.failover_timeout_ms}",
            f"sentinel parallel-syncs {name} 1",
        ]

    def _extra_args(self) -> list[str]:
        return ["--sentinel"]


class TopologyError(RuntimeError):
    pass


class SentinelTopology:
    """A primary, one replica and three sentinels (quorum 2) on 127.0.0.1, under `directory`.

    `down_after_ms` is how long the primary must be silent before the sentinels call it down (the
    sentinels' own default is 30 s; 1 s here, so a failover takes seconds). `stop()` also removes
    every process's files (those of killed ones too) unless `keep_files`."""

    def __init__(
        self, directory: Path, *, master_name: str = "supportbot", appendonly: bool = False,
        down_after_ms: int = 1000, failover_timeout_ms: int = 3000, keep_files: bool = False,
    ) -> None:
        self.directory = directory
        self._master_name = master_name
        self.appendonly = appendonly
        self.down_after_ms = down_after_ms
        self.failover_timeout_ms = failover_timeout_ms
        self.keep_files = keep_files
        self.servers: list[RedisProcess] = []
        self.sentinel_processes: list[SentinelProcess] = []
        self._killed: tuple[int, float] | None = None  # port, time.monotonic() of the last kill

    @property
    def master_name(self) -> str:
        return self._master_name

    @property
    def sentinels(self) -> list[tuple[str, int]]:
        return [(LOCALHOST, sentinel.port) for sentinel in self.sentinel_processes]

    def start(self, timeout: float = 30.0) -> SentinelTopology:
        """Returns once the replica is in sync and every sentinel knows the primary, the replica
        and the two other sentinels: only then can a failover happen."""
        deadline = time.monotonic() + timeout
        try:
            primary = self._add_server("redis-1", replicaof=None)
            replica = self._add_server("redis-2", replicaof=(LOCALHOST, primary.port))
            self._wait(deadline, "the replica to sync", lambda: _in_sync(replica.port))
            for number in (1, 2, 3):
                self._add_sentinel(number, primary.port)
            self._wait(deadline, "the sentinels to know the primary, the replica and each other",
                       lambda: all(self._sentinel_ready(s.port, primary.port)
                                   for s in self.sentinel_processes))
        except BaseException:
            self.stop()
            raise
        return self

    def primary_port(self) -> int:
        """The primary's port as a sentinel reports it (`SENTINEL get-master-addr-by-name`)."""
        for _host, port in self.sentinels:
            reported = self._reported_primary(port)
            if reported is not None:
                return reported
        raise TopologyError(f"no sentinel answers for {self._master_name!r}")

    def server_on(self, port: int) -> RedisProcess:
        for server in self.servers:
            if server.port == port:
                return server
        raise TopologyError(f"no server of this topology on port {port}")

    def kill_primary(self) -> int:
        """SIGKILLs the current primary; returns its port."""
        port = self.primary_port()
        self.server_on(port).kill()
        self._killed = (port, time.monotonic())
        return port

    def wait_failover(self, timeout: float = 30.0) -> float:
        """Waits until a sentinel reports a primary other than the one killed last, and that
        primary answers and takes a write. Returns the seconds since `kill_primary()` (or since
        this call, waiting for a failover started some other way, as `SENTINEL FAILOVER`)."""
        old, since = self._killed or (self.primary_port(), time.monotonic())
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            # Any sentinel will do: the leader knows first, the others learn it in ~2 s.
            for _host, sentinel_port in self.sentinels:
                port = self._reported_primary(sentinel_port)
                if port is not None and port != old and _writable(port):
                    return time.monotonic() - since
            time.sleep(0.05)
        raise TopologyError(f"no failover from port {old} within {timeout:.0f} s; "
                            f"a sentinel's log:\n{self.sentinel_processes[0].log_tail()}")

    def stop(self) -> None:
        """Stops every process (sentinels first, so none reconfigures what is going away) and
        removes their directories unless `keep_files`. Safe to call twice."""
        processes: list[RedisProcess] = [*self.sentinel_processes, *self.servers]
        try:
            for process in processes:
                process.stop()
        finally:
            if not self.keep_files:
                for process in processes:
                    shutil.rmtree(process.directory, ignore_errors=True)

    def _add_server(self, name: str, *, replicaof: tuple[str, int] | None) -> RedisProcess:
        server = RedisProcess(self.directory / name, appendonly=self.appendonly,
                              replicaof=replicaof)
        self.servers.append(server)  # listed before it starts: stop() covers a failed start
        return server.start()

    def _add_sentinel(self, number: int, primary_port: int) -> None:
        sentinel = SentinelProcess(
            self.directory / f"sentinel-{number}", master_name=self._master_name,
            primary=(LOCALHOST, primary_port), down_after_ms=self.down_after_ms,
            failover_timeout_ms=self.failover_timeout_ms,
        )
        self.sentinel_processes.append(sentinel)
        sentinel.start()

    def _sentinel_ready(self, sentinel_port: int, primary_port: int) -> bool:
        name = self._master_name
        try:
            master = _pairs(_command(sentinel_port, "SENTINEL", "MASTER", name))
            replicas = [_pairs(r) for r in _command(sentinel_port, "SENTINEL", "REPLICAS", name)]
            peers = _command(sentinel_port, "SENTINEL", "SENTINELS", name)
        except RedisError:
            return False
        return (
            master["flags"] == "master" and int(master["port"]) == primary_port
            and len(peers) >= 2
            # A replica is a failover candidate once the sentinel has its INFO and sees it synced.
            and any(r["flags"] == "slave" and r.get("master-link-status") == "ok"
                    for r in replicas)
        )

    def _reported_primary(self, sentinel_port: int) -> int | None:
        try:
            reply = _command(sentinel_port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME",
                             self._master_name)
        except RedisError:
            return None
        return int(reply[1]) if reply else None

    def _wait(self, deadline: float, what: str, ready: Callable[[], bool]) -> None:
        while not ready():
            if time.monotonic() > deadline:
                logs = "\n".join(p.log_tail(5) for p in [*self.servers, *self.sentinel_processes])
                raise TopologyError(f"timed out waiting for {what}; the ends of the logs:\n{logs}")
            time.sleep(0.05)

    def __enter__(self) -> SentinelTopology:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _in_sync(replica_port: int) -> bool:
    try:
        info: dict[str, Any] = _command(replica_port, "INFO", "replication")
    except RedisError:
        return False
    return info.get("master_link_status") == "up"


def _writable(port: int) -> bool:
    """A write succeeds: the server is up and is a primary (a replica answers READONLY)."""
    try:
        _command(port, "SET", PROBE_KEY, "1", "PX", "1000")
    except RedisError:
        return False
    return True
