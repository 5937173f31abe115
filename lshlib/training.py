"""Pretraining (MLM) and fine-tuning (SST-2, SQuAD) on the transformers ``Trainer``, as resumable,
cached runs.

A run is keyed by its full configuration (:class:`RunConfig`: scale, task, variant, seed, data
sizes, hyper-parameters, tokenizer): its name ends in a short hash of that configuration. A
finished run writes ``results/<scale>/<name>.json`` (configuration, train and eval loss curves,
final metrics, wall-clock, tokens per second, device, library versions) and is reused from then
on; an interrupted one resumes from its last checkpoint under ``runs/training/<scale>/<name>/``.

Command line (the same entry point works under ``accelerate launch`` or ``torchrun``)::

    python -m lshlib.training --scale laptop --task all --variant all
    accelerate launch -m lshlib.training --scale paper --task mlm --variant baseline
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
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import torch
from transformers import (
    DataCollatorForLanguageModeling,
    DataCollatorWithPadding,
    PreTrainedTokenizerFast,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)
from transformers.trainer_utils import get_last_checkpoint

from lshlib import data, metrics
from lshlib.paths import REPO_ROOT, runs_dir
from lshlib.scales import SCALES, get_scale

log = logging.getLogger(__name__)

TASKS: tuple[str, ...] = ("mlm", "sst2", "squad")
FINETUNE_TASKS: tuple[str, ...] = ("sst2", "squad")
CLOCK_FILE = "lshlib_clock.json"

# Per scale and task: data sizes and hyper-parameters. ``paper`` follows PAPER.md (run_mlm /
# run_glue / run_qa defaults where the paper says nothing). ``laptop`` is a reduced run sized
# for about half an hour on a 2-core CPU: shorter blocks (128), fewer blocks, one epoch and a
# larger learning rate (few steps), see notebooks 04 and 05. ``smoke`` only checks the plumbing.
SETTINGS: dict[str, dict[str, dict[str, Any]]] = {
    "smoke": {
        "mlm": dict(
            max_length=64,
            max_train=128,
            max_eval=16,
            corpus_chars=1_000_000,
            epochs=1.0,
            batch_size=16,
            learning_rate=5e-4,
            weight_decay=0.0,
            warmup=0.1,
            logging_steps=2,
            eval_steps=4,
            save_steps=4,
        ),
        "sst2": dict(
            max_length=64,
            max_train=256,
            max_eval=64,
            max_test=128,
            epochs=1.0,
            batch_size=32,
            learning_rate=1e-4,
            weight_decay=0.01,
            warmup=0.1,
            logging_steps=2,
            eval_steps=4,
            save_steps=4,
        ),
        "squad": dict(
            max_length=128,
            doc_stride=32,
            max_train=32,
            max_eval=16,
            max_test=32,
            epochs=1.0,
            batch_size=16,
            learning_rate=1e-4,
            weight_decay=0.01,
            warmup=0.1,
            logging_steps=2,
            eval_steps=4,
            save_steps=4,
        ),
    },
    "laptop": {
        "mlm": dict(
            max_length=128,
            max_train=3200,
            max_eval=256,
            epochs=1.0,
            batch_size=16,
            learning_rate=1e-3,
            weight_decay=0.0,
            warmup=0.05,
            logging_steps=10,
            eval_steps=40,
            save_steps=40,
        ),
        "sst2": dict(
            max_length=64,
            max_train=16000,
            max_eval=1000,
            max_test=None,
            epochs=1.0,
            batch_size=32,
            learning_rate=2e-4,
            weight_decay=0.01,
            warmup=0.05,
            logging_steps=25,
            eval_steps=100,
            save_steps=100,
        ),
        "squad": dict(
            max_length=256,
            doc_stride=64,
            max_train=1500,
            max_eval=200,
            max_test=800,
            epochs=1.0,
            batch_size=16,
            learning_rate=2e-4,
            weight_decay=0.01,
            warmup=0.05,
            logging_steps=10,
            eval_steps=40,
            save_steps=40,
        ),
    },
    "paper": {
        "mlm": dict(
            max_length=512,
            max_train=None,
            max_eval=None,
            max_test=None,
            epochs=3.0,
            batch_size=8,
            learning_rate=5e-5,
            weight_decay=0.0,
            warmup=0.0,
            logging_steps=500,
            eval_steps=5000,
            save_steps=5000,
        ),
        "sst2": dict(
            max_length=128,
            pad_to_max_length=True,
            max_train=None,
            max_eval=None,
            max_test=None,
            epochs=3.0,
            batch_size=32,
            learning_rate=2e-5,
            weight_decay=0.01,
            warmup=0.0,
            logging_steps=100,
            eval_steps=500,
            save_steps=500,
        ),
        "squad": dict(
            max_length=384,
            doc_stride=128,
            pad_to_max_length=True,
            max_train=None,
            max_eval=None,
            max_test=None,
            epochs=3.0,
            batch_size=32,
            learning_rate=2e-5,
            weight_decay=0.01,
            warmup=0.0,
            logging_steps=100,
            eval_steps=500,
            save_steps=500,
        ),
    },
}


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

    def __post_init__(self) -> None:
        from lshlib.modeling import VARIANTS

        if self.task not in TASKS:
            raise ValueError(f"unknown task {self.task!r}; valid tasks are: {', '.join(TASKS)}")
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown variant {self.variant!r}; valid: {', '.join(VARIANTS)}")
        if self.scale not in SCALES:
            raise ValueError(f"unknown scale {self.scale!r}; valid scales: {', '.join(SCALES)}")
        if self.task == "mlm" and self.pretrained is not None:
            raise ValueError("an mlm run starts from random weights: pretrained must be None")

    def to_dict(self) -> dict[str, Any]:
        """The configuration as plain JSON-able values."""
        return json.loads(json.dumps(dataclasses.asdict(self), sort_keys=True))

    @property
    def key(self) -> str:
        """Eight hex digits of the SHA-1 of the configuration."""
        return hashlib.sha1(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:8]

    @property
    def name(self) -> str:
        """``<task>-<variant>-s<seed>-<key>``."""
        return f"{self.task}-{self.variant}-s{self.seed}-{self.key}"


def run_config(task: str, variant: str, scale: str | None = None, seed: int = 42, **overrides):
    """The :class:`RunConfig` of ``task`` and ``variant`` at ``scale`` (``SETTINGS``), with
    ``overrides`` on top. A fine-tuning run points at the MLM run of the same variant and seed
    (built with the same ``overrides`` restricted to the model), unless ``pretrained`` is given."""
    scale = get_scale(scale)
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; valid tasks are: {', '.join(TASKS)}")
    values: dict[str, Any] = dict(SETTINGS[scale][task])
    values["tokenizer"] = data.tokenizer_dir(scale).name
    values.update(overrides)
    if task != "mlm" and "pretrained" not in overrides:
        model = (
            {"model_overrides": overrides["model_overrides"]}
            if "model_overrides" in overrides
            else {}
        )
        values["pretrained"] = run_config("mlm", variant, scale, seed, **model).name
    return RunConfig(task=task, variant=variant, scale=scale, seed=seed, **values)


# --------------------------------------------------------------------------- paths


def results_path(scale: str, run: str) -> Path:
    """``results/<scale>/<run>.json`` (base folder ``$LSHLIB_RESULTS_DIR`` if set)."""
    base = Path(os.environ.get("LSHLIB_RESULTS_DIR", REPO_ROOT / "results"))
    return base / get_scale(scale) / f"{run}.json"


def run_dir(config: RunConfig) -> Path:
    """Checkpoints and the final model: ``runs/training/<scale>/<name>/``."""
    return runs_dir() / "training" / config.scale / config.name


def load_record(config: RunConfig) -> dict | None:
    """The finished run's JSON record, or ``None`` if absent or written for another config."""
    path = results_path(config.scale, config.name)
    if not path.is_file():
        return None
    record = json.loads(path.read_text())
    return record if record.get("config") == config.to_dict() else None


