"""Shared fixtures: real PostgreSQL and Redis for every test that needs them.

``STRONGROOM_TEST_DATABASE_URL`` / ``STRONGROOM_TEST_REDIS_URL`` point at servers to use (CI sets
them to the machine's); otherwise the embedded PostgreSQL and redis-server start under a
temporary folder. Each test session creates fresh databases and drops them at the end.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import secrets
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest

from strongroom.app import create_app
from strongroom.domain.access import generate_api_key
from strongroom.settings import Settings
from strongroom.store.migrate import migrate_all
from strongroom.store.tenants import TenantRepository


@dataclass(frozen=True)
class Servers:
    admin_url: str  # a maintenance database on the server (to create/drop test databases)
    redis_url: str


@pytest.fixture(scope="session")
def servers() -> Iterator[Servers]:
    database = os.environ.get("STRONGROOM_TEST_DATABASE_URL")
    redis = os.environ.get("STRONGROOM_TEST_REDIS_URL")
    started = None
    home = None
    if not database or not redis:
        from strongroom import embedded

        # Not under pytest's temporary folder: as root, PostgreSQL runs as its own system user,
        # which must be able to reach the data folder until the server stops.
        home = Path(tempfile.mkdtemp(prefix="strongroom-test-"))
        started = embedded.start(home)
    yield Servers(
        admin_url=database or started.database_url,  # type: ignore[union-attr]
        redis_url=redis or started.redis_url,  # type: ignore[union-attr]
    )
    if started is not None:
        started.stop()
    if home is not None:
        shutil.rmtree(home, ignore_errors=True)


def with_database(url: str, name: str) -> str:
    head, sep, query = url.partition("?")
    return head.rsplit("/", 1)[0] + "/" + name + sep + query


@dataclass(frozen=True)
class Databases:
    data_url: str
    keys_url: str
    names: tuple[str, str]


async def create_databases(admin_url: str, prefix: str = "sr_test") -> Databases:
    suffix = secrets.token_hex(4)
    names = (f"{prefix}_{suffix}", f"{prefix}_{suffix}_keys")
    connection = await asyncpg.connect(admin_url)
    try:
        for name in names:
            await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    databases = Databases(
        with_database(admin_url, names[0]), with_database(admin_url, names[1]), names
    )
    await migrate_all(databases.data_url, databases.keys_url)
    return databases


async def drop_databases(admin_url: str, databases: Databases) -> None:
    connection = await asyncpg.connect(admin_url)
    try:
        for name in databases.names:
            await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


@pytest.fixture(scope="session")
async def databases(servers: Servers) -> AsyncIterator[Databases]:
    created = await create_databases(servers.admin_url)
    yield created
    await drop_databases(servers.admin_url, created)


@pytest.fixture(scope="session")
def master_key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


@pytest.fixture(scope="session")
def settings(
    databases: Databases,
    servers: Servers,
    master_key: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Settings:
    return Settings.from_env(
        {
            "STRONGROOM_ENV": "test",
            "STRONGROOM_HOME": str(tmp_path_factory.mktemp("home")),
            "STRONGROOM_DATABASE_URL": databases.data_url,
            "STRONGROOM_KEYSTORE_URL": databases.keys_url,
            "STRONGROOM_REDIS_URL": servers.redis_url,
            "STRONGROOM_MASTER_KEY": master_key,
            "STRONGROOM_MAX_BODY_BYTES": "65536",
            "STRONGROOM_LOG_FORMAT": "json",
        }
    )


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[object]:
    application = create_app(settings)
    await application.start()
    yield application
    await application.stop()


@pytest.fixture(scope="session")
async def client(app: object) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://strongroom.test") as c:
        yield c


@pytest.fixture(scope="session")
async def db(databases: Databases) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(databases.data_url, min_size=1, max_size=4)
    assert pool is not None
    yield pool
    await pool.close()


@pytest.fixture(scope="session")
async def keys_db(databases: Databases) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(databases.keys_url, min_size=1, max_size=2)
    assert pool is not None
    yield pool
    await pool.close()


class TenantKeys:
    """A fresh tenant with API keys; ``headers(scope, ...)`` gives an Authorization header."""

    def __init__(self, name: str, tenant_id: str, repository: TenantRepository) -> None:
        self.name = name
        self.id = tenant_id
        self._repository = repository
        self._tokens: dict[frozenset[str], str] = {}

    async def key(self, *scopes: str) -> str:
        wanted = frozenset(scopes)
        if wanted not in self._tokens:
            new = generate_api_key()
            await self._repository.add_api_key(
                self.name, new.key_id, new.secret_hash, wanted, "test"
            )
            self._tokens[wanted] = new.token
        return self._tokens[wanted]

    async def headers(self, *scopes: str, **extra: str) -> dict[str, str]:
        token = await self.key(*scopes)
        return {"Authorization": f"Bearer {token}", **extra}


@pytest.fixture
async def tenant(db: asyncpg.Pool) -> TenantKeys:
    repository = TenantRepository(db)
    name = "t-" + uuid.uuid4().hex[:12]
    created = await repository.create(name, Settings().default_purposes)
    return TenantKeys(name, created.id, repository)


@pytest.fixture
async def other_tenant(db: asyncpg.Pool) -> TenantKeys:
    repository = TenantRepository(db)
    name = "o-" + uuid.uuid4().hex[:12]
    created = await repository.create(name, Settings().default_purposes)
    return TenantKeys(name, created.id, repository)


CUSTOMERS = {
    "fields": {
        "email": {"type": "email", "searchable": True},
        "card": {"type": "card"},
        "ssn": {"type": "ssn"},
        "phone": {"type": "phone", "searchable": True},
        "iban": {"type": "iban"},
        "name": {"type": "name", "required": True},
        "notes": {"type": "text", "sensitive": True, "mask": "full"},
        "birthday": {"type": "date", "sensitive": True, "mask": "redact"},
        "plan": {"type": "text", "sensitive": False, "searchable": True},
        "score": {"type": "number", "sensitive": False},
        "vip": {"type": "boolean", "sensitive": False},
    }
}


def customer(n: int = 0) -> dict[str, object]:
    return {
        "email": f"jane.doe{n}@example.com",
        "card": "4111 1111 1111 1111",
        "ssn": "123-45-6789",
        "phone": "+1 415 555 0134",
        "iban": "DE89 3704 0044 0532 0130 00",
        "name": f"Jane Q Doe{n}",
        "notes": f"prefers email, account {n}",
        "birthday": "1984-03-09",
        "plan": "gold",
        "score": 42,
        "vip": True,
    }


@pytest.fixture
async def customers(client: httpx.AsyncClient, tenant: TenantKeys) -> str:
    """A ``customers`` collection in the tenant; returns its records URL."""
    response = await client.put(
        "/v1/collections/customers", json=CUSTOMERS, headers=await tenant.headers("admin")
    )
    assert response.status_code == 201, response.text
    return "/v1/collections/customers/records"


def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


class CapturedLogs(logging.Handler):
    """Every ``strongroom`` log line (formatted, with tracebacks) while installed."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(logging.Formatter().format(record))

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@contextlib.contextmanager
def captured_logs() -> Iterator[CapturedLogs]:
    logger = logging.getLogger("strongroom")
    handler, level = CapturedLogs(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
