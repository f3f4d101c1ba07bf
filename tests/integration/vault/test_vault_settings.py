"""The Vault settings: parsed once, refused with one line, secrets never shown."""

from __future__ import annotations

import pytest

from strongroom.settings import Settings, SettingsError

BASE = {"STRONGROOM_ENV": "test"}


def settings(**variables: str) -> Settings:
    return Settings.from_env(
        {**BASE, **{f"STRONGROOM_{k.upper()}": v for k, v in variables.items()}}
    )


def test_defaults_keep_the_local_provider() -> None:
    parsed = settings()
    assert parsed.key_provider == "local"
    assert not parsed.vault
    assert parsed.vault_kv_mount == "secret"
    assert parsed.vault_kv_path == "strongroom/master-key"
    assert parsed.vault_cache_ttl == 300.0
    assert parsed.vault_timeout == 2.0
    assert parsed.vault_signing_key == "strongroom-audit"


def test_transit_with_a_token_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    token_file = tmp_path / "token"
    token_file.write_text("s.very-secret-token\n")
    parsed = settings(
        key_provider="vault-transit",
        vault_addr="https://vault.internal:8200",
        vault_token_file=str(token_file),
    )
    assert parsed.vault_token == "s.very-secret-token"
    assert "very-secret" not in repr(parsed)


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"key_provider": "vault-kv"}, "needs STRONGROOM_VAULT_ADDR"),
        ({"key_provider": "vault-kv", "vault_addr": "vault:8200"}, "http(s)://"),
        ({"key_provider": "vault-kv", "vault_addr": "http://v:1"}, "STRONGROOM_VAULT_TOKEN"),
        (
            {
                "key_provider": "vault-kv",
                "vault_addr": "http://v:1",
                "vault_auth": "approle",
                "vault_role_id": "r",
            },
            "STRONGROOM_VAULT_SECRET_ID",
        ),
        (
            {"key_provider": "vault-kv", "vault_addr": "http://v:1", "vault_auth": "kubernetes"},
            "STRONGROOM_VAULT_K8S_ROLE",
        ),
        (
            {
                "key_provider": "vault-transit",
                "vault_addr": "http://v:1",
                "vault_token": "t",
                "master_key": "x",
            },
            "unset STRONGROOM_MASTER_KEY",
        ),
        ({"key_provider": "hsm"}, "KEY_PROVIDER must be one of"),
        ({"vault_timeout": "0"}, "VAULT_TIMEOUT must be between"),
    ],
)
def test_bad_vault_settings_stop_startup_with_one_line(
    variables: dict[str, str], message: str
) -> None:
    with pytest.raises(SettingsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        settings(**variables)


def test_production_refuses_plain_http_except_to_a_local_agent() -> None:
    production = {
        "env": "production",
        "database_url": "postgresql://db/x",
        "redis_url": "redis://r",
        "key_provider": "vault-transit",
        "vault_token": "t",
    }
    with pytest.raises(SettingsError, match="https://"):
        settings(**production, vault_addr="http://vault.internal:8200")
    assert settings(**production, vault_addr="http://127.0.0.1:8200").vault
