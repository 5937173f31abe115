"""Operation counts against FlopCounterMode, against the scores actually computed, and the
expected densities of lshlib.lsh.theory against measured ones (within 4 standard errors)."""

from __future__ import annotations

import math

import pytest
import torch

from lshlib.bench import attention as bench
from lshlib.lsh import cost
from lshlib.lsh.bucketed import bucketed_attention, plan_layout
from lshlib.lsh.hashing import buckets, collisions, draw_hash_params
from lshlib.report import cost as report_cost


def qkv(B, H, n, d, seed=0, grad=False):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(B, H, n, d, generator=g).requires_grad_(grad) for _ in range(3)]


def test_dense_counts_match_flop_counter_forward_and_backward():
    B, H, n, d = 2, 2, 24, 16
    q, k, v = qkv(B, H, n, d, grad=True)
    c = cost.attention_counts(n, n, d, method="dense", batch=B, heads=H)
    fwd = cost.flop_counter_total(lambda: torch.softmax(q @ k.transpose(-1, -2), -1) @ v)
    assert fwd["total"] == c.matmul_flops == c.scores + c.value
    both = cost.flop_counter_total(
        lambda: torch.softmax(q @ k.transpose(-1, -2), -1) @ v, backward=True
    )
    assert both["total"] == c.matmul_flops + c.scores_bwd + c.value_bwd


@pytest.mark.parametrize("bits,tables,table_size", [(2, 1, None), (3, 3, 256)])
def test_bucketed_counts_equal_computed_scores(bits, tables, table_size):
    """FlopCounterMode sees the kernel's two products: 2 (d + d_v) FLOPs per computed score."""
    B, H, n, d = 1, 2, 70, 8
    q, k, v = qkv(B, H, n, d, seed=1, grad=True)
    hp = draw_hash_params(d, bits, tables, table_size, batch_shape=(B, H), seed=0)
    qb, kb = buckets(q.detach(), hp), buckets(k.detach(), hp)
    computed = plan_layout(qb, kb).computed_scores
    c = cost.attention_counts(
        n,
        n,
        d,
        method="masked_bucketed",
        bits=bits,
        tables=tables,
        table_size=table_size,
        batch=B,
        heads=H,
        computed=computed / (B * H),
    )
    assert c.dot_products == computed
    fwd = cost.flop_counter_total(lambda: bucketed_attention(q, k, v, qb, kb, scaling=0.5))
    assert fwd["total"] == 2 * (d + d) * computed == c.scores + c.value
    both = cost.flop_counter_total(
        lambda: bucketed_attention(q, k, v, qb, kb, scaling=0.5), backward=True
    )
    assert both["total"] == c.scores + c.value + c.scores_bwd + c.value_bwd
    # the useful part: same-bucket pairs per table, at most what is computed
    pairs = cost.measured_pairs(qb, kb)
    assert pairs.computed == computed
    assert pairs.per_table == int((qb.unsqueeze(-1) == kb.unsqueeze(-2)).sum())
    assert pairs.colliding <= pairs.per_table <= computed


def test_dense_strategy_counts_match_flop_counter():
    """Our dense strategy: hashing projection + all scores + value product, all matmuls."""
    from lshlib.lsh.attention import LSHConfig, lsh_attention

    B, H, n, d, bits, tables = 2, 2, 20, 16, 3, 2
    q, k, v = qkv(B, H, n, d, seed=2)
    cfg = LSHConfig(bits=bits, tables=tables, table_size=256, mode="paper", strategy="dense")
    got = cost.flop_counter_total(lambda: lsh_attention(q, k, v, config=cfg)[0])
    c = cost.attention_counts(
        n, n, d, method="paper_dense", bits=bits, tables=tables, table_size=256, batch=B, heads=H
    )
    assert got["total"] == c.matmul_flops


