from __future__ import annotations

import os
from pathlib import Path

import pytest

from strongroom.crypto import FileKeySource, KeyConfigError, KeyUnavailable


def write(path: Path, text: str, mode: int = 0o600, mtime_ns: int | None = None) -> None:
    path.write_text(text, encoding="utf-8")
    os.chmod(path, mode)
    if mtime_ns is not None:
        os.utime(path, ns=(mtime_ns, mtime_ns))


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records every actual read of a key file."""
    calls: list[str] = []
    original = FileKeySource._load

    def counting(self: FileKeySource) -> None:
        calls.append(self.path)
        original(self)

    monkeypatch.setattr(FileKeySource, "_load", counting)
    return calls


def test_reads_and_strips_the_file(tmp_path: Path) -> None:
    path = tmp_path / "master-key"
    write(path, "  secret-value-1 \n\n")
    source = FileKeySource(path)
    assert source.value == "secret-value-1"
    assert source.path == str(path)
    assert source.loose_permissions is False


def test_unchanged_file_is_not_read_again(tmp_path: Path, loads: list[str]) -> None:
    path = tmp_path / "master-key"
    write(path, "first")
    source = FileKeySource(path)
    assert len(loads) == 1
    assert source.refresh() is False
    assert source.refresh() is False
    assert len(loads) == 1
    assert source.value == "first"


def test_rewritten_file_is_detected(tmp_path: Path, loads: list[str]) -> None:
    path = tmp_path / "master-key"
    write(path, "first", mtime_ns=1_000_000_000)
    source = FileKeySource(path)
    write(path, "second-value", mtime_ns=2_000_000_000)
    assert source.refresh() is True
    assert source.value == "second-value"
    assert source.refresh() is False
    assert len(loads) == 2


def test_same_size_rewrite_with_new_mtime_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "master-key"
    write(path, "aaaa", mtime_ns=1_000_000_000)
    source = FileKeySource(path)
    write(path, "bbbb", mtime_ns=1_000_000_001)
    assert source.refresh() is True
    assert source.value == "bbbb"


def test_replaced_file_is_detected_by_inode(tmp_path: Path) -> None:
    path = tmp_path / "master-key"
    write(path, "aaaa", mtime_ns=1_000_000_000)
    source = FileKeySource(path)
    replacement = tmp_path / "incoming"
    write(replacement, "bbbb", mtime_ns=1_000_000_000)  # same size, same mtime
    os.replace(replacement, path)
    assert source.refresh() is True
    assert source.value == "bbbb"


def test_kubernetes_style_symlink_swap_is_detected(tmp_path: Path) -> None:
    first, second = tmp_path / "..2024_01", tmp_path / "..2024_02"
    first.mkdir()
    second.mkdir()
    write(first / "key", "old-secret")
    write(second / "key", "new-secret")
    data = tmp_path / "..data"
    data.symlink_to(first.name)
    mounted = tmp_path / "key"
    mounted.symlink_to("..data/key")
    source = FileKeySource(mounted)
    assert source.value == "old-secret"
    staging = tmp_path / "..data_tmp"
    staging.symlink_to(second.name)
    os.replace(staging, data)
    assert source.refresh() is True
    assert source.value == "new-secret"


def test_missing_file_at_startup_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "absent"
    with pytest.raises(KeyConfigError, match=r"cannot read key file .*absent"):
        FileKeySource(path)


def test_file_vanishing_later_keeps_the_old_value(tmp_path: Path) -> None:
    path = tmp_path / "master-key"
    write(path, "kept")
    source = FileKeySource(path)
    path.unlink()
    with pytest.raises(KeyUnavailable, match="cannot read key file"):
        source.refresh()
    assert source.value == "kept"
    write(path, "restored")
    assert source.refresh() is True
    assert source.value == "restored"


def test_emptied_file_keeps_the_old_value_and_is_retried(tmp_path: Path) -> None:
    path = tmp_path / "master-key"
    write(path, "kept", mtime_ns=1_000_000_000)
    source = FileKeySource(path)
    write(path, "  \n", mtime_ns=2_000_000_000)
    with pytest.raises(KeyConfigError, match="is empty"):
        source.refresh()
    assert source.value == "kept"
    write(path, "next", mtime_ns=2_000_000_000)
    assert source.refresh() is True
    assert source.value == "next"


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "is empty"), (b" \n\t", "is empty"), (b"\xff\xfe key", "not UTF-8")],
)
def test_unusable_content_is_a_config_error(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "master-key"
    path.write_bytes(content)
    with pytest.raises(KeyConfigError, match=message):
        FileKeySource(path)


def test_oversized_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "master-key"
    path.write_bytes(b"A" * (64 * 1024 + 1))
    with pytest.raises(KeyConfigError, match="larger than 64 KiB"):
        FileKeySource(path)


def test_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(KeyConfigError, match="not a regular file"):
        FileKeySource(tmp_path)


@pytest.mark.parametrize(
    ("mode", "loose"),
    [(0o400, False), (0o600, False), (0o640, True), (0o604, True), (0o644, True)],
)
def test_flags_files_open_to_group_or_others(tmp_path: Path, mode: int, loose: bool) -> None:
    path = tmp_path / "master-key"
    write(path, "value", mode=mode)
    assert FileKeySource(path).loose_permissions is loose


def test_permission_change_is_noticed_on_reread(tmp_path: Path) -> None:
    path = tmp_path / "master-key"
    write(path, "value", mode=0o644, mtime_ns=1_000_000_000)
    source = FileKeySource(path)
    assert source.loose_permissions is True
    write(path, "value-2", mode=0o600, mtime_ns=2_000_000_000)
    assert source.refresh() is True
    assert source.loose_permissions is False


def test_repr_shows_the_path_not_the_secret(tmp_path: Path) -> None:
    path = tmp_path / "master-key"
    write(path, "super-secret-passphrase")
    text = repr(FileKeySource(path))
    assert "super-secret" not in text
    assert str(path) in text
