"""A finished run's final scores over K fixed hash draws, with per-example predictions.

A model whose LSH hashes are drawn at every call (``rehash="call"``) or whose random pairs are
drawn at every call scores differently on every pass over its test set. So the final scores of a
run are taken over :data:`K_DRAWS` fixed draws (draw ``i`` from a generator seeded with
:func:`lshlib.training.trainers.draw_seed` of the run's seed and ``i``): their mean and spread go
into the record as ``<metric>_draws``, beside the existing key, which is draw 0's value. Draw 0's
per-example predictions go into the record too, so paired statistics read records and never
reload or re-score a model. A deterministic model (baseline, fixed hashes) is scored once.

Per-example fields are stored compactly: 0/1 correctness and class labels as strings of digits
(one character per example), SQuAD scores as lists of numbers; :func:`examples_of` decodes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
from transformers import Trainer

from lshlib.modeling import lsh_config_of
from lshlib.training import metrics
from lshlib.training.metrics import IGNORE_INDEX
from lshlib.training.trainers import draw_seed

__all__ = ["K_DRAWS", "per_call_random", "scored_draws", "final_draws", "examples_of"]

K_DRAWS = 8
# What each task scores per example and the key of the draw summary.
_SUMMARY = {"mlm": "validation_accuracy", "sst2": "test_accuracy", "squad": "test_f1"}


def per_call_random(model: Any) -> bool:
    """Whether ``model``'s attention draws anything at every call (hashes or random pairs)."""
    if getattr(model.config, "lsh", None) is None:
        return False
    lsh = lsh_config_of(model.config)
    return lsh.rehash == "call" or lsh.pairs == "random"


def _digits(values: np.ndarray) -> str:
    return "".join(str(int(v)) for v in values)


def _mlm(trainer: Trainer, job: Any) -> tuple[dict, dict]:
    pred = trainer.predict(job.evaluation, metric_key_prefix="validation")
    labels = np.asarray(pred.label_ids)
    scored = labels != IGNORE_INDEX
    correct = np.asarray(pred.predictions)[scored] == labels[scored]
    return pred.metrics, {"split": "validation", "correct": _digits(correct)}


def _sst2(trainer: Trainer, job: Any) -> tuple[dict, dict]:
    pred = trainer.predict(job.test, metric_key_prefix="test")
    predicted = np.argmax(pred.predictions, axis=-1)
    correct = predicted == np.asarray(pred.label_ids)
    return pred.metrics, {
        "split": "test",
        "predicted": _digits(predicted),
        "correct": _digits(correct),
    }


def _squad(trainer: Trainer, job: Any) -> tuple[dict, dict]:
    start = time.perf_counter()
    pred = trainer.predict(job.test.remove_columns(["example_id", "offset_mapping"]))
    start_logits, end_logits = pred.predictions
    answers = metrics.squad_postprocess(job.raw_test, job.test, start_logits, end_logits)
    refs = {ex["id"]: ex["answers"]["text"] for ex in job.raw_test}
    scores = [metrics.squad_scores({i: answers[i]}, {i: refs[i]}) for i in refs]
    overall = {f"test_{k}": v for k, v in metrics.squad_scores(answers, refs).items()}
    runtime = time.perf_counter() - start
    overall.update(
        test_runtime=runtime,
        test_samples_per_second=len(job.raw_test) / runtime,
        test_features_per_second=len(job.test) / runtime,
    )
    examples = {
        "split": "test",
        "exact_match": [round(s["exact_match"], 3) for s in scores],
        "f1": [round(s["f1"], 3) for s in scores],
    }
    return overall, examples


SCORERS: dict[str, Callable[[Trainer, Any], tuple[dict, dict]]] = {
    "mlm": _mlm,
    "sst2": _sst2,
    "squad": _squad,
}


def scored_draws(trainer: Trainer, seed: int, draws: int, score: Callable) -> list[tuple]:
    """``score(trainer)`` under each of ``draws`` fixed draws (evaluation seeds
    ``draw_seed(seed, i)``); the trainer's own evaluation seed is restored afterwards."""
    if draws < 1:
        raise ValueError(f"draws must be >= 1, got {draws!r}")
    base = trainer.eval_seed
    try:
        out = []
        for i in range(draws):
            trainer.eval_seed = draw_seed(seed, i)
            out.append(score(trainer))
        return out
    finally:
        trainer.eval_seed = base


def final_draws(trainer: Trainer, job: Any, task: str, seed: int) -> tuple[dict, dict]:
    """The final scores of a run: draw 0's metrics (the existing keys), ``<key>_draws`` (the
    values of every draw; one for a deterministic model) and draw 0's per-example
    predictions."""
    k = K_DRAWS if per_call_random(trainer.model) else 1
    results = scored_draws(trainer, seed, k, lambda t: SCORERS[task](t, job))
    first, examples = results[0]
    key = _SUMMARY[task]
    values = [float(m[key]) for m, _ in results]
    summary = {
        f"{key}_draws": values,
        f"{key}_draws_mean": float(np.mean(values)),
        f"{key}_draws_sd": float(np.std(values, ddof=1)) if k > 1 else 0.0,
    }
    return {**first, **summary}, {**examples, "draw": 0, "draws": k}


def examples_of(record: dict) -> dict[str, list]:
    """A record's per-example predictions decoded (digit strings to lists of ints); raises
    ``KeyError`` naming the run when the record holds none (older records)."""
    if "examples" not in record:
        raise KeyError(f"record {record.get('name')!r} holds no per-example predictions")
    out: dict[str, list] = {}
    for key, value in record["examples"].items():
        if key in ("correct", "predicted"):
            out[key] = [int(c) for c in value]
        elif isinstance(value, list):
            out[key] = value
    return out
