"""lshlib.lsh.hashing: determinism, hand-computed buckets, a double-loop oracle, and bad input."""

from __future__ import annotations

import pytest
import torch

from lshlib.lsh.hashing import (
    HashParams,
    buckets,
    collision_matrix,
    collisions,
    draw_hash_params,
    folded_buckets,
    sign_bits,
    signature_buckets,
)


def _same_params(a: HashParams, b: HashParams) -> bool:
    same_coef = (a.coefficients is None and b.coefficients is None) or (
        a.coefficients is not None
        and b.coefficients is not None
        and torch.equal(a.coefficients, b.coefficients)
    )
    return torch.equal(a.hyperplanes, b.hyperplanes) and same_coef and a.table_size == b.table_size


@pytest.mark.parametrize("table_size", [None, 256])
def test_same_seed_same_params(table_size):
    a = draw_hash_params(16, 3, 2, table_size, batch_shape=(2, 3), seed=7)
    b = draw_hash_params(16, 3, 2, table_size, batch_shape=(2, 3), seed=7)
    c = draw_hash_params(16, 3, 2, table_size, batch_shape=(2, 3), seed=8)
    assert _same_params(a, b)
    assert not torch.equal(a.hyperplanes, c.hyperplanes)
    assert a.hyperplanes.shape == (2, 3, 2, 3, 16)
    if table_size is not None:
        assert a.coefficients.shape == (2, 3, 2, 3)
        assert a.coefficients.dtype == torch.int64
        assert int(a.coefficients.min()) >= 0 and int(a.coefficients.max()) < table_size


def test_explicit_generator_is_deterministic_and_advances():
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    a1, a2 = (
        draw_hash_params(8, 2, 1, 64, generator=g1),
        draw_hash_params(8, 2, 1, 64, generator=g2),
    )
    assert _same_params(a1, a2)
    # the generator's state moves on: a second draw differs, identically for both generators
    b1, b2 = (
        draw_hash_params(8, 2, 1, 64, generator=g1),
        draw_hash_params(8, 2, 1, 64, generator=g2),
    )
    assert _same_params(b1, b2)
    assert not torch.equal(a1.hyperplanes, b1.hyperplanes)
    # a seed is the same as a freshly seeded generator
    assert _same_params(draw_hash_params(8, 2, 1, 64, seed=3), a1)


@pytest.mark.parametrize("table_size", [None, 16])
def test_params_passed_back_give_same_buckets(table_size):
    x = torch.randn(2, 4, 10, 12, generator=torch.Generator().manual_seed(0))
    params = draw_hash_params(12, 4, 3, table_size, batch_shape=(2, 4), seed=1)
    first = buckets(x, params)
    rebuilt = HashParams(
        params.hyperplanes.clone(),
        None if params.coefficients is None else params.coefficients.clone(),
        params.table_size,
    )
    assert first.shape == (2, 4, 3, 10)
    assert torch.equal(buckets(x, params), first)
    assert torch.equal(buckets(x, rebuilt), first)
    hi = params.num_buckets
    assert int(first.min()) >= 0 and int(first.max()) < hi


def test_hand_computed_tiny_example():
    # Hyperplanes e1 and e2, coefficients (3, 5), table_size 7. Sign bit = [h . x > 0].
    hyperplanes = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])  # (tables=1, bits=2, dim=2)
    coefficients = torch.tensor([[3, 5]])
    x = torch.tensor([[1.0, 1.0], [-1.0, 1.0], [1.0, -1.0], [-1.0, -1.0], [0.0, 2.0]])
    expected_bits = [[1, 1], [0, 1], [1, 0], [0, 0], [0, 1]]  # h . x = 0 gives bit 0
    # signature = bit_0 * 1 + bit_1 * 2
    expected_signature = [3, 2, 1, 0, 2]
    # folded = (bit_0 * 3 + bit_1 * 5) mod 7
    expected_folded = [1, 5, 3, 0, 5]

    assert sign_bits(x, hyperplanes).tolist() == [expected_bits]
    assert buckets(x, HashParams(hyperplanes)).tolist() == [expected_signature]
    params = HashParams(hyperplanes, coefficients, 7)
    assert buckets(x, params).tolist() == [expected_folded]
    assert params.num_buckets == 7 and HashParams(hyperplanes).num_buckets == 4

    # the low-level helpers agree, and the collision matrix follows from the buckets
    b = sign_bits(x, hyperplanes)
    assert signature_buckets(b).tolist() == [expected_signature]
    assert folded_buckets(b, coefficients, 7).tolist() == [expected_folded]
    m = collisions(x, x, params)
    assert m.tolist() == [[f == g for g in expected_folded] for f in expected_folded]


def test_folding_can_merge_distinct_signatures():
    # coefficients (2, 2) mod 4: bits (1, 0) and (0, 1) both land in bucket 2, unlike signatures
    hyperplanes = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    x = torch.tensor([[1.0, -1.0], [-1.0, 1.0]])
    assert buckets(x, HashParams(hyperplanes)).tolist() == [[1, 2]]
    assert buckets(x, HashParams(hyperplanes, torch.tensor([[2, 2]]), 4)).tolist() == [[2, 2]]
    assert collisions(x, x, HashParams(hyperplanes, torch.tensor([[2, 2]]), 4)).all()


