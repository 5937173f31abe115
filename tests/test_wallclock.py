"""make reproduce / make figures record their wall-clock in results/<scale>/make_times.json."""

from __future__ import annotations

import json

import pytest

from lshlib import wallclock


@pytest.fixture
def dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("LSHLIB_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("LSHLIB_RESULTS_DIR", str(tmp_path / "results"))
    return tmp_path


def test_start_then_finish_records_seconds_load_and_commit(dirs, monkeypatch):
    clock = iter([1000.0, 1042.5])
    monkeypatch.setattr(wallclock.time, "time", lambda: next(clock))
    wallclock.start("figures")
    entry = wallclock.finish("figures", scale="smoke")
    assert entry["seconds"] == 42.5 and entry["scale"] == "smoke"
    assert {"load_start", "load_end", "commit", "machine", "finished_utc"} <= set(entry)
    saved = json.loads((dirs / "results" / "smoke" / "make_times.json").read_text())
    assert saved == {"figures": entry}
    with pytest.raises(FileNotFoundError, match="no start stamp.*wallclock start figures"):
        wallclock.finish("figures", scale="smoke")  # the stamp is used once


def test_unknown_target_is_named():
    with pytest.raises(ValueError, match="'bench'.*reproduce, figures"):
        wallclock.start("bench")


def test_a_time_taken_before_the_notebooks_changed_is_flagged_in_the_readme(dirs, monkeypatch):
    from lshlib.report import readme

    wallclock.start("reproduce")
    entry = wallclock.finish("reproduce", scale="smoke")
    assert entry["notebooks"] == wallclock.notebook_names() and entry["notebooks"]
    assert "does not time the study" not in readme.make_time_lines("smoke")[0]
    path = dirs / "results" / "smoke" / "make_times.json"
    times = json.loads(path.read_text())
    times["reproduce"]["notebooks"] = entry["notebooks"][:-1]  # recorded before the last existed
    path.write_text(json.dumps(times))
    line = readme.make_time_lines("smoke")[0]
    assert f"(without {entry['notebooks'][-1]}): it does not time the study" in line
