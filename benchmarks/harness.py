"""Timing, machine description, load watching and process-tree memory sampling."""

from __future__ import annotations

import contextlib
import datetime as _dt
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------------------
# figures


@dataclass
class Figure:
    """One reported number, its target and how it was obtained."""

    name: str
    value: float
    unit: str
    op: str | None = None  # ">=" or "<=" (None: report only)
    bound: float | None = None
    note: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def target(self) -> str:
        if self.op is None or self.bound is None:
            return "report"
        b = self.bound
        exp = math.floor(math.log10(b)) if b > 0 else 0
        if b >= 1e4 and b == 10**exp:
            text = f"10^{exp}"
        elif b >= 1e4:
            text = f"{b / 10**exp:g}·10^{exp}"
        else:
            text = f"{b:g}"
        return f"{self.op} {text}"

    @property
    def passed(self) -> bool | None:
        if self.op is None or self.bound is None:
            return None
        return self.value >= self.bound if self.op == ">=" else self.value <= self.bound

    def as_json(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "unit": self.unit,
            "target": self.target,
            "passed": self.passed,
            "note": self.note,
            "details": self.details,
        }


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def alternate(
    sides: Mapping[str, Callable[[], Any]], repeats: int, between: Callable[[], None] | None = None
) -> dict[str, list[float]]:
    """Time every side ``repeats`` times, interleaved (A B C, then C B A, ...).

    Returns the wall times (seconds) per side. ``between`` runs untimed before
    every call (e.g. to clear caches).
    """
    names = list(sides)
    times: dict[str, list[float]] = {n: [] for n in names}
    for rep in range(repeats):
        order = names if rep % 2 == 0 else names[::-1]
        for name in order:
            if between is not None:
                between()
            t0 = time.perf_counter()
            sides[name]()
            times[name].append(time.perf_counter() - t0)
    return times


def fmt(value: float) -> str:
    if value != value:  # NaN
        return "nan"
    if value == 0:
        return "0"
    a = abs(value)
    if a >= 1e5 or a < 1e-2:
        return f"{value:.3g}"
    if a >= 100:
        return f"{value:.0f}"
    return f"{value:.3g}"


def table(figures: Sequence[Figure]) -> str:
    """Markdown table of the figures."""
    rows = [("figure", "value", "unit", "target", "pass", "how")]
    for f in figures:
        ok = {True: "yes", False: "NO", None: "-"}[f.passed]
        rows.append((f"`{f.name}`", fmt(f.value), f.unit, f.target, ok, f.note))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    lines = []
    for i, r in enumerate(rows):
        cells = [c.ljust(w) for c, w in zip(r[:-1], widths, strict=False)] + [r[-1]]
        lines.append("| " + " | ".join(cells) + " |")
        if i == 0:
            lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|---|")
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# the machine and its load


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(lib: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(lib)
    except metadata.PackageNotFoundError:
        return "absent"


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
        return out + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def machine() -> dict[str, Any]:
    import psutil

    return {
        "cpu": _cpu_model(),
        "logical_cores": os.cpu_count(),
        "physical_cores": psutil.cpu_count(logical=False),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "libraries": {lib: _version(lib) for lib in ("numpy", "scipy", "xarray", "zarr", "dask", "distributed")},
        "git_commit": _git_commit(),
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "load_average_at_start": [round(v, 2) for v in os.getloadavg()],
    }


def _own_tree() -> set[int]:
    import psutil

    me = psutil.Process()
    pids = {me.pid}
    with contextlib.suppress(psutil.Error):
        pids |= {c.pid for c in me.children(recursive=True)}
    return pids


def foreign_cpu(seconds: float = 0.5) -> float:
    """CPU used by processes outside this benchmark's process tree over ``seconds``,
    in cores (0 = the machine is ours, 2 = both cores busy elsewhere)."""
    import psutil

    venv_bin = str(Path(sys.executable).parent)

    def snap() -> tuple[dict[int, float], set[int]]:
        out, ours = {}, set()
        for p in psutil.process_iter(["pid", "cpu_times", "cmdline"]):
            ct = p.info.get("cpu_times")
            if ct is not None:
                out[p.info["pid"]] = ct.user + ct.system
            # this environment's interpreters: ours even once orphaned (a forkserver or
            # worker still ending after its `emergence run` exited)
            if (p.info.get("cmdline") or [""])[0].startswith(venv_bin):
                ours.add(p.info["pid"])
        return out, ours

    a, ours_a = snap()
    t0 = time.perf_counter()
    time.sleep(seconds)
    b, ours_b = snap()
    dt = time.perf_counter() - t0
    mine = _own_tree() | ours_a | ours_b
    used = sum(max(0.0, b[p] - a.get(p, b[p])) for p in b if p not in mine)
    return used / dt


class LoadWatch:
    """Samples the CPU used by other processes in the background, while figures run."""

    def __init__(self, interval: float = 2.0) -> None:
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._interval = interval
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._t0 = time.perf_counter()

    def _loop(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(Exception):
                self.samples.append((time.perf_counter() - self._t0, foreign_cpu(0.5)))
            self._stop.wait(self._interval)

    def __enter__(self) -> LoadWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def window(self, start: float, stop: float) -> float:
        """Largest foreign CPU (cores) sampled between two ``elapsed()`` times."""
        vals = [v for t, v in self.samples if start - 2.5 <= t <= stop + 0.5]
        return max(vals, default=0.0)

    def elapsed(self) -> float:
        return time.perf_counter() - self._t0


# ---------------------------------------------------------------------------
# subprocesses and their memory


def emergence_command() -> list[str]:
    """The ``emergence`` console script of this interpreter's environment."""
    script = Path(sys.executable).parent / "emergence"
    if script.exists():
        return [str(script)]
    found = shutil.which("emergence")
    return [found] if found else [sys.executable, "-m", "pipeline.cli"]


def _hwm_kib(pid: int) -> int | None:
    """Peak resident set (VmHWM) of a live process, KiB (Linux)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


@dataclass
class TreeMemory:
    """Peak memory of a process tree: per process (by pid), and of the whole tree."""

    peak_per_process_mib: dict[int, float] = field(default_factory=dict)
    names: dict[int, str] = field(default_factory=dict)
    peak_total_mib: float = 0.0
    samples: int = 0

    @property
    def peak_mib(self) -> float:
        return max(self.peak_per_process_mib.values(), default=0.0)


def run_sampled(
    cmd: Sequence[str], interval: float = 0.05, cwd: Path = REPO, env: Mapping[str, str] | None = None
) -> tuple[float, subprocess.CompletedProcess, TreeMemory]:
    """Run ``cmd``; sample the resident memory of it and all its descendants.

    Per process the peak is the kernel's high-water mark ``VmHWM`` (exact, read
    while the process lives; falls back to sampled RSS), so short peaks are not
    missed. Returns (wall seconds, completed process, memory).
    """
    import psutil

    mem = TreeMemory()
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        list(cmd),
        cwd=cwd,
        env=dict(env) if env is not None else None,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    root = psutil.Process(proc.pid)

    def sample() -> None:
        try:
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            return
        total = 0.0
        for p in procs:
            try:
                rss = p.memory_info().rss / 2**20
                hwm = _hwm_kib(p.pid)
                peak = max(rss, hwm / 1024 if hwm else 0.0)
                if p.pid not in mem.names:
                    mem.names[p.pid] = " ".join(p.cmdline()[:3])[:80]
            except psutil.Error:
                continue
            total += rss
            mem.peak_per_process_mib[p.pid] = max(mem.peak_per_process_mib.get(p.pid, 0.0), peak)
        mem.peak_total_mib = max(mem.peak_total_mib, total)
        mem.samples += 1

    out_chunks: dict[str, str] = {}

    def drain() -> None:
        out_chunks["out"], out_chunks["err"] = proc.communicate()

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    while reader.is_alive():
        sample()
        reader.join(timeout=interval)
    wall = time.perf_counter() - t0
    done = subprocess.CompletedProcess(list(cmd), proc.returncode, out_chunks.get("out", ""), out_chunks.get("err", ""))
    return wall, done, mem


def run_timed(cmd: Sequence[str], cwd: Path = REPO) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    done = subprocess.run(list(cmd), cwd=cwd, capture_output=True, text=True)
    return time.perf_counter() - t0, done


def check(done: subprocess.CompletedProcess) -> None:
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(done.args)} failed with exit code {done.returncode}:\n{done.stdout}\n{done.stderr}"
        )
