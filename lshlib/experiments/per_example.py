"""Per-example test scores of a finished run, for paired statistics
(:mod:`lshlib.experiments.stats`).

A run's record keeps aggregate metrics; comparing two variants on the same test examples (a
paired bootstrap, McNemar's test) needs each example's score. :func:`example_scores` reloads a
finished run's final model from the local run cache and scores it again on its test set:

* ``mlm``: whether each masked evaluation position is predicted exactly (``correct``);
* ``sst2``: whether each test sentence is classified right (``correct``);
* ``squad``: each test question's exact match and F1, in percent (``exact_match``, ``f1``).

Hash functions redrawn at every call make an LSH model's predictions random; torch is seeded
with the run's seed first, so the scores are reproducible. They are cached next to the run's
record as ``results/<scale>/examples/<run>.json``, stamped with the record's ``finished_at``: a
run trained again (``make reproduce``) is scored again.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import Trainer, TrainingArguments

from lshlib import data, safeio
from lshlib.modeling import load_model
from lshlib.paths import results_dir
from lshlib.training import RunConfig, features, jobs, load_record, metrics, quiet_bars, run_dir
from lshlib.training.metrics import IGNORE_INDEX
from lshlib.training.trainers import SparseMLMTrainer

__all__ = ["example_scores", "examples_path"]


def examples_path(config: RunConfig) -> Path:
    """Where the per-example scores of ``config``'s run are cached."""
    return results_dir(config.scale) / "examples" / f"{config.name}.json"


def _trainer(model, config: RunConfig, tmp: str, cls: type[Trainer] = Trainer, **kw) -> Trainer:
    args = TrainingArguments(
        output_dir=tmp,
        per_device_eval_batch_size=config.eval_batch_size,
        report_to="none",
        disable_tqdm=True,
        use_cpu=not torch.cuda.is_available(),
    )
    return cls(model=model, args=args, **kw)


def _mlm(model, config: RunConfig, tokenizer, tmp: str) -> dict[str, list]:
    evaluation = features.mlm_eval_set(
        tokenizer, config.max_length, config.max_eval, config.mlm_probability
    )
    trainer = _trainer(
        model,
        config,
        tmp,
        SparseMLMTrainer,
        data_collator=features.MLMCollator(tokenizer, config.mlm_probability, config.seed),
    )
    pred = trainer.predict(evaluation)
    labels = np.asarray(pred.label_ids)
    scored = labels != IGNORE_INDEX
    correct = np.asarray(pred.predictions)[scored] == labels[scored]
    return {"correct": correct.astype(int).tolist()}


def _finetune(model, config: RunConfig, tokenizer, tmp: str) -> dict[str, list]:
    job = jobs.prepare_finetune(config, tokenizer, model)
    trainer = _trainer(model, config, tmp, data_collator=job.collator)
    if config.task == "sst2":
        pred = trainer.predict(job.test)
        correct = np.argmax(pred.predictions, axis=-1) == np.asarray(pred.label_ids)
        return {"correct": correct.astype(int).tolist()}
    pred = trainer.predict(job.test.remove_columns(["example_id", "offset_mapping"]))
    start_logits, end_logits = pred.predictions
    answers = metrics.squad_postprocess(job.raw_test, job.test, start_logits, end_logits)
    scores = [
        metrics.squad_scores({ex["id"]: answers[ex["id"]]}, {ex["id"]: ex["answers"]["text"]})
        for ex in job.raw_test
    ]
    return {"exact_match": [s["exact_match"] for s in scores], "f1": [s["f1"] for s in scores]}


def _read_cached(path: Path) -> tuple[dict | None, str | None]:
    """The cached scores in ``path`` (``None`` when absent or unreadable) and, when unreadable,
    why; read-only."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, None
    except (OSError, ValueError) as err:  # JSONDecodeError, UnicodeDecodeError: ValueErrors
        return None, f"it is unreadable ({err})"
    if not isinstance(value, dict):
        return None, f"it holds {type(value).__name__}, not a JSON object"
    return value, None


def example_scores(config: RunConfig, save: bool = True) -> dict[str, Any]:
    """The per-example test scores of ``config``'s finished run (cached; see the module).

    Raises ``FileNotFoundError`` naming the run when its final model is not in ``runs/``.
    Reading never moves the cache file (it sits beside the committed records): an unreadable
    one is scored again and overwritten, or named in the error when the model is missing."""
    path = examples_path(config)
    cached, unreadable = _read_cached(path)
    record = load_record(config) or {}
    stamp = record.get("finished_at")
    if cached is not None and cached.get("run") == config.name and cached.get("finished") == stamp:
        return cached
    final = run_dir(config) / "final"
    if not (final / "config.json").is_file():
        raise FileNotFoundError(
            f"run {config.name} has no final model under {final.parent}; train it first "
            f"(`python -m lshlib.training --scale {config.scale} --task {config.task} "
            f"--variant {config.variant} --seed {config.seed}`)"
            + (
                f", or restore {path} (`git checkout -- {path}`): {unreadable}"
                if unreadable
                else ""
            )
        )
    tokenizer = data.get_tokenizer(config.scale)
    with quiet_bars():
        model = load_model(final, config.task).eval()
    torch.manual_seed(config.seed)
    with tempfile.TemporaryDirectory() as tmp, torch.no_grad(), quiet_bars():
        score = _mlm if config.task == "mlm" else _finetune
        scores = {
            "run": config.name,
            "finished": stamp,
            "task": config.task,
            **score(model, config, tokenizer, tmp),
        }
    if save:
        path.parent.mkdir(parents=True, exist_ok=True)
        safeio.atomic_write_json(path, scores)
    return scores
