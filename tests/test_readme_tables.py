"""The README's per-machine speed tables are rendered from the benchmark JSON files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_speed_tables_match_the_benchmark_results():
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "speed_tables.py"), "--check"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_the_check_fails_on_a_stale_table(tmp_path):
    readme = (ROOT / "README.md").read_text()
    stale = tmp_path / "README.md"
    begin = "<!-- speed-tables: begin -->"
    stale.write_text(readme.replace(begin, begin + "\n| a hand-typed row |", 1))
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "speed_tables.py"), "--check",
                           "--readme", str(stale)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "differ" in done.stderr
