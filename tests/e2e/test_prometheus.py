"""A real Prometheus (Debian's package, installed here when missing) scrapes the service under
Granian with two workers; PromQL over its HTTP API counts exactly the requests this test sent.
``promtool`` checks the rules and runs their unit tests (deploy/observability/tests)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from strongroom.domain.access import generate_api_key
from strongroom.store.tenants import TenantRepository
from tests.conftest import Databases, Servers, repo_root
from tests.e2e.conftest import free_port

pytestmark = pytest.mark.e2e

DEPLOY = repo_root() / "deploy" / "observability"
RULES = DEPLOY / "prometheus" / "rules.yml"


def _install_prometheus() -> str | None:
    """Why Prometheus is unavailable, or None once ``prometheus`` and ``promtool`` are on PATH."""
    if shutil.which("prometheus") and shutil.which("promtool"):
        return None
    if not shutil.which("apt-get"):
        return "no apt-get on this machine"
    if os.geteuid() != 0:
        return "not root: cannot apt-get install prometheus"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    attempts = (
        ["apt-get", "install", "-y", "prometheus"],
        ["apt-get", "update"],
        ["apt-get", "install", "-y", "prometheus"],
    )
    output = ""
    for command in attempts:
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
        output = result.stdout[-2000:] + result.stderr[-2000:]
        if shutil.which("prometheus") and shutil.which("promtool"):
            return None
    return f"apt-get install -y prometheus failed:\n{output}"


@pytest.fixture(scope="module")
def prometheus_binaries() -> None:
    problem = _install_prometheus()
    if problem is not None:
        pytest.skip(
            "!!! PROMETHEUS IS NOT INSTALLED AND COULD NOT BE INSTALLED: the scrape test and the "
            f"promtool rule tests DID NOT RUN !!! ({problem})"
        )


def test_promtool_checks_the_rules_and_example_config(prometheus_binaries: None) -> None:
    checked = subprocess.run(
        ["promtool", "check", "rules", str(RULES)], capture_output=True, text=True, timeout=120
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout
    config = subprocess.run(
        ["promtool", "check", "config", "prometheus.yml"],
        cwd=RULES.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert config.returncode == 0, config.stdout + config.stderr


def test_every_alert_fires_and_stays_silent_in_promtool_unit_tests(
    prometheus_binaries: None,
) -> None:
    tests = sorted((DEPLOY / "tests").glob("*.yml"))
    assert tests
    result = subprocess.run(
        ["promtool", "test", "rules", *[str(t) for t in tests]],
        cwd=DEPLOY / "tests",
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(tests), result.stdout
    # Every alert has a case that fires it and a case where it stays silent.
    alerts = set(re.findall(r"^\s*- alert: (\w+)", RULES.read_text(), re.M))
    assert len(alerts) >= 15
    fired: set[str] = set()
    silent: set[str] = set()
    for path in tests:
        for name, expected in re.findall(
            r"alertname: (\w+)\n\s+exp_alerts:(.*?)(?=\n\s+- eval_time|\n\s+- name|\Z)",
            path.read_text(),
            re.S,
        ):
            (silent if expected.strip() == "[]" else fired).add(name)
    assert alerts - fired == set(), "alerts no test fires"
    assert alerts - silent == set(), "alerts no test proves silent"


@pytest.fixture
def prometheus(prometheus_binaries: None, tmp_path: Path) -> Iterator[object]:
    processes: list[subprocess.Popen[bytes]] = []

    def start(target: str) -> str:
        port = free_port()
        config = tmp_path / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            f"rule_files: ['{RULES}']\n"
            "scrape_configs:\n  - job_name: strongroom\n"
            f"    static_configs:\n      - targets: ['{target}']\n"
        )
        with (tmp_path / "prometheus.log").open("wb") as log:
            process = subprocess.Popen(
                [
                    "prometheus",
                    f"--config.file={config}",
                    f"--storage.tsdb.path={tmp_path / 'data'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        processes.append(process)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert process.poll() is None, (tmp_path / "prometheus.log").read_text()
            try:
                if httpx.get(url + "/-/ready", timeout=1).status_code == 200:
                    return url
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError("prometheus not ready:\n" + (tmp_path / "prometheus.log").read_text())

    yield start
    for process in processes:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def query(url: str, promql: str, strict: bool = True) -> float | None:
    """The first value of an instant query (None when empty); asserts the query is valid."""
    response = httpx.get(url + "/api/v1/query", params={"query": promql}, timeout=5)
    assert response.status_code == 200, (promql, response.text)
    assert response.json()["status"] == "success", (promql, response.text)
    data = response.json()["data"]
    result = data["result"]
    if not strict or data["resultType"] != "vector":
        return None
    return float(result[0]["value"][1]) if result else None


def eventually(url: str, promql: str, expected: float, timeout: float = 45) -> None:
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = query(url, promql)
        if value == expected:
            return
        time.sleep(0.5)
    raise AssertionError(f"{promql} = {value}, expected {expected}")


async def test_prometheus_counts_the_requests_sent_to_two_granian_workers(
    server_factory,  # type: ignore[no-untyped-def]
    prometheus,  # type: ignore[no-untyped-def]
    databases: Databases,
    servers: Servers,
    master_key: str,
) -> None:
    pool = await asyncpg.create_pool(databases.data_url, min_size=1, max_size=2)
    assert pool is not None
    try:
        tenants = TenantRepository(pool)
        name = "prom-" + generate_api_key().key_id
        tenant = await tenants.create(name, ("support",))
        key = generate_api_key()
        await tenants.add_api_key(name, key.key_id, key.secret_hash, frozenset({"admin"}), "e2e")
    finally:
        await pool.close()
    metrics_port = free_port()
    server = server_factory(
        {
            "STRONGROOM_ENV": "production",
            "STRONGROOM_DATABASE_URL": databases.data_url,
            "STRONGROOM_KEYSTORE_URL": databases.keys_url,
            "STRONGROOM_REDIS_URL": servers.redis_url,
            "STRONGROOM_MASTER_KEY": master_key,
            "STRONGROOM_METRICS_PORT": str(metrics_port),
        },
        workers=2,
    )
    url = prometheus(f"127.0.0.1:{metrics_port}")
    lives, reads, reveals = 23, 11, 5
    headers = {"Authorization": f"Bearer {key.token}", "X-Purpose": "support"}
    # A fresh connection for each request, so that the kernel spreads them over both workers.
    for _ in range(lives):
        async with httpx.AsyncClient(base_url=server.base_url) as fresh:
            assert (await fresh.get("/livez")).status_code == 200
    async with httpx.AsyncClient(base_url=server.base_url, headers=headers) as client:
        schema = {"fields": {"email": {"type": "email"}}}
        assert (await client.put("/v1/collections/people", json=schema)).status_code == 201
        created = await client.post(
            "/v1/collections/people/records",
            json={"subject_id": "p-1", "data": {"email": "p1@example.com"}},
        )
        assert created.status_code == 201, created.text
        location = created.headers["location"]
    for n in range(reads + reveals):
        params = {"reveal": "email"} if n < reveals else {}
        async with httpx.AsyncClient(base_url=server.base_url, headers=headers) as fresh:
            response = await fresh.get(location, params=params)
            assert response.status_code == 200, response.text
    # The API port does not serve metrics when they have a port of their own.
    async with httpx.AsyncClient(base_url=server.base_url) as fresh:
        assert (await fresh.get("/metrics")).status_code == 404

    eventually(url, 'sum(http_server_request_duration_seconds_count{route="/livez"})', lives)
    record = "/v1/collections/{name}/records/{record_id}"
    eventually(
        url,
        f'sum(http_server_request_duration_seconds_count{{route="{record}",status="200"}})',
        reads + reveals,
    )
    eventually(
        url, f'sum(strongroom_reveals_total{{tenant="{tenant.id}",purpose="support"}})', reveals
    )
    # Both workers report (process metrics carry a pid), and the job is up.
    eventually(url, 'count(count by (pid) (process_resident_memory_bytes{job="strongroom"}))', 2)
    eventually(url, 'up{job="strongroom"}', 1)
    eventually(url, 'count(strongroom_build_info{job="strongroom"})', 1)
    # Every dashboard query parses and runs against the real series.
    for path in sorted((DEPLOY / "grafana" / "dashboards").glob("*.json")):
        board = json.loads(path.read_text())
        assert board["uid"]
        assert board["panels"]
        for panel in board["panels"]:
            for target in panel["targets"]:
                promql = (
                    target["expr"]
                    .replace("$job", "strongroom")
                    .replace("$route", ".*")
                    .replace("$tenant", ".*")
                )
                assert query(url, promql, strict=False) is not False, (path.name, promql)
    assert server.stop() == 0
