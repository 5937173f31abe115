"""The bucketed strategy against a small dense masked-mode oracle written here.

Oracle: pair (i, j) allowed iff the buckets agree in at least one table and the additive mask is
above finfo.min / 2; softmax of q.k * scaling + mask over allowed keys; rows with no allowed key
give zeros. Tolerances (float32): outputs 1e-5, gradients 1e-4.
"""

from __future__ import annotations

import pytest
import torch

import lshlib.lsh.bucketed as bk
import lshlib.lsh.layout as bucket_layout
from lshlib.lsh.bucketed import bucketed_attention, plan_layout
from lshlib.lsh.hashing import buckets, draw_hash_params


def oracle(q, k, v, qb, kb, mask, scaling):
    allowed = (qb.unsqueeze(-1) == kb.unsqueeze(-2)).any(2)
    s = q @ k.transpose(-1, -2) * scaling
    if mask is not None:
        if mask.dtype == torch.bool:
            allowed = allowed & mask
        else:
            allowed = allowed & (mask > torch.finfo(s.dtype).min / 2)
            s = s + mask
    s = s.masked_fill(~allowed, float("-inf"))
    p = torch.softmax(s, -1).nan_to_num(0.0)  # rows with no allowed key: zeros
    return p @ v


def inputs(B, H, n, d, seed, n_k=None):
    g = torch.Generator().manual_seed(seed)
    n_k = n if n_k is None else n_k
    q = torch.randn(B, H, n, d, generator=g)
    k = torch.randn(B, H, n_k, d, generator=g)
    v = torch.randn(B, H, n_k, d, generator=g)
    return [t.requires_grad_(True) for t in (q, k, v)]


def compare(q, k, v, qb, kb, mask=None, scaling=0.3, **kw):
    out = bucketed_attention(q, k, v, qb, kb, mask, scaling=scaling, **kw)
    ref = oracle(q, k, v, qb, kb, mask, scaling)
    assert out.shape == ref.shape
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)
    g = torch.randn_like(out)
    ga = torch.autograd.grad(out, (q, k, v), g)
    gb = torch.autograd.grad(ref, (q, k, v), g)
    for a, b in zip(ga, gb, strict=True):
        assert torch.isfinite(a).all()
        torch.testing.assert_close(a, b, atol=1e-4, rtol=0)
    return out


SETTINGS = [(2, 1, None), (3, 2, 256), (4, 3, None), (6, 1, 64), (1, 4, 8)]


@pytest.mark.parametrize("bits,tables,table_size", SETTINGS)
@pytest.mark.parametrize("n", [1, 17, 100])
def test_matches_oracle(bits, tables, table_size, n):
    q, k, v = inputs(2, 2, n, 16, seed=n + bits)
    hp = draw_hash_params(16, bits, tables, table_size, batch_shape=(2, 2), seed=bits)
    qb, kb = buckets(q.detach(), hp), buckets(k.detach(), hp)
    compare(q, k, v, qb, kb)


@pytest.mark.parametrize("chunk", [1, 3, 8, 128])
def test_chunk_sizes_and_small_slabs(chunk, monkeypatch):
    # tiny slabs force windows wider than the budget into slabs of their own
    monkeypatch.setattr(bucket_layout, "SLAB_ELEMENTS", 37)
    q, k, v = inputs(1, 2, 45, 8, seed=3)
    hp = draw_hash_params(8, 2, 2, None, batch_shape=(1, 2), seed=1)
    compare(q, k, v, buckets(q.detach(), hp), buckets(k.detach(), hp), chunk=chunk)


def test_oversized_bucket():
    """Everything in one bucket (dense attention), split over many chunks: no pair lost."""
    q, k, v = inputs(1, 1, 300, 8, seed=4)
    qb = torch.zeros(1, 1, 1, 300, dtype=torch.int64)
    kb = torch.zeros(1, 1, 1, 300, dtype=torch.int64)
    out = compare(q, k, v, qb, kb, chunk=16)
    dense = torch.softmax(q @ k.transpose(-1, -2) * 0.3, -1) @ v
    torch.testing.assert_close(out, dense, atol=1e-5, rtol=0)


