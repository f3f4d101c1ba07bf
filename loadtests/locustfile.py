"""Locust scenarios for Strongroom's real personas.

    python loadtests/seed.py --host http://127.0.0.1:8080 --key $KEY
    STRONGROOM_LOAD_KEY=$KEY locust -f loadtests/locustfile.py --headless \\
        --host http://127.0.0.1:8080 -u 100 -r 50 -t 90s --per-user-rps 10

Personas (user class weights — the share of simulated users):

| persona | weight | what it does |
|---|---|---|
| ApplicationBackend | 80 | masked reads (60), searches by email (15), creates (15), updates (10) |
| SupportAgent | 15 | reveals email and phone with purpose ``support`` (3), masked reads (1) |
| ComplianceOfficer | 3 | audit event searches (6), narrow JSONL exports (1), reports (1) |
| PrivacyTeam | 2 | DSAR exports of seeded subjects (3); create-then-erase a fresh subject (1) |

Every user sends requests at a constant rate (``--per-user-rps``), so the offered load is
users × rate whatever the latency: an open model, as a production load balancer sees it. Every
request carries an ``X-Request-ID`` made of a run id and a counter; every successful request is
counted, and ``loadtests/gate.py`` checks the audit trail holds an event for each one.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import time
import uuid
from pathlib import Path
from typing import Any

from locust import FastHttpUser, constant_throughput, events, task
from locust.env import Environment
from seed import person  # Locust puts this file's folder on sys.path

STATE = Path(os.environ.get("STRONGROOM_LOAD_STATE", Path(__file__).with_name("state.json")))
RUN_ID = os.environ.get("STRONGROOM_LOAD_RUN", uuid.uuid4().hex[:10])
KEY = os.environ.get("STRONGROOM_LOAD_KEY", "")  # admin; persona keys below override it
ACK_FILE = Path(os.environ.get("STRONGROOM_LOAD_ACKS", f"/tmp/strongroom-load-{RUN_ID}.json"))

_counter = itertools.count()
_acknowledged = 0
_state: dict[str, Any] = {}


@events.init_command_line_parser.add_listener
def _arguments(parser: Any) -> None:
    parser.add_argument(
        "--per-user-rps",
        type=float,
        default=10.0,
        help="requests per second each simulated user sends",
    )


@events.test_start.add_listener
def _load_state(environment: Environment, **_: Any) -> None:
    if not KEY:
        raise SystemExit("set STRONGROOM_LOAD_KEY to an admin API key")
    _state.update(json.loads(STATE.read_text()))
    rate = environment.parsed_options.per_user_rps if environment.parsed_options else 10.0
    for user_class in environment.user_classes:
        user_class.wait_time = constant_throughput(rate)


@events.request.add_listener
def _count(exception: BaseException | None, **_: Any) -> None:
    global _acknowledged
    if exception is None:
        _acknowledged += 1


@events.quitting.add_listener
def _write_acknowledged(environment: Environment, **_: Any) -> None:
    ACK_FILE.write_text(json.dumps({"run_id": RUN_ID, "acknowledged": _acknowledged}))


def request_id() -> str:
    return f"lt-{RUN_ID}-{next(_counter)}"


class _Strongroom(FastHttpUser):
    abstract = True
    persona = ""

    def on_start(self) -> None:
        # Each persona may have its own key with only the scopes it needs (and its own rate).
        self.key = os.environ.get(f"STRONGROOM_LOAD_KEY_{self.persona.upper()}", KEY)

    def headers(self, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}", "X-Request-ID": request_id(), **extra}

    def record(self) -> dict[str, str]:
        records: list[dict[str, str]] = _state["records"]
        return random.choice(records)

    @property
    def collection(self) -> str:
        return str(_state["collection"])

    def expect(self, response: Any, status: int, check: Any = None) -> None:
        if response.status_code != status:
            response.failure(f"{response.status_code}: {response.text[:200]}")
        elif check is not None and not check(response):
            response.failure(f"unexpected body: {response.text[:200]}")
        else:
            response.success()

    def read_masked_record(self) -> None:
        """A masked read; the card in the answer must be masked."""
        with self.client.get(
            self.record()["url"],
            headers=self.headers(),
            name="/v1/collections/{name}/records/{id}",
            catch_response=True,
        ) as response:
            self.expect(response, 200, lambda r: "•" in r.json()["data"]["card"])


class ApplicationBackend(_Strongroom):
    """An application's backend: most traffic, masked reads first."""

    weight = 80
    persona = "backend"

    @task(60)
    def read_masked(self) -> None:
        self.read_masked_record()

    @task(15)
    def search_by_email(self) -> None:
        record = self.record()
        with self.client.get(
            f"/v1/collections/{self.collection}/records",
            params={"email": record["email"].upper()},
            headers=self.headers(),
            name="/v1/collections/{name}/records?email",
            catch_response=True,
        ) as response:
            self.expect(
                response,
                200,
                lambda r: any(i["subject_id"] == record["subject"] for i in r.json()["items"]),
            )

    @task(15)
    def create(self) -> None:
        n = random.randrange(10**9)
        body = {"subject_id": f"lt-{RUN_ID}-{n}", "data": person(n, random.Random(n))}
        with self.client.post(
            f"/v1/collections/{self.collection}/records",
            json=body,
            headers=self.headers(),
            name="/v1/collections/{name}/records",
            catch_response=True,
        ) as response:
            self.expect(response, 201)

    @task(10)
    def update(self) -> None:
        with self.client.patch(
            self.record()["url"],
            json={"data": {"score": random.randrange(1000)}},
            headers=self.headers(),
            name="/v1/collections/{name}/records/{id} PATCH",
            catch_response=True,
        ) as response:
            self.expect(response, 200)


