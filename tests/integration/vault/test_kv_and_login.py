"""KV v2 mode and login-based auth (AppRole, Kubernetes) against a real OpenBao."""

from __future__ import annotations

import asyncio
import base64
import os
from pathlib import Path

import pytest
from tests.conftest import Databases, Servers, customer
from tests.integration.vault.conftest import (
    KV_PATH,
    Bao,
    kek_versions,
    new_tenant,
    put_customers,
    running,
    vault_settings,
)
from tests.integration.vault.test_transit import REVEAL, create_record, reader_headers

from strongroom.crypto.vault import VaultAuthFailed, VaultClient, VaultConfig


def b64key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def approle_env(bao: Bao, provider: str) -> dict[str, str]:
    role_id, secret_id = bao.approle_credentials()
    return {
        "key_provider": provider,
        "vault_addr": bao.proxy.url,
        "vault_auth": "approle",
        "vault_role_id": role_id,
        "vault_secret_id": secret_id,
    }


async def test_kv_master_keys_serve_survive_an_outage_and_pick_up_a_new_version(
    bao: Bao, vault_databases: Databases, servers: Servers, tmp_path: Path
) -> None:
    first = b64key()
    root = bao.root()
    root.secrets.kv.v2.create_or_update_secret(path=KV_PATH, secret={"keys": f"1:{first}"})
    tenant = await new_tenant(vault_databases)
    settings = vault_settings(
        vault_databases,
        servers,
        tmp_path,
        vault_cache_ttl="0",
        **approle_env(bao, "vault-kv"),
    )
    try:
        async with running(settings) as app:
            url = await put_customers(app.client, tenant)
            old_id = await create_record(app.client, url, tenant, "subject-kv1", 1)
            revealed = await app.client.get(
                f"{url}/{old_id}", params=REVEAL, headers=await reader_headers(tenant)
            )
            assert revealed.status_code == 200, revealed.text
            assert revealed.json()["data"]["email"] == customer(1)["email"]
            assert set((await kek_versions(vault_databases, tenant)).values()) == {1}

            # The master keys live in the process: a Vault outage does not stop the service.
            await bao.proxy.close()
            try:
                during = await create_record(app.client, url, tenant, "subject-kv-out", 4)
                read = await app.client.get(
                    f"{url}/{during}", params=REVEAL, headers=await reader_headers(tenant)
                )
                assert read.status_code == 200, read.text
            finally:
                await bao.proxy.open()
            await asyncio.sleep(0.4)  # the breaker's cool-down is 0.3 s in these settings

            # Rotation: the operator adds version 2 to the secret; new keys are wrapped by it.
            root.secrets.kv.v2.create_or_update_secret(
                path=KV_PATH, secret={"keys": f"1:{first},2:{b64key()}"}
            )
            await create_record(app.client, url, tenant, "subject-kv2", 2)
            versions = await kek_versions(vault_databases, tenant)
            assert sorted(versions.values()) == [1, 1, 2]
            again = await app.client.get(
                f"{url}/{old_id}", params=REVEAL, headers=await reader_headers(tenant)
            )
            assert again.status_code == 200, again.text
    finally:
        await tenant.pool.close()  # type: ignore[attr-defined]


async def test_approle_logs_in_again_when_its_token_is_revoked(
    bao: Bao, vault_databases: Databases, servers: Servers, tmp_path: Path
) -> None:
    tenant = await new_tenant(vault_databases)
    settings = vault_settings(
        vault_databases, servers, tmp_path, **approle_env(bao, "vault-transit")
    )
    try:
        async with running(settings) as writer:
            url = await put_customers(writer.client, tenant)
            record_id = await create_record(writer.client, url, tenant, "subject-ar", 5)
        async with running(settings) as app:
            # Every token AppRole handed out is revoked, the application's included.
            bao.root().sys.revoke_prefix("auth/approle/login")
            response = await app.client.get(
                f"{url}/{record_id}", params=REVEAL, headers=await reader_headers(tenant)
            )
            assert response.status_code == 200, response.text
            assert response.json()["data"]["ssn"] == customer(5)["ssn"]
            ready = await app.client.get("/readyz")
            assert ready.status_code == 200, ready.text
    finally:
        await tenant.pool.close()  # type: ignore[attr-defined]


async def test_approle_with_a_wrong_secret_id_fails_at_startup_with_one_line(bao: Bao) -> None:
    role_id, _ = bao.approle_credentials()
    client = VaultClient(
        VaultConfig(addr=bao.proxy.url, auth="approle", role_id=role_id, secret_id="not-it")
    )
    try:
        with pytest.raises(VaultAuthFailed) as raised:
            await client.start()
    finally:
        await client.close()
    message = str(raised.value)
    assert "approle login" in message
    assert "authentication to Vault failed" in message or "refused" in message
    assert "not-it" not in message
    assert "not-it" not in repr(client)
    assert "not-it" not in repr(client.config)


async def test_kubernetes_login_reads_the_service_account_token_file(
    bao: Bao, tmp_path: Path
) -> None:
    missing = tmp_path / "no-such-token"
    client = VaultClient(
        VaultConfig(addr=bao.proxy.url, auth="kubernetes", k8s_role="r", k8s_jwt_file=str(missing))
    )
    try:
        with pytest.raises(VaultAuthFailed, match="cannot read the login token file"):
            await client.start()
    finally:
        await client.close()
