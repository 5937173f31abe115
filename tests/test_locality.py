"""Locality measures on hand-built attention and collision matrices, and on a model."""

from __future__ import annotations

import pytest
import torch

from lshlib.data import get_tokenizer
from lshlib.experiments.locality import locality_stats, trained_locality
from lshlib.lsh.attention import random_pairs
from lshlib.modeling import build_model
from lshlib.paths import data_dir


def _uniform(batch=2, heads=3, n=6, pad=2):
    mask = torch.ones(batch, n, dtype=torch.long)
    mask[1, n - pad :] = 0
    probs = mask[:, None, None, :].float().expand(batch, heads, n, n)
    return probs / probs.sum(-1, keepdim=True), mask


def test_uniform_attention_has_no_lift_and_padding_is_not_counted():
    probs, mask = _uniform()
    colliding = torch.rand(probs.shape, generator=torch.Generator().manual_seed(0)) < 0.4
    colliding[..., 0] = True  # every query collides with key 0 (never padding)
    s = locality_stats(probs, colliding, mask)
    real = mask.bool()
    keys = real[:, None, None, :] & colliding
    density = (keys.sum(-1) / real.sum(-1)[:, None, None]).float()
    rows = real[:, None, :].float().expand(density.shape)
    expected = (density * rows).sum((0, 2)) / rows.sum((0, 2))
    torch.testing.assert_close(s["density"], expected)
    torch.testing.assert_close(s["weight_on_colliding"], expected)  # uniform weight: lift 1
    assert (s["no_collision"] == 0).all()


def test_all_and_diagonal_collisions():
    probs, mask = _uniform(pad=0)
    every = locality_stats(probs, torch.ones(probs.shape, dtype=torch.bool), mask)
    for name, value in (
        ("weight_on_colliding", 1.0),
        ("density", 1.0),
        ("topk_colliding", 1.0),
        ("no_collision", 0.0),
    ):
        torch.testing.assert_close(every[name], torch.full((3,), value))
    eye = torch.eye(6).expand(probs.shape)
    diag = locality_stats(eye.clone(), eye.bool(), mask, k=1)
    torch.testing.assert_close(diag["weight_on_colliding"], torch.ones(3))
    torch.testing.assert_close(diag["density"], torch.full((3,), 1 / 6))
    torch.testing.assert_close(diag["topk_colliding"], torch.ones(3))
    none = locality_stats(probs, torch.zeros(probs.shape, dtype=torch.bool), mask)
    torch.testing.assert_close(none["no_collision"], torch.ones(3))


def test_isolation_under_the_random_control_matches_simulation():
    """``no_collision_random`` is the chance that attention's random-pairs control (same
    density per (batch, head) slice) leaves a real query with no real key: checked against
    2,000 draws of :func:`lshlib.lsh.attention.random_pairs` within 4 standard errors."""
    probs, mask = _uniform(n=6, pad=2)
    gen = torch.Generator().manual_seed(1)
    colliding = torch.rand(probs.shape, generator=gen) < 0.25
    predicted = locality_stats(probs, colliding, mask)["no_collision_random"]
    real = mask.bool()
    draws = 2000
    alone = torch.zeros(3)
    for _ in range(draws):
        allowed = ~random_pairs(~colliding, gen) & real[:, None, None, :]
        isolated = (~allowed.any(-1)).float() * real[:, None, :].float()
        alone += isolated.sum((0, 2)) / real.sum()
    simulated = alone / draws
    se = (predicted * (1 - predicted) / (draws * real.sum())).sqrt()
    assert ((simulated - predicted).abs() < 4 * se + 1e-3).all(), (simulated, predicted)
    assert (predicted > 0.05).all()  # the check has something to see


def test_bad_shapes_and_k_are_named():
    probs, mask = _uniform()
    with pytest.raises(ValueError, match="same|share one"):
        locality_stats(probs, torch.ones(2, 3, 6, 5, dtype=torch.bool), mask)
    with pytest.raises(ValueError, match=r"k must be an integer in \[1, 6\], got 7"):
        locality_stats(probs, probs > 0, mask, k=7)


@pytest.mark.skipif(not (data_dir() / "sst2").is_dir(), reason="shared data not available")
def test_trained_locality_rows_per_layer_and_head(monkeypatch, tmp_path_factory):
    runs = tmp_path_factory.getbasetemp() / "lshlib-runs"
    runs.mkdir(exist_ok=True)
    monkeypatch.setenv("LSHLIB_RUNS_DIR", str(runs))
    model = build_model("mlm", "baseline", vocab_size=len(get_tokenizer("smoke")), seed=0)
    rows = trained_locality(model, num_sentences=6, draws=2, scale="smoke")
    assert [(r["layer"], r["head"]) for r in rows] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    for r in rows:
        for name in (
            "weight_on_colliding",
            "density",
            "topk_colliding",
            "no_collision",
            "no_collision_random",
        ):
            assert 0.0 <= r[name] <= 1.0, (name, r)
        assert r["lift"] > 0
