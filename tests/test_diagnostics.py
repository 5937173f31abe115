"""Attention diagnostics of the plateau study against oracles written here: uniform attention,
a per-query loop over explicit softmax probabilities, the collision density of hashes drawn
independently with the same seed, and hand-set gradients."""

from __future__ import annotations

import json
import math

import datasets
import pytest
import torch
from conftest import TINY_MODEL

from lshlib.lsh.attention import hash_generator
from lshlib.lsh.hashing import collisions, draw_hash_params
from lshlib.modeling import build_model, lsh_config_of, variant_lsh_config
from lshlib.training.diagnostics import (
    HEAD_KEYS,
    _layer_attention,
    attention_diagnostics,
    mean_pairwise_cosine,
    probe_batch,
    qk_grad_rms,
    summarise,
)

VOCAB = 50
CLS, SEP = 1, 2
TINY = {**TINY_MODEL, "num_hidden_layers": 2, "max_position_embeddings": 32}
VARIANTS = (
    "baseline",
    "lsh_paper",
    "lsh_masked",
    "random_paper",
    "lsh_paper_fixed",
    "lsh_paper_unmirrored",
)


def _model(variant: str):
    return build_model("mlm", variant, vocab_size=VOCAB, seed=0, **TINY).eval()


def _ids(batch: int = 4, n: int = 16, seed: int = 0) -> torch.Tensor:
    """Random ids in [5, VOCAB) with [CLS] first and [SEP] last, as the MLM blocks."""
    ids = torch.randint(5, VOCAB, (batch, n), generator=torch.Generator().manual_seed(seed))
    ids[:, 0], ids[:, -1] = CLS, SEP
    return ids


def _padding(batch: int = 4, n: int = 16, pad: int = 4) -> torch.Tensor:
    mask = torch.ones(batch, n, dtype=torch.long)
    mask[:, n - pad :] = 0
    return mask


def _gen(seed: int = 7) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _flat(values) -> list:
    """A diagnostics list (per layer, or per layer and head) as one flat list."""
    return [x for v in values for x in (v if isinstance(v, list) else [v])]


