"""The ``flex`` strategy (FlexAttention over a block mask built from the sorted buckets),
on CPU here and on CUDA where present.

On CPU FlexAttention runs uncompiled ("eager": every score, then ``mask_mod``) and has no
backward, so the tests check:

* eager flex equals the ``dense`` strategy (fp32 within 1e-5 of the largest reference value,
  fp64 within 1e-9) for random shapes, tables 1-4, block sizes 16 to 128, padding and every mask
  kind and shape of ``tests/test_properties.py`` (its generators are reused), and changing padded
  keys and values leaves the output bit for bit unchanged;
* the block mask is exact for the block-sparse kernel (which eager flex does not exercise): every
  allowed pair lies in a kept block, a full block holds only allowed pairs, and ``mask_mod``
  counts every allowed pair in exactly one table (first table wins);
* one compiled forward (one table) equals the bucketed kernel, and a second call of the same
  padded shape does not compile again;
* gradients: asking for them on CPU raises an error naming the strategy and the device; with
  torch's device check bypassed (test only) the eager backward equals the dense gradients, the
  log-sum-exp merge of several tables included;
* dropout while training raises; ``bucketed`` resolves to ``flex`` on CUDA only; every variant
  keeps its strategy;
* on CUDA only (skipped elsewhere): compiled forward+backward against dense, and BERT-tiny MLM
  steps under bf16 autocast through the flex path.
"""

from __future__ import annotations

import shutil
import types

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from test_properties import TOL, cases, close, make_inputs

from lshlib.lsh import flex
from lshlib.lsh.attention import LSHConfig, lsh_attention
from lshlib.lsh.hashing import buckets, draw_hash_params
from lshlib.lsh.masks import normalize_mask
from lshlib.modeling import ALL_VARIANTS, variant_lsh_config

CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(
    not CUDA, reason="needs a CUDA device: FlexAttention's backward and fast kernels are CUDA-only"
)


def compile_unavailable() -> str | None:
    """Why torch.compile cannot run FlexAttention here, or None."""
    if not torch._dynamo.is_dynamo_supported():
        return "torch.compile (dynamo) is not supported on this Python"
    if not CUDA and not any(shutil.which(c) for c in ("g++", "c++", "clang++")):
        return "torch.compile on CPU needs a C++ compiler (none on PATH)"
    return None


@st.composite
def flex_cases(draw):
    """A case of ``test_properties.cases`` with longer sequences (several blocks), 1-4 tables,
    fp32 or fp64, and a block size."""
    case = draw(cases())
    batch, heads, _, _, d = case["shape"]
    n_q = draw(st.integers(1, 70))
    n_k = draw(st.one_of(st.just(n_q), st.integers(1, 70)))
    case.update(
        shape=(batch, heads, n_q, n_k, d),
        pads=[draw(st.integers(0, n_k)) for _ in range(batch)],
        tables=draw(st.integers(1, 4)),
        dtype=draw(st.sampled_from([torch.float32, torch.float64])),
        block=draw(st.sampled_from([16, 32, 128])),
    )
    return case


def forward(case, q, k, v, mask, params, strategy, **extra):
    cfg = LSHConfig(
        bits=case["bits"],
        tables=case["tables"],
        table_size=case["table_size"],
        mode="masked",
        strategy=strategy,
        **extra,
    )
    hashes = {"hyperplanes": params.hyperplanes, "coefficients": params.coefficients}
    with torch.no_grad():
        return lsh_attention(q, k, v, mask, config=cfg, **hashes)[0]


@settings(max_examples=12)
@given(flex_cases())
def test_eager_flex_equals_dense_and_ignores_padding(case):
    q, k, v, mask, padded, params = make_inputs(case)
    dense = forward(case, q, k, v, mask, params, "dense")
    out = forward(case, q, k, v, mask, params, "flex", block_size=case["block"])
    assert torch.isfinite(out).all()
    close(out, dense, TOL[case["dtype"]][0])
    pad = padded[:, None, :, None].expand_as(v)
    k2, v2 = k.masked_fill(pad, 3.0), v.masked_fill(pad, 1e3)
    assert torch.equal(
        forward(case, q, k2, v2, mask, params, "flex", block_size=case["block"]), out
    )


