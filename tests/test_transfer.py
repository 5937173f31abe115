"""Transfer from the plateau runs: labels, the pretraining run as the unit, the arms' readings,
and the SQuAD row, from synthetic records."""

from __future__ import annotations

import pytest

from lshlib.experiments import mechanisms, plateau
from lshlib.report import verdict as rv
from lshlib.verdict import transfer


def chained(variant: str, pretrained: str, seed: int, ft_seed: int, acc: float, paper=False):
    config = {
        "task": "sst2",
        "variant": variant,
        "seed": ft_seed,
        "scale": "laptop",
        "pretrained": f"mlm-{pretrained}-s{seed}",
        "learning_rate": 5e-4,
        "epochs": 1.0,
        "batch_size": 32,
        "warmup": 0.05,
    }
    if paper:
        config.update(learning_rate=2e-5, epochs=3.0, batch_size=32, warmup=0.0)
    return {
        "name": f"{variant}-{pretrained}-{seed}-{ft_seed}-{paper}",
        "config": config,
        "final": {"test_accuracy": acc},
        "pretrained_run": {"config": {"variant": pretrained, "seed": seed}},
    }


def test_labels_say_weights_attention_and_settings():
    assert transfer.label(chained("lsh_paper", "lsh_paper", 1, 1, 0.8)) == "lsh_paper"
    full = chained("baseline", "lsh_paper", 1, 1, 0.8)
    assert transfer.label(full) == "lsh_paper weights, full attention"
    paper = chained("baseline", "baseline", 1, 1, 0.8, paper=True)
    assert transfer.label(paper) == "baseline, paper settings"
    scratch = {"config": {"variant": "scratch", "learning_rate": 5e-4}}
    assert transfer.label(scratch) == "scratch"


def test_transfer_rows_average_fine_tuning_seeds_per_pretraining_run(monkeypatch):
    records = []
    for seed, (b, lsh) in {1: (0.80, 0.82), 2: (0.78, 0.81), 3: (0.79, 0.80)}.items():
        for ft, bump in ((1, 0.0), (2, 0.01)):
            records.append(chained("baseline", "baseline", seed, ft, b + bump))
            records.append(chained("lsh_paper", "lsh_paper", seed, ft, lsh + bump))
        records.append(chained("baseline", "lsh_paper", seed, 1, lsh - 0.02))
    relabelled = [transfer._relabelled(r) for r in records]
    monkeypatch.setattr(transfer, "transfer_records", lambda scale=None: relabelled)
    monkeypatch.setattr(transfer, "_scratch", lambda scale, paper: [])
    rows = transfer.transfer_rows("laptop")
    lsh = next(r for r in rows["main"] if r["variant"] == "lsh_paper")
    # unit means: baseline 0.805, 0.785, 0.795; lsh_paper 0.825, 0.815, 0.805 -> +0.02 mean
    assert lsh["n"] == 3 and lsh["n_desc"] == "3 pretraining runs x 6 fine-tuning seeds"
    assert lsh["diff_mean"] == pytest.approx((0.02 + 0.03 + 0.01) / 3)
    full = next(r for r in rows["full_attention"] if "full attention" in r["variant"])
    assert full["diff_mean"] == pytest.approx(-0.025) and full["test"].startswith("paired t")
    assert rows["paper_settings"] == []


def test_arm_readings_read_the_rule_and_the_pre_registered_table(monkeypatch):
    from tests.test_exits import record

    arm = mechanisms.arm("random_paper")
    made = {
        plateau.arm_config(arm, 1, "laptop").name: record("random_paper", 1, None),
        plateau.arm_config(arm, 2, "laptop").name: record("random_paper", 2, None),
    }
    monkeypatch.setattr(transfer.training, "load_record", lambda c: made.get(c.name))
    readings = transfer.arm_readings("laptop")
    assert [r["arm"] for r in readings] == ["random_paper"]
    r = readings[0]
    assert (r["exits_in"], r["outcome"], r["verdict"]) == (
        "exits in 0 of 2 seeds",
        "stays",
        "consistent with",
    )
    assert r["km"] == [(0, 1.0)]


def test_squad_row_is_uninformative_and_outside_the_family():
    records = [{"final": {"test_f1": f}} for f in (8.5, 11.0, 9.2)]
    row = transfer.squad_claim(records, 6.2)
    assert row["measurement"] == (
        "SQuAD test F1 of every model, 3 runs: 8.5 to 11.0 points against 6.2 for a lexical "
        "baseline"
    )
    assert row["verdict"].startswith("uninformative at this scale")
    compute = {"claim": "c", "paper's evidence": "e", "our measurement": "m", "verdict": "v"}
    squad = [
        {"variant": "baseline", "n": 2, "sd": 1.0},
        {
            "variant": "lsh_paper",
            "n": 2,
            "sd": 1.0,
            "diff_mean": -0.9,
            "diff_low": -14.0,
            "diff_high": 12.3,
            "p": 0.6,
            "unit": "pretraining run",
            "n_desc": "2 runs",
            "test": "paired t",
        },
    ]
    table = rv.claims(
        pretraining=[],
        generalisation=[],
        sst2=[],
        squad=squad,
        controls=[],
        compute=compute,
        squad_floor=row,
    )
    by = {r["key"]: r for r in table}
    assert by["squad"]["verdict"].startswith("uninformative") and not by["squad"]["family"]
    assert transfer.squad_claim([], 6.2) is None