def test_authors_dot_products_are_not_seen_by_flop_counter():
    """The authors' per-pair products are elementwise: FlopCounterMode sees only hashing and
    the dense value product, so it undercounts their algorithm by the colliding pairs."""
    from lshlib.lsh.reference import authors_attention

    B, H, n, d = 1, 2, 16, 8
    q, k, v = qkv(B, H, n, d, seed=3)
    hp = draw_hash_params(d, 2, 1, 256, batch_shape=(B, H), seed=1)
    got = cost.flop_counter_total(
        lambda: authors_attention(q, k, v, None, hp.hyperplanes, hp.coefficients, 256)
    )
    qb, kb = buckets(q, hp), buckets(k, hp)
    pairs = cost.measured_pairs(qb, kb, plan=False)
    c = cost.attention_counts(
        n,
        n,
        d,
        method="paper_authors",
        bits=2,
        tables=1,
        table_size=256,
        batch=B,
        heads=H,
        upper_pairs=pairs.upper / (B * H),
    )
    value_only = B * H * 2 * d * n * n
    assert got["total"] <= c.matmul_flops
    assert got["total"] >= value_only
    assert c.scores == 2 * d * pairs.upper


@pytest.mark.parametrize(
    "bits,tables,table_size", [(2, 1, None), (2, 1, 256), (3, 2, 8), (4, 3, None), (1, 4, 4)]
)
def test_expected_density_matches_measured(bits, tables, table_size):
    """Exact expectation over hash draws for fixed q, k vs the mean of 300 draws (4 SE)."""
    from lshlib.lsh.theory import pairwise_angles

    g = torch.Generator().manual_seed(bits * 10 + tables)
    q = torch.randn(24, 8, generator=g, dtype=torch.float64)
    k = torch.randn(24, 8, generator=g, dtype=torch.float64)
    expected = cost.expected_pairs(24, 24, bits, tables, table_size, angles=pairwise_angles(q, k))
    draws = 300
    hp = draw_hash_params(
        8, bits, tables, table_size, batch_shape=(draws,), seed=7, dtype=torch.float64
    )
    coll = collisions(q, k, hp).flatten(-2).to(torch.float64)  # (draws, n*n)
    density = coll.mean(-1)
    se = float(density.std() / math.sqrt(draws))
    assert abs(float(density.mean()) - expected["density"]) <= 4 * se + 1e-12
    qb, kb = buckets(q, hp), buckets(k, hp)
    per_table = (qb.unsqueeze(-1) == kb.unsqueeze(-2)).sum((-3, -2, -1)).to(torch.float64)
    se_t = float(per_table.std() / math.sqrt(draws))
    assert abs(float(per_table.mean()) - expected["per_table"]) <= 4 * se_t + 1e-9


def test_random_gaussian_density_is_collision_probability_at_right_angle():
    from lshlib.lsh.theory import collision_probability

    e = cost.expected_pairs(100, 100, 4, 2, None)
    assert e["density"] == pytest.approx(collision_probability(math.pi / 2, 4, 2, None))
    assert e["colliding"] == pytest.approx(e["density"] * 100 * 100)


def test_paper_figure_numbers():
    assert cost.paper_figure_kflops(2, 1) == {"lsh_kflops": 10.24, "full_kflops": 25.6}
    assert cost.paper_figure_kflops(8, 4)["lsh_kflops"] == pytest.approx(163.84)


def test_count_totals_and_errors():
    c = cost.attention_counts(10, 10, 64, method="masked_dense", bits=2, tables=1)
    assert c.total == c.forward + c.backward
    assert c.hashing_bwd == 0
    d = c.to_dict()
    assert d["total"] == c.total
    with pytest.raises(ValueError, match="method"):
        cost.attention_counts(10, 10, 64, method="sparse")
    with pytest.raises(ValueError, match="n_q"):
        cost.attention_counts(0, 10, 64)
    with pytest.raises(ValueError, match="pairs"):
        cost.attention_counts(10, 10, 64, method="masked_bucketed")


def test_time_call_and_peak_memory():
    t = bench.time_call(lambda: torch.ones(10).sum(), warmup=1, repeats=4)
    assert t["min"] <= t["q1"] <= t["median"] <= t["q3"] <= t["max"]
    assert t["repeats"] == 4
    m = bench.peak_memory(lambda: torch.ones(2_000_000).sum())
    assert m["bytes"] >= 8_000_000
    assert "profiler" in m["method"]
    with pytest.raises(ValueError):
        bench.time_call(lambda: None, repeats=0)


