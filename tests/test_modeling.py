"""BERT-LSH through stock transformers classes: building, masking, save/reload, training step."""

from __future__ import annotations

import pytest
import torch
from conftest import PAPER_SETTING
from transformers import BertConfig

from lshlib.experiments.analysis import extract_qkv
from lshlib.lsh.attention import ATTN_NAME, LSHConfig
from lshlib.modeling import (
    TASK_CLASSES,
    VARIANTS,
    _check_head_swap,
    bert_tiny_config,
    build_model,
    load_model,
    variant_lsh_config,
)

VOCAB = 50


def _batch(n=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, VOCAB, (2, n), generator=g)
    mask = torch.ones(2, n, dtype=torch.long)
    mask[1, n - 5 :] = 0  # second sequence: last 5 tokens are padding
    return ids, mask


def test_bert_tiny_config_is_the_papers():
    c = bert_tiny_config()
    assert (c.num_hidden_layers, c.hidden_size, c.num_attention_heads) == (2, 128, 2)
    assert (c.intermediate_size, c.max_position_embeddings, c.vocab_size) == (512, 512, 32000)
    assert variant_lsh_config("baseline") is None
    paper = variant_lsh_config("lsh_paper")
    assert (paper.bits, paper.tables, paper.table_size, paper.mode) == (*PAPER_SETTING, "paper")
    assert variant_lsh_config("lsh_masked").mode == "masked"


@pytest.mark.parametrize("task", list(TASK_CLASSES))
def test_variants_share_weights_and_differ_in_attention(task):
    models = {v: build_model(task, v, vocab_size=VOCAB, seed=3) for v in VARIANTS}
    base = models["baseline"].state_dict()
    for variant, model in models.items():
        assert isinstance(model, TASK_CLASSES[task])
        expected = "sdpa" if variant == "baseline" else ATTN_NAME
        assert model.config._attn_implementation == expected
        for name, tensor in model.state_dict().items():
            torch.testing.assert_close(tensor, base[name], rtol=0, atol=0, msg=name)
    ids, mask = _batch()
    out = models["lsh_paper"].eval()(input_ids=ids, attention_mask=mask)
    assert all(torch.isfinite(t).all() for t in out.values() if isinstance(t, torch.Tensor))


def test_invalid_arguments_raise():
    with pytest.raises(ValueError, match="variant"):
        build_model("mlm", "lsh", vocab_size=VOCAB)
    with pytest.raises(ValueError, match="task"):
        build_model("glue", "baseline", vocab_size=VOCAB)
    with pytest.raises(ValueError, match="mode"):
        bert_tiny_config(variant="lsh_paper", lsh=LSHConfig(mode="masked"))
    with pytest.raises(ValueError, match="baseline"):
        bert_tiny_config(variant="baseline", lsh=LSHConfig())


@pytest.mark.parametrize("mode", ["paper", "masked"])
def test_padding_mask_is_honoured(mode):
    variant = f"lsh_{mode}"
    lsh = LSHConfig(mode=mode, bits=3, table_size=64, rehash="fixed", seed=1)
    model = build_model("mlm", variant, vocab_size=VOCAB, lsh=lsh).eval()
    ids, mask = _batch()
    other = ids.clone()
    other[1, -5:] = (other[1, -5:] + 7) % VOCAB  # change only the padding tokens
    with torch.no_grad():
        a = model(input_ids=ids, attention_mask=mask).logits
        b = model(input_ids=other, attention_mask=mask).logits
        c = model(input_ids=other).logits  # no mask: padding is attended to
    torch.testing.assert_close(a[1, :-5], b[1, :-5], rtol=0, atol=1e-6)
    torch.testing.assert_close(a[0], b[0], rtol=0, atol=0)
    assert not torch.allclose(a[1, :-5], c[1, :-5], atol=1e-4)  # so the mask did matter


def test_fixed_rehash_survives_save_and_reload(tmp_path):
    lsh = LSHConfig(mode="masked", bits=3, table_size=None, rehash="fixed", seed=11)
    model = build_model("sst2", "lsh_masked", vocab_size=VOCAB, lsh=lsh).eval()
    ids, mask = _batch()
    with torch.no_grad():
        first = model(input_ids=ids, attention_mask=mask).logits
        again = model(input_ids=ids, attention_mask=mask).logits
    torch.testing.assert_close(first, again, rtol=0, atol=0)
    model.save_pretrained(tmp_path)
    assert BertConfig.from_pretrained(tmp_path).lsh == lsh.to_dict()
    reloaded = load_model(tmp_path, "sst2").eval()
    assert reloaded.config._attn_implementation == ATTN_NAME
    with torch.no_grad():
        torch.testing.assert_close(
            reloaded(input_ids=ids, attention_mask=mask).logits, first, rtol=0, atol=0
        )
    # the same weights as a QA model with baseline attention: encoder carried over, new head
    qa = build_model("squad", "baseline", vocab_size=VOCAB, pretrained=tmp_path)
    assert qa.config._attn_implementation == "sdpa" and qa.config.lsh is None
    torch.testing.assert_close(
        qa.bert.encoder.layer[1].output.dense.weight,
        model.bert.encoder.layer[1].output.dense.weight,
    )


def test_rehash_call_redraws_hashes_in_the_model():
    model = build_model("mlm", "lsh_paper", vocab_size=VOCAB).eval()
    ids, mask = _batch()
    with torch.no_grad():
        a = model(input_ids=ids, attention_mask=mask).logits
        b = model(input_ids=ids, attention_mask=mask).logits
    assert not torch.equal(a, b)


