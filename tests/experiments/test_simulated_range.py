"""Tests of pipeline.experiments.simulated_range: the states a Monte Carlo would simulate, and
the grids ``method = "montecarlo"`` refuses (one line, exit 2, nothing written).

Oracles: the O(T) covariance recursion ``Sigma_{t+1} = A Sigma_t A' + I``, and the scalar
closed form ``lam^(2T) P + (lam^(2T) - 1) / (lam^2 - 1)`` in mpmath.
"""

from __future__ import annotations

import math
from pathlib import Path

import mpmath as mp
import numpy as np
import pytest

from pipeline.cli import main
from pipeline.core.errors import ConfigError
from pipeline.experiments.simulated_range import (
    DIFFERENCE_BOUND,
    STATE_BOUND,
    check_simulated_range,
    montecarlo_bound,
    rms_state,
)
from pipeline.models import hidden
from pipeline.models.hidden import montecarlo_block
from pipeline.models.spectra import parse_spectrum
from pipeline.plan.config import parse_workflow
from tests import helpers
from tests.helpers import one_clean_line, write_workflow


def _loop(A: np.ndarray, T: int, P0: np.ndarray | None) -> float:
    S = np.zeros_like(A) if P0 is None else np.array(P0, dtype=float)
    for _ in range(T):
        S = A @ S @ A.T + np.eye(A.shape[0])
    return math.sqrt(float(np.trace(S)))


@pytest.mark.parametrize("seed", range(6))
def test_rms_state_equals_the_covariance_recursion(seed):
    rng = np.random.default_rng(seed)
    n = 1 + seed % 4
    A = rng.standard_normal((n, n)) * (0.5 + 0.15 * seed) / math.sqrt(n)
    L = rng.standard_normal((n, n))
    for P0 in (None, L @ L.T):
        for T in (0, 1, 2, 3, 7, 8, 33, 64, 65, 127):
            assert rms_state(A, T, P0) == pytest.approx(_loop(A, T, P0), rel=1e-12), (seed, T)


@pytest.mark.parametrize(("lam", "T"), [(1.5, 600), (-1.2, 1000), (1.01, 2**40), (0.9, 2**52), (1.0, 10**6)])
def test_rms_state_of_a_scalar_system_equals_the_closed_form(lam, T):
    P = float(hidden.kalman(lam, 2.0)[0])
    with mp.workdps(40):
        lt = mp.mpf(lam) ** (2 * T)
        geo = mp.mpf(T) if lam == 1.0 else (lt - 1) / (mp.mpf(lam) ** 2 - 1)
        exact = mp.sqrt(lt * P + geo)
    got = rms_state([[lam]], T, [[P]])
    if exact > mp.mpf("1e308"):
        assert got == math.inf
    else:
        assert got == pytest.approx(float(exact), rel=1e-9)


def test_rms_state_is_inf_beyond_float64_and_ignores_an_orthogonal_basis():
    assert rms_state([[10.0]], 400) == math.inf
    assert rms_state(parse_spectrum("1.0@60, 1.02^2").jordan_matrix(), 2**45) == math.inf
    J = parse_spectrum("1.0^3, 0.5, 1.01@30").jordan_matrix()
    Q, _ = np.linalg.qr(np.random.default_rng(1).standard_normal((J.shape[0],) * 2))
    assert rms_state(Q @ J @ Q.T, 500) == pytest.approx(rms_state(J, 500), rel=1e-6)


def test_check_names_the_system_and_the_bound():
    check_simulated_range([("a", [[1.5]], None)], [10, 400], *montecarlo_bound(["truncated_kalman"]))
    with pytest.raises(ConfigError) as err:
        check_simulated_range([("ok", [[0.5]], None), ("lam = 1.5", [[1.5]], None)], [10, 600], STATE_BOUND, "why")
    msg = str(err.value)
    assert msg.startswith("grid.T = 600: ") and "lam = 1.5" in msg and "1e+100 (why)" in msg and "4.04e+105" in msg
    assert montecarlo_bound(["truncated_kalman", "best_fir"])[0] == DIFFERENCE_BOUND


def test_the_best_fir_bound_is_where_montecarlo_still_agrees():
    """Below the bound (T = 30, states ~2e5) best_fir's Monte Carlo agrees with the exact risk;
    far past it (T = 150, states ~2e26) it is garbage: the bound refuses before that."""
    exact = float(hidden.risk_block([1.5], [1.0], "best_fir", [1], [30])["risk"].item())
    out = montecarlo_block([1.5], [1.0], "best_fir", [1], [30, 150], seed=0, samples=16)
    mc, se = out["risk"][0, 0, 0], out["risk_stderr"][0, 0, 0]
    assert abs(mc[0] - exact) <= 4 * se[0] and mc[1] > 1e6 * exact
    assert rms_state([[1.5]], 30) <= DIFFERENCE_BOUND < rms_state([[1.5]], 150)


REFUSED = {
    "hidden truncated_kalman": helpers.hidden(
        method="montecarlo", lam=[0.9, 1.5], learner=["truncated_kalman"], T=[10, 600], k=[1]
    ),
    "hidden best_fir": helpers.hidden(method="montecarlo", lam=[1.5], learner=["best_fir"], T=[10, 60], k=[1]),
    "hidden_spectrum": helpers.hidden_spectrum(
        method="montecarlo", spectrum=["0.5", "1.0^3"], learner=["best_fir"], T=[10, 5000], k=[1]
    ),
    "observed": helpers.observed(method="montecarlo", spectrum=["1.2, 0.5"], family=["block"], T=[10, 1300]),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_an_explosive_montecarlo_grid_is_refused_up_front(case, tmp_path, capsys):
    wf = write_workflow(tmp_path, REFUSED[case])
    out = tmp_path / "out.zarr"
    assert main(["run", str(wf), "--out", str(out), "--no-progress"]) == 2
    line = one_clean_line(capsys.readouterr().err)
    assert line.startswith("emergence: error: grid.T = ") and 'method = "montecarlo"' in line, line
    assert not out.exists() and not Path(f"{out}.lock").exists()
    exact = REFUSED[case].replace('method = "montecarlo"', 'method = "exact"')
    assert parse_workflow(exact).coords["T"].max() > 10  # the same grid, exact: accepted


def test_the_test_grids_of_every_montecarlo_are_accepted():
    for text in (
        helpers.hidden(method="montecarlo", T=[10, 100]),
        helpers.hidden_spectrum(method="montecarlo", T=[10, 100]),
        helpers.observed(method="montecarlo"),
    ):
        parse_workflow(text)
