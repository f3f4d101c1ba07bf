from __future__ import annotations

from pathlib import Path

import pytest

from strongroom.settings import DEFAULT_PURPOSES, Settings, SettingsError


def test_defaults_are_the_zero_config_mode() -> None:
    settings = Settings.from_env({})
    assert settings.embedded
    assert settings.env == "development"
    assert settings.default_purposes == DEFAULT_PURPOSES
    assert settings.keystore_dsn is None


def test_values_are_parsed_and_typed() -> None:
    settings = Settings.from_env(
        {
            "STRONGROOM_DATABASE_URL": "postgresql://db/x",
            "STRONGROOM_PORT": "9000",
            "STRONGROOM_AUDIT_TIMEOUT": "0.5",
            "STRONGROOM_LOG_LEVEL": "debug",
            "STRONGROOM_PURPOSES": "support, billing",
        }
    )
    assert settings.port == 9000
    assert settings.audit_timeout == 0.5
    assert settings.log_level == "DEBUG"
    assert settings.default_purposes == ("support", "billing")
    assert settings.keystore_dsn == "postgresql://db/x"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"STRONGROOM_PORT": "eighty"}, "STRONGROOM_PORT must be an integer"),
        ({"STRONGROOM_PORT": "70000"}, "between 1 and 65535"),
        ({"STRONGROOM_ENV": "staging"}, "STRONGROOM_ENV must be one of"),
        ({"STRONGROOM_LOG_FORMAT": "xml"}, "STRONGROOM_LOG_FORMAT must be one of"),
        ({"STRONGROOM_PURPOSES": "Support!"}, "STRONGROOM_PURPOSES must be"),
        ({"STRONGROOM_DB_POOL_MIN": "20", "STRONGROOM_DB_POOL_MAX": "5"}, "must not exceed"),
        ({"STRONGROOM_MASTER_KEY": "a", "STRONGROOM_MASTER_PASSPHRASE": "b"}, "not both"),
        ({"STRONGROOM_AUDIT_RETENTION": "forever=1"}, "STRONGROOM_AUDIT_RETENTION"),
    ],
)
def test_bad_values_fail_with_one_line(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message) as caught:
        Settings.from_env(env)
    assert "\n" not in str(caught.value)


def test_production_refuses_dev_conveniences() -> None:
    base = {"STRONGROOM_ENV": "production"}
    with pytest.raises(SettingsError, match="DATABASE_URL"):
        Settings.from_env(base)
    base["STRONGROOM_DATABASE_URL"] = "postgresql://db/x"
    with pytest.raises(SettingsError, match="REDIS_URL"):
        Settings.from_env(base)
    base["STRONGROOM_REDIS_URL"] = "redis://r"
    with pytest.raises(SettingsError, match="MASTER_KEY"):
        Settings.from_env(base)
    base["STRONGROOM_MASTER_KEY"] = "k"
    with pytest.raises(SettingsError, match="JSON logs"):
        Settings.from_env({**base, "STRONGROOM_LOG_FORMAT": "pretty"})
    assert Settings.from_env(base).production


def test_secrets_come_from_files_and_are_never_echoed(tmp_path: Path) -> None:
    secret = tmp_path / "key"
    secret.write_text("  c2VjcmV0LXZhbHVl  \n")
    settings = Settings.from_env({"STRONGROOM_MASTER_KEY_FILE": str(secret)})
    assert settings.master_key == "c2VjcmV0LXZhbHVl"
    assert "c2VjcmV0LXZhbHVl" not in repr(settings)
    with pytest.raises(SettingsError, match="not both"):
        Settings.from_env({"STRONGROOM_MASTER_KEY": "x", "STRONGROOM_MASTER_KEY_FILE": str(secret)})
    with pytest.raises(SettingsError, match="cannot read") as caught:
        Settings.from_env({"STRONGROOM_MASTER_KEY_FILE": str(tmp_path / "missing")})
    assert "c2Vj" not in str(caught.value)
