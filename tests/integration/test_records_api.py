"""The records API end to end: CRUD semantics, masking, concurrency, search and pagination,
schema changes, and the HTTP surface (404/405, security headers, request ids, OpenAPI)."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx
import pytest

from strongroom import privacy
from tests.conftest import CUSTOMERS, TenantKeys, customer
from tests.integration.problems import assert_problem

MASKED = {
    "email": "j•••@e•••••.com",
    "card": "•••• •••• •••• 1111",
    "ssn": "•••-••-6789",
    "phone": "+• ••• ••• 0134",
    "iban": "DE••••••••••••••••3000",
    "name": "J. Q. D.",
    "notes": "••••••••",
    "birthday": "[DATE]",
    "plan": "gold",
    "score": 42,
    "vip": True,
}


@pytest.fixture
async def rw(tenant: TenantKeys) -> dict[str, str]:
    return await tenant.headers("records:read", "records:write")


async def create(
    client: httpx.AsyncClient,
    url: str,
    headers: dict[str, str],
    n: int = 0,
    subject: str = "subject-1",
    **changes: object,
) -> httpx.Response:
    data: dict[str, Any] = {**customer(n), **changes}
    response = await client.post(url, json={"subject_id": subject, "data": data}, headers=headers)
    assert response.status_code == 201, response.text
    return response


async def row_of(db: asyncpg.Pool, record_id: str) -> str | None:
    value: str | None = await db.fetchval(
        "SELECT t::text FROM records t WHERE id = $1::uuid", record_id
    )
    return value


# -- create and read ---------------------------------------------------------------------------


async def test_create_answers_201_with_location_etag_and_masked_view(
    client: httpx.AsyncClient, customers: str, rw: dict[str, str]
) -> None:
    response = await create(client, customers, rw)
    body = response.json()
    assert response.headers["location"] == f"{customers}/{body['id']}"
    assert response.headers["etag"] == '"1"'
    assert response.headers["content-type"] == "application/json"
    assert body["version"] == 1
    assert body["collection"] == "customers"
    assert body["subject_id"] == "subject-1"
    assert body["revealed"] == []
    assert body["data"] == MASKED
    assert set(body) == {
        "id",
        "collection",
        "subject_id",
        "version",
        "data",
        "revealed",
        "created_at",
        "updated_at",
    }


async def test_read_masks_every_type_as_the_privacy_module_does(
    client: httpx.AsyncClient, customers: str, rw: dict[str, str]
) -> None:
    record_id = (await create(client, customers, rw)).json()["id"]
    response = await client.get(f"{customers}/{record_id}", headers=rw)
    assert response.status_code == 200, response.text
    assert response.headers["etag"] == '"1"'
    data = response.json()["data"]
    assert data == MASKED
    plain = customer(0)
    # Masks are computed from the normalised stored value with the field's policy.
    assert data["email"] == privacy.mask("email", str(plain["email"]))
    assert data["card"] == privacy.mask("card", "4111111111111111")
    assert data["ssn"] == privacy.mask("ssn", "123-45-6789")
    assert data["phone"] == privacy.mask("phone", str(plain["phone"]))
    assert data["iban"] == privacy.mask("iban", "DE89370400440532013000")
    assert data["name"] == privacy.mask("name", str(plain["name"]))
    assert data["notes"] == privacy.mask("text", str(plain["notes"]), "full")
    assert data["birthday"] == privacy.mask("date", "1984-03-09", "redact")


async def test_hash_mask_policy_is_stable_and_hides_the_value(
    client: httpx.AsyncClient, tenant: TenantKeys, rw: dict[str, str]
) -> None:
    schema = {"fields": {"email": {"type": "email", "mask": "hash"}}}
    put = await client.put(
        "/v1/collections/hashed", json=schema, headers=await tenant.headers("admin")
    )
    assert put.status_code == 201, put.text
    url = "/v1/collections/hashed/records"
    masks = []
    for subject in ("a", "b"):
        response = await client.post(
            url, json={"subject_id": subject, "data": {"email": "kim@example.com"}}, headers=rw
        )
        assert response.status_code == 201, response.text
        masks.append(response.json()["data"]["email"])
    assert masks[0] == masks[1]
    assert masks[0].startswith("hash:")
    assert "kim" not in masks[0]


# -- update ------------------------------------------------------------------------------------


async def test_patch_with_matching_if_match_bumps_the_version(
    client: httpx.AsyncClient, customers: str, rw: dict[str, str], tenant: TenantKeys
) -> None:
    created = await create(client, customers, rw)
    record_id = created.json()["id"]
    response = await client.patch(
        f"{customers}/{record_id}",
        json={"data": {"plan": "silver", "email": "kim@example.org"}},
        headers={**rw, "If-Match": created.headers["etag"]},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["version"] == 2
    assert response.headers["etag"] == '"2"'
    assert body["data"]["plan"] == "silver"
    assert body["data"]["email"] == "k•••@e•••••.org"
    assert body["data"]["card"] == MASKED["card"]  # untouched fields stay
    revealed = await client.get(
        f"{customers}/{record_id}",
        params={"reveal": "email"},
        headers=await tenant.headers("records:read", "records:reveal", **{"X-Purpose": "support"}),
    )
    assert revealed.json()["data"]["email"] == "kim@example.org"
    # Without If-Match the update applies to the current version.
    again = await client.patch(f"{customers}/{record_id}", json={"data": {"score": 1}}, headers=rw)
    assert again.status_code == 200, again.text
    assert again.json()["version"] == 3


@pytest.mark.parametrize("etag", ['"2"', '"0"', 'W/"5"'])
async def test_patch_with_stale_if_match_is_refused_and_changes_nothing(
    client: httpx.AsyncClient, customers: str, rw: dict[str, str], db: asyncpg.Pool, etag: str
) -> None:
    record_id = (await create(client, customers, rw)).json()["id"]
    before = await row_of(db, record_id)
    response = await client.patch(
        f"{customers}/{record_id}",
        json={"data": {"plan": "silver"}},
        headers={**rw, "If-Match": etag},
    )
    assert_problem(response, 412, "precondition-failed")
    assert await row_of(db, record_id) == before
    assert (await client.get(f"{customers}/{record_id}", headers=rw)).json()["version"] == 1


async def test_patch_null_removes_an_optional_field(
    client: httpx.AsyncClient, customers: str, rw: dict[str, str], db: asyncpg.Pool
) -> None:
    record_id = (await create(client, customers, rw)).json()["id"]
    response = await client.patch(
        f"{customers}/{record_id}", json={"data": {"email": None, "score": None}}, headers=rw
    )
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert "email" not in data
    assert "score" not in data
    assert data["plan"] == "gold"
    stored = await db.fetchval("SELECT data::text FROM records WHERE id = $1::uuid", record_id)
    assert '"email"' not in stored
    # The removed searchable field is no longer found by search.
    found = await client.get(customers, params={"email": "jane.doe0@example.com"}, headers=rw)
    assert found.json()["items"] == []
    index = await db.fetchval(
        "SELECT count(*) FROM record_index WHERE record_id = $1::uuid AND field = 'email'",
        record_id,
    )
    assert index == 0


async def test_patch_null_on_a_required_field_is_refused(
    client: httpx.AsyncClient, customers: str, rw: dict[str, str], db: asyncpg.Pool
) -> None:
    record_id = (await create(client, customers, rw)).json()["id"]
    before = await row_of(db, record_id)
    response = await client.patch(
        f"{customers}/{record_id}", json={"data": {"name": None, "plan": "silver"}}, headers=rw
    )
    body = assert_problem(response, 422, "validation-failed")
    assert {"location": "/data/name", "message": "must not be null"} in body["errors"]
    assert await row_of(db, record_id) == before


async def test_patch_of_unknown_record_is_not_found(
    client: httpx.AsyncClient, customers: str, rw: dict[str, str]
) -> None:
    response = await client.patch(
        f"{customers}/00000000-0000-4000-8000-000000000000",
        json={"data": {"plan": "x"}},
        headers=rw,
    )
    assert_problem(response, 404, "not-found")


# -- delete ------------------------------------------------------------------------------------


async def test_delete_then_read_is_not_found(
    client: httpx.AsyncClient, customers: str, rw: dict[str, str], db: asyncpg.Pool
) -> None:
    created = await create(client, customers, rw)
    record_id = created.json()["id"]
    response = await client.delete(
        f"{customers}/{record_id}", headers={**rw, "If-Match": created.headers["etag"]}
    )
    assert response.status_code == 204, response.text
    assert response.content == b""
    assert_problem(await client.get(f"{customers}/{record_id}", headers=rw), 404, "not-found")
    assert_problem(await client.delete(f"{customers}/{record_id}", headers=rw), 404, "not-found")
    assert await row_of(db, record_id) is None
    index = await db.fetchval(
        "SELECT count(*) FROM record_index WHERE record_id = $1::uuid", record_id
    )
    assert index == 0


async def test_delete_with_stale_if_match_is_refused(
    client: httpx.AsyncClient, customers: str, rw: dict[str, str], db: asyncpg.Pool
) -> None:
    record_id = (await create(client, customers, rw)).json()["id"]
    patched = await client.patch(
        f"{customers}/{record_id}", json={"data": {"plan": "x"}}, headers=rw
    )
    assert patched.status_code == 200
    before = await row_of(db, record_id)
    response = await client.delete(f"{customers}/{record_id}", headers={**rw, "If-Match": '"1"'})
    assert_problem(response, 412, "precondition-failed")
    assert await row_of(db, record_id) == before


@pytest.mark.parametrize("etag", ["abc", '"1.5"', '"-1"', '"9999999999"', '"1", "2"'])
async def test_malformed_if_match_is_a_bad_request(
    client: httpx.AsyncClient, customers: str, rw: dict[str, str], db: asyncpg.Pool, etag: str
) -> None:
    record_id = (await create(client, customers, rw)).json()["id"]
    before = await row_of(db, record_id)
    for response in (
        await client.delete(f"{customers}/{record_id}", headers={**rw, "If-Match": etag}),
        await client.patch(
            f"{customers}/{record_id}",
            json={"data": {"plan": "x"}},
            headers={**rw, "If-Match": etag},
        ),
    ):
        assert_problem(response, 400)
    assert await row_of(db, record_id) == before


# -- search and pagination ---------------------------------------------------------------------


async def test_search_normalises_the_query_like_the_stored_value(
    client: httpx.AsyncClient, customers: str, rw: dict[str, str]
) -> None:
    wanted = (await create(client, customers, rw, 0)).json()["id"]
    await create(client, customers, rw, 1)
    for query in ("jane.doe0@example.com", "  JANE.Doe0@Example.COM ", "Jane.Doe0@EXAMPLE.com"):
        response = await client.get(customers, params={"email": query}, headers=rw)
        assert response.status_code == 200, response.text
        items = response.json()["items"]
        assert [item["id"] for item in items] == [wanted], query
        assert items[0]["data"]["email"] == MASKED["email"]
    phone = await client.get(customers, params={"phone": "+1 (415) 555-0134"}, headers=rw)
    assert len(phone.json()["items"]) == 2
    both = await client.get(
        customers,
        params={"phone": "+14155550134", "plan": "gold", "email": "jane.doe1@example.com"},
        headers=rw,
    )
    assert len(both.json()["items"]) == 1
    none = await client.get(customers, params={"email": "nobody@example.com"}, headers=rw)
    assert none.json() == {"items": [], "next_cursor": None}


@pytest.mark.parametrize(
    ("params", "status"),
    [
        pytest.param({"card": "4111111111111111"}, 422, id="not-searchable"),
        pytest.param({"score": "42"}, 422, id="non-sensitive-not-searchable"),
        pytest.param({"nope": "x"}, 422, id="unknown-param"),
        pytest.param({"email": "not-an-email"}, 422, id="invalid-search-value"),
        pytest.param({"reveal": "email"}, 400, id="reveal-on-search"),
        pytest.param({"cursor": "bogus"}, 400, id="bad-cursor"),
        pytest.param({"cursor": "eyJhZnRlciI6LTF9"}, 400, id="negative-cursor"),
        pytest.param({"cursor": ""}, 400, id="empty-cursor"),
        pytest.param({"email": ""}, 422, id="empty-search-value"),
        pytest.param({"nope": ""}, 422, id="unknown-param-without-value"),
        pytest.param(
            {"email": "jane.doe0@example.com", "cursor": ""}, 400, id="search-with-empty-cursor"
        ),
        pytest.param({f"p{n}": "1" for n in range(65)}, 400, id="65-parameters"),
        pytest.param({"limit": "0"}, 400, id="limit-0"),
        pytest.param({"limit": "abc"}, 400, id="limit-abc"),
        pytest.param({"limit": "1000"}, 400, id="limit-1000"),
        pytest.param({"limit": "-1"}, 400, id="limit-negative"),
        pytest.param({"limit": "1.5"}, 400, id="limit-fraction"),
        pytest.param({"limit": "٣"}, 400, id="limit-arabic-digit"),
        pytest.param({"limit": ""}, 400, id="limit-empty"),
        pytest.param([("limit", "1"), ("limit", "2")], 400, id="limit-twice"),
        pytest.param([("email", "a@b.co"), ("email", "c@d.co")], 422, id="field-twice"),
    ],
)
async def test_bad_search_parameters(
    client: httpx.AsyncClient, customers: str, rw: dict[str, str], params: Any, status: int
) -> None:
    await create(client, customers, rw)
    response = await client.get(customers, params=params, headers=rw)
    assert_problem(response, status)


@pytest.mark.parametrize("query", ["reveal=", "reveal=%FF", "reveal=,,"])
async def test_empty_or_undecodable_reveal_is_a_bad_request(
    client: httpx.AsyncClient, customers: str, tenant: TenantKeys, query: str
) -> None:
    headers = await tenant.headers(
        "records:read", "records:write", "records:reveal", **{"X-Purpose": "support"}
    )
    record_id = (await create(client, customers, headers)).json()["id"]
    response = await client.get(f"{customers}/{record_id}?{query}", headers=headers)
    assert_problem(response, 400, "bad-request")
    assert "jane.doe0" not in response.text


async def test_plain_text_search_for_an_empty_value_finds_nothing(
    client: httpx.AsyncClient, customers: str, rw: dict[str, str]
) -> None:
    await create(client, customers, rw)
    response = await client.get(customers, params={"plan": ""}, headers=rw)
    assert response.status_code == 200, response.text
    assert response.json()["items"] == []


async def test_pagination_walks_every_record_exactly_once(
    client: httpx.AsyncClient, customers: str, rw: dict[str, str]
) -> None:
    ids = [(await create(client, customers, rw, n)).json()["id"] for n in range(5)]
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        response = await client.get(customers, params=params, headers=rw)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= 2
        seen.extend(item["id"] for item in page["items"])
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert pages < 10
    assert seen == ids
    assert pages == 3
    # The same walk over a filtered search (the plan field is searchable, all five share it).
    filtered = await client.get(customers, params={"plan": "gold", "limit": "2"}, headers=rw)
    first = filtered.json()
    assert [item["id"] for item in first["items"]] == ids[:2]
    rest = await client.get(
        customers,
        params={"plan": "gold", "limit": "100", "cursor": first["next_cursor"]},
        headers=rw,
    )
    assert [item["id"] for item in rest.json()["items"]] == ids[2:]
    assert rest.json()["next_cursor"] is None


# -- schema changes ----------------------------------------------------------------------------


def schema_with(**changes: Any) -> dict[str, Any]:
    fields = {name: dict(spec) for name, spec in CUSTOMERS["fields"].items()}
    for name, spec in changes.items():
        if spec is None:
            del fields[name]
        else:
            fields[name] = spec
    return {"fields": fields}


@pytest.mark.parametrize(
    "schema",
    [
        pytest.param(schema_with(score=None), id="remove-field"),
        pytest.param(schema_with(score={"type": "text", "sensitive": False}), id="change-type"),
        pytest.param(
            schema_with(plan={"type": "text", "sensitive": True, "searchable": True}),
            id="change-sensitivity",
        ),
        pytest.param(schema_with(email={"type": "email"}), id="drop-searchable"),
        pytest.param(
            schema_with(extra={"type": "text", "required": True}), id="add-required-field"
        ),
    ],
)
async def test_schema_changes_that_strand_records_conflict(
    client: httpx.AsyncClient,
    tenant: TenantKeys,
    customers: str,
    rw: dict[str, str],
    db: asyncpg.Pool,
    schema: dict[str, Any],
) -> None:
    await create(client, customers, rw)
    admin = await tenant.headers("admin")
    before = await db.fetchval(
        "SELECT t::text FROM collections t WHERE tenant_id = $1::uuid", tenant.id
    )
    response = await client.put("/v1/collections/customers", json=schema, headers=admin)
    body = assert_problem(response, 409, "conflict")
    assert body["errors"]
    after = await db.fetchval(
        "SELECT t::text FROM collections t WHERE tenant_id = $1::uuid", tenant.id
    )
    assert after == before


async def test_schema_changes_that_keep_records_valid_are_applied(
    client: httpx.AsyncClient, tenant: TenantKeys, customers: str, rw: dict[str, str]
) -> None:
    await create(client, customers, rw)
    admin = await tenant.headers("admin")
    grown = schema_with(nickname={"type": "name"})
    response = await client.put("/v1/collections/customers", json=grown, headers=admin)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["version"] == 2
    assert body["fields"]["nickname"] == {
        "type": "name",
        "sensitive": True,
        "searchable": False,
        "mask": "partial",
        "required": False,
    }
    remasked = schema_with(
        notes={"type": "text", "sensitive": True, "mask": "partial"}, nickname={"type": "name"}
    )
    response = await client.put("/v1/collections/customers", json=remasked, headers=admin)
    assert response.status_code == 200, response.text
    assert response.json()["version"] == 3
    # Without records, anything goes: removing fields of an empty collection is fine.
    empty = await client.put("/v1/collections/empty", json=CUSTOMERS, headers=admin)
    assert empty.status_code == 201
    shrunk = await client.put("/v1/collections/empty", json=schema_with(score=None), headers=admin)
    assert shrunk.status_code == 200, shrunk.text


# -- the HTTP surface --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "status", "allow"),
    [
        pytest.param("GET", "/nope", 404, None, id="unknown-root-path"),
        pytest.param("GET", "/v1/nope", 404, None, id="unknown-v1-path"),
        pytest.param("POST", "/livez", 405, "GET", id="post-livez"),
        pytest.param("DELETE", "/openapi.json", 405, "GET", id="delete-openapi"),
        pytest.param("POST", "/v1/collections/customers", 405, "GET, PUT", id="post-collection"),
        pytest.param(
            "PUT", "/v1/collections/customers/records", 405, "GET, POST", id="put-records"
        ),
        pytest.param(
            "POST",
            "/v1/collections/customers/records/{id}",
            405,
            "GET, PATCH, DELETE",
            id="post-record",
        ),
        pytest.param("GET", "/v1/redact", 405, "POST", id="get-redact"),
    ],
)
async def test_unknown_routes_and_wrong_methods(
    client: httpx.AsyncClient,
    customers: str,
    rw: dict[str, str],
    method: str,
    path: str,
    status: int,
    allow: str | None,
) -> None:
    record_id = (await create(client, customers, rw)).json()["id"]
    response = await client.request(method, path.format(id=record_id), headers=rw)
    assert_problem(response, status)
    if allow is None:
        assert "allow" not in response.headers
    else:
        assert set(response.headers["allow"].split(", ")) == set(allow.split(", "))


SECURITY_HEADERS = {
    "cache-control": "no-store",
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}


def assert_security_headers(response: httpx.Response) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get_list(name) == [value], (name, response.headers.get_list(name))
    csp = response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp
    assert "default-src 'none'" in csp
    # No software or version is announced (the app may name itself, nothing more).
    assert "x-powered-by" not in response.headers
    assert response.headers.get("server", "strongroom") == "strongroom"


async def test_security_headers_on_success_and_error(
    client: httpx.AsyncClient, customers: str, rw: dict[str, str]
) -> None:
    created = await create(client, customers, rw)
    responses = [
        created,
        await client.get(f"{customers}/{created.json()['id']}", headers=rw),
        await client.get(f"{customers}/not-a-uuid", headers=rw),
        await client.get(customers),  # 401
        await client.post("/livez"),  # 405
        await client.get("/nope"),  # 404
        await client.get("/livez"),
        await client.get("/openapi.json"),
        await client.get("/docs"),
    ]
    for response in responses:
        assert_security_headers(response)


@pytest.mark.parametrize(
    ("offered", "kept"),
    [
        pytest.param("abc-123", True, id="simple"),
        pytest.param("a" * 128, True, id="128-chars"),
        pytest.param("0af7651916cd43dd8448eb211c80319c.span:1_x", True, id="trace-like"),
        pytest.param("a" * 300, False, id="300-chars"),
        pytest.param("has space", False, id="space"),
        pytest.param("line\nbreak", False, id="newline"),
        pytest.param("semi;colon", False, id="semicolon"),
        pytest.param("<script>", False, id="markup"),
        pytest.param("", False, id="empty"),
    ],
)
async def test_request_id_is_kept_only_when_well_formed(
    client: httpx.AsyncClient, offered: str, kept: bool
) -> None:
    headers = [(b"X-Request-ID", offered.encode())]
    for response in (
        await client.get("/livez", headers=headers),
        await client.get("/v1/nope", headers=headers),
    ):
        returned = response.headers["x-request-id"]
        if kept:
            assert returned == offered
        else:
            assert returned != offered
            assert 1 <= len(returned) <= 128
            assert returned.isalnum()
        if response.status_code >= 400:
            assert response.json()["request_id"] == returned


async def test_every_response_gets_a_fresh_request_id(client: httpx.AsyncClient) -> None:
    ids = {(await client.get("/livez")).headers["x-request-id"] for _ in range(3)}
    assert len(ids) == 3


EXPECTED_OPERATIONS = {
    ("PUT", "/v1/collections/{name}"),
    ("GET", "/v1/collections/{name}"),
    ("POST", "/v1/collections/{name}/records"),
    ("GET", "/v1/collections/{name}/records"),
    ("GET", "/v1/collections/{name}/records/{record_id}"),
    ("PATCH", "/v1/collections/{name}/records/{record_id}"),
    ("DELETE", "/v1/collections/{name}/records/{record_id}"),
    ("POST", "/v1/redact"),
    ("POST", "/v1/mask"),
}


def served_operations(app: Any) -> set[tuple[str, str]]:
    """(method, path template) of every /v1 route on the application's router."""
    served = set()
    for method, routes in app.router.routes.items():
        for route in routes:
            pattern = getattr(route, "mustache_pattern", None) or route.pattern
            path = pattern.decode() if isinstance(pattern, bytes) else pattern
            if path.startswith("/v1/"):
                served.add((method.decode() if isinstance(method, bytes) else method, path))
    return served


async def test_openapi_documents_every_served_operation(
    client: httpx.AsyncClient, app: Any
) -> None:
    response = await client.get("/openapi.json")
    assert response.status_code == 200, response.text
    document = response.json()
    assert document["openapi"].startswith("3.")
    documented = {
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
        if path.startswith("/v1/")
    }
    served = served_operations(app)
    assert served >= EXPECTED_OPERATIONS
    assert documented == served
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            where = f"{method.upper()} {path}"
            assert operation.get("summary"), where
            if not path.startswith("/v1/"):
                continue
            errors = {int(code) for code in operation["responses"] if int(code) >= 400}
            assert {401, 403} <= errors, where
            assert any(int(code) < 300 for code in operation["responses"]), where
            for code in errors:
                content = operation["responses"][str(code)]["content"]
                assert "application/problem+json" in content, where
            assert operation["security"], where
    for path in ("/livez", "/openapi.json", "/docs"):
        assert "get" in document["paths"][path]


async def test_docs_page_answers_html(client: httpx.AsyncClient) -> None:
    response = await client.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "<html" in response.text
    assert "/openapi.json" in response.text