def check_block_mask(qb, kb, mask, block):
    """The layout's blocks are exact for a block-sparse kernel, and ``mask_mod`` counts every
    allowed pair (collision in some table, mask allows) in exactly one table."""
    B, H, T, n_q = qb.shape
    n_k = kb.shape[-1]
    norm = normalize_mask(mask, (B, H, n_q, n_k), torch.float32)
    lay = flex.flex_layout(qb, kb, norm, block)
    assert not (lay.partial & lay.full).any()
    dense_blocks = lay.block_mask.to_dense().bool()
    torch.testing.assert_close(dense_blocks, lay.partial | lay.full)
    qi = torch.arange(lay.n_q_pad)[:, None]
    ki = torch.arange(lay.n_k_pad)[None, :]
    allowed = (qb.unsqueeze(-1) == kb.unsqueeze(-2)).any(2)
    if norm is not None:
        allowed = allowed & norm.allowed

    def grid(blocks):  # block grid -> element grid
        return blocks.repeat_interleave(block, 0).repeat_interleave(block, 1)

    for b in range(B):
        counted = torch.zeros(H, lay.n_q_pad, lay.n_k_pad, dtype=torch.int64)
        for h in range(H * T):
            mm = lay.block_mask.mask_mod(torch.tensor(b), torch.tensor(h), qi, ki)
            mm = mm.expand(lay.n_q_pad, lay.n_k_pad)
            implied = grid(lay.full[b, h]) | (grid(lay.partial[b, h]) & mm)
            assert torch.equal(implied, mm), "a block-sparse kernel would differ from mask_mod"
            rows, cols = lay.query_order[b, h], lay.key_order[b, h]
            counted[h // T][rows[:, None], cols[None, :]] += mm.long()
        assert torch.equal(counted[:, :n_q, :n_k], allowed[b].long())
        assert not counted[:, n_q:].any() and not counted[:, :, n_k:].any()
    return lay


@settings(max_examples=10)
@given(flex_cases())
def test_block_mask_is_exact(case):
    q, k, _, mask, _, params = make_inputs(case)
    check_block_mask(buckets(q, params), buckets(k, params), mask, case["block"])


@pytest.mark.parametrize("tables", [1, 2])
def test_full_blocks_where_one_bucket_fills_both_blocks(tables):
    g = torch.Generator().manual_seed(0)
    n = 128
    qb = torch.randint(0, 2, (1, 2, tables, n), generator=g)
    kb = torch.randint(0, 2, (1, 2, tables, n), generator=g)
    mask = torch.ones(1, 1, 1, n, dtype=torch.bool)
    mask[..., -20:] = False
    lay = check_block_mask(qb, kb, mask, 16)
    assert lay.full[:, ::tables].any()  # table 0 has full blocks ...
    if tables > 1:
        assert not lay.full[:, 1::tables].any()  # ... later tables never (first table wins)
    assert 0 < lay.full_fraction < 1 and 0 < lay.kept_fraction < 1


def test_padding_mask_over_every_query_acts_on_keys():
    """transformers hands a padding mask over as (b, 1, n, n): it is read as the key mask it is
    (padding keys leave the buckets, full blocks stay), with the same output."""
    g = torch.Generator().manual_seed(7)
    q, k, v = (torch.randn(2, 2, 64, 8, generator=g) for _ in range(3))
    keys = torch.zeros(2, 1, 1, 64)
    keys[1, ..., -9:] = torch.finfo(torch.float32).min
    keys[0, ..., :2] = -0.5
    rows = keys.expand(2, 1, 64, 64).contiguous()
    norm = flex._key_only(normalize_mask(rows, (2, 2, 64, 64), torch.float32))
    assert norm.key_only and norm.bias is not None
    hp = draw_hash_params(8, 1, 1, None, batch_shape=(2, 2), seed=8)
    qb, kb = buckets(q, hp), buckets(k, hp)
    a = flex.flex_lsh_attention(q, k, v, qb, kb, keys, scaling=0.3, block_size=16)
    b = flex.flex_lsh_attention(q, k, v, qb, kb, rows, scaling=0.3, block_size=16)
    assert torch.equal(a, b)
    varying = rows.clone()
    varying[0, 0, 3, 5] = torch.finfo(torch.float32).min
    assert not flex._key_only(normalize_mask(varying, (2, 2, 64, 64), torch.float32)).key_only


@pytest.mark.slow  # compiles FlexAttention (make slow)
@pytest.mark.skipif(compile_unavailable() is not None, reason=str(compile_unavailable()))
def test_compiled_forward_one_table_matches_bucketed():
    """The compiled kernel (block-sparse on CPU too) for one table; ~20-30 s of compile."""
    from torch._dynamo.utils import counters

    g = torch.Generator().manual_seed(1)
    hp = draw_hash_params(64, 4, 1, None, batch_shape=(1, 2), seed=2)
    for n in (1000, 900):  # the same padded length (1024): compiled once
        q, k, v = (torch.randn(1, 2, n, 64, generator=g) for _ in range(3))
        mask = torch.zeros(1, 1, 1, n)
        mask[..., -30:] = float("-inf")
        qb, kb = buckets(q, hp), buckets(k, hp)
        with torch.no_grad():
            out = flex.flex_lsh_attention(q, k, v, qb, kb, mask, scaling=0.125, compiled=True)
            ref = flex.flex_lsh_attention(q, k, v, qb, kb, mask, scaling=0.125, compiled=False)
        torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)
        if n == 1000:
            graphs = counters["stats"]["unique_graphs"]
    assert counters["stats"]["unique_graphs"] == graphs


