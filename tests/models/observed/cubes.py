"""Tiny observed cubes through the experiment's adapter (axes, static part, kernel) for the model tests."""

import numpy as np

from pipeline.core.types import Settings
from pipeline.experiments.observed.adapter import OBSERVED
from pipeline.models.spectra import parse_spectrum

FAMS = ("block", "full", "similarity")


def _settings(basis="jordan", seed=7, **kw):
    return Settings(experiment="observed", name="t", seed=seed, extra={"basis": basis}, **kw)


def _cube(spectra, T, draws=3, basis="jordan", d="all", seed=7, families=FAMS, **kw):
    s = _settings(basis, seed, **kw)
    axes = {
        "spectrum": np.array(spectra, dtype=object),
        "family": np.array(families, dtype=object),
        "d": np.array("all", dtype=object) if d == "all" else np.array(d),
        "T": np.array(T),
        "draw": np.array([draws]),
    }
    coords = OBSERVED.resolve_axes(axes, s)
    static = OBSERVED.static(coords, s)
    return coords, static, s


def _kernel(coords, static, s):
    """The kernel's output for the default learner (``learner_family = same``), with the
    learner_family axis (size 1) dropped: the layout of MATH section 1.3's cube."""
    out = OBSERVED.kernel(coords, static, s)
    assert all(v.shape[2] == 1 for v in out.values())
    return {k: v[:, :, 0] for k, v in out.items()}


def _stored(static, text, fam):
    sp = parse_spectrum(text)
    n = sp.n
    st_ = static.sel(spectrum=text, family=fam)
    D = int(st_["family_dim"])
    A = static["system"].sel(spectrum=text).values[:n, :n]
    B = st_["learner_basis"].values[:D, :n, :n]
    H = st_["perturbation"].values[:, :n, :n]
    return A, B, H
