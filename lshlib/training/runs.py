"""Pretraining (MLM) and fine-tuning (SST-2, SQuAD) on the transformers ``Trainer``, as resumable,
cached runs.

A run is keyed by its full configuration (:class:`RunConfig`: scale, task, variant, seed, data
sizes, hyper-parameters, tokenizer): its name ends in a short hash of that configuration. A
finished run writes ``results/<scale>/<name>.json`` (configuration, train and eval loss
curves, final metrics, wall-clock, tokens per second, device, library versions; the layout is
:mod:`lshlib.paths`'s; written atomically) and is reused from then on; an interrupted one
resumes from its newest *valid* checkpoint under ``runs/training/<scale>/<name>/``. Incomplete
checkpoints (a kill during a save) and corrupt records are reported with their path and moved
aside (:mod:`lshlib.training.checkpoints`, :mod:`lshlib.safeio`), and a resumed run's record equals
an uninterrupted run's except for wall-clock fields
(:func:`lshlib.training.checkpoints.without_wall_clock`). Only training moves records aside: readers
(:func:`load_record` by default, the reports and notebooks) never move or write one and fail naming
a bad one (:mod:`lshlib.training.records`, whose schema every record is checked against when written
and read). One process trains a run at a time (:func:`run_lock`), and :class:`RunConfig` checks
every setting's range before anything runs. Model inputs come from :mod:`lshlib.training.features`,
sizes from
:data:`lshlib.scales.TRAINING`.

MLM runs (every scale) use :class:`lshlib.training.trainers.SparseMLMTrainer`: the vocabulary
projection only at the masked positions, in training and evaluation. Fine-tuning runs exist for
every variant plus ``scratch``, the random-initialisation control (baseline model, no pretraining).

Command line (the same entry point works under ``accelerate launch`` or ``torchrun``: with more
than one process, data parallel over gloo on CPU or nccl on GPU; ``batch_size`` is per process,
the run's name records ``processes``, and the main process writes records and checkpoints)::

    python -m lshlib.training --scale laptop --task all --variant all
    torchrun --nproc_per_node 2 -m lshlib.training --scale smoke --task mlm --variant baseline
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import platform
import shutil
import sys
import time
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

from lshlib import data, safeio
from lshlib.bench import wallclock
from lshlib.bench.measure import commit, cpu_model
from lshlib.paths import results_dir, runs_dir
from lshlib.scales import get_scale
from lshlib.training import (
    checkpoints,
    diagnostics,
    features,
    jobs,
    metrics,
    records,
    runlock,
    scoring,
)
from lshlib.training.cli import REUSE_ENV_VAR, REUSE_MODES
from lshlib.training.config import LR_SCHEDULES, PROBE_BLOCKS, RunConfig, run_config
from lshlib.training.runlock import RunLockedError  # noqa: F401 - raised by run_lock
from lshlib.training.trainers import Diagnostics, RunClock, StopAt, TextProgress
from lshlib.variants import FINETUNE_VARIANTS, SCRATCH, VARIANTS

log = logging.getLogger(__name__)

# Keys a finished record must have (the full schema: lshlib.training.records.RunRecord).
RECORD_KEYS: frozenset[str] = frozenset({"name", "status", "config", "final", "steps"})
# --------------------------------------------------------------------------- paths


def results_path(scale: str, run: str) -> Path:
    """The record of ``run``: ``results/<scale>[-<device>]/<run>.json`` (:mod:`lshlib.paths`)."""
    return results_dir(scale) / f"{run}.json"


def run_dir(config: RunConfig) -> Path:
    """Checkpoints and the final model: ``runs/training/<scale>/<name>/``."""
    return runs_dir() / "training" / config.scale / config.name


def load_record(config: RunConfig, *, quarantine: bool = False) -> dict | None:
    """The finished run's JSON record, or ``None`` when there is none.

    Reading (the default; reports, notebooks, ``make figures``) is read-only: a record that is
    not valid JSON, does not match :class:`lshlib.training.records.RunRecord` (truncated, ``status``
    other than ``finished``, a missing ``final.validation_accuracy``) or holds another
    configuration raises :class:`lshlib.training.records.RecordError` naming the file, the problem
    and the fix; nothing is moved or written. ``quarantine=True`` is the training path's
    (:func:`run`): there a corrupt record is reported, moved aside and ``None`` returned, so the
    run is redone (resumed from its newest valid checkpoint), and a record of another
    configuration counts as absent (the run overwrites it). With ``LSHLIB_REUSE=runs`` (``make
    reproduce``) a record counts only if the run's final model is in the local run cache
    (``runs/``): committed records are then recomputed, not reused.
    """
    path = results_dir(config.scale, create=False) / f"{config.name}.json"
    if not quarantine:
        record = records.read_record(path, config.to_dict())
    else:
        record = safeio.load_json_dict(path)
        problem = None if record is None else records.record_problem(record)
        if problem is not None:
            safeio.quarantine(path, f"not a finished run record ({problem})")
            return None
        if record is not None and record["config"] != config.to_dict():
            return None
    if record is None:
        return None
    reuse = os.environ.get(REUSE_ENV_VAR, "results").strip() or "results"
    if reuse not in REUSE_MODES:
        raise ValueError(f"{REUSE_ENV_VAR}={reuse!r}; valid values: {', '.join(REUSE_MODES)}")
    if reuse == "runs" and not (run_dir(config) / "final" / "config.json").is_file():
        return record if made_in_this_reproduce(record, config.scale) else None
    return record


def made_in_this_reproduce(record: dict, scale: str) -> bool:
    """Whether ``record`` was written by the ``make reproduce`` in progress at this commit (in
    an earlier sitting whose run cache is gone): such a record counts as done when the
    reproduce resumes (:mod:`lshlib.bench.wallclock`)."""

    current = wallclock.in_progress("reproduce", scale)
    if not current or not record.get("commit") or record["commit"] != current["commit"]:
        return False
    return str(record.get("finished_at", "")) >= current["started_utc"][:19]


class MissingRunError(FileNotFoundError):
    """A fine-tuning run needs a pretraining run that has not been made."""


# --------------------------------------------------------------------------- running


def _precision() -> str:
    """The Trainer's compute precision: bf16 autocast on a CUDA device that has it, else fp32."""
    return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "fp32"