# --------------------------------------------------------------------------- datasets


def _cap(ds: datasets.Dataset, n: int | None, seed: int = data.SPLIT_SEED) -> datasets.Dataset:
    """A fixed random subset of ``n`` rows (all rows when ``n`` is None or larger)."""
    if n is None or n >= len(ds):
        return ds
    return ds.shuffle(seed=seed).select(range(n))


def _corpus_ids(
    tokenizer: PreTrainedTokenizerFast, split: str, max_chars: int | None
) -> np.ndarray:
    """All token ids of a corpus split, concatenated (cached under ``runs/cache``)."""
    key = hashlib.sha1(json.dumps([tokenizer.name_or_path, split, max_chars]).encode()).hexdigest()
    path = runs_dir() / "cache" / f"corpus-{split}-{key[:12]}.npy"
    if path.is_file():
        return np.load(path)
    texts = data.corpus_text(split, max_chars)
    ids: list[int] = []
    for start in range(0, len(texts), 2000):
        batch = tokenizer(texts[start : start + 2000], add_special_tokens=False, verbose=False)[
            "input_ids"
        ]
        for row in batch:
            ids.extend(row)
    array = np.asarray(ids, dtype=np.int32)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
    np.save(tmp, array)
    tmp.replace(path)
    return array


def mlm_blocks(
    tokenizer: PreTrainedTokenizerFast,
    split: str,
    block_size: int,
    n: int | None,
    seed: int,
    max_chars: int | None = None,
) -> datasets.Dataset:
    """Corpus ``split`` (its first ``max_chars`` characters if given) tokenized, concatenated
    and cut into ``[CLS] ... [SEP]`` blocks of ``block_size`` tokens; a fixed random choice of
    ``n`` of them (the paper sampled 10% of BookCorpus)."""
    ids = _corpus_ids(tokenizer, split, max_chars)
    inner = block_size - 2
    count = len(ids) // inner
    if count == 0:
        raise ValueError(f"corpus split {split!r} has fewer than block_size={block_size} tokens")
    blocks = ids[: count * inner].reshape(count, inner)
    order = np.random.default_rng(seed).permutation(count)
    chosen = np.sort(order[: n if n is not None else count])
    body = blocks[chosen]
    full = np.concatenate(
        [
            np.full((len(body), 1), tokenizer.cls_token_id, dtype=np.int32),
            body,
            np.full((len(body), 1), tokenizer.sep_token_id, dtype=np.int32),
        ],
        axis=1,
    )
    return datasets.Dataset.from_dict({"input_ids": full.tolist()})


