"""Results agree across CPUs: the numeric tests pass again in a fresh interpreter that takes
another CPU's code paths, as on a machine without AVX-512 (an AMD EPYC, say) or an older one.

Bits are promised on one machine only; a test that compares bit for bit with anything not
computed in the same run, or holds a float to tighter than its oracle can honour, fails here
(when this machine has the features switched off: numpy's ``NPY_DISABLE_CPU_FEATURES`` and
OpenBLAS's ``OPENBLAS_CORETYPE`` choose other kernels in that process alone). The whole suite
under these settings: ``make test-other-cpu``.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

from tests.helpers import REPO

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="the switches name x86 features"),
]

OTHER_CPUS = {
    "no AVX-512": {"NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL", "OPENBLAS_CORETYPE": "Haswell"},
    "x86-64-v2": {"NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL X86_V3", "OPENBLAS_CORETYPE": "Prescott"},
}
NUMERIC_TESTS = ("tests/models", "tests/experiments", "tests/driver/test_engine.py")
"""Kernels against their oracles, references and stored values; cubes against MATH §2.5."""

FEATURES = "from numpy._core._multiarray_umath import __cpu_features__ as f; print(f.get('X86_V4', False))"


@pytest.mark.parametrize("cpu", sorted(OTHER_CPUS))
def test_numeric_tests_pass_on_other_cpu_code_paths(cpu):
    env = dict(os.environ, **OTHER_CPUS[cpu])
    avx512 = subprocess.run([sys.executable, "-c", FEATURES], env=env, capture_output=True, text=True, check=True)
    assert avx512.stdout.strip() == "False", "numpy still dispatches to its AVX-512 kernels"
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not slow", *NUMERIC_TESTS],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
