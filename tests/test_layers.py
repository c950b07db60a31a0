"""The layering contracts in pyproject.toml ([tool.importlinter]) hold.

The core never imports a channel, a lower layer never imports a higher one, the foundation
imports no layer. A violation fails here with import-linter's report of the offending line.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_import_contracts_are_kept() -> None:
    command = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if command is None:
        pytest.skip("lint-imports is not installed (pip package 'import-linter'; in .[test])")
    done = subprocess.run(
        [command, "--no-cache"], check=False, cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout
