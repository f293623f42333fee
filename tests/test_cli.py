"""Bad input everywhere: exit code 2 (or 1), one clear line, no traceback, nothing written."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline import api
from pipeline.cli import main
from pipeline.core.errors import UsageError
from tests.helpers import REPO, emergence, one_clean_line, write_workflow
from tests.references import BAD, GOOD

OBSERVED = """
experiment = "observed"
name = "obs"
[grid]
spectrum = ["1.0^2, 0.5"]
family = ["block", "similarity"]
d = "all"
T = [10, 100]
draw = 2
"""

OBSERVED_BAD = {
    "zero block size": OBSERVED.replace('"1.0^2, 0.5"', '"1.0^0"'),
    "not a spectrum": OBSERVED.replace('"1.0^2, 0.5"', '"abc"'),
    "dangling comma in sizes": OBSERVED.replace('"1.0^2, 0.5"', '"1.0^[2,]"'),
    "negative block size": OBSERVED.replace('"1.0^2, 0.5"', '"1.0^-1"'),
    "dimension over 32": OBSERVED.replace('"1.0^2, 0.5"', '"1.0^33"'),
    "angle out of range": OBSERVED.replace('"1.0^2, 0.5"', '"1.0@180"'),
    "unknown family": OBSERVED.replace('"similarity"', '"orthogonal"'),
    "negative d": OBSERVED.replace('d = "all"', "d = [-1, 0]"),
    "draw zero": OBSERVED.replace("draw = 2", "draw = 0"),
    "unknown basis": 'basis = "polar"\n' + OBSERVED,
    "reversed T range": OBSERVED.replace("T = [10, 100]", "T = { range = [100, 10] }"),
}

WORKFLOW_CASES = {f"hidden: {k}": v[0] for k, v in BAD.items()} | {f"observed: {k}": v for k, v in OBSERVED_BAD.items()}
WORKFLOW_CASES["toml syntax"] = 'experiment = "hidden"\nname = "t"\nseed = = 1\n'
WORKFLOW_CASES["cluster unknown key"] = GOOD + '\n[cluster]\nkind = "slurm"\ncores = 2\nmemory = "1GiB"\nnodes = 3\n'
WORKFLOW_CASES["cluster unknown kind"] = GOOD + '\n[cluster]\nkind = "kubernetes"\n'


@pytest.mark.parametrize("case", sorted(WORKFLOW_CASES))
def test_bad_workflow_exit_2_one_line_nothing_written(case, tmp_path, capsys):
    wf = write_workflow(tmp_path, WORKFLOW_CASES[case])
    out = tmp_path / "out.zarr"
    assert main(["run", str(wf), "--out", str(out), "--no-progress"]) == 2
    line = one_clean_line(capsys.readouterr().err)
    assert line.startswith("emergence: error:") and "= None" not in line, line
    assert not out.exists() and not Path(f"{out}.lock").exists()


def test_a_missing_key_is_named_without_a_value(tmp_path, capsys):
    wf = write_workflow(tmp_path, GOOD.replace("lam = [1.0]\n", ""))
    assert main(["run", str(wf), "--out", str(tmp_path / "o.zarr")]) == 2
    assert one_clean_line(capsys.readouterr().err) == (
        "emergence: error: grid.lam is required: a list, or a geom/linspace/range table"
    )


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    from importlib import metadata

    assert capsys.readouterr().out.strip() == f"emergence {metadata.version('emergence-pipeline')}"


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.rglob("*"))}


@pytest.fixture(scope="module")
def cube(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cube")
    wf = write_workflow(folder, GOOD)
    out = folder / "good.zarr"
    assert main(["run", str(wf), "--out", str(out), "--workers", "1", "--no-progress"]) == 0
    return wf, out


def test_invocations_exit_2_and_leave_the_store_untouched(cube, tmp_path, capsys):
    wf, out = cube
    before = _snapshot(out.parent)
    not_a_cube = tmp_path / "plain"
    not_a_cube.mkdir()
    (not_a_cube / "file.txt").write_text("hello")
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    changed = write_workflow(tmp_path, GOOD.replace("lam = [1.0]", "lam = [0.5]"), "changed.toml")
    observed_wf = write_workflow(tmp_path, OBSERVED, "obs.toml")
    invocations = [
        ["run", str(tmp_path / "missing.toml")],
        ["run", str(tmp_path)],  # a directory, not a file
        ["run", str(wf), "--workers", "0"],
        ["run", str(wf), "--max-cells", "10", "--out", str(tmp_path / "x.zarr")],
        ["run", str(wf), "--out", str(a_file / "sub.zarr")],  # parent is a file: unwritable
        ["run", str(changed), "--out", str(out)],  # different workflow
        ["run", str(changed), "--out", str(out), "--extend"],  # changed a value, not appended
        ["run", str(wf), "--out", str(out), "--overwrite", "--extend"],
        ["run", str(observed_wf), "--out", str(out), "--extend"],  # another experiment
        ["run", str(wf), "--out", str(not_a_cube)],
        ["run", str(wf), "--out", str(not_a_cube), "--overwrite"],
        ["run", str(wf), "--scheduler", "tcp://127.0.0.1:1", "--workers", "2"],
        ["run", str(wf), "--cluster-profile", str(tmp_path / "nope.toml")],
        ["info", str(not_a_cube)],
        ["summary", str(a_file)],
        ["info", str(tmp_path / "missing.zarr")],
        ["query", str(not_a_cube), "--sel", "k=1"],
        ["query", str(out), "--sel", "bogus=1"],
        ["query", str(out), "--sel", "lam=7"],  # not on the float axis
        ["query", str(out), "--sel", "lam~7"],  # outside the float axis range
        ["query", str(out), "--sel", "noise_ratio=1.1"],  # exact by default: no silent nearest
        ["query", str(out), "--sel", "learner~best_fir"],  # nearest needs a numeric axis
        ["query", str(out), "--sel", "k=99"],  # not on the integer axis
        ["query", str(out), "--sel", "learner=lstm"],
        ["query", str(out), "--sel", "noise_ratio=abc"],
        ["query", str(out), "--sel", "k"],
        ["query", str(out), "--var", "nope"],
        ["frobnicate"],
    ]
    for argv in invocations:
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse errors
            code = exc.code
        assert code == 2, argv
        err = capsys.readouterr().err
        one_clean_line(err)
    assert _snapshot(out.parent) == before
    assert not (tmp_path / "x.zarr").exists()


def test_dry_run_prints_cells_blocks_size_and_writes_nothing(tmp_path, capsys):
    wf = write_workflow(tmp_path, GOOD)
    out = tmp_path / "dry.zarr"
    assert main(["run", str(wf), "--out", str(out), "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "288 cells" in text and "blocks: 1 of" in text and "estimated size on disk" in text
    assert "store: " + str(out) + " (new)" in text and "1 result variable" not in text
    assert not out.exists()


def test_dry_run_prints_the_slurm_job_script(tmp_path, capsys):
    profile = tmp_path / "slurm.toml"
    profile.write_text(
        'cores = 4\nmemory = "8GiB"\nwalltime = "01:00:00"\nqueue = "normal"\n'
        'account = "proj"\nworker_lifetime = "55m"\nadaptive_maximum = 10\n'
    )
    wf = write_workflow(tmp_path, GOOD)
    assert (
        main(
            [
                "run",
                str(wf),
                "--cluster",
                "slurm",
                "--cluster-profile",
                str(profile),
                "--dry-run",
                "--out",
                str(tmp_path / "c.zarr"),
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    for piece in ("#SBATCH -p normal", "#SBATCH -A proj", "#SBATCH -t 01:00:00", "--lifetime 55m"):
        assert piece in text
    assert not (tmp_path / "c.zarr").exists()


def test_query_ignores_a_selection_the_variable_lacks_with_a_note(cube, capsys):
    _, out = cube
    assert main(["query", str(out), "--sel", "learner=best_fir", "--sel", "k=2", "--var", "a", "--format", "csv"]) == 0
    captured = capsys.readouterr()
    assert "note: a has no dim k or learner; --sel k, learner ignored" in captured.err
    assert captured.out.splitlines()[0] == "lam,noise_ratio,a" and len(captured.out.splitlines()) == 4


def test_info_json_and_query_formats(cube, capsys):
    _, out = cube
    assert main(["info", str(out), "--format", "json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["blocks_done"] == info["blocks_total"] >= 1
    assert info["dims"]["k"] == 8 and info["provenance"]["experiment"] == "hidden"
    assert (
        main(
            [
                "query",
                str(out),
                "--sel",
                "noise_ratio~1.1",
                "--sel",
                "learner=truncated_kalman",
                "--sel",
                "k=2",
                "--sel",
                "T=1000",
                "--var",
                "risk",
                "--format",
                "json",
            ]
        )
        == 0
    )
    captured = capsys.readouterr()
    rows = json.loads(captured.out)
    assert len(rows) == 1 and rows[0]["noise_ratio"] == 1.0  # nearest, as asked with ~
    stored = api.open_cube(out)["risk"].sel(noise_ratio=1.0, learner="truncated_kalman", k=2, T=1000)
    assert rows[0]["risk"] == stored.values.item()  # the same bits, not 15 digits
    assert captured.err == "noise_ratio: nearest to 1.1 is 1.0\n"
    assert (
        main(
            [
                "query",
                str(out),
                "--sel",
                "k=2",
                "--sel",
                "T=10",
                "--var",
                "risk",
                "--format",
                "csv",
                "--sel",
                "learner=best_fir",
            ]
        )
        == 0
    )
    csv = capsys.readouterr().out.splitlines()
    assert csv[0].split(",")[:3] == ["lam", "noise_ratio", "risk"] and len(csv) == 4


@pytest.mark.slow
def test_real_exit_codes_in_a_subprocess(tmp_path):
    bad = write_workflow(tmp_path, GOOD.replace("lam = [1.0]", "lam = [nan]"))
    result = emergence("run", str(bad), "--out", str(tmp_path / "o.zarr"))
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "grid.lam[0]" in result.stderr
    result = emergence("query", str(tmp_path / "none.zarr"))
    assert result.returncode == 2 and "not an emergence cube" in result.stderr


def test_query_selects_exactly_and_the_nearest_only_when_asked(cube, capsys):
    _, out = cube
    base = ["query", str(out), "--sel", "learner=best_fir", "--sel", "k=2", "--var", "risk", "--format", "csv"]
    assert main([*base, "--sel", "noise_ratio=4", "--sel", "T=1000"]) == 2
    assert one_clean_line(capsys.readouterr().err) == (
        "emergence: error: --sel noise_ratio=4: not on the axis (values beside it: 1.0 and 10.0); "
        "--sel noise_ratio~4 takes the nearest"
    )
    assert main([*base, "--sel", "noise_ratio=10", "--sel", "T=1001"]) == 2
    assert "--sel T=1001: not on the axis (values beside it: 1000 and 10000)" in capsys.readouterr().err
    assert main([*base, "--sel", "noise_ratio=10", "--sel", "T=1000"]) == 0
    exact = capsys.readouterr()
    assert exact.err == "" and exact.out.splitlines()[1].endswith(",2,best_fir,10.0,1000")
    assert main([*base, "--sel", "noise_ratio~4", "--sel", "T~1001"]) == 0
    nearest = capsys.readouterr()
    assert nearest.err.splitlines() == ["noise_ratio: nearest to 4 is 1.0", "T: nearest to 1001 is 1000"]
    assert nearest.out.splitlines()[1].endswith(",2,best_fir,1.0,1000")


def test_query_help_says_how_to_select_exactly_and_the_nearest(capsys):
    with pytest.raises(SystemExit):
        main(["query", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "DIM=VALUE takes the cell at exactly VALUE" in text and "DIM~VALUE takes the nearest value" in text


SCHEDULER_ERRORS = {
    "not an address": (["--scheduler", "not-an-address"], 2, "scheduler address 'not-an-address' is not a Dask"),
    "no port": (["--scheduler", "tcp://127.0.0.1"], 2, "missing port number"),
    "missing scheduler file": (["--scheduler-file", "{tmp}/none.json"], 2, "none.json' does not exist"),
    "scheduler file of no scheduler": (["--scheduler-file", "{tmp}/wf.toml"], 2, "cannot be read as a Dask scheduler"),
    "connect timeout without scheduler": (["--connect-timeout", "5"], 2, "a connect timeout is for a running"),
    "negative connect timeout": (
        ["--scheduler", "tcp://127.0.0.1:1", "--connect-timeout", "-1"],
        2,
        "connect timeout -1.0: must be",
    ),
    "unreachable": (
        ["--scheduler", "tcp://127.0.0.1:1", "--connect-timeout", "1"],
        1,
        "emergence: failed: no Dask scheduler answered at tcp://127.0.0.1:1: gave up after ",
    ),
}


@pytest.mark.parametrize("case", sorted(SCHEDULER_ERRORS))
def test_scheduler_errors_say_so_in_one_line_and_write_nothing(case, tmp_path, capsys):
    args, code, says = SCHEDULER_ERRORS[case]
    wf = write_workflow(tmp_path, GOOD)
    out = tmp_path / "out.zarr"
    argv = ["run", str(wf), "--out", str(out), "--no-progress", *(a.format(tmp=tmp_path) for a in args)]
    assert main(argv) == code
    line = one_clean_line(capsys.readouterr().err)
    assert says in line, line
    if case == "unreachable":
        assert line.endswith("(connect timeout 1 s); nothing was written")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["wf.toml"]  # no store, no lock


def test_a_scheduler_address_from_the_environment_is_checked_too(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", "nowhere")
    wf = write_workflow(tmp_path, GOOD)
    assert main(["run", str(wf), "--out", str(tmp_path / "out.zarr")]) == 2
    assert "DASK_SCHEDULER_ADDRESS 'nowhere' is not a Dask scheduler address" in one_clean_line(capsys.readouterr().err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["wf.toml"]


@pytest.mark.slow
def test_the_readme_commands_run_verbatim(tmp_path):
    """The "Using it" block of the README, in a fresh project folder with this install's command."""
    block = re.search(r"## Using it\n+```bash\n(.*?)```", (REPO / "README.md").read_text(), re.S)
    assert block is not None
    shutil.copytree(REPO / "workflows", tmp_path / "workflows")
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / ".venv" / "bin" / "emergence").symlink_to(Path(sys.executable).parent / "emergence")
    result = subprocess.run(
        ["bash", "-e", "-c", block.group(1)], cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr
    assert "noise_ratio: nearest to 4 is 3.1622776601683795" in result.stderr.splitlines()
    assert result.stdout.count("truncated_kalman") >= 2  # the exact cell and the nearest one


def test_tau_for_a_cube_without_risk_levels_is_refused_not_ignored(tmp_path, capsys):
    wf = write_workflow(tmp_path, OBSERVED, "obs.toml")
    out = tmp_path / "obs.zarr"
    assert main(["run", str(wf), "--out", str(out), "--workers", "1", "--no-progress"]) == 0
    capsys.readouterr()
    before = _snapshot(tmp_path)
    for argv in (["plot", str(out), "--tau", "2"], ["thresholds", str(out), "--tau", "2", "5"]):
        assert main(argv) == 2, argv
        line = one_clean_line(capsys.readouterr().err)
        assert "--tau 2" in line and "observed cube has no risk levels" in line, line
    assert _snapshot(tmp_path) == before
    assert main(["thresholds", str(out)]) == 0  # without --tau it runs
    ds = api.open_cube(out)
    with pytest.raises(UsageError, match="no risk levels"):
        api.thresholds(ds, taus=(2.0,))
    with pytest.raises(UsageError, match="no risk levels"):
        api.plot(ds, tau=2.0)


def test_query_json_reads_back_to_the_same_bits():
    from pipeline.readers.inspect import records_json

    values = [0.1 + 0.2, 1e-300, 5e-324, -np.inf, np.inf, np.nan, np.float64(2.0) / 3]
    rows = json.loads(records_json([{"x": v, "k": np.int64(3), "learner": "best_fir"} for v in values]))
    back = [r["x"] for r in rows]
    assert back[:5] == [0.1 + 0.2, 1e-300, 5e-324, -np.inf, np.inf] and back[5] is None and back[6] == 2.0 / 3
    assert rows[0]["k"] == 3 and rows[0]["learner"] == "best_fir"
    text = records_json([{"x": -np.inf, "y": np.nan}])
    assert text == '[{"x":-1e999,"y":null}]'  # strict JSON: no NaN or Infinity tokens
