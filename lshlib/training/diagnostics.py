"""What the attention of a BERT(-LSH) model does, per layer and head, on a fixed probe batch.

Why: long MLM runs sit on a plateau (the unigram floor) for a while and then leave it; the
figures that explain *why* need to see, every few hundred steps, how sharp each head's attention
is (entropy), where it goes (itself, its neighbours, [CLS]/[SEP]), how large its logits are, how
many scores the paper's LSH sets to zero, and whether the token vectors collapse onto one
direction (hidden-state cosine). :func:`attention_diagnostics` measures all of that in one cheap
forward pass of the model on a probe batch (:func:`probe_batch`: the first blocks of the
evaluation set, the same for every run of a scale, so runs are compared on the same blocks), and
:func:`qk_grad_rms` reads how strongly the last backward pass pushed each head's query and key
weights. :func:`summarise` averages a diagnostics dict over layers and heads for a figure.

Every result is a plain JSON-able dict of Python floats (``None`` where a figure does not
apply), so the trainer can write it into its log next to the loss.

The diagnostics never move torch's global RNG (they run under :func:`torch.random.fork_rng`
and draw every hash from the generator they are given), so adding them to a run does not
change its training trajectory.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from lshlib.lsh.attention import (
    LSHConfig,
    collision_from_buckets,
    full_attention,
    hash_generator,
    hash_queries_keys,
    lsh_attention,
    random_pairs,
)
from lshlib.modeling import lsh_config_of

__all__ = [
    "HEAD_KEYS",
    "LAYER_KEYS",
    "DEFAULT_SEED",
    "attention_diagnostics",
    "mean_pairwise_cosine",
    "qk_grad_rms",
    "probe_batch",
    "summarise",
]

HEAD_KEYS = (
    "entropy",
    "self_mass",
    "neighbour_mass",
    "special_mass",
    "logit_mean",
    "logit_std",
    "zeroed_share",
)
"""The per-layer, per-head figures of :func:`attention_diagnostics` (``[layer][head]``)."""
LAYER_KEYS = ("hidden_cosine",)
"""The per-layer figures of :func:`attention_diagnostics` (``[layer]``)."""
DEFAULT_SEED = 0
"""Seed of the generator :func:`attention_diagnostics` uses when it is given none."""


# --------------------------------------------------------------------------------------------
# model access and validation


def _unwrap(model: nn.Module) -> nn.Module:
    """The task model itself (``DistributedDataParallel`` keeps it as ``.module``)."""
    return getattr(model, "module", model)


def _encoder_layers(model: nn.Module) -> nn.ModuleList:
    base = getattr(model, "base_model", None)
    layers = getattr(getattr(base, "encoder", None), "layer", None)
    if layers is None:
        raise ValueError(
            f"model must be a transformers BERT model (with base_model.encoder.layer), got "
            f"{type(model).__name__}"
        )
    return layers


def _check_ids(input_ids: Any, attention_mask: Any) -> None:
    if not isinstance(input_ids, Tensor):
        raise ValueError(f"input_ids must be a torch.Tensor, got {type(input_ids).__name__}")
    if (
        input_ids.dim() != 2
        or input_ids.dtype.is_floating_point
        or input_ids.dtype.is_complex
        or input_ids.dtype == torch.bool
        or input_ids.numel() == 0
    ):
        raise ValueError(
            "input_ids must be a non-empty 2-d integer tensor (blocks, tokens), got shape "
            f"{tuple(input_ids.shape)} and dtype {input_ids.dtype}"
        )
    if attention_mask is None:
        return
    if not isinstance(attention_mask, Tensor):
        raise ValueError(
            f"attention_mask must be a torch.Tensor or None, got {type(attention_mask).__name__}"
        )
    if attention_mask.shape != input_ids.shape:
        raise ValueError(
            f"attention_mask must have the shape of input_ids {tuple(input_ids.shape)}, got "
            f"{tuple(attention_mask.shape)}"
        )
    if attention_mask.dtype.is_floating_point or attention_mask.dtype.is_complex:
        raise ValueError(
            f"attention_mask must be a 0/1 integer or boolean tensor, got dtype "
            f"{attention_mask.dtype}"
        )
    if attention_mask.dtype != torch.bool and bool(
        ((attention_mask != 0) & (attention_mask != 1)).any()
    ):
        raise ValueError("attention_mask must hold only 0 (padding) and 1 (real token)")


def _check_special_ids(special_ids: Iterable[int]) -> list[int]:
    ids = list(special_ids)
    bad = [i for i in ids if not isinstance(i, numbers.Integral) or isinstance(i, bool)]
    if bad:
        raise ValueError(f"special_ids must be integers, got {bad!r}")
    return [int(i) for i in ids]


def _resolve_generator(generator: torch.Generator | None, device: torch.device) -> torch.Generator:
    if generator is None:
        return torch.Generator(device=device).manual_seed(DEFAULT_SEED)
    if not isinstance(generator, torch.Generator):
        raise ValueError(f"generator must be a torch.Generator or None, got {type(generator)}")
    if torch.device(generator.device).type != device.type:
        raise ValueError(
            f"generator lives on {generator.device} but the model on {device}; give a "
            "generator on the model's device"
        )
    return generator


def _forked_rng(device: torch.device):
    """``fork_rng`` of the CPU RNG and, for a CUDA model, of its device's RNG."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return torch.random.fork_rng(devices=[index])
    return torch.random.fork_rng(devices=[])


