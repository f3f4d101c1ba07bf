"""No acknowledged audit event is ever lost: the service is killed with SIGKILL mid-load, and
PostgreSQL is killed hard mid-load; every request that got a 2xx has exactly one event.

Both tests run their own embedded PostgreSQL (a cluster this test owns, so killing its postmaster
touches nothing else) and drive Granian over real sockets.
"""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import signal
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import pytest

from strongroom import embedded
from strongroom.domain.access import generate_api_key
from strongroom.store.migrate import migrate_all
from strongroom.store.tenants import TenantRepository
from tests.conftest import CUSTOMERS, customer

pytestmark = pytest.mark.e2e


@dataclass
class Cluster:
    home: Path
    services: embedded.EmbeddedServices

    def postmaster_pid(self) -> int:
        return int((self.home / "postgres" / "postmaster.pid").read_text().split()[0])

    def kill_postgres(self) -> None:
        os.kill(self.postmaster_pid(), signal.SIGKILL)

    def restart_postgres(self) -> None:
        # A crashed cluster leaves children and a stale pid file; pgserver recovers both.
        deadline = time.monotonic() + 30
        while True:
            try:
                self.services.ensure_postgres_running()
                return
            except Exception:  # the old backends may still be exiting
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    home = Path(tempfile.mkdtemp(prefix="strongroom-noloss-"))
    services = embedded.start(home)
    found = Cluster(home, services)
    yield found
    found.services.stop()
    shutil.rmtree(home, ignore_errors=True)


@dataclass
class Ledger:
    """What the clients saw: request ids of 2xx answers, by expected audit action."""

    acknowledged: dict[str, str] = field(default_factory=dict)
    statuses: dict[int, int] = field(default_factory=dict)
    errors: int = 0

    def note(self, response: httpx.Response, action: str) -> None:
        self.statuses[response.status_code] = self.statuses.get(response.status_code, 0) + 1
        if 200 <= response.status_code < 300:
            self.acknowledged[response.headers["x-request-id"]] = action


async def prepare(cluster: Cluster) -> tuple[dict[str, str], str]:
    urls = cluster.services
    await migrate_all(urls.database_url, urls.keystore_url)
    pool = await asyncpg.create_pool(urls.database_url, min_size=1, max_size=2)
    assert pool is not None
    try:
        tenants = TenantRepository(pool)
        await tenants.create("noloss", ("support",))
        key = generate_api_key()
        await tenants.add_api_key("noloss", key.key_id, key.secret_hash, frozenset({"admin"}), "")
    finally:
        await pool.close()
    env = {
        "STRONGROOM_ENV": "production",
        "STRONGROOM_DATABASE_URL": urls.database_url,
        "STRONGROOM_KEYSTORE_URL": urls.keystore_url,
        "STRONGROOM_REDIS_URL": urls.redis_url,
        "STRONGROOM_MASTER_KEY": base64.b64encode(os.urandom(32)).decode(),
        "STRONGROOM_AUDIT_TIMEOUT": "1.0",
        "STRONGROOM_DB_TIMEOUT": "1.0",
        "STRONGROOM_RATE_LIMIT": "0",
    }
    return env, key.token


async def serve(cluster: Cluster, server_factory, workers: int = 1):  # type: ignore[no-untyped-def]
    """Migrate the cluster, start ``strongroom serve`` on it and create the collection."""
    env, token = await prepare(cluster)
    server = server_factory(env, workers=workers)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=server.base_url, headers=headers) as client:
        assert (await client.put("/v1/collections/customers", json=CUSTOMERS)).status_code == 201
    return server, env, token


async def drive(
    base_url: str,
    token: str,
    ledger: Ledger,
    stop: asyncio.Event,
    record_urls: list[str],
    worker: int,
) -> None:
    headers = {"Authorization": f"Bearer {token}", "X-Purpose": "support"}
    n = 0
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=5) as client:
        while not stop.is_set():
            n += 1
            try:
                if n % 5 == 0 or not record_urls:
                    response = await client.post(
                        "/v1/collections/customers/records",
                        json={"subject_id": f"s-{worker}-{n}", "data": customer(n)},
                    )
                    ledger.note(response, "record.create")
                    if response.status_code == 201:
                        record_urls.append(response.headers["location"])
                elif n % 2 == 0:
                    response = await client.get(
                        record_urls[n % len(record_urls)], params={"reveal": "email"}
                    )
                    ledger.note(response, "record.reveal")
                else:
                    response = await client.get(record_urls[n % len(record_urls)])
                    ledger.note(response, "record.read")
            except httpx.HTTPError:
                ledger.errors += 1
                await asyncio.sleep(0.05)


@pytest.fixture
async def load() -> AsyncIterator[object]:
    tasks: list[asyncio.Task[None]] = []
    stop = asyncio.Event()

    def start(
        base_url: str, token: str, ledger: Ledger, urls: list[str], clients: int = 16
    ) -> None:
        for worker in range(clients):
            tasks.append(asyncio.create_task(drive(base_url, token, ledger, stop, urls, worker)))

    async def finish() -> None:
        stop.set()
        await asyncio.gather(*tasks)
        tasks.clear()
        stop.clear()

    yield start, finish
    if tasks:
        await finish()


