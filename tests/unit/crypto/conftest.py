"""Fixtures for the crypto unit tests: fresh random keys, never shared between tests."""

from __future__ import annotations

import os

import pytest

from strongroom.crypto import LocalKeyWrapper, MasterKeys


@pytest.fixture
def dek() -> bytes:
    return os.urandom(32)


@pytest.fixture
def other_dek() -> bytes:
    return os.urandom(32)


@pytest.fixture
def master_keys() -> MasterKeys:
    return MasterKeys({1: os.urandom(32), 2: os.urandom(32)})


@pytest.fixture
def wrapper(master_keys: MasterKeys) -> LocalKeyWrapper:
    return LocalKeyWrapper(master_keys)