# --------------------------------------------------------------------------------------------
# capture


def _capture(
    model: nn.Module, input_ids: Tensor, attention_mask: Tensor, generator: torch.Generator
) -> tuple[list[Tensor], list[Tensor], tuple[Tensor, ...]]:
    """One forward pass in eval mode under ``no_grad``: each layer's query and key projections
    ``(batch, heads, n, head_dim)`` (in at least float32) and the hidden states (embeddings,
    then every layer's output). Runs the encoder only (``model.base_model``): the MLM head's
    vocabulary projection would cost more than everything else here and changes no attention."""
    layers = _encoder_layers(model)
    captured: dict[tuple[int, str], Tensor] = {}

    def hook(index: int, name: str, heads: int, head_dim: int):
        def save(_module: nn.Module, _args: Any, output: Tensor) -> None:
            batch, n = output.shape[:2]
            out = output.detach().view(batch, n, heads, head_dim).transpose(1, 2)
            captured[index, name] = out.float() if out.dtype.itemsize < 4 else out

        return save

    handles = []
    was_training = model.training
    try:
        for index, layer in enumerate(layers):
            attn = layer.attention.self
            heads, head_dim = attn.num_attention_heads, attn.attention_head_size
            for name in ("query", "key"):
                module = getattr(attn, name)
                handles.append(module.register_forward_hook(hook(index, name, heads, head_dim)))
        model.eval()
        with torch.no_grad(), hash_generator(generator):
            out = model.base_model(
                input_ids=input_ids,
                attention_mask=attention_mask,
                output_hidden_states=True,
                return_dict=True,
            )
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    queries = [captured[i, "query"] for i in range(len(layers))]
    keys = [captured[i, "key"] for i in range(len(layers))]
    return queries, keys, tuple(out.hidden_states)


# --------------------------------------------------------------------------------------------
# per-layer attention


def _layer_attention(
    query: Tensor,
    key: Tensor,
    allowed: Tensor,
    config: LSHConfig | None,
    layer_idx: int,
    generator: torch.Generator,
) -> tuple[Tensor, Tensor | None]:
    """Attention probabilities ``(batch, heads, n, n)`` of one layer recomputed from its
    captured query and key, and, for paper mode, the boolean ``(batch, heads, n, n)`` matrix of
    the pairs whose score it sets to zero before mirroring (``None`` otherwise).

    ``allowed`` is the ``(batch, n)`` boolean padding mask. LSH hashes come from
    ``generator`` (``rehash="call"``) or from the config's seed and ``layer_idx``
    (``rehash="fixed"``), exactly as :func:`lsh_attention` draws them."""
    mask = allowed[:, None, None, :]
    if config is None:
        return full_attention(query, key, key, mask, scaling=query.shape[-1] ** -0.5)[1], None
    dense = dataclasses.replace(config, strategy="dense")
    qb, kb, params = hash_queries_keys(query, key, dense, generator=generator, layer_idx=layer_idx)
    state = generator.get_state()  # the random-pairs draw inside lsh_attention starts here
    _, probs = lsh_attention(
        query,
        key,
        key,
        mask,
        config=dense,
        hyperplanes=params.hyperplanes,
        coefficients=params.coefficients,
        generator=generator,
        layer_idx=layer_idx,
    )
    assert probs is not None  # the dense strategy always returns them
    if config.mode != "paper":
        return probs, None
    zeroed = collision_from_buckets(qb, kb, negate=True)
    if config.pairs == "random":  # replay lsh_attention's draw on a copy of the generator
        replay = torch.Generator(device=generator.device)
        replay.set_state(state)
        zeroed = random_pairs(zeroed, replay)
    return probs, zeroed


