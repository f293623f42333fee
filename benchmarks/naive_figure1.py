"""The ``figure1`` workflow written the way a researcher would, as one command (issue 20, item 7).

Per cell (spectrum, k, T, m, fit): simulate its ``m`` trajectories of ``T`` steps with numpy,
fit the top-left ``k x k`` block by ``np.linalg.lstsq`` on the explicit design matrix, and
evaluate the risk ``trace((A - Ahat) Sigmabar_T (A - Ahat)')`` in float64 (``Sigmabar_T`` by
its O(T) recursion). No sharing between cells, no exact arithmetic.

    python benchmarks/naive_figure1.py [--workflow workflows/figure1.toml] [--every N]

``--every N`` computes every N-th cell only and extrapolates the time to all cells; the last
line printed is JSON: ``{"cells", "computed", "seconds", "seconds_all"}``.
"""

from __future__ import annotations

import argparse
import json
import time
import tomllib
from pathlib import Path

import numpy as np

from pipeline.models.spectra import parse_spectrum


def _axis(spec: object) -> list[int]:
    if isinstance(spec, dict) and "range" in spec:
        lo, hi = spec["range"]
        return list(range(int(lo), int(hi) + 1, int(spec.get("step", 1))))
    return [int(v) for v in spec]  # type: ignore[attr-defined]


def sigmabar(A: np.ndarray, T: int) -> np.ndarray:
    """``(1/T) sum_{t<T} Sigma_t``, ``Sigma_0 = 0``, ``Sigma_{t+1} = A Sigma_t A' + I``."""
    n = A.shape[0]
    S = np.zeros((n, n))
    total = np.zeros((n, n))
    for _ in range(T):
        total += S
        S = A @ S @ A.T + np.eye(n)
    return total / T


def cell(A: np.ndarray, T: int, m: int, k: int, seed: int) -> float:
    """One cell: simulate, least squares on the explicit design, float64 risk."""
    n = A.shape[0]
    rng = np.random.default_rng(seed)
    x = np.zeros((m, T + 1, n))
    w = rng.standard_normal((m, T, n))
    for t in range(T):
        x[:, t + 1] = x[:, t] @ A.T + w[:, t]
    X = np.zeros((m * T * k, k * k))  # rows (trajectory, t, row r), columns the k x k block
    for r in range(k):
        X[r::k, r * k : (r + 1) * k] = x[:, :T, :k].reshape(m * T, k)
    y = x[:, 1:, :k].reshape(-1)
    phi = np.linalg.lstsq(X, y, rcond=None)[0]
    Ahat = np.zeros((n, n))
    Ahat[:k, :k] = phi.reshape(k, k)
    D = A - Ahat
    return float(np.trace(D @ sigmabar(A, T) @ D.T))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workflow", default=str(Path(__file__).resolve().parents[1] / "workflows" / "figure1.toml"))
    p.add_argument("--every", type=int, default=1, help="compute every N-th cell and extrapolate")
    args = p.parse_args()
    raw = tomllib.loads(Path(args.workflow).read_text())
    grid = raw["grid"]
    cells = [
        (s, f, T, m, round(d**0.5))
        for s in grid["spectrum"]
        for f in range(int(grid["fits"]))
        for T in _axis(grid["T"])
        for m in _axis(grid["trajectories"])
        for d in _axis(grid["d"])
    ]
    chosen = cells[:: args.every]
    risks = []
    start = time.perf_counter()
    for i, (s, _fit, T, m, k) in enumerate(chosen):
        A = parse_spectrum(s).jordan_matrix()
        risks.append(cell(A, T, m, k, seed=i))
    seconds = time.perf_counter() - start
    print(f"mean log(1 + risk) of {len(chosen)} cells: {float(np.mean(np.log1p(risks))):.3f}")
    out = {"cells": len(cells), "computed": len(chosen), "seconds": seconds}
    out["seconds_all"] = seconds * len(cells) / len(chosen)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