async def until(condition: Callable[[], bool]) -> None:
    """Let the load run until ``condition`` holds (by work done, not by time: a slow machine
    takes longer to get there), for at most 90 s."""
    deadline = time.monotonic() + 90
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("the load did not get far enough")
        await asyncio.sleep(0.1)


def successes(ledger: Ledger) -> int:
    return sum(n for status, n in ledger.statuses.items() if status < 300)


async def assert_nothing_lost(database_url: str, ledger: Ledger) -> None:
    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch(
            "SELECT request_id, action, count(*) AS n FROM audit_events "
            "WHERE request_id = ANY($1::text[]) GROUP BY request_id, action",
            list(ledger.acknowledged),
        )
    finally:
        await connection.close()
    found = {(r["request_id"], r["action"]): r["n"] for r in rows}
    missing = [rid for rid, action in ledger.acknowledged.items() if (rid, action) not in found]
    duplicates = {key: n for key, n in found.items() if n != 1}
    print(
        f"acknowledged={len(ledger.acknowledged)} statuses={ledger.statuses} "
        f"transport_errors={ledger.errors} missing={len(missing)} duplicates={len(duplicates)}"
    )
    assert len(ledger.acknowledged) > 200, ledger.statuses
    assert missing == []
    assert duplicates == {}


async def test_sigkill_of_the_service_loses_no_acknowledged_event(
    cluster: Cluster,
    server_factory,
    load,  # type: ignore[no-untyped-def]
) -> None:
    server, env, token = await serve(cluster, server_factory, workers=2)
    start, finish = load
    ledger = Ledger()
    urls: list[str] = []
    start(server.base_url, token, ledger, urls)
    await until(lambda: len(ledger.acknowledged) >= 150)
    os.killpg(server.process.pid, signal.SIGKILL)  # the supervisor, Granian and its workers
    server.process.wait()
    await asyncio.sleep(1)
    restarted = server_factory(env, workers=2)
    await finish()
    before = len(ledger.acknowledged)
    start(restarted.base_url, token, ledger, urls)
    await until(lambda: len(ledger.acknowledged) >= before + 60)
    await finish()
    await assert_nothing_lost(cluster.services.database_url, ledger)


async def test_postgres_killed_hard_mid_load(
    cluster: Cluster,
    server_factory,
    load,  # type: ignore[no-untyped-def]
) -> None:
    server, _, token = await serve(cluster, server_factory)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=server.base_url, headers=headers) as client:
        start, finish = load
        ledger = Ledger()
        urls: list[str] = []
        start(server.base_url, token, ledger, urls)
        await until(lambda: len(ledger.acknowledged) >= 150)
        cluster.kill_postgres()
        await asyncio.sleep(3)
        down = await client.get(
            urls[0], params={"reveal": "email"}, headers={"X-Purpose": "support"}
        )
        assert down.status_code == 503, down.text
        assert down.headers["content-type"] == "application/problem+json"
        assert (await client.get("/readyz")).status_code == 503
        cluster.restart_postgres()
        # The service recovers by itself: no restart, no operator.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if (await client.get("/readyz")).status_code == 200:
                break
            await asyncio.sleep(0.5)
        else:
            raise AssertionError("the service did not recover after PostgreSQL returned")
        await finish()
        await asyncio.sleep(1)
        after = Ledger()
        start(server.base_url, token, after, urls)
        await until(lambda: successes(after) > 100)
        await finish()
    # Once PostgreSQL is back, everything answers again (no broken pooled connections linger).
    assert after.statuses.get(503, 0) == 0, after.statuses
    assert successes(after) > 100, after.statuses
    ledger.acknowledged.update(after.acknowledged)
    unexpected = [line for line in server.log().splitlines() if "unhandled" in line]
    assert unexpected == [], "\n".join(unexpected[:3])
    assert ledger.statuses.get(503, 0) > 0, ledger.statuses
    assert not any(500 <= status < 600 and status != 503 for status in ledger.statuses)
    await assert_nothing_lost(cluster.services.database_url, ledger)


async def test_sigterm_mid_load_drains_and_loses_nothing(
    cluster: Cluster,
    server_factory,  # type: ignore[no-untyped-def]
    load,  # type: ignore[no-untyped-def]
) -> None:
    server, _, token = await serve(cluster, server_factory, workers=2)
    start, finish = load
    ledger = Ledger()
    urls: list[str] = []
    start(server.base_url, token, ledger, urls)
    await until(lambda: len(ledger.acknowledged) > 200)
    server.process.send_signal(signal.SIGTERM)
    exit_code = await asyncio.to_thread(server.process.wait, 60)
    await finish()
    assert exit_code == 0, server.log()[-2000:]
    await assert_nothing_lost(cluster.services.database_url, ledger)
