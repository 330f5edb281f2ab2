"""Outputs appear whole or not at all: atomic_file / atomic_path / atomic_dir."""

from __future__ import annotations

import pytest

from doppel.atomic import atomic_dir, atomic_file, atomic_path
from doppel.errors import DoppelError


def test_atomic_file_replaces_on_success_and_leaves_the_old_file_on_failure(tmp_path):
    target = tmp_path / "out" / "notes.txt"
    with atomic_file(target) as handle:
        handle.write("first")
    assert target.read_text() == "first"
    with pytest.raises(RuntimeError), atomic_file(target) as handle:
        handle.write("half")
        raise RuntimeError("killed mid-write")
    assert target.read_text() == "first"
    assert sorted(p.name for p in target.parent.iterdir()) == ["notes.txt"]  # no temporary left


def test_atomic_path_refuses_an_existing_target_without_force(tmp_path):
    target = tmp_path / "model.gguf"
    target.write_bytes(b"old")
    with pytest.raises(DoppelError, match="already exists"), atomic_path(target):
        pass
    with atomic_path(target, force=True) as tmp:
        tmp.write_bytes(b"new")
    assert target.read_bytes() == b"new" and list(tmp_path.iterdir()) == [target]


def test_atomic_dir_appears_only_when_the_block_succeeds(tmp_path):
    target = tmp_path / "dataset"
    with pytest.raises(ValueError), atomic_dir(target) as tmp:
        (tmp / "part").write_text("x")
        raise ValueError("bad input")
    assert not target.exists() and list(tmp_path.iterdir()) == []
