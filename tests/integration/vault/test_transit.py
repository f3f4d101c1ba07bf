"""Vault Transit mode against a real OpenBao: the master key never enters the process."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from tests.conftest import Databases, Servers, TenantKeys, captured_logs, customer
from tests.integration.problems import assert_problem
from tests.integration.vault.conftest import (
    SIGNING_KEY,
    TRANSIT_KEY,
    Bao,
    kek_versions,
    new_tenant,
    put_customers,
    running,
    vault_settings,
    wait_until,
)

from strongroom.audit.signing import key_id_of
from strongroom.crypto import IntegrityError, subject_key_aad
from strongroom.crypto.transit import TransitKeyWrapper, TransitSigner
from strongroom.crypto.vault import VaultClient, VaultConfig

REVEAL = {"reveal": "email,ssn"}


def transit_env(bao: Bao, token: str) -> dict[str, str]:
    return {
        "key_provider": "vault-transit",
        "vault_addr": bao.proxy.url,
        "vault_auth": "token",
        "vault_token": token,
    }


async def reader_headers(tenant: TenantKeys) -> dict[str, str]:
    return await tenant.headers("records:read", "records:reveal", **{"X-Purpose": "support"})


async def create_record(client: object, url: str, tenant: TenantKeys, subject: str, n: int) -> str:
    headers = await tenant.headers("records:write")
    response = await client.post(  # type: ignore[attr-defined]
        url, json={"subject_id": subject, "data": customer(n)}, headers=headers
    )
    assert response.status_code == 201, response.text
    record_id: str = response.json()["id"]
    return record_id


async def test_transit_store_read_masked_and_reveal(
    bao: Bao,
    vault_databases: Databases,
    servers: Servers,
    vault_tenant: TenantKeys,
    tmp_path: object,
) -> None:
    settings = vault_settings(
        vault_databases,
        servers,
        tmp_path,
        **transit_env(bao, bao.app_token()),  # type: ignore[arg-type]
    )
    async with running(settings) as app:
        url = await put_customers(app.client, vault_tenant)
        record_id = await create_record(app.client, url, vault_tenant, "subject-t1", 1)
        masked = await app.client.get(
            f"{url}/{record_id}", headers=await vault_tenant.headers("records:read")
        )
        assert masked.status_code == 200, masked.text
        assert masked.json()["data"]["email"] != customer(1)["email"]
        revealed = await app.client.get(
            f"{url}/{record_id}", params=REVEAL, headers=await reader_headers(vault_tenant)
        )
        assert revealed.status_code == 200, revealed.text
        assert revealed.json()["data"]["email"] == customer(1)["email"]
        assert revealed.json()["data"]["ssn"] == customer(1)["ssn"]
        ready = await app.client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["components"]["vault"]["status"] == "ok"

    # The stored data keys are Transit ciphertexts of the Transit key's latest version.
    latest = bao.root().secrets.transit.read_key(TRANSIT_KEY)["data"]["latest_version"]
    assert set((await kek_versions(vault_databases, vault_tenant)).values()) == {latest}


async def test_transit_wrapper_binds_aad_rewraps_and_signs(bao: Bao) -> None:
    client = VaultClient(VaultConfig(addr=bao.proxy.url, token=bao.app_token()))
    await client.start()
    try:
        wrapper = TransitKeyWrapper(client, "transit", TRANSIT_KEY, ttl=0.0)
        await wrapper.start()
        aad = subject_key_aad("tenant-x", b"\x01" * 32)
        dek = bytes(range(32))
        wrapped = await wrapper.wrap(dek, aad)
        assert wrapped.kek_version == wrapper.active_version
        assert dek not in wrapped.blob
        assert "blob=<" in repr(wrapped)
        assert await wrapper.unwrap(wrapped, aad) == dek
        with pytest.raises(IntegrityError):
            await wrapper.unwrap(wrapped, subject_key_aad("tenant-y", b"\x01" * 32))

        before = wrapper.active_version
        rotated = await wrapper.rotate()
        assert rotated == before + 1
        assert wrapper.versions() >= {before, rotated}
        rewrapped = await wrapper.rewrap(wrapped, aad)
        assert rewrapped.kek_version == rotated
        assert await wrapper.unwrap(rewrapped, aad) == dek
        with pytest.raises(IntegrityError):  # a version relabelled by hand does not decrypt
            await wrapper.unwrap(type(wrapped)(rotated, wrapped.blob), aad)

        signer = TransitSigner(client, "transit", SIGNING_KEY)
        await signer.start()
        assert len(signer.public_key) == 32
        assert signer.key_id == key_id_of(signer.public_key)
        assert signer.trusted_keys()[signer.key_id] == signer.public_key
        signature = await signer.sign(b"checkpoint 42")
        Ed25519PublicKey.from_public_bytes(signer.public_key).verify(signature, b"checkpoint 42")
    finally:
        await client.close()


async def test_vault_outage_fails_closed_for_uncached_keys_and_recovers(
    bao: Bao, vault_databases: Databases, servers: Servers, tmp_path: object
) -> None:
    tenant = await new_tenant(vault_databases)
    token = bao.app_token()
    settings = vault_settings(vault_databases, servers, tmp_path, **transit_env(bao, token))  # type: ignore[arg-type]
    stack = contextlib.ExitStack()
    try:
        # One replica writes two subjects; a fresh replica (empty key cache) reads one of them.
        async with running(settings) as writer:
            url = await put_customers(writer.client, tenant)
            cached_id = await create_record(writer.client, url, tenant, "subject-cached", 1)
            cold_id = await create_record(writer.client, url, tenant, "subject-cold", 2)
        async with running(settings) as app:
            logs = stack.enter_context(captured_logs())
            read = await tenant.headers("records:read")
            assert (await app.client.get(f"{url}/{cached_id}", headers=read)).status_code == 200

            await bao.proxy.close()
            try:
                masked = await app.client.get(f"{url}/{cached_id}", headers=read)
                assert masked.status_code == 200, masked.text  # the data key is cached

                cold = await app.client.get(
                    f"{url}/{cold_id}", params=REVEAL, headers=await reader_headers(tenant)
                )
                problem = assert_problem(cold, 503, "service-unavailable")
                assert "Vault" in problem["detail"], problem
                assert "transit decrypt" in problem["detail"], problem
                assert token not in cold.text

                ready = await app.client.get("/readyz")
                assert ready.status_code == 503
                assert "vault" in ready.json()["failing"]

                # Breaker open: the next call fails fast instead of waiting for timeouts.
                again = await app.client.get(
                    f"{url}/{cold_id}", params=REVEAL, headers=await reader_headers(tenant)
                )
                assert_problem(again, 503)
            finally:
                await bao.proxy.open()

            async def recovered() -> bool:
                response = await app.client.get(
                    f"{url}/{cold_id}", params=REVEAL, headers=await reader_headers(tenant)
                )
                return response.status_code == 200

            await wait_until(recovered)
            ready = await app.client.get("/readyz")
            assert ready.status_code == 200, ready.text
            assert token not in logs.text
    finally:
        stack.close()
        await tenant.pool.close()  # type: ignore[attr-defined]


async def test_revoked_static_token_is_reported_clearly(
    bao: Bao, vault_databases: Databases, servers: Servers, tmp_path: object
) -> None:
    tenant = await new_tenant(vault_databases)
    token = bao.app_token()
    writer_settings = vault_settings(
        vault_databases,
        servers,
        tmp_path,
        **transit_env(bao, bao.app_token()),  # type: ignore[arg-type]
    )
    settings = vault_settings(vault_databases, servers, tmp_path, **transit_env(bao, token))  # type: ignore[arg-type]
    try:
        async with running(writer_settings) as writer:
            url = await put_customers(writer.client, tenant)
            record_id = await create_record(writer.client, url, tenant, "subject-rv", 3)
        async with running(settings) as app:
            bao.root().auth.token.revoke(token)
            with captured_logs() as logs:
                response = await app.client.get(
                    f"{url}/{record_id}", params=REVEAL, headers=await reader_headers(tenant)
                )
            assert "authentication to Vault failed" in logs.text
            assert token not in logs.text
            problem = assert_problem(response, 503, "service-unavailable")
            assert "authentication to Vault failed" in problem["detail"], problem
            assert token not in response.text
            ready = await app.client.get("/readyz")
            assert ready.status_code == 503
            vault = ready.json()["components"]["vault"]
            assert vault == {**vault, "status": "failing", "error": "VaultAuthFailed"}
    finally:
        await tenant.pool.close()  # type: ignore[attr-defined]


async def test_short_lived_token_is_renewed_before_it_expires(bao: Bao) -> None:
    token = bao.app_token(ttl="4s", renewable=True, explicit_max_ttl="120s")
    client = VaultClient(VaultConfig(addr=bao.proxy.url, token=token))
    await client.start()
    try:
        wrapper = TransitKeyWrapper(client, "transit", TRANSIT_KEY, ttl=60.0)
        await wrapper.start()
        aad = subject_key_aad("tenant-r", b"\x02" * 32)
        dek = bytes(32 * [7])
        loop_end = time.monotonic() + 10.0
        while time.monotonic() < loop_end:
            wrapped = await wrapper.wrap(dek, aad)
            assert await wrapper.unwrap(wrapped, aad) == dek
            await asyncio.sleep(0.5)
        looked_up = bao.root().auth.token.lookup(token)["data"]
        assert looked_up["ttl"] > 0
    finally:
        await client.close()
