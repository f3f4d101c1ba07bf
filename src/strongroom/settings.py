"""Settings: the only module that reads the environment.

Every variable is prefixed ``STRONGROOM_``; a variable ``X_FILE`` reads the value of ``X`` from a
mounted file (Kubernetes secrets). Values are parsed and validated once, into a frozen object; a bad
value raises :class:`SettingsError` with one line that names the variable and never echoes a secret.
Tests build settings from a plain mapping instead of patching the environment.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

PREFIX = "STRONGROOM_"
N = TypeVar("N", int, float)

DEFAULT_PURPOSES = (
    "support",
    "fraud_investigation",
    "billing",
    "legal",
    "data_subject_request",
    "security_incident",
)

ENVIRONMENTS = ("development", "test", "production")
LOG_FORMATS = ("json", "pretty")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
KEY_PROVIDERS = ("local", "vault-kv", "vault-transit")
VAULT_AUTH_METHODS = ("token", "approle", "kubernetes")
K8S_JWT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount/token"

# Variables whose values are secrets: never echoed, and readable from ``*_FILE``.
SECRET_NAMES = frozenset(
    {
        "DATABASE_URL",
        "KEYSTORE_URL",
        "REDIS_URL",
        "MASTER_KEY",
        "MASTER_PASSPHRASE",
        "VAULT_TOKEN",
        "VAULT_SECRET_ID",
    }
)


class SettingsError(ValueError):
    """A configuration value is missing or invalid; the message is one line for the operator."""


@dataclass(frozen=True, slots=True)
class Settings:
    """Validated configuration of one Strongroom process."""

    env: str = "development"
    home: Path = Path(".strongroom")
    database_url: str | None = None
    keystore_url: str | None = None
    redis_url: str | None = None
    master_key: str | None = field(default=None, repr=False)
    master_passphrase: str | None = field(default=None, repr=False)
    master_salt: str = "strongroom"
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    log_level: str = "INFO"
    log_format: str = "json"
    max_body_bytes: int = 1_048_576
    db_pool_min: int = 2
    db_pool_max: int = 10
    db_timeout: float = 5.0
    statement_timeout_ms: int = 5_000
    redis_timeout: float = 0.5
    dek_cache_size: int = 10_000
    dek_cache_ttl: float = 300.0
    audit_timeout: float = 2.0
    default_purposes: tuple[str, ...] = DEFAULT_PURPOSES
    page_size_max: int = 100
    rate_limit: float = 1000.0
    auth_cache_ttl: float = 30.0
    schema_cache_ttl: float = 30.0
    audit_batch_size: int = 512
    audit_linger: float = 0.002
    audit_queue_size: int = 10_000
    audit_close_grace: float = 10.0
    audit_retention: str | None = None
    audit_retention_interval: float = 3600.0
    rate_burst: int = 2000
    # Key provider: local (env / mounted file / passphrase) or HashiCorp Vault / OpenBao.
    key_provider: str = "local"
    master_key_file: str | None = None
    master_key_refresh: float = 5.0
    vault_addr: str | None = None
    vault_namespace: str | None = None
    vault_cacert: str | None = None
    vault_timeout: float = 2.0
    vault_auth: str = "token"
    vault_auth_mount: str | None = None
    vault_token: str | None = field(default=None, repr=False)
    vault_role_id: str | None = None
    vault_secret_id: str | None = field(default=None, repr=False)
    vault_k8s_role: str | None = None
    vault_k8s_jwt_file: str = K8S_JWT_PATH
    vault_kv_mount: str = "secret"
    vault_kv_path: str = "strongroom/master-key"
    vault_cache_ttl: float = 300.0
    vault_transit_mount: str = "transit"
    vault_transit_key: str = "strongroom"
    vault_signing_key: str = "strongroom-audit"
    vault_breaker_threshold: int = 5
    vault_breaker_cooldown: float = 5.0
    vault_retries: int = 3
    # Observability: Prometheus metrics, OpenTelemetry traces (OTEL_* read by the SDK), access log.
    metrics: bool = True
    metrics_port: int | None = None
    metrics_dir: str | None = None
    tracing: bool = False
    access_log: bool = True

    @property
    def production(self) -> bool:
        return self.env == "production"

    @property
    def vault(self) -> bool:
        """True when the master key (KV) or the key wrapping (Transit) lives in Vault."""
        return self.key_provider != "local"

    @property
    def embedded(self) -> bool:
        """True when no database URL is configured: the zero-config mode."""
        return self.database_url is None

    @property
    def keystore_dsn(self) -> str | None:
        """Where wrapped keys live; the data database unless a separate key store is set."""
        return self.keystore_url or self.database_url

    def with_overrides(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``environ`` (the process environment by default)."""
        source = os.environ if environ is None else environ
        reader = _Reader(source)
        env = reader.choice("ENV", ENVIRONMENTS, "development")
        production = env == "production"
        default_format = "pretty" if (not production and sys.stderr.isatty()) else "json"
        settings = cls(
            env=env,
            home=Path(reader.text("HOME") or ".strongroom"),
            database_url=reader.secret("DATABASE_URL"),
            keystore_url=reader.secret("KEYSTORE_URL"),
            redis_url=reader.secret("REDIS_URL"),
            master_key=reader.secret("MASTER_KEY"),
            master_passphrase=reader.secret("MASTER_PASSPHRASE"),
            master_salt=reader.text("MASTER_SALT") or "strongroom",
            host=reader.text("HOST") or "127.0.0.1",
            port=reader.integer("PORT", 8080, 1, 65535),
            workers=reader.integer("WORKERS", 1, 1, 64),
            log_level=reader.choice("LOG_LEVEL", LOG_LEVELS, "INFO", upper=True),
            log_format=reader.choice("LOG_FORMAT", LOG_FORMATS, default_format),
            max_body_bytes=reader.integer("MAX_BODY_BYTES", 1_048_576, 1_024, 64 * 1_048_576),
            db_pool_min=reader.integer("DB_POOL_MIN", 2, 1, 100),
            db_pool_max=reader.integer("DB_POOL_MAX", 10, 1, 200),
            db_timeout=reader.number("DB_TIMEOUT", 5.0, 0.05, 120.0),
            statement_timeout_ms=reader.integer("STATEMENT_TIMEOUT_MS", 5_000, 10, 600_000),
            redis_timeout=reader.number("REDIS_TIMEOUT", 0.5, 0.01, 30.0),
            dek_cache_size=reader.integer("DEK_CACHE_SIZE", 10_000, 1, 10_000_000),
            dek_cache_ttl=reader.number("DEK_CACHE_TTL", 300.0, 1.0, 86_400.0),
            audit_timeout=reader.number("AUDIT_TIMEOUT", 2.0, 0.05, 60.0),
            default_purposes=reader.names("PURPOSES", DEFAULT_PURPOSES),
            page_size_max=reader.integer("PAGE_SIZE_MAX", 100, 1, 1_000),
            rate_limit=reader.number("RATE_LIMIT", 1000.0, 0.0, 1_000_000.0),
            rate_burst=reader.integer("RATE_BURST", 2000, 1, 10_000_000),
            auth_cache_ttl=reader.number("AUTH_CACHE_TTL", 30.0, 0.0, 3_600.0),
            schema_cache_ttl=reader.number("SCHEMA_CACHE_TTL", 30.0, 0.0, 3_600.0),
            audit_batch_size=reader.integer("AUDIT_BATCH_SIZE", 512, 1, 10_000),
            audit_linger=reader.number("AUDIT_LINGER", 0.002, 0.0, 0.05),
            audit_queue_size=reader.integer("AUDIT_QUEUE_SIZE", 10_000, 1, 1_000_000),
            audit_close_grace=reader.number("AUDIT_CLOSE_GRACE", 10.0, 0.0, 300.0),
            audit_retention=reader.text("AUDIT_RETENTION"),
            audit_retention_interval=reader.number(
                "AUDIT_RETENTION_INTERVAL", 3600.0, 0.0, 30 * 86_400.0
            ),
            key_provider=reader.choice("KEY_PROVIDER", KEY_PROVIDERS, "local"),
            master_key_file=reader.text("MASTER_KEY_FILE"),
            master_key_refresh=reader.number("MASTER_KEY_REFRESH", 5.0, 0.0, 3600.0),
            vault_addr=reader.text("VAULT_ADDR"),
            vault_namespace=reader.text("VAULT_NAMESPACE"),
            vault_cacert=reader.text("VAULT_CACERT"),
            vault_timeout=reader.number("VAULT_TIMEOUT", 2.0, 0.05, 60.0),
            vault_auth=reader.choice("VAULT_AUTH", VAULT_AUTH_METHODS, "token"),
            vault_auth_mount=reader.text("VAULT_AUTH_MOUNT"),
            vault_token=reader.secret("VAULT_TOKEN"),
            vault_role_id=reader.text("VAULT_ROLE_ID"),
            vault_secret_id=reader.secret("VAULT_SECRET_ID"),
            vault_k8s_role=reader.text("VAULT_K8S_ROLE"),
            vault_k8s_jwt_file=reader.text("VAULT_K8S_JWT_FILE") or K8S_JWT_PATH,
            vault_kv_mount=reader.text("VAULT_KV_MOUNT") or "secret",
            vault_kv_path=reader.text("VAULT_KV_PATH") or "strongroom/master-key",
            vault_cache_ttl=reader.number("VAULT_CACHE_TTL", 300.0, 0.0, 86_400.0),
            vault_transit_mount=reader.text("VAULT_TRANSIT_MOUNT") or "transit",
            vault_transit_key=reader.text("VAULT_TRANSIT_KEY") or "strongroom",
            vault_signing_key=reader.text("VAULT_SIGNING_KEY") or "strongroom-audit",
            vault_breaker_threshold=reader.integer("VAULT_BREAKER_THRESHOLD", 5, 1, 1_000),
            vault_breaker_cooldown=reader.number("VAULT_BREAKER_COOLDOWN", 5.0, 0.01, 600.0),
            vault_retries=reader.integer("VAULT_RETRIES", 3, 1, 10),
            metrics=reader.flag("METRICS", True),
            metrics_port=reader.optional_integer("METRICS_PORT", 1, 65535),
            # prometheus_client's own variable counts too: it selects its multiprocess mode.
            metrics_dir=reader.text("METRICS_DIR") or source.get("PROMETHEUS_MULTIPROC_DIR"),
            tracing=reader.flag("TRACING", False),
            access_log=reader.flag("ACCESS_LOG", True),
        )
        settings.validate()
        return settings

    def validate(self) -> None:
        """Cross-field checks; raises :class:`SettingsError` with one line."""
        if self.db_pool_min > self.db_pool_max:
            raise SettingsError("STRONGROOM_DB_POOL_MIN must not exceed STRONGROOM_DB_POOL_MAX")
        if self.audit_queue_size < self.audit_batch_size:
            raise SettingsError(
                "STRONGROOM_AUDIT_QUEUE_SIZE must be at least STRONGROOM_AUDIT_BATCH_SIZE"
            )
        if self.audit_retention:
            from strongroom.audit.retention import parse_policies

            try:
                parse_policies(self.audit_retention)
            except ValueError as exc:
                raise SettingsError(f"STRONGROOM_AUDIT_RETENTION: {exc}") from None
        if self.master_key and self.master_passphrase:
            raise SettingsError(
                "set either STRONGROOM_MASTER_KEY or STRONGROOM_MASTER_PASSPHRASE, not both"
            )
        self._validate_vault()
        if not self.production:
            return
        if self.database_url is None:
            raise SettingsError(
                "STRONGROOM_ENV=production needs STRONGROOM_DATABASE_URL "
                "(the embedded database is a development convenience)"
            )
        if self.redis_url is None:
            raise SettingsError(
                "STRONGROOM_ENV=production needs STRONGROOM_REDIS_URL "
                "(the embedded Redis is a development convenience)"
            )
        if not (self.master_key or self.master_passphrase or self.vault):
            raise SettingsError(
                "STRONGROOM_ENV=production needs STRONGROOM_MASTER_KEY or "
                "STRONGROOM_MASTER_PASSPHRASE (generated keys are a development convenience)"
            )
        if self.log_format == "pretty":
            raise SettingsError("STRONGROOM_ENV=production writes JSON logs; unset LOG_FORMAT")

    def _validate_vault(self) -> None:
        if not self.vault:
            return
        if self.master_key or self.master_passphrase:
            raise SettingsError(
                f"STRONGROOM_KEY_PROVIDER={self.key_provider} takes the master key from Vault; "
                "unset STRONGROOM_MASTER_KEY and STRONGROOM_MASTER_PASSPHRASE"
            )
        if not self.vault_addr:
            raise SettingsError(
                f"STRONGROOM_KEY_PROVIDER={self.key_provider} needs STRONGROOM_VAULT_ADDR"
            )
        if not self.vault_addr.startswith(("https://", "http://")):
            raise SettingsError("STRONGROOM_VAULT_ADDR must be an http(s):// URL")
        if (
            self.production
            and self.vault_addr.startswith("http://")
            and not self.vault_addr.startswith(("http://127.0.0.1", "http://localhost"))
        ):
            raise SettingsError(
                "STRONGROOM_ENV=production needs an https:// STRONGROOM_VAULT_ADDR "
                "(plain http only to a local Vault agent)"
            )
        needs = {
            "token": ("VAULT_TOKEN", self.vault_token),
            "approle": ("VAULT_ROLE_ID", self.vault_role_id),
            "kubernetes": ("VAULT_K8S_ROLE", self.vault_k8s_role),
        }
        name, value = needs[self.vault_auth]
        if not value:
            raise SettingsError(
                f"STRONGROOM_VAULT_AUTH={self.vault_auth} needs {PREFIX}{name} (or {name}_FILE)"
                if name in SECRET_NAMES
                else f"STRONGROOM_VAULT_AUTH={self.vault_auth} needs {PREFIX}{name}"
            )
        if self.vault_auth == "approle" and not self.vault_secret_id:
            raise SettingsError(
                "STRONGROOM_VAULT_AUTH=approle needs STRONGROOM_VAULT_SECRET_ID (or _FILE)"
            )


