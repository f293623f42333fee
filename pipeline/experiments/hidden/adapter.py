"""Experiment ``hidden``: the noisily observed scalar system of MATH §2 (Theorem 4.1).

Cube axes ``(lam, noise_ratio, learner, k, T)``; the science is ``pipeline.models.hidden``.
Workers import this module only: the readers' parts import their modules when called.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from pipeline.core.errors import ConfigError
from pipeline.core.types import AxisRule, SettingRule, Settings, VariableSpec
from pipeline.experiments.base import BEST_FIT, Experiment, PackageReaders, at_least_one, positive
from pipeline.experiments.simulated_range import check_simulated_range, montecarlo_bound
from pipeline.models import hidden as model

if TYPE_CHECKING:  # imported where used: `emergence run` reads workflows before importing xarray
    import xarray as xr

EXAMPLE = """\
experiment = "hidden"
name = "example_hidden"
method = "{method}"
mc_samples = 40

[grid]
lam = [0.9, 1.0, 1.05]
noise_ratio = [0.5, 4.0]
learner = ["truncated_kalman", "best_fir"]
k = {{ range = [1, 4] }}
T = {horizons}
"""


class HiddenExperiment(PackageReaders):
    name = "hidden"
    package = "pipeline.experiments.hidden"
    axes = ("lam", "noise_ratio", "learner", "k", "T")
    axis_rules: Mapping[str, AxisRule] = {
        "lam": AxisRule("lam", "float", "state coefficient lam of x_{t+1} = lam x_t + w_t", "1"),
        "noise_ratio": AxisRule("noise_ratio", "float", "observation-noise ratio r/q", "1", check=positive),
        "learner": AxisRule("learner", "str", "learner (FIR filter on y)", "1", choices=model.LEARNERS),
        "k": AxisRule("k", "int", "filter length k", "taps", check=at_least_one),
        "T": AxisRule("T", "int", "horizon T", "steps", check=at_least_one),
    }
    extra_settings: Mapping[str, SettingRule] = {"fit": BEST_FIT}
    methods = ("exact", "montecarlo")
    horizon = "T"
    levels = "tau"

    def example_workflow(self, method: str) -> str:
        horizons = "[10, 30, 100]" if method == "montecarlo" else "[3, 1000, 100000]"
        return EXAMPLE.format(method=method, horizons=horizons)

    # -- the grid and the cube ------------------------------------------------

    def resolve_axes(self, axes: dict[str, np.ndarray], settings: Settings) -> dict[str, np.ndarray]:
        for axis, values in axes.items():
            if values.ndim == 0:
                raise ConfigError(f"grid.{axis}", values.item(), "must be a list, or a geom/linspace/range table")
        if settings.method == "montecarlo":
            lam = np.asarray(axes["lam"], dtype=np.float64)
            ratio = np.asarray(axes["noise_ratio"], dtype=np.float64)
            P = model.kalman(lam[:, None], ratio[None, :])[0]
            systems = (
                (f"lam = {lv!r}, noise_ratio = {rv!r}", [[lv]], [[P[i, j]]])
                for i, lv in enumerate(lam.tolist())
                for j, rv in enumerate(ratio.tolist())
            )
            check_simulated_range(systems, axes["T"], *montecarlo_bound([str(v) for v in axes["learner"]]))
        return axes

    def variables(self, settings: Settings) -> dict[str, VariableSpec]:
        dims = self.axes
        out = {
            "risk": VariableSpec(
                dims,
                "excess prediction risk R_T",
                "process-noise variance (q)",
                description="+inf where R_T overflows float64; see log10_risk",
            ),
            "log10_risk": VariableSpec(dims, "log10 of R_T", "log10(q)", description="-inf where R_T is exactly 0"),
            "kl_rate": VariableSpec(dims, "normalised KL rate R_T / (2 (P + r))", "nats per step"),
        }
        if settings.method == "montecarlo":
            out["risk_stderr"] = VariableSpec(dims, "Monte Carlo standard error of risk", "process-noise variance (q)")
        return out

    def static(self, coords: Mapping[str, np.ndarray], settings: Settings) -> xr.Dataset:
        import xarray as xr

        lam = np.asarray(coords["lam"], dtype=np.float64)[:, None]
        ratio = np.asarray(coords["noise_ratio"], dtype=np.float64)[None, :]
        P, K, a = model.kalman(lam, ratio)
        dims = ("lam", "noise_ratio")
        shape = (lam.size, ratio.size)
        return xr.Dataset(
            {
                "P": (
                    dims,
                    np.broadcast_to(P, shape).copy(),
                    {"long_name": "stationary one-step prediction variance P", "units": "process-noise variance (q)"},
                ),
                "kalman_gain": (
                    dims,
                    np.broadcast_to(K, shape).copy(),
                    {"long_name": "stationary Kalman gain K = lam P / (P + r)", "units": "1"},
                ),
                "a": (
                    dims,
                    np.broadcast_to(a, shape).copy(),
                    {"long_name": "Kalman predictor pole a = lam - K", "units": "1"},
                ),
            }
        )

    def kernel(self, coords: Mapping[str, np.ndarray], static: xr.Dataset, settings: Settings) -> dict[str, np.ndarray]:
        lam = np.asarray(coords["lam"], dtype=np.float64)
        ratio = np.asarray(coords["noise_ratio"], dtype=np.float64)
        k = np.asarray(coords["k"], dtype=np.int64)
        T = np.asarray(coords["T"], dtype=np.int64)
        per_learner = []
        for learner in coords["learner"]:
            if settings.method == "montecarlo":
                part = model.montecarlo_block(
                    lam, ratio, str(learner), k, T, seed=settings.seed, samples=settings.mc_samples
                )
            else:
                part = model.risk_block(lam, ratio, str(learner), k, T)
            per_learner.append(part)
        out = {name: np.stack([p[name] for p in per_learner], axis=2) for name in per_learner[0]}
        S = (static["P"].values + ratio[None, :])[:, :, None, None, None]
        out["kl_rate"] = out["risk"] / (2.0 * S)
        return out

    def estimate_seconds(self, coords: Mapping[str, np.ndarray], settings: Settings) -> float:
        """Measured on one core (benchmarks/): ~25 ns per truncated_kalman cell, ~(25 + 3 k) ns
        per best_fir cell; ~1 ms per kernel call. Monte Carlo simulates every trajectory to the
        largest T, once per learner: ~(300 + 35 F) ns per sample and step, F the learner's
        filters (its k values; times the T values for best_fir, whose filter depends on T);
        measured 0.21 s (truncated_kalman) and 0.31 s (best_fir) for 2 lam x 2 noise ratios,
        300 samples, k = 1, 2, 4, T = 10, 100, 500, warm (the first call of a process imports
        scipy.signal as well)."""
        k = np.asarray(coords["k"], dtype=np.float64)
        per = len(coords["lam"]) * len(coords["noise_ratio"]) * len(coords["T"])
        learners = [str(v) for v in coords["learner"]]
        if settings.method == "montecarlo":
            systems = len(coords["lam"]) * len(coords["noise_ratio"])
            steps = float(np.max(coords["T"])) * settings.mc_samples * systems
            filters = [k.size * (len(coords["T"]) if lr == "best_fir" else 1) for lr in learners]
            return 1e-3 + sum(steps * (300e-9 + 35e-9 * f) for f in filters)
        cost = sum(per * (25e-9 * k.size + (3e-9 * k.sum() if lr == "best_fir" else 0.0)) for lr in learners)
        return 1e-3 + float(cost)


HIDDEN: Experiment = HiddenExperiment()