def test_rows_without_collision_are_zero():
    q, k, v = inputs(1, 2, 20, 8, seed=5)
    qb = torch.arange(20).repeat(1, 2, 1, 1) % 5  # buckets 0..4
    kb = torch.full((1, 2, 1, 20), 2)  # every key in bucket 2
    kb[..., :3] = 7  # a bucket no query has
    out = compare(q, k, v, qb, kb)
    lonely = (qb[0, 0, 0] != 2).nonzero().flatten()
    assert (out[:, :, lonely] == 0).all()


def test_no_collision_at_all_gives_zeros_and_zero_grads():
    q, k, v = inputs(1, 1, 10, 4, seed=6)
    qb = torch.zeros(1, 1, 1, 10, dtype=torch.int64)
    kb = torch.ones(1, 1, 1, 10, dtype=torch.int64)
    out = bucketed_attention(q, k, v, qb, kb, scaling=1.0)
    assert (out == 0).all()
    out.sum().backward()
    assert (q.grad == 0).all() and (v.grad == 0).all()


@pytest.mark.parametrize("tables", [1, 3])
def test_padding_mask(tables):
    B, H, n = 2, 2, 33
    q, k, v = inputs(B, H, n, 8, seed=7)
    hp = draw_hash_params(8, 2, tables, None, batch_shape=(B, H), seed=2)
    qb, kb = buckets(q.detach(), hp), buckets(k.detach(), hp)
    mask = torch.zeros(B, 1, 1, n)
    mask[0, ..., -9:] = torch.finfo(torch.float32).min  # padding
    mask[1, ..., :2] = -1.5  # a finite bias on allowed keys
    compare(q, k, v, qb, kb, mask)
    compare(q, k, v, qb, kb, mask > -1.0)  # boolean form (True = attend): padding only


def test_pair_mask_with_fully_blocked_rows():
    n = 24
    q, k, v = inputs(1, 2, n, 8, seed=8)
    hp = draw_hash_params(8, 2, 2, 16, batch_shape=(1, 2), seed=3)
    qb, kb = buckets(q.detach(), hp), buckets(k.detach(), hp)
    causal = torch.full((n, n), torch.finfo(torch.float32).min).triu(1)
    causal[5] = torch.finfo(torch.float32).min  # row 5 attends to nothing
    out = compare(q, k, v, qb, kb, causal[None, None])
    assert (out[:, :, 5] == 0).all()


def test_repeated_collisions_count_once():
    """Identical tables: every pair collides in all of them, and must weigh as in one table."""
    q, k, v = inputs(1, 2, 40, 8, seed=9)
    hp = draw_hash_params(8, 3, 1, None, batch_shape=(1, 2), seed=4)
    qb1, kb1 = buckets(q.detach(), hp), buckets(k.detach(), hp)
    one = bucketed_attention(q, k, v, qb1, kb1, scaling=0.3)
    three = bucketed_attention(q, k, v, qb1.repeat(1, 1, 3, 1), kb1.repeat(1, 1, 3, 1), scaling=0.3)
    torch.testing.assert_close(one, three, atol=1e-6, rtol=0)


def test_different_query_and_key_lengths_and_large_ids():
    q, k, v = inputs(1, 1, 13, 8, seed=10, n_k=29)
    g = torch.Generator().manual_seed(0)
    qb = torch.randint(0, 3, (1, 1, 2, 13), generator=g) * (2**40)  # ids beyond int32
    kb = torch.randint(0, 3, (1, 1, 2, 29), generator=g) * (2**40)
    compare(q, k, v, qb, kb)


def test_dropout_is_applied_only_when_training():
    q, k, v = inputs(1, 2, 64, 8, seed=11)
    hp = draw_hash_params(8, 1, 1, None, batch_shape=(1, 2), seed=5)
    qb, kb = buckets(q.detach(), hp), buckets(k.detach(), hp)
    base = bucketed_attention(q, k, v, qb, kb, scaling=0.3)
    same = bucketed_attention(q, k, v, qb, kb, scaling=0.3, dropout=0.5, training=False)
    torch.testing.assert_close(base, same)
    torch.manual_seed(0)
    a = bucketed_attention(q, k, v, qb, kb, scaling=0.3, dropout=0.5, training=True)
    torch.manual_seed(0)
    b = bucketed_attention(q, k, v, qb, kb, scaling=0.3, dropout=0.5, training=True)
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, base)