@pytest.mark.parametrize("table_size", [None, 5])
def test_collision_matrix_matches_double_loop_oracle(table_size):
    gen = torch.Generator().manual_seed(11)
    q = torch.randn(2, 3, 7, 8, generator=gen)
    k = torch.randn(2, 3, 9, 8, generator=gen)
    params = draw_hash_params(8, 2, 3, table_size, batch_shape=(2, 3), generator=gen)
    fast = collisions(q, k, params)
    assert fast.shape == (2, 3, 7, 9) and fast.dtype == torch.bool

    def bucket(v, b, h, t):  # one row, one table, written out
        planes = params.hyperplanes[b, h, t]
        bits = [1 if float(planes[j] @ v) > 0 else 0 for j in range(params.bits)]
        if table_size is None:
            return sum(bit << j for j, bit in enumerate(bits))
        coef = params.coefficients[b, h, t]
        return sum(bit * int(coef[j]) for j, bit in enumerate(bits)) % table_size

    for b in range(2):
        for h in range(3):
            for i in range(7):
                for j in range(9):
                    hit = any(
                        bucket(q[b, h, i], b, h, t) == bucket(k[b, h, j], b, h, t) for t in range(3)
                    )
                    assert bool(fast[b, h, i, j]) == hit, (b, h, i, j)
    # the oracle is not trivially satisfied: both outcomes occur
    assert fast.any() and not fast.all()


def test_shared_params_broadcast_over_batch():
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(3, 2, 6, 4, generator=gen)
    params = draw_hash_params(4, 3, 2, 32, generator=gen)  # no batch dims: shared by all
    full = buckets(x, params)
    for b in range(3):
        for h in range(2):
            assert torch.equal(full[b, h], buckets(x[b, h], params))


def test_collision_matrix_or_over_tables():
    qb = torch.tensor([[0, 1], [5, 6]])  # (tables=2, n_q=2)
    kb = torch.tensor([[0, 2], [7, 6]])  # (tables=2, n_k=2)
    # (0,0): table 0 match; (1,1): table 1 match; (0,1), (1,0): none
    assert collision_matrix(qb, kb).tolist() == [[True, False], [False, True]]


BAD_SETTINGS = [
    (dict(bits=0), r"bits.*\[1, 62\].*0"),
    (dict(bits=-1), r"bits.*-1"),
    (dict(bits=63), r"bits.*63"),
    (dict(bits=2.0), r"bits.*2\.0"),
    (dict(bits=True), r"bits.*True"),
    (dict(tables=0), r"tables.*>= 1.*0"),
    (dict(tables=-2), r"tables.*-2"),
    (dict(table_size=1), r"table_size.*>= 2.*1"),
    (dict(table_size=0), r"table_size.*0"),
    (dict(table_size=64.0), r"table_size.*64\.0"),
    (dict(dim=0), r"dim.*>= 1.*0"),
    (dict(dtype=torch.int64), r"dtype.*int64"),
]


@pytest.mark.parametrize(("override", "pattern"), BAD_SETTINGS)
def test_bad_settings_raise_value_error(override, pattern):
    kwargs = dict(dim=8, bits=2, tables=1, table_size=None) | override
    with pytest.raises(ValueError, match=pattern):
        draw_hash_params(**kwargs)


def test_bad_inputs_raise_value_error():
    params = draw_hash_params(8, 2, 2, 16, seed=0)
    x = torch.randn(5, 8)
    with pytest.raises(ValueError, match=r"width 7.*dim 8"):
        buckets(torch.randn(5, 7), params)
    with pytest.raises(ValueError, match=r"key rows have width 9.*dim 8"):
        collisions(x, torch.randn(5, 9), params)
    with pytest.raises(ValueError, match=r"query rows have width 3"):
        collisions(torch.randn(5, 3), x, params)
    with pytest.raises(ValueError, match=r"floating.*int64"):
        buckets(torch.ones(5, 8, dtype=torch.int64), params)
    with pytest.raises(ValueError, match=r"query must be a floating.*int32"):
        collisions(torch.ones(5, 8, dtype=torch.int32), x, params)
    with pytest.raises(ValueError, match=r"shape \(\.\.\., n, dim\).*\(8,\)"):
        buckets(torch.randn(8), params)
    with pytest.raises(ValueError, match=r"2 and 3 tables"):
        collision_matrix(torch.zeros(2, 4, dtype=torch.long), torch.zeros(3, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="either generator or seed"):
        draw_hash_params(8, 2, seed=0, generator=torch.Generator())


def test_bad_hash_params_raise_value_error():
    planes = torch.randn(1, 2, 4)
    with pytest.raises(ValueError, match=r"hyperplanes.*floating.*int64"):
        HashParams(torch.ones(1, 2, 4, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"\(\.\.\., tables, bits, dim\).*\(2, 4\)"):
        HashParams(torch.randn(2, 4))
    with pytest.raises(ValueError, match="together"):
        HashParams(planes, torch.zeros(1, 2, dtype=torch.long), None)
    with pytest.raises(ValueError, match="together"):
        HashParams(planes, None, 8)
    with pytest.raises(ValueError, match=r"coefficients.*integer.*float32"):
        HashParams(planes, torch.zeros(1, 2), 8)
    with pytest.raises(ValueError, match=r"coefficients.*\(\.\.\., 1, 2\).*\(1, 3\)"):
        HashParams(planes, torch.zeros(1, 3, dtype=torch.long), 8)
    with pytest.raises(ValueError, match=r"table_size.*1"):
        HashParams(planes, torch.zeros(1, 2, dtype=torch.long), 1)
