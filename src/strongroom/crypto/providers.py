"""Master key providers: the environment (raw key or passphrase, also from ``*_FILE`` mounts via
settings) and, in development only, a generated key file under the data folder."""

from __future__ import annotations

import base64
import hashlib
import logging
import os
from pathlib import Path

from strongroom.crypto.master import MasterKeys, parse_master_keys, stretch_passphrase
from strongroom.settings import Settings

log = logging.getLogger("strongroom.keys")

DEV_KEY_FILE = "master.key"


def load_master_keys(settings: Settings) -> MasterKeys:
    """The configured master keys; a passphrase is stretched here, once per process."""
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