def test_layout_counts():
    q, k, _ = inputs(2, 2, 50, 8, seed=12)
    hp = draw_hash_params(8, 3, 2, None, batch_shape=(2, 2), seed=6)
    qb, kb = buckets(q.detach(), hp), buckets(k.detach(), hp)
    lay = plan_layout(qb, kb, chunk=4)
    same_bucket = int((qb.unsqueeze(-1) == kb.unsqueeze(-2)).sum())
    assert lay.bucket_pairs == same_bucket
    assert lay.computed_scores >= lay.bucket_pairs
    assert int(lay.heights.max()) <= 4


def test_bad_inputs():
    q, k, v = inputs(1, 1, 5, 4, seed=0)
    qb = torch.zeros(1, 1, 1, 5, dtype=torch.int64)
    with pytest.raises(ValueError, match="key_buckets"):
        bucketed_attention(q, k, v, qb, qb[..., :3], scaling=1.0)
    with pytest.raises(ValueError, match="integers"):
        bucketed_attention(q, k, v, qb.float(), qb, scaling=1.0)
    with pytest.raises(ValueError, match="dropout"):
        bucketed_attention(q, k, v, qb, qb, scaling=1.0, dropout=1.0)
    with pytest.raises(ValueError, match="chunk"):
        plan_layout(qb, qb, chunk=0)


def test_dispatch_from_lsh_attention_matches_dense_strategy():
    from lshlib.lsh.attention import LSHConfig, lsh_attention

    q, k, v = inputs(2, 2, 31, 16, seed=13)
    hp = draw_hash_params(16, 3, 2, 256, batch_shape=(2, 2), seed=7)
    mask = torch.zeros(2, 1, 1, 31)
    mask[1, ..., -4:] = torch.finfo(torch.float32).min
    kw = dict(hyperplanes=hp.hyperplanes, coefficients=hp.coefficients)
    dense = LSHConfig(bits=3, tables=2, table_size=256, mode="masked", strategy="dense")
    sparse = LSHConfig(bits=3, tables=2, table_size=256, mode="masked", strategy="bucketed")
    a, _ = lsh_attention(q, k, v, mask, config=dense, **kw)
    b, probs = lsh_attention(q, k, v, mask, config=sparse, **kw)
    assert probs is None
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


@pytest.mark.parametrize("tables", [1, 3])
def test_batched_gemm_path_matches_oracle(tables, monkeypatch):
    """The path used off CPU (and for dropout) agrees with the oracle too."""
    monkeypatch.setattr(bk, "_fused_cpu_available", lambda: False)
    q, k, v = inputs(2, 2, 40, 8, seed=14)
    hp = draw_hash_params(8, 2, tables, None, batch_shape=(2, 2), seed=8)
    mask = torch.zeros(2, 1, 1, 40)
    mask[1, ..., -7:] = float("-inf")
    compare(q, k, v, buckets(q.detach(), hp), buckets(k.detach(), hp), mask)


def test_dropout_gradients_are_exact():
    """Backward redraws the forward's dropout mask: gradcheck in float64 with a fixed seed."""
    g = torch.Generator().manual_seed(15)
    q, k, v = (torch.randn(1, 2, 12, 4, generator=g, dtype=torch.float64) for _ in range(3))
    qb = torch.randint(0, 2, (1, 2, 2, 12), generator=g)
    kb = torch.randint(0, 2, (1, 2, 2, 12), generator=g)

    def fn(q, k, v):
        torch.manual_seed(0)
        return bucketed_attention(q, k, v, qb, kb, scaling=0.5, dropout=0.3, training=True)

    inputs_ = tuple(t.requires_grad_(True) for t in (q, k, v))
    assert torch.autograd.gradcheck(fn, inputs_, fast_mode=True)


def test_mixed_dtypes_rejected():
    q, k, v = inputs(1, 1, 5, 4, seed=0)
    qb = torch.zeros(1, 1, 1, 5, dtype=torch.int64)
    with pytest.raises(ValueError, match="dtype"):
        bucketed_attention(q, k.double(), v, qb, qb, scaling=1.0)
