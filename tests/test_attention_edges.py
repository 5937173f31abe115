"""Attention at its edges: legacy -10000 padding masks, float16 scores past 65504,
the random-pairs controls' density over real tokens only, and NaN inputs in paper mode."""

from __future__ import annotations

import pytest
import torch
from conftest import TINY_MODEL

from lshlib.lsh.attention import (
    LSHConfig,
    full_attention,
    hash_queries_keys,
    lsh_attention,
    random_pairs,
    real_pairs,
)
from lshlib.lsh.bucketed import bucketed_attention
from lshlib.lsh.hashing import draw_hash_params
from lshlib.lsh.masks import BLOCKED_AT, normalize_mask


def qkv(b=1, h=1, n=6, d=8, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(b, h, n, d, generator=g, dtype=dtype) for _ in range(3)]


# --------------------------------------------------------------------------- legacy masks


@pytest.mark.parametrize("value", [-1e4, -1e9, -65504.0, float("-inf")])
def test_additive_values_at_or_below_minus_1e4_block(value):
    mask = torch.tensor([0.0, value, -9999.0])
    norm = normalize_mask(mask, (1, 1, 1, 3), torch.float32)
    assert norm.allowed.flatten().tolist() == [True, False, True]
    assert BLOCKED_AT == -1e4
    assert norm.bias.flatten().tolist() == [0.0, 0.0, -9999.0]  # above it: a bias


@pytest.mark.parametrize("strategy", ["dense", "bucketed"])
def test_query_whose_only_colliding_keys_are_legacy_padding_attends_to_nothing(strategy):
    """Keys 3..5 are padding (-10000, the original BERT value). Hashes make query 0 collide
    only with padding keys: like full attention's ~0 weight there, it attends to nothing."""
    q, k, v = qkv(n=6, d=4)
    d = q.shape[-1]
    k[..., 3:, :] = q[..., 0:1, :] * 5  # the padding keys point where query 0 points
    k[..., :3, :] = -q[..., 0:1, :] + 0.01 * k[..., :3, :]  # real keys point away from it
    hyperplanes = q[..., 0:1, None, :].expand(1, 1, 1, 1, d).clone()  # one bit: sign(x . q0)
    mask = torch.zeros(1, 1, 1, 6)
    mask[..., 3:] = -10000.0
    cfg = LSHConfig(bits=1, tables=1, table_size=None, mode="masked", strategy=strategy)
    qb, kb, _ = hash_queries_keys(q, k, cfg, hyperplanes=hyperplanes)
    assert qb[0, 0, 0, 0] == kb[0, 0, 0, 3] and (kb[0, 0, 0, :3] != qb[0, 0, 0, 0]).all()
    out, _ = lsh_attention(q, k, v, mask, config=cfg, hyperplanes=hyperplanes)
    ref, ref_probs = full_attention(q, k, v, mask)
    assert ref_probs[0, 0, 0, 3:].sum() < 1e-6  # full attention: ~0 weight on padding
    assert torch.allclose(out[0, 0, 0], torch.zeros(d))  # LSH: attends to nothing, not to v[3:]
    if strategy == "bucketed":
        direct = bucketed_attention(q, k, v, qb, kb, mask, scaling=d**-0.5)
        assert torch.allclose(direct[0, 0, 0], torch.zeros(d))


# --------------------------------------------------------------------------- float16


def gen() -> torch.Generator:
    return torch.Generator().manual_seed(5)  # the same random pairs in both dtypes


def _large_fp16(seed=0):
    """Finite float16 inputs whose scaled scores exceed 65504 (float16's largest value)."""
    q, k, v = qkv(b=2, h=2, n=32, d=16, seed=seed)
    q, k = q * 200, k * 200  # |q.k| / 4 reaches ~1.6e5
    return q.half(), k.half(), v.half()


@pytest.mark.parametrize(
    "settings",
    [
        {"mode": "paper"},
        {"mode": "masked"},
        {"mode": "masked", "strategy": "bucketed"},
        {"mode": "paper", "pairs": "random"},
        {"mode": "paper", "mirror": False},
    ],
    ids=lambda s: "-".join(str(v) for v in s.values()),
)
def test_fp16_scores_beyond_65504_stay_finite_and_match_fp32(settings):
    q, k, v = _large_fp16()
    scores = (q.float() @ k.float().transpose(-1, -2)) * q.shape[-1] ** -0.5
    assert scores.abs().max() > 65504  # what would overflow in float16
    cfg = LSHConfig(bits=2, tables=1, table_size=None, **settings)
    params = draw_hash_params(16, 2, 1, None, batch_shape=(2, 2), seed=3)
    mask = torch.zeros(2, 1, 1, 32)
    mask[1, ..., 28:] = torch.finfo(torch.float16).min  # a float16 padding mask too
    hp = params.hyperplanes
    out16, probs16 = lsh_attention(
        q, k, v, mask.half(), config=cfg, hyperplanes=hp, generator=gen()
    )
    q32, k32, v32 = q.float(), k.float(), v.float()
    out32, _ = lsh_attention(q32, k32, v32, mask, config=cfg, hyperplanes=hp, generator=gen())
    assert out16.dtype == torch.float16 and torch.isfinite(out16).all()
    if probs16 is not None:
        assert probs16.dtype == torch.float16 and torch.isfinite(probs16).all()
    torch.testing.assert_close(out16.float(), out32, atol=2e-2, rtol=1e-2)


def test_fp16_bucketed_backward_is_finite():
    q, k, v = (t.requires_grad_(True) for t in _large_fp16(1))
    cfg = LSHConfig(bits=2, tables=2, table_size=None, mode="masked", strategy="bucketed")
    out, _ = lsh_attention(q, k, v, config=cfg, generator=torch.Generator().manual_seed(0))
    out.float().sum().backward()
    assert all(torch.isfinite(t.grad).all() for t in (q, k, v))


# --------------------------------------------------------------------------- random pairs


@pytest.mark.parametrize("mode", ["paper", "masked"])
def test_random_pairs_real_token_outputs_ignore_padding_content(mode):
    """density="real_keys": changing only what sits at padding positions leaves every real
    token's output unchanged (the old density over all pairs did not)."""
    n, pad = 12, 5
    q, k, v = qkv(b=2, h=2, n=n, d=8, seed=1)
    mask = torch.zeros(2, 1, 1, n)
    mask[:, ..., n - pad :] = torch.finfo(torch.float32).min
    q2, k2, v2 = (t.clone() for t in (q, k, v))
    for t in (q2, k2, v2):
        t[..., n - pad :, :] = torch.randn(t[..., n - pad :, :].shape) * 10
    outs = {}
    for density in ("all", "real_keys"):
        cfg = LSHConfig(
            bits=2, tables=1, table_size=None, mode=mode, pairs="random", density=density
        )
        a, _ = lsh_attention(q, k, v, mask, config=cfg, generator=torch.Generator().manual_seed(4))
        b, _ = lsh_attention(
            q2, k2, v2, mask, config=cfg, generator=torch.Generator().manual_seed(4)
        )
        outs[density] = (a[..., : n - pad, :] - b[..., : n - pad, :]).abs().max()
    assert outs["real_keys"] == 0
    assert outs["all"] > 0  # the old semantics, kept for models saved with them


def test_random_pairs_density_counts_real_pairs_only():
    not_colliding = torch.ones(1, 1, 4, 4, dtype=torch.bool)
    not_colliding[..., :2, :2] = False  # the 2x2 real block collides fully
    real = real_pairs(torch.tensor([1, 1, 0, 0]), *qkv(n=4)[:2])
    assert real[0, 0].tolist() == [[True, True, False, False]] * 2 + [[False] * 4] * 2
    gen = torch.Generator().manual_seed(0)
    drawn = random_pairs(not_colliding, gen, real)
    assert not drawn.any()  # density 1 over the real pairs: every pair allowed
    old = random_pairs(not_colliding, torch.Generator().manual_seed(0))
    assert old.any()  # density 4 / 16 over all pairs


