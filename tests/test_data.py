"""Loaders on the shared data (row counts from MANIFEST.md), Gutenberg stripping, the tokenizer,
SQuAD labels, and the missing-data error."""

from __future__ import annotations

import math
import socket
import time

import pytest

from lshlib import data, paths, scales
from lshlib.training import features

needs_data = pytest.mark.needs_data


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    import os

    old = os.environ.get("LSHLIB_RUNS_DIR")
    path = tmp_path_factory.getbasetemp() / "lshlib-runs"  # shared with test_training
    path.mkdir(exist_ok=True)
    os.environ["LSHLIB_RUNS_DIR"] = str(path)
    try:
        yield data.get_tokenizer("smoke")
    finally:
        if old is None:
            os.environ.pop("LSHLIB_RUNS_DIR")
        else:
            os.environ["LSHLIB_RUNS_DIR"] = old


@needs_data
def test_sst2_rows_and_split():
    train, val, test = (data.load_sst2(s) for s in ("train", "validation", "test"))
    assert len(train) + len(val) == 67_349
    assert len(val) == math.ceil(0.05 * 67_349) == 3_368
    assert len(test) == 872
    assert sum(test["label"]) == 444  # positives in GLUE dev; majority class = 444/872
    assert set(train.column_names) == {"sentence", "label"}
    assert data.load_sst2("validation")["sentence"][:5] == val["sentence"][:5]  # fixed split


@needs_data
def test_squad_rows():
    test = data.load_squad("test")
    assert len(test) == 10_570
    assert len(set(test["title"])) == 48
    train, val = data.load_squad("train"), data.load_squad("validation")
    assert len(train) + len(val) == 11_877
    assert len(set(train["title"]) | set(val["title"])) == 44
    assert len(val) == math.ceil(0.05 * 11_877)
    for ex in test.select(range(50)):
        for text, start in zip(ex["answers"]["text"], ex["answers"]["answer_start"], strict=True):
            assert ex["context"][start : start + len(text)] == text


def test_bad_split():
    with pytest.raises(ValueError, match="valid splits"):
        data.load_sst2("dev")


@pytest.mark.parametrize(
    "start,end",
    [
        (
            "*** START OF THIS PROJECT GUTENBERG EBOOK ALICE ***",
            "*** END OF THIS PROJECT GUTENBERG EBOOK ALICE ***",
        ),
        (
            "***START OF THE PROJECT GUTENBERG EBOOK JANE EYRE***",
            "***END OF THE PROJECT GUTENBERG EBOOK JANE EYRE***",
        ),
        (
            "*** START OF THIS PROJECT GUTENBERG EBOOK\r\nTHE STRANGE CASE ***",
            "*** END OF THIS PROJECT GUTENBERG EBOOK\r\nTHE STRANGE CASE ***",
        ),
        (
            "*** START OF THE PROJECT GUTENBERG EBOOK HOLMES ***",
            "            *** END OF THE PROJECT GUTENBERG EBOOK HOLMES ***",
        ),
    ],
)
def test_strip_gutenberg_variants(start, end):
    text = (
        "\ufeffThe Project Gutenberg eBook of X\r\nlicense blah\r\n"
        f"{start}\r\n\r\nChapter 1\r\n\r\nIt was a *dark* night.\r\n\r\n"
        "End of the Project Gutenberg EBook of X\r\n\r\n"
        f"{end}\r\nfooter license text\r\n"
    )
    assert data.strip_gutenberg(text) == "Chapter 1\n\nIt was a *dark* night."


def test_strip_gutenberg_missing_marker():
    with pytest.raises(ValueError, match="START"):
        data.strip_gutenberg("no markers at all")


@needs_data
def test_corpus_files_and_stripping():
    files = data.corpus_files()
    books = [f for f in files if f.parent.name == "gutenberg"]
    assert len(books) == 59
    assert len(files) == 61  # plus WikiText-2 valid and test
    for path in books:
        body = data.strip_gutenberg(path.read_text(encoding="utf-8"))
        assert len(body) > 10_000, path.name
        assert "PROJECT GUTENBERG EBOOK" not in body.upper(), path.name
        assert "Project Gutenberg-tm License" not in body, path.name


@needs_data
def test_corpus_split():
    train, held_out = data.load_corpus("train"), data.load_corpus("eval")
    assert len(held_out) < 0.02 * len(train)
    assert set(held_out["source"]) == set(train["source"])  # every document contributes
    assert len(set(train["source"])) == 61
    assert "@-@" not in " ".join(held_out["text"])


