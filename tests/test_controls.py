"""The attention controls of the verdict against dense oracles written here: random
pairs of the same density (no locality), no mirroring, and the control variants of the model."""

from __future__ import annotations

import pytest
import torch
from conftest import TINY_MODEL

from lshlib.lsh.attention import (
    LSHConfig,
    collision_from_buckets,
    hash_queries_keys,
    lsh_attention,
    random_pairs,
)
from lshlib.lsh.hashing import draw_hash_params
from lshlib.modeling import CONTROL_VARIANTS, build_model, variant_lsh_config


def _qkv(n=24, d=8, batch=2, heads=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, heads, n, d, generator=g, dtype=torch.float64) for _ in range(3)]


def _hashes(bits=2, table_size=256, d=8, seed=3):
    p = draw_hash_params(d, bits, 1, table_size, batch_shape=(2, 2), seed=seed)
    return p.hyperplanes, p.coefficients


def _oracle(q, k, v, not_colliding, mode, mirror=True):
    """Softmax attention over the allowed pairs (masked) or with zero scores (paper)."""
    scores = q @ k.transpose(-1, -2) * q.shape[-1] ** -0.5
    if mode == "masked":
        scores = scores.masked_fill(not_colliding, float("-inf"))
        probs = torch.softmax(scores, -1).nan_to_num(0.0)
        return probs @ v
    scores = scores.masked_fill(not_colliding, 0.0)
    if mirror:
        upper = torch.ones_like(scores, dtype=torch.bool).triu()
        scores = torch.where(upper, scores, scores.transpose(-1, -2))
    return torch.softmax(scores, -1) @ v


def test_random_pairs_keep_each_slices_density_and_forget_which_pairs_collided():
    g = torch.Generator().manual_seed(0)
    colliding = torch.rand(4, 2, 300, 300, generator=g) < torch.tensor([0.05, 0.3]).view(1, 2, 1, 1)
    allowed = ~random_pairs(~colliding, torch.Generator().manual_seed(1))
    density = colliding.float().mean(dim=(-2, -1))
    share = allowed.float().mean(dim=(-2, -1))
    se = (density * (1 - density) / 300**2).sqrt()
    assert ((share - density).abs() < 5 * se).all()  # same density per (batch, head) slice
    # independence: among colliding and among non-colliding pairs, the same allowed share
    for d, mask in ((0.3, colliding[:, 1]), (0.7, ~colliding[:, 1])):
        within = allowed[:, 1][mask].float().mean()
        assert abs(within - share[:, 1].mean()) < 0.02, d


@pytest.mark.parametrize("mode", ["masked", "paper"])
def test_random_pairs_attention_equals_the_oracle_on_the_same_draw(mode):
    q, k, v = _qkv()
    planes, coef = _hashes()
    cfg = LSHConfig(mode=mode, pairs="random")
    out, _ = lsh_attention(
        q,
        k,
        v,
        config=cfg,
        hyperplanes=planes,
        coefficients=coef,
        generator=torch.Generator().manual_seed(9),
    )
    qb, kb, _ = hash_queries_keys(q, k, cfg, hyperplanes=planes, coefficients=coef)
    nc = random_pairs(collision_from_buckets(qb, kb, negate=True), torch.Generator().manual_seed(9))
    torch.testing.assert_close(out, _oracle(q, k, v, nc, mode))
    lsh, _ = lsh_attention(
        q, k, v, config=LSHConfig(mode=mode), hyperplanes=planes, coefficients=coef
    )
    assert not torch.allclose(out, lsh)  # a different set of pairs than the collisions


def test_unmirrored_paper_mode_computes_every_colliding_pair_as_itself():
    q, k, v = _qkv()
    planes, coef = _hashes(bits=1, table_size=None)
    cfg = LSHConfig(bits=1, table_size=None, mode="paper", mirror=False)
    out, probs = lsh_attention(q, k, v, config=cfg, hyperplanes=planes, coefficients=coef)
    qb, kb, _ = hash_queries_keys(q, k, cfg, hyperplanes=planes, coefficients=coef)
    nc = collision_from_buckets(qb, kb, negate=True)
    torch.testing.assert_close(out, _oracle(q, k, v, nc, "paper", mirror=False))
    mirrored, _ = lsh_attention(
        q, k, v, config=LSHConfig(bits=1, table_size=None), hyperplanes=planes, coefficients=coef
    )
    torch.testing.assert_close(mirrored, _oracle(q, k, v, nc, "paper", mirror=True))
    assert not torch.allclose(out, mirrored)
    assert not torch.isnan(probs).any()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"pairs": "shuffled"}, "pairs must be one of .*'shuffled'"),
        ({"pairs": "random", "mode": "masked", "strategy": "bucketed"}, "strategy 'dense' only"),
        ({"mirror": False, "mode": "masked"}, "mode 'paper' only"),
        ({"mirror": "no"}, "mirror must be True or False"),
    ],
)
def test_bad_control_settings_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LSHConfig(**kwargs)


def test_control_variants_change_one_thing_and_train_without_nan():
    paper = variant_lsh_config("lsh_paper")
    changed = {
        v: {k for k, x in variant_lsh_config(v).to_dict().items() if x != getattr(paper, k)}
        for v in CONTROL_VARIANTS
    }
    assert changed == {  # density: how random pairs count their density (real tokens only)
        "random_paper": {"pairs", "density"},
        "random_masked": {"pairs", "mode", "density"},
        "lsh_paper_fixed": {"rehash"},
        "lsh_paper_unmirrored": {"mirror"},
    }
    ids = torch.randint(5, 50, (2, 16), generator=torch.Generator().manual_seed(0))
    tiny = TINY_MODEL
    for variant in CONTROL_VARIANTS:
        model = build_model("mlm", variant, vocab_size=50, seed=0, **tiny)
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        assert torch.isfinite(loss), variant
