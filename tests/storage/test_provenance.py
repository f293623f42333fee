"""Provenance: a cube records the commit of the code that made it.

Tests not marked slow start no process, so there ``git_commit`` answers "unknown" (see
tests/conftest.py); here the real lookup runs, in a fresh interpreter as ``emergence`` would.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.helpers import REPO

pytestmark = pytest.mark.slow


def _git(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True, timeout=30)


def test_git_commit_is_the_checked_out_commit_and_says_when_files_differ():
    head = _git("rev-parse", "HEAD")
    if head.returncode != 0:
        pytest.skip(f"not a git checkout: {head.stderr.strip()}")
    dirty = bool(_git("status", "--porcelain", "--untracked-files=no").stdout.strip())
    code = "from pipeline.storage.provenance import git_commit; print(git_commit())"
    got = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60, check=True)
    assert got.stdout.strip() == head.stdout.strip() + ("-dirty" if dirty else "")