def _device() -> dict[str, Any]:
    if torch.cuda.is_available():
        return {
            "type": "cuda",
            "name": torch.cuda.get_device_name(0),
            "count": torch.cuda.device_count(),
            "precision": _precision(),
        }
    return {
        "type": "cpu",
        "name": platform.processor() or platform.machine(),
        "model": cpu_model(),
        "threads": torch.get_num_threads(),
        "precision": _precision(),
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
    found: dict[int, dict] = {}  # attention diagnostics (lshlib.training.trainers.Diagnostics)
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


def _pretraining_config(config: RunConfig) -> RunConfig:
    """The :class:`RunConfig` of ``config``'s pretraining run: ``config.pretrained_config`` (set
    by :func:`run_config`), else the one its record holds, else the standard MLM run of
    ``config``'s variant, seed and model. Never parsed from the run's name."""
    if config.pretrained_config is not None:
        return config.pretrained_config
    made = records.read_record(results_path(config.scale, str(config.pretrained)))
    if made is not None:
        return RunConfig(**made["config"])
    model = {"model_overrides": config.model_overrides} if config.model_overrides else {}
    return run_config("mlm", config.variant, config.scale, config.seed, **model)


def pretrained_model_dir(config: RunConfig, *, chain: bool = False) -> Path:
    """The saved model of ``config``'s pretraining run (``config.pretrained``).

    When it is missing, this raises :class:`MissingRunError` naming the run to make, unless
    ``chain`` is true and it is a standard MLM run (of any variant and seed, with this model):
    then it is trained first (what :func:`run_all` and the verdict's plan do)."""
    final = _pretrained_final(config)
    if (final / "config.json").is_file():
        return final
    mlm = _pretraining_config(config)
    if not chain or mlm.name != config.pretrained:
        raise MissingRunError(
            f"fine-tuning run {config.name} needs the pretrained model {config.pretrained!r}, "
            f"which is not under {final.parent.parent}. Make it first, e.g. "
            f"`python -m lshlib.training --scale {config.scale} --task mlm "
            f"--variant {config.variant} --seed {config.seed}`, or call run(..., chain=True)"
        )
    with run_lock(mlm):  # not run(): its record may be here while its model is not
        if not (final / "config.json").is_file():  # made meanwhile by the lock's holder?
            log.info("pretrained model %s missing: running it", mlm.name)
            with quiet_bars():
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
    record = load_record(config, quarantine=True)
    if record is None:
        with run_lock(config):  # one writer per run: a second process waits here
            record = load_record(config, quarantine=True)  # finished by the lock's holder?
            if record is None:
                with quiet_bars():
                    return _train(config, callbacks=callbacks, progress=progress, chain=chain)
    if progress:  # one line in place of the run's progress bar
        tqdm.write(
            f"{config.name}: finished earlier, record read ({record['steps']:,} steps, "
            f"{record['train_seconds'] / 60:.1f} min of training on "
            f"{record['device']['type']})",
            file=sys.stderr,
        )
    return record


def lock_path(config: RunConfig) -> Path:
    """The run's lock file, beside its folder: ``runs/training/<scale>/<name>.lock``."""
    return run_dir(config).parent / f"{config.name}.lock"


@contextlib.contextmanager
def run_lock(config: RunConfig, timeout: float | None = None):
    """Hold the run's lock file (:func:`lock_path`; :func:`lshlib.training.runlock.hold`) while the
    block runs, so no two processes ever train one run: a second one waits, naming the holder's PID
    (``timeout`` seconds at most, then :class:`lshlib.training.runlock.RunLockedError`); a killed
    holder's lock is free at once. Under data parallelism process 0 holds it for all."""
    if int(os.environ.get("RANK", "0") or 0) != 0:
        yield
        return
    with runlock.hold(lock_path(config), f"run {config.name}", timeout):
        yield


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
    """:func:`lshlib.training.features.unigram_floor` on the MLM evaluation blocks of ``scale``;
    ``save`` also writes it to ``results/<scale>/mlm_unigram_floor.json``
    (``python -m lshlib.verdict --derived`` does; notebook 04 and the README read it with
    :func:`load_unigram_floor`)."""
    config = run_config("mlm", "baseline", scale)
    tokenizer = data.get_tokenizer(config.scale)
    floor = features.unigram_floor(
        tokenizer, config.max_length, config.max_eval, config.mlm_probability, config.corpus_chars
    )
    if save:
        safeio.atomic_write_json(results_dir(config.scale, "cpu") / UNIGRAM_FILE, floor, indent=1)
    return floor


def load_unigram_floor(scale: str | None = None) -> dict[str, Any]:
    """The unigram floor of ``scale`` as :func:`unigram_floor` saved it (read only; a missing
    file is an error naming the command that writes it)."""
    return safeio.read_derived(results_dir(get_scale(scale), "cpu") / UNIGRAM_FILE)


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
        bf16=_precision() == "bf16",
        report_to="none",
        disable_tqdm=True,  # our TextProgress bar instead (see lshlib.training.trainers)
        include_num_input_tokens_seen="non_padding",
        dataloader_num_workers=0,
        dataloader_pin_memory=cuda,
    )


