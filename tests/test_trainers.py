"""The sparse-head MLM Trainer: training and evaluation equal to the full head's, and the run
clock's stage times."""

from __future__ import annotations

import datasets
import numpy as np
import pytest
import torch
from transformers import Trainer, TrainingArguments

from lshlib.modeling import build_model
from lshlib.training import metrics
from lshlib.training.trainers import RunClock, SparseMLMTrainer, TextProgress

VOCAB = 60
TINY = {
    "hidden_size": 16,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "intermediate_size": 32,
}


def _masked_set(rows: int = 20, n: int = 24, seed: int = 0) -> datasets.Dataset:
    g = np.random.default_rng(seed)
    ids = g.integers(5, VOCAB, (rows, n))
    labels = np.where(g.random((rows, n)) < 0.2, ids, -100)
    labels[:, 1] = ids[:, 1]  # at least one labelled position per row
    return datasets.Dataset.from_dict({"input_ids": ids.tolist(), "labels": labels.tolist()})


def _collate(features):
    return {k: torch.tensor([f[k] for f in features]) for k in features[0]}


def _args(tmp_path, **kw) -> TrainingArguments:
    return TrainingArguments(
        output_dir=str(tmp_path),
        per_device_eval_batch_size=8,
        per_device_train_batch_size=4,
        report_to="none",
        disable_tqdm=True,
        use_cpu=True,
        seed=0,
        **kw,
    )


def _accuracy(pred):
    return {"accuracy": metrics.masked_accuracy(pred.predictions, pred.label_ids)}


def test_evaluation_equals_the_full_head(tmp_path):
    model = build_model("mlm", "baseline", vocab_size=VOCAB, seed=0, **TINY)
    evaluation = _masked_set()
    common = dict(model=model, data_collator=_collate, compute_metrics=_accuracy)
    full = Trainer(
        args=_args(tmp_path / "full"),
        preprocess_logits_for_metrics=lambda logits, labels: logits.argmax(-1),
        **common,
    ).evaluate(evaluation)
    sparse = SparseMLMTrainer(args=_args(tmp_path / "sparse"), **common).evaluate(evaluation)
    assert sparse["eval_loss"] == pytest.approx(full["eval_loss"], abs=1e-5)
    assert sparse["eval_accuracy"] == pytest.approx(full["eval_accuracy"], abs=1e-5)
    # and the accuracy is over the masked positions, counted by hand
    with torch.no_grad():
        batch = _collate(list(evaluation))
        logits = model(input_ids=batch["input_ids"]).logits
    keep = batch["labels"] != -100
    by_hand = (logits.argmax(-1)[keep] == batch["labels"][keep]).float().mean().item()
    assert sparse["eval_accuracy"] == pytest.approx(by_hand, abs=1e-6)


def test_training_steps_equal_the_full_head(tmp_path):
    train = _masked_set(rows=16, seed=1)
    losses = {}
    for name, cls in (("full", Trainer), ("sparse", SparseMLMTrainer)):
        model = build_model("mlm", "baseline", vocab_size=VOCAB, seed=0, **TINY)
        args = _args(tmp_path / name, max_steps=4, logging_steps=1, learning_rate=1e-3)
        trainer = cls(model=model, args=args, data_collator=_collate, train_dataset=train)
        trainer.train()
        losses[name] = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert len(losses["sparse"]) == 4
    assert losses["sparse"] == pytest.approx(losses["full"], abs=1e-4)


def test_run_clock_counts_stages():
    clock = RunClock(previous=10.0)
    clock.on_step_end(None, None, None)
    clock.on_evaluate(None, None, None)
    assert clock.evaluations == 1 and clock.eval_seconds >= 0.0
    clock.freeze()
    frozen = clock.total()
    clock.on_evaluate(None, None, None)  # after training: not counted
    assert clock.total() == frozen >= 10.0 and clock.evaluations == 1


def test_text_progress_is_one_plain_line_per_run(tmp_path, capsys):
    """No notebook widget and no per-evaluation bars: one text bar that ends at max_steps."""
    model = build_model("mlm", "baseline", vocab_size=VOCAB, seed=0, **TINY)
    trainer = SparseMLMTrainer(
        model=model,
        args=_args(tmp_path, max_steps=5, logging_steps=2, eval_strategy="steps", eval_steps=2),
        train_dataset=_masked_set(),
        eval_dataset=_masked_set(8, seed=1),
        data_collator=_collate,
        callbacks=[TextProgress("run-x", interval=0.0)],
    )
    trainer.train()
    err = capsys.readouterr().err
    final = err.replace("\r", "\n").strip().splitlines()[-1]
    assert final.startswith("run-x: 100%") and "5/5" in final and "loss=" in final
    assert "it/s" in final and final.endswith("]") and "Evaluation" not in err


def test_run_clock_stamps_each_log_entry_with_the_runs_wall_clock(tmp_path):
    model = build_model("mlm", "baseline", vocab_size=VOCAB, seed=0, **TINY)
    clock = RunClock(previous=100.0)
    trainer = SparseMLMTrainer(
        model=model,
        args=_args(tmp_path, max_steps=4, logging_steps=2),
        train_dataset=_masked_set(),
        data_collator=_collate,
        callbacks=[clock],
    )
    trainer.train()
    stamped = [h for h in trainer.state.log_history if "loss" in h]
    assert [h["step"] for h in stamped] == [2, 4]
    seconds = [h["train_seconds"] for h in stamped]
    assert 100.0 < seconds[0] <= seconds[1] <= clock.total()
