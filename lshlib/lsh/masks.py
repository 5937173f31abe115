"""One attention-mask normalisation for every mode and strategy.

Why: masks arrive in several conventions (transformers' additive float masks in any float dtype,
boolean masks, tokenizer-style 0/1 integer masks) and shapes. Deciding "blocked" separately in
each code path let the strategies disagree (a float32 mask with float64 inputs, an integer mask
read as additive). :func:`normalize_mask` decides once, in the mask's own convention:

* ``bool``: True = may attend.
* integer (any int dtype): 1 = may attend, 0 = blocked; other values are an error.
* float (any float dtype): an entry is blocked iff it is at most :data:`BLOCKED_AT` (-10,000):
  transformers writes ``finfo.min``, ``-inf`` is common, and the original BERT code and older
  transformers wrote ``-10000.0``, meaning padding. A bias that large would leave a key
  ``exp(-10000)`` of a row's weight anyway, but a query whose only colliding keys carry it
  would put all its weight on them: so such entries are blocked (attend to nothing), as full
  attention effectively does. Other finite values are a bias added to the scores. NaN and
  ``+inf`` are errors.

The mask must broadcast to ``(batch, heads, n_q, n_k)`` (2-D and 3-D masks get leading ones),
so ``(b, 1, 1, n)``, ``(b, 1, n, 1)``, ``(b, 1, n, n)`` and ``(n, n)`` all work.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["BLOCKED_AT", "NormalizedMask", "normalize_mask"]

BLOCKED_AT = -1e4
"""Additive mask values at or below this block the pair (older BERT code's padding value)."""


@dataclass(frozen=True)
class NormalizedMask:
    """A mask in one convention, 4-D and broadcastable to ``(batch, heads, n_q, n_k)``.

    Attributes:
        allowed: bool, True where a pair may attend.
        bias: finite additive scores in the compute dtype (0 where blocked), or ``None`` when
            every allowed entry is 0 (a pure padding mask).
    """

    allowed: Tensor
    bias: Tensor | None

    @property
    def key_only(self) -> bool:
        """True when the mask is constant over queries (a padding mask): it then acts on keys."""
        return self.allowed.shape[-2] == 1


def _as_4d(mask: Tensor, target: tuple[int, int, int, int]) -> Tensor:
    if mask.dim() > 4:
        raise ValueError(
            f"attention_mask must have at most 4 dims, got shape {tuple(mask.shape)}; expected "
            f"a shape broadcastable to (batch, heads, n_q, n_k) = {target}"
        )
    mask = mask.reshape((1,) * (4 - mask.dim()) + tuple(mask.shape))
    bad = [
        name
        for name, m, t in zip(("batch", "heads", "n_q", "n_k"), mask.shape, target, strict=True)
        if m not in (1, t)
    ]
    if bad:
        raise ValueError(
            f"attention_mask of shape {tuple(mask.shape)} does not broadcast to (batch, heads, "
            f"n_q, n_k) = {target}: size mismatch in {', '.join(bad)} (each mask dim must be 1 "
            "or equal the target's)"
        )
    return mask


def normalize_mask(
    mask: Tensor | None, target: tuple[int, int, int, int], dtype: torch.dtype
) -> NormalizedMask | None:
    """The mask as (allowed, bias); see the module docstring. ``dtype`` is the scores' dtype:
    the bias is cast to it and clamped to ``+-finfo(dtype).max / 4`` so it stays finite."""
    if mask is None:
        return None
    if not isinstance(mask, Tensor):
        raise ValueError(f"attention_mask must be a torch.Tensor or None, got {type(mask)}")
    mask = _as_4d(mask, tuple(int(t) for t in target))
    if mask.dtype == torch.bool:
        return NormalizedMask(mask, None)
    if not mask.dtype.is_floating_point:
        if mask.dtype.is_complex or bool(((mask != 0) & (mask != 1)).any()):
            raise ValueError(
                f"an integer attention_mask must hold only 0 (blocked) and 1 (attend); got "
                f"dtype {mask.dtype} with other values (for an additive mask use a float dtype)"
            )
        return NormalizedMask(mask != 0, None)
    if bool(torch.isnan(mask).any()) or bool(torch.isposinf(mask).any()):
        raise ValueError("a float attention_mask must not contain NaN or +inf")
    blocked = mask <= BLOCKED_AT  # finfo.min, -inf and the legacy -10000.0 included
    bias = None
    if bool(((mask != 0) & ~blocked).any()):
        floor = torch.finfo(dtype).min / 4
        bias = mask.to(dtype).masked_fill(blocked, 0.0).clamp(floor, -floor)
    return NormalizedMask(~blocked, bias)
