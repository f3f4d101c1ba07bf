"""Master keys that change while the process runs: a rotated mounted secret, a KV v2 secret.

:class:`RefreshingKeyWrapper` wraps with a :class:`LocalKeyWrapper` of the latest keys its
source gave, asking the source again at most every `interval` seconds (from the request path,
by whichever request finds the keys stale; the others go on with the current keys). A version it
does not know makes it ask at once, at most once a second. When the source fails, the known keys
keep serving and the failure is logged: a Vault outage does not stop a process that has its keys.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Protocol
from urllib.parse import quote

from strongroom.crypto.errors import KeyConfigError, KeyUnavailable
from strongroom.crypto.master import FileKeySource, MasterKeys, parse_master_keys
from strongroom.crypto.vault import VaultClient, VaultRequestFailed
from strongroom.crypto.wrapping import LocalKeyWrapper, WrappedKey

__all__ = ["FileMasterKeys", "MasterKeySource", "RefreshingKeyWrapper", "VaultKvMasterKeys"]

log = logging.getLogger("strongroom.keys")

_UNKNOWN_VERSION_INTERVAL = 1.0


class MasterKeySource(Protocol):
    """Where master keys come from; `read` returns None when nothing changed since last time."""

    async def read(self) -> MasterKeys | None: ...


class FileMasterKeys:
    """Master keys from a mounted file (``STRONGROOM_MASTER_KEY_FILE``), re-read on change.

    A change costs one `os.stat` to notice; add the new version to the spec
    (``1:<b64>,2:<b64>``) and every replica wraps with it within the refresh interval.
    """

    def __init__(self, path: str) -> None:
        self._file = FileKeySource(path)
        if self._file.loose_permissions:
            log.warning("master key file %s is readable by group or others", path)

    def initial(self) -> MasterKeys:
        return parse_master_keys(self._file.value)

    async def read(self) -> MasterKeys | None:
        if not self._file.refresh():
            return None
        return parse_master_keys(self._file.value)

    def __repr__(self) -> str:
        return f"FileMasterKeys(path={self._file.path!r})"


class VaultKvMasterKeys:
    """Master keys from a KV v2 secret.

    The secret's data holds ``keys`` (a versioned spec ``"1:<b64>,2:<b64>"``) or ``key`` (one
    base64 key, version 1); optional ``active_version`` names the version that wraps (the highest
    by default). Only a new secret version is parsed again.
    """

    def __init__(self, client: VaultClient, mount: str, path: str) -> None:
        self._client = client
        self._where = f"{mount.strip('/')}/{path.strip('/')}"
        self._url = f"/v1/{quote(mount.strip('/'))}/data/{quote(path.strip('/'))}"
        self._version: object = None

    async def read(self) -> MasterKeys | None:
        url = self._url
        try:
            response: dict[str, Any] = await self._client.call(
                f"KV read of {self._where}", lambda c: c.adapter.get(url)
            )
        except VaultRequestFailed as exc:
            if exc.status == 404:
                raise KeyConfigError(f"the KV secret {self._where} does not exist") from None
            raise
        body = response.get("data") or {}
        version = (body.get("metadata") or {}).get("version")
        if version is not None and version == self._version:
            return None
        keys = _parse_secret(body.get("data") or {}, self._where)
        self._version = version
        return keys

    def __repr__(self) -> str:
        return f"VaultKvMasterKeys(secret={self._where!r})"


def _parse_secret(data: dict[str, Any], where: str) -> MasterKeys:
    spec = data.get("keys") or data.get("key")
    if not isinstance(spec, str) or not spec.strip():
        raise KeyConfigError(f"the KV secret {where} needs a 'keys' or 'key' string")
    active = data.get("active_version")
    try:
        active_version = int(active) if active not in (None, "") else None
    except (TypeError, ValueError):
        raise KeyConfigError(f"the KV secret {where} has a non-integer active_version") from None
    try:
        return parse_master_keys(spec, active_version)
    except KeyConfigError as exc:
        raise KeyConfigError(f"the KV secret {where}: {exc}") from None


class RefreshingKeyWrapper:
    """`KeyWrapper` over master keys that its source may replace (see the module docstring)."""

    remote = False  # the keys are fetched now and then; wrapping itself is local

    def __init__(
        self,
        keys: MasterKeys,
        source: MasterKeySource,
        interval: float,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._keys = keys
        self._inner = LocalKeyWrapper(keys)
        self._source = source
        self._interval = interval
        self._clock = clock
        self._checked_at = clock()
        self._busy = False

    @property
    def keys(self) -> MasterKeys:
        """The master keys in use."""
        return self._keys

    @property
    def active_version(self) -> int:
        return self._inner.active_version

    def versions(self) -> frozenset[int]:
        return self._inner.versions()

    async def refresh(self, *, force: bool = False) -> bool:
        """Ask the source when due (or when `force` and not asked within a second); true when
        the keys changed. Failures are logged and keep the current keys."""
        since = self._clock() - self._checked_at
        due = since >= (_UNKNOWN_VERSION_INTERVAL if force else self._interval)
        if not due or self._busy:
            return False
        self._busy = True
        self._checked_at = self._clock()
        try:
            keys = await self._source.read()
        except (KeyUnavailable, KeyConfigError) as exc:
            log.warning("cannot refresh the master keys (%r): %s", self._source, exc)
            return False
        finally:
            self._busy = False
        if keys is None:
            return False
        if keys.versions() != self._keys.versions() or keys.active_version != self.active_version:
            log.info(
                "master keys changed: versions %s, active %d",
                sorted(keys.versions()),
                keys.active_version,
            )
        self._keys = keys
        self._inner = LocalKeyWrapper(keys)
        return True

    async def wrap(self, key: bytes, aad: bytes) -> WrappedKey:
        await self.refresh()
        return await self._inner.wrap(key, aad)

    async def unwrap(self, wrapped: WrappedKey, aad: bytes) -> bytes:
        await self.refresh()
        if wrapped.kek_version not in self._inner.versions():
            await self.refresh(force=True)
        return await self._inner.unwrap(wrapped, aad)

    async def rewrap(self, wrapped: WrappedKey, aad: bytes) -> WrappedKey:
        return await self.wrap(await self.unwrap(wrapped, aad), aad)

    def __repr__(self) -> str:
        return (
            f"RefreshingKeyWrapper(versions={sorted(self.versions())}, "
            f"active={self.active_version}, source={self._source!r})"
        )