def test_lsh_config_density_defaults_to_the_old_semantics():
    assert LSHConfig.from_dict({"pairs": "random", "mode": "paper"}).density == "all"
    with pytest.raises(ValueError, match="density must be one of"):
        LSHConfig(density="padding")


# --------------------------------------------------------------------------- NaN


def test_nan_query_crosses_rows_in_paper_mode_through_mirroring_only():
    """Documented, not guarded (lshlib.lsh.attention.lsh_attention): a NaN in query i
    reaches the rows j > i that collide with it in paper mode (score (i, j) is mirrored to
    (j, i)); masked mode, like full attention, keeps a NaN query in its own row."""
    q, k, v = qkv(n=8, d=4, seed=2)
    q[..., 2, :] = float("nan")
    params = draw_hash_params(4, 1, 1, None, batch_shape=(1, 1), seed=0)
    cfg = LSHConfig(bits=1, tables=1, table_size=None, mode="paper")
    qb, kb, _ = hash_queries_keys(q, k, cfg, hyperplanes=params.hyperplanes)
    collide = (qb[0, 0, 0, :, None] == kb[0, 0, 0, None, :]).tolist()
    out, _ = lsh_attention(q, k, v, config=cfg, hyperplanes=params.hyperplanes)
    nan_rows = {i for i in range(8) if torch.isnan(out[0, 0, i]).any()}
    expected = {j for j in range(3, 8) if collide[2][j]} | ({2} if any(collide[2][2:]) else set())
    assert nan_rows == expected and expected - {2}  # other rows are reached
    masked_cfg = LSHConfig(bits=1, tables=1, table_size=None, mode="masked")
    masked, _ = lsh_attention(q, k, v, config=masked_cfg, hyperplanes=params.hyperplanes)
    assert {i for i in range(8) if torch.isnan(masked[0, 0, i]).any()} <= {2}


def test_random_control_models_follow_their_runs_density():
    """A run's model has the density its RunConfig names: the committed runs' configs (no
    random_density: "all") rebuild the old semantics, run_config's new ones count real pairs."""
    from lshlib.modeling import variant_lsh_config
    from lshlib.training import RunConfig, jobs

    old = RunConfig(task="sst2", variant="random_paper", scale="smoke")
    new = RunConfig(task="sst2", variant="random_masked", scale="smoke", random_density="real_keys")
    assert jobs.lsh_settings(old).density == "all"
    assert jobs.lsh_settings(new).density == "real_keys" and jobs.lsh_settings(new).mode == "masked"
    assert jobs.lsh_settings(RunConfig(task="sst2", variant="lsh_paper", scale="smoke")) is None
    assert variant_lsh_config("random_paper").density == "real_keys"  # new models


def test_random_control_model_output_ignores_padding_tokens():
    """Through transformers (its expanded 4-D padding mask): padding token ids never change a
    random_paper model's logits."""
    from lshlib.lsh.attention import hash_generator
    from lshlib.modeling import build_model

    tiny = {**TINY_MODEL, "num_hidden_layers": 2}
    model = build_model("sst2", "random_paper", vocab_size=50, seed=0, **tiny).eval()
    ids = torch.randint(5, 50, (2, 16), generator=torch.Generator().manual_seed(0))
    mask = torch.ones(2, 16, dtype=torch.long)
    mask[:, 10:] = 0
    other = ids.clone()
    other[:, 10:] = torch.randint(5, 50, (2, 6), generator=torch.Generator().manual_seed(1))
    logits = []
    for x in (ids, other):
        with torch.no_grad(), hash_generator(torch.Generator().manual_seed(3)):
            logits.append(model(input_ids=x, attention_mask=mask).logits)
    assert torch.equal(logits[0], logits[1])