class MLMCollator(TrainerCallback):
    """MLM masking (15%: 80% [MASK], 10% random, 10% kept) for training batches; examples that
    already carry ``labels`` (the pre-masked evaluation set) are only stacked.

    The masks are drawn from a generator seeded by the batch's token ids, the run's seed and the
    epoch, not from the global RNG: the Trainer's data loader collates one batch ahead, so with
    the global RNG a run resumed from a checkpoint would mask differently from an uninterrupted
    one. As a callback it learns the epoch at every epoch start.
    """

    def __init__(
        self, tokenizer: PreTrainedTokenizerFast, mlm_probability: float = 0.15, seed: int = 0
    ):
        self.masker = DataCollatorForLanguageModeling(tokenizer, mlm_probability=mlm_probability)
        self.seed = seed
        self.epoch = 0

    def on_epoch_begin(self, args, state, control, **kwargs):
        self.epoch = int(state.epoch or 0)

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        if "labels" in features[0]:
            return {k: torch.tensor([f[k] for f in features]) for k in features[0]}
        ids = np.asarray([f["input_ids"] for f in features], dtype=np.int64)
        digest = hashlib.blake2b(
            ids.tobytes(), digest_size=8, key=f"{self.seed}/{self.epoch}".encode()
        )
        self.masker.generator = torch.Generator().manual_seed(int.from_bytes(digest.digest()) >> 1)
        return self.masker([{"input_ids": row} for row in ids.tolist()])


