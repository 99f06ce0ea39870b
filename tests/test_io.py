"""Atomic writes: the file is whole or absent, and temporaries of killed writers are swept."""

import os
import subprocess
import sys

import pytest

from softlif.io import _HOST, atomic_path, write_json_atomic


def test_atomic_write_keeps_the_old_file_on_error(tmp_path):
    path = tmp_path / "out.json"
    write_json_atomic(path, {"a": 1})
    with pytest.raises(RuntimeError), atomic_path(path) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert path.read_text() == '{\n  "a": 1\n}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_temporaries_of_dead_writers_are_swept_and_live_ones_kept(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead_pid = int(dead.stdout)
    stale = tmp_path / f".ck.pt.{_HOST}.{dead_pid}.abc123"
    live = tmp_path / f".ck.pt.{_HOST}.{os.getpid()}.def456"
    other_host = tmp_path / f".ck.pt.otherhost.{dead_pid}.ghi789"
    other_file = tmp_path / f".metrics.json.{_HOST}.{dead_pid}.jkl012"
    for p in (stale, live, other_host, other_file):
        p.write_bytes(b"partial")
    with atomic_path(tmp_path / "ck.pt") as tmp:
        tmp.write_bytes(b"whole")
    names = {p.name for p in tmp_path.iterdir()}
    assert stale.name not in names  # its writer is dead
    assert {live.name, other_host.name, other_file.name, "ck.pt"} <= names
