"""Property-based tests (Hypothesis) of masked-mode LSH attention.

Drawn: batch, heads, query and key lengths, head width, dtype (fp32, fp64, fp16, bf16), bits,
tables, table size, mask kind (bool, integer 0/1, additive float in fp32/fp64/the input dtype,
-inf), mask shape ((b,1,1,n), (b,1,n,n), (b,h,n,n), (b,1,n,1), (n,n)) and padding pattern
(all-padding elements included). Asserted:

* the bucketed strategy equals the dense one, outputs and gradients, within per-dtype tolerances
  (:data:`TOL`, relative to the largest reference value);
* outputs and gradients are finite for finite inputs;
* padded keys get exactly zero weight: changing their keys and values leaves every output bit
  for bit unchanged, their value gradient is exactly zero, and dense probabilities are 0 there;
* identical seeds give identical results (``rehash="call"`` with a seeded generator).

Examples per test come from the ``lshlib`` profile (15, derandomised, so CI is reproducible);
``HYPOTHESIS_PROFILE=thorough`` runs 300.
"""

from __future__ import annotations

import os

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lshlib.lsh.attention import LSHConfig, lsh_attention
from lshlib.lsh.hashing import draw_hash_params

settings.register_profile(
    "lshlib",
    max_examples=15,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("thorough", max_examples=300, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "lshlib"))

DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]
TOL = {  # (outputs, gradients), relative to max(1, largest reference magnitude)
    torch.float64: (1e-9, 1e-8),
    torch.float32: (1e-5, 1e-4),
    torch.float16: (1e-2, 3e-2),
    torch.bfloat16: (4e-2, 1.5e-1),
}
MASK_KINDS = ["none", "bool", "int", "float32", "float64", "input", "neginf"]
MASK_SHAPES = ["keys", "pairs", "heads", "rows", "2d"]


@st.composite
def cases(draw):
    """One random problem: inputs, hash settings, and a mask with its padding pattern."""
    batch, heads = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    n_q = draw(st.integers(1, 20))
    n_k = draw(st.one_of(st.just(n_q), st.integers(1, 20)))
    return {
        "shape": (batch, heads, n_q, n_k, draw(st.sampled_from([4, 8, 16]))),
        "dtype": draw(st.sampled_from(DTYPES)),
        "bits": draw(st.integers(1, 6)),
        "tables": draw(st.integers(1, 3)),
        "table_size": draw(st.one_of(st.none(), st.integers(2, 300))),
        "kind": draw(st.sampled_from(MASK_KINDS)),
        "mask_shape": draw(st.sampled_from(MASK_SHAPES)),
        "pads": [draw(st.integers(0, n_k)) for _ in range(batch)],  # n_k = all padding
        "bias": draw(st.booleans()),  # finite additive values on allowed keys (float kinds)
        "seed": draw(st.integers(0, 2**16)),
    }


def build_mask(case, gen):
    """The mask of ``case`` and the (batch, n_k) bool of keys padded for every query."""
    batch, heads, n_q, n_k, _ = case["shape"]
    padded = torch.zeros(batch, n_k, dtype=torch.bool)
    for b, p in enumerate(case["pads"]):
        padded[b, n_k - p :] = True
    kind, shape = case["kind"], case["mask_shape"]
    if kind == "none":
        return None, torch.zeros_like(padded)
    allowed = {
        "keys": ~padded[:, None, None, :],
        "pairs": ~padded[:, None, None, :] & (torch.rand(batch, 1, n_q, n_k, generator=gen) > 0.3),
        "heads": ~padded[:, None, None, :]
        & (torch.rand(batch, heads, n_q, n_k, generator=gen) > 0.3),
        "rows": torch.rand(batch, 1, n_q, 1, generator=gen) > 0.3,
        "2d": torch.rand(n_q, n_k, generator=gen) > 0.3,
    }[shape]
    if shape in ("rows", "2d"):
        padded = torch.zeros_like(padded)
    if kind == "bool":
        return allowed, padded
    if kind == "int":
        return allowed.to(torch.int64), padded
    dtype = {"float32": torch.float32, "float64": torch.float64, "neginf": torch.float32}.get(
        kind, case["dtype"]
    )
    low = -float("inf") if kind == "neginf" else torch.finfo(dtype).min
    values = torch.zeros(allowed.shape, dtype=dtype)
    if case["bias"]:
        values = torch.rand(allowed.shape, generator=gen).to(dtype) * -2.0
    return values.masked_fill(~allowed, low), padded