def _resume_point(out: Path) -> tuple[Path | None, float]:
    """The newest valid checkpoint to resume from (or ``None``; incomplete ones are reported and
    moved aside, see :mod:`lshlib.training.checkpoints`) and the wall-clock spent before it."""
    checkpoint = checkpoints.newest_valid_checkpoint(out)
    return checkpoint, checkpoints.clock_seconds(checkpoint)


def _final_metrics(
    config: RunConfig, trainer: Trainer, job: jobs.Job, output, first_step: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Last and mean train loss, the final validation metrics and the test metrics, the latter
    over fixed hash draws (:mod:`lshlib.training.scoring`); and draw 0's per-example predictions."""
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
            record["pretrained_run"] = {
                "name": config.pretrained,
                "config": made["config"],
                "commit": made.get("commit"),
            }
    if config.stop_at is not None:
        record["stopped_early"] = _stop_summary(trainer, config)
    probes = [c for c in extra if isinstance(c, Diagnostics)]
    if probes:  # inside the evaluations' seconds: how much of them the diagnostics took
        record["stages"]["diagnostics_seconds"] = probes[0].seconds
    _save_final(trainer, out)
    if trainer.is_world_process_zero():  # checked, strict JSON (non-finite numbers: null)
        record = records.write_record(results_path(config.scale, config.name), record)
        # checkpoints moved aside earlier: the final model supersedes them
        checkpoints.remove_superseded(out, trainer.state.global_step)
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
