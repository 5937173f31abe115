"""Where an attention call's hash functions come from: drawn per call, fixed per layer, or given.

``rehash="call"`` (the paper) draws new hyperplanes for every batch element and head at every
call, from the generator set by :func:`hash_generator` (evaluation sets one, so it never moves the
training RNG) or torch's global RNG; ``rehash="fixed"`` draws one family per layer and head from
``LSHConfig.seed`` (:func:`fixed_hash_params`, cached, identical on every device and after a
reload); explicit ``hyperplanes``/``coefficients`` are checked against the query's shape.
:func:`hash_queries_keys` turns them into the bucket ids of queries and keys.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
from collections.abc import Iterator

import torch
from torch import Tensor

from lshlib.lsh.config import MAX_LAYERS, LSHConfig
from lshlib.lsh.hashing import HashParams, buckets, draw_hash_params

__all__ = [
    "hash_generator",
    "current_hash_generator",
    "fixed_hash_params",
    "hash_queries_keys",
]

_HASH_GENERATOR: contextvars.ContextVar[torch.Generator | None] = contextvars.ContextVar(
    "lshlib_hash_generator", default=None
)


@contextlib.contextmanager
def hash_generator(generator: torch.Generator | None) -> Iterator[None]:
    """While active, attention called through transformers (``attn_implementation="bert_lsh"``)
    draws its per-call hashes and random pairs from ``generator`` instead of torch's global RNG.

    Evaluation uses it (:mod:`lshlib.training.trainers`): with a generator seeded once per
    evaluation, every evaluation of a per-call-hash model scores the same draws and never moves the
    training RNG (dropout, the next training step's hashes)."""
    token = _HASH_GENERATOR.set(generator)
    try:
        yield
    finally:
        _HASH_GENERATOR.reset(token)


def current_hash_generator() -> torch.Generator | None:
    """The generator set by :func:`hash_generator`, or ``None`` (torch's global RNG)."""
    return _HASH_GENERATOR.get()


@functools.lru_cache(maxsize=256)
def _fixed_params_cached(
    seed: int,
    layer_idx: int,
    heads: int,
    head_dim: int,
    bits: int,
    tables: int,
    table_size: int | None,
    device: str,
) -> HashParams:
    # One CPU generator per (seed, layer): identical draws on every device and after reloads.
    gen = torch.Generator().manual_seed(seed * 1_000_003 + layer_idx)
    params = draw_hash_params(
        head_dim, bits, tables, table_size, batch_shape=(1, heads), generator=gen
    )
    coefficients = None if params.coefficients is None else params.coefficients.to(device)
    return HashParams(params.hyperplanes.to(device), coefficients, table_size)


def fixed_hash_params(
    config: LSHConfig,
    heads: int,
    head_dim: int,
    layer_idx: int = 0,
    device: torch.device | str = "cpu",
) -> HashParams:
    """The hash functions of ``rehash="fixed"``: drawn once per layer from ``config.seed`` and
    ``layer_idx``, one family per head, shape ``(1, heads, tables, bits, head_dim)`` (shared by
    every batch element). Deterministic, so a reloaded model hashes exactly as before. The
    tensors are fresh copies of a cached draw: editing them cannot change later calls."""
    layer = int(layer_idx or 0)
    if not 0 <= layer < MAX_LAYERS:
        raise ValueError(f"layer_idx must be in [0, 2**20), got {layer_idx!r}")
    params = _fixed_params_cached(
        config.seed,
        layer,
        heads,
        head_dim,
        config.bits,
        config.tables,
        config.table_size,
        str(torch.device(device)),
    )
    coefficients = None if params.coefficients is None else params.coefficients.clone()
    return HashParams(params.hyperplanes.clone(), coefficients, params.table_size)


def _check_hash_batch(name: str, tensor: Tensor, batch: int, heads: int, tail: int) -> None:
    """``tensor``'s leading dims (before its last ``tail``) must broadcast to (batch, heads)."""
    lead = tuple(tensor.shape[:-tail])
    if len(lead) > 2 or any(
        s not in (1, t) for s, t in zip(reversed(lead), (heads, batch), strict=False)
    ):
        raise ValueError(
            f"{name} of shape {tuple(tensor.shape)} has leading dims {lead} that do not "
            f"broadcast to (batch, heads) = ({batch}, {heads})"
        )


def _resolve_params(
    query: Tensor,
    config: LSHConfig,
    hyperplanes: Tensor | None,
    coefficients: Tensor | None,
    generator: torch.Generator | None,
    layer_idx: int = 0,
) -> HashParams:
    batch, heads, _, head_dim = query.shape
    if hyperplanes is None:
        if coefficients is not None:
            raise ValueError("coefficients were given without hyperplanes; give both or neither")
        if config.rehash == "fixed":
            return fixed_hash_params(config, heads, head_dim, layer_idx, query.device)
        return draw_hash_params(
            head_dim,
            config.bits,
            config.tables,
            config.table_size,
            batch_shape=(batch, heads),
            generator=generator,
            device=query.device,
        )
    if hyperplanes.shape[-3:] != (config.tables, config.bits, head_dim):
        raise ValueError(
            "hyperplanes must have shape (..., tables, bits, head_dim) = (..., "
            f"{config.tables}, {config.bits}, {head_dim}), got {tuple(hyperplanes.shape)}"
        )
    _check_hash_batch("hyperplanes", hyperplanes, batch, heads, 3)
    if config.table_size is not None and coefficients is None:
        raise ValueError(
            f"table_size={config.table_size} needs coefficients along with the hyperplanes"
        )
    if config.table_size is None and coefficients is not None:
        raise ValueError("coefficients were given but table_size is None (plain signatures)")
    if coefficients is not None:
        _check_hash_batch("coefficients", coefficients, batch, heads, 2)
        coefficients = coefficients.to(query.device)
    return HashParams(hyperplanes.to(query.device), coefficients, config.table_size)


def hash_queries_keys(
    query: Tensor,
    key: Tensor,
    config: LSHConfig,
    *,
    hyperplanes: Tensor | None = None,
    coefficients: Tensor | None = None,
    generator: torch.Generator | None = None,
    layer_idx: int = 0,
) -> tuple[Tensor, Tensor, HashParams]:
    """Bucket ids of queries and keys, each int64 ``(batch, heads, tables, n)``, and the hash
    parameters used (drawn as ``config.rehash`` says when not given)."""
    params = _resolve_params(query, config, hyperplanes, coefficients, generator, layer_idx)
    with torch.no_grad():
        qb = buckets(query.detach(), params)
        kb = buckets(key.detach(), params)
    batch, heads = query.shape[:2]
    qb = qb.expand(batch, heads, *qb.shape[-2:])
    kb = kb.expand(batch, heads, *kb.shape[-2:])
    return qb, kb, params