def _fake_bench():
    rows = []
    for n, sdpa, b4 in ((1024, 0.01, 0.02), (8192, 1.0, 0.08)):
        rows.append(
            {
                "n": n,
                "method": "sdpa",
                "forward": {"median": sdpa, "min": sdpa},
                "forward_backward": {"median": 3 * sdpa, "min": 3 * sdpa, "peak_bytes": 10},
            }
        )
        rows.append(
            {
                "n": n,
                "method": "bucketed",
                "bits": 4,
                "tables": 1,
                "table_size": None,
                "forward": {"median": b4, "min": b4 / 2},
                "forward_backward": {"median": 3 * b4, "min": 3 * b4, "peak_bytes": 30},
            }
        )
    fresh = {"n": 8192, "sdpa": 100, "bucketed": 150, "ratio_bucketed_to_sdpa": 1.5}
    return {"rows": rows, "fresh_process_memory": fresh}


def test_target_report_and_crossovers_read_the_run():
    report = {r["target"]: r for r in report_cost.target_report(_fake_bench())}
    speed = report["bucketed 4b/1t vs SDPA, forward, n=8192"]
    assert speed["measured"] == pytest.approx(12.5) and speed["met"] is True
    assert speed["best_of_repeats"] == pytest.approx(25.0) and speed["goal"] == ">= 10x"
    fb = report["bucketed 4b/1t vs SDPA, forward+backward, n=8192"]
    assert fb["measured"] == pytest.approx(12.5) and fb["goal"] == ">= 8x"
    memory = report["peak memory, bucketed 4b/1t / SDPA, forward+backward, n=8192 (profiler)"]
    assert memory["measured"] == pytest.approx(3.0) and memory["met"] is False
    rss = [r for k, r in report.items() if "peak-RSS" in k]
    assert rss[0]["measured"] == 1.5 and rss[0]["met"] is True
    missing = report["bucketed 8b/4t vs SDPA, forward, n=8192"]
    assert missing["measured"] is None and missing["met"] is None
    assert report_cost.crossover_labels(_fake_bench())["forward"] == {
        "bucketed bits=4, tables=1, signature": 8192
    }


def test_notebook_tables():
    rows = cost.figure_kflops_table()
    assert len(rows) == 16
    assert all(r["honest_lsh_kops"] > r["paper_kflops"] for r in rows)
    ops = cost.ops_vs_length_table(ns=(64, 4096))
    cross = {r["method"]: r for r in cost.ops_crossover(ops)}
    assert cross["bucketed bits=4, tables=1, signature"]["dense_over_lsh_at_n_max"] > 10
    assert cross["authors bits=4, tables=1, signature"]["dense_over_lsh_at_n_max"] < 2.5
    text = report_cost.format_rows(rows[:2], ["label", "paper_kflops"])
    assert "10.2400" in text


def test_one_crossover_definition_requires_staying_ahead():
    rows = []
    for n, sdpa, b4 in ((512, 1.0, 0.5), (1024, 1.0, 2.0), (2048, 1.0, 0.5), (4096, 1.0, 0.4)):
        rows.append({"n": n, "method": "sdpa", "forward": {"median": sdpa}})
        rows.append(
            {
                "n": n,
                "method": "bucketed",
                "bits": 4,
                "tables": 1,
                "table_size": None,
                "forward": {"median": b4},
            }
        )
    (fwd,) = [r for r in bench.crossover_table({"rows": rows}) if r["phase"] == "forward"]
    # faster at 512 but slower again at 1024: the crossover is 2048, from where it stays ahead
    assert fwd["crossover_n"] == 2048 and fwd["n_max"] == 4096
    assert bench.summarize(rows)["crossover_n_vs_sdpa"] == {
        "bits=4, tables=1, signature forward": 2048,
        "bits=4, tables=1, signature forward_backward": None,
    }