class SupportAgent(_Strongroom):
    """A support agent who reveals contact details for a ticket."""

    weight = 15
    persona = "support"

    @task(3)
    def reveal(self) -> None:
        record = self.record()
        with self.client.get(
            record["url"],
            params={"reveal": "email,phone"},
            headers=self.headers(**{"X-Purpose": "support"}),
            name="/v1/collections/{name}/records/{id}?reveal",
            catch_response=True,
        ) as response:
            self.expect(response, 200, lambda r: r.json()["data"]["email"] == record["email"])

    @task(1)
    def read_masked(self) -> None:
        self.read_masked_record()


class ComplianceOfficer(_Strongroom):
    """Searches and exports the audit trail."""

    weight = 3
    persona = "compliance"

    @task(6)
    def search_events(self) -> None:
        with self.client.get(
            "/v1/audit/events",
            params={"action": "record.reveal", "purpose": "support", "limit": "20"},
            headers=self.headers(),
            name="/v1/audit/events",
            catch_response=True,
        ) as response:
            self.expect(response, 200)

    @task(1)
    def export_recent(self) -> None:
        since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 2))
        with self.client.get(
            "/v1/audit/export",
            params={"action": "subject.erase", "since": since},
            headers=self.headers(),
            name="/v1/audit/export",
            catch_response=True,
        ) as response:
            self.expect(response, 200)

    @task(1)
    def report(self) -> None:
        since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 60))
        with self.client.get(
            "/v1/compliance/report",
            params={"since": since},
            headers=self.headers(),
            name="/v1/compliance/report",
            catch_response=True,
        ) as response:
            self.expect(response, 200)


class PrivacyTeam(_Strongroom):
    """Answers data subject requests: access (export) and erasure."""

    weight = 2
    persona = "privacy"

    @task(3)
    def export_subject(self) -> None:
        subject = self.record()["subject"]
        with self.client.get(
            f"/v1/subjects/{subject}/export",
            headers=self.headers(),
            name="/v1/subjects/{id}/export",
            catch_response=True,
        ) as response:
            self.expect(response, 200)

    @task(1)
    def erase_fresh_subject(self) -> None:
        n = random.randrange(10**9)
        subject = f"erase-{RUN_ID}-{n}"
        with self.client.post(
            f"/v1/collections/{self.collection}/records",
            json={"subject_id": subject, "data": person(n, random.Random(n))},
            headers=self.headers(),
            name="/v1/collections/{name}/records",
            catch_response=True,
        ) as response:
            self.expect(response, 201)
        with self.client.delete(
            f"/v1/subjects/{subject}",
            headers=self.headers(),
            name="/v1/subjects/{id}",
            catch_response=True,
        ) as response:
            self.expect(response, 200)