def _per_query_mean(values: Tensor, real_q: Tensor) -> list[float]:
    """Mean over the real query positions of all blocks, per head: ``values`` is ``(batch,
    heads, n)``, ``real_q`` ``(batch, n)``."""
    weight = real_q[:, None, :].to(values.dtype)
    total = (values * weight).sum(dim=(0, 2))
    return [float(x) for x in (total / weight.sum(dim=(0, 2)).clamp_min(1))]


def _head_figures(
    query: Tensor,
    key: Tensor,
    probs: Tensor,
    zeroed: Tensor | None,
    real: Tensor,
    special: Tensor,
) -> dict[str, list[float | None]]:
    """The per-head figures of one layer (see :func:`attention_diagnostics`)."""
    probs = probs.double()
    entropy = -torch.special.xlogy(probs, probs).sum(-1)
    self_mass = probs.diagonal(dim1=-2, dim2=-1)
    neighbour = torch.zeros_like(self_mass)
    neighbour[..., :-1] += probs.diagonal(offset=1, dim1=-2, dim2=-1)  # p_{i, i+1}
    neighbour[..., 1:] += probs.diagonal(offset=-1, dim1=-2, dim2=-1)  # p_{i, i-1}
    special_mass = (probs * special[:, None, None, :].to(probs.dtype)).sum(-1)
    # the full scaled logits over real (query, key) pairs, pooled over blocks
    logits = torch.matmul(query.double(), key.double().transpose(-1, -2)) * query.shape[-1] ** -0.5
    pairs = (real[:, :, None] & real[:, None, :])[:, None].expand_as(logits)
    heads = logits.shape[1]
    per_head = logits.transpose(0, 1).reshape(heads, -1)
    keep = pairs.transpose(0, 1).reshape(heads, -1)
    count = keep.sum(-1).clamp_min(1).double()
    mean = (per_head * keep).sum(-1) / count
    var = (((per_head - mean[:, None]) * keep) ** 2).sum(-1) / count
    if zeroed is None:
        share: list[float | None] = [None] * heads
    else:
        left_out = (zeroed & pairs).transpose(0, 1).reshape(heads, -1).sum(-1)
        share = [float(x) for x in left_out.double() / count]
    return {
        "entropy": _per_query_mean(entropy, real),
        "self_mass": _per_query_mean(self_mass, real),
        "neighbour_mass": _per_query_mean(neighbour, real),
        "special_mass": _per_query_mean(special_mass, real),
        "logit_mean": [float(x) for x in mean],
        "logit_std": [float(x) for x in var.sqrt()],
        "zeroed_share": share,
    }


