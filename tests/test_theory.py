"""lshlib.lsh.theory: the closed form against Monte Carlo on lshlib.lsh.hashing, and its helpers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lshlib.lsh import theory as T
from lshlib.lsh.hashing import collisions, draw_hash_params
from lshlib.report import hashing as report_hashing

# (bits, tables, table_size, theta): spans the paper's sweep (bits 2-8, tables 1-4, table_size
# 64-256), plain signatures, a tiny table_size where the floor dominates, and angles 0..pi.
AGREEMENT_CASES = [
    (2, 1, 256, math.pi / 6),
    (2, 1, 256, math.pi / 3),
    (2, 1, 256, math.pi / 2),
    (2, 1, 256, 3 * math.pi / 4),
    (2, 1, 256, math.pi),
    (2, 4, 64, math.pi / 2),
    (3, 2, 128, 1.0),
    (4, 1, 64, 0.5),
    (4, 3, 256, math.pi / 3),
    (4, 4, 64, 2.0),
    (6, 2, 64, 0.4),
    (6, 4, 256, math.pi / 4),
    (8, 1, 256, 0.2),
    (8, 4, 64, 0.6),
    (8, 4, 64, math.pi),
    (8, 2, 128, 1.2),
    (1, 1, None, math.pi / 3),
    (1, 1, None, 2.5),
    (2, 1, None, math.pi / 2),
    (4, 2, None, 0.8),
    (8, 4, None, 0.3),
    (2, 3, 2, 2.0),
    (3, 2, 3, math.pi),
    (5, 1, 7, 1.5),
    # probability exactly 1 (theta = 0) and exactly 0 (opposite vectors, plain signature)
    (2, 1, 256, 0.0),
    (8, 4, None, 0.0),
    (2, 1, None, math.pi),
    (6, 3, None, math.pi),
]


@pytest.mark.parametrize(("bits", "tables", "table_size", "theta"), AGREEMENT_CASES)
def test_closed_form_matches_simulation(bits, tables, table_size, theta):
    trials = 3000
    exact = T.collision_probability(theta, bits, tables, table_size)
    mean, stderr = T.simulate_collision_probability(
        theta, bits, tables, table_size, dim=32, trials=trials, seed=1000 + bits * 10 + tables
    )
    if exact in (0.0, 1.0):
        # no randomness left: the simulation must agree exactly (and report stderr 0)
        assert mean == exact and stderr == 0.0
    else:
        # 4 standard errors; the binomial standard error of the closed form guards against a
        # simulation whose own estimate is 0 because every trial happened to agree
        se = max(stderr, math.sqrt(exact * (1 - exact) / trials))
        assert abs(mean - exact) <= 4 * se, (mean, stderr, exact)


def test_closed_form_special_values():
    # one hyperplane: collide iff it does not separate, 1 - theta/pi
    for theta in (0.0, 0.3, math.pi / 2, 2.9, math.pi):
        assert T.collision_probability(theta, 1) == pytest.approx(1 - theta / math.pi)
    # the paper's setting at 90 degrees, by hand: (1/2)^2 + (1 - 1/4) / 256
    assert T.collision_probability(math.pi / 2, 2, 1, 256) == pytest.approx(0.25 + 0.75 / 256)
    # two tables of one bit at 90 degrees: 1 - (1/2)^2
    assert T.collision_probability(math.pi / 2, 1, 2) == pytest.approx(0.75)
    assert T.collision_probability(0.0, 8, 4, 64) == 1.0
    assert T.collision_floor(2, 1, 256) == pytest.approx(1 / 256)
    assert T.collision_floor(2, 3, 64) == pytest.approx(1 - (63 / 64) ** 3)
    assert T.collision_floor(4, 2) == 0.0


@pytest.mark.parametrize("setting", [(1, 1, None), (2, 1, 256), (8, 4, 64), (3, 2, 2)])
def test_closed_form_is_decreasing_from_one_to_floor(setting):
    grid = np.linspace(0, math.pi, 101)
    p = T.collision_probability(grid, *setting)
    assert p[0] == 1.0 and p[-1] == pytest.approx(T.collision_floor(*setting))
    assert np.all(np.diff(p) < 0)


def test_output_kind_follows_input_kind():
    assert isinstance(T.collision_probability(1.0, 2, 1, 256), float)
    assert isinstance(T.collision_probability(1, 2), float)
    arr = T.collision_probability(np.full((2, 3), 1.0), 2, 1, 256)
    assert isinstance(arr, np.ndarray) and arr.shape == (2, 3)
    t32 = T.collision_probability(torch.full((4,), 1.0), 2, 1, 256)
    assert isinstance(t32, torch.Tensor) and t32.dtype == torch.float32 and t32.shape == (4,)
    t64 = T.collision_probability(torch.full((4,), 1.0, dtype=torch.float64), 2, 1, 256)
    assert t64.dtype == torch.float64
    assert float(t64[0]) == pytest.approx(float(arr[0, 0])) == pytest.approx(t32[0].item())
    # float32 pi is slightly above math.pi; it is accepted and read as pi
    end = T.collision_probability(torch.linspace(0, math.pi, 3), 2)
    assert end[-1].item() == 0.0


@pytest.mark.parametrize(
    "setting", [(1, 1, None), (2, 1, None), (2, 1, 256), (4, 3, 64), (8, 4, 256), (6, 2, 16)]
)
def test_threshold_angle_is_exact(setting):
    angle = T.threshold_angle(*setting)
    assert 0 < angle < math.pi
    assert T.collision_probability(angle, *setting) == pytest.approx(0.5, abs=1e-12)
    other = T.threshold_angle(*setting, level=0.2)
    assert T.collision_probability(other, *setting) == pytest.approx(0.2, abs=1e-12)
    assert other > angle
    assert T.threshold_similarity(*setting) == pytest.approx(1 - angle / math.pi)


def test_threshold_angle_with_floor_at_or_above_level():
    # table_size 2, 4 tables: floor 1 - (1/2)^4 = 0.9375 > 1/2, so no threshold exists
    assert T.collision_floor(3, 4, 2) > 0.5
    assert T.threshold_angle(3, 4, 2) is None
    assert T.threshold_similarity(3, 4, 2) is None
    # table_size 2, 1 table: floor exactly 1/2, reached at pi
    assert T.threshold_angle(3, 1, 2) == pytest.approx(math.pi)


def test_textbook_threshold():
    assert T.approximate_threshold_similarity(2, 4) == pytest.approx(0.5)
    assert T.approximate_threshold_similarity(3, 1) == 1.0
    assert T.approximate_threshold_angle(1, 2) == pytest.approx(math.pi / 2)
    # for many tables and bits the textbook value approaches the exact one
    exact = T.threshold_similarity(16, 64)
    assert abs(T.approximate_threshold_similarity(16, 64) - exact) < 0.02
    assert abs(T.approximate_threshold_similarity(2, 1) - T.threshold_similarity(2, 1)) > 0.2


def test_vectors_at_angle():
    x, y = T.vectors_at_angle(1.1, 16, 50, seed=3)
    assert x.shape == y.shape == (50, 16) and x.dtype == torch.float64
    assert torch.allclose(x.norm(dim=-1), torch.ones(50, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(y.norm(dim=-1), torch.ones(50, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(
        (x * y).sum(-1), torch.full((50,), math.cos(1.1), dtype=torch.float64), atol=1e-12
    )
    x2, _ = T.vectors_at_angle(1.1, 16, 50, seed=3)
    assert torch.equal(x, x2)
    x0, y0 = T.vectors_at_angle(0.0, 8, 4, seed=0)
    assert torch.equal(x0, y0)
    xp, yp = T.vectors_at_angle(math.pi, 8, 4, seed=0)
    assert torch.allclose(xp, -yp, atol=1e-12)


def test_pairwise_angles_match_loop():
    gen = torch.Generator().manual_seed(0)
    q, k = torch.randn(2, 5, 6, generator=gen), torch.randn(2, 4, 6, generator=gen)
    angles = T.pairwise_angles(q, k)
    assert angles.shape == (2, 5, 4) and angles.dtype == torch.float64
    for b in range(2):
        for i in range(5):
            for j in range(4):
                cos = float(q[b, i] @ k[b, j]) / float(q[b, i].norm() * k[b, j].norm())
                assert angles[b, i, j].item() == pytest.approx(math.acos(cos), abs=1e-6)
    same = T.pairwise_angles(q[0], q[0])
    assert torch.allclose(same.diagonal(), torch.zeros(5, dtype=torch.float64), atol=1e-6)


def test_expected_density_matches_sampled_collision_matrices():
    rows, _ = T.clustered_vectors(24, 16, clusters=3, spread=0.7, seed=2)
    angles = T.pairwise_angles(rows, rows)
    for setting in [(2, 1, 256), (4, 2, 64), (3, 1, None)]:
        expected = T.expected_density(angles, *setting)
        assert expected == pytest.approx(
            float(T.collision_probability_matrix(rows, rows, *setting).mean())
        )
        mean, stderr = T.empirical_density(rows, rows, *setting, draws=400, seed=5)
        assert stderr > 0
        assert abs(mean - expected) <= 4 * stderr, (setting, mean, stderr, expected)


def test_expected_density_of_angle_samples():
    assert T.expected_density([0.0, math.pi], 1) == pytest.approx(0.5)
    assert T.expected_density(np.array([math.pi / 2] * 3), 2, 1, 256) == pytest.approx(
        0.25 + 0.75 / 256
    )


def test_curves_and_z_scores():
    curve = T.simulate_collision_curve((2, 1, 256), [0.0, 1.0, math.pi], dim=8, trials=500)
    assert curve.mean.shape == curve.stderr.shape == (3,)
    assert curve.mean[0] == 1.0 and curve.z_scores[0] == 0.0
    assert np.all(np.abs(curve.z_scores) < 4)
    again = T.simulate_collision_curve((2, 1, 256), [0.0, 1.0, math.pi], dim=8, trials=500)
    assert np.array_equal(curve.mean, again.mean)
    curves = T.simulate_settings(T.paper_sweep((2,), (1, 2), (64,)), [1.0], dim=8, trials=100)
    assert [c.setting for c in curves] == [(2, 1, 64), (2, 2, 64)]


def test_setting_summary_of_paper_setting():
    summary = T.setting_summary(*T.PAPER_SETTING)
    assert summary["P(90 deg)"] == pytest.approx(0.25 + 0.75 / 256)
    assert summary["floor P(180 deg)"] == pytest.approx(1 / 256)
    threshold = summary["threshold angle (deg)"]
    assert T.collision_probability(math.radians(threshold), *T.PAPER_SETTING) == pytest.approx(0.5)


def test_reports():
    text = report_hashing.threshold_report([T.PAPER_SETTING, (3, 4, 2)])
    lines = text.splitlines()
    assert len(lines) == 3 and "52.97" in lines[1] and "none" in lines[2]
    table = report_hashing.settings_report([(2, 1, None)], angles_deg=(90,))
    assert "0.2500" in table.splitlines()[1]
    summary = report_hashing.format_summary({"a": 1, "b": 0.123456, "c": None}, digits=3)
    assert summary.splitlines() == ["a  1", "b  0.123", "c  none (floor above 1/2)"]
    curve = T.simulate_collision_curve((2, 1, None), [0.0, 1.0], dim=4, trials=200)
    agreement = T.agreement_summary([curve, curve])
    assert agreement["settings"] == 2 and agreement["points"] == 4
    rows = torch.randn(10, 6, generator=torch.Generator().manual_seed(0))
    check = T.density_check(rows, rows, (2, 1, 256), draws=50)
    assert check["expected density"] == pytest.approx(
        T.expected_density(T.pairwise_angles(rows, rows), 2, 1, 256)
    )


def test_monte_carlo_trials_follow_scale(monkeypatch):
    monkeypatch.setenv("LSHLIB_SCALE", "smoke")
    smoke = T.monte_carlo_trials()
    assert smoke < T.monte_carlo_trials("laptop") < T.monte_carlo_trials("paper")
    with pytest.raises(ValueError, match="valid scales"):
        T.monte_carlo_trials("huge")


@pytest.mark.parametrize(
    ("call", "pattern"),
    [
        (lambda: T.collision_probability(-0.1, 2), r"theta.*\[0, pi\].*-0\.1"),
        (lambda: T.collision_probability(4.0, 2), r"theta.*4\.0"),
        (lambda: T.collision_probability(float("nan"), 2), r"theta.*nan"),
        (lambda: T.collision_probability(np.array([0.0, 5.0]), 2), r"theta.*5\.0"),
        (lambda: T.collision_probability(torch.tensor([1.0, -2.0]), 2), r"theta.*-2\.0"),
        (lambda: T.collision_probability("1.0", 2), r"theta.*str"),
        (lambda: T.collision_probability(1.0, 0), r"bits.*0"),
        (lambda: T.collision_probability(1.0, 2, 0), r"tables.*0"),
        (lambda: T.collision_probability(1.0, 2, 1, 1), r"table_size.*1"),
        (lambda: T.threshold_angle(2, 1, 256, level=1.0), r"level.*\(0, 1\).*1\.0"),
        (lambda: T.threshold_angle(2, 1, 256, level=0), r"level.*0"),
        (lambda: T.similarity_to_angle(1.5), r"similarity.*\[0, 1\].*1\.5"),
        (lambda: T.simulate_collision_probability(1.0, 2, trials=1), r"trials.*>= 2.*1"),
        (lambda: T.simulate_collision_probability(7.0, 2), r"theta.*7\.0"),
        (lambda: T.vectors_at_angle(1.0, 1), r"dim.*>= 2.*1"),
        (lambda: T.vectors_at_angle(1.0, 4, 0), r"n.*>= 1.*0"),
        (lambda: T.vectors_at_angle(1.0, 4, dtype=torch.int32), r"dtype.*int32"),
        (lambda: T.vectors_at_angle(1.0, 4, seed=0, generator=torch.Generator()), "either"),
        (lambda: T.pairwise_angles(torch.randn(3, 4), torch.randn(3, 5)), r"width 4.*width 5"),
        (lambda: T.pairwise_angles(torch.ones(3, 4, dtype=torch.long), torch.randn(3, 4)), "int64"),
        (lambda: T.pairwise_angles(torch.zeros(2, 4), torch.randn(3, 4)), "zero row"),
        (lambda: T.expected_density([], 2), "empty"),
        (lambda: T.clustered_vectors(0, 4), r"n.*>= 1.*0"),
        (lambda: T.clustered_vectors(4, 4, spread=-1.0), r"spread.*-1\.0"),
    ],
)
def test_bad_inputs_raise_value_error(call, pattern):
    with pytest.raises(ValueError, match=pattern):
        call()


def test_figures_and_widget_build_headless(tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    from lshlib.report import hashing as P
    from lshlib.widgets.hashing import hashing_explorer

    curve = T.simulate_collision_curve((1, 1, None), [0.5, 1.5], dim=2, trials=50)
    figures = [
        P.plot_one_hyperplane(1.0, curve, n_lines=6),
        P.plot_collision_curves([curve]),
        P.plot_and_or((1, 2), (1, 2), ((2, 1),)),
        P.plot_folding((2,), (None, 16)),
        P.plot_sweep((2, 4), (1, 2), (64,)),
        P.plot_z_scores([curve]),
        P.plot_explorer_frame(T.PAPER_SETTING, T.clustered_vectors(12, 8)[0], hash_seed=0),
    ]
    assert all(isinstance(f, Figure) for f in figures)
    for f in figures:
        plt.close(f)
    monkeypatch.setattr("IPython.display.display", lambda *a, **k: None)
    explorer = hashing_explorer(n=12, dim=8)
    assert explorer.frames_drawn == 1
    explorer.controls["bits"].value = 3
    assert explorer.frames_drawn == 2
    plt.close("all")


def test_paper_sweep_is_the_authors_grid():
    sweep = T.paper_sweep()
    assert len(sweep) == 64 and len(set(sweep)) == 64
    assert sorted({s.table_size for s in sweep}) == [64, 128, 192, 256]
    assert sorted({s.bits for s in sweep}) == [2, 4, 6, 8]
    assert sorted({s.tables for s in sweep}) == [1, 2, 3, 4]
    assert T.PAPER_SETTING in sweep


def test_sweep_probability_range_brackets_every_setting():
    ranges = T.sweep_probability_range(90.0)
    assert list(ranges) == [2, 4, 6, 8]
    for setting in T.paper_sweep():
        low, high = ranges[setting.bits]
        assert low <= T.collision_probability(math.pi / 2, *setting) <= high
    # the sparsest and densest 2-bit settings: 1 table of 256 buckets, 4 tables of 64
    assert ranges[2] == (
        pytest.approx(T.collision_probability(math.pi / 2, 2, 1, 256)),
        pytest.approx(T.collision_probability(math.pi / 2, 2, 4, 64)),
    )
    assert T.sweep_probability_range(60.0, [(2, 1, 256)]) == {
        2: (pytest.approx(0.4466, abs=1e-4),) * 2
    }
    with pytest.raises(ValueError, match="empty"):
        T.sweep_probability_range(90.0, [])


def test_bucket_cluster_counts_partition_the_rows():
    rows, ids = T.clustered_vectors(24, 8, clusters=3, spread=0.1, seed=1)
    (table,) = T.bucket_cluster_counts(rows, ids, (2, 1, 256), hash_seed=0)
    assert sum(sum(c) for c in table.values()) == 24
    assert [sum(c) for c in table.values()] == sorted(
        (sum(c) for c in table.values()), reverse=True
    )
    assert len(table) <= 4  # 2 bits: at most 4 signatures, whatever the table size
    # the same draw as the explorer frame: rows collide iff they share the bucket, so the
    # colliding pairs (diagonal included) number the sum of squared bucket sizes
    params = draw_hash_params(8, 2, 1, 256, seed=0, dtype=torch.float64)
    hits = collisions(rows, rows, params)
    assert int(hits.sum()) == sum(sum(c) ** 2 for c in table.values())
    tables = T.bucket_cluster_counts(rows, ids, (3, 2, None), hash_seed=0)
    assert len(tables) == 2
    with pytest.raises(ValueError, match="cluster_ids"):
        T.bucket_cluster_counts(rows, ids[:5], (2, 1, 256))


def test_blocks_and_range_reports_agree_with_the_numbers():
    rows, ids = T.clustered_vectors(12, 8, clusters=2, spread=0.5, seed=0)
    text = report_hashing.blocks_report(rows, ids, (2, 1, 256), hash_seed=3)
    first, *buckets = text.splitlines()
    expected = float(T.collision_probability_matrix(rows, rows, 2, 1, 256).mean())
    assert f"exact mean P(collide) {expected:.3f}" in first and "hash seed 3" in first
    assert sum(int(line.split(":")[1].split("rows")[0]) for line in buckets) == 12
    ranges = {2: (0.25, 0.7), 8: (0.0078, 0.0756)}
    lines = report_hashing.sweep_range_report(ranges).splitlines()
    assert lines[1] == "bits=2: 0.2500 to 0.7000 (25.0% to 70.0%)"
    assert lines[2] == "bits=8: 0.0078 to 0.0756 (0.8% to 7.6%)"


def test_agreement_summary_gives_normal_reference():
    curve = T.simulate_collision_curve((2, 1, None), [0.5, 1.0], dim=4, trials=200)
    summary = T.agreement_summary([curve])
    assert summary["normal: within 2 s.e."] == pytest.approx(0.9545, abs=1e-4)
    assert summary["normal: within 3 s.e."] == pytest.approx(0.9973, abs=1e-4)