def make_inputs(case):
    batch, heads, n_q, n_k, d = case["shape"]
    gen = torch.Generator().manual_seed(case["seed"])
    q = torch.randn(batch, heads, n_q, d, generator=gen)
    k = torch.randn(batch, heads, n_k, d, generator=gen)
    v = torch.randn(batch, heads, n_k, d, generator=gen)
    mask, padded = build_mask(case, gen)
    params = draw_hash_params(
        d, case["bits"], case["tables"], case["table_size"], batch_shape=(batch, heads), seed=1
    )
    dt = case["dtype"]
    return q.to(dt), k.to(dt), v.to(dt), mask, padded, params


def run(case, q, k, v, mask, params, strategy):
    """Output, probabilities (dense only) and input gradients under a fixed output gradient."""
    cfg = LSHConfig(
        bits=case["bits"],
        tables=case["tables"],
        table_size=case["table_size"],
        mode="masked",
        strategy=strategy,
    )
    q, k, v = (t.detach().clone().requires_grad_(True) for t in (q, k, v))
    out, probs = lsh_attention(
        q, k, v, mask, config=cfg, hyperplanes=params.hyperplanes, coefficients=params.coefficients
    )
    grad_out = torch.linspace(-1, 1, out.numel()).view_as(out).to(out.dtype)
    out.backward(grad_out)
    return out.detach(), probs, (q.grad, k.grad, v.grad)


def close(actual, expected, tol):
    scale = max(1.0, float(expected.abs().max())) if expected.numel() else 1.0
    torch.testing.assert_close(actual.double(), expected.double(), atol=tol * scale, rtol=tol)


@given(cases())
def test_bucketed_equals_dense_and_is_finite(case):
    q, k, v, mask, _, params = make_inputs(case)
    dense, _, dense_grads = run(case, q, k, v, mask, params, "dense")
    sparse, probs, sparse_grads = run(case, q, k, v, mask, params, "bucketed")
    assert probs is None
    for t in (dense, sparse, *dense_grads, *sparse_grads):
        assert torch.isfinite(t).all()
    tol_out, tol_grad = TOL[case["dtype"]]
    close(sparse, dense, tol_out)
    for a, b in zip(sparse_grads, dense_grads, strict=True):
        close(a, b, tol_grad)


@pytest.mark.parametrize("strategy", ["dense", "bucketed"])
@given(case=cases())
def test_padded_keys_get_exactly_zero_weight(strategy, case):
    q, k, v, mask, padded, params = make_inputs(case)
    out, probs, (_, _, grad_v) = run(case, q, k, v, mask, params, strategy)
    pad = padded[:, None, :, None].expand_as(v)
    assert (grad_v[pad] == 0).all()
    if probs is not None:
        assert (probs.transpose(-1, -2)[pad[..., 0]] == 0).all()
    k2, v2 = k.masked_fill(pad, 3.0), v.masked_fill(pad, 1e3)
    out2, _, _ = run(case, q, k2, v2, mask, params, strategy)
    assert torch.equal(out, out2)


@pytest.mark.parametrize("strategy", ["dense", "bucketed"])
@given(case=cases())
def test_identical_seeds_give_identical_results(strategy, case):
    q, k, v, mask, _, _ = make_inputs(case)
    cfg = LSHConfig(
        bits=case["bits"],
        tables=case["tables"],
        table_size=case["table_size"],
        mode="masked",
        strategy=strategy,
        rehash="call",
    )
    a, b = (
        lsh_attention(q, k, v, mask, config=cfg, generator=torch.Generator().manual_seed(s))[0]
        for s in (case["seed"], case["seed"])
    )
    assert torch.equal(a, b)