def premask(ds: datasets.Dataset, tokenizer: PreTrainedTokenizerFast, prob: float, seed: int = 0):
    """Mask an evaluation set once with a fixed seed, so every evaluation (and every variant)
    scores the same masked positions."""
    masker = DataCollatorForLanguageModeling(tokenizer, mlm_probability=prob)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        batch = masker([{"input_ids": row} for row in ds["input_ids"]])
    return datasets.Dataset.from_dict(
        {"input_ids": batch["input_ids"].tolist(), "labels": batch["labels"].tolist()}
    )


def sst2_features(ds: datasets.Dataset, tokenizer, max_length: int, pad: bool) -> datasets.Dataset:
    """Tokenized SST-2 sentences (``[CLS] sentence [SEP]``) with their labels."""

    def encode(batch):
        return tokenizer(
            batch["sentence"],
            truncation=True,
            max_length=max_length,
            padding="max_length" if pad else False,
        )

    return ds.map(encode, batched=True, remove_columns=["sentence"])


def squad_train_features(
    ds: datasets.Dataset, tokenizer, max_length: int, doc_stride: int, pad: bool
) -> datasets.Dataset:
    """Windows ``[CLS] question [SEP] context [SEP]`` over each context (``doc_stride`` tokens
    of overlap) labelled with the answer's first and last token; windows that do not contain
    the whole answer are labelled at the ``[CLS]`` position (the standard recipe)."""

    def encode(batch):
        enc = tokenizer(
            [q.lstrip() for q in batch["question"]],
            batch["context"],
            truncation="only_second",
            max_length=max_length,
            stride=doc_stride,
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
            padding="max_length" if pad else False,
        )
        sample_map = enc.pop("overflow_to_sample_mapping")
        starts, ends = [], []
        for i, offsets in enumerate(enc.pop("offset_mapping")):
            cls_index = enc["input_ids"][i].index(tokenizer.cls_token_id)
            seq = enc.sequence_ids(i)
            answer = batch["answers"][sample_map[i]]
            start_char = answer["answer_start"][0]
            end_char = start_char + len(answer["text"][0])
            first = seq.index(1)
            last = len(seq) - 1 - seq[::-1].index(1)
            if offsets[first][0] > start_char or offsets[last][1] < end_char:
                starts.append(cls_index)
                ends.append(cls_index)
                continue
            s = first
            while s <= last and offsets[s][0] <= start_char:
                s += 1
            e = last
            while e >= first and offsets[e][1] >= end_char:
                e -= 1
            starts.append(s - 1)
            ends.append(e + 1)
        enc["start_positions"] = starts
        enc["end_positions"] = ends
        return enc

    return ds.map(encode, batched=True, remove_columns=ds.column_names)


def squad_eval_features(
    ds: datasets.Dataset, tokenizer, max_length: int, doc_stride: int, pad: bool
) -> datasets.Dataset:
    """Windows as in :func:`squad_train_features`, keeping ``example_id`` and an
    ``offset_mapping`` that is ``None`` outside the context (for answer extraction)."""

    def encode(batch):
        enc = tokenizer(
            [q.lstrip() for q in batch["question"]],
            batch["context"],
            truncation="only_second",
            max_length=max_length,
            stride=doc_stride,
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
            padding="max_length" if pad else False,
        )
        sample_map = enc.pop("overflow_to_sample_mapping")
        enc["example_id"] = [batch["id"][j] for j in sample_map]
        enc["offset_mapping"] = [
            [o if s == 1 else None for o, s in zip(offsets, enc.sequence_ids(i), strict=True)]
            for i, offsets in enumerate(enc["offset_mapping"])
        ]
        return enc

    return ds.map(encode, batched=True, remove_columns=ds.column_names)


# --------------------------------------------------------------------------- running


