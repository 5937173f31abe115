"""make reproduce / make figures record their wall-clock in results/<scale>/make_times.json."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from lshlib.bench import wallclock


@pytest.fixture
def dirs(tmp_path, monkeypatch):
    monkeypatch.setattr(wallclock, "machine_info", lambda: {"cpu_count": 2})  # no sampling wait
    monkeypatch.setenv("LSHLIB_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("LSHLIB_RESULTS_DIR", str(tmp_path / "results"))
    return tmp_path


class Clock:
    """A settable UTC clock for wallclock's timestamps."""

    def __init__(self):
        self.t = datetime(2026, 12, 7, 12, 0, 0, tzinfo=UTC)

    def now(self, tz=None):
        return self.t


def test_sittings_add_up_and_a_resumed_reproduce_counts_its_records(dirs, monkeypatch):
    clock = Clock()
    monkeypatch.setattr(
        wallclock,
        "datetime",
        type(
            "D",
            (),
            {"now": staticmethod(clock.now), "fromisoformat": staticmethod(datetime.fromisoformat)},
        ),
    )
    monkeypatch.setattr(wallclock, "commit", lambda: "c0ffee")
    wallclock.start("reproduce", scale="smoke")
    clock.t += timedelta(minutes=30)
    wallclock.heartbeat("run-a", scale="smoke")  # the sitting ends here (killed with it)
    clock.t += timedelta(hours=20)
    current = wallclock.start("reproduce", scale="smoke")  # the next sitting, same commit
    assert len(current["sittings"]) == 2
    assert current["sittings"][0]["runs_trained"] == ["run-a"]
    clock.t += timedelta(minutes=12)
    entry = wallclock.finish("reproduce", scale="smoke")
    assert entry["seconds"] == 42 * 60 and len(entry["sittings"]) == 2
    saved = json.loads((dirs / "results" / "smoke" / "make_times.json").read_text())
    assert "reproduce_in_progress" not in saved and saved["reproduce"] == entry
    with pytest.raises(FileNotFoundError, match="no reproduce in progress"):
        wallclock.finish("reproduce", scale="smoke")


def test_records_of_the_reproduce_in_progress_count_as_done(dirs, monkeypatch):
    from lshlib import training

    monkeypatch.setattr(wallclock, "commit", lambda: "c0ffee")
    assert not training.made_in_this_reproduce({"commit": "c0ffee"}, "smoke")
    current = wallclock.start("reproduce", scale="smoke")
    later = current["started_utc"][:19] + "Z"
    assert training.made_in_this_reproduce({"commit": "c0ffee", "finished_at": later}, "smoke")
    assert not training.made_in_this_reproduce({"commit": "other", "finished_at": later}, "smoke")
    assert not training.made_in_this_reproduce(
        {"commit": "c0ffee", "finished_at": "2020-01-01T00:00:00Z"}, "smoke"
    )


def test_unknown_target_is_named():
    with pytest.raises(ValueError, match="'bench'.*reproduce, figures"):
        wallclock.start("bench")


def test_a_time_taken_before_the_notebooks_changed_is_flagged_in_the_readme(dirs, monkeypatch):
    from lshlib.report import readme

    wallclock.start("reproduce", scale="smoke")
    entry = wallclock.finish("reproduce", scale="smoke")
    assert entry["notebooks"] == wallclock.notebook_names() and entry["notebooks"]
    assert "does not time the study" not in readme.make_time_lines("smoke")[0]
    path = dirs / "results" / "smoke" / "make_times.json"
    times = json.loads(path.read_text())
    times["reproduce"]["notebooks"] = entry["notebooks"][:-1]  # recorded before the last existed
    path.write_text(json.dumps(times))
    line = readme.make_time_lines("smoke")[0]
    assert f"(without {entry['notebooks'][-1]}): it does not time the study" in line
