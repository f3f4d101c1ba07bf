from __future__ import annotations

import pytest

from strongroom.domain.access import (
    Principal,
    generate_api_key,
    parse_api_key,
    secret_matches,
    validate_scopes,
)
from strongroom.domain.errors import BadRequest, Forbidden
from strongroom.domain.records import canonical_record_id, decode_cursor, encode_cursor


def principal(*scopes: str) -> Principal:
    return Principal("k", "t", "tenant", frozenset(scopes), ("support", "billing"))


def test_generated_keys_parse_and_verify_and_only_their_hash_is_kept() -> None:
    key = generate_api_key()
    parts = parse_api_key(key.token)
    assert parts is not None
    key_id, secret = parts
    assert key_id == key.key_id
    assert secret not in key.secret_hash.hex()
    assert secret_matches(secret, key.secret_hash)
    assert not secret_matches(secret[:-1] + ("A" if secret[-1] != "A" else "B"), key.secret_hash)
    assert generate_api_key().token != key.token


@pytest.mark.parametrize(
    "token",
    [
        "",
        "srk_",
        "Bearer srk_x",
        "srk_0123456789abcdeF_" + "a" * 43,
        "srk_0123456789abcdef_" + "a" * 42,
        "srk_0123456789abcdef_" + "a" * 43 + "\n",
    ],
)
def test_malformed_tokens_do_not_parse(token: str) -> None:
    assert parse_api_key(token) is None


def test_admin_has_every_scope_and_others_only_theirs() -> None:
    assert principal("admin").has("records:reveal")
    reader = principal("records:read")
    reader.require("records:read")
    with pytest.raises(Forbidden, match="records:reveal"):
        reader.require("records:reveal")


def test_purposes_must_be_stated_and_known() -> None:
    p = principal("records:reveal")
    assert p.require_purpose(" support ") == "support"
    for bad in (None, "", "  ", "curiosity", "SUPPORT"):
        with pytest.raises(BadRequest):
            p.require_purpose(bad)


def test_scopes_are_validated() -> None:
    assert validate_scopes(["records:read", "admin"]) == {"records:read", "admin"}
    with pytest.raises(ValueError, match="records:delete"):
        validate_scopes(["records:delete"])
    with pytest.raises(ValueError, match="none given"):
        validate_scopes([])


def test_cursor_round_trips_and_forgeries_are_refused() -> None:
    assert decode_cursor(encode_cursor(12345)) == 12345
    for forged in ("", "!!!", "eyJhZnRlciI6LTF9", "eyJhZnRlciI6IngifQ", "bnVsbA", "é"):
        with pytest.raises(BadRequest):
            decode_cursor(forged)


def test_record_ids_must_be_canonical_uuids() -> None:
    good = "5c0d6f1e-1234-4abc-8def-0123456789ab"
    assert canonical_record_id(good) == good
    for bad in ("x", "../../etc/passwd", good.replace("-", ""), "{" + good + "}", good + "0"):
        with pytest.raises(BadRequest):
            canonical_record_id(bad)
