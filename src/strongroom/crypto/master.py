"""Master key (KEK) material from configuration values.

The settings module reads the environment and hands plain values to the functions here; nothing
in this module touches `os.environ`. Keys are 32 random bytes (AES-256), given as base64, or
stretched from a passphrase with PBKDF2-HMAC-SHA256 once at startup.
"""

from __future__ import annotations

import base64
import binascii
import os
import stat
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from strongroom.crypto._encoding import U32_MAX
from strongroom.crypto.errors import KeyConfigError, KeyUnavailable

__all__ = [
    "KEY_BYTES",
    "MIN_PASSPHRASE_CHARS",
    "MIN_PBKDF2_ITERATIONS",
    "MIN_SALT_BYTES",
    "FileKeySource",
    "MasterKeys",
    "parse_master_key",
    "parse_master_keys",
    "stretch_passphrase",
]

KEY_BYTES = 32
MIN_PBKDF2_ITERATIONS = 600_000  # OWASP 2023 figure for PBKDF2-HMAC-SHA256
MIN_PASSPHRASE_CHARS = 12
MIN_SALT_BYTES = 16
_MAX_SECRET_FILE_BYTES = 64 * 1024
_STANDARD_ONLY = frozenset("+/")
_URLSAFE_ONLY = frozenset("-_")


def parse_master_key(b64: str, *, what: str = "master key") -> bytes:
    """Decode a 256-bit key given as standard or URL-safe base64 (padding optional).

    Raises `KeyConfigError` with one line that names `what` and never echoes the value.
    """
    text = "".join(b64.split())
    if not text:
        raise KeyConfigError(f"{what} is empty")
    chars = set(text)
    if chars & _STANDARD_ONLY and chars & _URLSAFE_ONLY:
        raise KeyConfigError(f"{what} mixes the standard and URL-safe base64 alphabets")
    if chars & _URLSAFE_ONLY:
        text = text.replace("-", "+").replace("_", "/")
    text = text.rstrip("=")
    if len(text) % 4 == 1:
        raise KeyConfigError(f"{what} is not valid base64")
    text += "=" * (-len(text) % 4)
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise KeyConfigError(f"{what} is not valid base64") from None
    if len(key) != KEY_BYTES:
        raise KeyConfigError(
            f"{what} must decode to exactly {KEY_BYTES} bytes, it decodes to {len(key)}"
        )
    if len(set(key)) == 1:
        raise KeyConfigError(f"{what} repeats a single byte; generate it randomly")
    return key


def stretch_passphrase(
    passphrase: str, salt: bytes, iterations: int = MIN_PBKDF2_ITERATIONS
) -> bytes:
    """Derive a 32-byte key from a passphrase with PBKDF2-HMAC-SHA256.

    Slow on purpose: call it once at startup, never per request. The passphrase is NFC-normalised
    first, so the same words typed on different systems give the same key. Rejects fewer than
    600 000 iterations, passphrases under 12 characters and salts under 16 bytes.
    """
    if iterations < MIN_PBKDF2_ITERATIONS:
        raise KeyConfigError(
            f"passphrase stretching needs at least {MIN_PBKDF2_ITERATIONS} PBKDF2 iterations"
        )
    normalized = unicodedata.normalize("NFC", passphrase)
    if len(normalized) < MIN_PASSPHRASE_CHARS:
        raise KeyConfigError(
            f"master passphrase must be at least {MIN_PASSPHRASE_CHARS} characters long"
        )
    if len(salt) < MIN_SALT_BYTES:
        raise KeyConfigError(f"passphrase salt must be at least {MIN_SALT_BYTES} bytes")
    kdf = PBKDF2HMAC(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=salt, iterations=iterations)
    return kdf.derive(normalized.encode("utf-8", "surrogatepass"))


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class MasterKeys:
    """The configured master key versions and the one that wraps new keys.

    Old versions stay here to unwrap keys until rotation has re-wrapped everything and the version
    is retired from configuration. `active_version` left at 0 means the highest version. The
    mapping is copied and read-only; `repr` shows versions only.
    """

    keys: Mapping[int, bytes]
    active_version: int = field(default=0)

    def __post_init__(self) -> None:
        if not self.keys:
            raise KeyConfigError("no master key is configured")
        frozen: dict[int, bytes] = {}
        for version, key in self.keys.items():
            if isinstance(version, bool) or not isinstance(version, int):
                raise KeyConfigError("master key versions must be integers")
            if not 1 <= version <= U32_MAX:
                raise KeyConfigError(f"master key version {version} is outside 1..{U32_MAX}")
            if not isinstance(key, bytes) or len(key) != KEY_BYTES:
                raise KeyConfigError(f"master key version {version} is not {KEY_BYTES} bytes")
            frozen[version] = key
        active = self.active_version or max(frozen)
        if active not in frozen:
            raise KeyConfigError(f"active master key version {active} is not configured")
        object.__setattr__(self, "keys", MappingProxyType(frozen))
        object.__setattr__(self, "active_version", active)

    @classmethod
    def single(cls, key: bytes, version: int = 1) -> MasterKeys:
        """One key, active, under `version`."""
        return cls({version: key}, version)

    @property
    def active_key(self) -> bytes:
        """The key that wraps new data keys."""
        return self.keys[self.active_version]

    def key(self, version: int) -> bytes:
        """The key of `version`; `KeyUnavailable` when that version is not configured."""
        try:
            return self.keys[version]
        except KeyError:
            raise KeyUnavailable(f"master key version {version} is not configured") from None

    def versions(self) -> frozenset[int]:
        """Every configured version."""
        return frozenset(self.keys)

    def __repr__(self) -> str:
        return f"MasterKeys(versions={sorted(self.keys)}, active_version={self.active_version})"


