from __future__ import annotations

import base64
import os
import unicodedata

import pytest

from strongroom.crypto import (
    KeyConfigError,
    KeyUnavailable,
    MasterKeys,
    parse_master_key,
    parse_master_keys,
    stretch_passphrase,
)

KEY = bytes(range(1, 33))
STD = base64.b64encode(KEY).decode()
URLSAFE = base64.urlsafe_b64encode(b"\xfb" * 16 + KEY[:16]).decode()
SALT = b"strongroom-salt-0001"
PASSPHRASE = "correct horse battery staple"


@pytest.mark.parametrize(
    "text",
    [STD, STD.rstrip("="), f"  {STD}\n", STD[:20] + "\n" + STD[20:]],
    ids=["padded", "unpadded", "surrounding whitespace", "wrapped line"],
)
def test_parse_standard_base64(text: str) -> None:
    assert parse_master_key(text) == KEY


def test_parse_urlsafe_base64() -> None:
    assert "-" in URLSAFE or "_" in URLSAFE
    assert parse_master_key(URLSAFE) == b"\xfb" * 16 + KEY[:16]
    assert parse_master_key(URLSAFE.rstrip("=")) == b"\xfb" * 16 + KEY[:16]


BAD_KEYS = {
    "empty": "",
    "blank": "   \n",
    "not base64": "this is not base64 at all, sorry!!",
    "16 bytes": base64.b64encode(os.urandom(16)).decode(),
    "33 bytes": base64.b64encode(os.urandom(33)).decode(),
    "64 bytes": base64.b64encode(os.urandom(64)).decode(),
    "impossible length": STD.rstrip("=") + "A",
    "mixed alphabets": "+" + URLSAFE[1:],
    "one repeated byte": base64.b64encode(bytes(32)).decode(),
    "hex instead of base64": os.urandom(32).hex(),
}


@pytest.mark.parametrize("text", BAD_KEYS.values(), ids=BAD_KEYS.keys())
def test_bad_keys_are_rejected_without_echoing_them(text: str) -> None:
    with pytest.raises(KeyConfigError) as caught:
        parse_master_key(text)
    message = str(caught.value)
    assert message.startswith("master key ")
    assert "\n" not in message
    if text.strip():
        assert text.strip() not in message
        assert text.strip()[:8] not in message
    assert caught.value.__cause__ is None


def test_error_names_what_was_parsed() -> None:
    with pytest.raises(KeyConfigError, match=r"^STRONGROOM_MASTER_KEY is not valid base64$"):
        parse_master_key("@@@@", what="STRONGROOM_MASTER_KEY")


def test_stretching_is_deterministic_and_salted() -> None:
    first = stretch_passphrase(PASSPHRASE, SALT)
    assert len(first) == 32
    assert stretch_passphrase(PASSPHRASE, SALT) == first
    assert stretch_passphrase(PASSPHRASE, SALT[::-1]) != first
    assert stretch_passphrase(PASSPHRASE + "!", SALT) != first
    assert stretch_passphrase(PASSPHRASE, SALT, iterations=600_001) != first


def test_stretching_normalises_the_passphrase_to_nfc() -> None:
    composed = "crème brûlée à la française"
    decomposed = unicodedata.normalize("NFD", composed)
    assert composed != decomposed
    assert stretch_passphrase(composed, SALT) == stretch_passphrase(decomposed, SALT)


@pytest.mark.parametrize("iterations", [0, 1, 100_000, 599_999])
def test_stretching_rejects_low_iterations(iterations: int) -> None:
    with pytest.raises(KeyConfigError, match="600000"):
        stretch_passphrase(PASSPHRASE, SALT, iterations=iterations)


@pytest.mark.parametrize("passphrase", ["", "short", "elevenchars"])
def test_stretching_rejects_short_passphrases(passphrase: str) -> None:
    with pytest.raises(KeyConfigError, match="at least 12 characters") as caught:
        stretch_passphrase(passphrase, SALT)
    assert not passphrase or passphrase not in str(caught.value)


def test_stretching_accepts_exactly_twelve_characters() -> None:
    assert len(stretch_passphrase("twelve chars", SALT)) == 32


def test_stretching_rejects_short_salts() -> None:
    with pytest.raises(KeyConfigError, match="salt"):
        stretch_passphrase(PASSPHRASE, b"fifteen bytes!!")


