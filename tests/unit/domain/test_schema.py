from __future__ import annotations

import pytest

from strongroom.domain.errors import Conflict, ValidationFailed
from strongroom.domain.schema import (
    CollectionSchema,
    check_schema_change,
    iban_valid,
    luhn_valid,
    normalise_value,
    parse_collection,
    validate_data,
)


def schema(**fields: dict[str, object]) -> CollectionSchema:
    return parse_collection("c", {"fields": fields})


def test_pii_types_default_to_sensitive_and_others_do_not() -> None:
    parsed = schema(email={"type": "email"}, plan={"type": "text"}, n={"type": "number"})
    assert parsed.fields["email"].sensitive
    assert not parsed.fields["plan"].sensitive
    assert parsed.fields["email"].mask == "partial"


@pytest.mark.parametrize(
    ("fields", "location"),
    [
        ({"card": {"type": "card", "sensitive": False}}, "/fields/card/sensitive"),
        ({"ssn": {"type": "ssn", "sensitive": False}}, "/fields/ssn/sensitive"),
        ({"x": {"type": "blob"}}, "/fields/x/type"),
        ({"x": {"type": "text", "mask": "rot13"}}, "/fields/x/mask"),
        ({"x": {"type": "text", "searchable": "yes"}}, "/fields/x/searchable"),
        ({"x": {"type": "text", "colour": "red"}}, "/fields/x/colour"),
        ({"Bad-Name": {"type": "text"}}, "/fields/Bad-Name"),
        ({"x": "text"}, "/fields/x"),
    ],
)
def test_bad_field_definitions_name_their_location(
    fields: dict[str, object], location: str
) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_collection("c", {"fields": fields})
    assert location in [error.location for error in caught.value.errors]


def test_empty_or_unknown_top_level_is_refused() -> None:
    for body in ({}, {"fields": {}}, {"fields": {"a": {"type": "text"}}, "extra": 1}, [], "x"):
        with pytest.raises(ValidationFailed):
            parse_collection("c", body)


@pytest.mark.parametrize(
    ("kind", "value", "expected"),
    [
        ("card", "4111-1111 1111-1111", "4111111111111111"),
        ("ssn", "123 45 6789", "123-45-6789"),
        ("iban", "de89 3704 0044 0532 0130 00", "DE89370400440532013000"),
        ("email", " jane@example.com ", "jane@example.com"),
        ("date", "2024-02-29", "2024-02-29"),
        ("number", 2**53 - 1, 2**53 - 1),
        ("number", 1.5, 1.5),
        ("boolean", False, False),
        ("name", "Zoë  Saldaña", "Zoë  Saldaña"),
    ],
)
def test_valid_values_are_normalised(kind: str, value: object, expected: object) -> None:
    assert normalise_value(kind, value) == expected


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("card", "4111 1111 1111 1112"),  # Luhn fails
        ("card", "4111"),
        ("ssn", "000-12-3456"),
        ("ssn", "666-12-3456"),
        ("ssn", "912-12-3456"),
        ("ssn", "123-00-4567"),
        ("ssn", "123-45-0000"),
        ("iban", "DE89 3704 0044 0532 0130 01"),  # mod-97 fails
        ("email", "jane.example.com"),
        ("email", "jane@localhost"),
        ("date", "2024-02-30"),
        ("date", "20240215"),
        ("number", True),
        ("number", "5"),
        ("number", 2**53),
        ("number", float("nan")),
        ("number", float("inf")),
        ("boolean", "true"),
        ("text", "x" * 10_001),
        ("text", "nul\x00byte"),
        ("name", "bell\x07"),
        ("name", "   "),
        ("name", "\ud800"),
        ("phone", "12"),
    ],
)
def test_invalid_values_are_refused(kind: str, value: object) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        normalise_value(kind, value)


def test_checksums() -> None:
    assert luhn_valid("4242424242424242")
    assert not luhn_valid("4242424242424241")
    assert iban_valid("GB82WEST12345698765432")
    assert not iban_valid("GB82WEST12345698765431")


def test_validate_data_reports_every_problem_and_required_fields() -> None:
    parsed = schema(email={"type": "email", "required": True}, n={"type": "number"})
    with pytest.raises(ValidationFailed) as caught:
        validate_data(parsed, {"n": "x", "zzz": 1}, partial=False)
    locations = sorted(error.location for error in caught.value.errors)
    assert locations == ["/data/email", "/data/n", "/data/zzz"]


def test_partial_updates_may_remove_only_optional_fields() -> None:
    parsed = schema(email={"type": "email", "required": True}, n={"type": "number"})
    assert validate_data(parsed, {"n": None}, partial=True) == {"n": None}
    with pytest.raises(ValidationFailed):
        validate_data(parsed, {"email": None}, partial=True)


def test_schema_changes_that_strand_data_conflict_only_with_records() -> None:
    current = schema(email={"type": "email"}, plan={"type": "text"})
    changed = schema(email={"type": "text"})
    check_schema_change(current, changed, has_records=False)
    with pytest.raises(Conflict) as caught:
        check_schema_change(current, changed, has_records=True)
    locations = {error.location for error in caught.value.errors}
    assert {"/fields/plan", "/fields/email/type"} <= locations
    widened = schema(
        email={"type": "email", "mask": "full"}, plan={"type": "text"}, extra={"type": "number"}
    )
    check_schema_change(current, widened, has_records=True)