def _qk(model, hidden: torch.Tensor, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Query and key ``(batch, heads, n, head_dim)`` of ``layer`` from its input hidden state."""
    attn = model.bert.encoder.layer[layer].attention.self
    shape = (*hidden.shape[:2], attn.num_attention_heads, attn.attention_head_size)
    with torch.no_grad():
        query, key = (
            getattr(attn, n)(hidden).view(shape).transpose(1, 2) for n in ("query", "key")
        )
    return query, key


# --------------------------------------------------------------------------------------------
# oracles


@pytest.mark.parametrize("pad", [0, 4])
def test_uniform_attention_has_entropy_log_n(pad):
    model = _model("baseline")
    for layer in model.bert.encoder.layer:  # every query 0: every logit 0, uniform attention
        torch.nn.init.zeros_(layer.attention.self.query.weight)
        torch.nn.init.zeros_(layer.attention.self.query.bias)
    mask = _padding(pad=pad)
    diag = attention_diagnostics(model, _ids(), mask, special_ids=(CLS, SEP), generator=_gen())
    n = 16 - pad  # real length; with padding the [SEP] at the end is a padded key
    specials = 2 if pad == 0 else 1
    expected = {
        "entropy": math.log(n),
        "self_mass": 1 / n,
        "neighbour_mass": (2 * n - 2) / n**2,
        "special_mass": specials / n,
        "logit_mean": 0.0,
        "logit_std": 0.0,
    }
    for name, value in expected.items():
        for per_head in diag[name]:
            assert per_head == pytest.approx([value] * 2, abs=1e-6), name
    assert diag["zeroed_share"] == [[None, None], [None, None]]


def test_figures_equal_a_per_query_loop_over_explicit_softmax():
    model = _model("baseline")
    ids, mask = _ids(batch=2, n=8), _padding(batch=2, n=8, pad=3)
    mask[1] = 1  # one padded block, one full block
    diag = attention_diagnostics(model, ids, mask, special_ids=(CLS, SEP), generator=_gen())
    with torch.no_grad():
        hidden = model.bert(input_ids=ids, attention_mask=mask, output_hidden_states=True)
        hidden = hidden.hidden_states
    for layer in range(2):
        q, k = (t.double() for t in _qk(model, hidden[layer], layer))
        for head in range(2):
            rows, logits = [], []
            for b in range(2):
                real = [j for j in range(8) if mask[b, j]]
                for i in real:
                    s = [float(q[b, head, i] @ k[b, head, j]) / math.sqrt(8) for j in real]
                    logits += s
                    z = sum(math.exp(x) for x in s)
                    p = {j: math.exp(x) / z for j, x in zip(real, s, strict=True)}
                    rows.append(
                        (
                            -sum(v * math.log(v) for v in p.values()),
                            p[i],
                            p.get(i - 1, 0.0) + p.get(i + 1, 0.0),
                            sum(v for j, v in p.items() if int(ids[b, j]) in (CLS, SEP)),
                        )
                    )
            names = ("entropy", "self_mass", "neighbour_mass", "special_mass")
            for c, name in enumerate(names):
                oracle = sum(r[c] for r in rows) / len(rows)
                assert diag[name][layer][head] == pytest.approx(oracle, abs=1e-5), name
            mean = sum(logits) / len(logits)
            std = math.sqrt(sum((x - mean) ** 2 for x in logits) / len(logits))
            assert diag["logit_mean"][layer][head] == pytest.approx(mean, abs=1e-5)
            assert diag["logit_std"][layer][head] == pytest.approx(std, abs=1e-5)


def test_zeroed_share_is_one_minus_the_collision_density_of_the_same_draws():
    model = _model("lsh_paper")
    cfg = lsh_config_of(model.config)
    ids = _ids()
    diag = attention_diagnostics(model, ids, generator=_gen(11))
    g = _gen(11)  # replay: the forward's per-call hashes, then one draw per layer
    with torch.no_grad(), hash_generator(g):
        out = model.bert(
            input_ids=ids, attention_mask=torch.ones_like(ids), output_hidden_states=True
        )
        for layer in range(2):
            q, k = _qk(model, out.hidden_states[layer], layer)
            params = draw_hash_params(
                q.shape[-1], cfg.bits, cfg.tables, cfg.table_size, batch_shape=(4, 2), generator=g
            )
            density = collisions(q, k, params).double().mean(dim=(0, 2, 3))
            for head in range(2):
                share = diag["zeroed_share"][layer][head]
                assert 0.0 <= share <= 1.0
                assert share == pytest.approx(1 - float(density[head]), abs=1e-6)
    other = attention_diagnostics(model, ids, generator=_gen(12))["zeroed_share"]
    assert other != diag["zeroed_share"]  # the hashes do come from the generator


@pytest.mark.parametrize("variant", ["baseline", "lsh_masked"])
def test_zeroed_share_is_none_outside_paper_mode(variant):
    diag = attention_diagnostics(_model(variant), _ids(), generator=_gen())
    assert diag["zeroed_share"] == [[None, None], [None, None]]


def test_random_pairs_share_is_the_draw_lsh_attention_used():
    g = _gen(3)
    q, k = (torch.randn(2, 2, 12, 8, generator=g, dtype=torch.float64) for _ in range(2))
    real = torch.ones(2, 12, dtype=torch.bool)
    cfg = variant_lsh_config("random_paper")
    probs, zeroed = _layer_attention(q, k, real, cfg, 0, _gen(5))
    scores = (q @ k.transpose(-1, -2) * 8**-0.5).masked_fill(zeroed, 0.0)
    upper = torch.ones(12, 12, dtype=torch.bool).triu()
    scores = torch.where(upper, scores, scores.transpose(-1, -2))
    torch.testing.assert_close(probs, torch.softmax(scores, -1))
    _, lsh = _layer_attention(q, k, real, variant_lsh_config("lsh_paper"), 0, _gen(5))
    assert not torch.equal(zeroed, lsh)  # not the collision matrix itself


# --------------------------------------------------------------------------------------------
# padding, RNG, modes


@pytest.mark.parametrize("variant", ["baseline", "lsh_paper", "lsh_masked", "lsh_paper_fixed"])
def test_padded_ids_do_not_change_any_diagnostic(variant):
    model = _model(variant)
    ids, mask = _ids(), _padding(pad=4)
    other = ids.clone()
    other[:, -4:] = torch.randint(5, VOCAB, (4, 4), generator=_gen(99))
    assert not torch.equal(ids, other)
    a = attention_diagnostics(model, ids, mask, special_ids=(CLS, SEP), generator=_gen())
    b = attention_diagnostics(model, other, mask, special_ids=(CLS, SEP), generator=_gen())
    assert a.keys() == b.keys()
    for name, values in a.items():
        assert _flat(values) == pytest.approx(_flat(b[name]), abs=1e-6), name


def test_global_rng_is_untouched_and_equal_seeds_give_equal_results():
    model = _model("lsh_paper").train()
    torch.manual_seed(1234)
    state = torch.get_rng_state()
    first = attention_diagnostics(model, _ids(), generator=_gen(3))
    assert torch.equal(torch.get_rng_state(), state)
    second = attention_diagnostics(model, _ids(), generator=_gen(3))
    assert first == second
    attention_diagnostics(model, _ids())  # the default generator: seeded, also no global draw
    assert torch.equal(torch.get_rng_state(), state)
    assert model.training  # mode restored
    assert attention_diagnostics(model.eval(), _ids(), generator=_gen(3)) == first
    assert not model.training


@pytest.mark.parametrize("variant", VARIANTS)
def test_no_nan_and_json_for_every_variant(variant):
    diag = attention_diagnostics(
        _model(variant), _ids(), _padding(pad=4), special_ids=(CLS, SEP), generator=_gen()
    )
    json.dumps(diag, allow_nan=False)
    paper = variant_lsh_config(variant) is not None and variant_lsh_config(variant).mode == "paper"
    for name in HEAD_KEYS:
        assert len(diag[name]) == 2 and all(len(h) == 2 for h in diag[name]), name
        for value in (x for per_layer in diag[name] for x in per_layer):
            if name == "zeroed_share" and not paper:
                assert value is None
            else:
                assert isinstance(value, float) and math.isfinite(value), (name, value)
    for name in ("self_mass", "neighbour_mass", "special_mass", "zeroed_share"):
        values = [x for per_layer in diag[name] for x in per_layer if x is not None]
        assert all(0.0 <= x <= 1.0 + 1e-9 for x in values), name
    assert all(0.0 <= x <= math.log(12) + 1e-6 for h in diag["entropy"] for x in h)
    assert len(diag["hidden_cosine"]) == 2
    assert all(-1.0 <= x <= 1.0 for x in diag["hidden_cosine"])


# --------------------------------------------------------------------------------------------
# hidden-state cosine


def test_hidden_cosine_is_one_for_identical_vectors_and_stays_in_range():
    v = torch.randn(5, generator=_gen(0))
    same = v.expand(3, 7, 5).clone()
    assert mean_pairwise_cosine(same) == pytest.approx(1.0, abs=1e-12)
    opposite = torch.stack([v, -v])[None]  # one block of two opposite vectors
    assert mean_pairwise_cosine(opposite) == pytest.approx(-1.0, abs=1e-12)
    x = torch.randn(6, 9, 4, generator=_gen(1))
    assert -1.0 <= mean_pairwise_cosine(x) <= 1.0


def test_hidden_cosine_by_hand_with_padding():
    x = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-5.0, 3.0]], [[1.0, 0.0]] * 4])
    mask = torch.tensor([[1, 1, 1, 0], [1, 0, 0, 0]])  # block 2 has one real token: no pair
    by_hand = (0.0 + 2 * 2**-0.5) / 3  # pairs (0,1), (0,2), (1,2) of block 1
    assert mean_pairwise_cosine(x, mask) == pytest.approx(by_hand, abs=1e-12)
    assert mean_pairwise_cosine(x[1:], mask[1:]) is None
    with pytest.raises(ValueError, match=r"attention_mask must have shape \(blocks, n\)"):
        mean_pairwise_cosine(x, mask[:, :3])


# --------------------------------------------------------------------------------------------
# gradients


def test_qk_grad_rms_by_hand_and_none_without_grad():
    model = _model("baseline")
    assert qk_grad_rms(model) == {"query": [[None, None]] * 2, "key": [[None, None]] * 2}
    attn = model.bert.encoder.layer[1].attention.self
    grad = torch.ones(16, 16)
    grad[8:] = -2.0  # head 1 owns output rows 8..15 (head_dim 8)
    attn.query.weight.grad = grad
    g = torch.randn(16, 16, generator=_gen(0))
    attn.key.weight.grad = g
    rms = qk_grad_rms(model)
    assert rms["query"] == [[None, None], pytest.approx([1.0, 2.0])]
    expected = [float(g[h * 8 : (h + 1) * 8].pow(2).mean().sqrt()) for h in range(2)]
    assert rms["key"][1] == pytest.approx(expected)
    assert rms["key"][0] == [None, None]


# --------------------------------------------------------------------------------------------
# probe and summary


def test_probe_batch_is_the_first_rows():
    rows = _ids(batch=10, n=6)
    ds = datasets.Dataset.from_dict({"input_ids": rows.tolist(), "labels": rows.tolist()})
    probe = probe_batch(ds, size=3)
    assert set(probe) == {"input_ids"}
    assert torch.equal(probe["input_ids"], rows[:3]) and probe["input_ids"].dtype == torch.long
    masked = ds.add_column("attention_mask", _padding(10, 6, 2).tolist())
    probe = probe_batch(masked, size=10)
    assert torch.equal(probe["attention_mask"], _padding(10, 6, 2))


@pytest.mark.parametrize("size", [0, 11, -1, 2.0, True])
def test_probe_batch_names_a_bad_size_and_the_range(size):
    ds = datasets.Dataset.from_dict({"input_ids": _ids(batch=10, n=6).tolist()})
    with pytest.raises(ValueError, match=r"size must be an integer in \[1, 10\].*got"):
        probe_batch(ds, size=size)


def test_summarise_averages_layers_and_heads_and_skips_none():
    diag = {
        "entropy": [[1.0, 2.0], [3.0, 6.0]],
        "zeroed_share": [[None, None], [None, None]],
        "partly": [[None, 1.0], [3.0, None]],
        "hidden_cosine": [0.5, None],
    }
    assert summarise(diag) == {
        "entropy": 3.0,
        "zeroed_share": None,
        "partly": 2.0,
        "hidden_cosine": 0.5,
    }


# --------------------------------------------------------------------------------------------
# errors


@pytest.mark.parametrize(
    ("ids", "mask", "message"),
    [
        (torch.zeros(16, dtype=torch.long), None, r"2-d integer tensor.*shape \(16,\)"),
        (torch.zeros(2, 16), None, r"2-d integer tensor.*dtype torch.float32"),
        (torch.zeros(2, 16, dtype=torch.long), torch.ones(2, 15), r"shape of input_ids"),
        (torch.zeros(2, 16, dtype=torch.long), torch.full((2, 16), 2), r"only 0 .* and 1"),
        ([[1, 2]], None, r"input_ids must be a torch.Tensor, got list"),
    ],
)
def test_bad_inputs_are_named(ids, mask, message):
    with pytest.raises(ValueError, match=message):
        attention_diagnostics(_model("baseline"), ids, mask)