def test_backward_on_cpu_is_a_clear_error():
    q, k, v = (torch.randn(1, 2, 20, 8, requires_grad=True) for _ in range(3))
    cfg = LSHConfig(bits=2, tables=1, table_size=None, mode="masked", strategy="flex")
    with pytest.raises(
        NotImplementedError, match="strategy 'flex' has no backward on device 'cpu'"
    ):
        lsh_attention(q, k, v, config=cfg)
    with torch.no_grad():  # a forward pass is fine
        assert lsh_attention(q, k, v, config=cfg)[0].shape == (1, 2, 20, 8)


@pytest.mark.parametrize("tables", [1, 3])
def test_eager_backward_matches_dense_when_torch_allows_it(tables, monkeypatch):
    """Test only: with torch's CPU check bypassed, FlexAttention's eager backward runs; the
    gradients (through the LSE merge of several tables) equal the dense strategy's. This is the
    math the CUDA kernel's backward computes."""
    import torch.nn.attention.flex_attention as fa

    monkeypatch.setattr(fa, "_validate_device", lambda *a: None)
    monkeypatch.setattr(flex, "_check_backward_device", lambda *a: None)
    g = torch.Generator().manual_seed(3)
    q0, k0, v0 = (torch.randn(2, 2, 45, 8, generator=g) for _ in range(3))
    hp = draw_hash_params(8, 2, tables, None, batch_shape=(2, 2), seed=4)
    mask = torch.zeros(2, 1, 1, 45)
    mask[1, ..., -6:] = torch.finfo(torch.float32).min
    mask[0, ..., :3] = -0.7
    grad_out = torch.randn(2, 2, 45, 8, generator=g)
    grads = {}
    for strategy in ("dense", "flex"):
        cfg = LSHConfig(
            bits=2, tables=tables, table_size=None, mode="masked", strategy=strategy, block_size=16
        )
        q, k, v = (t.clone().requires_grad_(True) for t in (q0, k0, v0))
        out, _ = lsh_attention(
            q, k, v, mask, config=cfg, hyperplanes=hp.hyperplanes, coefficients=None
        )
        out.backward(grad_out)
        grads[strategy] = (out.detach(), q.grad, k.grad, v.grad)
    for a, b in zip(grads["flex"], grads["dense"], strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def test_dropout_while_training_raises():
    q, k, v = (torch.randn(1, 1, 10, 8) for _ in range(3))
    cfg = LSHConfig(bits=2, tables=1, table_size=None, mode="masked", strategy="flex")
    with pytest.raises(ValueError, match="attention_probs_dropout_prob"):
        lsh_attention(q, k, v, config=cfg, dropout=0.1, training=True)
    out, probs = lsh_attention(q, k, v, config=cfg, dropout=0.1, training=False)  # no dropout
    assert probs is None and out.shape == (1, 1, 10, 8)


def test_bucketed_resolves_to_flex_on_cuda_only():
    cuda = types.SimpleNamespace(is_cuda=True)
    cpu = torch.zeros(1)
    assert flex.resolve_strategy("bucketed", cuda, 0.0) == "flex"
    assert flex.resolve_strategy("bucketed", cuda, 0.1) == "bucketed"  # dropout: no flex
    assert flex.resolve_strategy("bucketed", cpu, 0.0) == "bucketed"
    assert flex.resolve_strategy("dense", cuda, 0.0) == "dense"
    with flex.flex_on_cuda(False):
        assert flex.resolve_strategy("bucketed", cuda, 0.0) == "bucketed"
    assert flex.FLEX_ON_CUDA


def test_variants_keep_their_strategies():
    strategies = {v: getattr(variant_lsh_config(v), "strategy", None) for v in ALL_VARIANTS}
    assert strategies["lsh_bucketed"] == "bucketed"
    assert "flex" not in strategies.values()


def test_config_settings():
    cfg = LSHConfig(mode="masked", strategy="flex", block_size=64)
    assert LSHConfig.from_dict(cfg.to_dict()) == cfg
    assert LSHConfig.from_dict({"mode": "masked"}).block_size == flex.DEFAULT_BLOCK
    with pytest.raises(ValueError, match="strategy 'flex' supports mode 'masked' only"):
        LSHConfig(mode="paper", strategy="flex")
    for bad in (0, 100, 2048, True, 64.0):
        with pytest.raises(ValueError, match="block_size"):
            LSHConfig(mode="masked", strategy="flex", block_size=bad)


def test_compiled_several_tables_on_cpu_is_refused():
    q, k, v = (torch.randn(1, 1, 10, 8) for _ in range(3))
    qb = torch.zeros(1, 1, 2, 10, dtype=torch.int64)
    with pytest.raises(ValueError, match="compiled=False"):
        flex.flex_lsh_attention(q, k, v, qb, qb, scaling=1.0, compiled=True)


# ------------------------------------------------------------------------------- CUDA only


@needs_cuda
@pytest.mark.parametrize("tables", [1, 2])
def test_cuda_compiled_forward_backward_matches_dense(tables):
    dev = torch.device("cuda")
    g = torch.Generator().manual_seed(5)
    q0, k0, v0 = (torch.randn(1, 2, 300, 64, generator=g).to(dev) for _ in range(3))
    hp = draw_hash_params(64, 3, tables, None, batch_shape=(1, 2), seed=6, device=dev)
    mask = torch.zeros(1, 1, 1, 300, device=dev)
    mask[..., -17:] = torch.finfo(torch.float32).min
    grad_out = torch.randn(1, 2, 300, 64, generator=g).to(dev)
    results = {}
    for strategy in ("dense", "flex"):
        cfg = LSHConfig(bits=3, tables=tables, table_size=None, mode="masked", strategy=strategy)
        q, k, v = (t.clone().requires_grad_(True) for t in (q0, k0, v0))
        out, _ = lsh_attention(q, k, v, mask, config=cfg, hyperplanes=hp.hyperplanes)
        out.backward(grad_out)
        results[strategy] = (out.detach(), q.grad, k.grad, v.grad)
    for a, b in zip(results["flex"], results["dense"], strict=True):
        torch.testing.assert_close(a, b, atol=2e-4, rtol=0)  # TF32 may be on: loose


@needs_cuda
def test_cuda_bf16_mlm_steps_run_through_flex(monkeypatch):
    """BERT-tiny ``lsh_bucketed`` (attention dropout 0, as flex needs) under bf16 autocast on
    CUDA: the bucketed strategy runs as flex, and the loss is finite and falls."""
    from lshlib.bench.attention import _mlm_batch
    from lshlib.modeling import build_model, sparse_mlm_loss

    calls = []
    real = flex.flex_lsh_attention
    monkeypatch.setattr(
        "lshlib.lsh.attention.flex_lsh_attention",
        lambda *a, **kw: calls.append(1) or real(*a, **kw),
    )
    dev = torch.device("cuda")
    model = build_model("mlm", "lsh_bucketed", vocab_size=500, attention_probs_dropout_prob=0.0)
    model = model.to(dev)
    model.train()
    batch = _mlm_batch(2, 256, 500, dev)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(5):
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = sparse_mlm_loss(model, batch)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(float(loss))
    assert calls and all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < losses[0]


def test_training_record_names_precision():
    from lshlib.training import runs

    device = runs._device()
    expected = "bf16" if CUDA and torch.cuda.is_bf16_supported() else "fp32"
    assert device["precision"] == expected
    assert device["type"] == ("cuda" if CUDA else "cpu")


@needs_cuda
def test_cuda_training_smoke_records_device_and_precision(monkeypatch, tmp_path):
    """``lshlib.training`` at smoke scale on CUDA: the Trainer picks the GPU, bf16, and the
    record says so (the ``lsh_bucketed`` variant with attention dropout 0 runs flex)."""
    pytest.importorskip("datasets", reason="lshlib.training needs the datasets package")
    from lshlib import training
    from lshlib.paths import data_dir

    if not (data_dir() / "corpus").is_dir():
        pytest.skip("shared data not available (LSHLIB_DATA_DIR)")
    monkeypatch.setenv("LSHLIB_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("LSHLIB_RESULTS_DIR", str(tmp_path / "results"))
    tiny = {
        "hidden_size": 64,
        "num_hidden_layers": 1,
        "num_attention_heads": 1,
        "intermediate_size": 64,
        "attention_probs_dropout_prob": 0.0,
    }
    config = training.run_config(
        "mlm",
        "lsh_bucketed",
        "smoke",
        42,
        max_length=128,
        max_train=32,
        max_eval=8,
        corpus_chars=200_000,
        batch_size=8,
        eval_batch_size=8,
        logging_steps=1,
        eval_steps=4,
        save_steps=4,
        model_overrides=tiny,
    )
    record = training.run(config, progress=False)
    assert record["device"]["type"] == "cuda"
    assert record["device"]["precision"] == ("bf16" if torch.cuda.is_bf16_supported() else "fp32")