@needs_data
def test_tokenizer_is_deterministic():
    # Real text: ties between equally frequent merges (common in toy text) are rare.
    book = paths.data_dir() / "corpus" / "gutenberg" / "11-0.txt"
    texts = data.strip_gutenberg(book.read_text(encoding="utf-8")).split("\n\n")
    a, b = data.train_tokenizer(texts, 600), data.train_tokenizer(texts, 600)
    assert a.get_vocab() == b.get_vocab()
    assert a.convert_ids_to_tokens(list(range(5))) == list(data.SPECIAL_TOKENS)


@needs_data
def test_tokenizer(tokenizer, tmp_path):
    from transformers import PreTrainedTokenizerFast

    assert len(tokenizer) == scales.sizes("tokenizer", "smoke")["vocab_size"]
    for name in ("cls", "sep", "pad", "mask", "unk"):
        assert getattr(tokenizer, f"{name}_token") == f"[{name.upper()}]"
    enc = tokenizer("The cat sat.", "On the mat.")
    tokens = tokenizer.convert_ids_to_tokens(enc["input_ids"])
    assert tokens[0] == "[CLS]" and tokens.count("[SEP]") == 2
    assert enc["token_type_ids"][-1] == 1
    tokenizer.save_pretrained(tmp_path)
    again = PreTrainedTokenizerFast.from_pretrained(tmp_path)
    assert again("The cat sat.")["input_ids"] == tokenizer("The cat sat.")["input_ids"]
    assert data.get_tokenizer("smoke").get_vocab() == tokenizer.get_vocab()  # cached


@needs_data
def test_squad_labels_point_at_answers(tokenizer):
    examples = data.load_squad("train").select(range(40))
    normalize = tokenizer.backend_tokenizer.normalizer.normalize_str
    checked = at_cls = windows = 0
    for i in range(len(examples)):
        example = examples.select([i])
        answer = "".join(normalize(example[0]["answers"]["text"][0]).split())
        windows_ = features.squad_train_features(example, tokenizer, 96, 32, pad=False)
        windows += len(windows_)
        for f in windows_:
            s, e = f["start_positions"], f["end_positions"]
            if s == 0:
                assert e == 0
                at_cls += 1
                continue
            assert s <= e
            assert f["token_type_ids"][s] == 1 and f["token_type_ids"][e] == 1  # in the context
            span = tokenizer.decode(f["input_ids"][s : e + 1])
            if "[UNK]" not in span:
                assert "".join(span.split()) == answer
                checked += 1
    assert windows > len(examples)  # long contexts give several windows
    assert checked > 30 and at_cls > 0


def _time_missing(monkeypatch, tmp_path):
    monkeypatch.setenv("LSHLIB_DATA_DIR", str(tmp_path))
    start = time.perf_counter()
    with pytest.raises(data.MissingDataError, match="sst2") as info:
        data.load_sst2("train")
    assert "LSHLIB_DATA_DIR" in str(info.value)
    return time.perf_counter() - start


def test_missing_data_offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert _time_missing(monkeypatch, tmp_path) < 5.0


def test_missing_data_no_network(monkeypatch, tmp_path):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)

    def unreachable(*args, **kwargs):
        time.sleep(0.5)
        raise OSError("network is unreachable")

    monkeypatch.setattr(socket, "create_connection", unreachable)
    assert _time_missing(monkeypatch, tmp_path) < 5.0
    with pytest.raises(data.MissingDataError, match="squad"):
        data.load_squad("test")


@needs_data
def test_unigram_floor_is_the_most_frequent_training_token_at_masked_positions(tokenizer):
    import numpy as np

    floor = features.unigram_floor(tokenizer, 32, 20, 0.15, corpus_chars=200_000)
    counts = np.bincount(features.corpus_ids(tokenizer, "train", 200_000))
    assert floor["token"] == tokenizer.convert_ids_to_tokens(int(counts.argmax()))
    labels = np.asarray(features.mlm_eval_set(tokenizer, 32, 20, 0.15)["labels"])
    scored = labels[labels != -100]
    assert floor["positions"] == scored.size > 0
    assert floor["hits"] == int((scored == counts.argmax()).sum())
    assert floor["accuracy"] == pytest.approx(floor["hits"] / floor["positions"])
