"""What one training run trains and how it is scored: the model, the encoded splits, the
collator and the metrics of each task (:class:`Job`). :mod:`lshlib.training` runs it."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import datasets
import numpy as np
from transformers import (
    DataCollatorWithPadding,
    PreTrainedModel,
    PreTrainedTokenizerFast,
    Trainer,
)

from lshlib import data
from lshlib.lsh.attention import LSHConfig
from lshlib.modeling import build_model, variant_lsh_config
from lshlib.training import features, metrics
from lshlib.training.config import RunConfig
from lshlib.training.trainers import SparseMLMTrainer, TaskTrainer
from lshlib.variants import RANDOM_VARIANTS


@dataclass
class Job:
    """What a run trains on and how it is scored (:func:`prepare_mlm`, :func:`prepare_finetune`)."""

    model: Any
    train: datasets.Dataset
    evaluation: datasets.Dataset
    collator: Any
    compute: Any = None
    trainer_class: type[Trainer] = TaskTrainer
    test: datasets.Dataset | None = None
    raw_test: datasets.Dataset | None = None
    sizes: dict[str, Any] = field(default_factory=dict)


def lsh_settings(config: RunConfig) -> LSHConfig | None:
    """The run's LSH settings where the run config changes the variant's: the random-pairs
    controls' density (``RunConfig.random_density``); ``None`` (the variant's own) otherwise."""
    if config.variant not in RANDOM_VARIANTS:
        return None
    return replace(variant_lsh_config(config.variant), density=config.random_density)


def mlm_model(config: RunConfig, vocab_size: int) -> PreTrainedModel:
    """The freshly initialised ``BertForMaskedLM`` of an MLM run (its variant, seed, block size
    and model overrides): what the run trains and what the training benchmark times."""
    return build_model(
        "mlm",
        config.variant,
        vocab_size=vocab_size,
        seed=config.seed,
        lsh=lsh_settings(config),
        max_position_embeddings=max(512, config.max_length),
        **config.model_overrides,
    )


def mlm_metrics(pred) -> dict[str, float]:
    return {"accuracy": metrics.masked_accuracy(pred.predictions, pred.label_ids)}


def sst2_metrics(pred) -> dict[str, float]:
    return {"accuracy": metrics.accuracy(np.argmax(pred.predictions, axis=-1), pred.label_ids)}


def prepare_mlm(config: RunConfig, tokenizer: PreTrainedTokenizerFast) -> Job:
    """Corpus blocks, the masked evaluation blocks, the sparse-head MLM model and collator."""
    train = features.mlm_blocks(
        tokenizer, "train", config.max_length, config.max_train, config.seed, config.corpus_chars
    )
    evaluation = features.mlm_eval_set(
        tokenizer, config.max_length, config.max_eval, config.mlm_probability
    )
    return Job(
        model=mlm_model(config, len(tokenizer)),
        train=train,
        evaluation=evaluation,
        collator=features.MLMCollator(tokenizer, config.mlm_probability, config.seed),
        compute=mlm_metrics,  # on the masked positions' tokens (SparseMLMTrainer)
        trainer_class=SparseMLMTrainer,
        sizes={
            "train_blocks": len(train),
            "eval_blocks": len(evaluation),
            "block_size": config.max_length,
        },
    )


def finetune_model(config: RunConfig, vocab_size: int, pretrained: Path | None) -> PreTrainedModel:
    """The task model of a fine-tuning run: from the ``pretrained`` model folder, or from random
    weights (baseline attention) when it is ``None``: the ``scratch`` control."""
    scratch = pretrained is None
    return build_model(
        config.task,
        "baseline" if scratch else config.variant,
        vocab_size=vocab_size,
        seed=config.seed,
        pretrained=pretrained,
        lsh=None if scratch else lsh_settings(config),
        **(config.model_overrides if scratch else {}),
    )


def prepare_finetune(
    config: RunConfig, tokenizer: PreTrainedTokenizerFast, model: PreTrainedModel
) -> Job:
    """``model`` (:func:`finetune_model`, or a finished run's model) with the task's encoded
    train, validation and test splits, collator and metrics."""
    pad = config.pad_to_max_length
    if config.task == "sst2":
        splits = {s: data.load_sst2(s) for s in data.SPLITS}
        caps = {"train": config.max_train, "validation": config.max_eval, "test": config.max_test}
        raw = {s: features.subset(splits[s], caps[s]) for s in caps}
        encoded = {
            s: features.sst2_features(raw[s], tokenizer, config.max_length, pad) for s in raw
        }
        job = Job(model, encoded["train"], encoded["validation"], None, sst2_metrics)
        job.test, job.sizes = encoded["test"], {k: len(v) for k, v in raw.items()}
    else:
        raw = {
            "train": features.subset(data.load_squad("train"), config.max_train),
            "validation": features.subset(data.load_squad("validation"), config.max_eval),
            "test": features.subset(data.load_squad("test"), config.max_test),
        }
        args = (tokenizer, config.max_length, config.doc_stride, pad)
        job = Job(
            model,
            features.squad_train_features(raw["train"], *args),
            features.squad_train_features(raw["validation"], *args),
            None,
            test=features.squad_eval_features(raw["test"], *args),
        )
        job.sizes = {
            **{k: len(v) for k, v in raw.items()},
            "train_features": len(job.train),
            "test_features": len(job.test),
        }
    job.collator = DataCollatorWithPadding(tokenizer)
    job.raw_test = raw["test"]
    return job