class _Clock(TrainerCallback):
    """Training wall-clock summed over interrupted sessions (kept beside each checkpoint)."""

    def __init__(self, previous: float = 0.0):
        self.previous = previous
        self.start = time.perf_counter()

    def total(self) -> float:
        return self.previous + time.perf_counter() - self.start

    def on_save(self, args, state, control, **kwargs):
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if folder.is_dir() and state.is_world_process_zero:
            (folder / CLOCK_FILE).write_text(json.dumps({"train_seconds": self.total()}))


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
        "threads": torch.get_num_threads(),
    }


def _versions() -> dict[str, str]:
    import accelerate
    import tokenizers
    import transformers

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
        "datasets": datasets.__version__,
        "accelerate": accelerate.__version__,
    }


def _curves(log_history: list[dict]) -> dict[str, list[dict]]:
    train = [{"step": h["step"], "loss": h["loss"]} for h in log_history if "loss" in h]
    evals: dict[int, dict] = {}  # one point per step (the final evaluation repeats the last)
    for h in log_history:
        if "eval_loss" in h:
            evals[h["step"]] = {k: v for k, v in h.items() if k == "step" or k.startswith("eval_")}
    return {"train": train, "eval": list(evals.values())}


def _mlm_metrics(pred) -> dict[str, float]:
    return {"accuracy": metrics.masked_accuracy(pred.predictions, pred.label_ids)}


def _sst2_metrics(pred) -> dict[str, float]:
    return {"accuracy": metrics.accuracy(np.argmax(pred.predictions, axis=-1), pred.label_ids)}


def _argmax_logits(logits, labels):
    return logits.argmax(dim=-1)


def pretrained_model_dir(config: RunConfig) -> Path:
    """The saved model of ``config``'s pretraining run (``config.pretrained``); when it is missing
    and is the standard MLM run of this variant, seed and model, it is trained first."""
    final = runs_dir() / "training" / config.scale / str(config.pretrained) / "final"
    if (final / "config.json").is_file():
        return final
    model = {"model_overrides": config.model_overrides} if config.model_overrides else {}
    mlm = run_config("mlm", config.variant, config.scale, config.seed, **model)
    if mlm.name != config.pretrained:
        raise ValueError(
            f"pretrained model {config.pretrained!r} not found under {final.parent.parent} and "
            f"it is not the standard MLM run {mlm.name!r}, which could be trained here"
        )
    log.info("pretrained model %s missing: running it", mlm.name)
    run(mlm)
    return final


def run(
    config: RunConfig, *, callbacks: list[TrainerCallback] | None = None, progress: bool = True
) -> dict:
    """Run ``config`` to completion (or reuse / resume it) and return its record.

    The record is the dict written to ``results/<scale>/<name>.json``. If a callback stops
    training early, nothing is written and the record has ``status: "interrupted"``; calling
    :func:`run` again resumes from the last checkpoint.
    """
    record = load_record(config)
    if record is not None:
        return record

    with _quiet_datasets():
        return _train(config, callbacks=callbacks, progress=progress)


@contextlib.contextmanager
def _quiet_datasets():
    """No ``datasets`` progress bars while preparing data (the Trainer's bar is the one shown)."""
    was_disabled = datasets.are_progress_bars_disabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if not was_disabled:
            datasets.enable_progress_bars()


