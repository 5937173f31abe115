"""LSH attention against slow oracles written from PAPER.md (lshlib.lsh.reference)."""

from __future__ import annotations

import pytest
import torch
from conftest import PAPER_SETTING

from lshlib.experiments.analysis import output_error, topk_recall
from lshlib.lsh.attention import (
    LSHConfig,
    full_attention,
    hash_queries_keys,
    lsh_attention,
)
from lshlib.lsh.hashing import draw_hash_params
from lshlib.lsh.reference import authors_attention, masked_attention_loop

SETTINGS = [  # (bits, tables, table_size)
    PAPER_SETTING,  # the paper's setting
    (3, 2, 64),
    (1, 1, None),
    (4, 3, 16),
    (8, 4, 256),
]


def _inputs(batch=2, heads=2, n=13, d=8, n_k=None, seed=0, dtype=torch.float64, pad=(0, 4)):
    """Random q/k/v and an additive padding mask: batch element b has its last pad[b] keys
    masked (finfo.min, as transformers builds it)."""
    g = torch.Generator().manual_seed(seed)
    n_k = n if n_k is None else n_k
    q = torch.randn(batch, heads, n, d, generator=g, dtype=dtype)
    k = torch.randn(batch, heads, n_k, d, generator=g, dtype=dtype)
    v = torch.randn(batch, heads, n_k, d, generator=g, dtype=dtype)
    mask = torch.zeros(batch, 1, 1, n_k, dtype=dtype)
    for b, p in enumerate(pad[:batch]):
        if p:
            mask[b, ..., n_k - p :] = torch.finfo(dtype).min
    return q, k, v, mask


def _params(bits, tables, table_size, batch=2, heads=2, d=8, seed=1):
    return draw_hash_params(d, bits, tables, table_size, batch_shape=(batch, heads), seed=seed)


# ------------------------------------------------------------------------------ config


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("bits", 0),
        ("tables", 0),
        ("table_size", 1),
        ("mode", "approx"),
        ("strategy", "sparse"),
        ("rehash", "never"),
        ("seed", -1),
    ],
)
def test_invalid_config_names_field(field, value):
    with pytest.raises(ValueError, match=field):
        LSHConfig(**{field: value})


def test_bucketed_paper_rejected_and_dict_round_trip():
    with pytest.raises(ValueError, match="strategy"):
        LSHConfig(mode="paper", strategy="bucketed")
    with pytest.raises(ValueError, match="bands"):
        LSHConfig.from_dict({"bands": 2})
    cfg = LSHConfig(bits=3, tables=2, table_size=None, mode="masked", rehash="fixed", seed=7)
    assert LSHConfig.from_dict(cfg.to_dict()) == cfg


# ------------------------------------------------------------------------------ paper mode


@pytest.mark.parametrize(("bits", "tables", "table_size"), SETTINGS)
def test_paper_mode_equals_authors_algorithm(bits, tables, table_size):
    q, k, v, mask = _inputs()
    p = _params(bits, tables, table_size)
    for t in (q, k, v):
        t.requires_grad_(True)
    cfg = LSHConfig(bits=bits, tables=tables, table_size=table_size, mode="paper")
    out, probs = lsh_attention(
        q, k, v, mask, config=cfg, hyperplanes=p.hyperplanes, coefficients=p.coefficients
    )
    ref_out, ref_probs = authors_attention(q, k, v, mask, p.hyperplanes, p.coefficients, table_size)
    torch.testing.assert_close(probs, ref_probs, atol=1e-10, rtol=1e-9)
    torch.testing.assert_close(out, ref_out, atol=1e-10, rtol=1e-9)
    weights = torch.randn_like(out)
    grads = torch.autograd.grad((out * weights).sum(), (q, k, v))
    ref_grads = torch.autograd.grad((ref_out * weights).sum(), (q, k, v))
    for g_, r_ in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(g_, r_, atol=1e-10, rtol=1e-9)


