"""Fitted cells: the same bits whatever the grid, the chunking or the CPU; the variance
term against MATH.md 6.5 (final prediction error)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline.models.fitted import cells
from pipeline.models.fitted import least_squares as ls
from pipeline.models.fitted import problem as pr
from pipeline.models.observed import learner_basis
from pipeline.models.spectra import parse_spectrum

REPO = Path(__file__).resolve().parents[3]


def _problems(spectrum):
    n = parse_spectrum(spectrum).n
    return {
        "leading": pr.leading_problem(spectrum, np.eye(n)),
        "full": pr.fit_problem(spectrum, "full", learner_basis(spectrum, "full", 2), np.eye(n)),
    }


@pytest.mark.parametrize("spectrum", ["1.1^2, 0.4", "1.0^2, 0.5"])
def test_cells_do_not_depend_on_the_grid_d_or_family(spectrum):
    key = (spectrum, 1)
    T, m = [2, 9, 16, 40], [1, 4, 33]
    probs = _problems(spectrum)
    ds = {"leading": [1, 4, 6, 9], "full": [2, 5, 9]}
    full = {f: cells.evaluate(p, cells.training_set(spectrum, 3, key, T, m), ds[f]) for f, p in probs.items()}
    rng = np.random.default_rng(1)
    for _trial in range(3):
        Ts = sorted(rng.choice(T, size=rng.integers(1, 5), replace=False).tolist())
        ms = sorted(rng.choice(m, size=rng.integers(1, 4), replace=False).tolist())
        fam = str(rng.choice(list(probs)))
        dsub = sorted(rng.choice(ds[fam], size=rng.integers(1, len(ds[fam]) + 1), replace=False).tolist())
        sub = cells.evaluate(probs[fam], cells.training_set(spectrum, 3, key, Ts, ms), dsub)
        ref = full[fam]
        jj = [T.index(t) for t in Ts]
        ii = [m.index(x) for x in ms]
        qq = [ds[fam].index(d) for d in dsub]
        sel = np.ix_(jj, ii, qq)
        for name in ("phi", "risk", "log10_risk", "underdetermined", "bits"):
            assert np.array_equal(getattr(sub, name), getattr(ref, name)[sel], equal_nan=name == "phi")


_SCRIPT = """
import json, sys
import numpy as np
from pipeline.models.fitted import cells, problem as pr
from pipeline.models.observed import learner_basis
out = {}
for spectrum, T, learner in [("1.1^4, 0.4^[1,1,1]", [70, 400], "leading"), ("1.0^3, 0.5@60", [50, 3000], "full")]:
    n = 7 if learner == "leading" else 5
    B = learner_basis(spectrum, "full", 2) if learner == "full" else None
    prob = pr.leading_problem(spectrum, np.eye(n)) if B is None else pr.fit_problem(spectrum, "full", B, np.eye(n))
    mo = cells.training_set(spectrum, 7, (spectrum, 0), T, [3, 40])
    f = cells.evaluate(prob, mo, [4, 9, n * n])
    out[spectrum] = {"phi": np.nan_to_num(f.phi).tolist(), "log10": f.log10_risk.tolist(),
                     "S": mo.S_hi.tolist(), "W": mo.W_hi.tolist()}
json.dump(out, sys.stdout)
"""


def _run(env_extra):
    env = dict(os.environ, **env_extra)
    done = subprocess.run([sys.executable, "-c", _SCRIPT], cwd=REPO, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.slow
def test_another_cpus_code_paths_agree():
    """numpy without its AVX-512 kernels and OpenBLAS's Haswell kernels give the same cells
    (the statistics are elementwise and the fit is ball arithmetic: bit for bit here; the
    contract is 1e-12)."""
    here = _run({})
    other = _run({"NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL", "OPENBLAS_CORETYPE": "Haswell"})
    for spectrum, ref in here.items():
        for name, value in ref.items():
            a, b = np.array(value), np.array(other[spectrum][name])
            assert np.allclose(a, b, rtol=1e-12, atol=0), (spectrum, name)


def test_final_prediction_error():
    """Stable system, full family: (m T / d) E[R_T - bias] -> 1 (bias = 0 at d = n^2)."""
    spectrum, T, m = "0.6, -0.3", 100, 20
    prob = pr.fit_problem(spectrum, "full", learner_basis(spectrum, "full", 2), np.eye(2))
    fits = 300
    risk = np.array(
        [
            cells.evaluate(prob, cells.training_set(spectrum, 9, (spectrum, f), [T], [m]), [4]).risk[0, 0, 0]
            for f in range(fits)
        ]
    )
    scaled = risk * m * T / 4
    se = scaled.std(ddof=1) / np.sqrt(fits)
    assert abs(scaled.mean() - 1.0) < 3 * se + 0.02, (scaled.mean(), se)


def test_uncertifiable_cells_raise_instead_of_returning_garbage(monkeypatch):
    spectrum = "1.1^4, 0.4^[1,1,1]"
    prob = pr.leading_problem(spectrum, np.eye(7))
    mo = cells.training_set(spectrum, 1, (spectrum, 0), [300], [5])
    monkeypatch.setattr(cells, "MAX_BITS", 200)
    with pytest.raises(ls.PrecisionError, match="not certified"):
        cells.evaluate(prob, mo, [49])
