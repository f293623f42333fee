"""The docs stand in the repo: every ``pipeline/...`` path that docs/architecture.md and the
README name exists, and the README's workflow section names every key a workflow can set."""

from __future__ import annotations

import itertools
import re

import pytest

from pipeline.experiments import get_experiment, known_experiments
from pipeline.plan.config import _FORM_KEYS, COMMON_KEYS
from tests.helpers import REPO

DOCS = ("docs/architecture.md", "README.md")
_PATH = re.compile(r"pipeline/[A-Za-z0-9_./{},*<>-]*")


def _expand(path: str) -> list[str]:
    """``a/{b,c}.py`` -> ``a/b.py``, ``a/c.py`` (any number of brace groups)."""
    parts = re.split(r"\{([^{}]*)\}", path)
    choices = [[p] if i % 2 == 0 else p.split(",") for i, p in enumerate(parts)]
    return ["".join(c) for c in itertools.product(*choices)]


def named_paths(doc: str) -> list[str]:
    """The ``pipeline/...`` paths a document names (placeholders such as ``<name>`` skipped)."""
    out = []
    for raw in _PATH.findall((REPO / doc).read_text()):
        path = raw.rstrip(".,:;)")
        if "<" in path or "*" in path:
            continue
        out.extend(_expand(path))
    return out


@pytest.mark.parametrize("doc", DOCS)
def test_every_named_pipeline_path_exists(doc):
    paths = named_paths(doc)
    assert paths, f"{doc} names no pipeline/ path"
    missing = [p for p in paths if not (REPO / p).exists()]
    assert not missing, f"{doc} names paths that do not exist: {missing}"


def test_the_brace_form_expands():
    assert _expand("pipeline/{core,plan}/x{a,b}.py") == [
        "pipeline/core/xa.py",
        "pipeline/core/xb.py",
        "pipeline/plan/xa.py",
        "pipeline/plan/xb.py",
    ]


def test_architecture_maps_every_pipeline_module():
    text = (REPO / "docs/architecture.md").read_text()
    named = set(named_paths("docs/architecture.md"))
    modules = sorted(p.relative_to(REPO).as_posix() for p in (REPO / "pipeline").rglob("*.py"))
    unmapped = []
    for module in modules:
        if module.endswith("__init__.py") and module != "pipeline/experiments/__init__.py":
            continue  # a package's public API: the package's own row covers it
        folder = module.rsplit("/", 1)[0] + "/"
        stem = module.rsplit("/", 1)[1]
        if module in named or (folder in named and f"`{stem}`" in text):
            continue
        unmapped.append(module)
    assert not unmapped, f"docs/architecture.md does not map: {unmapped}"


def test_readme_names_every_workflow_key():
    text = (REPO / "README.md").read_text()
    keys = set(COMMON_KEYS) | set(_FORM_KEYS) | {"num", "step", "blocks_per_task", "task_seconds"}
    for name in known_experiments():
        experiment = get_experiment(name)
        keys |= set(experiment.axes) | set(experiment.extra_settings)
        for rule in experiment.axis_rules.values():
            keys |= set(rule.choices or ())
    missing = sorted(k for k in keys if not re.search(rf"\b{re.escape(k)}\b", text))
    assert not missing, f"README.md does not mention: {missing}"
