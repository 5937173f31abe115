"""Pretraining (MLM) and fine-tuning (SST-2, SQuAD) on the transformers ``Trainer``, as resumable,
cached runs.

A run is keyed by its full configuration (:class:`RunConfig`: scale, task, variant, seed, data
sizes, hyper-parameters, tokenizer): its name ends in a short hash of that configuration. A
finished run writes ``results/<scale>/<name>.json`` (configuration, train and eval loss
curves, final metrics, wall-clock, tokens per second, device, library versions; the layout is
:mod:`lshlib.paths`'s; written atomically) and is reused from then on; an interrupted one
resumes from its newest *valid* checkpoint under ``runs/training/<scale>/<name>/``. Incomplete
checkpoints (a kill during a save) and corrupt records are reported with their path and moved
aside (:mod:`lshlib.checkpoints`, :mod:`lshlib.safeio`), and a resumed run's record equals an
uninterrupted run's except for wall-clock fields (:func:`lshlib.checkpoints.without_wall_clock`).
Model inputs come from :mod:`lshlib.features`, sizes from :data:`lshlib.scales.TRAINING`.

MLM runs (every scale) use :class:`lshlib.trainers.SparseMLMTrainer`: the vocabulary projection
only at the masked positions, in training and evaluation. Fine-tuning runs exist for every
variant plus ``scratch``, the random-initialisation control (baseline model, no pretraining).

Command line (the same entry point works under ``accelerate launch`` or ``torchrun``: with more
than one process, data parallel over gloo on CPU or nccl on GPU; ``batch_size`` is per process,
the run's name records ``processes``, and the main process writes records and checkpoints)::

    python -m lshlib.training --scale laptop --task all --variant all
    torchrun --nproc_per_node 2 -m lshlib.training --scale smoke --task mlm --variant baseline
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import json
import logging
import math
import os
import platform
import re
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import accelerate
import datasets
import tokenizers
import torch
import transformers
from tqdm.std import tqdm
from transformers import (
    PrinterCallback,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)

from lshlib import checkpoints, data, diagnostics, features, jobs, metrics, safeio, scoring
from lshlib.measure import commit, cpu_model
from lshlib.modeling import CONTROL_VARIANTS, LONG_VARIANTS, VARIANTS
from lshlib.paths import results_dir, runs_dir
from lshlib.scales import SCALES, get_scale, sizes
from lshlib.trainers import Diagnostics, RunClock, StopAt, TextProgress

log = logging.getLogger(__name__)

TASKS: tuple[str, ...] = ("mlm", "sst2", "squad")
FINETUNE_TASKS: tuple[str, ...] = ("sst2", "squad")
# Keys a finished record must have; a record without them is corrupt (moved aside, rerun).
RECORD_KEYS: frozenset[str] = frozenset({"name", "status", "config", "final", "steps"})
REUSE_ENV_VAR = "LSHLIB_REUSE"
REUSE_MODES: tuple[str, ...] = ("results", "runs")  # which finished runs :func:`run` reuses
# The random-initialisation control of fine-tuning: the baseline model, no pretraining.
SCRATCH = "scratch"
FINETUNE_VARIANTS: tuple[str, ...] = (*VARIANTS, SCRATCH)
# Every variant a run may have: the main ones, scratch, and the attention controls.
RUN_VARIANTS: tuple[str, ...] = (*FINETUNE_VARIANTS, *CONTROL_VARIANTS, *LONG_VARIANTS)


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines a run; its hash names the run (see :attr:`name`)."""

    task: str
    variant: str
    scale: str
    seed: int = 42
    tokenizer: str = ""  # name of the tokenizer cache folder (scale, vocab, corpus key)
    max_length: int = 128  # MLM block size / maximum sequence length
    doc_stride: int = 128  # SQuAD window overlap
    pad_to_max_length: bool = False
    max_train: int | None = None  # examples (MLM: blocks) used; None = all
    max_eval: int | None = None
    max_test: int | None = None
    corpus_chars: int | None = None  # MLM: use only the first characters of the training corpus
    epochs: float = 1.0
    batch_size: int = 16
    eval_batch_size: int = 64
    learning_rate: float = 5e-5
    weight_decay: float = 0.0
    warmup: float = 0.0  # fraction of steps (linear warm-up, then linear decay)
    mlm_probability: float = 0.15
    logging_steps: int = 25
    eval_steps: int = 100
    save_steps: int = 100
    pretrained: str | None = None  # name of the MLM run a fine-tuning run starts from
    model_overrides: dict[str, Any] = field(default_factory=dict)  # BertConfig fields (tests)
    processes: int = 1  # data-parallel processes (batch_size is per process); see run_config
    # Settings added after runs were committed: left out of the name while at their default, so
    # every committed run keeps its name (OPTIONAL_DEFAULTS).
    stop_at: int | None = None  # stop at this step; the schedule stays that of `epochs`
    isolated_eval: bool = False  # evaluations never touch the training RNG (lshlib.trainers)
    diagnostics: bool = False  # attention diagnostics on a fixed probe at every evaluation
    max_steps: int | None = None  # the schedule's length in steps (instead of `epochs`)
    lr_schedule: str = "linear"  # after warm-up: "linear" decay to 0, or "constant"
    qk_lr_scale: float = 1.0  # learning rate of W_Q and W_K relative to the others

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"unknown task {self.task!r}; valid tasks are: {', '.join(TASKS)}")
        valid = tuple(v for v in RUN_VARIANTS if not (self.task == "mlm" and v == SCRATCH))
        if self.variant not in valid:
            raise ValueError(
                f"unknown variant {self.variant!r} for task {self.task!r}; "
                f"valid: {', '.join(valid)}"
            )
        if self.scale not in SCALES:
            raise ValueError(f"unknown scale {self.scale!r}; valid scales: {', '.join(SCALES)}")
        if self.stop_at is not None and (not isinstance(self.stop_at, int) or self.stop_at < 1):
            raise ValueError(f"stop_at must be None or a step >= 1, got {self.stop_at!r}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(
                f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}, got {self.lr_schedule!r}"
            )
        if not 0 < self.qk_lr_scale <= 100:
            raise ValueError(f"qk_lr_scale must lie in (0, 100], got {self.qk_lr_scale!r}")
        steps = self.max_steps
        if steps is not None and (not isinstance(steps, int) or steps < 1):
            raise ValueError(f"max_steps must be None or an integer >= 1, got {self.max_steps!r}")
        if self.diagnostics and (self.task != "mlm" or not self.isolated_eval):
            raise ValueError(
                "diagnostics run on MLM runs with isolated_eval=True only, got "
                f"task {self.task!r}, isolated_eval={self.isolated_eval!r}"
            )
        if (self.task == "mlm" or self.variant == SCRATCH) and self.pretrained is not None:
            raise ValueError(
                f"a {self.task} run of variant {self.variant!r} starts from random weights: "
                f"pretrained must be None, got {self.pretrained!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        """The configuration as plain JSON-able values; the settings of
        :data:`OPTIONAL_DEFAULTS` only when they differ from their default, so runs made before
        a setting existed keep their names."""
        values = dataclasses.asdict(self)
        for key, default in OPTIONAL_DEFAULTS.items():
            if values[key] == default:
                del values[key]
        return json.loads(json.dumps(values, sort_keys=True))

    @property
    def key(self) -> str:
        """Eight hex digits of the SHA-1 of the configuration."""
        return hashlib.sha1(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:8]

    @property
    def name(self) -> str:
        """``<task>-<variant>-s<seed>-<key>``."""
        return f"{self.task}-{self.variant}-s{self.seed}-{self.key}"


# Settings that are part of a run's name only when they differ from these defaults.
OPTIONAL_DEFAULTS: dict[str, Any] = {
    "processes": 1,
    "stop_at": None,
    "isolated_eval": False,
    "diagnostics": False,
    "max_steps": None,
    "lr_schedule": "linear",
    "qk_lr_scale": 1.0,
}
LR_SCHEDULES = {"linear": "linear", "constant": "constant_with_warmup"}  # transformers' names
PROBE_BLOCKS = 64  # the diagnostics' fixed probe: the first blocks of the MLM evaluation set


def run_config(task: str, variant: str, scale: str | None = None, seed: int = 42, **overrides):
    """The :class:`RunConfig` of ``task`` and ``variant`` at ``scale`` (sizes from
    :data:`lshlib.scales.TRAINING`), with ``overrides`` on top. A fine-tuning run points at the
    MLM run of the same variant and seed (built with the same ``overrides`` restricted to the
    model), unless ``pretrained`` is given."""
    scale = get_scale(scale)
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; valid tasks are: {', '.join(TASKS)}")
    values: dict[str, Any] = sizes(f"training/{task}", scale)
    values["tokenizer"] = data.tokenizer_dir(scale).name
    values["processes"] = int(os.environ.get("WORLD_SIZE", "1"))  # set by torchrun / accelerate
    values.update(overrides)
    if task != "mlm" and variant != SCRATCH and "pretrained" not in overrides:
        model = (
            {"model_overrides": overrides["model_overrides"]}
            if "model_overrides" in overrides
            else {}
        )
        values["pretrained"] = run_config("mlm", variant, scale, seed, **model).name
    return RunConfig(task=task, variant=variant, scale=scale, seed=seed, **values)


# --------------------------------------------------------------------------- paths


def results_path(scale: str, run: str) -> Path:
    """The record of ``run``: ``results/<scale>[-<device>]/<run>.json`` (:mod:`lshlib.paths`)."""
    return results_dir(scale) / f"{run}.json"


def run_dir(config: RunConfig) -> Path:
    """Checkpoints and the final model: ``runs/training/<scale>/<name>/``."""
    return runs_dir() / "training" / config.scale / config.name


def load_record(config: RunConfig) -> dict | None:
    """The finished run's JSON record, or ``None`` if absent or written for another config.

    A corrupt record (truncated, empty, ``[]``, ``null``, or missing :data:`RECORD_KEYS`) is
    reported with its path and moved aside, so the run is redone (resumed from its newest
    valid checkpoint) instead of every later call failing on it. With ``LSHLIB_REUSE=runs``
    (``make reproduce``) a record counts only if the run's final model is in the local run
    cache (``runs/``): committed records are then recomputed, not reused.
    """
    path = results_path(config.scale, config.name)
    record = safeio.load_json_dict(path)
    if record is None:
        return None
    missing = sorted(RECORD_KEYS - set(record))
    if missing or record["status"] != "finished":
        reason = f"missing keys {missing}" if missing else f"status {record['status']!r}"
        safeio.quarantine(path, f"not a finished run record ({reason})")
        return None
    reuse = os.environ.get(REUSE_ENV_VAR, "results").strip() or "results"
    if reuse not in REUSE_MODES:
        raise ValueError(f"{REUSE_ENV_VAR}={reuse!r}; valid values: {', '.join(REUSE_MODES)}")
    if reuse == "runs" and not (run_dir(config) / "final" / "config.json").is_file():
        return None
    return record if record.get("config") == config.to_dict() else None


class MissingRunError(FileNotFoundError):
    """A fine-tuning run needs a pretraining run that has not been made."""


# --------------------------------------------------------------------------- running


def _device() -> dict[str, Any]:
    if torch.cuda.is_available():
        return {
            "type": "cuda",
            "name": torch.cuda.get_device_name(0),
            "count": torch.cuda.device_count(),
        }
    return {
        "type": "cpu",
        "name": platform.processor() or platform.machine(),
        "model": cpu_model(),
        "threads": torch.get_num_threads(),
    }


def _versions() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
        "datasets": datasets.__version__,
        "accelerate": accelerate.__version__,
    }


def _curves(log_history: list[dict]) -> dict[str, list[dict]]:
    kept = ("step", "train_seconds")  # train_seconds: the run's wall-clock (RunClock.on_log)
    train = [
        {k: h[k] for k in ("step", "loss", "train_seconds") if k in h}
        for h in log_history
        if "loss" in h
    ]
    evals: dict[int, dict] = {}  # one point per step (the final evaluation repeats the last)
    for h in log_history:
        if "eval_loss" in h:
            evals[h["step"]] = {k: v for k, v in h.items() if k in kept or k.startswith("eval_")}
    found: dict[int, dict] = {}  # attention diagnostics (lshlib.trainers.Diagnostics)
    for h in log_history:
        if "diagnostics" in h:
            found[h["step"]] = {"step": h["step"], **h["diagnostics"]}
    curves = {"train": train, "eval": list(evals.values())}
    if found:
        curves["diagnostics"] = list(found.values())
    return curves


def pretrained_saved(config: RunConfig) -> bool:
    """Whether the model of ``config``'s pretraining run (``config.pretrained``) is saved in the
    run cache, so ``config`` can start without making it."""
    return (_pretrained_final(config) / "config.json").is_file()


def _pretrained_final(config: RunConfig) -> Path:
    return runs_dir() / "training" / config.scale / str(config.pretrained) / "final"


def pretrained_model_dir(config: RunConfig, *, chain: bool = False) -> Path:
    """The saved model of ``config``'s pretraining run (``config.pretrained``).

    When it is missing, this raises :class:`MissingRunError` naming the run to make, unless
    ``chain`` is true and it is a standard MLM run (of any variant and seed, with this model):
    then it is trained first (what :func:`run_all` and the verdict's plan do)."""
    final = _pretrained_final(config)
    if (final / "config.json").is_file():
        return final
    model = {"model_overrides": config.model_overrides} if config.model_overrides else {}
    mlm = run_config("mlm", config.variant, config.scale, config.seed, **model)
    named = re.fullmatch(r"mlm-(\w+)-s(\d+)-[0-9a-f]+", str(config.pretrained))
    if named and named[1] in VARIANTS:  # e.g. a control fine-tuned from the baseline's model
        mlm = run_config("mlm", named[1], config.scale, int(named[2]), **model)
    if not chain or mlm.name != config.pretrained:
        raise MissingRunError(
            f"fine-tuning run {config.name} needs the pretrained model {config.pretrained!r}, "
            f"which is not under {final.parent.parent}. Make it first, e.g. "
            f"`python -m lshlib.training --scale {config.scale} --task mlm "
            f"--variant {config.variant} --seed {config.seed}`, or call run(..., chain=True)"
        )
    log.info("pretrained model %s missing: running it", mlm.name)
    with quiet_bars():  # not run(): its record may be here while its model is not
        _train(mlm, callbacks=None, progress=True, chain=False)
    return final


def run(
    config: RunConfig,
    *,
    callbacks: list[TrainerCallback] | None = None,
    progress: bool = True,
    chain: bool = False,
) -> dict:
    """Run ``config`` to completion (or reuse / resume it) and return its record.

    The record is the dict written to ``results/<scale>/<name>.json``. If a callback stops
    training early, nothing is written and the record has ``status: "interrupted"``; calling
    :func:`run` again resumes from the last checkpoint. A fine-tuning run whose pretraining run
    is missing fails with :class:`MissingRunError`, unless ``chain`` asks to make it first.
    """
    record = load_record(config)
    if record is not None:
        if progress:  # one line in place of the run's progress bar
            tqdm.write(
                f"{config.name}: finished earlier, record read ({record['steps']:,} steps, "
                f"{record['train_seconds'] / 60:.1f} min of training on "
                f"{record['device']['type']})",
                file=sys.stderr,
            )
        return record

    with quiet_bars():
        return _train(config, callbacks=callbacks, progress=progress, chain=chain)


@contextlib.contextmanager
def quiet_bars():
    """No ``datasets`` bars ("Map") while preparing data and no transformers bars ("Writing
    model shards" at each checkpoint, "Loading weights"): the run's :class:`TextProgress` bar
    is the one shown."""
    datasets_off = datasets.are_progress_bars_disabled()
    transformers_on = transformers.utils.logging.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
    try:
        yield
    finally:
        if not datasets_off:
            datasets.enable_progress_bars()
        if transformers_on:
            transformers.utils.logging.enable_progress_bar()


UNIGRAM_FILE = "mlm_unigram_floor.json"


def unigram_floor(scale: str | None = None, save: bool = False) -> dict[str, Any]:
    """:func:`lshlib.features.unigram_floor` on the MLM evaluation blocks of ``scale``;
    ``save`` also writes it to ``results/<scale>/mlm_unigram_floor.json`` (for the README)."""
    config = run_config("mlm", "baseline", scale)
    tokenizer = data.get_tokenizer(config.scale)
    floor = features.unigram_floor(
        tokenizer, config.max_length, config.max_eval, config.mlm_probability, config.corpus_chars
    )
    if save:
        safeio.atomic_write_json(results_dir(config.scale, "cpu") / UNIGRAM_FILE, floor, indent=1)
    return floor


def _training_arguments(config: RunConfig, out: Path) -> TrainingArguments:
    """The Trainer's arguments; under ``torchrun`` / ``accelerate launch`` (``WORLD_SIZE`` > 1)
    data parallel over gloo on CPU or nccl on GPU (without ``ddp_backend`` transformers reports
    world size 1 on CPU and every process trains alone)."""
    cuda = torch.cuda.is_available()
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    return TrainingArguments(
        ddp_backend=("nccl" if cuda else "gloo") if distributed else None,
        output_dir=str(out),
        num_train_epochs=config.epochs,
        max_steps=config.max_steps or -1,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.eval_batch_size,
        learning_rate=config.learning_rate,
        weight_decay=config.weight_decay,
        lr_scheduler_type=LR_SCHEDULES[config.lr_schedule],
        warmup_steps=config.warmup,
        eval_strategy="steps",
        eval_steps=config.eval_steps,
        logging_steps=config.logging_steps,
        logging_first_step=True,
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=2,
        seed=config.seed,
        data_seed=config.seed,
        bf16=cuda and torch.cuda.is_bf16_supported(),
        report_to="none",
        disable_tqdm=True,  # our TextProgress bar instead (see lshlib.trainers)
        include_num_input_tokens_seen="non_padding",
        dataloader_num_workers=0,
        dataloader_pin_memory=cuda,
    )


def _resume_point(out: Path) -> tuple[Path | None, float]:
    """The newest valid checkpoint to resume from (or ``None``; incomplete ones are reported and
    moved aside, see :mod:`lshlib.checkpoints`) and the wall-clock spent before it."""
    checkpoint = checkpoints.newest_valid_checkpoint(out)
    return checkpoint, checkpoints.clock_seconds(checkpoint)


def _final_metrics(
    config: RunConfig, trainer: Trainer, job: jobs.Job, output, first_step: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Last and mean train loss, the final validation metrics and the test metrics, the latter
    over fixed hash draws (:mod:`lshlib.scoring`); and draw 0's per-example predictions."""
    state = trainer.state
    train_curve = _curves(state.log_history)["train"]
    final: dict[str, Any] = {
        "train_loss_last": train_curve[-1]["loss"] if train_curve else math.nan,
        "train_loss_mean": checkpoints.train_loss_mean(
            state.log_history, output.training_loss, first_step, state.global_step
        ),
    }
    final_eval = trainer.evaluate()
    final.update({k.replace("eval_", "validation_"): v for k, v in final_eval.items()})
    final["validation_loss_best"] = min(
        h["eval_loss"] for h in state.log_history if "eval_loss" in h
    )
    scores, examples = scoring.final_draws(trainer, job, config.task, config.seed)
    if config.task == "mlm":
        final["validation_perplexity"] = metrics.perplexity(final_eval["eval_loss"])
        final.update({k: v for k, v in scores.items() if k.endswith(("_draws", "_mean", "_sd"))})
    else:
        final.update(scores)
        if config.task == "sst2":
            final["test_majority_accuracy"] = metrics.majority_accuracy(job.raw_test["label"])
    return final, examples


def _stop_summary(trainer: Trainer, config: RunConfig) -> dict[str, Any]:
    """Where a run with ``stop_at`` stopped on its schedule: the step, the schedule's length
    and the learning rate of the last update (the schedule's value there)."""
    return {
        "at_step": trainer.state.global_step,
        "schedule_steps": trainer.state.max_steps,
        "learning_rate": float(trainer.lr_scheduler.get_last_lr()[0]),
    }


def _record(
    config: RunConfig, trainer: Trainer, job: jobs.Job, final: dict, clock: RunClock
) -> dict:
    state = trainer.state
    seconds = clock.total()
    return {
        "name": config.name,
        "status": "finished",
        "config": config.to_dict(),
        "data": job.sizes,
        "curves": _curves(state.log_history),
        "final": final,
        "steps": state.global_step,
        "train_seconds": seconds,
        "tokens_seen": state.num_input_tokens_seen,
        "tokens_per_second": state.num_input_tokens_seen / seconds,
        "train_samples_per_second": state.global_step * config.batch_size / seconds,
        "stages": clock.stages(),  # this session's evaluation and checkpoint seconds
        "device": _device(),
        "versions": _versions(),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "commit": commit(),
    }


def _train(
    config: RunConfig, *, callbacks: list[TrainerCallback] | None, progress: bool, chain: bool
) -> dict:
    tokenizer = data.get_tokenizer(config.scale)
    if tokenizer.name_or_path and Path(tokenizer.name_or_path).name != config.tokenizer:
        raise ValueError(
            f"config tokenizer {config.tokenizer!r} differs from the current one "
            f"{Path(tokenizer.name_or_path).name!r} (corpus or settings changed)"
        )
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if config.processes != world:
        raise ValueError(
            f"run {config.name} is configured for processes={config.processes} but runs in "
            f"{world} (WORLD_SIZE); build its config under the same launcher"
        )
    if config.task == "mlm":
        job = jobs.prepare_mlm(config, tokenizer)
    else:
        scratch = config.variant == SCRATCH
        pretrained = None if scratch else pretrained_model_dir(config, chain=chain)
        model = jobs.finetune_model(config, len(tokenizer), pretrained)
        job = jobs.prepare_finetune(config, tokenizer, model)
    out = run_dir(config)
    checkpoint, previous = _resume_point(out)
    clock = RunClock(previous)
    progress_bar = [TextProgress(config.name)] if progress else []
    extra = [job.collator] if config.task == "mlm" else []
    if config.stop_at is not None:
        extra.append(StopAt(config.stop_at))
    if config.diagnostics:
        probe = diagnostics.probe_batch(job.evaluation, min(PROBE_BLOCKS, len(job.evaluation)))
        specials = (tokenizer.cls_token_id, tokenizer.sep_token_id)
        extra.append(Diagnostics(probe, specials, config.seed, config.eval_steps))
    trainer = job.trainer_class(
        model=job.model,
        args=_training_arguments(config, out),
        data_collator=job.collator,
        train_dataset=job.train,
        eval_dataset=job.evaluation,
        processing_class=tokenizer,
        compute_metrics=job.compute,
        callbacks=[clock, *progress_bar, *extra, *(callbacks or [])],
    )
    trainer.remove_callback(PrinterCallback)  # added by disable_tqdm: one dict line per log
    trainer.eval_seed = config.seed if config.isolated_eval else None
    trainer.qk_lr_scale = config.qk_lr_scale
    output = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    clock.freeze()
    state = trainer.state
    if state.global_step < min(state.max_steps, config.stop_at or state.max_steps):
        return {
            "status": "interrupted",
            "name": config.name,
            "step": state.global_step,
            "max_steps": state.max_steps,
        }
    first_step = int(checkpoint.name.split("-")[-1]) if checkpoint else 0
    trainer.eval_seed = config.seed  # final scores: fixed draws, whatever the run's setting
    final, examples = _final_metrics(config, trainer, job, output, first_step)
    record = _record(config, trainer, job, final, clock)
    record["examples"] = examples
    if config.pretrained is not None:  # the pretraining run's identity, from its record
        made = safeio.load_json_dict(results_path(config.scale, config.pretrained))
        if made is not None and "config" in made:
            record["pretrained_run"] = {"name": config.pretrained, "config": made["config"],
                                        "commit": made.get("commit")}  # fmt: skip
    if config.stop_at is not None:
        record["stopped_early"] = _stop_summary(trainer, config)
    probes = [c for c in extra if isinstance(c, Diagnostics)]
    if probes:  # inside the evaluations' seconds: how much of them the diagnostics took
        record["stages"]["diagnostics_seconds"] = probes[0].seconds
    _save_final(trainer, out)
    if trainer.is_world_process_zero():
        path = results_path(config.scale, config.name)
        safeio.atomic_write_json(path, record, indent=1, default=float)
    return record


def _save_final(trainer: Trainer, out: Path) -> None:
    """The final model, saved to ``final.tmp`` and then renamed to ``final``: a fine-tuning run
    never reads a half-written pretrained model (and a kill here leaves no record: rerun)."""
    tmp, final = out / "final.tmp", out / "final"
    trainer.save_model(str(tmp))  # on every process (it writes from the main one)
    if trainer.is_world_process_zero():
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)


def run_all(
    task: str,
    scale: str | None = None,
    seed: int = 42,
    variants: tuple[str, ...] | None = None,
    progress: bool = True,
) -> dict[str, dict]:
    """Run (or reuse) ``task`` for every variant (fine-tuning: with the ``scratch`` control),
    making missing pretraining runs first; returns ``{variant: record}``."""
    default = VARIANTS if task == "mlm" else FINETUNE_VARIANTS
    return {
        v: run(run_config(task, v, scale, seed), progress=progress, chain=True)
        for v in (variants or default)
    }


def main(argv: list[str] | None = None) -> None:
    """``python -m lshlib.training --scale S --task T --variant V --seed N`` (``all`` allowed)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", default=None, choices=SCALES)
    parser.add_argument("--task", default="all", choices=(*TASKS, "all"))
    parser.add_argument("--variant", default="all", choices=(*FINETUNE_VARIANTS, "all"))
    parser.add_argument("--seed", type=int, default=42)
    ns = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    tasks = TASKS if ns.task == "all" else (ns.task,)
    for task in tasks:
        valid = VARIANTS if task == "mlm" else FINETUNE_VARIANTS  # scratch: no pretraining run
        for variant in valid if ns.variant == "all" else set(valid) & {ns.variant}:
            record = run(run_config(task, variant, ns.scale, ns.seed), chain=True)
            log.info("%s: %s", record["name"], json.dumps(record.get("final", record)))


if __name__ == "__main__":
    main()
