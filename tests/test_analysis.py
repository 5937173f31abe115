"""lshlib.experiments.analysis and lshlib.report.attention: chance levels, queries without
collisions, the approximation sweep's new columns, and the text and figures notebook 02 shows."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest
import torch

from lshlib.experiments import analysis
from lshlib.lsh.attention import LSHConfig, additive_mask, full_attention, lsh_attention
from lshlib.lsh.hashing import buckets, collision_matrix, draw_hash_params
from lshlib.report import attention as report


def _inputs(batch=3, n=16, d=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(batch, 2, n, d, generator=g) for _ in range(3))
    token_mask = torch.ones(batch, n, dtype=torch.long)
    token_mask[1, n - 5 :] = 0
    return q, k, v, token_mask


def test_topk_chance_is_k_over_n_per_query():
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 0, 0, 0, 0]])
    # 6 queries with 3/6, 2 queries with min(3, 2)/2 = 1
    assert analysis.topk_chance(mask, k=3) == pytest.approx((6 * 0.5 + 2 * 1.0) / 8)
    assert analysis.topk_chance(torch.ones(1, 10), k=1) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="k must be"):
        analysis.topk_chance(mask, k=0)
    with pytest.raises(ValueError, match="without real tokens"):
        analysis.topk_chance(torch.tensor([[1, 1], [0, 0]]), k=1)


def test_queries_without_collision_get_zero_output_in_masked_mode():
    q, k, v, token_mask = _inputs()
    params = draw_hash_params(16, 6, 1, 256, batch_shape=(3, 2), seed=1)
    hashes = {"hyperplanes": params.hyperplanes, "coefficients": params.coefficients}
    cfg = LSHConfig(bits=6, tables=1, table_size=256, mode="masked")
    mask = additive_mask(token_mask)
    out, _ = lsh_attention(q, k, v, mask, config=cfg, **hashes)
    cmp_colliding = analysis.compare_modes(q, k, v, token_mask, (6, 1, 256), seed=1).colliding
    counts = analysis.no_collision_queries(cmp_colliding, token_mask)
    assert counts.shape == (3, 2) and int(counts.sum()) > 0
    # padding queries are never counted
    assert int(counts[1].max()) <= 11
    # recount by hand with the same hashes: a real query is empty iff its output row is zero
    hit = collision_matrix(buckets(q, params), buckets(k, params))
    real = token_mask.bool()
    valid = real[:, None, :, None] & real[:, None, None, :]
    empty = real[:, None, :] & ~(hit & valid).any(-1)
    zero = out.norm(dim=-1) == 0
    assert torch.equal(empty, zero & real[:, None, :])
    assert torch.equal(analysis.no_collision_queries(hit, token_mask), empty.sum(-1))


def test_compare_modes_and_sweep_report_no_collision():
    q, k, v, token_mask = _inputs()
    cmp = analysis.compare_modes(q, k, v, token_mask, (8, 1, None), seed=0)
    counts = analysis.no_collision_queries(cmp.colliding, token_mask)
    real_queries = 2 * int(token_mask.sum())
    assert cmp.summary["no_collision_queries"] == pytest.approx(int(counts.sum()) / real_queries)
    rows = analysis.approximation_sweep(q, k, v, token_mask, [(1, 1, None), (8, 1, None)], draws=2)
    dense, sparse = rows[1], rows[3]  # masked rows
    assert dense["mode"] == sparse["mode"] == "masked"
    assert 0 <= dense["no_collision"] < sparse["no_collision"] <= 1
    for r in rows:
        assert r["output_error_colliding"] > 0
    # masked error mixes exactly-1 empty rows with the colliding rows' error (per draw; the
    # weights differ slightly between draws, so allow a tolerance)
    mix = sparse["no_collision"] + (1 - sparse["no_collision"]) * sparse["output_error_colliding"]
    assert sparse["output_error"] == pytest.approx(mix, rel=0.1)


def test_text_summaries():
    q, k, v, token_mask = _inputs()
    cmp = analysis.compare_modes(q, k, v, token_mask, (6, 1, 256), seed=0)
    count = int(analysis.no_collision_queries(cmp.colliding, token_mask)[1, 0])
    sentence = report.no_collision_sentence(cmp, token_mask, (1, 0), 11)
    assert sentence.startswith(f"sentence 1, head 0: {count} of 11 real queries collide with no")
    text = report.density_estimates_report(
        [("one draw", 1, 0.28), ("twenty draws", 20, 0.27)], expected=0.265, stderr_one_draw=0.01
    )
    lines = text.splitlines()
    assert lines[1].split()[-4:] == ["1", "0.2800", "0.0100", "1.50"]
    assert lines[2].split()[-2:] == ["0.0022", "2.24"]
    assert lines[3].split()[-1] == "0.2650"
    with pytest.raises(ValueError, match="draws must be"):
        report.density_estimates_report([("none", 0, 0.3)], 0.3, 0.01)


def test_figures_fill_their_grids():
    q, k, v, token_mask = _inputs()
    maps = analysis.collision_maps(q, k, [(2, 1, 256), (4, 1, 256), (8, 1, None)], seed=0)
    _, full = full_attention(q, k, v, additive_mask(token_mask))
    fig = report.plot_collisions_vs_attention(
        full[0, 0], {lbl: m[0, 0] for lbl, m in maps.items()}, expected=("p", full[0, 0])
    )
    images = [ax for ax in fig.axes if ax.images and ax.get_label() != "<colorbar>"]
    assert len(images) == 5 and len(fig.axes) - len(images) == 2  # two colour bars
    cmp = analysis.compare_modes(q, k, v, token_mask, (2, 1, 256))
    fig2 = report.plot_mode_comparison(cmp, (0, 0), 16)
    weights = [ax for ax in fig2.axes if "weights (own scale)" in ax.get_title()]
    assert len(weights) == 3
    limits = {tuple(ax.images[0].get_clim()) for ax in weights}
    assert len(limits) == 3  # a colour scale per panel
    rows = analysis.approximation_sweep(q, k, v, token_mask, [(1, 1, 256), (2, 1, 256)], draws=1)
    fig3 = report.plot_approximation(rows, chance=0.2)
    assert all(ax.get_legend() is not None for ax in fig3.axes)
    plt.close("all")


def test_masked_error_report_names_the_settings_above_one():
    rows = [
        {
            "mode": "masked",
            "bits": 2,
            "tables": 1,
            "output_error": 0.6,
            "no_collision": 0.05,
            "output_error_colliding": 0.58,
        },
        {
            "mode": "paper",
            "bits": 8,
            "tables": 1,
            "output_error": 0.01,
            "no_collision": 0.8,
            "output_error_colliding": 0.01,
        },
        {
            "mode": "masked",
            "bits": 8,
            "tables": 1,
            "output_error": 1.05,
            "no_collision": 0.8,
            "output_error_colliding": 1.25,
        },
        {
            "mode": "masked",
            "bits": 6,
            "tables": 2,
            "output_error": 1.03,
            "no_collision": 0.4,
            "output_error_colliding": 1.04,
        },
    ]
    text = report.masked_error_report(rows)
    assert "in 2 of 3 settings (8 bits/1 tables, 6 bits/2 tables): 1.0300 to 1.0500" in text
    assert "0.4000 to 0.8000 of real queries" in text and "error 1.0400 to 1.2500" in text
    assert "stays at or below 1 in all 1 settings" in report.masked_error_report(rows[:2])
