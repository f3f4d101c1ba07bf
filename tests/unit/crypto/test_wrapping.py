from __future__ import annotations

import os

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from strongroom.crypto import (
    IntegrityError,
    KeyUnavailable,
    KeyWrapper,
    LocalKeyWrapper,
    MasterKeys,
    WrappedKey,
    subject_key_aad,
    tenant_root_key_aad,
)

AAD = subject_key_aad("tenant-a", b"\x01" * 32)


@pytest.mark.asyncio
async def test_wrap_unwrap_round_trip(wrapper: LocalKeyWrapper, dek: bytes) -> None:
    wrapped = await wrapper.wrap(dek, AAD)
    assert wrapped.kek_version == wrapper.active_version == 2
    assert len(wrapped.blob) == 12 + 32 + 16
    assert dek not in wrapped.blob
    assert await wrapper.unwrap(wrapped, AAD) == dek


@pytest.mark.asyncio
async def test_wrapping_twice_gives_different_blobs(wrapper: LocalKeyWrapper, dek: bytes) -> None:
    first, second = await wrapper.wrap(dek, AAD), await wrapper.wrap(dek, AAD)
    assert first.blob != second.blob


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "other_aad",
    [
        subject_key_aad("tenant-b", b"\x01" * 32),
        subject_key_aad("tenant-a", b"\x02" * 32),
        tenant_root_key_aad("tenant-a"),
        b"",
    ],
    ids=["other tenant", "other subject", "tenant root key", "empty"],
)
async def test_unwrap_with_other_aad_fails(
    wrapper: LocalKeyWrapper, dek: bytes, other_aad: bytes
) -> None:
    wrapped = await wrapper.wrap(dek, AAD)
    with pytest.raises(IntegrityError):
        await wrapper.unwrap(wrapped, other_aad)


@pytest.mark.asyncio
async def test_relabelled_kek_version_fails(dek: bytes) -> None:
    shared = os.urandom(32)  # even the same key under two version numbers must not accept it
    wrapper = LocalKeyWrapper(MasterKeys({1: shared, 2: shared}, active_version=1))
    wrapped = await wrapper.wrap(dek, AAD)
    with pytest.raises(IntegrityError):
        await wrapper.unwrap(WrappedKey(2, wrapped.blob), AAD)
    assert await wrapper.unwrap(wrapped, AAD) == dek


@pytest.mark.asyncio
async def test_unknown_version_is_unavailable(wrapper: LocalKeyWrapper, dek: bytes) -> None:
    wrapped = await wrapper.wrap(dek, AAD)
    with pytest.raises(KeyUnavailable, match=r"^master key version 7 is not configured$"):
        await wrapper.unwrap(WrappedKey(7, wrapped.blob), AAD)


@pytest.mark.asyncio
async def test_old_version_unwraps_after_rotation(dek: bytes) -> None:
    key_1, key_2 = os.urandom(32), os.urandom(32)
    wrapped = await LocalKeyWrapper(MasterKeys.single(key_1)).wrap(dek, AAD)
    assert wrapped.kek_version == 1
    rotated = LocalKeyWrapper(MasterKeys({1: key_1, 2: key_2}))
    assert await rotated.unwrap(wrapped, AAD) == dek
    rewrapped = await rotated.wrap(await rotated.unwrap(wrapped, AAD), AAD)
    assert rewrapped.kek_version == 2
    retired = LocalKeyWrapper(MasterKeys({2: key_2}))
    assert await retired.unwrap(rewrapped, AAD) == dek
    with pytest.raises(KeyUnavailable):
        await retired.unwrap(wrapped, AAD)


@pytest.mark.asyncio
async def test_tampered_blob_fails(wrapper: LocalKeyWrapper, dek: bytes) -> None:
    wrapped = await wrapper.wrap(dek, AAD)
    for position in range(len(wrapped.blob)):
        damaged = bytearray(wrapped.blob)
        damaged[position] ^= 0x80
        with pytest.raises(IntegrityError):
            await wrapper.unwrap(WrappedKey(wrapped.kek_version, bytes(damaged)), AAD)


@pytest.mark.asyncio
async def test_truncated_blob_fails(wrapper: LocalKeyWrapper, dek: bytes) -> None:
    wrapped = await wrapper.wrap(dek, AAD)
    for length in range(len(wrapped.blob)):
        with pytest.raises(IntegrityError):
            await wrapper.unwrap(WrappedKey(wrapped.kek_version, wrapped.blob[:length]), AAD)


@pytest.mark.asyncio
async def test_unwrap_matches_the_documented_layout(dek: bytes) -> None:
    key = os.urandom(32)
    blob = await LocalKeyWrapper(MasterKeys.single(key, version=5)).wrap(dek, AAD)
    nonce, sealed = blob.blob[:12], blob.blob[12:]
    label = b"strongroom/kek-wrap/v1"
    bound = (
        len(label).to_bytes(4, "big") + label
        + (4).to_bytes(4, "big") + (5).to_bytes(4, "big")
        + len(AAD).to_bytes(4, "big") + AAD
    )  # fmt: skip
    assert AESGCM(key).decrypt(nonce, sealed, bound) == dek


@pytest.mark.asyncio
@pytest.mark.parametrize("length", [0, 16, 31, 33, 64])
async def test_wrap_rejects_keys_that_are_not_32_bytes(
    wrapper: LocalKeyWrapper, length: int
) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        await wrapper.wrap(bytes(length), AAD)


def test_local_wrapper_satisfies_the_port(wrapper: LocalKeyWrapper) -> None:
    port: KeyWrapper = wrapper
    assert isinstance(port, KeyWrapper)
    assert port.versions() == frozenset({1, 2})
    assert port.active_version == 2


def test_reprs_hide_material(master_keys: MasterKeys, wrapper: LocalKeyWrapper) -> None:
    assert repr(wrapper) == "LocalKeyWrapper(versions=[1, 2], active=2)"
    blob = os.urandom(60)
    text = repr(WrappedKey(2, blob))
    assert text == "WrappedKey(kek_version=2, blob=<60 bytes>)"
    for key in master_keys.keys.values():
        assert key.hex() not in repr(wrapper)


def test_subject_key_aad_is_unambiguous() -> None:
    assert subject_key_aad("ab", b"c") != subject_key_aad("a", b"bc")
    assert subject_key_aad("a", b"") != tenant_root_key_aad("a")
    assert subject_key_aad("t", b"s") == subject_key_aad("t", b"s")
    assert tenant_root_key_aad("a") != tenant_root_key_aad("b")


@pytest.mark.asyncio
async def test_rewrap_moves_a_key_to_the_active_version(dek: bytes) -> None:
    old, new = os.urandom(32), os.urandom(32)
    before = LocalKeyWrapper(MasterKeys({1: old}))
    wrapped = await before.wrap(dek, AAD)
    after = LocalKeyWrapper(MasterKeys({1: old, 2: new}))
    rewrapped = await after.rewrap(wrapped, AAD)
    assert rewrapped.kek_version == 2
    assert rewrapped.blob != wrapped.blob
    assert await after.unwrap(rewrapped, AAD) == dek
    assert await LocalKeyWrapper(MasterKeys({2: new})).unwrap(rewrapped, AAD) == dek
    with pytest.raises(IntegrityError):
        await after.rewrap(wrapped, tenant_root_key_aad("tenant-a"))