def export_to_environment(values: Mapping[str, str]) -> None:
    """Publish settings to child processes (Granian workers read them back with from_env)."""
    os.environ.update({PREFIX + key: value for key, value in values.items()})


def export_metrics_dir(path: str) -> None:
    """Publish the metrics directory to Granian's workers: ours, and prometheus_client's own
    variable, which selects its multiprocess mode when it is imported."""
    os.environ[PREFIX + "METRICS_DIR"] = path
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path


class _Reader:
    """Typed access to ``STRONGROOM_*`` values with one-line errors."""

    def __init__(self, source: Mapping[str, str]) -> None:
        self._source = source

    def raw(self, name: str) -> str | None:
        key = PREFIX + name
        value = self._source.get(key)
        file_path = self._source.get(key + "_FILE")
        if value is not None and value != "" and file_path:
            raise SettingsError(f"set {key} or {key}_FILE, not both")
        if file_path:
            try:
                return Path(file_path).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise SettingsError(
                    f"{key}_FILE: cannot read {file_path}: {exc.strerror}"
                ) from None
        if value is None or value.strip() == "":
            return None
        return value.strip()

    def text(self, name: str) -> str | None:
        return self.raw(name)

    def secret(self, name: str) -> str | None:
        return self.raw(name)

    def choice(self, name: str, allowed: tuple[str, ...], default: str, upper: bool = False) -> str:
        value = self.raw(name)
        if value is None:
            return default
        value = value.upper() if upper else value.lower()
        if value not in allowed:
            raise SettingsError(
                f"{PREFIX}{name} must be one of {', '.join(allowed)}; got {value!r}"
            )
        return value

    def flag(self, name: str, default: bool) -> bool:
        value = self.raw(name)
        if value is None:
            return default
        lowered = value.lower()
        if lowered in ("on", "true", "1", "yes"):
            return True
        if lowered in ("off", "false", "0", "no"):
            return False
        raise SettingsError(f"{PREFIX}{name} must be on or off; got {value!r}")

    def optional_integer(self, name: str, low: int, high: int) -> int | None:
        if self.raw(name) is None:
            return None
        return self.integer(name, low, low, high)

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        return self._ranged(name, default, low, high, int, "an integer")

    def number(self, name: str, default: float, low: float, high: float) -> float:
        return self._ranged(name, default, low, high, float, "a number")

    def _ranged(
        self, name: str, default: N, low: N, high: N, parse: Callable[[str], N], what: str
    ) -> N:
        value = self.raw(name)
        if value is None:
            return default
        try:
            number = parse(value)
        except ValueError:
            raise SettingsError(f"{PREFIX}{name} must be {what}; got {value!r}") from None
        if not low <= number <= high:  # NaN fails this too
            raise SettingsError(f"{PREFIX}{name} must be between {low} and {high}; got {number}")
        return number

    def names(self, name: str, default: tuple[str, ...]) -> tuple[str, ...]:
        value = self.raw(name)
        if value is None:
            return default
        items = tuple(part.strip() for part in value.split(",") if part.strip())
        if not items or any(not _is_identifier(item) for item in items):
            raise SettingsError(
                f"{PREFIX}{name} must be a comma-separated list of lowercase names "
                "(a-z, 0-9, _), e.g. support,billing"
            )
        return items


def _is_identifier(value: str) -> bool:
    return (
        0 < len(value) <= 64
        and value[0].isascii()
        and value[0].isalpha()
        and all(c.isascii() and (c.islower() or c.isdigit() or c == "_") for c in value)
    )
