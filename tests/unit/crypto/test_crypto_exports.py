from __future__ import annotations

import importlib

import strongroom.crypto


def test_every_public_name_is_exported() -> None:
    for name in strongroom.crypto.__all__:
        assert getattr(strongroom.crypto, name) is not None


def test_public_names_come_from_their_modules() -> None:
    envelope = importlib.import_module("strongroom.crypto.envelope")
    assert strongroom.crypto.FieldCipher is envelope.FieldCipher
    errors = importlib.import_module("strongroom.crypto.errors")
    for name in ("IntegrityError", "KeyUnavailable", "KeyConfigError"):
        assert issubclass(getattr(errors, name), errors.CryptoError)
    assert not issubclass(errors.CryptoError, ValueError)
