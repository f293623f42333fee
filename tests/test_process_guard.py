"""The rule of tests/conftest.py holds: a test not marked slow that starts a process, itself
or through a fixture another test set up first, fails and says what it started."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from tests.helpers import REPO

pytestmark = pytest.mark.slow

CASES = """
import multiprocessing
import subprocess

import pytest


@pytest.fixture(scope="module")
def server():
    return subprocess.run(["true"], check=True)


@pytest.mark.slow
def test_slow_may_start_a_process(server):
    subprocess.run(["true"], check=True)


def test_fast_uses_a_fixture_that_started_one(server):
    pass


def test_fast_runs_a_command():
    subprocess.run(["true"], check=True)


def test_fast_starts_a_multiprocessing_child():
    child = multiprocessing.get_context("spawn").Process(target=print)
    child.start()
    child.join()


def test_fast_starts_nothing(tmp_path):
    (tmp_path / "x").write_text("x")
"""


def test_a_fast_test_that_starts_a_process_fails_naming_it(tmp_path):
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n    slow: starts processes\n")
    (tmp_path / "conftest.py").write_text("from tests.conftest import *  # noqa: F403\n")
    (tmp_path / "test_cases.py").write_text(textwrap.dedent(CASES))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rA", "test_cases.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    outcome = {
        line.split()[1].split("::")[-1]: line.split()[0]
        for line in run.stdout.splitlines()
        if line.startswith(("PASSED ", "FAILED ", "ERROR "))
    }
    assert outcome == {
        "test_slow_may_start_a_process": "PASSED",
        "test_fast_uses_a_fixture_that_started_one": "ERROR",
        "test_fast_runs_a_command": "FAILED",
        "test_fast_starts_a_multiprocessing_child": "FAILED",
        "test_fast_starts_nothing": "PASSED",
    }, run.stdout
    assert "test_fast_uses_a_fixture_that_started_one starts processes in setup" in run.stdout
    assert "fixture 'server': subprocess.Popen: true" in run.stdout
    assert "test_fast_runs_a_command starts processes in its body" in run.stdout
    assert "multiprocessing Process.start" in run.stdout
