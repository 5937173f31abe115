"""The verdict's run plan and its paired comparisons."""

from __future__ import annotations

import os
import threading
import time
import types
from concurrent.futures import ThreadPoolExecutor

import pytest

from lshlib import safeio, training, verdict
from lshlib.experiments import stats
from lshlib.modeling import CONTROL_VARIANTS
from lshlib.verdict import comparisons, long, planning


@pytest.fixture
def env(monkeypatch, tmp_path_factory, tmp_path):
    runs = tmp_path_factory.getbasetemp() / "lshlib-runs"
    runs.mkdir(exist_ok=True)
    monkeypatch.setenv("LSHLIB_RUNS_DIR", str(runs))
    monkeypatch.setenv("LSHLIB_RESULTS_DIR", str(tmp_path / "results"))


def test_plan_groups_seeds_and_checkpoints(env):
    runs = verdict.plan("smoke")
    assert list(runs) == list(verdict.GROUPS)
    mlm = {c.name for c in runs["pretraining"]}
    assert len(mlm) == 3 * 2  # three variants, two seeds at smoke
    for config in runs["sst2"] + runs["squad"]:
        if config.variant == "scratch":
            assert config.pretrained is None
        else:  # its own variant's pretraining run, of a planned seed
            assert config.pretrained in mlm and f"mlm-{config.variant}-" in config.pretrained
    controls = runs["controls"]
    assert {c.variant for c in controls} == {"lsh_paper", "lsh_masked", *CONTROL_VARIANTS}
    assert all(c.pretrained.startswith("mlm-baseline-") for c in controls)
    paper = runs["paper_settings"]
    assert {(c.learning_rate, c.epochs, c.batch_size, c.warmup) for c in paper} == {
        (2e-5, 3.0, 32, 0.0)
    }
    names = [c.name for group in runs.values() for c in group]
    assert len(names) == len(set(names))  # e.g. the controls' lsh runs start from another model


def test_unknown_group_is_named(env):
    with pytest.raises(ValueError, match=r"\['plateau'\].*pretraining"):
        verdict.run_plan("smoke", groups=["plateau"])


def _record(variant, seed, value, pretrained_seed=None):
    config = {
        "task": "sst2",
        "variant": variant,
        "seed": seed,
        "scale": "smoke",
        "pretrained": None if pretrained_seed is None else f"mlm-{variant}",
    }
    record = {
        "name": f"sst2-{variant}-s{seed}",
        "config": config,
        "final": {"test_accuracy": value},
    }
    if pretrained_seed is not None:
        record["pretrained_run"] = {"config": {"seed": pretrained_seed}}
    return record


def test_compare_clusters_fine_tuning_seeds_by_pretraining_run():
    """5 fine-tuning seeds on 3 pretraining runs (42, 1, 2, 42, 1): the pretraining run is the
    unit. baseline unit means: 42 -> (0.80 + 0.82) / 2 = 0.81, 1 -> (0.81 + 0.83) / 2 = 0.82,
    2 -> 0.80; lsh_paper: 0.70, 0.74, 0.72; paired differences -0.11, -0.08, -0.08 (df 2);
    scratch shares nothing with them: Welch over its 5 runs against the 3 unit means."""
    pre = (42, 1, 2, 42, 1)
    records = [
        _record("baseline", s, v, m)
        for s, v, m in zip((42, 1, 2, 3, 4), (0.80, 0.81, 0.80, 0.82, 0.83), pre, strict=True)
    ]
    records += [
        _record("lsh_paper", s, v, m)
        for s, v, m in zip((42, 1, 2, 3, 4), (0.69, 0.73, 0.72, 0.71, 0.75), pre, strict=True)
    ]
    records += [
        _record("scratch", s, v)
        for s, v in zip((42, 1, 2, 3, 4), (0.79, 0.83, 0.815, 0.80, 0.82), strict=True)
    ]
    rows = {r["variant"]: r for r in verdict.compare(records, "test_accuracy")}
    base, lsh, scratch = rows["baseline"], rows["lsh_paper"], rows["scratch"]
    assert base["n"] == 3 and base["mean"] == pytest.approx((0.81 + 0.82 + 0.80) / 3)
    assert base["n_desc"] == "3 pretraining runs x 5 fine-tuning seeds"
    expected = stats.paired_seed_difference(
        {42: 0.70, 1: 0.74, 2: 0.72}, {42: 0.81, 1: 0.82, 2: 0.80}
    )
    assert lsh["diff_mean"] == pytest.approx(-0.09) and lsh["p"] == pytest.approx(expected["p"])
    assert (lsh["diff_low"], lsh["diff_high"]) == pytest.approx((expected["low"], expected["high"]))
    assert lsh["test"] == "paired t over pretraining runs"
    welch = stats.welch_difference([0.79, 0.83, 0.815, 0.80, 0.82], [0.81, 0.82, 0.80])
    assert scratch["test"].startswith("Welch") and scratch["p"] == pytest.approx(welch["p"])
    assert scratch["n_desc"] == "5 runs"
    with pytest.raises(ValueError, match="reference 'nope' has no runs"):
        verdict.compare(records, "test_accuracy", reference="nope")
    orphan = _record("lsh_paper", 9, 0.7) | {
        "config": {**_record("lsh_paper", 9, 0.7)["config"], "pretrained": "mlm-x"}
    }
    with pytest.raises(ValueError, match="pretraining run 'mlm-x' is in no plan"):
        verdict.unit_of(orphan)


