"""Bad input, table-driven, against every write endpoint: each case gets a clear 4xx
problem+json — never a 500, never a 2xx — and leaves both databases exactly as they were."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import pytest

from tests.conftest import TenantKeys, customer
from tests.integration.problems import assert_problem_shape

LIMIT = 65536  # STRONGROOM_MAX_BODY_BYTES in the test settings
JSON = {"Content-Type": "application/json"}
RECORDS = "/v1/collections/customers/records"


@dataclass(frozen=True)
class World:
    """A tenant with the customers collection and one record, and an admin key for it."""

    headers: dict[str, str]
    record_id: str


@dataclass(frozen=True)
class Endpoint:
    """One write endpoint: where it is, a valid body, and templates that put a raw JSON value
    (``@V@``) into a member it validates."""

    name: str
    method: str
    path: str
    valid: dict[str, Any]
    slots: dict[str, str]


ENDPOINTS = {
    "put-collection": Endpoint(
        "put-collection",
        "PUT",
        "/v1/collections/fresh",
        {"fields": {"email": {"type": "email", "searchable": True}}},
        {
            "any": '{"fields": {"email": {"type": "email", "searchable": @V@}}}',
            "key": '{"fields": {@V@: {"type": "email"}}}',
        },
    ),
    "create-record": Endpoint(
        "create-record",
        "POST",
        RECORDS,
        {"subject_id": "bad-input-subject", "data": customer(7)},
        {
            "any": '{"subject_id": "s-1", "data": {"name": "Ann", "score": @V@}}',
            "key": '{"subject_id": "s-1", "data": {"name": "Ann", @V@: 1}}',
        },
    ),
    "patch-record": Endpoint(
        "patch-record",
        "PATCH",
        RECORDS + "/{id}",
        {"data": {"plan": "platinum"}},
        {"any": '{"data": {"score": @V@}}', "key": '{"data": {@V@: 1}}'},
    ),
    "redact": Endpoint(
        "redact",
        "POST",
        "/v1/redact",
        {"text": "mail jane@example.com"},
        {"any": '{"text": "hello", "style": @V@}', "key": '{"text": "hello", @V@: 1}'},
    ),
    "mask": Endpoint(
        "mask",
        "POST",
        "/v1/mask",
        {"type": "card", "value": "4111 1111 1111 1111"},
        {
            "any": '{"type": "card", "value": "4111", "policy": @V@}',
            "key": '{"type": "card", "value": "4111", @V@: 1}',
        },
    ),
}


@dataclass(frozen=True)
class Case:
    """A request to send; ``status`` is the answer expected (any 4xx when None)."""

    endpoint: str
    content: bytes | Callable[[], AsyncIterator[bytes]]
    status: int | None
    headers: dict[str, str] = field(default_factory=lambda: dict(JSON))
    path: str | None = None  # replaces the endpoint's path ({id}: the record's id)
    method: str | None = None


CASES: list[Any] = []


def case(
    case_id: str, endpoint: str, content: Any, status: int | None = None, **options: Any
) -> None:
    if not isinstance(content, bytes) and not callable(content):
        content = json.dumps(content).encode()
    CASES.append(
        pytest.param(Case(endpoint, content, status, **options), id=f"{endpoint}:{case_id}")
    )


def in_slot(endpoint: str, raw: str, slot: str = "any") -> bytes:
    return ENDPOINTS[endpoint].slots[slot].replace("@V@", raw).encode()


async def oversized_stream() -> AsyncIterator[bytes]:
    yield b'{"text": "'
    for _ in range(20):
        yield b"a" * 4096
    yield b'"}'


# -- every endpoint: the body as a document ----------------------------------------------------

DEEP = b"[" * 10_000 + b"]" * 10_000
OVERSIZE = json.dumps({"text": "a" * (LIMIT + 10)}).encode()

for name, spec in ENDPOINTS.items():
    valid = json.dumps(spec.valid).encode()
    case("malformed", name, b'{"a":', 400)
    case("truncated-string", name, b'{"text": "abc', 400)
    case("trailing-garbage", name, valid + b" {}", 400)
    case("single-quotes", name, b"{'text': 'a'}", 400)
    case("trailing-comma", name, b'{"text": "a",}', 400)
    case("comment", name, b'{"text": "a" /* hi */}', 400)
    case("empty-body", name, b"", 400)
    case("whitespace-body", name, b" \r\n\t ", 400)
    case("byte-order-mark", name, b"\xef\xbb\xbf" + valid, 400)
    case("utf-16", name, json.dumps(spec.valid).encode("utf-16"), 400)
    for label, document in (
        ("array", b"[]"),
        ("array-of-object", b"[" + valid + b"]"),
        ("string", b'"text"'),
        ("number", b"1"),
        ("null", b"null"),
        ("true", b"true"),
        ("empty-string", b'""'),
    ):
        case(f"not-an-object-{label}", name, document, 422)
    case(
        "invalid-utf8",
        name,
        in_slot(name, '"\xff\xfe"').replace(b"\xc3\xbf\xc3\xbe", b"\xff\xfe"),
        400,
    )
    case("overlong-utf8", name, b'{"text": "\xc0\xaf"}', 400)
    case("lone-high-surrogate-value", name, in_slot(name, '"\\ud800"'), 400)
    case("lone-low-surrogate-value", name, in_slot(name, '"a\\udc00b"'), 400)
    case("lone-surrogate-key", name, in_slot(name, '"\\ud800"', "key"), 400)
    case("nul-in-key", name, in_slot(name, '"na\\u0000me"', "key"), 422)
    case("nul-in-value", name, in_slot(name, '"a\\u0000b"'), 422)
    case("nan", name, in_slot(name, "NaN"), 400)
    case("infinity", name, in_slot(name, "Infinity"), 400)
    case("minus-infinity", name, in_slot(name, "-Infinity"), 400)
    case("huge-float-1e400", name, in_slot(name, "1e400"), 400)
    case("huge-negative-float", name, in_slot(name, "-1e400"), 400)
    case("huge-integer-10-400", name, in_slot(name, str(10**400)), 400)
    case("deep-nesting-body", name, DEEP, 400)
    case("deep-nesting-in-member", name, in_slot(name, DEEP.decode()), 400)
    case("duplicate-keys", name, b'{"a": 1, "a": 2}', 400)
    first = next(iter(spec.valid))
    duplicated = valid[:-1] + b", " + json.dumps({first: spec.valid[first]}).encode()[1:]
    case("duplicate-real-member", name, duplicated, 400)
    case("unknown-member", name, {**spec.valid, "extra": 1}, 422)
    case("unknown-member-null", name, {**spec.valid, "extra": None}, 422)
    for label, content_type in (
        ("text-plain", "text/plain"),
        ("form", "application/x-www-form-urlencoded"),
        ("multipart", "multipart/form-data; boundary=xyz"),
        ("xml", "application/xml"),
        ("json-prefix", "application/jsonx"),
        ("bare-json", "json"),
        ("empty", ""),
    ):
        case(f"content-type-{label}", name, valid, 415, headers={"Content-Type": content_type})
    case("content-type-missing", name, valid, 415, headers={})
    case("oversize-content-length", name, OVERSIZE, 413)
    case("oversize-chunked", name, lambda: oversized_stream(), 413)
    case("content-length-not-a-number", name, valid, 400, headers={**JSON, "Content-Length": "ten"})


# -- every member with the wrong type ----------------------------------------------------------

WRONG = {
    "string": [None, True, 5, 1.5, [], {}, ["a"]],
    "object": [None, True, 5, "x", [], ["a"]],
    "boolean": [None, 1, 0, "true", [], {}],
    "number": [True, "5", "NaN", [], {}, [5]],
}


def wrong_types(
    endpoint: str, member: str, kind: str, build: Callable[[Any], Any], status: int = 422
) -> None:
    for value in WRONG[kind]:
        case(f"{member}={json.dumps(value)}", endpoint, build(value), status)


wrong_types("put-collection", "fields", "object", lambda v: {"fields": v})
case("fields={}", "put-collection", {"fields": {}}, 422)
wrong_types("put-collection", "fields.email", "object", lambda v: {"fields": {"email": v}})
wrong_types(
    "put-collection", "fields.email.type", "string", lambda v: {"fields": {"email": {"type": v}}}
)
for flag in ("sensitive", "searchable", "required"):
    wrong_types(
        "put-collection",
        f"fields.email.{flag}",
        "boolean",
        lambda v, flag=flag: {"fields": {"email": {"type": "email", flag: v}}},
    )
wrong_types(
    "put-collection",
    "fields.email.mask",
    "string",
    lambda v: {"fields": {"email": {"type": "email", "mask": v}}},
)

wrong_types(
    "create-record", "subject_id", "string", lambda v: {"subject_id": v, "data": customer()}
)
wrong_types("create-record", "data", "object", lambda v: {"subject_id": "s", "data": v})
wrong_types("patch-record", "data", "object", lambda v: {"data": v})
STRING_FIELDS = ("email", "card", "ssn", "phone", "iban", "name", "notes", "birthday", "plan")
for target in ("create-record", "patch-record"):
    for member in STRING_FIELDS:
        values = [v for v in WRONG["string"] if not (v is None and target == "patch-record")]
        for value in values:
            data = {**customer(), member: value} if target == "create-record" else {member: value}
            body = (
                {"subject_id": "s", "data": data} if target == "create-record" else {"data": data}
            )
            case(f"data.{member}={json.dumps(value)}", target, body, 422)
    for member, kind in (("score", "number"), ("vip", "boolean")):
        for value in WRONG[kind]:
            if value is None and target == "patch-record":
                continue  # null removes an optional field in a PATCH
            data = {**customer(), member: value} if target == "create-record" else {member: value}
            body = (
                {"subject_id": "s", "data": data} if target == "create-record" else {"data": data}
            )
            case(f"data.{member}={json.dumps(value)}", target, body, 422)

wrong_types("redact", "text", "string", lambda v: {"text": v})
wrong_types("redact", "style", "string", lambda v: {"text": "a", "style": v})
wrong_types("mask", "type", "string", lambda v: {"type": v, "value": "x"})
wrong_types("mask", "value", "string", lambda v: {"type": "card", "value": v})
wrong_types("mask", "policy", "string", lambda v: {"type": "card", "value": "x", "policy": v})

# -- missing and invalid members ---------------------------------------------------------------

case("missing-fields", "put-collection", {}, 422)
case("type-unknown", "put-collection", {"fields": {"a": {"type": "uuid"}}}, 422)
case("type-uppercase", "put-collection", {"fields": {"a": {"type": "EMAIL"}}}, 422)
case("missing-type", "put-collection", {"fields": {"a": {"sensitive": True}}}, 422)
case("mask-unknown", "put-collection", {"fields": {"a": {"type": "text", "mask": "blur"}}}, 422)
case(
    "card-not-sensitive",
    "put-collection",
    {"fields": {"c": {"type": "card", "sensitive": False}}},
    422,
)
case(
    "ssn-not-sensitive",
    "put-collection",
    {"fields": {"s": {"type": "ssn", "sensitive": False}}},
    422,
)
case(
    "field-def-unknown-member",
    "put-collection",
    {"fields": {"a": {"type": "text", "index": True}}},
    422,
)
case(
    "too-many-fields",
    "put-collection",
    {"fields": {f"f{n}": {"type": "text"} for n in range(65)}},
    422,
)
for label, field_name in (
    ("uppercase", "Email"),
    ("digit-first", "1a"),
    ("dash", "a-b"),
    ("dot", "a.b"),
    ("slash", "a/b"),
    ("unicode", "émail"),
    ("empty", ""),
    ("64-chars", "a" * 64),
    ("reserved-subject", "$subject"),
    ("newline", "a\nb"),
    ("space", "a b"),
):
    case(f"field-name-{label}", "put-collection", {"fields": {field_name: {"type": "text"}}}, 422)

case("missing-subject-id", "create-record", {"data": customer()}, 422)
case("missing-data", "create-record", {"subject_id": "s"}, 422)
case("empty-object", "create-record", {}, 422)
case(
    "missing-required-field",
    "create-record",
    {"subject_id": "s", "data": {k: v for k, v in customer().items() if k != "name"}},
    422,
)
case(
    "unknown-data-field",
    "create-record",
    {"subject_id": "s", "data": {**customer(), "nickname": "x"}},
    422,
)
case(
    "subject-field-in-data",
    "create-record",
    {"subject_id": "s", "data": {**customer(), "$subject": "x"}},
    422,
)
for label, subject in (
    ("empty", ""),
    ("300-chars", "s" * 300),
    ("257-chars", "s" * 257),
    ("newline", "a\nb"),
    ("carriage-return", "a\rb"),
    ("tab", "a\tb"),
    ("nul", "a\x00b"),
    ("leading-space", " a"),
    ("trailing-space", "a "),
    ("only-spaces", "   "),
    ("line-separator", "a\u2028b"),
    ("escape", "a\x1bb"),
):
    case(f"subject_id-{label}", "create-record", {"subject_id": subject, "data": customer()}, 422)

INVALID_VALUES = [
    ("card", "4111 1111 1111 1112", "luhn-invalid"),
    ("card", "4111", "too-short"),
    ("card", "4111 1111 1111 1111 1111 1", "too-long"),
    ("card", "4111-1111-1111-111a", "letter"),
    ("card", "４１１１１１１１１１１１１１１１", "fullwidth-digits"),
    ("card", "", "empty"),
    ("ssn", "000-12-3456", "area-000"),
    ("ssn", "666-12-3456", "area-666"),
    ("ssn", "912-34-5678", "area-9xx"),
    ("ssn", "123-00-4567", "group-00"),
    ("ssn", "123-45-0000", "serial-0000"),
    ("ssn", "123-45-678", "eight-digits"),
    ("ssn", "123-45-67890", "ten-digits"),
    ("ssn", "abc-de-fghi", "letters"),
    ("iban", "DE88 3704 0044 0532 0130 00", "bad-checksum"),
    ("iban", "DE89", "too-short"),
    ("iban", "1234 3704 0044 0532 0130 00", "no-country"),
    ("iban", "DE89 3704 0044 0532 0130 0!", "punctuation"),
    ("email", "jane.example.com", "no-at"),
    ("email", "jane@", "no-domain"),
    ("email", "@example.com", "no-local-part"),
    ("email", "jane@example", "no-dot"),
    ("email", "ja ne@example.com", "inner-space"),
    ("email", "jane@@example.com", "two-ats"),
    ("email", "a" * 250 + "@example.com", "too-long"),
    ("email", "jane\x00@example.com", "nul"),
    ("phone", "12345", "too-few-digits"),
    ("phone", "+1 415 555 0134 9999 1", "too-many-digits"),
    ("phone", "call me", "letters"),
    ("phone", "+1 415\n555 0134", "newline"),
    ("name", "   ", "blank"),
    ("name", "Ann\x07Lee", "bell"),
    ("name", "Ann\nLee", "newline"),
    ("name", "Ann\x00", "nul"),
    ("name", "A" * 201, "too-long"),
    ("notes", "x" * 10_001, "text-over-10000"),
    ("notes", "a\x00b", "text-nul"),
    ("plan", "a\x00b", "plain-text-nul"),
    ("plan", "x" * 10_001, "plain-text-over-10000"),
    ("birthday", "2024-02-30", "feb-30"),
    ("birthday", "2023-02-29", "not-a-leap-year"),
    ("birthday", "2024-13-01", "month-13"),
    ("birthday", "2024-2-3", "unpadded"),
    ("birthday", "20240203", "basic-format"),
    ("birthday", "2024-02-03T00:00:00", "datetime"),
    ("birthday", "2024-W05-6", "week-date"),
    ("birthday", "", "empty"),
    ("score", 2**53, "integer-over-2^53"),
    ("score", -(2**53), "integer-under-minus-2^53"),
    ("score", 10**30, "integer-10^30"),
    ("vip", "false", "string-false"),
]
for member, value, label in INVALID_VALUES:
    case(
        f"{member}-{label}",
        "create-record",
        {"subject_id": "s", "data": {**customer(), member: value}},
        422,
    )
    case(f"{member}-{label}", "patch-record", {"data": {member: value}}, 422)

case("missing-data", "patch-record", {}, 422)
case("null-required-field", "patch-record", {"data": {"name": None}}, 422)
case("unknown-data-field", "patch-record", {"data": {"nickname": "x"}}, 422)
case("change-subject", "patch-record", {"subject_id": "other", "data": {"plan": "x"}}, 422)
case("set-version", "patch-record", {"version": 9, "data": {"plan": "x"}}, 422)
for label, etag in (
    ("letters", "abc"),
    ("huge", '"99999999999"'),
    ("negative", '"-1"'),
    ("list", '"1", "2"'),
    ("empty", '""'),
):
    case(
        f"if-match-{label}",
        "patch-record",
        {"data": {"plan": "x"}},
        400,
        headers={**JSON, "If-Match": etag},
    )
case(
    "if-match-stale",
    "patch-record",
    {"data": {"plan": "x"}},
    412,
    headers={**JSON, "If-Match": '"7"'},
)

case("missing-text", "redact", {}, 422)
case("style-unknown", "redact", {"text": "a", "style": "bold"}, 422)
case("style-uppercase", "redact", {"text": "a", "style": "LABEL"}, 422)
case("missing-type", "mask", {"value": "x"}, 422)
case("missing-value", "mask", {"type": "card"}, 422)
case("type-unknown", "mask", {"type": "passport", "value": "x"}, 422)
case("policy-unknown", "mask", {"type": "card", "value": "x", "policy": "blur"}, 422)
case("policy-hash", "mask", {"type": "card", "value": "x", "policy": "hash"}, 422)

# -- odd ids and names in the URL --------------------------------------------------------------

ODD_RECORD_IDS = [
    ("path-traversal", "..%2F..%2Fetc%2Fpasswd", 400),
    ("dot-dot", "..", None),
    ("nul", "%00", 400),
    ("nul-after-uuid", "{uuid}%00", 400),
    ("10000-chars", "a" * 10_000, 400),
    ("not-a-uuid", "not-a-uuid", 400),
    ("number", "12345", 400),
    ("uppercase-uuid", "{upper}", 404),
    ("nil-uuid", "00000000-0000-0000-0000-000000000000", 404),
    ("hex-without-hyphens", "{hex}", 400),
    ("braces", "%7B{uuid}%7D", 400),
    ("urn", "urn:uuid:{uuid}", 400),
    ("trailing-space", "{uuid}%20", 400),
    ("zero-width-space", "%E2%80%8B{uuid}", 400),
    ("fullwidth", "%EF%BC%91" + "1" * 7 + "-1111-1111-1111-111111111111", 400),
    ("invalid-utf8", "%FF%FE", 400),
    ("lone-surrogate", "%ED%A0%80", 400),
    ("sql", "1'%20OR%20'1'='1", 400),
]


def odd_id(template: str) -> str:
    fresh = uuid.uuid4()
    return template.format(uuid=fresh, upper=str(fresh).upper(), hex=fresh.hex)


for label, template, status in ODD_RECORD_IDS:
    for method, content in (("PATCH", {"data": {"plan": "x"}}), ("DELETE", b""), ("GET", b"")):
        if label == "dot-dot" and method == "GET":
            continue  # the client resolves "records/.." to the collection itself, a valid read
        case(
            f"{method.lower()}-id-{label}",
            "patch-record",
            content,
            status,
            path=f"{RECORDS}/{template}",
            method=method,
        )

ODD_COLLECTION_NAMES = [
    ("uppercase", "Customers"),
    ("digit-first", "1abc"),
    ("dot", "a.b"),
    ("encoded-slash", "a%2Fb"),
    ("path-traversal", "..%2F..%2Fetc%2Fpasswd"),
    ("unicode", "%C3%BCnicode"),
    ("64-chars", "a" * 64),
    ("10000-chars", "a" * 10_000),
    ("nul", "%00"),
    ("nul-suffix", "customers%00"),
    ("space", "customers%20"),
    ("newline", "customers%0A"),
    ("invalid-utf8", "%FF"),
    ("lone-surrogate", "%ED%A0%80"),
    ("dash", "cus-tomers"),
    ("sql", "x'%3B%20DROP%20TABLE%20records%3B--"),
]
for label, name in ODD_COLLECTION_NAMES:
    case(
        f"collection-{label}",
        "put-collection",
        {"fields": {"email": {"type": "email"}}},
        400,
        path=f"/v1/collections/{name}",
    )
    case(
        f"collection-{label}",
        "create-record",
        {"subject_id": "s", "data": customer()},
        400,
        path=f"/v1/collections/{name}/records",
    )
    case(
        f"collection-{label}",
        "patch-record",
        {"data": {"plan": "x"}},
        400,
        path=f"/v1/collections/{name}/records/{{id}}",
    )


# -- the test ----------------------------------------------------------------------------------

DATA_TABLES = ("records", "record_index", "collections")


@pytest.fixture
async def world(client: httpx.AsyncClient, tenant: TenantKeys, customers: str) -> World:
    headers = await tenant.headers("admin")
    response = await client.post(
        customers, json={"subject_id": "resident", "data": customer()}, headers=headers
    )
    assert response.status_code == 201, response.text
    return World(headers, response.json()["id"])


async def snapshot(db: asyncpg.Pool, keys_db: asyncpg.Pool) -> dict[str, list[str]]:
    state = {}
    for table in DATA_TABLES:
        state[table] = [r[0] for r in await db.fetch(f"SELECT t::text FROM {table} t ORDER BY 1")]
    state["subject_keys"] = [
        r[0] for r in await keys_db.fetch("SELECT t::text FROM subject_keys t ORDER BY 1")
    ]
    return state


@pytest.mark.parametrize("bad", CASES)
async def test_bad_input_is_refused_without_side_effects(
    client: httpx.AsyncClient, db: asyncpg.Pool, keys_db: asyncpg.Pool, world: World, bad: Case
) -> None:
    spec = ENDPOINTS[bad.endpoint]
    path = (bad.path or spec.path).replace("{id}", world.record_id)
    if bad.path is not None:
        path = odd_id(path) if "{" in path else path
    content = bad.content() if callable(bad.content) else bad.content
    before = await snapshot(db, keys_db)
    response = await client.request(
        bad.method or spec.method,
        path,
        content=content,
        headers={**world.headers, **bad.headers},
    )
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    if bad.status is not None:
        assert response.status_code == bad.status, response.text
    assert_problem_shape(response)
    assert await snapshot(db, keys_db) == before


async def test_the_valid_bodies_are_accepted(client: httpx.AsyncClient, world: World) -> None:
    """The control: each endpoint's valid body succeeds, so the refusals above are about the
    one thing each case breaks."""
    for spec in ENDPOINTS.values():
        path = spec.path.replace("{id}", world.record_id)
        response = await client.request(spec.method, path, json=spec.valid, headers=world.headers)
        assert response.status_code in (200, 201), (spec.name, response.text)


# -- bytes no HTTP client library will send: straight to the ASGI application -----------------


@dataclass(frozen=True)
class RawAnswer:
    status: int
    headers: dict[str, str]
    body: bytes


async def asgi_request(
    app: Any, method: str, path: bytes, query: bytes, headers: dict[str, str], body: bytes
) -> RawAnswer:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path.decode("latin-1"),
        "raw_path": path,
        "query_string": query,
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 4711),
        "server": ("strongroom.test", 80),
    }
    messages: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    await app(scope, receive, send)
    start = messages[0]
    return RawAnswer(
        start["status"],
        {k.decode().lower(): v.decode() for k, v in start["headers"]},
        b"".join(m.get("body", b"") for m in messages[1:]),
    )


RAW_CASES = [
    ("put-collection-path", "PUT", b"/v1/collections/cust\xffomers", b""),
    ("create-record-path", "POST", b"/v1/collections/\xff\xfe/records", b""),
    ("patch-record-path", "PATCH", b"/v1/collections/customers/records/\xff", b""),
    ("patch-record-overlong-slash", "PATCH", b"/v1/collections/customers/records/\xc0\xaf", b""),
    ("unknown-path", "POST", b"/v1/\xff", b""),
    ("search-query", "GET", b"/v1/collections/customers/records", b"email=\xff"),
    ("search-query-percent", "GET", b"/v1/collections/customers/records", b"email=%FF"),
    ("search-query-name", "GET", b"/v1/collections/customers/records", b"\xff=1"),
    (
        "search-too-many-parameters",
        "GET",
        b"/v1/collections/customers/records",
        b"&".join(b"plan%d=1" % n for n in range(100)),
    ),
    ("reveal-query", "GET", b"/v1/collections/customers/records/{id}", b"reveal=\xff"),
]


@pytest.mark.parametrize(
    ("method", "path", "query"), [pytest.param(*row[1:], id=row[0]) for row in RAW_CASES]
)
async def test_bytes_that_are_not_utf8_in_path_or_query(
    app: Any,
    db: asyncpg.Pool,
    keys_db: asyncpg.Pool,
    world: World,
    method: str,
    path: bytes,
    query: bytes,
) -> None:
    path = path.replace(b"{id}", world.record_id.encode())
    body = json.dumps({"data": {"plan": "x"}}).encode() if method != "GET" else b""
    before = await snapshot(db, keys_db)
    answer = await asgi_request(app, method, path, query, {**world.headers, **JSON}, body)
    assert 400 <= answer.status < 500, (answer.status, answer.body)
    assert answer.headers["content-type"] == "application/problem+json"
    problem = json.loads(answer.body)
    assert problem["status"] == answer.status
    assert problem["request_id"] == answer.headers["x-request-id"]
    assert answer.headers["x-frame-options"] == "DENY"
    assert await snapshot(db, keys_db) == before