def mean_pairwise_cosine(hidden: Tensor, attention_mask: Tensor | None = None) -> float | None:
    """Mean cosine similarity between distinct real token vectors of one block, averaged over
    blocks: ``hidden`` is ``(blocks, n, dim)``, ``attention_mask`` ``(blocks, n)`` (1 or True =
    real token). 1 when every token of a block has the same direction (a collapsed
    representation), near 0 for unrelated vectors. Blocks with fewer than two real tokens have no
    pair and are skipped; ``None`` when no block has a pair. A zero vector has cosine 0 with
    everything."""
    if not isinstance(hidden, Tensor) or hidden.dim() != 3:
        raise ValueError(
            "hidden must be a (blocks, n, dim) tensor, got "
            f"{tuple(hidden.shape) if isinstance(hidden, Tensor) else type(hidden).__name__}"
        )
    blocks, n = hidden.shape[:2]
    if attention_mask is None:
        real = torch.ones(blocks, n, dtype=torch.bool, device=hidden.device)
    else:
        if tuple(attention_mask.shape) != (blocks, n):
            raise ValueError(
                f"attention_mask must have shape (blocks, n) = ({blocks}, {n}), got "
                f"{tuple(attention_mask.shape)}"
            )
        real = attention_mask.to(hidden.device) != 0
    unit = F.normalize(hidden.double(), dim=-1)
    cosine = torch.matmul(unit, unit.transpose(-1, -2)).clamp(-1.0, 1.0)
    pairs = real[:, :, None] & real[:, None, :]
    pairs &= ~torch.eye(n, dtype=torch.bool, device=hidden.device)
    count = pairs.sum(dim=(-2, -1))
    has_pair = count > 0
    if not bool(has_pair.any()):
        return None
    per_block = (cosine * pairs).sum(dim=(-2, -1))[has_pair] / count[has_pair]
    return float(per_block.mean())


# --------------------------------------------------------------------------------------------
# public API


def attention_diagnostics(
    model: nn.Module,
    input_ids: Tensor,
    attention_mask: Tensor | None = None,
    *,
    special_ids: Iterable[int] = (),
    generator: torch.Generator | None = None,
) -> dict[str, list]:
    """What each layer's and head's attention does on the probe ``input_ids`` ``(blocks, n)``.

    ``model`` is a BERT task model of :func:`lshlib.modeling.build_model` (or its DDP wrapper)
    with SDPA attention (baseline) or BERT-LSH (``config.lsh``). One forward pass in eval mode
    without gradients captures every layer's query and key projections and hidden states (the
    model's train/eval mode is restored afterwards); then each layer's attention probabilities
    are recomputed from its query and key: full softmax attention for the baseline, the dense
    BERT-LSH of the model's settings for LSH (hashes drawn per layer as the model draws them,
    per-call ones from ``generator``). The model's own forward also takes its per-call hashes from
    ``generator`` (:func:`lshlib.lsh.attention.hash_generator`).

    ``generator`` must live on the model's device; ``None`` uses a fresh one seeded with
    :data:`DEFAULT_SEED`, so repeated calls on an unchanged model agree. A given generator is
    advanced. Torch's global RNG is never moved.

    Returns lists indexed ``[layer][head]`` of Python floats, each averaged over the real
    (``attention_mask`` 1) query positions of all blocks pooled:

    * ``entropy``: ``-sum_j p_ij log p_ij`` (nats; ``log n`` is uniform attention);
    * ``self_mass``: ``p_ii``; ``neighbour_mass``: ``p_{i,i-1} + p_{i,i+1}`` (a missing
      neighbour at a block edge counts 0); ``special_mass``: the mass on keys whose id is in
      ``special_ids`` ([CLS], [SEP]);
    * ``logit_mean``, ``logit_std``: mean and (population) standard deviation of the full scaled
      logits ``q_i . k_j / sqrt(head_dim)`` over all real (query, key) pairs, before any LSH;
    * ``zeroed_share``: paper mode only, the share of real (query, key) pairs whose score is set
      to 0 before mirroring, i.e. ``1 -`` the collision density of the drawn hashes (for
      ``pairs="random"``, the share the random-pairs draw leaves out); ``None`` entries for the
      baseline and masked mode;

    and ``hidden_cosine`` indexed ``[layer]``: :func:`mean_pairwise_cosine` of that layer's
    output hidden states (``None`` if no block has two real tokens).
    """
    model = _unwrap(model)
    _check_ids(input_ids, attention_mask)
    specials = _check_special_ids(special_ids)
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    gen = _resolve_generator(generator, device)
    raw = getattr(model.config, "lsh", None)
    config = None if raw is None else lsh_config_of(model.config)
    input_ids = input_ids.to(device)
    real = (
        torch.ones_like(input_ids, dtype=torch.bool)
        if attention_mask is None
        else attention_mask.to(device) != 0
    )
    special = torch.isin(input_ids, torch.tensor(specials, dtype=input_ids.dtype, device=device))
    with _forked_rng(device):
        queries, keys, hidden = _capture(model, input_ids, real.long(), gen)
        result: dict[str, list] = {name: [] for name in (*HEAD_KEYS, *LAYER_KEYS)}
        with torch.no_grad():
            for index, (query, key) in enumerate(zip(queries, keys, strict=True)):
                probs, zeroed = _layer_attention(query, key, real, config, index, gen)
                figures = _head_figures(query, key, probs, zeroed, real, special)
                for name in HEAD_KEYS:
                    result[name].append(figures[name])
                result["hidden_cosine"].append(mean_pairwise_cosine(hidden[index + 1], real))
    return result


