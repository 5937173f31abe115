"""Trainer pieces of the runs in :mod:`lshlib.training`: the masked-LM ``Trainer`` with the sparse
prediction head, evaluation that never touches the training RNG, the callback that times a run
and its evaluation and checkpoint stages, an early stop on the schedule of a longer run, and the
attention diagnostics logged beside each evaluation.

Isolated evaluation (:class:`IsolatedEvaluation`, a run's ``isolated_eval`` setting): every
evaluation runs under :func:`evaluation_rng`, which forks torch's RNG (so dropout, data order and
the next training step's hashes are exactly what they would be without the evaluation) and makes
per-call LSH hashes come from a generator seeded afresh at each evaluation: every evaluation of a
run scores one and the same fixed draw, and changing how often a run evaluates cannot change its
training curve.

:class:`SparseMLMTrainer` computes the vocabulary projection only at the masked positions
(:func:`lshlib.modeling.sparse_mlm_forward`), in training and in evaluation: its evaluation
predictions are the arg-max tokens at the masked positions (-100 elsewhere), so the MLM
accuracy (over masked positions) and the evaluation loss (mean cross-entropy over masked positions,
averaged over evaluation batches; perplexity = exp of it) mean what they meant with the full head,
without full-vocabulary evaluation logits. The model stays a stock ``BertForMaskedLM``.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from tqdm.std import tqdm
from transformers import Trainer, TrainerCallback

from lshlib import safeio
from lshlib.lsh.attention import hash_generator
from lshlib.modeling import sparse_mlm_forward
from lshlib.training import diagnostics
from lshlib.training.checkpoints import CLOCK_FILE
from lshlib.training.metrics import IGNORE_INDEX

__all__ = [
    "CLOCK_FILE",
    "RunClock",
    "SparseMLMTrainer",
    "TaskTrainer",
    "TextProgress",
    "IsolatedEvaluation",
    "evaluation_rng",
    "draw_seed",
    "StopAt",
    "Diagnostics",
]


def draw_seed(seed: int, draw: int) -> int:
    """The generator seed of hash draw ``draw`` of a run seeded ``seed``; draw 0 is ``seed``
    itself, the draw every isolated evaluation of the run scores."""
    if draw < 0:
        raise ValueError(f"draw must be >= 0, got {draw!r}")
    return int(seed) + 1_000_003 * int(draw)


@contextlib.contextmanager
def evaluation_rng(seed: int, device: torch.device | str = "cpu") -> Iterator[torch.Generator]:
    """Inside: torch's RNG is forked (restored on exit, CUDA's too on a GPU) and per-call LSH
    hashes come from a generator seeded with ``seed``
    (:func:`lshlib.lsh.attention.hash_generator`)."""
    device = torch.device(device)
    forked = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=forked):
        generator = torch.Generator(device=device).manual_seed(int(seed))
        with hash_generator(generator):
            yield generator


class IsolatedEvaluation:
    """``Trainer`` mixin: with ``eval_seed`` set, ``evaluate`` and ``predict`` run under
    :func:`evaluation_rng` (``eval_seed`` ``None``: the Trainer's own behaviour)."""

    eval_seed: int | None = None

    def _isolated(self):
        if self.eval_seed is None:
            return contextlib.nullcontext()
        return evaluation_rng(self.eval_seed, self.args.device)

    def evaluate(self, *args, **kwargs):
        with self._isolated():
            return super().evaluate(*args, **kwargs)

    def predict(self, *args, **kwargs):
        with self._isolated():
            return super().predict(*args, **kwargs)


QK_NAMES = (".attention.self.query.", ".attention.self.key.")


def scale_qk_learning_rate(
    optimizer: torch.optim.Optimizer, model: torch.nn.Module, scale: float
) -> int:
    """Move the parameters of every layer's W_Q and W_K (weights and biases) into parameter
    groups of their own whose learning rate is ``scale`` times their group's; a learning-rate
    schedule then keeps that ratio at every step. Returns how many tensors moved."""
    qk = {id(p) for name, p in model.named_parameters() if any(k in f".{name}" for k in QK_NAMES)}
    moved = 0
    for group in list(optimizer.param_groups):
        keep = [p for p in group["params"] if id(p) not in qk]
        mine = [p for p in group["params"] if id(p) in qk]
        if mine:
            group["params"] = keep
            optimizer.add_param_group(
                {
                    **{k: v for k, v in group.items() if k != "params"},
                    "params": mine,
                    "lr": group["lr"] * scale,
                }
            )
            moved += len(mine)
    optimizer.param_groups[:] = [g for g in optimizer.param_groups if g["params"]]
    return moved


class ScaledQK:
    """``Trainer`` mixin: W_Q and W_K learn at ``qk_lr_scale`` times the learning rate."""

    qk_lr_scale: float = 1.0

    def create_optimizer(self, model=None):
        optimizer = super().create_optimizer(model)
        if self.qk_lr_scale != 1.0:
            scale_qk_learning_rate(optimizer, self.model, self.qk_lr_scale)
        return optimizer


class TaskTrainer(IsolatedEvaluation, ScaledQK, Trainer):
    """The fine-tuning ``Trainer`` (SST-2, SQuAD), with isolated evaluation when asked."""


class SparseMLMTrainer(IsolatedEvaluation, ScaledQK, Trainer):
    """``Trainer`` for a ``BertForMaskedLM`` whose loss and evaluation use the sparse head.

    Use it without ``preprocess_logits_for_metrics``: ``compute_metrics`` receives predicted
    tokens (-100 where nothing is masked) and labels, e.g. for
    :func:`lshlib.training.metrics.masked_accuracy`.
    """

    loss_is_scaled_for_ga = False  # a per-batch mean, like the full head's loss

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        """The mean cross-entropy over the batch's masked positions (sparse head)."""
        out = sparse_mlm_forward(model, inputs)
        return (out.loss, out) if return_outputs else out.loss

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        """Loss, predicted tokens and labels, both ``(batch, n)``: the arg-max token at the
        masked positions, -100 elsewhere (per-row tensors, so that the Trainer's gathering,
        which trims the last batch by rows, keeps every masked position)."""
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad(), self.compute_loss_context_manager():
            out = sparse_mlm_forward(model, inputs)
        loss = out.loss.detach()
        if prediction_loss_only:
            return loss, None, None
        labels = inputs["labels"]
        predictions = torch.full_like(labels, IGNORE_INDEX)
        predictions[labels != IGNORE_INDEX] = out.logits.argmax(dim=-1)
        return loss, predictions, labels


class RunClock(TrainerCallback):
    """Training wall-clock summed over interrupted sessions (kept beside each checkpoint), and,
    within this session, the seconds spent in evaluations and in checkpoint saves.

    The stage times use the Trainer's order of events after an optimizer step: ``on_step_end``,
    then (maybe) evaluation ending in ``on_evaluate``, then (maybe) a save ending in ``on_save``.
    """

    def __init__(self, previous: float = 0.0):
        self.previous = previous
        self.start = time.perf_counter()
        self.mark = self.start
        self.eval_seconds = 0.0
        self.save_seconds = 0.0
        self.evaluations = 0
        self.saves = 0
        self.stopped: float | None = None

    def _now(self) -> float:
        return self.stopped if self.stopped is not None else time.perf_counter()

    def freeze(self) -> None:
        """Stop the clock (at the end of training: the final evaluation is not training time)."""
        self.stopped = time.perf_counter()

    def total(self) -> float:
        """Wall-clock seconds of the run so far, earlier sessions included."""
        return self.previous + self._now() - self.start

    def stages(self) -> dict[str, Any]:
        """This session's evaluation and checkpoint seconds and counts, and its wall-clock."""
        return {
            "session_seconds": self._now() - self.start,
            "eval_seconds": self.eval_seconds,
            "evaluations": self.evaluations,
            "save_seconds": self.save_seconds,
            "saves": self.saves,
        }

    def on_step_end(self, args, state, control, **kwargs):
        self.mark = time.perf_counter()

    def on_log(self, args, state, control, logs=None, **kwargs):
        # The run's wall-clock at each logged step, kept in the Trainer's own log history (so it
        # survives a resume with the checkpoint): loss against wall-clock, not only steps.
        if state.log_history and state.log_history[-1].get("step") == state.global_step:
            state.log_history[-1]["train_seconds"] = round(self.total(), 3)

    def on_evaluate(self, args, state, control, **kwargs):
        if self.stopped is not None:  # evaluations after training are not counted
            return
        now = time.perf_counter()
        self.eval_seconds += now - self.mark
        self.evaluations += 1
        self.mark = now

    def on_save(self, args, state, control, **kwargs):
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        # Written last, after the Trainer's files (atomically): a checkpoint without it is
        # incomplete, see lshlib.training.checkpoints.
        if folder.is_dir() and state.is_world_process_zero:
            safeio.atomic_write_json(folder / CLOCK_FILE, {"train_seconds": self.total()})
        now = time.perf_counter()
        self.save_seconds += now - self.mark
        self.saves += 1
        self.mark = now


class TextProgress(TrainerCallback):
    """One plain-text progress bar per run, on stderr, updated at most every ``interval`` s.

    Replaces the Trainer's own bars (``disable_tqdm=True``): in a notebook those are widgets,
    which a saved notebook shows stuck at 0%, and each evaluation adds another bar. A text bar
    ends as one line ("mlm-baseline-s42: 100% 3125/3125 [05:12, loss=6.14]").
    """

    def __init__(self, desc: str, interval: float = 10.0):
        self.desc = desc
        self.interval = interval
        self.bar: tqdm | None = None

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self.bar = tqdm(
                total=state.max_steps,
                initial=state.global_step,
                desc=self.desc,
                file=sys.stderr,
                mininterval=self.interval,
                dynamic_ncols=False,
                ncols=100,
            )

    def on_step_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.update(state.global_step - self.bar.n)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.bar is not None and logs and "loss" in logs:
            self.bar.set_postfix(loss=f"{logs['loss']:.3f}", refresh=False)

    def on_train_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class StopAt(TrainerCallback):
    """Stop training at step ``step`` while the learning-rate schedule stays that of the whole
    run (a long run's schedule, cut short): the run's ``stop_at`` setting."""

    def __init__(self, step: int):
        if step < 1:
            raise ValueError(f"stop_at must be a step >= 1, got {step!r}")
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step >= self.step:
            control.should_training_stop = True
            control.should_evaluate = True  # the stop step is always evaluated
        return control


class Diagnostics(TrainerCallback):
    """Attention diagnostics (:func:`lshlib.training.diagnostics.attention_diagnostics`) on a fixed
    probe at every evaluation, and the gradient RMS of W_Q and W_K of the update just before it,
    kept in the Trainer's log history as ``{"step", "diagnostics"}`` (so they survive a resume with
    the checkpoint). Computed under :func:`evaluation_rng` with the run's evaluation seed: the
    training RNG never moves."""

    def __init__(
        self, probe: dict[str, torch.Tensor], special_ids: tuple[int, ...], seed: int, every: int
    ):
        self.probe = probe
        self.special_ids = special_ids
        self.seed = seed
        self.every = every
        self.grads: dict[int, dict] = {}
        self.seconds = 0.0

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        if model is not None and (state.global_step + 1) % self.every == 0:
            self.grads[state.global_step + 1] = diagnostics.qk_grad_rms(model)

    def on_evaluate(self, args, state, control, model=None, **kwargs):
        history = state.log_history
        if model is None or any(
            h.get("step") == state.global_step and "diagnostics" in h for h in history
        ):
            return
        start = time.perf_counter()
        device = next(model.parameters()).device
        probe = {k: v.to(device) for k, v in self.probe.items()}
        with evaluation_rng(self.seed, device) as generator:
            found = diagnostics.attention_diagnostics(
                model,
                probe["input_ids"],
                probe.get("attention_mask"),
                special_ids=self.special_ids,
                generator=generator,
            )
        found["grad_rms"] = self.grads.pop(state.global_step, None)
        history.append({"step": state.global_step, "diagnostics": found})
        self.seconds += time.perf_counter() - start