def _train(config: RunConfig, *, callbacks: list[TrainerCallback] | None, progress: bool) -> dict:
    from lshlib.modeling import build_model

    tokenizer = data.get_tokenizer(config.scale)
    if tokenizer.name_or_path and Path(tokenizer.name_or_path).name != config.tokenizer:
        raise ValueError(
            f"config tokenizer {config.tokenizer!r} differs from the current one "
            f"{Path(tokenizer.name_or_path).name!r} (corpus or settings changed)"
        )
    out = run_dir(config)
    pad = config.pad_to_max_length
    eval_test = None
    if config.task == "mlm":
        train = mlm_blocks(
            tokenizer,
            "train",
            config.max_length,
            config.max_train,
            config.seed,
            config.corpus_chars,
        )
        raw_eval = mlm_blocks(tokenizer, "eval", config.max_length, config.max_eval, 0)
        evaluation = premask(raw_eval, tokenizer, config.mlm_probability)
        collator = MLMCollator(tokenizer, config.mlm_probability, config.seed)
        compute, preprocess = _mlm_metrics, _argmax_logits
        model = build_model(
            "mlm",
            config.variant,
            vocab_size=len(tokenizer),
            seed=config.seed,
            max_position_embeddings=max(512, config.max_length),
            **config.model_overrides,
        )
        sizes = {
            "train_blocks": len(train),
            "eval_blocks": len(evaluation),
            "block_size": config.max_length,
        }
    else:
        pretrained = pretrained_model_dir(config)
        collator = DataCollatorWithPadding(tokenizer)
        model = build_model(
            config.task,
            config.variant,
            vocab_size=len(tokenizer),
            seed=config.seed,
            pretrained=pretrained,
        )
        if config.task == "sst2":
            splits = {s: data.load_sst2(s) for s in data.SPLITS}
            raw = {
                "train": _cap(splits["train"], config.max_train),
                "validation": _cap(splits["validation"], config.max_eval),
                "test": _cap(splits["test"], config.max_test),
            }
            train = sst2_features(raw["train"], tokenizer, config.max_length, pad)
            evaluation = sst2_features(raw["validation"], tokenizer, config.max_length, pad)
            eval_test = sst2_features(raw["test"], tokenizer, config.max_length, pad)
            compute, preprocess = _sst2_metrics, None
            sizes = {k: len(v) for k, v in raw.items()}
        else:
            raw = {
                "train": _cap(data.load_squad("train"), config.max_train),
                "validation": _cap(data.load_squad("validation"), config.max_eval),
                "test": _cap(data.load_squad("test"), config.max_test),
            }
            args = (tokenizer, config.max_length, config.doc_stride, pad)
            train = squad_train_features(raw["train"], *args)
            evaluation = squad_train_features(raw["validation"], *args)
            eval_test = squad_eval_features(raw["test"], *args)
            compute, preprocess = None, None
            sizes = {
                **{k: len(v) for k, v in raw.items()},
                "train_features": len(train),
                "test_features": len(eval_test),
            }

    cuda = torch.cuda.is_available()
    args = TrainingArguments(
        output_dir=str(out),
        num_train_epochs=config.epochs,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.eval_batch_size,
        learning_rate=config.learning_rate,
        weight_decay=config.weight_decay,
        lr_scheduler_type="linear",
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
        disable_tqdm=not progress,
        include_num_input_tokens_seen="non_padding",
        dataloader_num_workers=0,
        dataloader_pin_memory=cuda,
    )
    checkpoint = get_last_checkpoint(str(out)) if out.is_dir() else None
    previous = 0.0
    if checkpoint and (Path(checkpoint) / CLOCK_FILE).is_file():
        previous = json.loads((Path(checkpoint) / CLOCK_FILE).read_text())["train_seconds"]
    clock = _Clock(previous)
    trainer = Trainer(
        model=model,
        args=args,
        data_collator=collator,
        train_dataset=train,
        eval_dataset=evaluation,
        processing_class=tokenizer,
        compute_metrics=compute,
        preprocess_logits_for_metrics=preprocess,
        callbacks=[clock, *([collator] if config.task == "mlm" else []), *(callbacks or [])],
    )
    output = trainer.train(resume_from_checkpoint=checkpoint)
    train_seconds = clock.total()
    state = trainer.state
    if state.global_step < state.max_steps:
        return {
            "status": "interrupted",
            "name": config.name,
            "step": state.global_step,
            "max_steps": state.max_steps,
        }

    train_curve = _curves(state.log_history)["train"]
    final: dict[str, Any] = {
        "train_loss_last": train_curve[-1]["loss"] if train_curve else math.nan,
        "train_loss_mean": output.training_loss,  # mean over this session's steps
    }
    final_eval = trainer.evaluate()
    final.update({k.replace("eval_", "validation_"): v for k, v in final_eval.items()})
    evals = [h["eval_loss"] for h in state.log_history if "eval_loss" in h]
    final["validation_loss_best"] = min(evals)
    if config.task == "mlm":
        final["validation_perplexity"] = metrics.perplexity(final_eval["eval_loss"])
    elif config.task == "sst2":
        test = trainer.evaluate(eval_test, metric_key_prefix="test")
        final.update(test)
        final["test_majority_accuracy"] = metrics.majority_accuracy(raw["test"]["label"])
    else:
        start = time.perf_counter()
        pred = trainer.predict(
            eval_test.remove_columns(["example_id", "offset_mapping"]), metric_key_prefix="test"
        )
        start_logits, end_logits = pred.predictions
        answers = metrics.squad_postprocess(raw["test"], eval_test, start_logits, end_logits)
        refs = {ex["id"]: ex["answers"]["text"] for ex in raw["test"]}
        final.update({f"test_{k}": v for k, v in metrics.squad_scores(answers, refs).items()})
        final["test_runtime"] = time.perf_counter() - start
        final["test_samples_per_second"] = len(raw["test"]) / final["test_runtime"]
        final["test_features_per_second"] = len(eval_test) / final["test_runtime"]

    record = {
        "name": config.name,
        "status": "finished",
        "config": config.to_dict(),
        "data": sizes,
        "curves": _curves(state.log_history),
        "final": final,
        "steps": state.global_step,
        "train_seconds": train_seconds,
        "tokens_seen": state.num_input_tokens_seen,
        "tokens_per_second": state.num_input_tokens_seen / train_seconds,
        "train_samples_per_second": state.global_step * config.batch_size / train_seconds,
        "device": _device(),
        "versions": _versions(),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    trainer.save_model(str(out / "final"))  # on every process (it writes from the main one)
    if trainer.is_world_process_zero():
        path = results_path(config.scale, config.name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record, indent=1, default=float) + "\n")
    return record


