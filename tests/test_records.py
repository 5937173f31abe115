"""Run records: reports only read them (a bad committed record fails the report,
naming the file, the problem and the fix, and nothing is moved or rewritten); one schema checked
on write and read accepts every committed record; strict JSON with non-finite numbers as null;
committed run names stay as they were except the six random-pairs controls, which retire."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from lshlib import training
from lshlib.paths import REPO_ROOT
from lshlib.training import RunConfig, records
from lshlib.training.records import RecordError

COMMITTED = REPO_ROOT / "results" / "laptop"
RECORD_FILES = sorted(COMMITTED.glob("*-s*-*.json"))
BASELINE = "mlm-baseline-s42-eb511f9d"  # the default-seed MLM baseline the README reads
# The random-pairs controls' records: their density counted padding keys (random_density="all");
# the plan now makes them with random_density="real_keys", under new names.
RETIRED = {
    "sst2-random_masked-s1-4dfb39a9",
    "sst2-random_masked-s2-761bd403",
    "sst2-random_masked-s42-73ea64cc",
    "sst2-random_paper-s1-f681623e",
    "sst2-random_paper-s2-7635393e",
    "sst2-random_paper-s42-11f99292",
}
needs_data = pytest.mark.needs_data


def strict_json(text: str):
    def reject(name):
        raise ValueError(f"bare {name}")

    return json.loads(text, parse_constant=reject)


def committed(name: str = BASELINE) -> dict:
    return json.loads((COMMITTED / f"{name}.json").read_text())


# --------------------------------------------------------------------------- the schema


def test_every_committed_record_matches_the_schema_unedited():
    assert len(RECORD_FILES) >= 60
    for path in RECORD_FILES:
        record = records.read_record(path)
        assert record == json.loads(path.read_text())  # read as stored, nothing converted
        assert RunConfig(**record["config"]).name == record["name"] == path.stem


def test_committed_records_keep_their_names():
    """Every committed record is found by the config it stores (optional settings left out of
    the name at their default, random_density included)."""
    for path in RECORD_FILES:
        record = json.loads(path.read_text())
        config = RunConfig(**record["config"])
        assert training.results_path(config.scale, config.name) == path
        assert training.load_record(config) == record


@needs_data
def test_only_the_random_controls_retire():
    from lshlib import verdict
    from lshlib.experiments import plateau

    plans = (verdict.plan("laptop"), verdict.long_plan("laptop"))
    planned = {c.name: c for plan in plans for group in plan.values() for c in group}
    planned |= {c.name: c for job in plateau.jobs("laptop") for c in job.configs}
    assert {p.stem for p in RECORD_FILES} - set(planned) == RETIRED
    randoms = [c for c in planned.values() if c.variant in ("random_paper", "random_masked")]
    assert randoms and all(c.random_density == "real_keys" for c in randoms)


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (lambda r: r.update(final="oops"), "final: Input should be a valid dictionary"),
        (lambda r: r.update(steps="x"), "steps: Input should be a valid integer"),
        (lambda r: r.update(status="running"), "status: Input should be 'finished'"),
        (lambda r: r["final"].pop("validation_accuracy"), "final.validation_accuracy is missing"),
        (lambda r: r.update(steps=0), "steps: Input should be greater than or equal to 1"),
        (lambda r: r["config"].update(seed=7), "config.seed is 7 but the name"),
    ],
    ids=["final-str", "steps-str", "running", "no-accuracy", "zero-steps", "seed"],
)
def test_wrong_records_are_named_with_their_problem(tmp_path, damage, problem):
    record = committed()
    damage(record)
    path = tmp_path / f"{BASELINE}.json"
    path.write_text(json.dumps(record))
    with pytest.raises(RecordError) as err:
        records.read_record(path)
    assert str(path) in str(err.value) and problem in str(err.value)
    assert "git checkout --" in str(err.value)
    with pytest.raises(RecordError, match="refusing to write .*new.json"):
        records.write_record(tmp_path / "new.json", record)
    assert not (tmp_path / "new.json").exists()


def test_non_finite_numbers_are_written_as_null_with_the_reason(tmp_path):
    record = committed()
    record["final"]["train_loss_last"] = math.nan
    record["curves"]["train"][0]["loss"] = math.inf
    path = tmp_path / "r.json"
    written = records.write_record(path, record)
    stored = strict_json(path.read_text())  # no bare NaN / Infinity: valid JSON
    assert stored == written
    assert stored["final"]["train_loss_last"] is None
    assert stored["nonfinite"] == {"final.train_loss_last": "nan", "curves.train[0].loss": "inf"}
    assert records.read_record(path) == stored


def test_a_record_with_bare_nan_is_rejected_when_read(tmp_path):
    path = tmp_path / "r.json"
    path.write_text(json.dumps({**committed(), "train_seconds": math.nan}))  # allow_nan: NaN
    with pytest.raises(RecordError, match="bare NaN is not valid JSON"):
        records.read_record(path)


def test_a_null_required_metric_must_say_why(tmp_path):
    record = committed()
    record["final"]["validation_accuracy"] = None
    path = tmp_path / "r.json"
    path.write_text(json.dumps(record))
    with pytest.raises(RecordError, match="final.validation_accuracy is null and not listed"):
        records.read_record(path)


# --------------------------------------------------------------------------- read-only reading


def snapshot(folder: Path) -> dict[str, tuple[int, int, bytes]]:
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns, p.read_bytes())
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def results_copy(tmp_path, monkeypatch):
    """The committed laptop records in a scratch results folder (LSHLIB_RESULTS_DIR)."""
    base = tmp_path / "results"
    shutil.copytree(COMMITTED, base / "laptop")
    monkeypatch.setenv("LSHLIB_RESULTS_DIR", str(base))
    monkeypatch.delenv("LSHLIB_REUSE", raising=False)
    return base / "laptop"


def test_load_record_reads_without_moving_and_only_training_quarantines(results_copy):
    path = results_copy / f"{BASELINE}.json"
    path.write_bytes(path.read_bytes()[:500])
    config = RunConfig(**committed()["config"])
    before = snapshot(results_copy)
    with pytest.raises(RecordError, match=f"{BASELINE}.json is not valid JSON"):
        training.load_record(config)
    assert snapshot(results_copy) == before  # the reader moved and wrote nothing
    assert training.load_record(config, quarantine=True) is None  # the training path
    assert not path.exists() and list(results_copy.glob(f"{BASELINE}.json.corrupt-*"))


def test_load_record_fails_on_another_runs_config(results_copy):
    path = results_copy / f"{BASELINE}.json"
    record = json.loads(path.read_text())
    record["config"]["learning_rate"] = 0.1
    path.write_text(json.dumps(record))
    config = RunConfig(**committed()["config"])
    with pytest.raises(RecordError, match="its config is not the run's: differs in learning_rate"):
        training.load_record(config)
    assert training.load_record(config, quarantine=True) is None  # training: redo the run
    assert path.exists()


def _edit(path: Path, change) -> None:
    record = json.loads(path.read_text())
    change(record)
    path.write_text(json.dumps(record))


DAMAGES = {
    "truncated": lambda p: p.write_bytes(p.read_bytes()[:500]),
    "running": lambda p: _edit(p, lambda r: r.update(status="running")),
    "config": lambda p: _edit(p, lambda r: r["config"].update(epochs=9.0)),
    "no accuracy": lambda p: _edit(p, lambda r: r["final"].pop("validation_accuracy")),
}


@needs_data
@pytest.mark.parametrize("damage", list(DAMAGES))
def test_readme_report_on_a_damaged_committed_record_fails_and_touches_nothing(
    results_copy, tmp_path, capsys, damage
):
    """The issue's reproduction: `python -m lshlib.report.readme` exits non-zero naming the file,
    the problem and the fix; the results folder and the README are left as they were."""
    from lshlib.report import readme

    path = results_copy / f"{BASELINE}.json"
    DAMAGES[damage](path)
    target = tmp_path / "README.md"
    shutil.copy(REPO_ROOT / "README.md", target)
    before, text = snapshot(results_copy), target.read_text()
    with pytest.raises(SystemExit) as exit_:
        readme.main(["--readme", str(target)])
    assert exit_.value.code == 1
    err = capsys.readouterr().err
    assert f"{BASELINE}.json" in err and "git checkout --" in err and "make reproduce" in err
    assert snapshot(results_copy) == before  # nothing renamed, moved or written
    assert target.read_text() == text  # the README block was not rewritten
