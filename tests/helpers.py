"""What the tests share: small workflows, running quietly, the real command line (blocking or
not), waiting on a condition, cube comparison."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any, TypeVar

import numpy as np
import xarray as xr

from pipeline.driver.engine import RunReport, run
from pipeline.driver.setup import RunSetup
from pipeline.driver.where import Where
from pipeline.experiments import get_experiment
from pipeline.plan.config import Workflow, parse_workflow, toml_text
from pipeline.storage.location import StoreLocation

REPO = Path(__file__).resolve().parents[1]
VOLATILE_ATTRS = ("created", "git_commit", "history", "workflow_file")
LAYOUT_ATTRS = ("workflow", "block_chunks", "blocks_total", "tasks_total")

HIDDEN_GRID: dict[str, Any] = {
    "lam": [0.9, 1.0, 1.05],
    "noise_ratio": [0.5, 4.0],
    "learner": ["truncated_kalman", "best_fir"],
    "k": {"range": [1, 6]},
    "T": [1, 2, 10, 1000, 100000],
}
HIDDEN_SPECTRUM_GRID: dict[str, Any] = {
    "spectrum": ["1.0", "1.0^2", "1.0, 0.5", "0.9"],
    "noise_ratio": [0.5, 4.0],
    "learner": ["truncated_kalman", "best_fir"],
    "k": {"range": [1, 4]},
    "T": [1, 3, 1000, 100000, 1000000],
}
OBSERVED_GRID: dict[str, Any] = {
    "spectrum": ["1.0^2, 0.5", "1.05@30"],
    "family": ["block", "similarity"],
    "d": "all",
    "T": [10, 1000],
    "draw": 2,
}

OBSERVED_FITTED_GRID: dict[str, Any] = {
    "spectrum": ["1.0^2, 0.5", "0.5"],
    "learner_family": ["leading"],
    "d": [1, 4, 9],
    "T": [5, 10, 20],
    "trajectories": [2, 8],
    "fits": 6,
}


def hidden(name: str = "small", chunks: Mapping[str, int] | None = None, **changes: Any) -> str:
    """TOML text of a small hidden workflow; ``changes`` replace grid axes or top-level keys."""
    return _workflow("hidden", name, HIDDEN_GRID, chunks, changes)


def hidden_spectrum(name: str = "hspec", chunks: Mapping[str, int] | None = None, **changes: Any) -> str:
    """TOML text of a small hidden workflow over spectra (``experiment = "hidden"`` with a
    ``spectrum`` axis); ``changes`` replace grid axes or top-level keys."""
    return _workflow("hidden", name, HIDDEN_SPECTRUM_GRID, chunks, changes)


def observed(name: str = "obs", chunks: Mapping[str, int] | None = None, **changes: Any) -> str:
    """TOML text of a small observed workflow; ``changes`` replace grid axes or top-level keys."""
    return _workflow("observed", name, OBSERVED_GRID, chunks, changes, optional=("learner_family",))


def observed_fitted(name: str = "obsfit", chunks: Mapping[str, int] | None = None, **changes: Any) -> str:
    """TOML text of a small fitted observed workflow (``experiment = "observed"``, ``fit =
    "least_squares"``); ``changes`` replace grid axes or top-level keys."""
    changes = {"fit": "least_squares", **changes}
    return _workflow("observed", name, OBSERVED_FITTED_GRID, chunks, changes, optional=("family", "draw"))


def _workflow(
    experiment: str,
    name: str,
    grid: Mapping[str, Any],
    chunks: Mapping[str, int] | None,
    changes: Mapping[str, Any],
    optional: tuple[str, ...] = (),
) -> str:
    """``optional``: grid axes with a default, absent from ``grid`` unless changed."""
    grid = dict(grid)
    top: dict[str, Any] = {"experiment": experiment, "name": name}
    for key, value in changes.items():
        (grid if key in grid or key in optional else top)[key] = value
    return toml_text(top | {"grid": grid} | ({"chunks": dict(chunks)} if chunks else {}))


def run_quietly(text: str | Workflow, out: Path | str, where: Where | None = None, **kwargs: Any) -> RunReport:
    """Run a workflow into ``out`` with no progress bar and no messages."""
    wf = text if isinstance(text, Workflow) else parse_workflow(text)
    setup = RunSetup(wf, StoreLocation(str(out)), where or Where.local(1), **kwargs)
    return run(setup, progress=False, say=lambda _: None)


def direct(text: str) -> dict[str, np.ndarray]:
    """The whole grid computed in one kernel call in this process (the reference)."""
    wf = parse_workflow(text)
    experiment = get_experiment(wf.experiment)
    return experiment.kernel(wf.coords, experiment.static(wf.coords, wf.settings), wf.settings)


def comparable(ds: xr.Dataset, layout: bool = True) -> xr.Dataset:
    """A loaded copy without attributes that legitimately differ between runs
    (and, with ``layout=False``, between chunkings of the same grid)."""
    out = ds.load().copy()
    drop = VOLATILE_ATTRS + (() if layout else LAYOUT_ATTRS)
    out.attrs = {k: v for k, v in out.attrs.items() if k not in drop}
    return out


def assert_cubes_identical(a: Path | str | xr.Dataset, b: Path | str | xr.Dataset, layout: bool = True) -> None:
    """Same values, bits, dtypes, coordinates and attributes (and, with ``layout``, the same
    chunking on disk)."""
    da, db = (xr.open_zarr(x) if not isinstance(x, xr.Dataset) else x for x in (a, b))
    xr.testing.assert_identical(comparable(da, layout), comparable(db, layout))
    for name in da.variables:
        assert da[name].dtype == db[name].dtype, name
        if layout:
            assert da[name].encoding.get("chunks") == db[name].encoding.get("chunks"), name


def emergence(
    *args: str, env: Mapping[str, str] | None = None, timeout: float = 240, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the real command line in a subprocess and wait for it."""
    return subprocess.run(
        _cli(args), capture_output=True, text=True, timeout=timeout, env=_environ(env), cwd=cwd or REPO
    )