def run_all(
    task: str,
    scale: str | None = None,
    seed: int = 42,
    variants: tuple[str, ...] | None = None,
    progress: bool = True,
) -> dict[str, dict]:
    """Run (or reuse) ``task`` for every variant; returns ``{variant: record}``."""
    from lshlib.modeling import VARIANTS

    return {
        v: run(run_config(task, v, scale, seed), progress=progress) for v in (variants or VARIANTS)
    }


# Our metric (key of a record's ``final``), the paper's (key of metrics.PAPER_RESULTS), label.
COMPARISONS: dict[str, list[tuple[str, str | None, str]]] = {
    "mlm": [
        ("validation_accuracy", "mlm_eval_accuracy", "MLM accuracy"),
        ("validation_loss", "mlm_eval_loss", "MLM eval loss"),
        ("validation_perplexity", "mlm_perplexity", "perplexity"),
        ("train_loss_last", "mlm_final_train_loss", "final train loss"),
    ],
    "sst2": [
        ("test_accuracy", "sst2_test_accuracy", "test accuracy"),
        ("test_loss", "sst2_test_loss", "test loss"),
        ("validation_loss_best", "sst2_best_validation_loss", "best validation loss"),
    ],
    "squad": [
        ("validation_loss_best", "squad_best_validation_loss", "best validation loss"),
        ("test_exact_match", None, "test EM (%)"),
        ("test_f1", None, "test F1 (%)"),
    ],
}
PAPER_VARIANT = {"baseline": "baseline", "lsh_paper": "lsh"}  # lsh_masked is not in the paper


def comparison_table(records: dict[str, dict], task: str):
    """One row per variant: our final metrics of ``task`` and, beside each, the paper's number
    (``NaN`` where the paper reports none: SQuAD EM/F1 and the masked variant)."""
    import pandas as pd

    rows = {}
    for variant, record in records.items():
        paper = metrics.PAPER_RESULTS.get(PAPER_VARIANT.get(variant, ""), {})
        row: dict[str, float] = {}
        for ours, theirs, label in COMPARISONS[task]:
            row[label] = record["final"].get(ours, math.nan)
            if theirs is not None:
                row[f"{label} (paper)"] = paper.get(theirs, math.nan)
        rows[variant] = row
    return pd.DataFrame.from_dict(rows, orient="index")


