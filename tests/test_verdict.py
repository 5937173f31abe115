"""The verdict's run plan and its paired comparisons."""

from __future__ import annotations

import pytest

from lshlib import training, verdict
from lshlib.modeling import CONTROL_VARIANTS
from lshlib.paths import data_dir

pytestmark = pytest.mark.skipif(
    not (data_dir() / "corpus").is_dir(), reason="shared data not available"
)


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


def _record(variant, seed, value):
    return {"config": {"variant": variant, "seed": seed}, "final": {"test_accuracy": value}}


def test_compare_pairs_seeds_and_says_what_the_interval_says(env):
    records = [_record("baseline", s, v) for s, v in ((1, 0.80), (2, 0.82), (3, 0.81))]
    records += [_record("lsh_paper", s, v) for s, v in ((1, 0.70), (2, 0.71), (3, 0.69))]
    records += [_record("scratch", s, v) for s, v in ((1, 0.79), (2, 0.83), (3, 0.815))]
    rows = {r["variant"]: r for r in verdict.compare(records, "test_accuracy")}
    assert rows["baseline"]["n"] == 3 and "diff_mean" not in rows["baseline"]
    assert rows["lsh_paper"]["diff_mean"] == pytest.approx(-0.11)
    assert "below 0 beyond the spread" in rows["lsh_paper"]["seeds_say"]
    assert "within noise" in rows["scratch"]["seeds_say"]
    with pytest.raises(ValueError, match="reference 'nope' has no runs"):
        verdict.compare(records, "test_accuracy", reference="nope")


def test_long_plan_and_a_smoke_long_sequence_run(env):
    runs = verdict.long_plan("smoke")
    assert [c.variant for c in runs["plateau"]] == ["baseline", "lsh_paper"]
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