def qk_grad_rms(model: nn.Module) -> dict[str, list]:
    """Root-mean-square of the gradient of each layer's query and key weights, per head.

    Head ``h`` owns the output rows ``h * head_dim : (h + 1) * head_dim`` of
    ``attention.self.query.weight`` (and ``.key.weight``). Returns ``{"query": [[rms per head]
    per layer], "key": ...}`` with Python floats, ``None`` where a weight has no ``.grad``
    (before the first backward pass, or after ``zero_grad(set_to_none=True)``). Read it between
    ``backward`` and the optimizer step; it runs no forward pass and draws nothing."""
    layers = _encoder_layers(_unwrap(model))
    result: dict[str, list] = {"query": [], "key": []}
    for layer in layers:
        attn = layer.attention.self
        heads, head_dim = attn.num_attention_heads, attn.attention_head_size
        for name in ("query", "key"):
            grad = getattr(attn, name).weight.grad
            if grad is None:
                result[name].append([None] * heads)
                continue
            rows = grad.detach().double().reshape(heads, head_dim, -1)
            result[name].append([float(x) for x in rows.pow(2).mean(dim=(1, 2)).sqrt()])
    return result


def probe_batch(eval_set: Any, size: int = 64) -> dict[str, Tensor]:
    """The probe of :func:`attention_diagnostics`: the first ``size`` rows of ``eval_set`` (a
    ``datasets.Dataset`` of equal-length blocks) as tensors, ``input_ids`` and, when the set has
    it, ``attention_mask``.

    The first rows, not a random sample: the probe is then the same for every run of a scale
    (every variant and seed reads the same evaluation set), so their diagnostics are measured
    on the same blocks and differences come from the models, not from the probe."""
    length = len(eval_set)
    if not isinstance(size, numbers.Integral) or isinstance(size, bool) or not 1 <= size <= length:
        raise ValueError(
            f"size must be an integer in [1, {length}] (the evaluation set has {length} rows), "
            f"got {size!r}"
        )
    columns = list(getattr(eval_set, "column_names", None) or [])
    if "input_ids" not in columns:
        raise ValueError(f"eval_set must have an 'input_ids' column, got columns {columns}")
    rows = eval_set[: int(size)]
    batch: dict[str, Tensor] = {}
    for name in ("input_ids", "attention_mask"):
        if name not in columns:
            continue
        try:
            batch[name] = torch.as_tensor(rows[name], dtype=torch.long)
        except (ValueError, TypeError) as err:
            raise ValueError(
                f"the first {size} rows of column {name!r} must have equal lengths (blocks), "
                f"got {err}"
            ) from err
    return batch


def summarise(diag: Mapping[str, list]) -> dict[str, float | None]:
    """Each figure of a diagnostics dict averaged over layers and heads (``None`` values skipped;
    ``None`` when all are, e.g. ``zeroed_share`` of the baseline)."""
    summary: dict[str, float | None] = {}
    for name, values in diag.items():
        flat = [float(x) for x in _flatten(values) if x is not None]
        summary[name] = math.fsum(flat) / len(flat) if flat else None
    return summary


def _flatten(values: Any) -> Iterable[Any]:
    if isinstance(values, list | tuple):
        for value in values:
            yield from _flatten(value)
    else:
        yield values
