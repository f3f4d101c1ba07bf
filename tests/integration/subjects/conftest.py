"""A tenant with two collections and subjects that have records in both."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote as url_quote

import httpx
import pytest

from tests.conftest import CUSTOMERS, Databases, Servers, TenantKeys, customer

ORDERS = {
    "fields": {
        "email": {"type": "email", "searchable": True},
        "address": {"type": "text", "sensitive": True},
        "item": {"type": "text", "sensitive": False},
        "amount": {"type": "number", "sensitive": False},
    }
}


@dataclass
class Subject:
    id: str
    email: str
    customers: list[str] = field(default_factory=list)
    orders: list[str] = field(default_factory=list)

    @property
    def records(self) -> list[str]:
        return self.customers + self.orders


class World:
    """Helpers over the API for one tenant."""

    def __init__(self, client: httpx.AsyncClient, tenant: TenantKeys) -> None:
        self.client = client
        self.tenant = tenant

    async def setup(self) -> None:
        admin = await self.tenant.headers("admin")
        for name, schema in (("customers", CUSTOMERS), ("orders", ORDERS)):
            response = await self.client.put(f"/v1/collections/{name}", json=schema, headers=admin)
            assert response.status_code == 201, response.text

    async def subject(self, n: int, customers: int = 2, orders: int = 1) -> Subject:
        subject = Subject(f"subject-{uuid.uuid4().hex[:10]}", f"jane.doe{n}@example.com")
        headers = await self.tenant.headers("records:write")
        for i in range(customers):
            data = {**customer(n), "email": subject.email, "notes": f"note {i} of {subject.id}"}
            created = await self.client.post(
                "/v1/collections/customers/records",
                json={"subject_id": subject.id, "data": data},
                headers=headers,
            )
            assert created.status_code == 201, created.text
            subject.customers.append(created.json()["id"])
        for i in range(orders):
            data = {
                "email": subject.email,
                "address": f"{i} Quiet Lane, Springfield",
                "item": f"book-{i}",
                "amount": 12.5 + i,
            }
            created = await self.client.post(
                "/v1/collections/orders/records",
                json={"subject_id": subject.id, "data": data},
                headers=headers,
            )
            assert created.status_code == 201, created.text
            subject.orders.append(created.json()["id"])
        return subject

    async def reveal(self, record_id: str, purpose: str = "support") -> httpx.Response:
        headers = await self.tenant.headers(
            "records:read", "records:reveal", **{"X-Purpose": purpose}
        )
        return await self.client.get(
            f"/v1/collections/customers/records/{record_id}",
            params={"reveal": "email,ssn"},
            headers=headers,
        )

    async def export(self, subject_id: str, *scopes: str) -> httpx.Response:
        headers = await self.tenant.headers(*(scopes or ("subjects:export",)))
        return await self.client.get(f"/v1/subjects/{quote(subject_id)}/export", headers=headers)

    async def erase(self, subject_id: str, *scopes: str) -> httpx.Response:
        headers = await self.tenant.headers(*(scopes or ("subjects:erase",)))
        return await self.client.delete(f"/v1/subjects/{quote(subject_id)}", headers=headers)


def quote(subject_id: str) -> str:
    return url_quote(subject_id, safe="")


@pytest.fixture
async def world(client: httpx.AsyncClient, tenant: TenantKeys) -> World:
    created = World(client, tenant)
    await created.setup()
    return created


def strongroom(
    databases: Databases, servers: Servers, master_key: str | None, *args: str, home: Path
) -> subprocess.CompletedProcess[str]:
    """Run the ``strongroom`` command against the test databases."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRONGROOM_")}
    env.update(
        {
            "STRONGROOM_DATABASE_URL": databases.data_url,
            "STRONGROOM_KEYSTORE_URL": databases.keys_url,
            "STRONGROOM_REDIS_URL": servers.redis_url,
            "STRONGROOM_HOME": str(home),
        }
    )
    if master_key is not None:
        env["STRONGROOM_MASTER_KEY"] = master_key
    return subprocess.run(
        [sys.executable, "-m", "strongroom", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
