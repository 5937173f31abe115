"""SimHash (random-hyperplane) hashing, the paper's bucket folding, and collision matrices.

Vocabulary used throughout ``lshlib`` and how it maps to the paper's code:

* ``bits``: hyperplanes per table, i.e. sign bits per signature. The paper calls this ``bands``.
* ``tables``: independent hash tables; a pair collides if it shares a bucket in *any* table
  (OR over tables). The paper calls this ``num_hashes``.
* ``table_size``: number of buckets the paper folds a signature into, via
  ``sum_j bit_j * coefficient_j mod table_size`` with random integer coefficients in
  ``[0, table_size)``. ``table_size=None`` means the plain signature: the ``bits`` sign bits read
  as an integer, ``2**bits`` buckets.

All functions are batched over arbitrary leading dimensions (batch, heads, ...). The random state
(:class:`HashParams`) is always returned to the caller and can be passed back in, so a figure can
show exactly the buckets it computed with and a test can compare against an oracle.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "HashSetting",
    "HashParams",
    "draw_hash_params",
    "sign_bits",
    "signature_buckets",
    "folded_buckets",
    "buckets",
    "collision_matrix",
    "collisions",
    "validate_hash_settings",
    "MAX_TABLE_SIZE",
]


MAX_TABLE_SIZE = 2**62
"""Exclusive upper bound on ``table_size``: folded ids ``sum_j bit_j * coefficient_j`` must fit
in int64 (see :func:`validate_hash_settings`)."""


def _is_int(x: object) -> bool:
    """True for Python and numpy integers, False for bools (``np.int64`` is an ``Integral``)."""
    return isinstance(x, numbers.Integral) and not isinstance(x, bool | np.bool_)


def validate_hash_settings(bits: int, tables: int, table_size: int | None) -> None:
    """Raise ``ValueError`` naming the bad value and the valid range (numpy integers accepted)."""
    if not _is_int(bits) or not 1 <= bits <= 62:
        raise ValueError(f"bits must be an integer in [1, 62], got {bits!r}")
    if not _is_int(tables) or tables < 1:
        raise ValueError(f"tables must be an integer >= 1, got {tables!r}")
    if table_size is not None and (
        not _is_int(table_size)
        or not 2 <= table_size < MAX_TABLE_SIZE
        or (table_size - 1) * int(bits) >= 2**63
    ):
        raise ValueError(
            f"table_size must be None or an integer >= 2 and < 2**62 with (table_size - 1) * "
            f"bits < 2**63 (folded ids must fit in int64), got {table_size!r} with bits={bits!r}"
        )


class HashSetting(NamedTuple):
    """One LSH configuration, the study's one hash-setting type: ``bits`` hyperplanes per table,
    ``tables`` tables, and the number of folded buckets (``None`` = plain ``2**bits``
    signature). A plain ``(bits, tables, table_size)`` tuple converts with ``HashSetting(*t)``.
    (:class:`HashParams`, by contrast, holds the random tensors drawn for a setting.)"""

    bits: int
    tables: int = 1
    table_size: int | None = None

    @property
    def label(self) -> str:
        """The one label of a setting, e.g. ``bits=2, tables=1, T=256`` or
        ``bits=4, tables=1, signature`` (unfolded ``2**bits`` buckets)."""
        size = "signature" if self.table_size is None else f"T={self.table_size}"
        return f"bits={self.bits}, tables={self.tables}, {size}"


@dataclass(frozen=True)
class HashParams:
    """The random state of a family of SimHash tables.

    Attributes:
        hyperplanes: ``(..., tables, bits, dim)`` Gaussian hyperplane normals.
        coefficients: ``(..., tables, bits)`` int64 folding coefficients in ``[0, table_size)``,
            or ``None`` for plain signatures.
        table_size: number of folded buckets, or ``None`` for plain signatures (``2**bits``).
    """

    hyperplanes: Tensor
    coefficients: Tensor | None = None
    table_size: int | None = None

    def __post_init__(self) -> None:
        if not torch.is_floating_point(self.hyperplanes):
            raise ValueError(
                f"hyperplanes must be a floating tensor, got dtype {self.hyperplanes.dtype}"
            )
        if self.hyperplanes.dim() < 3:
            raise ValueError(
                "hyperplanes must have shape (..., tables, bits, dim), got shape "
                f"{tuple(self.hyperplanes.shape)}"
            )
        validate_hash_settings(self.bits, self.tables, self.table_size)
        if (self.coefficients is None) != (self.table_size is None):
            raise ValueError("coefficients and table_size must be given together (or both None)")
        if self.coefficients is not None:
            if self.coefficients.dtype.is_floating_point or self.coefficients.dtype == torch.bool:
                raise ValueError(
                    f"coefficients must be an integer tensor, got dtype {self.coefficients.dtype}"
                )
            if self.coefficients.shape[-2:] != self.hyperplanes.shape[-3:-1]:
                raise ValueError(
                    "coefficients must have shape (..., tables, bits) = (..., "
                    f"{self.tables}, {self.bits}), got {tuple(self.coefficients.shape)}"
                )

    @property
    def tables(self) -> int:
        return int(self.hyperplanes.shape[-3])

    @property
    def bits(self) -> int:
        return int(self.hyperplanes.shape[-2])

    @property
    def dim(self) -> int:
        return int(self.hyperplanes.shape[-1])

    @property
    def num_buckets(self) -> int:
        return self.table_size if self.table_size is not None else 2**self.bits


def draw_hash_params(
    dim: int,
    bits: int,
    tables: int = 1,
    table_size: int | None = None,
    *,
    batch_shape: Sequence[int] = (),
    generator: torch.Generator | None = None,
    seed: int | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> HashParams:
    """Draw hyperplanes (standard normal) and, if ``table_size`` is set, folding coefficients.

    ``batch_shape`` prepends independent draws, e.g. ``(batch, heads)`` for the paper's
    per-(batch element, head) hash functions. Give either ``generator`` or ``seed`` (or neither,
    for torch's global RNG); the same seed always gives the same parameters.
    """
    validate_hash_settings(bits, tables, table_size)
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
        raise ValueError(f"dim must be an integer >= 1, got {dim!r}")
    if generator is not None and seed is not None:
        raise ValueError("give either generator or seed, not both")
    if not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating dtype, got {dtype}")
    bits, tables = int(bits), int(tables)
    table_size = None if table_size is None else int(table_size)
    if seed is not None:
        generator = torch.Generator(device=device or "cpu").manual_seed(seed)
    shape = (*batch_shape, tables, bits)
    hyperplanes = torch.randn((*shape, dim), generator=generator, device=device, dtype=dtype)
    coefficients = None
    if table_size is not None:
        coefficients = torch.randint(
            0, table_size, shape, generator=generator, device=device, dtype=torch.int64
        )
    return HashParams(hyperplanes, coefficients, table_size)


def _check_rows(x: Tensor, params: HashParams, name: str = "x") -> None:
    if not torch.is_floating_point(x):
        raise ValueError(f"{name} must be a floating tensor, got dtype {x.dtype}")
    if x.dim() < 2:
        raise ValueError(f"{name} must have shape (..., n, dim), got {tuple(x.shape)}")
    if x.shape[-1] != params.dim:
        raise ValueError(
            f"{name} rows have width {x.shape[-1]} but the hyperplanes have dim {params.dim}"
        )


def sign_bits(x: Tensor, hyperplanes: Tensor) -> Tensor:
    """Sign bits ``[h . x > 0]``: ``x`` is ``(..., n, dim)``, hyperplanes ``(..., tables, bits,
    dim)``; returns int64 ``(..., tables, n, bits)`` of 0/1 (leading dims broadcast)."""
    proj = torch.einsum("...nd,...tbd->...tnb", x, hyperplanes.to(device=x.device, dtype=x.dtype))
    return (proj > 0).to(torch.int64)


def signature_buckets(bits: Tensor) -> Tensor:
    """Plain SimHash signature: the sign bits as an integer in ``[0, 2**bits)``."""
    weights = 2 ** torch.arange(bits.shape[-1], device=bits.device, dtype=torch.int64)
    return (bits * weights).sum(-1)


def folded_buckets(bits: Tensor, coefficients: Tensor, table_size: int) -> Tensor:
    """The paper's folding: ``sum_j bit_j * coefficient_j mod table_size``.

    ``bits`` is ``(..., tables, n, bits)``, ``coefficients`` ``(..., tables, bits)``.
    """
    return (bits * coefficients.unsqueeze(-2)).sum(-1) % table_size


def buckets(x: Tensor, params: HashParams) -> Tensor:
    """Bucket ids ``(..., tables, n)`` of the rows of ``x`` ``(..., n, dim)``."""
    _check_rows(x, params)
    b = sign_bits(x, params.hyperplanes)
    if params.table_size is None:
        return signature_buckets(b)
    assert params.coefficients is not None
    return folded_buckets(b, params.coefficients.to(x.device), params.table_size)


def collision_matrix(query_buckets: Tensor, key_buckets: Tensor) -> Tensor:
    """Boolean ``(..., n_q, n_k)``: query i and key j share a bucket in at least one table.

    Inputs are bucket ids ``(..., tables, n_q)`` and ``(..., tables, n_k)``.
    """
    if query_buckets.shape[-2] != key_buckets.shape[-2]:
        raise ValueError(
            f"query and key buckets have {query_buckets.shape[-2]} and "
            f"{key_buckets.shape[-2]} tables; they must match"
        )
    same = query_buckets.unsqueeze(-1) == key_buckets.unsqueeze(-2)
    return same.any(dim=-3)


def collisions(query: Tensor, key: Tensor, params: HashParams) -> Tensor:
    """Boolean query-key collision matrix ``(..., n_q, n_k)`` under ``params`` (OR over tables)."""
    _check_rows(query, params, "query")
    _check_rows(key, params, "key")
    return collision_matrix(buckets(query, params), buckets(key, params))
