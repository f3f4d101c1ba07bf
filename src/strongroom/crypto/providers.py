"""Master key providers behind one port, chosen by ``STRONGROOM_KEY_PROVIDER``.

- ``local``: the environment (raw key or passphrase, also from ``*_FILE`` mounts via settings; a
  mounted key file is re-read when it changes) and, in development only, a generated key file
  under the data folder;
- ``vault-kv``: the master keys are read from a Vault / OpenBao KV v2 secret, re-read after
  ``STRONGROOM_VAULT_CACHE_TTL``, and used in process;
- ``vault-transit``: Vault Transit wraps and unwraps the data keys and signs audit checkpoints;
  the master key never enters the process.

:func:`open_key_provider` gives the composition root one :class:`KeyProvider`: the key
wrapper, the audit checkpoint signer and the keys that verify it, readiness checks, and `close`.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from strongroom.audit.signing import CheckpointSigner, Ed25519Signer, trusted_keys
from strongroom.crypto.errors import KeyConfigError
from strongroom.crypto.master import MasterKeys, parse_master_keys, stretch_passphrase
from strongroom.crypto.refreshing import FileMasterKeys, RefreshingKeyWrapper, VaultKvMasterKeys
from strongroom.crypto.transit import TransitKeyWrapper, TransitSigner
from strongroom.crypto.vault import VaultClient, VaultConfig
from strongroom.crypto.wrapping import KeyWrapper, LocalKeyWrapper
from strongroom.settings import Settings

log = logging.getLogger("strongroom.keys")

DEV_KEY_FILE = "master.key"

Check = Callable[[], Awaitable[object]]


@dataclass(eq=False)
class KeyProvider:
    """What the configured provider gives the application."""

    wrapper: KeyWrapper
    signer: CheckpointSigner
    trusted_keys: dict[str, bytes]
    checks: dict[str, Check] = field(default_factory=dict)
    vault: VaultClient | None = None

    async def close(self) -> None:
        if self.vault is not None:
            await self.vault.close()


async def open_key_provider(settings: Settings) -> KeyProvider:
    """Connect to the configured key provider; raises `KeyConfigError` / `KeyUnavailable` with
    one line when it cannot serve (startup stops there)."""
    if settings.key_provider == "local":
        return _local_provider(settings)
    client = VaultClient(VaultConfig.from_settings(settings))
    try:
        await client.start()
        if settings.key_provider == "vault-kv":
            source = VaultKvMasterKeys(client, settings.vault_kv_mount, settings.vault_kv_path)
            keys = await source.read()
            assert keys is not None  # the first read always parses
            wrapper: KeyWrapper = RefreshingKeyWrapper(keys, source, settings.vault_cache_ttl)
            signer: CheckpointSigner = Ed25519Signer.from_master_keys(keys)
            trusted = trusted_keys(keys)
        else:
            transit = TransitKeyWrapper(
                client,
                settings.vault_transit_mount,
                settings.vault_transit_key,
                ttl=settings.vault_cache_ttl,
            )
            await transit.start()
            transit_signer = TransitSigner(
                client, settings.vault_transit_mount, settings.vault_signing_key
            )
            await transit_signer.start()
            wrapper, signer, trusted = transit, transit_signer, transit_signer.trusted_keys()
    except BaseException:
        await client.close()
        raise
    log.info("key provider: %s (%r)", settings.key_provider, wrapper)
    return KeyProvider(wrapper, signer, trusted, {"vault": client.check}, client)


async def build_key_wrapper(settings: Settings) -> KeyWrapper:
    """The configured key wrapper alone, for one-shot commands (the process ends with them)."""
    return (await open_key_provider(settings)).wrapper


def _local_provider(settings: Settings) -> KeyProvider:
    keys = load_master_keys(settings)
    wrapper: KeyWrapper = LocalKeyWrapper(keys)
    if settings.master_key_file and settings.master_key_refresh > 0:
        source = FileMasterKeys(settings.master_key_file)
        wrapper = RefreshingKeyWrapper(keys, source, settings.master_key_refresh)
    return KeyProvider(wrapper, Ed25519Signer.from_master_keys(keys), trusted_keys(keys))


def load_master_keys(settings: Settings) -> MasterKeys:
    """The configured local master keys; a passphrase is stretched here, once per process."""
    if settings.key_provider != "local":
        raise KeyConfigError(
            f"STRONGROOM_KEY_PROVIDER={settings.key_provider}: the master keys are in Vault; "
            "this command needs the local provider"
        )
    if settings.master_key:
        return parse_master_keys(settings.master_key)
    if settings.master_passphrase:
        salt = hashlib.sha256(b"strongroom/kek-salt/v1|" + settings.master_salt.encode()).digest()
        return MasterKeys.single(stretch_passphrase(settings.master_passphrase, salt))
    if settings.production:  # settings validation refuses this too; keep the guard local
        raise RuntimeError("production needs a configured master key")
    return parse_master_keys(ensure_dev_key(settings.home).read_text().strip())


def ensure_dev_key(home: Path) -> Path:
    """Create (once, race-free across workers) a development master key file, mode 0600."""
    home.mkdir(parents=True, exist_ok=True)
    path = home / DEV_KEY_FILE
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path
    with os.fdopen(descriptor, "w") as handle:
        handle.write(base64.b64encode(os.urandom(32)).decode() + "\n")
    log.warning(
        "generated a DEVELOPMENT master key at %s; anyone who can read this file can decrypt "
        "the data. Configure STRONGROOM_MASTER_KEY (or _FILE) for anything real.",
        path,
    )
    return path
