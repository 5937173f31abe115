"""The pre-registered mechanism arms: the table, the reading rule, the seeds rule, and the
settings the arms add to a run (constant schedule, scaled W_Q/W_K learning rate, max_steps)."""

from __future__ import annotations

import pytest
import torch

from lshlib import training
from lshlib.experiments import mechanisms, plateau
from lshlib.modeling import build_model
from lshlib.training.trainers import scale_qk_learning_rate


def test_every_arm_changes_one_thing_and_names_a_known_explanation():
    assert [a.name for a in mechanisms.ARMS[:6]] == [
        "random_paper",
        "constant_lr",
        "short_epochs",
        "lsh_masked",
        "lr_4e-3",
        "qk_lr_0.25",
    ]
    for a in mechanisms.ARMS:
        assert a.probes in mechanisms.EXPLANATIONS and a.predicts in ("exits", "stays")
        assert set(mechanisms.HAS[a.name]) == set(mechanisms.MECHANISMS)
        reference = "baseline" if a.variant == "baseline" else "lsh_paper"
        changed = [
            m
            for m in mechanisms.MECHANISMS
            if mechanisms.HAS[a.name][m] != mechanisms.HAS[reference][m]
        ]
        assert len(changed) <= 2, (a.name, changed)  # lsh_masked: zeros and mirroring go together
    assert mechanisms.HAS["baseline"]["zero_gate"] is False
    assert mechanisms.HAS["lsh_paper"]["zero_gate"] is True


def test_reading_follows_the_rule_and_never_says_supported_below_five_seeds():
    r = mechanisms.reading("random_paper", [False, False])
    assert (r["exits_in"], r["outcome"], r["verdict"]) == (
        "exits in 0 of 2 seeds",
        "stays",
        "consistent with",
    )
    assert mechanisms.reading("random_paper", [True, True])["verdict"] == "against"
    assert mechanisms.reading("random_paper", [True, False, True])["verdict"] == "undecided"
    assert mechanisms.reading("lsh_masked", [False] * 5)["verdict"] == "supported"
    assert "below 5 seeds" in mechanisms.reading("lsh_masked", [False] * 4)["sentence"]
    with pytest.raises(ValueError, match="unknown arm 'nope'"):
        mechanisms.reading("nope", [True])
    with pytest.raises(ValueError, match="at least one finished seed"):
        mechanisms.outcome([])


def test_seed_three_runs_only_where_seeds_one_and_two_disagree():
    assert mechanisms.seeds_for({}) == (1, 2)
    assert mechanisms.seeds_for({1: True}) == (1, 2)
    assert mechanisms.seeds_for({1: True, 2: True}) == (1, 2)
    assert mechanisms.seeds_for({1: True, 2: False}) == (1, 2, 3)


def test_arm_runs_keep_the_plateau_schedule_and_pair_with_its_seeds():
    short = plateau.arm_config(mechanisms.arm("short_epochs"), 1, "laptop")
    assert (short.max_train, short.max_steps, short.stop_at) == (60_000, 25_700, 16_000)
    # 60,000 blocks at batch 16: an epoch every 3,750 steps on the same 25,700-step schedule
    assert 60_000 // short.batch_size == 3750
    constant = plateau.arm_config(mechanisms.arm("constant_lr"), 2, "laptop")
    base = plateau.pretraining_config("baseline", 2, "laptop")
    assert constant.lr_schedule == "constant" and constant.seed == base.seed
    assert {k: v for k, v in constant.to_dict().items() if k != "lr_schedule"} == base.to_dict()
    names = {j.name for j in plateau.arm_jobs("laptop")}
    assert len(names) == 2 * len(mechanisms.ARMS)  # no arm has both seeds recorded yet
    assert plateau.arm_jobs("smoke") == []


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"lr_schedule": "cosine"}, "lr_schedule must be one of linear, constant"),
        ({"qk_lr_scale": 0.0}, r"qk_lr_scale must lie in \(0, 100\]"),
        ({"max_steps": 0}, "max_steps must be None or an integer >= 1"),
    ],
)
def test_bad_arm_settings_are_refused(overrides, message):
    with pytest.raises(ValueError, match=message):
        training.RunConfig(task="mlm", variant="baseline", scale="smoke", **overrides)


def test_qk_learning_rate_is_scaled_in_groups_of_their_own():
    tiny = dict(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32)
    model = build_model("mlm", "baseline", vocab_size=50, seed=0, **tiny)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    moved = scale_qk_learning_rate(opt, model, 0.25)
    assert moved == 2 * 2 * 2  # 2 layers x (W_Q, W_K) x (weight, bias)
    lrs = sorted({g["lr"] for g in opt.param_groups})
    assert lrs == [pytest.approx(2.5e-4), pytest.approx(1e-3)]
    qk = [g for g in opt.param_groups if g["lr"] == pytest.approx(2.5e-4)][0]["params"]
    names = {n for n, p in model.named_parameters() if any(p is q for q in qk)}
    assert all(".attention.self.query." in n or ".attention.self.key." in n for n in names)
    assert sum(len(g["params"]) for g in opt.param_groups) == len(list(model.parameters()))
