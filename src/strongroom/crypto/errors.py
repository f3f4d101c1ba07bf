"""Exceptions raised by the crypto layer.

Messages are safe to log and to show to an operator: they never carry key material, plaintext,
ciphertext or the configuration value that was rejected.
"""

from __future__ import annotations

__all__ = ["CryptoError", "IntegrityError", "KeyConfigError", "KeyUnavailable"]


class CryptoError(Exception):
    """Base class of every error raised by `strongroom.crypto`."""


class IntegrityError(CryptoError):
    """A ciphertext failed authentication.

    It was tampered with, truncated, moved to another tenant, record or field, or is being opened
    with the wrong key. The caller cannot tell these apart, by design.
    """

    def __init__(self, message: str = "ciphertext failed authentication") -> None:
        super().__init__(message)


class KeyUnavailable(CryptoError):
    """A key provider cannot deliver a key right now (a master key version that is not configured,
    a secret store that does not answer). The request may succeed later; HTTP maps it to 503."""


class KeyConfigError(CryptoError):
    """The key configuration is unusable; the message is one line naming what is wrong."""