@pytest.mark.needs_data
def test_long_plan_and_a_smoke_long_sequence_run(env):
    runs = verdict.long_plan("smoke")
    assert [c.variant for c in runs["plateau"]] == ["baseline", "lsh_paper", "lsh_paper_fixed"]
    assert {c.epochs for c in runs["plateau"]} == {2.0}
    long = runs["long_sequence"]
    assert [c.variant for c in long] == ["baseline", "lsh_bucketed"]
    assert long[0].max_length == long[1].max_length == 256
    record = training.run(long[1], progress=False)
    assert record["status"] == "finished"
    curve = record["curves"]["train"]
    assert all(p["train_seconds"] > 0 and p["loss"] == p["loss"] for p in curve)  # no NaN
    seconds = [p["train_seconds"] for p in curve]
    assert seconds == sorted(seconds)


def _long_record(losses, step=100, seconds=10.0, variant="baseline"):
    train = [
        {"step": (i + 1) * step, "loss": loss, "train_seconds": (i + 1) * seconds}
        for i, loss in enumerate(losses)
    ]
    return {
        "name": f"mlm-{variant}",
        "config": {"variant": variant},
        "curves": {"train": train},
        "steps": len(losses) * step,
        "train_seconds": len(losses) * seconds,
        "final": {"validation_accuracy": 0.2, "validation_loss": 5.0},
    }


def test_plateau_exit_finds_the_first_drop_below_the_level():
    flat = [6.0] * 10
    record = _long_record([7.0, 6.5, *flat, 5.9, 5.6, 5.5, 5.4, 5.3, 5.2, 5.1])
    out = verdict.plateau_exit(record, reference_step=600, drop=0.3, window=3)
    assert out["plateau_loss"] == 6.0
    # smoothed (median of 3) losses at steps 1300, 1400, 1500: 6.0, 5.9, 5.6; 5.6 <= 5.7 first
    assert out["exit_step"] == 1500
    assert out["final_loss"] == pytest.approx(5.2)
    never = verdict.plateau_exit(_long_record([6.0] * 20), reference_step=600)
    assert never["exit_step"] is None
    with pytest.raises(ValueError, match="reference_step 5000 is beyond the run's last"):
        verdict.plateau_exit(record, reference_step=5000)
    with pytest.raises(ValueError, match="drop must be > 0"):
        verdict.plateau_exit(record, reference_step=600, drop=0)


def test_plateau_summary_waits_for_every_run_and_the_reference(monkeypatch):
    flat = [6.0] * 10
    runs = [
        _long_record([7.0, 6.5, *flat, 5.6, 5.5, 5.4], variant="baseline"),
        _long_record([6.0] * 15, variant="lsh_paper"),
    ]
    reference = {"steps": 600}
    monkeypatch.setattr(long, "long_records", lambda scale: {"plateau": list(runs)})
    monkeypatch.setattr(training, "load_record", lambda config: reference)
    done, exits, step = verdict.plateau_summary("smoke")
    assert step == 600 and done == runs
    # smoothed (median of 5): 6.0 at step 600; 5.6 <= 5.7 first at step 1500
    assert [(e["variant"], e["exit_step"]) for e in exits] == [
        ("baseline", 1500),
        ("lsh_paper", None),
    ]
    runs.append(None)  # the fixed-hash control not finished: the others are still read
    assert len(verdict.plateau_summary("smoke")[0]) == 2
    runs[1] = None
    assert verdict.plateau_summary("smoke") is None
    runs[1] = _long_record([6.0] * 15, variant="lsh_paper")
    reference = None
    assert verdict.plateau_summary("smoke") is None


