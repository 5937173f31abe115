"""What a run is: :class:`RunConfig` (every setting, range-checked; its hash names the run) and
:func:`run_config`, the configuration of a task and variant at a scale.

A run is keyed by its full configuration (scale, task, variant, seed, data sizes,
hyper-parameters, tokenizer): its name ends in a short hash of that configuration. Settings added
after runs were committed (:data:`OPTIONAL_DEFAULTS`) are left out of the name at their default,
so every committed run keeps its name. Sizes come from :data:`lshlib.scales.TRAINING`; the task
and variant names from :mod:`lshlib.variants`. Nothing here imports torch.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import numbers
import os
from dataclasses import dataclass, field
from typing import Any

from lshlib import data
from lshlib.scales import SCALES, get_scale, sizes
from lshlib.variants import (  # noqa: F401 - the task and variant names, offered by lshlib.training
    CONTROL_VARIANTS,
    FINETUNE_TASKS,
    FINETUNE_VARIANTS,
    LONG_VARIANTS,
    RANDOM_VARIANTS,
    RUN_VARIANTS,
    SCRATCH,
    TASKS,
    VARIANTS,
)

# How the random-pairs controls compute their density (lshlib.lsh.attention.random_pairs): over the
# real (non-padding) pairs, or, as the committed runs made before it was a setting, over all.
RANDOM_DENSITIES: tuple[str, ...] = ("all", "real_keys")

MAX_LENGTH_RANGE: tuple[int, int] = (8, 8192)  # RunConfig.max_length, checked before any tensor


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _check_ranges(c: RunConfig) -> None:
    """Every numeric field of ``c`` within its range, else ``ValueError`` naming the field, the
    value and the range (before anything is allocated: ``max_length=100000`` fails here)."""
    low, high = MAX_LENGTH_RANGE
    ints = {  # name: (lowest value, highest value or None)
        "seed": (0, 2**32 - 1),
        "max_length": (low, high),
        "doc_stride": (1, None),
        "batch_size": (1, None),
        "eval_batch_size": (1, None),
        "logging_steps": (1, None),
        "eval_steps": (1, None),
        "save_steps": (1, None),
        "processes": (1, None),
    }
    for name, (lo, hi) in ints.items():
        value = getattr(c, name)
        if not _is_int(value) or value < lo or (hi is not None and value > hi):
            span = f"in [{lo}, {hi}]" if hi is not None else f">= {lo}"
            raise ValueError(f"{name} must be an integer {span}, got {value!r}")
    for name in ("max_train", "max_eval", "max_test", "corpus_chars"):
        value = getattr(c, name)
        if value is not None and (not _is_int(value) or value < 1):
            raise ValueError(f"{name} must be None (all) or an integer >= 1, got {value!r}")
    if c.task == "squad" and c.doc_stride >= c.max_length:
        raise ValueError(
            f"doc_stride must be below max_length={c.max_length} (SQuAD windows overlap by it), "
            f"got {c.doc_stride!r}"
        )
    for name in ("epochs", "learning_rate"):
        value = getattr(c, name)
        if not _is_real(value) or value <= 0:
            raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    if not _is_real(c.weight_decay) or c.weight_decay < 0:
        raise ValueError(f"weight_decay must be a finite number >= 0, got {c.weight_decay!r}")
    if not _is_real(c.mlm_probability) or not 0 < c.mlm_probability < 1:
        raise ValueError(f"mlm_probability must lie in (0, 1), got {c.mlm_probability!r}")
    fraction = _is_real(c.warmup) and 0 <= c.warmup < 1
    if not (fraction or (_is_int(c.warmup) and c.warmup >= 0)):
        raise ValueError(
            "warmup must be a fraction of the steps in [0, 1) or an integer number of steps "
            f">= 0, got {c.warmup!r}"
        )
    if not isinstance(c.pad_to_max_length, bool):
        raise ValueError(f"pad_to_max_length must be True or False, got {c.pad_to_max_length!r}")
    if c.random_density not in RANDOM_DENSITIES:
        raise ValueError(
            f"random_density must be one of {RANDOM_DENSITIES}, got {c.random_density!r}"
        )
    if c.random_density != "all" and c.variant not in RANDOM_VARIANTS:
        raise ValueError(
            f"random_density applies to the random-pairs controls ({', '.join(RANDOM_VARIANTS)}) "
            f"only, got {c.random_density!r} for variant {c.variant!r}"
        )


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
    isolated_eval: bool = (
        False  # evaluations never touch the training RNG (lshlib.training.trainers)
    )
    diagnostics: bool = False  # attention diagnostics on a fixed probe at every evaluation
    max_steps: int | None = None  # the schedule's length in steps (instead of `epochs`)
    lr_schedule: str = "linear"  # after warm-up: "linear" decay to 0, or "constant"
    qk_lr_scale: float = 1.0  # learning rate of W_Q and W_K relative to the others
    # random-pairs controls: density over the real pairs ("real_keys", what run_config sets) or
    # over all pairs, padding included ("all": the committed runs' semantics)
    random_density: str = "all"
    # The configuration of the run named by ``pretrained``, when the caller knows it (run_config
    # sets it): how a chain finds the run to make, never by parsing a name. Not part of the name.
    pretrained_config: RunConfig | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        _check_ranges(self)
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
        del values["pretrained_config"]  # the name's ``pretrained`` stands for it
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
    "random_density": "all",
}
LR_SCHEDULES = {"linear": "linear", "constant": "constant_with_warmup"}  # transformers' names
PROBE_BLOCKS = 64  # the diagnostics' fixed probe: the first blocks of the MLM evaluation set


def run_config(task: str, variant: str, scale: str | None = None, seed: int = 42, **overrides):
    """The :class:`RunConfig` of ``task`` and ``variant`` at ``scale`` (sizes from
    :data:`lshlib.scales.TRAINING`), with ``overrides`` on top. A fine-tuning run points at the
    MLM run of the same variant and seed (built with the same ``overrides`` restricted to the
    model), unless ``pretrained`` is given: the :class:`RunConfig` of the run to start from (its
    name and configuration are kept), or only its name."""
    scale = get_scale(scale)
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; valid tasks are: {', '.join(TASKS)}")
    values: dict[str, Any] = sizes(f"training/{task}", scale)
    values["tokenizer"] = data.tokenizer_dir(scale).name
    values["processes"] = int(os.environ.get("WORLD_SIZE", "1"))  # set by torchrun / accelerate
    if variant in RANDOM_VARIANTS:  # density over real pairs: a new name, not the old runs'
        values["random_density"] = "real_keys"
    source = overrides.get("pretrained")
    if isinstance(source, RunConfig):  # the pretraining run's configuration: name and identity
        overrides = {**overrides, "pretrained": source.name, "pretrained_config": source}
    values.update(overrides)
    if task != "mlm" and variant != SCRATCH and "pretrained" not in overrides:
        model = (
            {"model_overrides": overrides["model_overrides"]}
            if "model_overrides" in overrides
            else {}
        )
        values["pretrained_config"] = run_config("mlm", variant, scale, seed, **model)
        values["pretrained"] = values["pretrained_config"].name
    return RunConfig(task=task, variant=variant, scale=scale, seed=seed, **values)