@pytest.mark.parametrize("variant", ["lsh_paper", "lsh_masked"])
def test_mlm_forward_backward_on_cpu(variant):
    model = build_model("mlm", variant, vocab_size=VOCAB).train()
    ids, mask = _batch()
    labels = ids.masked_fill(mask == 0, -100)
    out = model(input_ids=ids, attention_mask=mask, labels=labels)
    assert torch.isfinite(out.loss)
    out.loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    q_grad = model.bert.encoder.layer[0].attention.self.query.weight.grad
    assert q_grad is not None and q_grad.abs().sum() > 0


def test_extract_qkv_matches_the_projections():
    model = build_model("mlm", "baseline", vocab_size=VOCAB).eval()
    ids, mask = _batch()
    qkv = extract_qkv(model, ids, mask)
    assert set(qkv) == {0, 1}
    assert qkv[0].query.shape == (2, 2, 12, 64) and qkv[1].value.shape == (2, 2, 12, 64)
    with torch.no_grad():
        hidden = model.bert.embeddings(input_ids=ids)
        q = model.bert.encoder.layer[0].attention.self.query(hidden)
    torch.testing.assert_close(qkv[0].query, q.view(2, 12, 2, 64).transpose(1, 2))
    assert not model.bert.encoder.layer[0].attention.self.query._forward_hooks


def test_bucketed_strategy_through_the_model():
    pytest.importorskip(
        "lshlib.lsh.bucketed",
        reason="lshlib.lsh.bucketed (the compute helper's sparse kernel) not there yet",
    )
    lsh = LSHConfig(mode="masked", strategy="bucketed", rehash="fixed", seed=2)
    model = build_model("mlm", "lsh_masked", vocab_size=VOCAB, lsh=lsh).eval()
    ids, mask = _batch(n=11)
    with torch.no_grad():
        sparse = model(input_ids=ids, attention_mask=mask).logits
        model.config.lsh = {**model.config.lsh, "strategy": "dense"}
        dense = model(input_ids=ids, attention_mask=mask).logits
    torch.testing.assert_close(sparse, dense, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("variant", ["baseline", "lsh_masked"])
def test_sparse_mlm_head_equals_full_head(variant):
    from lshlib.modeling import sparse_mlm_forward

    fixed = LSHConfig(bits=2, tables=1, table_size=256, mode="masked", rehash="fixed")
    lsh = fixed if variant == "lsh_masked" else None  # fixed hashes: both passes hash alike
    model = build_model("mlm", variant, vocab_size=VOCAB, seed=0, lsh=lsh)
    model.eval()  # no dropout, so both passes see the same network
    ids, mask = _batch(n=16, seed=1)
    labels = torch.full_like(ids, -100)
    g = torch.Generator().manual_seed(2)
    chosen = (torch.rand(ids.shape, generator=g) < 0.3) & mask.bool()
    labels[chosen] = ids[chosen]
    batch = {"input_ids": ids, "attention_mask": mask, "labels": labels}
    full = model(**batch)
    sparse = sparse_mlm_forward(model, batch)
    assert sparse.logits.shape == (int(chosen.sum()), VOCAB)
    assert torch.equal(sparse.labels, ids[chosen])
    assert abs(sparse.loss.item() - full.loss.item()) < 1e-5
    full_acc = (full.logits.argmax(-1)[chosen] == ids[chosen]).float().mean()
    sparse_acc = (sparse.logits.argmax(-1) == sparse.labels).float().mean()
    assert abs(full_acc.item() - sparse_acc.item()) < 1e-5
    torch.testing.assert_close(sparse.logits, full.logits[chosen], atol=1e-5, rtol=1e-5)


def test_sparse_mlm_gradients_equal_full_head_and_model_stays_stock(tmp_path):
    from lshlib.modeling import sparse_mlm_loss

    model = build_model("mlm", "baseline", vocab_size=VOCAB, seed=0)
    model.eval()
    ids, mask = _batch(n=16, seed=4)
    labels = torch.full_like(ids, -100)
    labels[:, 3:6] = ids[:, 3:6]
    batch = {"input_ids": ids, "attention_mask": mask, "labels": labels}
    model(**batch).loss.backward()
    full = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    sparse_mlm_loss(model, batch).backward()
    for name, grad in full.items():
        torch.testing.assert_close(
            dict(model.named_parameters())[name].grad, grad, atol=1e-6, rtol=1e-5
        )
    assert not model.cls._forward_pre_hooks  # the gather hook is removed after the call
    model.save_pretrained(tmp_path)
    assert type(load_model(tmp_path, "mlm")) is TASK_CLASSES["mlm"]


def test_sparse_mlm_rejects_other_models():
    from lshlib.modeling import sparse_mlm_loss

    model = build_model("sst2", "baseline", vocab_size=VOCAB, seed=0)
    ids, mask = _batch()
    with pytest.raises(TypeError, match="BertForMaskedLM"):
        sparse_mlm_loss(model, {"input_ids": ids, "labels": ids})


def test_head_swap_check_accepts_heads_and_names_body_weights():
    fine = {
        "missing_keys": ["classifier.weight", "bert.pooler.dense.bias"],
        "unexpected_keys": ["cls.predictions.bias"],
        "mismatched_keys": [],
    }
    _check_head_swap(fine, "sst2")
    odd = {**fine, "missing_keys": ["bert.encoder.layer.0.attention.self.query.weight"]}
    with pytest.raises(ValueError, match=r"task 'sst2'.*layer\.0\.attention\.self\.query"):
        _check_head_swap(odd, "sst2")