def test_time_to_loss_reads_the_wall_clock_stamps():
    record = _long_record([7.0, 6.0, 5.0, 4.0], seconds=30.0)
    assert verdict.time_to_loss(record, 6.0, window=1) == 60.0
    assert verdict.time_to_loss(record, 3.0, window=1) is None
    for p in record["curves"]["train"]:
        del p["train_seconds"]
    with pytest.raises(ValueError, match="no train_seconds stamps"):
        verdict.time_to_loss(record, 6.0, window=1)


def test_locality_summary_averages_per_variant():
    rows = [
        {"variant": "a", "seed": 1, "layer": 0, "head": h, "lift": 1.0 + h, "density": 0.2}
        for h in range(2)
    ] + [{"variant": "b", "seed": 1, "layer": 0, "head": 0, "lift": 3.0, "density": 0.4}]
    out = {r["variant"]: r for r in verdict.locality_summary(rows)}
    assert out["a"] == {"variant": "a", "lift": 1.5, "density": pytest.approx(0.2)}
    assert out["b"]["lift"] == 3.0
    assert verdict.locality_summary([]) == []


def test_claims_round_trip_and_reach_the_readme(env):
    from lshlib.report import readme

    assert verdict.load_claims("smoke", "cpu") is None
    assert "no claims table" in readme.claims_lines("smoke")[0]
    rows = [{"claim": "c | d", "paper's evidence": "e", "our measurement": "m", "verdict": "v"}]
    verdict.save_claims(rows, "smoke")
    assert verdict.load_claims("smoke", "cpu") == rows
    table = "\n".join(readme.claims_lines("smoke"))
    assert "| c \\| d | e | m |  |  |  | v |" in table  # older rows: no unit, test or p


def test_locality_rows_are_cached_per_run_and_redone_for_a_new_record(env, monkeypatch):
    config = training.run_config("mlm", "baseline", "smoke", 42)
    stamp = {"finished_at": "t1"}
    monkeypatch.setattr(training, "load_record", lambda c: dict(stamp))
    calls = []

    def fake_locality(model, sentences, draws, scale=None):
        calls.append((sentences, draws))
        return [{"layer": 0, "head": 0, "lift": 2.0}]

    monkeypatch.setattr(comparisons, "trained_locality", fake_locality)
    monkeypatch.setattr(comparisons, "load_model", lambda path, task: None)
    with pytest.raises(safeio.DerivedFileError, match="python -m lshlib.verdict --derived"):
        verdict.locality_table([config], "smoke")  # a reader never computes
    with pytest.raises(FileNotFoundError, match=f"{config.name} has no final model"):
        verdict.locality_table([config], "smoke", compute=True)
    final = training.run_dir(config) / "final"
    final.mkdir(parents=True, exist_ok=True)
    (final / "config.json").write_text("{}")
    rows = verdict.locality_table([config], "smoke", compute=True)
    assert rows == [{"variant": "baseline", "seed": 42, "layer": 0, "head": 0, "lift": 2.0}]
    assert verdict.locality_table([config], "smoke") == rows and len(calls) == 1  # cached
    (final / "config.json").unlink()
    assert verdict.locality_table([config], "smoke") == rows  # no model needed once cached
    stamp["finished_at"] = "t2"  # the run was trained again: its rows are recomputed
    with pytest.raises(safeio.DerivedFileError, match="stale"):
        verdict.locality_table([config], "smoke")
    with pytest.raises(FileNotFoundError):
        verdict.locality_table([config], "smoke", compute=True)


def test_workers_setting_is_checked(env, monkeypatch):
    monkeypatch.setenv("LSHLIB_WORKERS", "0")
    with pytest.raises(ValueError, match="LSHLIB_WORKERS must be an integer >= 1, got '0'"):
        verdict.workers_from_env()
    monkeypatch.setenv("LSHLIB_WORKERS", "2")
    assert verdict.workers_from_env() == 2
    with pytest.raises(ValueError, match="workers must be an integer >= 1, got 0"):
        verdict.run_plan("smoke", groups=["controls"], workers=0)