class RunningCommand:
    """The real command line running in a session of its own (from ``start_emergence``):
    ``signal_group`` reaches it and every process it started (forkserver, local workers), as a
    terminal's Ctrl-C would. Its output goes to unnamed temporary files, so it never blocks on
    a pipe nobody reads."""

    def __init__(self, process: subprocess.Popen[str], stdout: IO[str], stderr: IO[str]) -> None:
        self.process = process
        self._stdout, self._stderr = stdout, stderr

    @property
    def pid(self) -> int:
        return self.process.pid

    def poll(self) -> int | None:
        """Its exit code, or None while it runs."""
        return self.process.poll()

    def running(self) -> bool:
        return self.poll() is None

    def send_signal(self, sig: int = signal.SIGKILL) -> None:
        """Signal the command's own process only (what it started is left to notice)."""
        self.process.send_signal(sig)

    def signal_group(self, sig: int = signal.SIGKILL) -> None:
        """Signal the command and every process of its session."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, sig)

    def finish(self, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        """Wait for the command to end: its exit code and everything it printed."""
        self.process.wait(timeout=timeout)
        return subprocess.CompletedProcess(
            self.process.args, self.process.returncode, _read(self._stdout), _read(self._stderr)
        )

    def output(self) -> str:
        """What it has printed so far (for the message of a failed wait)."""
        return f"stdout:\n{_read(self._stdout)}\nstderr:\n{_read(self._stderr)}"


def _read(stream: IO[str]) -> str:
    stream.seek(0)
    return stream.read()


@contextlib.contextmanager
def start_emergence(
    *args: str, env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> Iterator[RunningCommand]:
    """Start the real command line in a subprocess without waiting for it. Whatever of its
    session still runs when the ``with`` block ends is killed."""
    with tempfile.TemporaryFile("w+") as stdout, tempfile.TemporaryFile("w+") as stderr:
        process = subprocess.Popen(
            _cli(args),
            cwd=cwd or REPO,
            env=_environ(env),
            stdout=stdout,
            stderr=stderr,
            text=True,
            start_new_session=True,
        )
        command = RunningCommand(process, stdout, stderr)
        try:
            yield command
        finally:
            command.signal_group(signal.SIGKILL)
            process.wait(timeout=30)


def _cli(args: tuple[str, ...]) -> list[str]:
    return [sys.executable, "-m", "pipeline.cli", *args]


def _environ(env: Mapping[str, str] | None) -> dict[str, str]:
    return dict(os.environ) | dict(env or {})


T = TypeVar("T")


def wait_for(
    condition: Callable[[], T],
    timeout: float,
    what: str | Callable[[], str],
    *,
    command: RunningCommand | subprocess.Popen[Any] | None = None,
    interval: float = 0.05,
) -> T:
    """Poll ``condition`` every ``interval`` s until it returns something true, and return that.

    Fails loudly instead of falling through: ``TimeoutError`` naming ``what`` (or what it returns,
    asked then) and the last value seen once ``timeout`` s have passed, and at once if
    ``command`` (the process that should bring the condition about) has ended first, with what
    it printed.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if command is not None and command.poll() is not None:
            printed = command.output() if isinstance(command, RunningCommand) else ""
            raise AssertionError(
                f"{_say(what)}: never came; the process ended first (exit {command.poll()})\n{printed}"
            )
        if time.monotonic() > deadline:
            raise TimeoutError(f"{_say(what)}: not after {timeout:g} s (last seen: {value!r})")
        time.sleep(interval)


def _say(what: str | Callable[[], str]) -> str:
    return what if isinstance(what, str) else what()


def write_workflow(folder: Path, text: str, name: str = "wf.toml") -> Path:
    path = folder / name
    path.write_text(text)
    return path


def done_count(out: Path | str) -> int:
    """Blocks marked done in a store (0 while it does not exist yet)."""
    from pipeline.storage import ledger

    try:
        return ledger.count_done(StoreLocation(str(out)))
    except Exception:  # the store is being created
        return 0