def parse_master_keys(spec: str, active_version: int | None = None) -> MasterKeys:
    """Parse a master key setting: a bare base64 key (version 1), or versioned entries
    `"1:<b64>,2:<b64>"` separated by commas or newlines.

    The active version is the highest one unless `active_version` names another configured one.
    """
    entries = [entry.strip() for entry in spec.replace("\n", ",").split(",")]
    entries = [entry for entry in entries if entry]
    if not entries:
        raise KeyConfigError("master key setting is empty")
    keys: dict[int, bytes] = {}
    if len(entries) == 1 and ":" not in entries[0]:
        keys[1] = parse_master_key(entries[0])
    else:
        for position, entry in enumerate(entries, start=1):
            label, sep, value = entry.partition(":")
            label = label.strip()
            if not sep or not label.isascii() or not label.isdigit():
                raise KeyConfigError(
                    f"master key entry {position} must look like '<version>:<base64 key>'"
                )
            version = int(label)
            if version < 1:
                raise KeyConfigError(f"master key entry {position} has version 0; start at 1")
            if version in keys:
                raise KeyConfigError(f"master key version {version} is given twice")
            keys[version] = parse_master_key(value, what=f"master key version {version}")
    if active_version is not None and active_version not in keys:
        raise KeyConfigError(f"active master key version {active_version} is not configured")
    return MasterKeys(keys, active_version or 0)


class FileKeySource:
    """A secret (base64 key, versioned key spec or passphrase) read from a mounted file.

    Made for Kubernetes secret volumes, which are updated by swapping a symlink: `refresh()`
    compares the file's device, inode, size and modification time with a cheap `os.stat` and
    re-reads only when one changed. Surrounding whitespace is stripped.

    `loose_permissions` is true when group or others have any access to the file; the caller logs
    a warning (Kubernetes mounts secrets 0644 unless `defaultMode` says otherwise).
    """

    __slots__ = ("_path", "_signature", "_value", "loose_permissions")

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._path = os.fspath(path)
        self._signature: tuple[int, int, int, int] | None = None
        self._value = ""
        self.loose_permissions = False
        try:
            self._load()
        except OSError as exc:
            raise KeyConfigError(
                f"cannot read key file {self._path}: {exc.strerror or type(exc).__name__}"
            ) from None

    @property
    def path(self) -> str:
        """The file's path."""
        return self._path

    @property
    def value(self) -> str:
        """The secret as last read, whitespace stripped. Never log it."""
        return self._value

    def refresh(self) -> bool:
        """Re-read the file if it changed since the last read; return whether it did.

        A file that has become unreadable raises `KeyUnavailable` and keeps the previous value,
        so a caller polling during a secret update can log and try again.
        """
        try:
            current = _signature(os.stat(self._path))
            if current == self._signature:
                return False
            self._load()
        except OSError as exc:
            raise KeyUnavailable(
                f"cannot read key file {self._path}: {exc.strerror or type(exc).__name__}"
            ) from None
        return True

    def _load(self) -> None:
        fd = os.open(self._path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        try:
            info = os.fstat(fd)  # the stat of what is read, even if the path is swapped meanwhile
            if not stat.S_ISREG(info.st_mode):
                raise KeyConfigError(f"key file {self._path} is not a regular file")
            chunks: list[bytes] = []
            total = 0
            while chunk := os.read(fd, 8192):
                total += len(chunk)
                if total > _MAX_SECRET_FILE_BYTES:
                    raise KeyConfigError(f"key file {self._path} is larger than 64 KiB")
                chunks.append(chunk)
        finally:
            os.close(fd)
        try:
            text = b"".join(chunks).decode("utf-8").strip()
        except UnicodeDecodeError:
            raise KeyConfigError(f"key file {self._path} is not UTF-8 text") from None
        if not text:
            raise KeyConfigError(f"key file {self._path} is empty")
        self._value = text
        self._signature = _signature(info)
        self.loose_permissions = bool(info.st_mode & 0o077)

    def __repr__(self) -> str:
        return f"FileKeySource(path={self._path!r})"


def _signature(info: os.stat_result) -> tuple[int, int, int, int]:
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)
