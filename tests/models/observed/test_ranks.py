"""Tests of pipeline.models.observed.ranks: critical d, theory vs numerical rank vs bounded (MATH.md §1.4)."""

import numpy as np
import scipy.linalg as sla
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from pipeline.models import observed as om
from pipeline.models.spectra import critical_d_theory, parse_spectrum
from tests.models.observed.cubes import FAMS

_real = st.sampled_from([0.5, -0.7, 0.3, 1.0, -1.0, 1.1])


_pair = st.tuples(st.sampled_from([0.6, 1.0, 1.03]), st.sampled_from([30.0, 100.0]))


_sizes = st.lists(st.integers(1, 2), min_size=1, max_size=2)


_term = st.one_of(st.tuples(_real, _sizes), st.tuples(_pair, _sizes))


def _text(terms):
    parts = []
    for eig, sizes in terms:
        e = f"{eig[0]}@{eig[1]}" if isinstance(eig, tuple) else f"{eig}"
        parts.append(e + (f"^{sizes[0]}" if len(sizes) == 1 else "^[" + ",".join(map(str, sizes)) + "]"))
    return ", ".join(parts)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_term, min_size=1, max_size=3), st.sampled_from(FAMS), st.integers(0, 10**6))
def test_critical_d_rank_and_bounded(terms, fam, seed):
    n = sum(sum(sz) * (2 if isinstance(e, tuple) else 1) for e, sz in terms)
    assume(n <= 5)
    text = _text(terms)
    sp = parse_spectrum(text)
    A = om.system(sp, "random", seed)
    Q = om.basis_change(sp, "random", seed)
    # unstable invariant subspace of A, from an ordered real Schur form of A itself
    _, Z, k = sla.schur(A, output="real", sort=lambda x, y=0.0: abs(complex(x, y)) > 0.85)
    Vu = Z[:, :k]
    assert k == sp.n_unstable
    E = om.family_space(A, sp, fam, Q)
    crit = critical_d_theory(sp, fam)
    if len(E):
        restr = np.array([(M @ Vu).ravel() for M in E])
        rank = np.linalg.matrix_rank(restr, tol=1e-7) if restr.size else 0
    else:
        rank = 0
    assert rank == crit
    prob = om.problem_from_matrices(
        text,
        fam,
        om.learner_basis(text, fam, seed, "random"),
        om.perturbations(text, fam, seed, 3, "random"),
        Q,
    )
    b = om.bounded(prob)
    expect = np.arange(prob.D + 1) >= crit
    assert np.array_equal(b, np.broadcast_to(expect[:, None], b.shape))
