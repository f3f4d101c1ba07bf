"""Who may do what: API keys, scopes, reveal purposes, tenant isolation, and the audit trail of
refusals and reveals."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import httpx
import pytest

from strongroom.domain.access import SCOPES
from strongroom.store.tenants import TenantRepository
from tests.conftest import CUSTOMERS, TenantKeys, customer
from tests.integration.problems import assert_problem

ALL_BUT_ADMIN = tuple(scope for scope in SCOPES if scope != "admin")
SENSITIVE = ("email", "card", "ssn", "phone", "iban", "name", "notes", "birthday")


def without(*scopes: str) -> tuple[str, ...]:
    return tuple(scope for scope in ALL_BUT_ADMIN if scope not in scopes)


async def make_record(client: httpx.AsyncClient, tenant: TenantKeys, url: str, n: int = 0) -> str:
    response = await client.post(
        url,
        json={"subject_id": f"subject-{n}", "data": customer(n)},
        headers=await tenant.headers("records:write"),
    )
    assert response.status_code == 201, response.text
    record_id: str = response.json()["id"]
    return record_id


# -- reveal ------------------------------------------------------------------------------------


async def test_reveal_needs_the_reveal_scope(
    client: httpx.AsyncClient, tenant: TenantKeys, customers: str
) -> None:
    record_id = await make_record(client, tenant, customers)
    headers = await tenant.headers("records:read", **{"X-Purpose": "support"})
    response = await client.get(
        f"{customers}/{record_id}", params={"reveal": "email"}, headers=headers
    )
    body = assert_problem(response, 403, "forbidden")
    assert "records:reveal" in body["detail"]
    assert "jane.doe0@example.com" not in response.text


@pytest.mark.parametrize(
    ("purpose", "slug"),
    [
        pytest.param(None, "bad-request", id="no-purpose"),
        pytest.param("", "bad-request", id="empty-purpose"),
        pytest.param("   ", "bad-request", id="blank-purpose"),
        pytest.param("curiosity", "bad-request", id="unknown-purpose"),
        pytest.param("SUPPORT", "bad-request", id="wrong-case-purpose"),
        pytest.param("support,legal", "bad-request", id="two-purposes"),
    ],
)
async def test_reveal_needs_a_known_purpose(
    client: httpx.AsyncClient, tenant: TenantKeys, customers: str, purpose: str | None, slug: str
) -> None:
    record_id = await make_record(client, tenant, customers)
    headers = await tenant.headers("records:read", "records:reveal")
    if purpose is not None:
        headers = {**headers, "X-Purpose": purpose}
    response = await client.get(
        f"{customers}/{record_id}", params={"reveal": "email"}, headers=headers
    )
    body = assert_problem(response, 400, slug)
    assert "X-Purpose" in body["detail"]
    assert "jane.doe0@example.com" not in response.text


async def test_reveal_answers_exactly_the_revealed_fields(
    client: httpx.AsyncClient, tenant: TenantKeys, customers: str
) -> None:
    record_id = await make_record(client, tenant, customers)
    headers = await tenant.headers("records:read", "records:reveal", **{"X-Purpose": "billing"})
    masked = (await client.get(f"{customers}/{record_id}", headers=headers)).json()["data"]
    response = await client.get(
        f"{customers}/{record_id}", params={"reveal": "email, card,email"}, headers=headers
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["revealed"] == ["email", "card"]
    plain = customer(0)
    assert body["data"]["email"] == plain["email"]
    assert body["data"]["card"] == "4111111111111111"  # stored normalised: digits only
    for field in SENSITIVE:
        if field not in ("email", "card"):
            assert body["data"][field] == masked[field], field
            assert body["data"][field] != plain[field], field
    for field in ("plan", "score", "vip"):
        assert body["data"][field] == plain[field]


@pytest.mark.parametrize(
    ("reveal", "status"),
    [
        pytest.param("plan", 422, id="non-sensitive"),
        pytest.param("score", 422, id="non-sensitive-number"),
        pytest.param("nope", 422, id="unknown-field"),
        pytest.param("email,nope", 422, id="one-unknown-among-known"),
        pytest.param("$subject", 422, id="internal-subject-name"),
        pytest.param(",", 400, id="empty-list"),
    ],
)
async def test_reveal_of_fields_that_are_not_sensitive(
    client: httpx.AsyncClient, tenant: TenantKeys, customers: str, reveal: str, status: int
) -> None:
    record_id = await make_record(client, tenant, customers)
    headers = await tenant.headers("records:read", "records:reveal", **{"X-Purpose": "support"})
    response = await client.get(
        f"{customers}/{record_id}", params={"reveal": reveal}, headers=headers
    )
    assert_problem(response, status)
    assert "jane.doe0@example.com" not in response.text


async def test_reveal_is_audited_with_purpose_and_fields_but_no_values(
    client: httpx.AsyncClient, tenant: TenantKeys, customers: str, db: asyncpg.Pool
) -> None:
    record_id = await make_record(client, tenant, customers)
    request_id = "reveal-" + uuid.uuid4().hex
    headers = await tenant.headers(
        "records:read",
        "records:reveal",
        **{"X-Purpose": "fraud_investigation", "X-Request-ID": request_id},
    )
    response = await client.get(
        f"{customers}/{record_id}", params={"reveal": "ssn,email"}, headers=headers
    )
    assert response.status_code == 200, response.text
    rows = await db.fetch(
        "SELECT action, purpose, fields, resource, outcome, t::text AS row "
        "FROM audit_events t WHERE request_id = $1",
        request_id,
    )
    assert len(rows) == 1
    row = rows[0]
    assert row["action"] == "record.reveal"
    assert row["purpose"] == "fraud_investigation"
    assert sorted(row["fields"]) == ["email", "ssn"]
    assert row["outcome"] == "success"
    assert record_id in row["resource"]
    for value in ("jane.doe0", "123-45-6789", "123456789", "6789", "subject-0"):
        assert value not in row["row"]


async def test_masked_read_is_audited_without_purpose(
    client: httpx.AsyncClient, tenant: TenantKeys, customers: str, db: asyncpg.Pool
) -> None:
    record_id = await make_record(client, tenant, customers)
    request_id = "read-" + uuid.uuid4().hex
    headers = await tenant.headers("records:read", **{"X-Request-ID": request_id})
    assert (await client.get(f"{customers}/{record_id}", headers=headers)).status_code == 200
    row = await db.fetchrow(
        "SELECT action, purpose, fields FROM audit_events WHERE request_id = $1", request_id
    )
    assert row is not None
    assert (row["action"], row["purpose"], list(row["fields"])) == ("record.read", None, [])


# -- tenant isolation --------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
async def test_another_tenants_record_is_not_found(
    client: httpx.AsyncClient,
    tenant: TenantKeys,
    other_tenant: TenantKeys,
    customers: str,
    db: asyncpg.Pool,
    method: str,
) -> None:
    record_id = await make_record(client, tenant, customers)
    before = await db.fetchval("SELECT t::text FROM records t WHERE id = $1::uuid", record_id)
    url = f"{customers}/{record_id}"
    admin = await other_tenant.headers("admin")
    body = {"data": {"plan": "stolen"}}
    # Without a collection of that name in the other tenant...
    no_collection = await client.request(
        method, url, headers=admin, json=body if method == "PATCH" else None
    )
    assert_problem(no_collection, 404, "not-found")
    # ...and with one: the record id is still unknown there.
    created = await client.put("/v1/collections/customers", json=CUSTOMERS, headers=admin)
    assert created.status_code == 201, created.text
    with_collection = await client.request(
        method, url, headers=admin, json=body if method == "PATCH" else None
    )
    assert_problem(with_collection, 404, "not-found")
    reveal = await client.get(
        url, params={"reveal": "email"}, headers={**admin, "X-Purpose": "legal"}
    )
    assert_problem(reveal, 404, "not-found")
    assert "jane.doe0" not in no_collection.text + with_collection.text + reveal.text
    after = await db.fetchval("SELECT t::text FROM records t WHERE id = $1::uuid", record_id)
    assert after == before


async def test_another_tenants_collection_names_do_not_leak(
    client: httpx.AsyncClient, tenant: TenantKeys, other_tenant: TenantKeys, customers: str
) -> None:
    await make_record(client, tenant, customers)
    admin = await other_tenant.headers("admin")
    for name in ("customers", "never_created"):
        probes = [
            await client.get(f"/v1/collections/{name}", headers=admin),
            await client.get(f"/v1/collections/{name}/records", headers=admin),
            await client.get(
                f"/v1/collections/{name}/records", params={"email": "x@example.com"}, headers=admin
            ),
            await client.post(
                f"/v1/collections/{name}/records",
                headers=admin,
                json={"subject_id": "s", "data": customer()},
            ),
            await client.get(f"/v1/collections/{name}/records/{uuid.uuid4()}", headers=admin),
        ]
        for response in probes:
            body = assert_problem(response, 404, "not-found")
            # The answer for an existing foreign name is the one for a name nobody uses.
            assert body["detail"].replace(name, "NAME") == (f"no collection named {'NAME'!r}"), (
                body["detail"]
            )
    own = await client.get("/v1/collections/customers", headers=await tenant.headers("admin"))
    assert own.status_code == 200


# -- authentication ----------------------------------------------------------------------------


async def test_revoked_key_is_refused(
    client: httpx.AsyncClient, tenant: TenantKeys, customers: str, db: asyncpg.Pool
) -> None:
    headers = await tenant.headers("records:read")
    assert (await client.get(customers, headers=headers)).status_code == 200
    token = await tenant.key("records:read")
    key_id = token.split("_")[1]
    assert await TenantRepository(db).revoke_api_key(key_id)
    # Every process caches keys; the revocation reaches them through PostgreSQL NOTIFY, so it
    # takes effect within milliseconds rather than at the very next instruction.
    for _ in range(50):
        response = await client.get(customers, headers=headers)
        if response.status_code == 401:
            break
        await asyncio.sleep(0.02)
    assert_problem(response, 401, "unauthenticated")
    assert response.headers["www-authenticate"].startswith("Bearer")


def forged_token(valid: str) -> str:
    """The same key id with another (well-formed) secret."""
    prefix, key_id, secret = valid.split("_", 2)
    return f"{prefix}_{key_id}_{'A' * len(secret)}"


@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param(None, id="missing"),
        pytest.param("", id="empty"),
        pytest.param("Bearer", id="scheme-only"),
        pytest.param("Bearer ", id="scheme-and-space"),
        pytest.param("Basic dXNlcjpwYXNz", id="basic"),
        pytest.param("Token {token}", id="wrong-scheme"),
        pytest.param("{token}", id="no-scheme"),
        pytest.param("Bearer garbage", id="garbage"),
        pytest.param("Bearer {forged}", id="wrong-secret"),
        pytest.param("Bearer {token}x", id="secret-too-long"),
        pytest.param("Bearer {token_short}", id="secret-too-short"),
        pytest.param("Bearer srk_0000000000000000_" + "A" * 43, id="unknown-key-id"),
        pytest.param("Bearer {token} {token}", id="two-tokens"),
        pytest.param("Bearer " + "A" * 5000, id="huge"),
    ],
)
async def test_malformed_or_missing_authorization(
    client: httpx.AsyncClient, tenant: TenantKeys, customers: str, authorization: str | None
) -> None:
    token = await tenant.key("admin")
    headers = {}
    if authorization is not None:
        headers["Authorization"] = authorization.format(
            token=token, forged=forged_token(token), token_short=token[:-1]
        )
    response = await client.get(customers, headers=headers)
    assert_problem(response, 401, "unauthenticated")
    assert response.headers["www-authenticate"] == 'Bearer realm="strongroom"'
    assert "items" not in response.text


async def test_non_ascii_authorization_is_refused(
    client: httpx.AsyncClient, customers: str
) -> None:
    response = await client.get(customers, headers=[(b"Authorization", b"Bearer srk_\xff\xfe")])
    assert_problem(response, 401, "unauthenticated")


async def test_valid_key_with_lowercase_scheme_is_accepted(
    client: httpx.AsyncClient, tenant: TenantKeys, customers: str
) -> None:
    token = await tenant.key("records:read")
    response = await client.get(customers, headers={"Authorization": f"bearer {token}"})
    assert response.status_code == 200, response.text


async def test_refusals_are_audited(
    client: httpx.AsyncClient, tenant: TenantKeys, customers: str, db: asyncpg.Pool
) -> None:
    unauthenticated = "deny-401-" + uuid.uuid4().hex
    response = await client.get(
        customers, headers={"Authorization": "Bearer nope", "X-Request-ID": unauthenticated}
    )
    assert_problem(response, 401)
    token = await tenant.key("records:read")
    forbidden = "deny-403-" + uuid.uuid4().hex
    response = await client.post(
        customers,
        json={"subject_id": "s", "data": customer()},
        headers={"Authorization": f"Bearer {token}", "X-Request-ID": forbidden},
    )
    assert_problem(response, 403)
    rows = {
        row["request_id"]: row
        for row in await db.fetch(
            "SELECT request_id, action, outcome, actor, tenant_id::text AS tenant_id, resource "
            "FROM audit_events WHERE request_id = ANY($1::text[])",
            [unauthenticated, forbidden],
        )
    }
    assert rows.keys() == {unauthenticated, forbidden}
    denied = rows[unauthenticated]
    assert (denied["action"], denied["outcome"]) == ("auth.denied", "denied")
    assert denied["actor"] is None
    assert denied["tenant_id"] is None
    assert denied["resource"].startswith("GET /v1/collections/")
    refused = rows[forbidden]
    assert (refused["action"], refused["outcome"]) == ("auth.denied", "denied")
    assert refused["actor"] == token.split("_")[1]
    assert refused["tenant_id"] == tenant.id
    assert refused["resource"].startswith("POST /v1/collections/")
    # A refused write leaves no record behind.
    count = await db.fetchval("SELECT count(*) FROM records WHERE tenant_id = $1::uuid", tenant.id)
    assert count == 0


# -- scopes ------------------------------------------------------------------------------------

SCOPE_TABLE = [
    # (id, method, path template, body, needed scope, query)
    ("put-collection", "PUT", "/v1/collections/customers", CUSTOMERS, "admin", None),
    ("put-new-collection", "PUT", "/v1/collections/fresh", CUSTOMERS, "admin", None),
    ("get-collection", "GET", "/v1/collections/customers", None, "records:read", None),
    (
        "create-record",
        "POST",
        "/v1/collections/customers/records",
        {"subject_id": "s", "data": customer(9)},
        "records:write",
        None,
    ),
    (
        "search-records",
        "GET",
        "/v1/collections/customers/records",
        None,
        "records:read",
        {"email": "jane.doe0@example.com"},
    ),
    ("list-records", "GET", "/v1/collections/customers/records", None, "records:read", None),
    ("read-record", "GET", "/v1/collections/customers/records/{id}", None, "records:read", None),
    (
        "reveal-record",
        "GET",
        "/v1/collections/customers/records/{id}",
        None,
        "records:reveal",
        {"reveal": "email"},
    ),
    (
        "reveal-record-without-read",
        "GET",
        "/v1/collections/customers/records/{id}",
        None,
        "records:read",
        {"reveal": "email"},
    ),
    (
        "patch-record",
        "PATCH",
        "/v1/collections/customers/records/{id}",
        {"data": {"plan": "silver"}},
        "records:write",
        None,
    ),
    (
        "delete-record",
        "DELETE",
        "/v1/collections/customers/records/{id}",
        None,
        "records:write",
        None,
    ),
    ("redact", "POST", "/v1/redact", {"text": "mail jane@example.com"}, "records:read", None),
    (
        "mask",
        "POST",
        "/v1/mask",
        {"type": "card", "value": "4111 1111 1111 1111"},
        "records:read",
        None,
    ),
]


@pytest.mark.parametrize(
    ("method", "template", "body", "scope", "query"),
    [pytest.param(*row[1:], id=row[0]) for row in SCOPE_TABLE],
)
async def test_each_endpoint_enforces_its_scope(
    client: httpx.AsyncClient,
    tenant: TenantKeys,
    customers: str,
    db: asyncpg.Pool,
    method: str,
    template: str,
    body: object,
    scope: str,
    query: dict[str, str] | None,
) -> None:
    record_id = await make_record(client, tenant, customers)
    path = template.format(id=record_id)
    extra = {"X-Purpose": "support"}
    snapshot = "SELECT t::text FROM {} t WHERE tenant_id = $1::uuid ORDER BY 1"

    async def state() -> list[list[str]]:
        return [
            [row[0] for row in await db.fetch(snapshot.format(table), tenant.id)]
            for table in ("records", "collections")
        ]

    before = await state()
    lacking = await tenant.headers(*without(scope), **extra)
    refused = await client.request(method, path, json=body, params=query, headers=lacking)
    problem = assert_problem(refused, 403, "forbidden")
    assert scope in problem["detail"]
    assert await state() == before
    # The same request with the scope added gets through (so the refusal was about the scope).
    granted = (
        await tenant.headers(*without(), scope, **extra)
        if scope != "admin"
        else (await tenant.headers("admin", **extra))
    )
    allowed = await client.request(method, path, json=body, params=query, headers=granted)
    assert allowed.status_code < 300, allowed.text


async def test_put_collection_needs_admin_even_with_every_other_scope(
    client: httpx.AsyncClient, tenant: TenantKeys, db: asyncpg.Pool
) -> None:
    response = await client.put(
        "/v1/collections/customers", json=CUSTOMERS, headers=await tenant.headers(*ALL_BUT_ADMIN)
    )
    assert_problem(response, 403, "forbidden")
    count = await db.fetchval(
        "SELECT count(*) FROM collections WHERE tenant_id = $1::uuid", tenant.id
    )
    assert count == 0


async def test_problem_documents_echo_the_request_id(
    client: httpx.AsyncClient, tenant: TenantKeys, customers: str
) -> None:
    headers = await tenant.headers("records:read", **{"X-Request-ID": "trace-me.42"})
    response = await client.get(f"{customers}/not-a-uuid", headers=headers)
    body = assert_problem(response, 400)
    assert body["request_id"] == "trace-me.42"
    assert response.headers["x-request-id"] == "trace-me.42"