def test_master_keys_default_to_the_highest_version() -> None:
    keys = MasterKeys({1: os.urandom(32), 3: os.urandom(32), 2: os.urandom(32)})
    assert keys.active_version == 3
    assert keys.active_key == keys.key(3)
    assert keys.versions() == frozenset({1, 2, 3})


def test_master_keys_honour_an_explicit_active_version() -> None:
    keys = MasterKeys({1: os.urandom(32), 2: os.urandom(32)}, active_version=1)
    assert keys.active_version == 1


def test_master_keys_are_copied_and_read_only() -> None:
    source = {1: os.urandom(32)}
    keys = MasterKeys(source)
    source[2] = os.urandom(32)
    assert keys.versions() == frozenset({1})
    with pytest.raises(TypeError):
        keys.keys[2] = os.urandom(32)  # type: ignore[index]


def test_master_keys_repr_hides_keys() -> None:
    raw = os.urandom(32)
    keys = MasterKeys.single(raw, version=4)
    assert repr(keys) == "MasterKeys(versions=[4], active_version=4)"
    assert raw.hex() not in repr(keys)
    assert repr(raw) not in repr(keys)


def test_unknown_version_is_unavailable() -> None:
    with pytest.raises(KeyUnavailable, match="master key version 9 is not configured"):
        MasterKeys.single(os.urandom(32)).key(9)


@pytest.mark.parametrize(
    ("keys", "active", "message"),
    [
        ({}, 0, "no master key"),
        ({1: os.urandom(16)}, 0, "not 32 bytes"),
        ({0: os.urandom(32)}, 0, "outside"),
        ({2**32: os.urandom(32)}, 0, "outside"),
        ({1: os.urandom(32)}, 2, "active master key version 2 is not configured"),
    ],
)
def test_master_keys_validate(keys: dict[int, bytes], active: int, message: str) -> None:
    with pytest.raises(KeyConfigError, match=message):
        MasterKeys(keys, active)


def test_spec_with_a_bare_key_is_version_one() -> None:
    keys = parse_master_keys(f"  {STD}  ")
    assert keys.versions() == frozenset({1})
    assert keys.active_version == 1
    assert keys.key(1) == KEY


def test_spec_with_versions_activates_the_highest() -> None:
    other = os.urandom(32)
    spec = f"1:{STD}, 2:{base64.urlsafe_b64encode(other).decode().rstrip('=')}"
    keys = parse_master_keys(spec)
    assert keys.active_version == 2
    assert keys.key(1) == KEY
    assert keys.key(2) == other


def test_spec_active_version_can_be_chosen() -> None:
    spec = f"1:{STD},2:{base64.b64encode(os.urandom(32)).decode()}"
    assert parse_master_keys(spec, active_version=1).active_version == 1


def test_spec_accepts_one_entry_per_line() -> None:
    spec = f"3:{STD}\n10:{base64.b64encode(os.urandom(32)).decode()}\n"
    keys = parse_master_keys(spec)
    assert keys.versions() == frozenset({3, 10})
    assert keys.active_version == 10


def test_a_single_versioned_entry_keeps_its_version() -> None:
    keys = parse_master_keys(f"7:{STD}")
    assert keys.versions() == frozenset({7})


SECRET_B64 = base64.b64encode(os.urandom(32)).decode()
BAD_SPECS = {
    "empty": ("", None, "empty"),
    "only commas": (" , ,", None, "empty"),
    "duplicate": (f"1:{STD},1:{SECRET_B64}", None, "version 1 is given twice"),
    "version zero": (f"0:{SECRET_B64}", None, "version 0"),
    "named version": (f"v1:{SECRET_B64}", None, "entry 1 must look like"),
    "bare among versioned": (f"1:{STD},{SECRET_B64}", None, "entry 2 must look like"),
    "bad key": (f"1:{STD},2:{SECRET_B64[:-8]}", None, "master key version 2 "),
    "unknown active": (f"1:{SECRET_B64}", 5, "active master key version 5"),
}


@pytest.mark.parametrize(("spec", "active", "message"), BAD_SPECS.values(), ids=BAD_SPECS.keys())
def test_bad_specs_are_rejected_without_echoing_keys(
    spec: str, active: int | None, message: str
) -> None:
    with pytest.raises(KeyConfigError, match=message) as caught:
        parse_master_keys(spec, active_version=active)
    text = str(caught.value)
    assert SECRET_B64[:12] not in text
    assert STD[:12] not in text
    assert "\n" not in text