def test_paper_mode_float32_within_tolerance():
    q, k, v, mask = _inputs(n=64, d=16, dtype=torch.float32)
    p = _params(*PAPER_SETTING, d=16)
    cfg = LSHConfig(mode="paper")
    out, probs = lsh_attention(
        q, k, v, mask, config=cfg, hyperplanes=p.hyperplanes, coefficients=p.coefficients
    )
    ref_out, ref_probs = authors_attention(q, k, v, mask, p.hyperplanes, p.coefficients, 256)
    torch.testing.assert_close(probs, ref_probs, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(out, ref_out, atol=1e-5, rtol=1e-5)


def test_paper_quirks_on_hand_built_hashes():
    """All pairs collide -> upper-triangle scores mirrored; none collide -> uniform weights."""
    q, k, v, _ = _inputs(batch=1, heads=1, n=6, d=1, pad=(0,))
    q, k = q.abs() + 0.1, -(k.abs() + 0.1)  # queries positive, keys negative
    cfg = LSHConfig(bits=1, tables=1, table_size=None, mode="paper")
    ones = torch.ones(1, 1, 1, 1, 1, dtype=q.dtype)
    # hyperplane 0: every sign bit is 0, so every query collides with every key
    _, probs = lsh_attention(q, k, v, config=cfg, hyperplanes=0 * ones)
    s = q[0, 0] @ k[0, 0].T
    mirrored = torch.where(torch.ones(6, 6).triu().bool(), s, s.T)
    torch.testing.assert_close(probs[0, 0], torch.softmax(mirrored, -1))
    assert not torch.allclose(probs[0, 0], torch.softmax(s, -1))  # q_j.k_i is never used, i > j
    # hyperplane +1: queries get bit 1, keys bit 0, nothing collides -> all scores 0, uniform
    out, probs = lsh_attention(q, k, v, config=cfg, hyperplanes=ones)
    torch.testing.assert_close(probs, torch.full_like(probs, 1 / 6))
    # masked mode on the same input: nobody attends to anything, zero output
    out, probs = lsh_attention(
        q, k, v, config=LSHConfig(**{**cfg.to_dict(), "mode": "masked"}), hyperplanes=ones
    )
    assert out.abs().max() == 0 and probs.abs().max() == 0


# ------------------------------------------------------------------------------ masked mode


@pytest.mark.parametrize(("bits", "tables", "table_size"), SETTINGS)
@pytest.mark.parametrize("n_k", [11, 7])
def test_masked_mode_equals_loop_oracle(bits, tables, table_size, n_k):
    q, k, v, mask = _inputs(n=11, n_k=n_k)
    p = _params(bits, tables, table_size)
    cfg = LSHConfig(bits=bits, tables=tables, table_size=table_size, mode="masked")
    out, probs = lsh_attention(
        q, k, v, mask, config=cfg, hyperplanes=p.hyperplanes, coefficients=p.coefficients
    )
    ref_out, ref_probs = masked_attention_loop(
        q, k, v, mask, p.hyperplanes, p.coefficients, table_size
    )
    torch.testing.assert_close(probs, ref_probs, atol=1e-10, rtol=1e-9)
    torch.testing.assert_close(out, ref_out, atol=1e-10, rtol=1e-9)
    sums = probs.sum(-1)
    assert torch.all((sums - 1).abs().lt(1e-9) | sums.eq(0))


def test_all_colliding_masked_mode_is_full_attention():
    q, k, v, mask = _inputs()
    cfg = LSHConfig(bits=1, tables=1, table_size=None, mode="masked")
    out, probs = lsh_attention(q, k, v, mask, config=cfg, hyperplanes=torch.zeros(1, 1, 8))
    full_out, full_probs = full_attention(q, k, v, mask)
    torch.testing.assert_close(out, full_out)
    assert output_error(out, full_out) < 1e-12
    assert topk_recall(probs, full_probs, k=3) == 1.0


# ------------------------------------------------------------------------------ bucketed


BUCKETED_CASES = [  # (bits, tables, table_size, n)
    (2, 1, 256, 13),
    (3, 2, 64, 17),
    (4, 3, 16, 9),
    (8, 1, None, 31),
    (6, 2, 256, 1),
]


@pytest.mark.parametrize(("bits", "tables", "table_size", "n"), BUCKETED_CASES)
def test_bucketed_equals_dense(bits, tables, table_size, n):
    pytest.importorskip(
        "lshlib.lsh.bucketed",
        reason="lshlib.lsh.bucketed (the compute helper's sparse kernel) not there yet",
    )
    q, k, v, mask = _inputs(n=n, d=16, dtype=torch.float32, pad=(0, n // 3))
    p = _params(bits, tables, table_size, d=16)
    results = []
    for strategy in ("dense", "bucketed"):
        qq, kk, vv = (t.clone().requires_grad_(True) for t in (q, k, v))
        cfg = LSHConfig(
            bits=bits, tables=tables, table_size=table_size, mode="masked", strategy=strategy
        )
        out, probs = lsh_attention(
            qq, kk, vv, mask, config=cfg, hyperplanes=p.hyperplanes, coefficients=p.coefficients
        )
        assert (probs is None) == (strategy == "bucketed")
        out.pow(2).sum().backward()
        results.append((out, qq.grad, kk.grad, vv.grad))
    (dense, *dense_grads), (sparse, *sparse_grads) = results
    torch.testing.assert_close(sparse, dense, atol=1e-5, rtol=1e-5)
    for s_, d_ in zip(sparse_grads, dense_grads, strict=True):
        torch.testing.assert_close(s_, d_, atol=1e-4, rtol=1e-4)


# ------------------------------------------------------------------------------ robustness


@pytest.mark.parametrize("mode", ["paper", "masked"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_no_nan_for_empty_rows_padding_and_half_precision(mode, dtype):
    q, k, v, mask = _inputs(batch=3, n=10, d=8, dtype=dtype, pad=(0, 3, 10))  # elt 2: all padding
    for t in (q, k, v):
        t.requires_grad_(True)
    cfg = LSHConfig(bits=8, tables=1, table_size=None, mode=mode)  # sparse: many empty rows
    out, probs = lsh_attention(
        q, k, v, mask, config=cfg, generator=torch.Generator().manual_seed(0)
    )
    assert out.dtype == dtype and torch.isfinite(out).all() and torch.isfinite(probs).all()
    out.float().sum().backward()
    for t in (q, k, v):
        assert torch.isfinite(t.grad).all()
    if mode == "masked":
        assert probs.sum(-1).eq(0).any(), "expected queries with no allowed key in this setting"
        assert out[2].abs().max() == 0  # all-padding element attends to nothing


def test_fixed_rehash_is_deterministic_and_call_is_not():
    q, k, v, _ = _inputs(n=32, d=8, dtype=torch.float32)
    fixed = LSHConfig(mode="masked", bits=3, table_size=None, rehash="fixed", seed=3)
    a, _ = lsh_attention(q, k, v, config=fixed, layer_idx=1)
    b, _ = lsh_attention(q, k, v, config=fixed, layer_idx=1)
    c, _ = lsh_attention(q, k, v, config=fixed, layer_idx=0)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.equal(a, c)  # each layer has its own hashes
    qb, _, params = hash_queries_keys(q, k, fixed, layer_idx=1)
    assert params.hyperplanes.shape == (1, 2, 1, 3, 8) and qb.shape == (2, 2, 1, 32)
    call = LSHConfig(mode="masked", bits=3, table_size=None, rehash="call")
    x, _ = lsh_attention(q, k, v, config=call)
    y, _ = lsh_attention(q, k, v, config=call)
    assert not torch.equal(x, y)  # fresh hash functions every call, per batch element and head
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    torch.testing.assert_close(
        lsh_attention(q, k, v, config=call, generator=g1)[0],
        lsh_attention(q, k, v, config=call, generator=g2)[0],
    )


def test_dropout_only_when_training():
    q, k, v, _ = _inputs(n=16, dtype=torch.float32)
    cfg = LSHConfig(rehash="fixed")
    a, _ = lsh_attention(q, k, v, config=cfg, dropout=0.5, training=False)
    b, _ = lsh_attention(q, k, v, config=cfg)
    torch.testing.assert_close(a, b)
    torch.manual_seed(0)
    c, _ = lsh_attention(q, k, v, config=cfg, dropout=0.5, training=True)
    assert not torch.allclose(b, c)


def test_bad_inputs_raise():
    q, k, v, mask = _inputs()
    with pytest.raises(ValueError, match="attention_mask"):
        lsh_attention(q, k, v, mask[:, 0, 0], config=LSHConfig())
    with pytest.raises(ValueError, match="queries as keys"):
        lsh_attention(q, k[:, :, :5], v[:, :, :5], config=LSHConfig())
    with pytest.raises(ValueError, match="coefficients"):
        lsh_attention(q, k, v, config=LSHConfig(), hyperplanes=torch.randn(1, 2, 8))


# ------------------------------------------------------------------------------ analysis


def _token_inputs(batch=3, n=16, d=16, seed=0):
    q, k, v, _ = _inputs(batch=batch, n=n, d=d, seed=seed, dtype=torch.float32)
    token_mask = torch.ones(batch, n, dtype=torch.long)
    token_mask[1, n - 5 :] = 0
    return q, k, v, token_mask


def test_density_vs_theory_agrees_with_closed_form():
    from lshlib.experiments.analysis import density_vs_theory

    q, k, _, token_mask = _token_inputs()
    rows = density_vs_theory(q, k, token_mask, [PAPER_SETTING, (3, 2, None)], draws=200)
    for row in rows:
        assert 0 < row["stderr"] < 0.02
        assert abs(row["measured"] - row["expected"]) < 4 * row["stderr"], row


def test_approximation_sweep_properties():
    from lshlib.experiments.analysis import approximation_sweep, compare_modes

    q, k, v, token_mask = _token_inputs()
    rows = approximation_sweep(q, k, v, token_mask, [(1, 1, None), (4, 2, 64)], draws=3, k=3)
    assert [(r["bits"], r["mode"]) for r in rows] == [
        (1, "paper"),
        (1, "masked"),
        (4, "paper"),
        (4, "masked"),
    ]
    for r in rows:
        assert 0 < r["density"] < 1 and r["output_error"] > 0
        if r["mode"] == "masked":  # masked mode ranks colliding keys by their true scores
            assert r["topk_recall"] == pytest.approx(r["topk_collide"], abs=1e-6)
    cmp = compare_modes(q, k, v, token_mask, PAPER_SETTING)
    assert 0 < cmp.summary["paper_weight_noncolliding"] < 1
    assert 0 < cmp.summary["mirrored_pairs"] < 1


def test_widget_draws_headless():
    from lshlib.experiments.analysis import LayerInputs
    from lshlib.widgets.attention import attention_explorer

    q, k, v, token_mask = _token_inputs(n=8)
    tokens = [[f"t{i}" for i in range(int(m.sum()))] for m in token_mask]
    inputs = LayerInputs(
        ["s"] * 3, tokens, torch.zeros(3, 8, dtype=torch.long), token_mask, q, k, v
    )
    explorer = attention_explorer(inputs)
    assert explorer.frames_drawn == 1
    explorer.controls["mode"].value = "masked"
    explorer.controls["bits"].value = 5
    assert explorer.frames_drawn == 3


# ------------------------------------------------------------------------------ masks


def _strategies(bits=2, tables=1, table_size=None):
    kw = dict(bits=bits, tables=tables, table_size=table_size, mode="masked")
    return LSHConfig(**kw, strategy="dense"), LSHConfig(**kw, strategy="bucketed")


def _both(q, k, v, mask, bits=2, tables=1, table_size=None, seed=0):
    """Dense and bucketed masked-mode outputs with the same hashes."""
    p = draw_hash_params(q.shape[-1], bits, tables, table_size, batch_shape=q.shape[:2], seed=seed)
    kw = dict(hyperplanes=p.hyperplanes, coefficients=p.coefficients)
    return [
        lsh_attention(q, k, v, mask, config=c, **kw)[0]
        for c in _strategies(bits, tables, table_size)
    ]


def test_float64_inputs_with_float32_mask_never_attend_to_padding():
    """float64 inputs with a float32 additive mask: bucketed once attended to padding keys (max
    |out| 100 against 2.43); no strategy may."""
    from lshlib.lsh.attention import additive_mask

    for seed in range(10):
        g = torch.Generator().manual_seed(seed)
        q, k, v = (torch.randn(1, 2, 8, 16, generator=g, dtype=torch.float64) for _ in range(3))
        v[..., 5:, :] = 100.0
        m = additive_mask(torch.tensor([[1] * 5 + [0] * 3]))  # float32
        dense, sparse = _both(q, k, v, m, seed=seed)
        assert dense.abs().max() < 50 and sparse.abs().max() < 50
        torch.testing.assert_close(sparse, dense, atol=1e-10, rtol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("kind", ["bool", "int", "float32", "float64", "neginf", "input"])
def test_every_mask_kind_blocks_the_same_keys(kind, dtype):
    """Bool, integer 0/1 and additive float masks of any float dtype mean the same thing for
    dense, bucketed and paper mode, whatever the input dtype."""
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 2, 12, 8).to(dtype) for _ in range(3))
    v[:, :, 9:] = 100.0  # padded keys: any weight on them shows
    real = torch.ones(2, 12, dtype=torch.long)
    real[:, 9:] = 0
    real[1, :] = 0  # an all-padding batch element
    mask = {
        "bool": real.bool()[:, None, None, :],
        "int": real[:, None, None, :],
        "float32": (1.0 - real[:, None, None, :].float()) * torch.finfo(torch.float32).min,
        "float64": (1.0 - real[:, None, None, :].double()) * torch.finfo(torch.float64).min,
        "neginf": torch.zeros(2, 1, 1, 12).masked_fill(real[:, None, None, :] == 0, -float("inf")),
        "input": (1.0 - real[:, None, None, :].to(dtype)) * torch.finfo(dtype).min,
    }[kind]
    dense, sparse = _both(q, k, v, mask, bits=1)
    for out in (dense, sparse):
        assert torch.isfinite(out).all() and out.abs().max() < 50
        assert (out[1] == 0).all()  # attends to nothing
    tol = 1e-2 if dtype in (torch.float16, torch.bfloat16) else 1e-5
    torch.testing.assert_close(sparse.float(), dense.float(), atol=tol, rtol=tol)
    paper, probs = lsh_attention(q, k, v, mask, config=LSHConfig(mode="paper"))
    assert torch.isfinite(paper).all() and (probs[..., 9:] == 0).all() and (paper[1] == 0).all()


@pytest.mark.parametrize(
    "shape", [(2, 1, 1, 10), (2, 1, 10, 1), (2, 1, 10, 10), (10, 10), (1, 10), (2, 10, 10)]
)
def test_every_broadcastable_mask_shape(shape):
    torch.manual_seed(1)
    q, k, v = (torch.randn(2, 2, 10, 8) for _ in range(3))
    mask = torch.rand(shape) > 0.3
    dense, sparse = _both(q, k, v, mask, bits=1, tables=2)
    torch.testing.assert_close(sparse, dense, atol=1e-5, rtol=1e-5)


def test_wrong_mask_batch_names_the_shapes():
    q, k, v, _ = _inputs(batch=2, n=6)
    for cfg in _strategies():
        with pytest.raises(ValueError, match=r"\(3, 1, 1, 6\).*\(2, 2, 6, 6\).*batch"):
            lsh_attention(q, k, v, torch.ones(3, 1, 1, 6, dtype=torch.bool), config=cfg)
    with pytest.raises(ValueError, match="0 \\(blocked\\) and 1"):
        lsh_attention(q, k, v, torch.full((2, 1, 1, 6), 2), config=_strategies()[0])


def test_paper_mode_fully_masked_rows_under_neginf_mask_are_zero_not_nan():
    q, k, v, _ = _inputs(batch=2, n=8, dtype=torch.float32)
    for t in (q, k, v):
        t.requires_grad_(True)
    mask = torch.zeros(2, 1, 1, 8)
    mask[1] = -float("inf")  # element 1 is all padding
    mask[0, ..., 6:] = -float("inf")
    out, probs = lsh_attention(q, k, v, mask, config=LSHConfig(mode="paper"))
    assert torch.isfinite(out).all() and (out[1] == 0).all() and (probs[1] == 0).all()
    assert torch.allclose(probs[0].sum(-1), torch.ones(2, 8))
    out.sum().backward()
    assert all(torch.isfinite(t.grad).all() for t in (q, k, v))
    full, _ = full_attention(q, k, v, mask)
    assert torch.isfinite(full).all() and (full[1] == 0).all()


def test_dense_rejects_dropout_outside_unit_interval():
    q, k, v, _ = _inputs(batch=2, n=6, dtype=torch.float32)
    for bad in (-0.1, 1.0):
        with pytest.raises(ValueError, match="dropout"):
            lsh_attention(q, k, v, config=LSHConfig(), dropout=bad)


def test_config_rejects_overflowing_table_size_and_seed_and_accepts_numpy_ints():
    import numpy as np

    with pytest.raises(ValueError, match="table_size"):
        LSHConfig(table_size=2**62)
    with pytest.raises(ValueError, match="seed"):
        LSHConfig(seed=2**40)
    cfg = LSHConfig(bits=np.int64(3), tables=np.int32(2), table_size=np.int64(64))
    assert type(cfg.bits) is int and cfg.to_dict()["table_size"] == 64


def test_mixed_dtypes_hyperplane_batch_and_dict_config_raise_value_error():
    q, k, v, _ = _inputs(batch=2, n=6, dtype=torch.float32)
    with pytest.raises(ValueError, match="dtype"):
        lsh_attention(q, k.double(), v, config=LSHConfig())
    hp = draw_hash_params(8, 2, 1, 256, batch_shape=(3, 2), seed=0)
    with pytest.raises(ValueError, match=r"broadcast to \(batch, heads\)"):
        lsh_attention(
            q, k, v, config=LSHConfig(), hyperplanes=hp.hyperplanes, coefficients=hp.coefficients
        )
    with pytest.raises(ValueError, match="LSHConfig"):
        lsh_attention(q, k, v, config={"bits": 2})


def test_fixed_hash_params_cannot_be_corrupted_by_callers():
    from lshlib.lsh.attention import fixed_hash_params

    fixed = LSHConfig(rehash="fixed", seed=1)
    first = fixed_hash_params(fixed, 2, 8)
    first.hyperplanes.zero_()
    assert fixed_hash_params(fixed, 2, 8).hyperplanes.abs().sum() > 0