def throughput_table(records: dict[str, dict]):
    """Steps, training wall-clock, tokens and samples per second, and device of each run."""
    import pandas as pd

    return pd.DataFrame.from_dict(
        {
            v: {
                "steps": r["steps"],
                "train seconds": r["train_seconds"],
                "tokens / s": r["tokens_per_second"],
                "samples / s": r["train_samples_per_second"],
                "device": r["device"]["type"],
            }
            for v, r in records.items()
        },
        orient="index",
    )


def settings_frame(task: str):
    """The settings of ``task`` at every scale, one column per scale (for the notebooks)."""
    import pandas as pd

    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; valid tasks are: {', '.join(TASKS)}")
    keys = list(dict.fromkeys(k for scale in SCALES for k in SETTINGS[scale][task]))
    columns = {scale: [str(SETTINGS[scale][task].get(k, "-")) for k in keys] for scale in SCALES}
    return pd.DataFrame(columns, index=keys)


def summarize(records: dict[str, dict], task: str) -> str:
    """One line per variant with its headline metrics and the paper's, for a notebook's close."""
    lines = []
    for variant, row in comparison_table(records, task).iterrows():
        parts = []
        for _, theirs, label in COMPARISONS[task]:
            text = f"{label} {row[label]:.4g}"
            if theirs is not None and not math.isnan(row[f"{label} (paper)"]):
                text += f" (paper {row[f'{label} (paper)']:.4g})"
            parts.append(text)
        r = records[variant]
        parts.append(f"{r['train_seconds']:.0f} s training, {r['tokens_per_second']:,.0f} tokens/s")
        lines.append(f"{variant}: " + "; ".join(parts))
    return "\n".join(lines)


def corpus_summary(scale: str | None = None) -> dict[str, Any]:
    """Size of the pretraining corpus and of the tokenizer at ``scale`` (for notebook 04)."""
    scale = get_scale(scale)
    tokenizer = data.get_tokenizer(scale)
    chars = SETTINGS[scale]["mlm"].get("corpus_chars")
    train_ids = _corpus_ids(tokenizer, "train", chars)
    eval_ids = _corpus_ids(tokenizer, "eval", None)
    train_text = data.corpus_text("train", chars)
    words = sum(len(t.split()) for t in train_text)
    files = data.corpus_files()
    return {
        "gutenberg books": sum(f.parent.name == "gutenberg" for f in files),
        "wikitext-2 files": sum(f.parent.name == "wikitext-2" for f in files),
        "training paragraphs used": len(train_text),
        "training characters used": sum(len(t) for t in train_text),
        "training words": words,
        "training tokens": int(len(train_ids)),
        "held-out tokens": int(len(eval_ids)),
        "tokens per word": len(train_ids) / max(words, 1),
        "[UNK] share of held-out tokens": float(np.mean(eval_ids == tokenizer.unk_token_id)),
        "vocabulary size": len(tokenizer),
        "block size": SETTINGS[scale]["mlm"]["max_length"],
        "training blocks available": int(
            len(train_ids) // (SETTINGS[scale]["mlm"]["max_length"] - 2)
        ),
        "training blocks used": SETTINGS[scale]["mlm"]["max_train"] or "all",
    }


def main(argv: list[str] | None = None) -> None:
    """``python -m lshlib.training --scale S --task T --variant V --seed N`` (``all`` allowed)."""
    from lshlib.modeling import VARIANTS

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", default=None, choices=SCALES)
    parser.add_argument("--task", default="all", choices=(*TASKS, "all"))
    parser.add_argument("--variant", default="all", choices=(*VARIANTS, "all"))
    parser.add_argument("--seed", type=int, default=42)
    ns = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    tasks = TASKS if ns.task == "all" else (ns.task,)
    variants = VARIANTS if ns.variant == "all" else (ns.variant,)
    for task in tasks:
        for variant in variants:
            record = run(run_config(task, variant, ns.scale, ns.seed))
            log.info("%s: %s", record["name"], json.dumps(record.get("final", record)))


if __name__ == "__main__":
    main()
