"""Local provider: a mounted key file is re-read when it changes (a rotated Kubernetes secret)."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from strongroom.crypto import KeyUnavailable, WrappedKey, subject_key_aad
from strongroom.crypto.providers import open_key_provider
from strongroom.crypto.refreshing import FileMasterKeys, RefreshingKeyWrapper
from strongroom.settings import Settings

AAD = subject_key_aad("tenant-f", b"\x03" * 32)


def b64key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def swap(path: Path, text: str) -> None:
    """Replace the file the way the kubelet does: write aside, then rename over."""
    aside = path.with_suffix(".new")
    aside.write_text(text)
    os.replace(aside, path)


async def test_new_versions_in_the_file_are_picked_up_without_restart(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    v1 = b64key()
    path.write_text(f"1:{v1}\n")
    path.chmod(0o600)
    source = FileMasterKeys(str(path))
    clock = FakeClock()
    wrapper = RefreshingKeyWrapper(source.initial(), source, 5.0, clock=clock)
    dek = os.urandom(32)
    old = await wrapper.wrap(dek, AAD)
    assert old.kek_version == 1

    swap(path, f"1:{v1},2:{b64key()}\n")
    clock.now += 1.0  # not yet due: at most one stat every interval
    assert (await wrapper.wrap(dek, AAD)).kek_version == 1
    clock.now += 5.0
    new = await wrapper.wrap(dek, AAD)
    assert new.kek_version == 2
    assert wrapper.versions() == {1, 2}
    assert await wrapper.unwrap(old, AAD) == dek
    assert (await wrapper.rewrap(old, AAD)).kek_version == 2


async def test_an_unknown_version_triggers_a_re_read_at_once(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    v1, v2 = b64key(), b64key()
    path.write_text(f"1:{v1}")
    source = FileMasterKeys(str(path))
    clock = FakeClock()
    wrapper = RefreshingKeyWrapper(source.initial(), source, 300.0, clock=clock)

    # Another replica has already read the new file and wraps with version 2.
    swap(path, f"1:{v1},2:{v2}")
    other_source = FileMasterKeys(str(path))
    other = RefreshingKeyWrapper(other_source.initial(), other_source, 300.0)
    dek = os.urandom(32)
    wrapped = await other.wrap(dek, AAD)
    assert wrapped.kek_version == 2

    clock.now += 1.0
    assert await wrapper.unwrap(wrapped, AAD) == dek


async def test_a_broken_file_keeps_the_current_keys(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    path.write_text(b64key())
    source = FileMasterKeys(str(path))
    clock = FakeClock()
    wrapper = RefreshingKeyWrapper(source.initial(), source, 1.0, clock=clock)
    dek = os.urandom(32)
    wrapped = await wrapper.wrap(dek, AAD)
    swap(path, "1:not-base64!")
    clock.now += 2.0
    assert await wrapper.unwrap(wrapped, AAD) == dek
    assert wrapper.versions() == {1}
    path.unlink()
    clock.now += 2.0
    assert await wrapper.unwrap(wrapped, AAD) == dek


async def test_the_local_provider_refreshes_a_mounted_key_file(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    path.write_text(b64key())
    settings = Settings.from_env(
        {
            "STRONGROOM_ENV": "test",
            "STRONGROOM_MASTER_KEY_FILE": str(path),
            "STRONGROOM_MASTER_KEY_REFRESH": "5",
        }
    )
    assert settings.master_key_file == str(path)
    provider = await open_key_provider(settings)
    assert isinstance(provider.wrapper, RefreshingKeyWrapper)
    assert provider.checks == {}
    wrapped = await provider.wrapper.wrap(os.urandom(32), AAD)
    await provider.close()
    with pytest.raises(KeyUnavailable, match="version 9"):
        await provider.wrapper.unwrap(WrappedKey(9, wrapped.blob), AAD)
