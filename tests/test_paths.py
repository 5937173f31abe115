"""lshlib.paths: one rule for every LSHLIB_*_DIR variable."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lshlib import paths

ROOT = Path(__file__).resolve().parent.parent

# variable -> (getter, its default folder, what the getter appends at laptop scale on a CPU)
GETTERS = {
    paths.DATA_ENV_VAR: (paths.data_dir, paths.REPO_ROOT / "data" / "local", ""),
    paths.RESULTS_ENV_VAR: (
        lambda: paths.results_dir(device="cpu"),
        paths.REPO_ROOT / "results",
        "laptop",
    ),
    paths.FIGURES_ENV_VAR: (paths.figures_dir, paths.REPO_ROOT / "figures", ""),
    paths.RUNS_ENV_VAR: (paths.runs_dir, paths.REPO_ROOT / "runs", ""),
}


@pytest.fixture
def elsewhere(monkeypatch, tmp_path):
    """Run from an empty folder, with laptop scale (no per-scale subfolder)."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("LSHLIB_SCALE", "laptop")
    return cwd


@pytest.mark.parametrize("var", list(GETTERS))
@pytest.mark.parametrize("value", ["", "   "])
def test_empty_means_unset(monkeypatch, elsewhere, var, value):
    getter, default, _ = GETTERS[var]
    monkeypatch.setenv(var, value)
    assert paths.env_dir(var, default) == default.resolve()
    if var in (paths.DATA_ENV_VAR,):  # only the folders that are not created as a side effect
        assert getter() == default.resolve()
    assert list(elsewhere.iterdir()) == []  # nothing created in the current folder


@pytest.mark.parametrize("var", list(GETTERS))
def test_tilde_is_expanded(monkeypatch, elsewhere, tmp_path, var):
    getter, _, sub = GETTERS[var]
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv(var, "~/lsh")
    assert getter() == home / "lsh" / sub
    assert not (elsewhere / "~").exists()


@pytest.mark.parametrize("var", list(GETTERS))
def test_file_is_an_error_naming_the_variable(monkeypatch, elsewhere, tmp_path, var):
    getter = GETTERS[var][0]
    file = tmp_path / "a-file"
    file.write_text("x")
    monkeypatch.setenv(var, str(file))
    with pytest.raises(NotADirectoryError, match=var) as info:
        getter()
    assert str(file) in str(info.value)


def test_relative_path_is_made_absolute(monkeypatch, elsewhere):
    monkeypatch.setenv(paths.RUNS_ENV_VAR, "rel/runs")
    assert paths.runs_dir() == elsewhere / "rel" / "runs"
    assert paths.runs_dir().is_absolute()


def test_no_module_reads_folder_variables_itself():
    """Every LSHLIB_*_DIR lookup goes through paths.env_dir (one rule everywhere)."""
    offenders = []
    # a read with a default, or a read turned into a Path (saving and restoring the variable,
    # as benchmarks/training.py does around a run, is not a folder lookup)
    pattern = re.compile(
        r"(environ\.get|getenv)\(\s*[\"']LSHLIB_\w+_DIR[\"']\s*,"
        r"|Path\(\s*os\.(environ|getenv)[\[(.]"
    )
    for path in [*(ROOT / "lshlib").rglob("*.py"), *(ROOT / "benchmarks").rglob("*.py")]:
        if path.name == "paths.py":
            continue
        if pattern.search(path.read_text(encoding="utf-8")):
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []
