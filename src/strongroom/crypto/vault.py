"""A HashiCorp Vault / OpenBao client for the key providers: auth, renewal, failing well.

hvac is synchronous, so every request runs on a small thread pool, never on the event loop. Each
call goes through a circuit breaker (consecutive outages open it; while open, calls fail fast)
and, when idempotent, retries with exponential backoff and full jitter. Failures surface as
:class:`VaultUnavailable` (unreachable, timing out, 5xx, circuit open), :class:`VaultAuthFailed`
(the token was refused) or :class:`VaultRequestFailed` (any other refusal) — all
:class:`KeyUnavailable`, so HTTP answers 503.

Tokens: a static token (``token``), or one obtained by logging in (``approle``, ``kubernetes``).
A renewable token is renewed at about two thirds of its TTL; a login token that cannot be
renewed, or that Vault refuses, is replaced by logging in again. A refused static token is
reported (readiness fails, requests say authentication to Vault failed) until it works again.

Secrets never leave this module in text form: reprs hide tokens, error messages name the
operation and the HTTP status only, never a payload or the server's response body.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import hvac  # type: ignore[import-untyped]  # hvac ships no type hints
import requests
from hvac import exceptions as hvac_errors

from strongroom.crypto.errors import KeyUnavailable
from strongroom.resilience import Backoff, CircuitBreaker, CircuitOpen, retry
from strongroom.settings import Settings

__all__ = [
    "VaultAuthFailed",
    "VaultClient",
    "VaultConfig",
    "VaultError",
    "VaultRequestFailed",
    "VaultUnavailable",
]

log = logging.getLogger("strongroom.vault")

T = TypeVar("T")
Operation = Callable[[Any], T]  # receives the hvac.Client

_RENEW_AT = 2 / 3  # of the token's TTL
_MIN_RENEW_DELAY = 0.5
_RETRY_AFTER_FAILURE = 2.0
_DEFAULT_MOUNTS = {"approle": "approle", "kubernetes": "kubernetes"}


class VaultError(KeyUnavailable):
    """Vault could not serve an operation; the message names it and never a secret."""

    def __init__(self, operation: str, reason: str, status: int | None = None) -> None:
        super().__init__(f"{operation}: {reason}")
        self.operation = operation
        self.status = status


class VaultUnavailable(VaultError):
    """Vault is unreachable, timing out, answering 5xx, or its circuit is open."""


class VaultAuthFailed(VaultError):
    """Vault refused the token or the login."""


class VaultRequestFailed(VaultError):
    """Vault refused the request (4xx other than authentication).

    `server_errors` keeps Vault's error strings for classification by the caller (they name the
    failure, such as "message authentication failed"); they are not part of the message.
    """

    def __init__(
        self, operation: str, reason: str, status: int | None, server_errors: tuple[str, ...]
    ) -> None:
        super().__init__(operation, reason, status)
        self.server_errors = server_errors


@dataclass(frozen=True, slots=True)
class VaultConfig:
    """Where Vault is and how to log in; built from :class:`Settings`."""

    addr: str
    auth: str = "token"
    token: str | None = field(default=None, repr=False)
    role_id: str | None = None
    secret_id: str | None = field(default=None, repr=False)
    k8s_role: str | None = None
    k8s_jwt_file: str = "/var/run/secrets/kubernetes.io/serviceaccount/token"
    auth_mount: str | None = None
    namespace: str | None = None
    cacert: str | None = None
    timeout: float = 2.0
    breaker_threshold: int = 5
    breaker_cooldown: float = 5.0
    retries: int = 3

    @classmethod
    def from_settings(cls, settings: Settings) -> VaultConfig:
        if not settings.vault_addr:
            raise ValueError("a Vault provider needs STRONGROOM_VAULT_ADDR")
        return cls(
            addr=settings.vault_addr,
            auth=settings.vault_auth,
            token=settings.vault_token,
            role_id=settings.vault_role_id,
            secret_id=settings.vault_secret_id,
            k8s_role=settings.vault_k8s_role,
            k8s_jwt_file=settings.vault_k8s_jwt_file,
            auth_mount=settings.vault_auth_mount,
            namespace=settings.vault_namespace,
            cacert=settings.vault_cacert,
            timeout=settings.vault_timeout,
            breaker_threshold=settings.vault_breaker_threshold,
            breaker_cooldown=settings.vault_breaker_cooldown,
            retries=settings.vault_retries,
        )


class VaultClient:
    """One authenticated connection to Vault, shared by the key wrapper, KV reads and signer."""

    def __init__(self, config: VaultConfig) -> None:
        self._config = config
        self._client = hvac.Client(
            url=config.addr,
            token=config.token if config.auth == "token" else None,
            verify=config.cacert or True,
            timeout=config.timeout,
            namespace=config.namespace,
        )
        self._executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="strongroom-vault")
        self._breaker = CircuitBreaker(
            "vault",
            failure_threshold=config.breaker_threshold,
            reset_timeout=config.breaker_cooldown,
        )
        self._backoff = Backoff(attempts=config.retries, base=0.05, cap=1.0)
        self._once = Backoff(attempts=1)
        self._login_lock = asyncio.Lock()
        self._generation = 0  # bumped by every login: concurrent failures log in once
        self._lease: tuple[float, bool] | None = None  # (ttl seconds, renewable); None: no expiry
        self._lease_at = 0.0
        self._auth_failure: str | None = None
        self._renewal: asyncio.Task[None] | None = None

    @property
    def config(self) -> VaultConfig:
        return self._config

    @property
    def breaker(self) -> CircuitBreaker:
        return self._breaker

    @property
    def can_login(self) -> bool:
        """True when a refused token can be replaced by logging in again."""
        return self._config.auth != "token"

    @property
    def auth_failure(self) -> str | None:
        """Why Vault last refused the token, until a request succeeds again."""
        return self._auth_failure

    async def start(self) -> None:
        """Log in (or look up the static token) and start renewing; raises `VaultError`."""
        if self.can_login:
            await self._login(self._generation)
        else:
            data = await self.call("token lookup", _lookup_self)
            self._set_lease(data.get("ttl"), data.get("renewable"))
        self._renewal = asyncio.create_task(self._renew_forever(), name="vault-token-renewal")

    async def close(self) -> None:
        if self._renewal is not None:
            self._renewal.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewal
            self._renewal = None
        self._executor.shutdown(wait=False, cancel_futures=True)
        adapter = getattr(self._client, "adapter", None)
        session = getattr(adapter, "session", None)
        if session is not None:
            session.close()

    async def call(self, operation: str, request: Operation[T], *, idempotent: bool = True) -> T:
        """Run ``request(hvac_client)`` off the loop through the breaker and, when idempotent,
        with retries; a refused token is replaced once by logging in again (approle,
        kubernetes). ``operation`` names the call in errors and logs."""
        generation = self._generation
        try:
            try:
                result = await self._attempts(request, idempotent)
            except (hvac_errors.Forbidden, hvac_errors.Unauthorized):
                if not self.can_login:
                    raise
                log.warning("Vault refused the token during %s; logging in again", operation)
                await self._login(generation)
                result = await self._attempts(request, idempotent)
        except VaultError:
            raise
        except Exception as exc:
            raise self._translate(operation, exc) from None
        if self._auth_failure is not None:
            log.info("Vault accepts the token again")
            self._auth_failure = None
        return result

    async def check(self) -> bool:
        """Readiness: Vault answers and accepts the token (one cheap lookup-self, no retry; a
        login method logs in again when the token was refused)."""
        await self.call("readiness check", _lookup_self, idempotent=False)
        return True

    async def _attempts(self, request: Operation[T], idempotent: bool) -> T:
        async def attempt() -> T:
            return await self._breaker.call(lambda: self._run(request), counts=_is_outage)

        backoff = self._backoff if idempotent else self._once
        return await retry(attempt, backoff, retryable=_is_retryable)

    async def _run(self, request: Operation[T]) -> T:
        loop = asyncio.get_running_loop()
        # requests' timeout bounds connect and each read; this bounds the whole call.
        async with asyncio.timeout(self._config.timeout * 3):
            return await loop.run_in_executor(self._executor, request, self._client)

    async def _login(self, seen_generation: int) -> None:
        async with self._login_lock:
            if self._generation != seen_generation:
                return  # another task logged in meanwhile
            method = self._config.auth
            try:
                auth = await self._attempts(self._login_request(), idempotent=True)
            except Exception as exc:
                raise self._translate(f"{method} login", exc) from None
            self._client.token = auth["client_token"]
            self._generation += 1
            self._set_lease(auth.get("lease_duration"), auth.get("renewable"))
            self._auth_failure = None
            log.info("logged in to Vault (%s auth)", method)

    def _login_request(self) -> Operation[dict[str, Any]]:
        config = self._config
        mount = config.auth_mount or _DEFAULT_MOUNTS[config.auth]
        if config.auth == "approle":
            role_id, secret_id = config.role_id, config.secret_id

            def approle(client: Any) -> dict[str, Any]:
                response = client.auth.approle.login(
                    role_id, secret_id, use_token=False, mount_point=mount
                )
                return dict(response["auth"])

            return approle
        role, jwt_file = config.k8s_role, Path(config.k8s_jwt_file)

        def kubernetes(client: Any) -> dict[str, Any]:
            # Read at each login: projected service account tokens are rotated by the kubelet.
            jwt = jwt_file.read_text(encoding="utf-8").strip()
            response = client.auth.kubernetes.login(role, jwt, use_token=False, mount_point=mount)
            return dict(response["auth"])

        return kubernetes

    def _set_lease(self, ttl: object, renewable: object) -> None:
        seconds = float(ttl) if isinstance(ttl, int | float) else 0.0
        self._lease = (seconds, bool(renewable)) if seconds > 0 else None
        self._lease_at = time.monotonic()

    def _renewal_delay(self) -> float | None:
        if self._lease is None:
            return None  # a token without expiry (root, or a period-less static token)
        ttl, renewable = self._lease
        if not renewable and not self.can_login:
            return None  # nothing to do: it will expire and be reported
        due = self._lease_at + ttl * _RENEW_AT - time.monotonic()
        return max(due, _MIN_RENEW_DELAY)

    async def _renew_forever(self) -> None:
        while True:
            delay = self._renewal_delay()
            if delay is None:
                return
            await asyncio.sleep(delay)
            try:
                await self._renew_once()
            except VaultError as exc:
                log.warning("Vault token renewal failed (%s); trying again shortly", exc)
                self._lease = (_RETRY_AFTER_FAILURE / _RENEW_AT, True)
                self._lease_at = time.monotonic()

    async def _renew_once(self) -> None:
        assert self._lease is not None
        previous_ttl, renewable = self._lease
        if renewable:
            auth = await self.call("token renewal", _renew_self)
            ttl = auth.get("lease_duration")
            self._set_lease(ttl, auth.get("renewable"))
            # A token at its max TTL is renewed for less each time: log in for a fresh one.
            if not (self.can_login and isinstance(ttl, int | float) and ttl < previous_ttl / 2):
                return
        if self.can_login:
            await self._login(self._generation)

    def _translate(self, operation: str, exc: BaseException) -> VaultError:
        if isinstance(exc, VaultError):
            return exc
        if isinstance(exc, CircuitOpen):
            return VaultUnavailable(
                operation,
                f"Vault is unavailable (circuit open after repeated failures; "
                f"next attempt in {max(exc.retry_in, 0.0):.1f}s)",
            )
        login = operation.endswith("login")
        if isinstance(exc, hvac_errors.Forbidden | hvac_errors.Unauthorized) or (
            login and isinstance(exc, hvac_errors.InvalidRequest)  # "invalid secret id"
        ):
            code = _status_of(exc)
            reason = (
                f"authentication to Vault failed (HTTP {code}): the token is expired, revoked "
                "or not allowed this operation"
            )
            if login:
                reason = f"authentication to Vault failed (HTTP {code}): the login was refused"
            if self._auth_failure is None:
                log.error("%s: %s (%s auth)", operation, reason, self._config.auth)
            self._auth_failure = reason
            return VaultAuthFailed(operation, reason, code)
        if isinstance(exc, TimeoutError | requests.exceptions.Timeout):
            return VaultUnavailable(operation, "Vault did not answer in time")
        if isinstance(exc, requests.exceptions.RequestException):
            return VaultUnavailable(operation, f"Vault is unreachable ({type(exc).__name__})")
        if isinstance(exc, OSError):  # the Kubernetes service account token file
            return VaultAuthFailed(
                operation, f"cannot read the login token file ({exc.strerror or 'error'})"
            )
        status = _status_of(exc)
        if _is_outage(exc):
            return VaultUnavailable(operation, f"Vault answered HTTP {status}", status)
        errors = tuple(str(e) for e in (getattr(exc, "errors", None) or ()))
        return VaultRequestFailed(
            operation, f"Vault refused the request (HTTP {status})", status, errors
        )

    def __repr__(self) -> str:
        return f"VaultClient(addr={self._config.addr!r}, auth={self._config.auth!r})"


_STATUS = {
    hvac_errors.InvalidRequest: 400,
    hvac_errors.Unauthorized: 401,
    hvac_errors.Forbidden: 403,
    hvac_errors.InvalidPath: 404,
    hvac_errors.PreconditionFailed: 412,
    hvac_errors.RateLimitExceeded: 429,
    hvac_errors.InternalServerError: 500,
    hvac_errors.VaultNotInitialized: 501,
    hvac_errors.BadGateway: 502,
    hvac_errors.VaultDown: 503,
}

_OUTAGES = (
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    TimeoutError,
    hvac_errors.RateLimitExceeded,
    hvac_errors.InternalServerError,
    hvac_errors.VaultNotInitialized,
    hvac_errors.BadGateway,
    hvac_errors.VaultDown,
)


def _status_of(exc: BaseException) -> int | None:
    for kind, status in _STATUS.items():
        if isinstance(exc, kind):
            return status
    return None


def _is_outage(exc: BaseException) -> bool:
    """Failures that say Vault is unwell: they count for the breaker and are retried."""
    return isinstance(exc, _OUTAGES)


def _is_retryable(exc: Exception) -> bool:
    return _is_outage(exc) and not isinstance(exc, CircuitOpen)


def _lookup_self(client: Any) -> dict[str, Any]:
    return dict(client.auth.token.lookup_self()["data"])


def _renew_self(client: Any) -> dict[str, Any]:
    return dict(client.auth.token.renew_self()["auth"])