def test_train_missing_starts_fine_tuning_once_its_model_is_saved(monkeypatch):
    """The scheduler on threads with a fake training.run: fine-tuning waits for its pretraining
    run, fills the other worker meanwhile, and two runs that would both make one missing
    pretrained model never run together."""
    saved, log, lock = set(), [], threading.Lock()

    def fake_run(config, progress, chain):
        with lock:
            log.append(("start", config.name))
        time.sleep(0.05)
        with lock:
            saved.update({config.name, config.pretrained} if chain else {config.name})
            log.append(("end", config.name))
        return {"name": config.name}

    monkeypatch.setattr(training, "run", fake_run)
    monkeypatch.setattr(training, "pretrained_saved", lambda c: c.pretrained in saved)
    run = types.SimpleNamespace
    configs = [
        run(name="P", task="mlm", pretrained=None),
        run(name="A", task="sst2", pretrained="P"),
        run(name="B", task="sst2", pretrained="P"),
        run(name="C", task="sst2", pretrained=None),
        run(name="X", task="sst2", pretrained="Q"),
        run(name="Y", task="squad", pretrained="Q"),
    ]
    with ThreadPoolExecutor(2) as pool:
        out = verdict.train_missing(configs, pool, workers=2)
    assert sorted(out) == ["A", "B", "C", "P", "X", "Y"]
    at = {event: log.index(event) for event in log}
    assert at[("start", "A")] > at[("end", "P")] and at[("start", "B")] > at[("end", "P")]
    assert at[("start", "C")] < at[("end", "P")]  # C needs no model: it runs beside P
    first, second = sorted(["X", "Y"], key=lambda n: at[("start", n)])
    assert at[("start", second)] > at[("end", first)]  # Q is made once, by the first
    running = 0
    for kind, _ in log:
        running += 1 if kind == "start" else -1
        assert running <= 2


@pytest.mark.slow
def test_two_workers_train_what_one_would(env):
    """The controls group with two worker processes: its baseline checkpoints and its
    fine-tuning runs are all trained in the pool; every record comes back in plan order,
    finished, and reused after."""
    records = verdict.run_plan("smoke", groups=["controls"], progress=False, workers=2)
    planned = [c.name for c in verdict.plan("smoke")["controls"]]
    assert [r["name"] for r in records["controls"]] == planned
    assert all(r["status"] == "finished" for r in records["controls"])
    threads = max(1, (os.cpu_count() or 1) // 2)  # each worker gets its share of the cores
    assert {r["device"]["threads"] for r in records["controls"]} == {threads}
    again = verdict.run_plan("smoke", groups=["controls"], progress=False, workers=2)
    assert again == records  # every run reused, no process started


def test_row_finds_a_variant_or_names_the_ones_there():
    rows = [{"variant": "a", "x": 1}, {"variant": "b", "x": 2}]
    assert verdict.row(rows, "b")["x"] == 2
    with pytest.raises(ValueError, match=r"no row for 'c'; variants: \['a', 'b'\]"):
        verdict.row(rows, "c")


def test_recorded_training_sums_minutes_per_thread_count(monkeypatch):
    run = types.SimpleNamespace
    configs = [run(name="a"), run(name="b"), run(name="c"), run(name="d")]
    monkeypatch.setattr(planning, "plan", lambda scale: {"x": configs[:3], "y": configs[1:]})
    records = {
        "a": {"device": {"threads": 2}, "train_seconds": 600.0},
        "b": {"device": {"threads": 1}, "train_seconds": 120.0},
        "c": {"device": {"threads": 1}, "train_seconds": 60.0},
    }
    monkeypatch.setattr(training, "load_record", lambda c: records.get(c.name))
    t = verdict.recorded_training("smoke")
    assert t == {"minutes": {2: 10.0, 1: 3.0}, "runs": 3, "planned": 4}  # b, c counted once


def test_holm_with_reproduces_the_family_adjustment_and_projects_one_p():
    from lshlib.verdict import claims

    made = claims.adjust(
        [
            claims.Claim(k, "c", "e", "m", p=p, interval=(0.01, 0.02), estimate=0.01)
            for k, p in (("pretraining", 0.001), ("sst2", 0.04), ("plateau", 0.2))
        ]
        + [claims.Claim("compute", "c", "e", "m")]  # outside the family
    )
    rows = [c.to_dict() for c in made]
    for row in rows[:3]:  # the saved adjustment, with the row's own p, six members absent (p = 1)
        assert claims.holm_with(rows, row["key"], row["p"]) == pytest.approx(row["p_holm"])
    assert rows[0]["p_holm"] == pytest.approx(9 * 0.001)
    # the plateau row at p = 0.0159 ranks second (above pretraining's 0.001): 8 x 0.0159
    assert claims.holm_with(rows, "plateau", 0.0159) == pytest.approx(8 * 0.0159)
    # a member not in the rows yet (squad) enters in place of one absent member
    assert claims.holm_with(rows, "squad", 0.0) == 0.0
    with pytest.raises(ValueError, match="compute"):
        claims.holm_with(rows, "compute", 0.1)
    with pytest.raises(ValueError, match=r"\[0, 1\], got 1.5"):
        claims.holm_with(rows, "plateau", 1.5)
