"""--cluster-profile: bare keys or one [cluster] table, through the real command line."""

from __future__ import annotations

import sys

import pytest

from pipeline.cli import main
from tests.helpers import write_workflow
from tests.references import GOOD

KEYS = 'cores = 4\nmemory = "8GiB"\nqueue = "normal"\naccount = "proj"\nworker_lifetime = "55m"\n'
EXPECTED = ("#SBATCH -p normal", "#SBATCH -A proj", "#SBATCH --cpus-per-task=4", "--lifetime 55m")


def _dry_run(tmp_path, profile_text: str) -> int:
    profile = tmp_path / "slurm.toml"
    profile.write_text(profile_text)
    wf = write_workflow(tmp_path, GOOD)
    return main(
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


@pytest.mark.parametrize("form", ["bare keys", "[cluster] table"])
def test_profile_with_bare_keys_or_a_cluster_table_gives_the_same_job_script(form, tmp_path, capsys):
    text = KEYS if form == "bare keys" else "# my site\n[cluster]\n" + KEYS
    assert _dry_run(tmp_path, text) == 0
    script = capsys.readouterr().out
    for piece in EXPECTED:
        assert piece in script
    assert not (tmp_path / "c.zarr").exists()


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ('walltime = "01:00:00"\n[cluster]\n' + KEYS, "key 'walltime' outside [cluster]"),
        ("[cluster]\n" + KEYS + "[site]\nname = 'x'\n", "unexpected table [site]"),
        ("[slurm]\n" + KEYS, "unexpected table [slurm]"),
        ('cluster = "slurm"\n' + KEYS, "'cluster' must be a table"),
    ],
)
def test_profile_mixing_forms_or_with_other_tables_is_one_clean_line(text, named, tmp_path, capsys):
    assert _dry_run(tmp_path, text) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("emergence: error:"), err
    assert str(tmp_path / "slurm.toml") in err and named in err
    assert not (tmp_path / "c.zarr").exists()


@pytest.mark.parametrize("dry_run", [False, True])
def test_batch_run_without_dask_jobqueue_is_one_line_and_writes_nothing(dry_run, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "dask_jobqueue", None)  # what `import` sees when it is not installed
    wf = write_workflow(tmp_path, GOOD)
    out = tmp_path / "c.zarr"
    argv = ["run", str(wf), "--cluster", "slurm", "--out", str(out)]
    argv += ["--cluster-profile", str(tmp_path / "p.toml")]
    (tmp_path / "p.toml").write_text(KEYS)
    assert main([*argv, "--dry-run"] if dry_run else argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "needs dask-jobqueue" in err and "slurm" in err, err
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["p.toml", "wf.toml"]
