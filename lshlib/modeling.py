"""Baseline BERT and BERT-LSH as stock transformers classes, differing only in attention.

The paper's BERT-tiny (2 layers, hidden 128, 2 heads, intermediate 512, 512 positions) is built
with ``attn_implementation="sdpa"`` for the baseline and ``"bert_lsh"`` (see
:mod:`lshlib.lsh.attention`) for BERT-LSH; the LSH settings live in ``config.lsh`` so they survive
``save_pretrained`` / ``from_pretrained``. No modeling code is copied or forked.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
import transformers
from torch import Tensor, nn
from transformers import (
    AttentionInterface,
    BertConfig,
    BertForMaskedLM,
    BertForQuestionAnswering,
    BertForSequenceClassification,
    PreTrainedModel,
)
from transformers.masking_utils import AttentionMaskInterface, eager_mask

from lshlib.lsh.attention import (
    ATTN_NAME,
    CONFIG_ATTR,
    LSHConfig,
    current_hash_generator,
    lsh_attention,
)
from lshlib.variants import ALL_VARIANTS, CONTROL_VARIANTS, LONG_VARIANTS, TASKS, VARIANTS

__all__ = [
    "VARIANTS",
    "CONTROL_VARIANTS",
    "ALL_VARIANTS",
    "LONG_VARIANTS",
    "TASKS",
    "TASK_CLASSES",
    "variant_lsh_config",
    "bert_tiny_config",
    "attn_implementation_of",
    "build_model",
    "load_model",
    "lsh_config_of",
    "register",
    "SparseMLMOutput",
    "sparse_mlm_forward",
    "sparse_mlm_loss",
]

TASK_CLASSES: dict[str, type[PreTrainedModel]] = {
    "mlm": BertForMaskedLM,
    "sst2": BertForSequenceClassification,
    "squad": BertForQuestionAnswering,
}
# How each LSH variant departs from the paper's settings (bits 2, tables 1, table_size 256,
# hashes redrawn at every call, paper mode).
_VARIANT_SETTINGS: dict[str, dict[str, Any]] = {
    "lsh_paper": {"mode": "paper"},
    "lsh_masked": {"mode": "masked"},
    # density over the real tokens' pairs (a model saved before has no "density": "all")
    "random_paper": {"mode": "paper", "pairs": "random", "density": "real_keys"},
    "random_masked": {"mode": "masked", "pairs": "random", "density": "real_keys"},
    "lsh_paper_fixed": {"mode": "paper", "rehash": "fixed"},
    "lsh_paper_unmirrored": {"mode": "paper", "mirror": False},
    # on CUDA "bucketed" runs as "flex" at call time (lshlib.lsh.flex.resolve_strategy): no config
    # changes, so every committed run keeps its strategy
    "lsh_bucketed": {"mode": "masked", "strategy": "bucketed", "bits": 4, "table_size": None},
}


def _check_variant(variant: str) -> None:
    if variant not in ALL_VARIANTS:
        raise ValueError(f"variant must be one of {ALL_VARIANTS}, got {variant!r}")


def _check_task(task: str) -> None:
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")


def variant_lsh_config(variant: str) -> LSHConfig | None:
    """LSH settings of a named variant: the paper's (bits 2, tables 1, table_size 256, fresh
    hashes at every call) in ``paper`` or ``masked`` mode, or one of the controls
    (:data:`CONTROL_VARIANTS`: random pairs of the same density, fixed hashes, no mirroring);
    ``None`` for the baseline."""
    _check_variant(variant)
    if variant == "baseline":
        return None
    settings = {"bits": 2, "tables": 1, "table_size": 256, "rehash": "call"}
    return LSHConfig(**{**settings, **_VARIANT_SETTINGS[variant]})


def _resolve_lsh(variant: str, lsh: LSHConfig | dict | None) -> LSHConfig | None:
    _check_variant(variant)
    if lsh is None:
        return variant_lsh_config(variant)
    if variant == "baseline":
        raise ValueError(
            "variant 'baseline' takes no lsh settings; use 'lsh_paper' or 'lsh_masked'"
        )
    if isinstance(lsh, dict):
        lsh = LSHConfig.from_dict(lsh)
    expected = _VARIANT_SETTINGS[variant]["mode"]
    if lsh.mode != expected:
        raise ValueError(f"variant {variant!r} needs lsh mode {expected!r}, got mode {lsh.mode!r}")
    return lsh


def _apply_variant(config: BertConfig, lsh: LSHConfig | None) -> BertConfig:
    setattr(config, CONFIG_ATTR, None if lsh is None else lsh.to_dict())
    return config


def bert_tiny_config(
    vocab_size: int = 32000,
    *,
    variant: str = "baseline",
    lsh: LSHConfig | None = None,
    max_position_embeddings: int = 512,
    **overrides: Any,
) -> BertConfig:
    """The paper's BERT-tiny config for a variant; ``lsh`` overrides the variant's LSH settings
    (its mode must match the variant); ``overrides`` are passed to ``BertConfig``."""
    settings = _resolve_lsh(variant, lsh)
    kwargs: dict[str, Any] = {
        "vocab_size": vocab_size,
        "hidden_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 512,
        "max_position_embeddings": max_position_embeddings,
    }
    kwargs.update(overrides)
    return _apply_variant(BertConfig(**kwargs), settings)


def attn_implementation_of(config: Any) -> str:
    """``"bert_lsh"`` when the config carries LSH settings, else ``"sdpa"``."""
    return ATTN_NAME if getattr(config, CONFIG_ATTR, None) is not None else "sdpa"


def build_model(
    task: str,
    variant: str,
    *,
    vocab_size: int,
    seed: int = 42,
    pretrained: str | Path | None = None,
    num_labels: int = 2,
    lsh: LSHConfig | None = None,
    **config_overrides: Any,
) -> PreTrainedModel:
    """A BERT-tiny for ``task`` (mlm, sst2, squad) with the attention of ``variant``.

    ``pretrained=None``: random init under ``torch.manual_seed(seed)``, identical weights for
    every variant at the same seed. ``pretrained=<dir saved by save_pretrained>``: its weights
    (new task heads initialised under the seed) with this variant's attention.
    """
    _check_task(task)
    register()
    settings = _resolve_lsh(variant, lsh)
    cls = TASK_CLASSES[task]
    extra: dict[str, Any] = {"num_labels": num_labels} if task == "sst2" else {}
    if pretrained is None:
        config = bert_tiny_config(vocab_size, variant=variant, lsh=settings, **config_overrides)
        for name, value in extra.items():
            setattr(config, name, value)
        torch.manual_seed(seed)
        return cls._from_config(config, attn_implementation=attn_implementation_of(config))
    path = Path(pretrained)
    if not (path / "config.json").is_file():
        raise ValueError(f"pretrained must be a directory saved by save_pretrained, got {path}")
    config = BertConfig.from_pretrained(path, **config_overrides, **extra)
    if config.vocab_size != vocab_size:
        raise ValueError(
            f"vocab_size={vocab_size} does not match the pretrained model's {config.vocab_size}"
        )
    _apply_variant(config, settings)
    torch.manual_seed(seed)
    verbosity = transformers.utils.logging.get_verbosity()
    transformers.utils.logging.set_verbosity_error()  # the head swap below is checked instead
    try:
        model, info = cls.from_pretrained(
            path,
            config=config,
            attn_implementation=attn_implementation_of(config),
            output_loading_info=True,
        )
    finally:
        transformers.utils.logging.set_verbosity(verbosity)
    _check_head_swap(info, task)
    return model


# The only weights a task model may lack or leave unused when it starts from a saved BERT model:
# its own new head (and the pooler, which MLM pretraining does not train) and the MLM head.
_NEW_HEAD_PREFIXES = ("classifier.", "qa_outputs.", "bert.pooler.", "cls.")


def _check_head_swap(info: dict[str, Any], task: str) -> None:
    """Raise when loading dropped or left out any weight other than the heads being swapped."""
    odd = [
        key
        for kind in ("missing_keys", "unexpected_keys", "mismatched_keys")
        for key in info.get(kind, ())
        if not str(key if isinstance(key, str) else key[0]).startswith(_NEW_HEAD_PREFIXES)
    ]
    if odd:
        raise ValueError(
            f"loading the pretrained model for task {task!r} left body weights unmatched: "
            f"{odd[:5]}; only the task and MLM heads may differ"
        )


def load_model(path: str | Path, task: str) -> PreTrainedModel:
    """Reload a model saved with ``save_pretrained`` with the attention its config names
    (``from_pretrained`` alone would fall back to sdpa: the attention choice is not saved)."""
    _check_task(task)
    register()
    config = BertConfig.from_pretrained(path)
    return TASK_CLASSES[task].from_pretrained(
        path, config=config, attn_implementation=attn_implementation_of(config)
    )


# --------------------------------------------------------------------------------------------
# the attention interface


@functools.lru_cache(maxsize=64)
def _config_from_items(items: tuple[tuple[str, Any], ...]) -> LSHConfig:
    return LSHConfig.from_dict(dict(items))


def lsh_config_of(model_config: Any) -> LSHConfig:
    """The :class:`LSHConfig` stored on a transformers config as ``config.lsh``."""
    raw = getattr(model_config, CONFIG_ATTR, None)
    if raw is None:
        raise ValueError(
            f"attn_implementation={ATTN_NAME!r} needs LSH settings in config.{CONFIG_ATTR} "
            "(build the config with lshlib.modeling.bert_tiny_config)"
        )
    if isinstance(raw, LSHConfig):
        return raw
    return _config_from_items(tuple(sorted(dict(raw).items())))


def _transformers_attention(
    module: torch.nn.Module,
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attention_mask: Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    **kwargs: Any,
) -> tuple[Tensor, Tensor | None]:
    """The ``AttentionInterface`` entry: settings from ``module.config.lsh``; output transposed
    to ``(batch, n, heads, head_dim)`` as transformers expects."""
    config = lsh_config_of(module.config)
    out, probs = lsh_attention(
        query,
        key,
        value,
        attention_mask,
        config=config,
        dropout=dropout,
        training=module.training,
        scaling=scaling,
        layer_idx=getattr(module, "layer_idx", 0) or 0,
        generator=current_hash_generator(),
    )
    return out.transpose(1, 2).contiguous(), probs


def register() -> None:
    """Register ``"bert_lsh"`` with transformers' ``AttentionInterface`` and, with the eager
    (additive float) mask builder, ``AttentionMaskInterface``; without the latter transformers
    would silently drop padding masks for an unknown attention name.

    Idempotent, and explicit: :func:`build_model` and :func:`load_model` call it; call it
    yourself before building a model with ``attn_implementation="bert_lsh"`` by other means."""
    AttentionInterface.register(ATTN_NAME, _transformers_attention)
    AttentionMaskInterface.register(ATTN_NAME, eager_mask)


# --------------------------------------------------------------------------- sparse MLM head


@dataclass(frozen=True)
class SparseMLMOutput:
    """Masked-LM loss (mean cross-entropy over the labelled positions, as the full head's), the
    vocabulary logits at those positions only ``(k, vocab)`` and their labels ``(k,)``."""

    loss: Tensor
    logits: Tensor
    labels: Tensor


@contextlib.contextmanager
def _head_at(model: nn.Module, keep: Tensor) -> Iterator[None]:
    """While active, ``model.cls`` sees only the hidden states where ``keep`` is true."""
    inner = getattr(model, "module", model)  # DistributedDataParallel wraps the model
    if not isinstance(inner, BertForMaskedLM):
        raise TypeError(f"sparse MLM needs a BertForMaskedLM, got {type(inner).__name__}")
    handle = inner.cls.register_forward_pre_hook(lambda _m, args: (args[0][keep],))
    try:
        yield
    finally:
        handle.remove()


def sparse_mlm_forward(model: nn.Module, batch: Mapping[str, Tensor]) -> SparseMLMOutput:
    """Run a stock ``BertForMaskedLM`` (or its DDP wrapper) on ``batch`` computing the vocabulary
    projection only at positions whose label is not -100 ("sparse prediction").

    Why: with 15% masking the full head spends ~85% of its (dominant) cost on positions that
    carry no loss. The call goes through ``model``'s own forward (a pre-hook on ``model.cls``
    gathers the labelled hidden states), so DDP hooks still run and the weights stay those of a
    ``BertForMaskedLM``. Loss and masked-position predictions equal the full head's.
    """
    labels = batch["labels"]
    keep = labels != -100
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    with _head_at(model, keep):
        logits = model(**inputs, return_dict=True).logits
    targets = labels[keep]
    if targets.numel() == 0:  # no labelled position: a zero loss that keeps the graph
        loss = logits.sum() * 0.0
    else:
        loss = F.cross_entropy(logits.float(), targets)
    return SparseMLMOutput(loss=loss, logits=logits, labels=targets)


def sparse_mlm_loss(model: nn.Module, batch: Mapping[str, Tensor]) -> Tensor:
    """The masked-LM loss of :func:`sparse_mlm_forward` (for a training step)."""
    return sparse_mlm_forward(model, batch).loss