def one_clean_line(err: str) -> str:
    """The single line of an error message (no traceback)."""
    lines = [line for line in err.strip().splitlines() if line]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# --------------------------------------------------------------------------- synthetic cubes

DECADES = np.array([10, 100, 1000, 10**4, 10**5, 10**6, 10**7, 10**8])
SYNTHETIC_SPECTRA = ["1.0^2, 0.5", "1.0^[1,1]", "0.9^2, 0.5"]
SYNTHETIC_FAMILIES = ["block", "full", "similarity"]
SYNTHETIC_FAMILY_DIM = np.array([[5, 9, 6], [4, 4, 0], [5, 9, 6]])
SYNTHETIC_THEORY = np.array([[4, 6, 4], [4, 4, 0], [0, 0, 0]])


def synthetic_hidden(k_max: int = 12) -> xr.Dataset:
    """A hidden cube with known answers. truncated_kalman: R = 10^(log10 T - k/2), so
    k*(T; tau=1) = 2 log10 T exactly (slope 2/ln 10) and g = 1; best_fir: R = 3 * 10^(-k/2),
    bounded (k* constant, g = 0); a = 0.8."""
    k = np.arange(1, k_max + 1)
    logT = np.log10(DECADES.astype(float)).round()
    trunc = logT[None, :] - k[:, None] / 2.0
    best = np.log10(3.0) - k[:, None] / 2.0 + 0.0 * logT[None, :]
    log10_risk = np.stack([trunc, best])[None, None]  # lam nr learner k T
    dims = ("lam", "noise_ratio", "learner", "k", "T")
    ds = xr.Dataset(
        {
            "log10_risk": (dims, log10_risk),
            "risk": (dims, 10.0**log10_risk),
            "kl_rate": (dims, 10.0**log10_risk / 2.0),
            "a": (("lam", "noise_ratio"), [[0.8]]),
            "P": (("lam", "noise_ratio"), [[1.0]]),
            "kalman_gain": (("lam", "noise_ratio"), [[0.5]]),
        },
        coords={
            "lam": [1.0],
            "noise_ratio": [4.0],
            "learner": np.array(["truncated_kalman", "best_fir"], dtype=object),
            "k": k,
            "T": DECADES,
        },
    )
    ds.attrs.update(
        experiment="hidden", workflow='experiment = "hidden"\nname = "synthetic_hidden"\n', workflow_fingerprint="f00"
    )
    return ds


def synthetic_observed(late_draw: bool = False) -> xr.Dataset:
    """An observed cube with known answers: bounded iff d >= d* (MATH 1.4 table); an unbounded
    risk grows like T^3, a bounded one is flat. With ``late_draw``, draw 1 of (1.0^2, 0.5; block)
    stays unbounded at d = d* (its critical d one higher)."""
    d = np.arange(0, 10)
    T = np.array([10, 100, 1000])
    crit = np.broadcast_to(SYNTHETIC_THEORY[:, :, None, None], (3, 3, 1, 2)).copy()
    if late_draw:
        crit[0, 0, 0, 1] += 1
    bounded = d[None, None, :, None] >= crit  # spectrum family d draw
    defined = d[None, None, :, None] <= SYNTHETIC_FAMILY_DIM[:, :, None, None]
    slope = np.where(bounded, 0.0, 3.0)[..., None, :]  # s f d T draw
    log10_risk = slope * np.log10(T)[None, None, None, :, None] - 1.0
    log10_risk = np.where(defined[..., None, :], log10_risk, np.nan)
    at_dim = (d[None, None, :] == SYNTHETIC_FAMILY_DIM[:, :, None])[..., None, None]
    log10_risk = np.where(at_dim, -np.inf, log10_risk)
    dims = ("spectrum", "family", "d", "T", "draw")
    ds = xr.Dataset(
        {
            "log10_risk": (dims, log10_risk),
            "risk": (dims, 10.0**log10_risk),
            "kl_rate": (dims, 10.0**log10_risk / 2),
            "bounded": (("spectrum", "family", "d", "draw"), bounded & defined),
            "critical_d_theory": (("spectrum", "family"), SYNTHETIC_THEORY.astype(np.int64)),
            "family_dim": (("spectrum", "family"), SYNTHETIC_FAMILY_DIM),
        },
        coords={
            "spectrum": np.array(SYNTHETIC_SPECTRA, dtype=object),
            "family": np.array(SYNTHETIC_FAMILIES, dtype=object),
            "d": d,
            "T": T,
            "draw": np.arange(2),
            "n": ("spectrum", [3, 2, 3]),
            "n_unstable": ("spectrum", [2, 2, 0]),
            "spectral_radius": ("spectrum", [1.0, 1.0, 0.9]),
        },
    )
    ds.attrs.update(
        experiment="observed",
        workflow='experiment = "observed"\nname = "synthetic_observed"\n',
        workflow_fingerprint="f01",
    )
    return ds
