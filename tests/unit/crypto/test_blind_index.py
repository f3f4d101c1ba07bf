from __future__ import annotations

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strongroom.crypto import BlindIndex, normalize

ROOT = bytes(range(32))


@pytest.fixture
def index() -> BlindIndex:
    return BlindIndex(os.urandom(32))


def test_same_value_gives_the_same_digest(index: BlindIndex) -> None:
    first = index.digest("customers", "email", "john@example.com")
    assert len(first) == 32
    assert index.digest("customers", "email", "john@example.com") == first
    assert index.digest("customers", "email", "jane@example.com") != first


def test_digest_does_not_depend_on_the_instance() -> None:
    assert BlindIndex(ROOT).digest("c", "f", "v") == BlindIndex(bytes(ROOT)).digest("c", "f", "v")


def test_digests_are_stable_across_releases() -> None:
    # Stored indexes depend on these exact bytes: HKDF-SHA256(root, info=len-prefixed
    # "strongroom/blind-index/v1"|collection|field), then HMAC-SHA256 over the UTF-8 value.
    index = BlindIndex(ROOT)
    assert index.digest("customers", "email", "john@example.com").hex() == (
        "abed6ac8836e0b877df8bbf90e24149b49dd120c32cf525b07840868d9a5abb2"
    )
    assert index.subject_ref("subject-42").hex() == (
        "00648aca6d8b8e1487633fa6caf519d3dc03afc17896900d9e0551da8e85aa21"
    )


@pytest.mark.parametrize(
    ("collection", "field"),
    [("suppliers", "email"), ("customers", "backup_email"), ("", "customersemail")],
)
def test_other_field_or_collection_gives_another_digest(
    index: BlindIndex, collection: str, field: str
) -> None:
    reference = index.digest("customers", "email", "john@example.com")
    assert index.digest(collection, field, "john@example.com") != reference


def test_collection_and_field_are_unambiguous(index: BlindIndex) -> None:
    assert index.digest("a.b", "c", "v") != index.digest("a", "b.c", "v")
    assert index.digest("ab", "c", "v") != index.digest("a", "bc", "v")


def test_other_root_key_gives_another_digest(index: BlindIndex) -> None:
    other = BlindIndex(os.urandom(32))
    assert index.digest("c", "f", "v") != other.digest("c", "f", "v")
    assert index.subject_ref("s-1") != other.subject_ref("s-1")


def test_digest_value_normalises_first(index: BlindIndex) -> None:
    expected = index.digest("customers", "email", "john@example.com")
    assert index.digest_value("customers", "email", "email", " John@Example.COM ") == expected


def test_subject_ref_is_a_deterministic_pseudonym(index: BlindIndex) -> None:
    ref = index.subject_ref("subject-42")
    assert len(ref) == 32
    assert index.subject_ref("subject-42") == ref
    assert index.subject_ref("subject-43") != ref
    assert index.subject_ref("Subject-42") != ref  # ids are opaque: no normalisation
    assert index.pseudonym("subject", "subject-42") == ref


def test_pseudonyms_are_separated_from_field_digests(index: BlindIndex) -> None:
    assert index.pseudonym("subject", "x") != index.pseudonym("actor", "x")
    assert index.pseudonym("c", "v") != index.digest("c", "", "v")
    assert index.subject_ref("v") != index.digest("subject", "", "v")
    assert index.subject_ref("v") != index.digest("", "subject", "v")


def test_many_fields_stay_correct_beyond_the_key_cache_bound(index: BlindIndex) -> None:
    first = index.digest("c", "f0", "v")
    for number in range(5000):
        index.digest("c", f"f{number}", "v")
    assert index.digest("c", "f0", "v") == first


@pytest.mark.parametrize("length", [0, 16, 31, 33])
def test_root_key_must_be_32_bytes(length: int) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        BlindIndex(bytes(length))


def test_repr_hides_the_root_key() -> None:
    assert ROOT.hex() not in repr(BlindIndex(ROOT))
    assert repr(ROOT) not in repr(BlindIndex(ROOT))


NORMALIZATION_TABLE = [
    # email: strip, NFC, lowercase the whole address
    ("email", " John@Example.COM ", "john@example.com"),
    ("email", "JOHN@EXAMPLE.COM", "john@example.com"),
    ("email", "Jose\u0301@example.com", "jos\u00e9@example.com"),
    ("email", "\tA.B+tag@X.io\n", "a.b+tag@x.io"),
    # card: digits only
    ("card", "4111 1111 1111 1111", "4111111111111111"),
    ("card", "4111-1111-1111-1111", "4111111111111111"),
    ("card", " 4111.1111 1111-1111 ", "4111111111111111"),
    ("card", "\uff14\uff11\uff11\uff11 1111", "41111111"),  # full-width digits
    # ssn: digits only
    ("ssn", "123-45-6789", "123456789"),
    ("ssn", "123 45 6789", "123456789"),
    # phone: digits only, leading + kept
    ("phone", "+1 (555) 123-4567", "+15551234567"),
    ("phone", "  +44 20 7946 0958", "+442079460958"),
    ("phone", "(555) 123-4567", "5551234567"),
    ("phone", "555.123.4567", "5551234567"),
    ("phone", "1-555-123+4567", "15551234567"),  # only a leading + counts
    ("phone", "\uff0b33 1 23 45 67 89", "+33123456789"),  # full-width plus
    ("phone", "\u0665\u0665\u0665", "555"),  # Arabic-Indic digits
    # iban: uppercase, whitespace removed
    ("iban", "de89 3704 0044 0532 0130 00", "DE89370400440532013000"),
    ("iban", " GB82\tWEST 1234 5698 7654 32 ", "GB82WEST12345698765432"),
    # name: NFC, casefold, collapse whitespace
    ("name", "  John   SMITH ", "john smith"),
    ("name", "Jose\u0301\tMari\u0301a", "jos\u00e9 mar\u00eda"),
    ("name", "Stra\u00dfe", "strasse"),
    ("name", "\u00c9MILE\n\nZOLA", "\u00e9mile zola"),
    # anything else: NFC, strip
    ("text", "  Caf\u0065\u0301  ", "Caf\u00e9"),
    ("customer_id", " ABC-123 ", "ABC-123"),
    ("", "  x  ", "x"),
]


@pytest.mark.parametrize(("kind", "raw", "expected"), NORMALIZATION_TABLE)
def test_normalization_table(kind: str, raw: str, expected: str) -> None:
    assert normalize(kind, raw) == expected


def test_equivalent_inputs_share_a_digest(index: BlindIndex) -> None:
    cards = ["4111 1111 1111 1111", "4111-1111-1111-1111", "4111111111111111"]
    digests = {index.digest_value("customers", "card", "card", card) for card in cards}
    assert len(digests) == 1


@pytest.mark.parametrize("kind", ["email", "card", "ssn", "phone", "iban", "name", "other"])
@given(value=st.text(max_size=60))
def test_normalization_is_idempotent(kind: str, value: str) -> None:
    once = normalize(kind, value)
    assert normalize(kind, once) == once


@given(value=st.text(max_size=60))
def test_digit_kinds_keep_only_ascii_digits(value: str) -> None:
    assert all(char in "0123456789" for char in normalize("card", value))
    phone = normalize("phone", value)
    assert all(char in "0123456789" for char in phone.removeprefix("+"))
